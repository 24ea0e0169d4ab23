//! The device's view of the organization: the certificate chain, validated up to the pinned root
//! key on every fetch and kept (encrypted) in the local store. A certificate that fails
//! validation is an error and changes nothing.

use serde_bytes::ByteBuf;
use strongroom_protocol::crypto::signing::VerifyKey;
use strongroom_protocol::trust::CertificateChain;
use strongroom_protocol::wire::{CERTIFICATES_PAGE, CertificatesResponse};

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

impl TrustStore {
    /// Opens the stored chain (validating it again from the root key), or starts an empty one.
    pub fn open(root: VerifyKey, file: EncryptedFile) -> Result<Self> {
        let stored: StoredCertificates = file.load()?.unwrap_or_default();
        let chain = CertificateChain::from_certificates(
            root,
            stored.certificates.iter().map(|c| c.as_slice()),
        )
        .map_err(|e| EngineError::CorruptFile {
            path: file.path().to_path_buf(),
            reason: e.to_string(),
        })?;
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

    /// The accepted certificates, in order.
    pub fn into_certificates(self) -> Vec<ByteBuf> {
        self.stored.certificates
    }

    /// The validated chain.
    pub fn chain(&self) -> &CertificateChain {
        &self.chain
    }

    /// Validates certificates that follow the chain and, if all are valid, stores them.
    pub fn accept(&mut self, certificates: Vec<ByteBuf>) -> Result<usize> {
        if certificates.is_empty() {
            return Ok(0);
        }
        let mut chain = self.chain.clone();
        for c in &certificates {
            chain.add(c)?;
        }
        let mut stored = self.stored.clone();
        let added = certificates.len();
        stored.certificates.extend(certificates);
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
