//! Small records at rest, encrypted with the device's local key: today the certificate chain.

use std::path::{Path, PathBuf};

use rand_core::OsRng;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use strongroom_protocol::crypto::secret_key::SecretKey;
use strongroom_protocol::encoding::Encoded;
use strongroom_protocol::time::Timestamp;

use crate::error::{EngineError, Result};
use crate::home::write_atomic;

/// The certificates this device validated, in chain order, with when the server received each.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredCertificates {
    /// Signed certificates.
    pub certificates: Vec<ByteBuf>,
    /// When the server received each (one per certificate). Files written before reception
    /// times were kept have none: their certificates' own dates stand in.
    #[serde(default)]
    pub received: Vec<Timestamp>,
}

impl Encoded for StoredCertificates {
    const TAG: &'static str = "stored-certificates";
    const VERSION: u8 = 1;
}

/// An encrypted file holding one record type.
pub struct EncryptedFile {
    path: PathBuf,
    key: SecretKey,
}

impl EncryptedFile {
    /// The file at `path`, under `key`.
    pub fn new(path: impl Into<PathBuf>, key: SecretKey) -> Self {
        Self {
            path: path.into(),
            key,
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The record, or `None` if the file does not exist yet.
    pub fn load<T: Encoded>(&self) -> Result<Option<T>> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(EngineError::io(
                    format!("cannot read {}", self.path.display()),
                    e,
                ));
            }
        };
        let plaintext =
            self.key
                .decrypt(&bytes, T::TAG.as_bytes())
                .map_err(|e| EngineError::CorruptFile {
                    path: self.path.clone(),
                    reason: e.to_string(),
                })?;
        T::decode(&plaintext)
            .map(Some)
            .map_err(|e| EngineError::corrupt(&self.path, e))
    }

    /// Replaces the record, atomically and durably.
    pub fn save<T: Encoded>(&self, record: &T) -> Result<()> {
        let ciphertext = self
            .key
            .encrypt(&mut OsRng, &record.encode(), T::TAG.as_bytes());
        write_atomic(&self.path, &ciphertext)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_encrypted() {
        let dir = tempfile::tempdir().unwrap();
        let file = EncryptedFile::new(dir.path().join("c.bin"), SecretKey::from_bytes([1; 32]));
        assert!(file.load::<StoredCertificates>().unwrap().is_none());
        let record = StoredCertificates {
            certificates: vec![ByteBuf::from(b"certificate-bytes".to_vec())],
            received: vec![Timestamp::from_micros(1)],
        };
        file.save(&record).unwrap();
        assert_eq!(file.load::<StoredCertificates>().unwrap().unwrap(), record);
        let raw = std::fs::read(file.path()).unwrap();
        assert!(!raw.windows(17).any(|w| w == b"certificate-bytes"));
        let other = EncryptedFile::new(file.path(), SecretKey::from_bytes([2; 32]));
        assert!(matches!(
            other.load::<StoredCertificates>(),
            Err(EngineError::CorruptFile { .. })
        ));
    }
}
