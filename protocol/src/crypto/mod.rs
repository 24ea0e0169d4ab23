//! The cryptographic primitives, each in its own small module, with secrets zeroized on drop.
//!
//! - [`signing`]: Ed25519 signatures (device keys, the organization root key).
//! - [`sealed_box`]: X25519 sealed boxes (messages to a user's encryption key).
//! - [`secret_key`]: XChaCha20-Poly1305 with random 192-bit nonces.
//! - [`hash`]: BLAKE3 digests, keyed MACs and key derivation.
//! - [`password`]: Argon2id keys from passwords.

pub mod hash;
pub mod password;
pub mod sealed_box;
pub mod secret_key;
pub mod signing;

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
