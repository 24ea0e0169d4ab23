//! BLAKE3: content digests, keyed MACs, and key derivation with distinct context strings.

use serde::{Deserialize, Serialize};
use std::fmt;
use subtle::ConstantTimeEq;

/// A BLAKE3 digest of public data.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Digest(#[serde(with = "serde_bytes")] [u8; 32]);

impl Digest {
    /// The digest of `data`.
    pub fn of(data: &[u8]) -> Self {
        Self(*blake3::hash(data).as_bytes())
    }

    /// From raw bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Constant-time comparison, for digests that act as commitments or MACs.
    pub fn ct_eq(&self, other: &Digest) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", data_encoding::HEXLOWER.encode(&self.0))
    }
}

/// A keyed BLAKE3 MAC of `data`.
pub fn mac(key: &[u8; 32], data: &[u8]) -> Digest {
    Digest(*blake3::keyed_hash(key, data).as_bytes())
}

/// Derives 32 bytes of key material from `material` under a context string that names its
/// single purpose (e.g. `"strongroom 2026-11 sealed box"`).
pub fn derive_key(context: &str, material: &[u8]) -> [u8; 32] {
    blake3::derive_key(context, material)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blake3_reference_vector() {
        // The empty input, from BLAKE3's official test vectors.
        assert_eq!(
            data_encoding::HEXLOWER.encode(Digest::of(b"").as_bytes()),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
    }

    #[test]
    fn contexts_separate_keys() {
        assert_ne!(derive_key("a", b"x"), derive_key("b", b"x"));
        assert_ne!(mac(&[1; 32], b"x"), mac(&[2; 32], b"x"));
    }
}
