//! Short authentication strings: the 4-character codes two people read to each other to confirm
//! that no one sits between their devices.
//!
//! Each code carries 20 bits, written with 4 characters of an alphabet of 32 symbols without the
//! look-alikes `0 O 1 I`. The codes are a MAC over both parties' nonces, keyed by the channel key,
//! so a relay that substituted its own keys ends up with different channel keys on each side and,
//! because the claimer committed to its nonce first, cannot steer the codes into agreement.

use crate::crypto::hash::{Digest, derive_key, mac};
use crate::crypto::secret_key::SecretKey;
use rand_core::CryptoRngCore;
use std::fmt;
use std::str::FromStr;

/// The 32 symbols of a code.
pub const ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
/// Length of a nonce in the exchange.
pub const NONCE_LEN: usize = 32;
/// How many candidates a person chooses from.
pub const CANDIDATES: usize = 4;

const COMMITMENT_CONTEXT: &str = "strongroom 2026-11 sas nonce commitment";
const SAS_KEY_CONTEXT: &str = "strongroom 2026-11 sas codes";

/// A 4-character code.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SasCode([u8; 4]);

impl SasCode {
    /// The code that writes the low 20 bits of `bits`.
    pub fn from_bits(bits: u32) -> Self {
        let mut code = [0u8; 4];
        for (i, c) in code.iter_mut().enumerate() {
            *c = ALPHABET[((bits >> (15 - 5 * i)) & 0x1f) as usize];
        }
        Self(code)
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("codes are ASCII")
    }
}

impl fmt::Display for SasCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for SasCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SasCode({})", self.as_str())
    }
}

/// A typed code that is not 4 symbols of the alphabet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a code: a code is 4 characters from {alphabet}", alphabet = std::str::from_utf8(ALPHABET).unwrap())]
pub struct InvalidSasCode(String);

impl FromStr for SasCode {
    type Err = InvalidSasCode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let upper = s.trim().to_ascii_uppercase();
        let bytes = upper.as_bytes();
        if bytes.len() != 4 || !bytes.iter().all(|b| ALPHABET.contains(b)) {
            return Err(InvalidSasCode(s.chars().take(16).collect()));
        }
        Ok(Self(bytes.try_into().expect("length checked")))
    }
}

/// The commitment to a nonce that the claimer sends before seeing the greeter's nonce.
pub fn commitment(nonce: &[u8; NONCE_LEN]) -> Digest {
    Digest::from_bytes(derive_key(COMMITMENT_CONTEXT, nonce))
}

/// The two codes of an exchange: the one the greeter reads aloud and the one the claimer reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SasCodes {
    /// Shown by the greeter, picked by the claimer.
    pub greeter: SasCode,
    /// Shown by the claimer, picked by the greeter.
    pub claimer: SasCode,
}

/// Computes both codes from the channel key and both nonces.
pub fn codes(
    channel_key: &SecretKey,
    greeter_nonce: &[u8; NONCE_LEN],
    claimer_nonce: &[u8; NONCE_LEN],
) -> SasCodes {
    let key = derive_key(SAS_KEY_CONTEXT, channel_key.as_bytes());
    let mut input = [0u8; 2 * NONCE_LEN];
    input[..NONCE_LEN].copy_from_slice(greeter_nonce);
    input[NONCE_LEN..].copy_from_slice(claimer_nonce);
    let digest = mac(&key, &input);
    let d = digest.as_bytes();
    // 40 bits: the first 20 for the greeter, the next 20 for the claimer.
    let bits = u64::from_be_bytes([0, 0, 0, d[0], d[1], d[2], d[3], d[4]]);
    SasCodes {
        greeter: SasCode::from_bits((bits >> 20) as u32),
        claimer: SasCode::from_bits(bits as u32),
    }
}

/// Four distinct candidates in random order, one of them `right`.
pub fn candidates(right: SasCode, rng: &mut impl CryptoRngCore) -> [SasCode; CANDIDATES] {
    let mut out = [right; CANDIDATES];
    let mut filled = 1;
    while filled < CANDIDATES {
        let candidate = SasCode::from_bits(rng.next_u32());
        if !out[..filled].contains(&candidate) {
            out[filled] = candidate;
            filled += 1;
        }
    }
    // Fisher-Yates, so that the right code is not always first.
    for i in (1..CANDIDATES).rev() {
        let j = (rng.next_u32() as usize) % (i + 1);
        out.swap(i, j);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::{OsRng, RngCore};

    #[test]
    fn codes_use_the_alphabet_and_parse_back() {
        for bits in [0, 1, 0xfffff, 0x12345] {
            let code = SasCode::from_bits(bits);
            assert_eq!(code.as_str().len(), 4);
            assert_eq!(
                code.to_string().to_lowercase().parse::<SasCode>().unwrap(),
                code
            );
        }
        assert_eq!(SasCode::from_bits(0).as_str(), "AAAA");
        assert_eq!(SasCode::from_bits(0xfffff).as_str(), "9999");
        assert!("AB0I".parse::<SasCode>().is_err());
        assert!("ABCDE".parse::<SasCode>().is_err());
    }

    #[test]
    fn twenty_bits_each() {
        // Every 20-bit value gives a distinct code.
        let mut seen = std::collections::HashSet::new();
        for bits in (0..1u32 << 20).step_by(997) {
            assert!(seen.insert(SasCode::from_bits(bits)));
        }
    }

    #[test]
    fn codes_depend_on_key_and_nonces() {
        let k1 = SecretKey::from_bytes([1; 32]);
        let k2 = SecretKey::from_bytes([2; 32]);
        let a = codes(&k1, &[3; 32], &[4; 32]);
        assert_eq!(a, codes(&k1, &[3; 32], &[4; 32]));
        assert_ne!(a, codes(&k2, &[3; 32], &[4; 32]));
        assert_ne!(a, codes(&k1, &[4; 32], &[3; 32]));
        // The stored codes were computed independently with Python's `blake3` package.
        assert_eq!(
            format!("{} {}", a.greeter, a.claimer),
            include_str!("../tests/vectors/sas-codes.txt").trim()
        );
    }

    #[test]
    fn candidates_hold_the_right_code_once() {
        for _ in 0..100 {
            let right = SasCode::from_bits(OsRng.next_u32());
            let c = candidates(right, &mut OsRng);
            assert_eq!(c.iter().filter(|x| **x == right).count(), 1);
            let unique: std::collections::HashSet<_> = c.iter().collect();
            assert_eq!(unique.len(), CANDIDATES);
        }
    }

    #[test]
    fn commitment_binds_the_nonce() {
        assert_ne!(commitment(&[0; 32]), commitment(&[1; 32]));
    }
}
