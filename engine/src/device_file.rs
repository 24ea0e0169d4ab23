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
    /// The cost recorded in a file's header.
    pub fn of(params: &PasswordKeyParams) -> Self {
        Self {
            memory_kib: params.memory_kib,
            iterations: params.iterations,
        }
    }

    /// Whether this costs less than [`KdfCost::DEFAULT`] in memory or in passes: a key that
    /// whoever copies the file can try passwords against faster than intended.
    pub fn is_weak(self) -> bool {
        self.memory_kib < Self::DEFAULT.memory_kib || self.iterations < Self::DEFAULT.iterations
    }

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

impl std::fmt::Display for KdfCost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.memory_kib.is_multiple_of(1024) {
            write!(f, "{} MiB", self.memory_kib / 1024)?;
        } else {
            write!(f, "{} KiB", self.memory_kib)?;
        }
        let passes = if self.iterations == 1 {
            "pass"
        } else {
            "passes"
        };
        write!(f, ", {} {passes}", self.iterations)
    }
}

/// Which device files may be opened, by the strength of their password key. Every caller that
/// opens a device file says which it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KdfPolicy {
    /// Only files whose key costs at least [`KdfCost::DEFAULT`]: a weaker one is refused
    /// ([`EngineError::WeakPasswordKey`]), whatever the password.
    RequireDefault,
    /// Weaker files too (those `--insecure-fast-kdf` makes): for tests and demos only.
    AllowWeak,
}

impl KdfPolicy {
    /// The policy of the weak setting (`--insecure-fast-kdf`): asked for, or not.
    pub fn allowing_weak(allowed: bool) -> Self {
        if allowed {
            Self::AllowWeak
        } else {
            Self::RequireDefault
        }
    }

    /// Whether a file whose key has this cost may be opened.
    pub fn admits(self, cost: KdfCost) -> bool {
        self == Self::AllowWeak || !cost.is_weak()
    }
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
    /// The key is weaker than the default, and the policy does not accept that.
    #[error("the password key is weak ({0})")]
    WeakKey(KdfCost),
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

    /// Decodes and decrypts file bytes, if `policy` admits the strength of their key (checked
    /// before the password is tried).
    pub fn open(
        bytes: &[u8],
        password: &Password,
        policy: KdfPolicy,
    ) -> Result<DeviceKeys, DeviceFileError> {
        let file = DeviceFile::decode(bytes)?;
        let cost = KdfCost::of(&file.kdf);
        if !policy.admits(cost) {
            return Err(DeviceFileError::WeakKey(cost));
        }
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

/// The cost of the password key of the device file at `path`, read from its clear header (no
/// password needed): so that a program can refuse a weak file, or say that it is weak, before it
/// asks for the password.
pub fn kdf_cost(path: &Path) -> Result<KdfCost> {
    let file = DeviceFile::decode(&read(path)?).map_err(|e| EngineError::corrupt(path, e))?;
    Ok(KdfCost::of(&file.kdf))
}

/// Opens the device file at `path`, if `policy` admits the strength of its password key.
pub fn load(path: &Path, password: &Password, policy: KdfPolicy) -> Result<DeviceKeys> {
    DeviceFile::open(&read(path)?, password, policy).map_err(|e| match e {
        DeviceFileError::WrongPassword => EngineError::WrongPassword(path.to_path_buf()),
        DeviceFileError::Malformed(d) => EngineError::corrupt(path, d),
        DeviceFileError::Kdf(c) => EngineError::CorruptFile {
            path: path.to_path_buf(),
            reason: c.to_string(),
        },
        DeviceFileError::WeakKey(cost) => EngineError::WeakPasswordKey {
            path: path.to_path_buf(),
            cost,
        },
    })
}

/// The bytes of a device file; a missing one is "no device here".
fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            EngineError::NoDevice(path.parent().unwrap_or(path).to_path_buf())
        }
        _ => EngineError::io(format!("cannot read {}", path.display()), e),
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
        assert_eq!(
            load(&path, &Password::new("correct horse"), KdfPolicy::AllowWeak).unwrap(),
            keys
        );
        assert!(matches!(
            load(&path, &Password::new("wrong"), KdfPolicy::AllowWeak),
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
        assert_eq!(kdf_cost(&path).unwrap(), KdfCost::DEFAULT);
        for policy in [KdfPolicy::RequireDefault, KdfPolicy::AllowWeak] {
            assert_eq!(
                load(&path, &Password::new("pw"), policy).unwrap(),
                sample_keys()
            );
        }
    }

    #[test]
    fn weak_files_open_only_when_the_policy_allows_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device.strongroom");
        let password = Password::new("pw");
        create(&path, &sample_keys(), &password, KdfCost::INSECURE_FAST).unwrap();
        assert_eq!(kdf_cost(&path).unwrap(), KdfCost::INSECURE_FAST);
        let refused = load(&path, &password, KdfPolicy::RequireDefault).unwrap_err();
        assert!(
            matches!(&refused, EngineError::WeakPasswordKey { cost, .. } if *cost == KdfCost::INSECURE_FAST),
            "{refused:?}"
        );
        let message = refused.to_string();
        assert!(
            message.contains("256 KiB, 1 pass") && message.contains("64 MiB, 3 passes"),
            "{message}"
        );
        assert!(message.contains("--insecure-fast-kdf"), "{message}");
        // Refused before the password is tried: a wrong one gets the same answer.
        assert!(matches!(
            load(&path, &Password::new("wrong"), KdfPolicy::RequireDefault),
            Err(EngineError::WeakPasswordKey { .. })
        ));
        assert_eq!(
            load(&path, &password, KdfPolicy::AllowWeak).unwrap(),
            sample_keys()
        );
    }

