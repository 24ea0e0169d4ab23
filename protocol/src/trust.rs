//! Validation of the identity certificate chain, pure and shared by clients and server.
//!
//! A [`CertificateChain`] starts from the organization's root verify key (the trust anchor every
//! client pins) and accepts certificates one by one, in the server's order. Each must be signed
//! by the root key (the first user and device only) or by a known device whose user was not
//! revoked at the certificate's timestamp and holds the profile the action needs; timestamps
//! strictly increase and stay within the clock skew of the time the server received each
//! certificate (the ballpark rule of [`crate::time`]); at most one non-revoked user holds an
//! email.

use crate::certificates::{
    Certificate, DeviceCertificate, RevokedUserCertificate, SignedCertificate, Signer,
    UserCertificate, UserProfile,
};
use crate::crypto::signing::VerifyKey;
use crate::encoding::{DecodeError, Encoded};
use crate::ids::{DeviceId, Email, UserId};
use crate::time::{OutOfBallpark, Timestamp, check_ballpark};
use std::collections::HashMap;

/// Why a certificate was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustError {
    /// The bytes are not a certificate.
    #[error("certificate refused: it is malformed ({0})")]
    Malformed(#[from] DecodeError),
    /// The signature does not verify under the author's key.
    #[error("certificate refused: its signature does not match its author {0}")]
    BadSignature(String),
    /// The author device is not in the chain.
    #[error(
        "certificate refused: it is signed by device {0}, which is unknown to the organization"
    )]
    UnknownDevice(DeviceId),
    /// The author's user was revoked at or before the certificate's timestamp.
    #[error("certificate refused: it is signed by device {device}, whose user was revoked")]
    AuthorRevoked {
        /// The author device.
        device: DeviceId,
    },
    /// The action needs an ADMIN and the author is not one.
    #[error("certificate refused: its author (device {0}) is not an ADMIN")]
    AuthorNotAdmin(DeviceId),
    /// Timestamps must strictly increase along the chain.
    #[error(
        "certificate refused: its timestamp {found} is not after the previous certificate's ({previous})"
    )]
    TimestampNotIncreasing {
        /// The last accepted timestamp.
        previous: Timestamp,
        /// The refused timestamp.
        found: Timestamp,
    },
    /// The certificate is dated too far from the time the server received it.
    #[error("certificate refused: {0}")]
    OutOfBallpark(#[from] OutOfBallpark),
    /// A user signed a certificate about themselves that only another user may sign.
    #[error("certificate refused: user {0} certified itself")]
    SelfCertification(UserId),
    /// The root key may sign only the first user and their first device.
    #[error("certificate refused: the organization root key was used after bootstrap")]
    RootKeyAfterBootstrap,
    /// The first user must be an ADMIN.
    #[error("certificate refused: the first user of an organization must be an ADMIN")]
    FirstUserNotAdmin,
    /// The user already exists.
    #[error("certificate refused: user {0} already exists")]
    UserAlreadyExists(UserId),
    /// The device already exists.
    #[error("certificate refused: device {0} already exists")]
    DeviceAlreadyExists(DeviceId),
    /// Another non-revoked user holds the email.
    #[error("certificate refused: {0} already belongs to a user who is not revoked")]
    EmailInUse(Email),
    /// The certificate names a user that does not exist.
    #[error("certificate refused: user {0} is unknown")]
    UnknownUser(UserId),
    /// The certificate concerns a revoked user.
    #[error("certificate refused: user {0} is revoked")]
    UserRevoked(UserId),
    /// A device certificate for another user's existing set of devices.
    #[error("certificate refused: device {author} may not add a device to user {user}")]
    ForeignDevice {
        /// The author device.
        author: DeviceId,
        /// The user the device would belong to.
        user: UserId,
    },
    /// An ADMIN tried to revoke their own user.
    #[error("certificate refused: a user cannot revoke itself")]
    CannotRevokeSelf,
}

/// A user as the chain knows them.
#[derive(Debug, Clone)]
pub struct TrustedUser {
    /// The certificate that created them.
    pub certificate: UserCertificate,
    /// Their revocation, if any.
    pub revoked: Option<RevokedUserCertificate>,
    /// When the server received their revocation.
    pub revoked_received: Option<Timestamp>,
    /// Their devices, in order of certification.
    pub devices: Vec<DeviceId>,
}

impl TrustedUser {
    /// Whether the user is revoked at `at`.
    pub fn is_revoked_at(&self, at: Timestamp) -> bool {
        self.revoked.as_ref().is_some_and(|r| r.timestamp <= at)
    }

