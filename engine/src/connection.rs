//! HTTP to the server: typed bodies, request signing, bearer tokens, event streams.

use std::time::Duration;

use futures_util::StreamExt;
use reqwest::Method;
use strongroom_protocol::crypto::hash::Digest;
use strongroom_protocol::crypto::signing::SigningKey;
use strongroom_protocol::encoding::Encoded;
use strongroom_protocol::ids::{DeviceId, InvitationToken, OrganizationId};
use strongroom_protocol::links::ServerAddr;
use strongroom_protocol::wire::{
    CONTENT_TYPE, ErrorResponse, HEADER_DEVICE, HEADER_SIGNATURE, HEADER_TIMESTAMP,
    MAX_RESPONSE_BYTES, RequestSignature, ServerEvent,
};

use crate::clock::now;
use crate::error::{EngineError, Result};

/// The timestamp of a new signed request: now, but strictly after the previous request of this
/// process, so that two requests never sign the same bytes (the server refuses a signed
/// request it has seen before as a replay).
fn request_time() -> strongroom_protocol::time::Timestamp {
    use std::sync::atomic::{AtomicI64, Ordering};
    static LAST: AtomicI64 = AtomicI64::new(0);
    let now = now().as_micros();
    let mut last = LAST.load(Ordering::Relaxed);
    loop {
        let next = now.max(last + 1);
        match LAST.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return strongroom_protocol::time::Timestamp::from_micros(next),
            Err(seen) => last = seen,
        }
    }
}

/// How a request proves who sends it.
#[derive(Clone, Copy)]
pub enum Credentials<'a> {
    /// Nobody in particular (bootstrap).
    Anonymous,
    /// The holder of an invitation token.
    Invitation(&'a InvitationToken),
    /// A device, signing each request.
    Device {
        /// The organization.
        organization: &'a OrganizationId,
        /// The device.
        device: DeviceId,
        /// Its key.
        key: &'a SigningKey,
    },
}

/// A connection to one server.
#[derive(Clone)]
pub struct Connection {
    http: reqwest::Client,
    server: ServerAddr,
}

