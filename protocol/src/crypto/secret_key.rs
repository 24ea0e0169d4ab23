//! XChaCha20-Poly1305 with random 192-bit nonces: `nonce || ciphertext || tag`.

use super::CryptoError;
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};
use std::fmt;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Length of the random nonce prepended to every ciphertext.
pub const NONCE_LEN: usize = 24;
/// Length of the Poly1305 tag appended to every ciphertext.
pub const TAG_LEN: usize = 16;

/// A 256-bit symmetric key; zeroized on drop.
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(transparent)]
pub struct SecretKey(#[serde(with = "serde_bytes")] [u8; 32]);

impl SecretKey {
    /// A new random key.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        let mut bytes = [0u8; 32];
        rng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// From 32 secret bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The secret bytes (for key derivation; never for storage in clear).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Encrypts `plaintext`, authenticating `aad` with it.
    pub fn encrypt(&self, rng: &mut impl CryptoRngCore, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        // One allocation, encrypted in place: large blocks are neither copied nor reallocated.
        let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        let tag = cipher
            .encrypt_in_place_detached(XNonce::from_slice(&nonce), aad, &mut out[NONCE_LEN..])
            .expect("XChaCha20-Poly1305 encrypts any message that fits in memory");
        out.extend_from_slice(&tag);
        out
    }

    /// Decrypts what [`SecretKey::encrypt`] produced with the same `aad`.
    pub fn decrypt(&self, data: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.decrypt_owned(data.to_vec(), aad)
    }

    /// Decrypts in place: the buffer that held `nonce || ciphertext || tag` becomes the
    /// plaintext, with no second allocation.
    pub fn decrypt_owned(&self, mut data: Vec<u8>, aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if data.len() < NONCE_LEN + TAG_LEN {
            return Err(CryptoError::MalformedCiphertext);
        }
        let tag_at = data.len() - TAG_LEN;
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&data[..NONCE_LEN]);
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&data[tag_at..]);
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        cipher
            .decrypt_in_place_detached(
                XNonce::from_slice(&nonce),
                aad,
                &mut data[NONCE_LEN..tag_at],
                (&tag).into(),
            )
            .map_err(|_| CryptoError::DecryptionFailed)?;
        data.truncate(tag_at);
        data.drain(..NONCE_LEN);
        Ok(data)
    }
}

impl PartialEq for SecretKey {
    /// Constant time.
    fn eq(&self, other: &Self) -> bool {
        use subtle::ConstantTimeEq;
        self.0.ct_eq(&other.0).into()
    }
}
impl Eq for SecretKey {}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::OsRng;

    #[test]
    fn round_trip_and_tamper() {
        let key = SecretKey::generate(&mut OsRng);
        let mut ct = key.encrypt(&mut OsRng, b"secret", b"aad");
        assert_eq!(ct.len(), NONCE_LEN + 6 + TAG_LEN);
        assert_eq!(key.decrypt(&ct, b"aad").unwrap(), b"secret");
        assert_eq!(
            key.decrypt(&ct, b"other"),
            Err(CryptoError::DecryptionFailed)
        );
        ct[30] ^= 1;
        assert_eq!(key.decrypt(&ct, b"aad"), Err(CryptoError::DecryptionFailed));
        assert_eq!(
            key.decrypt(&ct[..10], b"aad"),
            Err(CryptoError::MalformedCiphertext)
        );
        let other = SecretKey::generate(&mut OsRng);
        assert!(
            other
                .decrypt(&key.encrypt(&mut OsRng, b"x", b""), b"")
                .is_err()
        );
    }

    #[test]
    fn xchacha20poly1305_draft_vector() {
        // draft-irtf-cfrg-xchacha-03, appendix A.3.1.
        let hex = |s: &str| data_encoding::HEXLOWER.decode(s.as_bytes()).unwrap();
        let key: [u8; 32] = hex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f")
            .try_into()
            .unwrap();
        let nonce = hex("404142434445464748494a4b4c4d4e4f5051525354555657");
        let aad = hex("50515253c0c1c2c3c4c5c6c7");
        let plaintext = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.";
        let mut data = nonce.clone();
        let expected_ct = hex(
            "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b4522f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff921f9664c97637da9768812f615c68b13b52ec0875924c1c7987947deafd8780acf49",
        );
        data.extend_from_slice(&expected_ct);
        let decrypted = SecretKey::from_bytes(key).decrypt(&data, &aad).unwrap();
        assert_eq!(decrypted, plaintext);
    }
}
