//! Doing by hand what a client does, for tests that need what no honest client keeps: the
//! organization's root key, or requests with chosen timestamps and signatures.

use std::path::Path;

use strongroom_engine::bootstrap::{self, NewUser};
use strongroom_engine::device_file::{self, DeviceKeys, KdfCost, KdfPolicy};
use strongroom_engine::home::Home;
use strongroom_engine::password::Password;
use strongroom_protocol::crypto::hash::Digest;
use strongroom_protocol::crypto::signing::SigningKey;
use strongroom_protocol::encoding::Encoded;
use strongroom_protocol::links::BootstrapLink;
use strongroom_protocol::time::Timestamp;
use strongroom_protocol::wire::{
    ErrorResponse, HEADER_DEVICE, HEADER_SIGNATURE, HEADER_TIMESTAMP, RequestSignature,
};

use crate::member::PASSWORD;

/// Now, as the protocol counts time.
pub fn now() -> Timestamp {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_micros() as i64;
    Timestamp::from_micros(micros)
}

/// Bootstraps the organization of `link` like `strongroom bootstrap`, writing a working home at
/// `home`, but keeps and returns the root signing key, which an honest client discards.
pub fn bootstrap_keeping_root(link: &str, home: &Path, email: &str, name: &str) -> SigningKey {
    let link: BootstrapLink = link.parse().expect("bootstrap link");
    let user = NewUser {
        email: email.parse().expect("email"),
        human_name: name.parse().expect("name"),
        device_label: "laptop".parse().expect("label"),
    };
    let plan = bootstrap::plan(&link, user);
    let root = plan.root.clone();
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(bootstrap::submit(
            plan,
            &Home::new(home),
            &Password::new(PASSWORD),
            KdfCost::INSECURE_FAST,
        ))
        .expect("bootstrap");
    root
}

/// The keys of a test device (whose device file is weak, as every test device's).
pub fn keys(home: &Path) -> DeviceKeys {
    device_file::load(
        &Home::new(home).device_file(),
        &Password::new(PASSWORD),
        KdfPolicy::AllowWeak,
    )
    .expect("device file")
}

/// A request signed by `keys` at `timestamp` (the signature may be made by `signer` instead).
pub struct SignedRequest<'a> {
    /// The device whose id goes into the headers.
    pub keys: &'a DeviceKeys,
    /// `GET`, `POST`...
    pub method: &'a str,
    /// Path and query.
    pub path: String,
    /// The body.
    pub body: Vec<u8>,
    /// The signed timestamp.
    pub timestamp: Timestamp,
    /// Signs instead of the device's key.
    pub signer: Option<SigningKey>,
    /// Sent instead of the signed body.
    pub sent_body: Option<Vec<u8>>,
}

impl<'a> SignedRequest<'a> {
    /// A correctly signed request.
    pub fn new(keys: &'a DeviceKeys, method: &'a str, path: String, body: Vec<u8>) -> Self {
        Self {
            keys,
            method,
            path,
            body,
            timestamp: now(),
            signer: None,
            sent_body: None,
        }
    }

    /// Sends it; returns the HTTP status and, for errors, the decoded error.
    pub fn send(self) -> (u16, Option<ErrorResponse>) {
        let (status, body) = self.send_times(1).pop().expect("one answer");
        (status, ErrorResponse::decode(&body).ok())
    }

    /// Sends it and returns the status and the raw answer.
    pub fn send_raw(self) -> (u16, Vec<u8>) {
        self.send_times(1).pop().expect("one answer")
    }

    /// Sends the very same signed request `times` times (a replay after the first); returns
    /// each status and raw answer.
    pub fn send_times(self, times: usize) -> Vec<(u16, Vec<u8>)> {
        let signed = RequestSignature {
            organization: self.keys.organization.clone(),
            device: self.keys.device_id,
            method: self.method.to_owned(),
            path: self.path.clone(),
            timestamp: self.timestamp,
            body_digest: Digest::of(&self.body),
        };
        let key = self.signer.unwrap_or_else(|| self.keys.signing_key());
        let signature = key.sign(&signed.encode());
        let body = self.sent_body.unwrap_or(self.body);
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        runtime.block_on(async {
            let http = reqwest::Client::new();
            let mut answers = Vec::with_capacity(times);
            for _ in 0..times {
                let response = http
                    .request(
                        self.method.parse().expect("method"),
                        format!("{}{}", self.keys.server, self.path),
                    )
                    .header(HEADER_DEVICE, self.keys.device_id.to_string())
                    .header(HEADER_TIMESTAMP, self.timestamp.as_micros().to_string())
                    .header(
                        HEADER_SIGNATURE,
                        data_encoding::BASE64.encode(&signature.to_bytes()),
                    )
                    .body(body.clone())
                    .send()
                    .await
                    .expect("request");
                let status = response.status().as_u16();
                let bytes = response.bytes().await.expect("body");
                answers.push((status, bytes.to_vec()));
            }
            answers
        })
    }
}
