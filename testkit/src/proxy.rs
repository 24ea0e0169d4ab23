//! A hostile server: a reverse proxy in front of the real one that can rewrite what it serves.
//! Clients that bootstrapped through it (links point at it) never talk to the server directly.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use futures_util::TryStreamExt;

/// Rewrites a response body: `(method, path and query, body) -> body`.
pub type Tamper = Arc<dyn Fn(&str, &str, Vec<u8>) -> Vec<u8> + Send + Sync>;

/// Chooses requests to answer with `503 Service Unavailable` instead of forwarding them.
pub type Refuse = Arc<dyn Fn(&str, &str) -> bool + Send + Sync>;

/// Answers chosen requests itself, with a status and body of its choosing (an error response
/// with a sentence the server picked, say): `(method, path and query) -> Some((status, body))`.
pub type Answer = Arc<dyn Fn(&str, &str) -> Option<(u16, Vec<u8>)> + Send + Sync>;

#[derive(Clone)]
struct Shared {
    requests: Arc<std::sync::atomic::AtomicUsize>,
    upstream: Arc<Mutex<String>>,
    tamper: Arc<Mutex<Option<Tamper>>>,
    refuse: Arc<Mutex<Option<Refuse>>>,
    answer: Arc<Mutex<Option<Answer>>>,
    http: reqwest::Client,
}

/// The proxy; stops when dropped.
pub struct TamperingProxy {
    addr: SocketAddr,
    shared: Shared,
    _runtime: tokio::runtime::Runtime,
}

impl TamperingProxy {
    /// A new server that clients reach only through a new proxy: the server's public URL (in
    /// invitation links and bootstrap links) is the proxy's.
    pub fn in_front_of_a_new_server() -> (Self, crate::Server) {
        let proxy = Self::start();
        let server = crate::Server::start_with(crate::ServerOptions {
            public_url: Some(proxy.url()),
            ..Default::default()
        });
        proxy.set_upstream(server.url());
        (proxy, server)
    }

    /// Listens on an ephemeral loopback port; forwards to nothing until [`Self::set_upstream`].
    pub fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("proxy runtime");
        let shared = Shared {
            requests: Default::default(),
            upstream: Arc::new(Mutex::new(String::new())),
            tamper: Arc::new(Mutex::new(None)),
            refuse: Arc::new(Mutex::new(None)),
            answer: Arc::new(Mutex::new(None)),
            http: reqwest::Client::new(),
        };
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("binding the proxy");
        let addr = listener.local_addr().expect("address");
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(shared.clone());
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            addr,
            shared,
            _runtime: runtime,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Where requests go.
    pub fn set_upstream(&self, url: &str) {
        *self.shared.upstream.lock().expect("lock") = url.to_owned();
    }

    /// How many requests were forwarded since the last call (and resets the count).
    pub fn take_request_count(&self) -> usize {
        self.shared
            .requests
            .swap(0, std::sync::atomic::Ordering::SeqCst)
    }

    /// Starts (or with `None`, stops) refusing requests.
    pub fn set_refuse(&self, refuse: Option<Refuse>) {
        *self.shared.refuse.lock().expect("lock") = refuse;
    }

    /// Starts (or with `None`, stops) answering chosen requests instead of the server.
    pub fn set_answer(&self, answer: Option<Answer>) {
        *self.shared.answer.lock().expect("lock") = answer;
    }

    /// Starts (or with `None`, stops) rewriting responses.
    pub fn set_tamper(&self, tamper: Option<Tamper>) {
        *self.shared.tamper.lock().expect("lock") = tamper;
    }
}

async fn forward(State(shared): State<Shared>, request: Request) -> Result<Response, StatusCode> {
    shared
        .requests
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let (parts, body) = request.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    // The body is read before refusing: answering while the client still sends would close the
    // connection under it, and the client would see a network error instead of the refusal.
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .map_err(|_| StatusCode::BAD_REQUEST)?;
    let refuse = shared.refuse.lock().expect("lock").clone();
    if refuse.is_some_and(|r| r(parts.method.as_str(), &path)) {
        return Err(StatusCode::SERVICE_UNAVAILABLE);
    }
    let answer = shared.answer.lock().expect("lock").clone();
    if let Some((status, body)) = answer.and_then(|a| a(parts.method.as_str(), &path)) {
        return Response::builder()
            .status(status)
            .body(Body::from(body))
            .map_err(|_| StatusCode::BAD_GATEWAY);
    }
    let upstream = shared.upstream.lock().expect("lock").clone();
    let mut headers = HeaderMap::new();
    for (name, value) in parts.headers.iter() {
        if name != axum::http::header::HOST && name != axum::http::header::CONTENT_LENGTH {
            headers.insert(name.clone(), value.clone());
        }
    }
    let response = shared
        .http
        .request(parts.method.clone(), format!("{upstream}{path}"))
        .headers(headers)
        .body(body)
        .send()
        .await
        .map_err(|_| StatusCode::BAD_GATEWAY)?;
    let status = response.status();
    let mut builder = Response::builder().status(status);
    for (name, value) in response.headers() {
        if name != axum::http::header::CONTENT_LENGTH
            && name != axum::http::header::TRANSFER_ENCODING
        {
            builder = builder.header(name, value);
        }
    }
    let events = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    let tamper = shared.tamper.lock().expect("lock").clone();
    // Untouched responses stream through as they come (events must; a large download should,
    // so that timing through the proxy is the server's, not the proxy's buffering).
    if events || tamper.is_none() {
        let stream = response.bytes_stream().map_err(std::io::Error::other);
        return builder
            .body(Body::from_stream(stream))
            .map_err(|_| StatusCode::BAD_GATEWAY);
    }
    let bytes = response
        .bytes()
        .await
        .map_err(|_| StatusCode::BAD_GATEWAY)?
        .to_vec();
    let bytes = match tamper {
        Some(t) if status.is_success() => t(parts.method.as_str(), &path, bytes),
        _ => bytes,
    };
    builder
        .body(Body::from(bytes))
        .map_err(|_| StatusCode::BAD_GATEWAY)
}
