//! X25519 sealed boxes: anyone can seal a message to a user's public key; only the holder of the
//! private key opens it. Layout: `ephemeral public key (32) || XChaCha20-Poly1305 ciphertext`.
//!
//! The box key is derived from the Diffie-Hellman secret and both public keys, so a box cannot be
//! re-targeted to another recipient.

use super::CryptoError;
use super::hash::derive_key;
use super::secret_key::SecretKey;
use rand_core::CryptoRngCore;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use zeroize::Zeroizing;

const SEALED_BOX_CONTEXT: &str = "strongroom 2026-11 sealed box";

/// An X25519 private key; zeroized on drop by `x25519-dalek`.
#[derive(Clone)]
pub struct PrivateKey(x25519_dalek::StaticSecret);

impl PrivateKey {
    /// A new random key.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        Self(x25519_dalek::StaticSecret::random_from_rng(rng))
    }

    /// From its 32 secret bytes.
    pub fn from_secret_bytes(bytes: [u8; 32]) -> Self {
        Self(x25519_dalek::StaticSecret::from(bytes))
    }

    /// Its 32 secret bytes, zeroized on drop.
    pub fn to_secret_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// The public half.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(x25519_dalek::PublicKey::from(&self.0))
    }

    /// The Diffie-Hellman secret with `peer`; refuses low-order points, which would give a
    /// secret that an attacker knows.
    pub fn diffie_hellman(&self, peer: &PublicKey) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
        let shared = self.0.diffie_hellman(&peer.0);
        if !shared.was_contributory() {
            return Err(CryptoError::WeakPublicKey);
        }
        Ok(Zeroizing::new(shared.to_bytes()))
    }

    /// Opens a box sealed to this key.
    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() < 32 {
            return Err(CryptoError::MalformedCiphertext);
        }
        let (ephemeral, ciphertext) = sealed.split_at(32);
        let ephemeral = PublicKey::from_bytes(ephemeral.try_into().expect("split at 32"));
        let key = box_key(self, &ephemeral, &ephemeral, &self.public_key())?;
        key.decrypt(ciphertext, b"")
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey(public {:?})", self.public_key())
    }
}

/// An X25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(x25519_dalek::PublicKey);

impl PublicKey {
    /// From 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(x25519_dalek::PublicKey::from(bytes))
    }

    /// The 32 bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// Seals `plaintext` so that only the holder of this key's private half can open it.
    pub fn seal(
        &self,
        rng: &mut impl CryptoRngCore,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let ephemeral = PrivateKey::generate(rng);
        let ephemeral_public = ephemeral.public_key();
        let key = box_key(&ephemeral, self, &ephemeral_public, self)?;
        let mut out = ephemeral_public.to_bytes().to_vec();
        out.extend_from_slice(&key.encrypt(rng, plaintext, b""));
        Ok(out)
    }
}

fn box_key(
    own: &PrivateKey,
    peer: &PublicKey,
    ephemeral: &PublicKey,
    recipient: &PublicKey,
) -> Result<SecretKey, CryptoError> {
    let shared = own.diffie_hellman(peer)?;
    let mut material = Zeroizing::new([0u8; 96]);
    material[..32].copy_from_slice(shared.as_ref());
    material[32..64].copy_from_slice(&ephemeral.to_bytes());
    material[64..].copy_from_slice(&recipient.to_bytes());
    Ok(SecretKey::from_bytes(derive_key(
        SEALED_BOX_CONTEXT,
        material.as_ref(),
    )))
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PublicKey({})",
            data_encoding::HEXLOWER.encode(&self.to_bytes())
        )
    }
}

impl Serialize for PublicKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serde_bytes::serialize(&self.to_bytes(), s)
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let bytes: [u8; 32] = serde_bytes::deserialize(d)?;
        Ok(Self::from_bytes(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::OsRng;

    #[test]
    fn seal_and_open() {
        let bob = PrivateKey::generate(&mut OsRng);
        let sealed = bob.public_key().seal(&mut OsRng, b"workspace key").unwrap();
        assert_eq!(bob.open(&sealed).unwrap(), b"workspace key");
        let eve = PrivateKey::generate(&mut OsRng);
        assert_eq!(eve.open(&sealed), Err(CryptoError::DecryptionFailed));
        assert_eq!(
            bob.open(&sealed[..20]),
            Err(CryptoError::MalformedCiphertext)
        );
    }

    #[test]
    fn low_order_points_are_refused() {
        let bob = PrivateKey::generate(&mut OsRng);
        let zero = PublicKey::from_bytes([0; 32]);
        assert_eq!(bob.diffie_hellman(&zero), Err(CryptoError::WeakPublicKey));
        assert!(zero.seal(&mut OsRng, b"x").is_err());
    }

    #[test]
    fn rfc7748_diffie_hellman_vector() {
        // RFC 7748 section 6.1.
        let hex = |s: &str| -> [u8; 32] {
            data_encoding::HEXLOWER
                .decode(s.as_bytes())
                .unwrap()
                .try_into()
                .unwrap()
        };
        let alice = PrivateKey::from_secret_bytes(hex(
            "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
        ));
        let bob_public = PublicKey::from_bytes(hex(
            "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f",
        ));
        assert_eq!(
            *alice.diffie_hellman(&bob_public).unwrap(),
            hex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
        );
    }
}
