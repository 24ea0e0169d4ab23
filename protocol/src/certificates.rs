//! Identity certificates: user, device and revoked user.
//!
//! A certificate is signed by the organization root key (the first user and device, at bootstrap
//! only) or by a device. The signed bytes are kept and sent as they were signed: a verifier never
//! re-serializes to check a signature.

use crate::crypto::CryptoError;
use crate::crypto::sealed_box::PublicKey;
use crate::crypto::signing::{Signature, SigningKey, VerifyKey};
use crate::encoding::{DecodeError, Encoded, peek_tag};
use crate::ids::{DeviceId, DeviceLabel, Email, HumanName, UserId};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Who signed a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Signer {
    /// The organization root key (allowed only at bootstrap).
    Root,
    /// A device of the organization.
    Device(DeviceId),
}

/// What a user may do in the organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum UserProfile {
    /// Invites and revokes users.
    Admin,
    /// Everything else.
    Standard,
}

impl fmt::Display for UserProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UserProfile::Admin => "ADMIN",
            UserProfile::Standard => "STANDARD",
        })
    }
}

/// A user of the organization: their email, name, encryption key and profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserCertificate {
    /// Who signed.
    pub author: Signer,
    /// When.
    pub timestamp: Timestamp,
    /// The new user.
    pub user_id: UserId,
    /// Their email; at most one non-revoked user holds it.
    pub email: Email,
    /// Their name as shown to others.
    pub human_name: HumanName,
    /// Their X25519 key, to which workspace keys are sealed.
    pub public_key: PublicKey,
    /// Their profile.
    pub profile: UserProfile,
}

impl Encoded for UserCertificate {
    const TAG: &'static str = "user-certificate";
    const VERSION: u8 = 1;
}

/// A device of a user, with the key that signs everything the device does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceCertificate {
    /// Who signed.
    pub author: Signer,
    /// When.
    pub timestamp: Timestamp,
    /// The owner.
    pub user_id: UserId,
    /// The new device.
    pub device_id: DeviceId,
    /// Its label.
    pub device_label: DeviceLabel,
    /// Its Ed25519 key.
    pub verify_key: VerifyKey,
}

impl Encoded for DeviceCertificate {
    const TAG: &'static str = "device-certificate";
    const VERSION: u8 = 1;
}

/// The revocation of a user and all their devices, from `timestamp` on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokedUserCertificate {
    /// Who signed (always a device).
    pub author: Signer,
    /// When the revocation takes effect.
    pub timestamp: Timestamp,
    /// The revoked user.
    pub user_id: UserId,
}

impl Encoded for RevokedUserCertificate {
    const TAG: &'static str = "revoked-user-certificate";
    const VERSION: u8 = 1;
}

/// Any identity certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Certificate {
    /// A user.
    User(UserCertificate),
    /// A device.
    Device(DeviceCertificate),
    /// A revocation.
    RevokedUser(RevokedUserCertificate),
}

impl Certificate {
    /// Who signed it.
    pub fn author(&self) -> Signer {
        match self {
            Certificate::User(c) => c.author,
            Certificate::Device(c) => c.author,
            Certificate::RevokedUser(c) => c.author,
        }
    }

    /// When it was signed.
    pub fn timestamp(&self) -> Timestamp {
        match self {
            Certificate::User(c) => c.timestamp,
            Certificate::Device(c) => c.timestamp,
            Certificate::RevokedUser(c) => c.timestamp,
        }
    }

    /// The encoded bytes of the content (what gets signed).
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Certificate::User(c) => c.encode(),
            Certificate::Device(c) => c.encode(),
            Certificate::RevokedUser(c) => c.encode(),
        }
    }

    /// Decodes content of any certificate kind, by its tag.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let (tag, _) = peek_tag(bytes)?;
        match tag.as_str() {
            UserCertificate::TAG => UserCertificate::decode(bytes).map(Certificate::User),
            DeviceCertificate::TAG => DeviceCertificate::decode(bytes).map(Certificate::Device),
            RevokedUserCertificate::TAG => {
                RevokedUserCertificate::decode(bytes).map(Certificate::RevokedUser)
            }
            other => Err(DecodeError::WrongType {
                expected: "certificate",
                found: other.chars().take(64).collect(),
            }),
        }
    }
}

impl From<UserCertificate> for Certificate {
    fn from(c: UserCertificate) -> Self {
        Certificate::User(c)
    }
}
impl From<DeviceCertificate> for Certificate {
    fn from(c: DeviceCertificate) -> Self {
        Certificate::Device(c)
    }
}
impl From<RevokedUserCertificate> for Certificate {
    fn from(c: RevokedUserCertificate) -> Self {
        Certificate::RevokedUser(c)
    }
}

/// A certificate as it travels and rests: the exact signed bytes and the signature over them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedCertificate {
    /// The encoded [`Certificate`], exactly as signed.
    #[serde(with = "serde_bytes")]
    pub content: Vec<u8>,
    /// Ed25519 signature over `content`.
    pub signature: Signature,
}

impl Encoded for SignedCertificate {
    const TAG: &'static str = "signed-certificate";
    const VERSION: u8 = 1;
}

impl SignedCertificate {
    /// Signs a certificate with `key`.
    pub fn sign(certificate: &Certificate, key: &SigningKey) -> Self {
        let content = certificate.encode();
        let signature = key.sign(&content);
        Self { content, signature }
    }

    /// The content, decoded but not yet verified: for looking up the author's key only.
    pub fn unverified(&self) -> Result<Certificate, DecodeError> {
        Certificate::decode(&self.content)
    }

    /// Checks the signature against `key`.
    pub fn verify_signature(&self, key: &VerifyKey) -> Result<(), CryptoError> {
        key.verify(&self.content, &self.signature)
    }
}