    /// Whether the user had lost their rights for an object dated (as judged) `judged` and
    /// received at `received`: revoked both by the revocation's date at `judged` and by its
    /// reception at `received`. Either frame alone would refuse honest objects: a revocation
    /// dated behind its arrival (a slow clock) would refuse what the server accepted from the
    /// user meanwhile, which every client must still read.
    pub fn is_revoked_for(&self, judged: Timestamp, received: Timestamp) -> bool {
        let Some(revocation) = &self.revoked else {
            return false;
        };
        let by_reception = self.revoked_received.unwrap_or(revocation.timestamp);
        revocation.timestamp <= judged && by_reception <= received
    }

    /// Whether the user is revoked now.
    pub fn is_revoked(&self) -> bool {
        self.revoked.is_some()
    }
}

/// The validated chain of one organization.
#[derive(Debug, Clone)]
pub struct CertificateChain {
    root: VerifyKey,
    users: HashMap<UserId, TrustedUser>,
    user_order: Vec<UserId>,
    devices: HashMap<DeviceId, DeviceCertificate>,
    active_emails: HashMap<Email, UserId>,
    last_timestamp: Option<Timestamp>,
    len: u64,
}

impl CertificateChain {
    /// An empty chain anchored at the organization's root key.
    pub fn new(root: VerifyKey) -> Self {
        Self {
            root,
            users: HashMap::new(),
            user_order: Vec::new(),
            devices: HashMap::new(),
            active_emails: HashMap::new(),
            last_timestamp: None,
            len: 0,
        }
    }

    /// A chain built from certificates in order, each with the time the server received it;
    /// stops at the first invalid one.
    pub fn from_certificates<'a>(
        root: VerifyKey,
        certificates: impl IntoIterator<Item = (&'a [u8], Timestamp)>,
    ) -> Result<Self, TrustError> {
        let mut chain = Self::new(root);
        for (c, received) in certificates {
            chain.add(c, received)?;
        }
        Ok(chain)
    }

    /// The pinned root key.
    pub fn root_verify_key(&self) -> &VerifyKey {
        &self.root
    }

    /// How many certificates were accepted.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether no certificate was accepted yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The timestamp of the last accepted certificate.
    pub fn last_timestamp(&self) -> Option<Timestamp> {
        self.last_timestamp
    }

    /// A user.
    pub fn user(&self, id: &UserId) -> Option<&TrustedUser> {
        self.users.get(id)
    }

    /// All users, in order of certification.
    pub fn users(&self) -> impl Iterator<Item = &TrustedUser> {
        self.user_order.iter().map(|id| &self.users[id])
    }

    /// The non-revoked user holding `email`.
    pub fn active_user_by_email(&self, email: &Email) -> Option<&TrustedUser> {
        self.active_emails.get(email).map(|id| &self.users[id])
    }

    /// A device.
    pub fn device(&self, id: &DeviceId) -> Option<&DeviceCertificate> {
        self.devices.get(id)
    }

    /// The device and its user, if the device exists and its user was not revoked at `at`:
    /// what every signed object (certificate, manifest, request) is checked against.
    pub fn active_author_at(
        &self,
        device: &DeviceId,
        at: Timestamp,
    ) -> Result<(&DeviceCertificate, &TrustedUser), TrustError> {
        let (certificate, user) = self.device_and_user(device)?;
        if user.is_revoked_at(at) {
            return Err(TrustError::AuthorRevoked { device: *device });
        }
        Ok((certificate, user))
    }

    /// A certified device and its user.
    fn device_and_user(
        &self,
        device: &DeviceId,
    ) -> Result<(&DeviceCertificate, &TrustedUser), TrustError> {
        let certificate = self
            .devices
            .get(device)
            .ok_or(TrustError::UnknownDevice(*device))?;
        Ok((certificate, &self.users[&certificate.user_id]))
    }

    /// The device and user of an author who was not revoked for an object dated (as judged)
    /// `judged` and received at `received` (see [`TrustedUser::is_revoked_for`]).
    pub fn active_author_for(
        &self,
        device: &DeviceId,
        judged: Timestamp,
        received: Timestamp,
    ) -> Result<(&DeviceCertificate, &TrustedUser), TrustError> {
        let (certificate, user) = self.device_and_user(device)?;
        if user.is_revoked_for(judged, received) {
            return Err(TrustError::AuthorRevoked { device: *device });
        }
        Ok((certificate, user))
    }

    /// Validates a signed certificate against the chain without changing it. `received` is
    /// when the server received it: the server's clock when it validates an upload, the time
    /// the server recorded when a client validates what it fetched.
    pub fn validate(&self, signed: &[u8], received: Timestamp) -> Result<Certificate, TrustError> {
        let signed = SignedCertificate::decode(signed)?;
        let certificate = signed.unverified()?;
        let timestamp = certificate.timestamp();
        check_ballpark(timestamp, received)?;
        if let Some(previous) = self.last_timestamp
            && timestamp <= previous
        {
            return Err(TrustError::TimestampNotIncreasing {
                previous,
                found: timestamp,
            });
        }
        match certificate.author() {
            Signer::Root => {
                signed
                    .verify_signature(&self.root)
                    .map_err(|_| TrustError::BadSignature("the organization root key".into()))?;
                self.check_bootstrap(&certificate)?;
            }
            Signer::Device(device) => {
                let verify_key = self
                    .devices
                    .get(&device)
                    .ok_or(TrustError::UnknownDevice(device))?
                    .verify_key;
                signed
                    .verify_signature(&verify_key)
                    .map_err(|_| TrustError::BadSignature(format!("device {device}")))?;
                let (_, author) = self.active_author_at(&device, timestamp)?;
                self.check_by_device(&certificate, device, author)?;
            }
        }
        Ok(certificate)
    }

