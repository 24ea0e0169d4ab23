//! The device file: everything secret a device holds, encrypted with a key derived from the
//! user's password by Argon2id (salt and cost in the clear header).

use std::path::Path;

use rand_core::OsRng;
use serde::{Deserialize, Serialize};
use strongroom_protocol::crypto::CryptoError;
use strongroom_protocol::crypto::SecretBytes;
use strongroom_protocol::crypto::password::PasswordKeyParams;
use strongroom_protocol::crypto::sealed_box::PrivateKey;
use strongroom_protocol::crypto::secret_key::SecretKey;
use strongroom_protocol::crypto::signing::{SigningKey, VerifyKey};
use strongroom_protocol::encoding::{DecodeError, Encoded};
use strongroom_protocol::ids::{DeviceId, DeviceLabel, Email, HumanName, OrganizationId, UserId};
use strongroom_protocol::links::ServerAddr;
use zeroize::Zeroizing;

use crate::error::{EngineError, Result};
use crate::home::write_atomic;
use crate::password::Password;

/// Argon2id cost for new device files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfCost {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes.
    pub iterations: u32,
}

impl KdfCost {
    /// The default: 64 MiB, three passes.
    pub const DEFAULT: KdfCost = KdfCost {
        memory_kib: PasswordKeyParams::DEFAULT_MEMORY_KIB,
        iterations: PasswordKeyParams::DEFAULT_ITERATIONS,
    };
    /// For tests only: 256 KiB, one pass. Never protects a real device.
    pub const INSECURE_FAST: KdfCost = KdfCost {
        memory_kib: 256,
        iterations: 1,
    };
}

/// The secrets and identity of one device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceKeys {
    /// The server's address.
    pub server: String,
    /// The organization.
    pub organization: OrganizationId,
    /// The pinned trust anchor.
    pub root_verify_key: VerifyKey,
    /// The user.
    pub user_id: UserId,
    /// This device.
    pub device_id: DeviceId,
    /// This device's label.
    pub device_label: DeviceLabel,
    /// The user's email.
    pub email: Email,
    /// The user's name.
    pub human_name: HumanName,
    /// This device's Ed25519 secret.
    pub signing_key: SecretBytes,
    /// The user's X25519 secret.
    pub user_private_key: SecretBytes,
    /// The key that encrypts this device's local files.
    pub local_key: SecretBytes,
}

impl Encoded for DeviceKeys {
    const TAG: &'static str = "device-keys";
    const VERSION: u8 = 1;
}

impl DeviceKeys {
    /// The server's address.
    pub fn server(&self) -> Result<ServerAddr> {
        ServerAddr::parse(&self.server).map_err(|e| EngineError::Protocol(e.to_string()))
    }

    /// This device's signing key.
    pub fn signing_key(&self) -> SigningKey {
        SigningKey::from_secret_bytes(&self.signing_key.0)
    }

    /// The user's private encryption key.
    pub fn user_private_key(&self) -> PrivateKey {
        PrivateKey::from_secret_bytes(self.user_private_key.0)
    }

    /// The local encryption key.
    pub fn local_key(&self) -> SecretKey {
        SecretKey::from_bytes(self.local_key.0)
    }
}

/// The file as stored: the clear KDF header and the encrypted [`DeviceKeys`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceFile {
    /// Argon2id salt and cost.
    pub kdf: PasswordKeyParams,
    /// XChaCha20-Poly1305 of the encoded keys, with the header as associated data.
    #[serde(with = "serde_bytes")]
    pub ciphertext: Vec<u8>,
}

impl Encoded for DeviceFile {
    const TAG: &'static str = "device-file";
    const VERSION: u8 = 1;
}

fn associated_data(kdf: &PasswordKeyParams) -> Vec<u8> {
    let mut aad = b"strongroom device file v1".to_vec();
    aad.extend_from_slice(&rmp_serde::to_vec(kdf).expect("params serialize"));
    aad
}

/// Why a device file could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceFileError {
    /// Not a device file.
    #[error(transparent)]
    Malformed(#[from] DecodeError),
    /// The password is wrong (or the file was tampered with).
    #[error("wrong password")]
    WrongPassword,
    /// The KDF header asks for an unreasonable cost.
    #[error("{0}")]
    Kdf(CryptoError),
}

impl DeviceFile {
    /// Encrypts keys under a password.
    pub fn seal(keys: &DeviceKeys, password: &Password, kdf: PasswordKeyParams) -> Result<Self> {
        let key = kdf
            .derive(password.as_bytes())
            .map_err(|e| EngineError::InvalidInput(e.to_string()))?;
        let plaintext = Zeroizing::new(keys.encode());
        let ciphertext = key.encrypt(&mut OsRng, &plaintext, &associated_data(&kdf));
        Ok(Self { kdf, ciphertext })
    }

    /// Decodes and decrypts file bytes.
    pub fn open(bytes: &[u8], password: &Password) -> Result<DeviceKeys, DeviceFileError> {
        let file = DeviceFile::decode(bytes)?;
        let key = file
            .kdf
            .derive(password.as_bytes())
            .map_err(DeviceFileError::Kdf)?;
        let plaintext = Zeroizing::new(
            key.decrypt(&file.ciphertext, &associated_data(&file.kdf))
                .map_err(|_| DeviceFileError::WrongPassword)?,
        );
        Ok(DeviceKeys::decode(&plaintext)?)
    }
}

/// Writes a new device file; refuses to overwrite one.
pub fn create(path: &Path, keys: &DeviceKeys, password: &Password, cost: KdfCost) -> Result<()> {
    if path.exists() {
        return Err(EngineError::DeviceExists(
            path.parent().unwrap_or(path).to_path_buf(),
        ));
    }
    let kdf = PasswordKeyParams::with_cost(&mut OsRng, cost.memory_kib, cost.iterations);
    write_atomic(path, &DeviceFile::seal(keys, password, kdf)?.encode())
}

