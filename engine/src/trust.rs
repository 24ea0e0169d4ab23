//! The device's view of the organization: the certificate chain, validated up to the pinned root
//! key on every fetch and kept (encrypted) in the local store. A certificate that fails
//! validation is an error and changes nothing.

use serde_bytes::ByteBuf;
use strongroom_protocol::certificates::SignedCertificate;
use strongroom_protocol::crypto::signing::VerifyKey;
use strongroom_protocol::encoding::Encoded;
use strongroom_protocol::time::{Timestamp, check_received};
use strongroom_protocol::trust::CertificateChain;
use strongroom_protocol::wire::{CERTIFICATES_PAGE, CertificatesResponse, ReceivedCertificate};

use crate::clock::now;
use crate::connection::{Connection, Credentials};
use crate::error::{EngineError, Result};
use crate::local_store::{EncryptedFile, StoredCertificates};

/// The validated chain and where it is stored.
pub struct TrustStore {
    chain: CertificateChain,
    stored: StoredCertificates,
    /// `None` while the chain is only checked in memory (a claimer before its device exists).
    file: Option<EncryptedFile>,
}

/// When the server received each stored certificate; for files written before reception times
/// were kept, each certificate's own date (it was checked when it arrived).
fn reception_times(stored: &StoredCertificates) -> std::result::Result<Vec<Timestamp>, String> {
    if stored.received.len() == stored.certificates.len() {
        return Ok(stored.received.clone());
    }
    if !stored.received.is_empty() {
        return Err("the reception times do not match the certificates".into());
    }
    stored
        .certificates
        .iter()
        .map(|bytes| {
            SignedCertificate::decode(bytes)
                .and_then(|s| s.unverified())
                .map(|c| c.timestamp())
                .map_err(|e| e.to_string())
        })
        .collect()
}

impl TrustStore {
    /// Opens the stored chain (validating it again from the root key), or starts an empty one.
    pub fn open(root: VerifyKey, file: EncryptedFile) -> Result<Self> {
        let mut stored: StoredCertificates = file.load()?.unwrap_or_default();
        let corrupt = |reason: String| EngineError::CorruptFile {
            path: file.path().to_path_buf(),
            reason,
        };
        stored.received = reception_times(&stored).map_err(corrupt)?;
        let chain = CertificateChain::from_certificates(
            root,
            stored
                .certificates
                .iter()
                .map(|c| c.as_slice())
                .zip(stored.received.iter().copied()),
        )
        .map_err(|e| corrupt(e.to_string()))?;
        Ok(Self {
            chain,
            stored,
            file: Some(file),
        })
    }

    /// An empty chain checked in memory only.
    pub fn in_memory(root: VerifyKey) -> Self {
        Self {
            chain: CertificateChain::new(root),
            stored: StoredCertificates::default(),
            file: None,
        }
    }

    /// The accepted certificates, in order, with their reception times.
    pub fn into_certificates(self) -> Vec<ReceivedCertificate> {
        self.stored
            .certificates
            .into_iter()
            .zip(self.stored.received)
            .map(|(certificate, received)| ReceivedCertificate {
                certificate,
                received,
            })
            .collect()
    }

    /// The validated chain.
    pub fn chain(&self) -> &CertificateChain {
        &self.chain
    }

    /// Validates certificates that follow the chain and, if all are valid, stores them. Each
    /// must be dated within the clock skew of when the server says it received it, and the
    /// server cannot have received it after this computer's clock (plus the skew).
    pub fn accept(&mut self, certificates: Vec<ReceivedCertificate>) -> Result<usize> {
        if certificates.is_empty() {
            return Ok(0);
        }
        let now = now();
        let mut chain = self.chain.clone();
        for c in &certificates {
            check_received(c.received, now)
                .map_err(|e| EngineError::Protocol(format!("a certificate is refused: {e}")))?;
            chain.add(&c.certificate, c.received)?;
        }
        let mut stored = self.stored.clone();
        let added = certificates.len();
        for c in certificates {
            stored.certificates.push(c.certificate);
            stored.received.push(c.received);
        }
        if let Some(file) = &self.file {
            file.save(&stored)?;
        }
        self.chain = chain;
        self.stored = stored;
        Ok(added)
    }

    /// Fetches the certificates the server added since the last fetch, page by page, and
    /// accepts them.
    pub async fn refresh(
        &mut self,
        connection: &Connection,
        credentials: Credentials<'_>,
        organization: &str,
    ) -> Result<usize> {
        let mut added = 0;
        loop {
            let from = self.chain.len();
            let response: CertificatesResponse = connection
                .call(
                    reqwest::Method::GET,
                    &format!("/authenticated/{organization}/certificates?from={from}"),
                    None,
                    credentials,
                )
                .await?;
            if response.from != from || response.certificates.len() as u64 > CERTIFICATES_PAGE {
                return Err(EngineError::Protocol(format!(
                    "asked for at most {CERTIFICATES_PAGE} certificates from {from}, got {} from {}",
                    response.certificates.len(),
                    response.from
                )));
            }
            let full_page = response.certificates.len() as u64 == CERTIFICATES_PAGE;
            added += self.accept(response.certificates)?;
            if !full_page {
                return Ok(added);
            }
        }
    }
}

/// Certificates this device made itself and the server just took, received now.
pub(crate) fn received_now(certificates: Vec<ByteBuf>) -> Vec<ReceivedCertificate> {
    let received = now();
    certificates
        .into_iter()
        .map(|certificate| ReceivedCertificate {
            certificate,
            received,
        })
        .collect()
}
