//! Signed content: the exact encoded bytes and an Ed25519 signature over them, for manifests and
//! messages. (Certificates use [`crate::certificates::SignedCertificate`], which has the same
//! shape under its own tag.)

use serde::{Deserialize, Serialize};

use crate::crypto::CryptoError;
use crate::crypto::signing::{Signature, SigningKey, VerifyKey};
use crate::encoding::Encoded;

/// Encoded content as it was signed, and the signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signed {
    /// The encoded content, exactly as signed.
    #[serde(with = "serde_bytes")]
    pub content: Vec<u8>,
    /// Ed25519 signature over `content`.
    pub signature: Signature,
}

impl Encoded for Signed {
    const TAG: &'static str = "signed";
    const VERSION: u8 = 1;
}

impl Signed {
    /// Encodes and signs `value`.
    pub fn sign<T: Encoded>(value: &T, key: &SigningKey) -> Self {
        let content = value.encode();
        let signature = key.sign(&content);
        Self { content, signature }
    }

    /// Checks the signature against `key`.
    pub fn verify(&self, key: &VerifyKey) -> Result<(), CryptoError> {
        key.verify(&self.content, &self.signature)
    }
}