impl Connection {
    /// A connection to `server`.
    pub fn new(server: ServerAddr) -> Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| EngineError::Protocol(e.to_string()))?;
        Ok(Self { http, server })
    }

    /// The server.
    pub fn server(&self) -> &ServerAddr {
        &self.server
    }

    fn request(
        &self,
        method: Method,
        path: &str,
        body: Vec<u8>,
        credentials: Credentials<'_>,
    ) -> reqwest::RequestBuilder {
        let mut request = self
            .http
            .request(method.clone(), self.server.join(path))
            .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE);
        match credentials {
            Credentials::Anonymous => {}
            Credentials::Invitation(token) => request = request.bearer_auth(token.to_string()),
            Credentials::Device {
                organization,
                device,
                key,
            } => {
                let signed = RequestSignature {
                    organization: organization.clone(),
                    device,
                    method: method.as_str().to_owned(),
                    path: path.to_owned(),
                    timestamp: request_time(),
                    body_digest: Digest::of(&body),
                };
                let signature = key.sign(&signed.encode());
                request = request
                    .header(HEADER_DEVICE, device.to_string())
                    .header(HEADER_TIMESTAMP, signed.timestamp.as_micros().to_string())
                    .header(
                        HEADER_SIGNATURE,
                        data_encoding::BASE64.encode(&signature.to_bytes()),
                    );
            }
        }
        request.body(body)
    }

    fn unreachable(&self, e: reqwest::Error) -> EngineError {
        EngineError::Unreachable {
            server: self.server.to_string(),
            reason: if e.is_connect() {
                "connection refused or no route (is the server running?)".into()
            } else if e.is_timeout() {
                "timed out".into()
            } else {
                e.to_string()
            },
        }
    }

    /// Sends raw bytes; returns the raw answer or the server's typed refusal.
    pub async fn send_raw(
        &self,
        method: Method,
        path: &str,
        body: Vec<u8>,
        credentials: Credentials<'_>,
    ) -> Result<Vec<u8>> {
        let started = std::time::Instant::now();
        let sent = body.len();
        let response = self
            .request(method.clone(), path, body, credentials)
            .timeout(Duration::from_secs(120))
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        let status = response.status();
        let bytes = self.read_bounded(response).await?;
        // Paths name ids only (tokens travel in headers or bodies): safe to log.
        tracing::debug!(
            %method,
            path,
            status = status.as_u16(),
            sent,
            received = bytes.len(),
            elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
            "request"
        );
        if status.is_success() {
            return Ok(bytes);
        }
        match ErrorResponse::decode(&bytes) {
            Ok(error) => Err(EngineError::Server {
                code: error.code,
                message: error.message,
            }),
            Err(_) => Err(EngineError::Protocol(format!(
                "HTTP {status} without an error body"
            ))),
        }
    }

    /// Reads a response body, refusing more than [`MAX_RESPONSE_BYTES`].
    async fn read_bounded(&self, response: reqwest::Response) -> Result<Vec<u8>> {
        let too_large = || {
            EngineError::Protocol(format!(
                "the answer is larger than {MAX_RESPONSE_BYTES} bytes"
            ))
        };
        if response
            .content_length()
            .is_some_and(|l| l > MAX_RESPONSE_BYTES as u64)
        {
            return Err(too_large());
        }
        // Sized up front when the length is known: no reallocation (and copy) as chunks arrive.
        let mut body = Vec::with_capacity(response.content_length().unwrap_or(0) as usize);
        let mut chunks = response.bytes_stream();
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|e| self.unreachable(e))?;
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// Sends a typed body (or none) and decodes a typed answer.
    pub async fn call<R: Encoded>(
        &self,
        method: Method,
        path: &str,
        body: Option<&dyn ErasedEncoded>,
        credentials: Credentials<'_>,
    ) -> Result<R> {
        let bytes = body.map(|b| b.encode_erased()).unwrap_or_default();
        let answer = self.send_raw(method, path, bytes, credentials).await?;
        R::decode(&answer).map_err(|e| EngineError::Protocol(e.to_string()))
    }

    /// Opens an event stream; events arrive once the returned stream is polled.
    pub async fn events(&self, path: &str, credentials: Credentials<'_>) -> Result<EventStream> {
        let response = self
            .request(Method::GET, path, Vec::new(), credentials)
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        if !response.status().is_success() {
            let status = response.status();
            let bytes = response.bytes().await.unwrap_or_default();
            return Err(match ErrorResponse::decode(&bytes) {
                Ok(error) => EngineError::Server {
                    code: error.code,
                    message: error.message,
                },
                Err(_) => EngineError::Protocol(format!("HTTP {status} on the event stream")),
            });
        }
        Ok(EventStream {
            body: Box::pin(response.bytes_stream()),
            buffer: String::new(),
        })
    }
}

/// Lets `call` take any encodable body without being generic over it.
pub trait ErasedEncoded: Sync {
    /// Encodes with tag and version.
    fn encode_erased(&self) -> Vec<u8>;
}

impl<T: Encoded + Sync> ErasedEncoded for T {
    fn encode_erased(&self) -> Vec<u8> {
        self.encode()
    }
}

type ByteStream =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>;

/// Server-Sent Events, parsed.
pub struct EventStream {
    body: ByteStream,
    buffer: String,
}

impl EventStream {
    /// The next event; `None` when the stream ends. Unknown events are skipped.
    pub async fn next(&mut self) -> Option<ServerEvent> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                if let Some(event) = parse_block(&block) {
                    return Some(event);
                }
                continue;
            }
            match self.body.next().await {
                Some(Ok(chunk)) => {
                    self.buffer
                        .push_str(&String::from_utf8_lossy(&chunk).replace("\r\n", "\n"));
                    if self.buffer.len() > 64 * 1024 {
                        // A well-behaved server never sends such an event; drop the garbage.
                        self.buffer.clear();
                    }
                }
                _ => return None,
            }
        }
    }
}

/// One SSE block (`event:` and `data:` lines) into an event.
pub fn parse_block(block: &str) -> Option<ServerEvent> {
    let mut name = None;
    let mut data = String::new();
    for line in block.lines() {
        if let Some(v) = line.strip_prefix("event:") {
            name = Some(v.trim().to_owned());
        } else if let Some(v) = line.strip_prefix("data:") {
            data.push_str(v.trim());
        }
    }
    ServerEvent::from_sse(&name?, &data).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_blocks() {
        assert_eq!(
            parse_block("event: certificates\ndata: 3\n\n"),
            Some(ServerEvent::Certificates { count: 3 })
        );
        assert_eq!(parse_block(": keep-alive\n\n"), None);
        assert_eq!(parse_block("event: nope\ndata: 1\n\n"), None);
    }
}
