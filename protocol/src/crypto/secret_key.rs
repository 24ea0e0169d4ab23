//! XChaCha20-Poly1305 with random 192-bit nonces: `nonce || ciphertext || tag`.
//!
//! XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha) is HChaCha20 deriving a per-nonce subkey from
//! the key and the nonce's first 16 bytes, then the IETF ChaCha20-Poly1305 AEAD under that
//! subkey with the nonce's last 8 bytes. HChaCha20 comes from RustCrypto's `chacha20`; the AEAD
//! from `ring`, whose assembly runs about twice as fast as the portable implementation, which
//! matters because every block of every file passes through here (see docs/architecture.md
//! §10). The long-term key never enters `ring`: only the subkey, which opens one nonce's message.

use super::CryptoError;
use super::extended_nonce;
use chacha20::cipher::consts::U10;
use rand_core::CryptoRngCore;
use ring::aead::{CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use serde::{Deserialize, Serialize};
use std::fmt;
use zeroize::{Zeroize, ZeroizeOnDrop};

pub use super::extended_nonce::{NONCE_LEN, TAG_LEN};

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
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        extended_nonce::seal(&|n| self.subkey(n), &nonce, plaintext, aad)
    }

    /// HChaCha20: the per-nonce AEAD key and the 96-bit nonce to use with it.
    fn subkey(&self, nonce: &[u8; NONCE_LEN]) -> (LessSafeKey, Nonce) {
        let mut prefix = [0u8; 16];
        prefix.copy_from_slice(&nonce[..16]);
        let mut subkey: [u8; 32] =
            chacha20::hchacha::<U10>((&self.0).into(), &prefix.into()).into();
        let cipher = LessSafeKey::new(
            UnboundKey::new(&CHACHA20_POLY1305, &subkey).expect("a 32-byte ChaCha20 key"),
        );
        subkey.zeroize();
        let mut inner = [0u8; 12];
        inner[4..].copy_from_slice(&nonce[16..]);
        (cipher, Nonce::assume_unique_for_key(inner))
    }

    /// Decrypts what [`SecretKey::encrypt`] produced with the same `aad`.
    pub fn decrypt(&self, data: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.decrypt_owned(data.to_vec(), aad)
    }

    /// Decrypts in place: the buffer that held `nonce || ciphertext || tag` becomes the
    /// plaintext, with no second allocation.
    pub fn decrypt_owned(&self, data: Vec<u8>, aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        extended_nonce::open(&|n| self.subkey(n), data, aad)
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