    /// Validates a signed certificate and, if valid, appends it to the chain.
    pub fn add(&mut self, signed: &[u8], received: Timestamp) -> Result<Certificate, TrustError> {
        let certificate = self.validate(signed, received)?;
        self.apply(&certificate, received);
        Ok(certificate)
    }

    /// The root key signs the first user (an ADMIN) and that user's first device, nothing else.
    fn check_bootstrap(&self, certificate: &Certificate) -> Result<(), TrustError> {
        match certificate {
            Certificate::User(user) if self.users.is_empty() => {
                if user.profile != UserProfile::Admin {
                    return Err(TrustError::FirstUserNotAdmin);
                }
                Ok(())
            }
            Certificate::Device(device) if self.users.len() == 1 && self.devices.is_empty() => {
                if !self.users.contains_key(&device.user_id) {
                    return Err(TrustError::UnknownUser(device.user_id));
                }
                Ok(())
            }
            _ => Err(TrustError::RootKeyAfterBootstrap),
        }
    }

    fn check_by_device(
        &self,
        certificate: &Certificate,
        author_device: DeviceId,
        author: &TrustedUser,
    ) -> Result<(), TrustError> {
        let author_id = author.certificate.user_id;
        let author_is_admin = author.certificate.profile == UserProfile::Admin;
        match certificate {
            Certificate::User(user) => {
                if user.user_id == author_id {
                    return Err(TrustError::SelfCertification(author_id));
                }
                if !author_is_admin {
                    return Err(TrustError::AuthorNotAdmin(author_device));
                }
                if self.users.contains_key(&user.user_id) {
                    return Err(TrustError::UserAlreadyExists(user.user_id));
                }
                if self.active_emails.contains_key(&user.email) {
                    return Err(TrustError::EmailInUse(user.email.clone()));
                }
                Ok(())
            }
            Certificate::Device(device) => {
                let owner = self
                    .users
                    .get(&device.user_id)
                    .ok_or(TrustError::UnknownUser(device.user_id))?;
                if owner.is_revoked() {
                    return Err(TrustError::UserRevoked(device.user_id));
                }
                if self.devices.contains_key(&device.device_id) {
                    return Err(TrustError::DeviceAlreadyExists(device.device_id));
                }
                // A user adds their own devices; an ADMIN adds only the first device of the
                // user they just invited.
                let own = device.user_id == author_id;
                let admin_first = author_is_admin && owner.devices.is_empty();
                if !own && !admin_first {
                    return Err(TrustError::ForeignDevice {
                        author: author_device,
                        user: device.user_id,
                    });
                }
                Ok(())
            }
            Certificate::RevokedUser(revoked) => {
                if !author_is_admin {
                    return Err(TrustError::AuthorNotAdmin(author_device));
                }
                if revoked.user_id == author_id {
                    return Err(TrustError::CannotRevokeSelf);
                }
                let target = self
                    .users
                    .get(&revoked.user_id)
                    .ok_or(TrustError::UnknownUser(revoked.user_id))?;
                if target.is_revoked() {
                    return Err(TrustError::UserRevoked(revoked.user_id));
                }
                Ok(())
            }
        }
    }

    fn apply(&mut self, certificate: &Certificate, received: Timestamp) {
        match certificate {
            Certificate::User(user) => {
                self.active_emails.insert(user.email.clone(), user.user_id);
                self.user_order.push(user.user_id);
                self.users.insert(
                    user.user_id,
                    TrustedUser {
                        certificate: user.clone(),
                        revoked: None,
                        revoked_received: None,
                        devices: Vec::new(),
                    },
                );
            }
            Certificate::Device(device) => {
                self.users
                    .get_mut(&device.user_id)
                    .expect("validated: the owner exists")
                    .devices
                    .push(device.device_id);
                self.devices.insert(device.device_id, device.clone());
            }
            Certificate::RevokedUser(revoked) => {
                let user = self
                    .users
                    .get_mut(&revoked.user_id)
                    .expect("validated: the user exists");
                self.active_emails.remove(&user.certificate.email);
                user.revoked = Some(revoked.clone());
                user.revoked_received = Some(received);
            }
        }
        self.last_timestamp = Some(certificate.timestamp());
        self.len += 1;
    }
}

#[cfg(test)]
mod tests;
