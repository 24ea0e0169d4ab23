//! The cryptographic primitives, each in its own small module, with secrets zeroized on drop.
//!
//! - [`signing`]: Ed25519 signatures (device keys, the organization root key).
//! - [`sealed_box`]: X25519 sealed boxes (messages to a user's encryption key).
//! - [`secret_key`]: XChaCha20-Poly1305 with random 192-bit nonces.
//! - [`block_key`]: XAES-256-GCM for file blocks, under a key derived from the workspace key.
//! - [`hash`]: BLAKE3 digests, keyed MACs and key derivation.
//! - [`password`]: Argon2id keys from passwords.

pub mod block_key;
mod extended_nonce;
pub mod hash;
pub mod password;
pub mod sealed_box;
pub mod secret_key;
pub mod signing;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Why a cryptographic operation failed. Deliberately terse: it never says more than "no".
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// A signature does not verify under the expected key.
    #[error("bad signature")]
    BadSignature,
    /// Ciphertext could not be decrypted: wrong key, or tampered data.
    #[error("decryption failed (wrong key or tampered data)")]
    DecryptionFailed,
    /// Input is too short or malformed for this operation.
    #[error("malformed ciphertext")]
    MalformedCiphertext,
    /// A public key is unusable (a low-order point gives a predictable shared secret).
    #[error("unusable public key")]
    WeakPublicKey,
    /// Key derivation from a password failed (parameters out of range).
    #[error("invalid password key parameters: {0}")]
    PasswordParameters(&'static str),
}

/// 32 secret bytes inside an encrypted container; zeroized on drop.
#[derive(Clone, zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
pub struct SecretBytes(pub [u8; 32]);

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBytes(..)")
    }
}

impl PartialEq for SecretBytes {
    fn eq(&self, other: &Self) -> bool {
        use subtle::ConstantTimeEq;
        self.0.ct_eq(&other.0).into()
    }
}
impl Eq for SecretBytes {}

impl Serialize for SecretBytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serde_bytes::serialize(&self.0, s)
    }
}

impl<'de> Deserialize<'de> for SecretBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self(serde_bytes::deserialize(d)?))
    }
}