    #[test]
    fn a_key_is_weak_when_either_its_memory_or_its_passes_are_below_the_default() {
        let default = KdfCost::DEFAULT;
        assert!(!default.is_weak());
        let more = KdfCost {
            memory_kib: default.memory_kib * 2,
            iterations: default.iterations + 1,
        };
        assert!(!more.is_weak());
        let less_memory = KdfCost {
            memory_kib: default.memory_kib - 1,
            iterations: default.iterations * 4,
        };
        let fewer_passes = KdfCost {
            memory_kib: default.memory_kib * 16,
            iterations: default.iterations - 1,
        };
        for weak in [KdfCost::INSECURE_FAST, less_memory, fewer_passes] {
            assert!(weak.is_weak(), "{weak:?}");
            assert!(!KdfPolicy::RequireDefault.admits(weak));
            assert!(KdfPolicy::AllowWeak.admits(weak));
        }
        assert!(KdfPolicy::RequireDefault.admits(more));
        assert_eq!(default.to_string(), "64 MiB, 3 passes");
        assert_eq!(less_memory.to_string(), "65535 KiB, 12 passes");
    }

    #[test]
    fn tampered_header_is_refused() {
        let keys = sample_keys();
        let kdf = PasswordKeyParams::with_cost(&mut OsRng, 256, 1);
        let mut file = DeviceFile::seal(&keys, &Password::new("pw"), kdf).unwrap();
        file.kdf.salt[0] ^= 1;
        assert_eq!(
            DeviceFile::open(&file.encode(), &Password::new("pw"), KdfPolicy::AllowWeak),
            Err(DeviceFileError::WrongPassword)
        );
        file.kdf.memory_kib = u32::MAX;
        assert!(matches!(
            DeviceFile::open(&file.encode(), &Password::new("pw"), KdfPolicy::AllowWeak),
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
            DeviceFile::open(&bytes, &Password::new("vector"), KdfPolicy::AllowWeak).unwrap(),
            sample_keys()
        );
        // Sealed with the test cost: weak.
        assert_eq!(
            DeviceFile::open(&bytes, &Password::new("vector"), KdfPolicy::RequireDefault),
            Err(DeviceFileError::WeakKey(KdfCost::INSECURE_FAST))
        );
        assert_eq!(DeviceFile::decode(&bytes).unwrap().encode(), bytes);
    }
}
