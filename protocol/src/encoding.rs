//! The envelope of every serialized object: `[tag, format version, body]` in MessagePack.
//!
//! A reader always knows what it holds: a device file cannot be mistaken for a certificate, and
//! a later format version is refused with a clear error instead of being misread.

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// A type that travels or rests as bytes, under its own tag and format version.
pub trait Encoded: Serialize + DeserializeOwned {
    /// The type tag written first in every encoding of this type.
    const TAG: &'static str;
    /// The format version this code writes and reads.
    const VERSION: u8;

    /// Encodes `self` with its tag and version.
    fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    /// Decodes bytes written by [`Encoded::encode`], checking tag, version and trailing bytes.
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        decode(bytes)
    }
}

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The bytes are not a well-formed envelope or body.
    #[error("malformed {expected}: {reason}")]
    Malformed {
        /// The tag that was expected.
        expected: &'static str,
        /// What went wrong, from the decoder.
        reason: String,
    },
    /// The envelope holds another type of object.
    #[error("expected a {expected} but found a {found}")]
    WrongType {
        /// The tag that was expected.
        expected: &'static str,
        /// The tag that was found (truncated if long).
        found: String,
    },
    /// The envelope holds a format version this code does not read.
    #[error("unsupported {tag} format version {found} (this build reads version {supported})")]
    UnsupportedVersion {
        /// The tag of the object.
        tag: &'static str,
        /// The version that was found.
        found: u8,
        /// The version this build reads.
        supported: u8,
    },
    /// Bytes follow the object.
    #[error("{tag}: {count} unexpected trailing bytes")]
    TrailingBytes {
        /// The tag of the object.
        tag: &'static str,
        /// How many bytes follow.
        count: usize,
    },
    /// A field holds a value outside its domain (a bad email, a key of the wrong length...).
    #[error("invalid {field}: {reason}")]
    InvalidField {
        /// The field.
        field: &'static str,
        /// Why it is invalid.
        reason: String,
    },
}

/// Encodes a value with its tag and version.
pub fn encode<T: Encoded>(value: &T) -> Vec<u8> {
    rmp_serde::to_vec_named(&(T::TAG, T::VERSION, value))
        .expect("serializing protocol types into memory cannot fail")
}

/// How deeply values may nest. Protocol objects nest a few levels; a hostile input nested a
/// thousand levels deep must not exhaust the decoding thread's stack.
pub const MAX_DEPTH: usize = 32;

fn deserializer<'a, 'b>(
    reader: &'a mut &'b [u8],
) -> rmp_serde::Deserializer<rmp_serde::decode::ReadReader<&'a mut &'b [u8]>> {
    let mut deserializer = rmp_serde::Deserializer::new(reader);
    deserializer.set_max_depth(MAX_DEPTH);
    deserializer
}

/// Reads only the tag and version of an envelope.
pub fn peek_tag(bytes: &[u8]) -> Result<(String, u8), DecodeError> {
    let mut reader = bytes;
    let (tag, version, _): (String, u8, IgnoredAny) =
        Deserialize::deserialize(&mut deserializer(&mut reader)).map_err(|e| {
            DecodeError::Malformed {
                expected: "envelope",
                reason: e.to_string(),
            }
        })?;
    Ok((tag, version))
}

/// Decodes an envelope of type `T`.
pub fn decode<T: Encoded>(bytes: &[u8]) -> Result<T, DecodeError> {
    let (tag, version) = peek_tag(bytes).map_err(|e| match e {
        DecodeError::Malformed { reason, .. } => DecodeError::Malformed {
            expected: T::TAG,
            reason,
        },
        other => other,
    })?;
    if tag != T::TAG {
        return Err(DecodeError::WrongType {
            expected: T::TAG,
            found: tag.chars().take(64).collect(),
        });
    }
    if version != T::VERSION {
        return Err(DecodeError::UnsupportedVersion {
            tag: T::TAG,
            found: version,
            supported: T::VERSION,
        });
    }
    let mut reader = bytes;
    let mut deserializer = rmp_serde::Deserializer::new(&mut reader);
    let (_, _, value): (IgnoredAny, IgnoredAny, T) = Deserialize::deserialize(&mut deserializer)
        .map_err(|e| DecodeError::Malformed {
            expected: T::TAG,
            reason: e.to_string(),
        })?;
    if !reader.is_empty() {
        return Err(DecodeError::TrailingBytes {
            tag: T::TAG,
            count: reader.len(),
        });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Sample {
        a: u32,
        b: String,
    }
    impl Encoded for Sample {
        const TAG: &'static str = "sample";
        const VERSION: u8 = 1;
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Other {
        a: u32,
    }
    impl Encoded for Other {
        const TAG: &'static str = "other";
        const VERSION: u8 = 1;
    }

    #[test]
    fn round_trip() {
        let s = Sample {
            a: 7,
            b: "x".into(),
        };
        assert_eq!(Sample::decode(&s.encode()).unwrap(), s);
    }

    #[test]
    fn wrong_tag_is_refused() {
        let bytes = Other { a: 1 }.encode();
        assert!(matches!(
            Sample::decode(&bytes),
            Err(DecodeError::WrongType { expected: "sample", found }) if found == "other"
        ));
    }

    #[test]
    fn future_version_is_refused() {
        let bytes =
            rmp_serde::to_vec_named(&("sample", 2u8, Sample { a: 1, b: "".into() })).unwrap();
        assert!(matches!(
            Sample::decode(&bytes),
            Err(DecodeError::UnsupportedVersion { found: 2, .. })
        ));
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut bytes = Sample { a: 1, b: "".into() }.encode();
        bytes.push(0);
        assert!(matches!(
            Sample::decode(&bytes),
            Err(DecodeError::TrailingBytes { count: 1, .. })
        ));
    }

    #[test]
    fn deep_nesting_is_refused_without_exhausting_the_stack() {
        // [ "sample", 1, [[[[ ... ]]]] ] nested far deeper than any protocol object.
        let mut bytes = vec![0x93, 0xa6];
        bytes.extend_from_slice(b"sample");
        bytes.push(0x01);
        bytes.extend(std::iter::repeat_n(0x91, 100_000));
        bytes.push(0xc0);
        assert!(matches!(
            Sample::decode(&bytes),
            Err(DecodeError::Malformed { .. })
        ));
        assert!(peek_tag(&bytes).is_err());
    }

    #[test]
    fn garbage_is_malformed() {
        for bytes in [
            &b""[..],
            b"\xff\xff",
            b"\x93\xa6sample\x01",
            b"\x93\xa6sample\x01\x80",
        ] {
            assert!(Sample::decode(bytes).is_err(), "{bytes:?}");
        }
    }
}