/// Opens the device file at `path`.
pub fn load(path: &Path, password: &Password) -> Result<DeviceKeys> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(EngineError::NoDevice(
                path.parent().unwrap_or(path).to_path_buf(),
            ));
        }
        Err(e) => {
            return Err(EngineError::io(
                format!("cannot read {}", path.display()),
                e,
            ));
        }
    };
    DeviceFile::open(&bytes, password).map_err(|e| match e {
        DeviceFileError::WrongPassword => EngineError::WrongPassword(path.to_path_buf()),
        DeviceFileError::Malformed(d) => EngineError::corrupt(path, d),
        DeviceFileError::Kdf(c) => EngineError::CorruptFile {
            path: path.to_path_buf(),
            reason: c.to_string(),
        },
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use strongroom_protocol::crypto::signing::SigningKey;

    pub(crate) fn sample_keys() -> DeviceKeys {
        DeviceKeys {
            server: "http://127.0.0.1:6770".into(),
            organization: "acme".parse().unwrap(),
            root_verify_key: SigningKey::from_secret_bytes(&[1; 32]).verify_key(),
            user_id: UserId::from_bytes([2; 16]),
            device_id: DeviceId::from_bytes([3; 16]),
            device_label: "laptop".parse().unwrap(),
            email: "alice@example.com".parse().unwrap(),
            human_name: "Alice".parse().unwrap(),
            signing_key: SecretBytes([4; 32]),
            user_private_key: SecretBytes([5; 32]),
            local_key: SecretBytes([6; 32]),
        }
    }

    #[test]
    fn round_trip_and_wrong_password() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device.strongroom");
        let keys = sample_keys();
        create(
            &path,
            &keys,
            &Password::new("correct horse"),
            KdfCost::INSECURE_FAST,
        )
        .unwrap();
        assert_eq!(load(&path, &Password::new("correct horse")).unwrap(), keys);
        assert!(matches!(
            load(&path, &Password::new("wrong")),
            Err(EngineError::WrongPassword(_))
        ));
        assert!(matches!(
            create(&path, &keys, &Password::new("x"), KdfCost::INSECURE_FAST),
            Err(EngineError::DeviceExists(_))
        ));
        // No secret appears in clear in the file.
        let bytes = std::fs::read(&path).unwrap();
        for secret in [[4u8; 32], [5; 32], [6; 32]] {
            assert!(!bytes.windows(32).any(|w| w == secret));
        }
        assert!(!bytes.windows(5).any(|w| w == b"alice"));
    }

    #[test]
    fn new_files_default_to_at_least_64_mib_and_3_passes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device.strongroom");
        create(
            &path,
            &sample_keys(),
            &Password::new("pw"),
            KdfCost::DEFAULT,
        )
        .unwrap();
        let file = DeviceFile::decode(&std::fs::read(&path).unwrap()).unwrap();
        assert!(file.kdf.memory_kib >= 64 * 1024, "{:?}", file.kdf);
        assert!(file.kdf.iterations >= 3, "{:?}", file.kdf);
        assert_eq!(load(&path, &Password::new("pw")).unwrap(), sample_keys());
    }

    #[test]
    fn tampered_header_is_refused() {
        let keys = sample_keys();
        let kdf = PasswordKeyParams::with_cost(&mut OsRng, 256, 1);
        let mut file = DeviceFile::seal(&keys, &Password::new("pw"), kdf).unwrap();
        file.kdf.salt[0] ^= 1;
        assert_eq!(
            DeviceFile::open(&file.encode(), &Password::new("pw")),
            Err(DeviceFileError::WrongPassword)
        );
        file.kdf.memory_kib = u32::MAX;
        assert!(matches!(
            DeviceFile::open(&file.encode(), &Password::new("pw")),
            Err(DeviceFileError::Kdf(_))
        ));
    }

    #[test]
    fn keys_test_vector() {
        // The plaintext layout of the device keys is part of the on-disk format.
        let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/vectors/device-keys.hex");
        let hex = data_encoding::HEXLOWER.encode(&sample_keys().encode());
        if std::env::var_os("STRONGROOM_UPDATE_VECTORS").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, format!("{hex}\n")).unwrap();
        }
        assert_eq!(std::fs::read_to_string(&path).unwrap().trim(), hex);
        let decoded =
            DeviceKeys::decode(&data_encoding::HEXLOWER.decode(hex.as_bytes()).unwrap()).unwrap();
        assert_eq!(decoded, sample_keys());
    }

    #[test]
    fn device_file_test_vector_opens() {
        // A device file sealed once under the password "vector"; it must keep opening.
        let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/vectors/device-file.hex");
        if std::env::var_os("STRONGROOM_UPDATE_VECTORS").is_some() {
            let kdf = PasswordKeyParams::with_cost(&mut OsRng, 256, 1);
            let file = DeviceFile::seal(&sample_keys(), &Password::new("vector"), kdf).unwrap();
            std::fs::write(
                &path,
                format!("{}\n", data_encoding::HEXLOWER.encode(&file.encode())),
            )
            .unwrap();
        }
        let bytes = data_encoding::HEXLOWER
            .decode(std::fs::read_to_string(&path).unwrap().trim().as_bytes())
            .unwrap();
        assert_eq!(
            DeviceFile::open(&bytes, &Password::new("vector")).unwrap(),
            sample_keys()
        );
        assert_eq!(DeviceFile::decode(&bytes).unwrap().encode(), bytes);
    }
}
