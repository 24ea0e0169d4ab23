//! Workspaces: roles, the role and key-rotation certificates of a realm, and their validation.
//!
//! Each workspace is a realm on the server with its own chain of certificates, validated against
//! the organization's identity chain: who holds which role since when, and which key index is
//! current (with a check value, so that a member can tell that a key it received is the one the
//! rotating member certified).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::certificates::SignedCertificate;
use crate::crypto::hash::{Digest, derive_key, mac};
use crate::crypto::secret_key::SecretKey;
use crate::encoding::{DecodeError, Encoded, peek_tag};
use crate::ids::{DeviceId, RealmId, UserId};
use crate::time::{OutOfBallpark, Timestamp, check_ballpark, judged_at};
use crate::trust::{CertificateChain, TrustError};

/// What a member may do in a workspace, from least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum WorkspaceRole {
    /// Reads.
    Reader,
    /// Reads and writes.
    Contributor,
    /// Also shares with CONTRIBUTOR and READER roles.
    Manager,
    /// Everything, including giving MANAGER and OWNER roles.
    Owner,
}

impl WorkspaceRole {
    /// May write files and folders.
    pub fn can_write(self) -> bool {
        self >= WorkspaceRole::Contributor
    }

    /// May share, unshare and rotate keys.
    pub fn can_manage(self) -> bool {
        self >= WorkspaceRole::Manager
    }

    /// May `self` set a member's role from `current` to `new`?
    pub fn may_set(self, current: Option<WorkspaceRole>, new: Option<WorkspaceRole>) -> bool {
        match self {
            WorkspaceRole::Owner => true,
            WorkspaceRole::Manager => {
                let below =
                    |r: Option<WorkspaceRole>| r.is_none_or(|r| r <= WorkspaceRole::Contributor);
                below(current) && below(new)
            }
            _ => false,
        }
    }
}

impl fmt::Display for WorkspaceRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WorkspaceRole::Reader => "reader",
            WorkspaceRole::Contributor => "contributor",
            WorkspaceRole::Manager => "manager",
            WorkspaceRole::Owner => "owner",
        })
    }
}

impl FromStr for WorkspaceRole {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "reader" => Ok(WorkspaceRole::Reader),
            "contributor" => Ok(WorkspaceRole::Contributor),
            "manager" => Ok(WorkspaceRole::Manager),
            "owner" => Ok(WorkspaceRole::Owner),
            _ => Err(format!(
                "{s:?} is not a role: reader, contributor, manager or owner"
            )),
        }
    }
}

/// A user's role in a realm from `timestamp` on (`None`: no longer a member).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleCertificate {
    /// The signing device.
    pub author: DeviceId,
    /// When it takes effect.
    pub timestamp: Timestamp,
    /// The workspace.
    pub realm: RealmId,
    /// The member.
    pub user_id: UserId,
    /// The new role.
    pub role: Option<WorkspaceRole>,
}

impl Encoded for RoleCertificate {
    const TAG: &'static str = "role-certificate";
    const VERSION: u8 = 1;
}

/// A new key index for a realm, with a check value of the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRotationCertificate {
    /// The signing device.
    pub author: DeviceId,
    /// When.
    pub timestamp: Timestamp,
    /// The workspace.
    pub realm: RealmId,
    /// The new index: one more than the previous (the first is 1).
    pub key_index: u32,
    /// [`key_check`] of the new key.
    pub key_check: Digest,
}

impl Encoded for KeyRotationCertificate {
    const TAG: &'static str = "key-rotation-certificate";
    const VERSION: u8 = 1;
}

/// A certificate of a realm's chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RealmCertificate {
    /// A role change.
    Role(RoleCertificate),
    /// A key rotation.
    KeyRotation(KeyRotationCertificate),
}

impl RealmCertificate {
    /// Decodes either kind by its tag.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let (tag, _) = peek_tag(bytes)?;
        match tag.as_str() {
            RoleCertificate::TAG => RoleCertificate::decode(bytes).map(RealmCertificate::Role),
            KeyRotationCertificate::TAG => {
                KeyRotationCertificate::decode(bytes).map(RealmCertificate::KeyRotation)
            }
            other => Err(DecodeError::WrongType {
                expected: "realm certificate",
                found: other.chars().take(64).collect(),
            }),
        }
    }

    /// Signs it with a device key; the result travels as an encoded [`SignedCertificate`].
    pub fn sign(&self, key: &crate::crypto::signing::SigningKey) -> Vec<u8> {
        let content = self.encode();
        let signature = key.sign(&content);
        SignedCertificate { content, signature }.encode()
    }

    /// The encoded content.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            RealmCertificate::Role(c) => c.encode(),
            RealmCertificate::KeyRotation(c) => c.encode(),
        }
    }

    fn author(&self) -> DeviceId {
        match self {
            RealmCertificate::Role(c) => c.author,
            RealmCertificate::KeyRotation(c) => c.author,
        }
    }

    fn timestamp(&self) -> Timestamp {
        match self {
            RealmCertificate::Role(c) => c.timestamp,
            RealmCertificate::KeyRotation(c) => c.timestamp,
        }
    }

    fn realm(&self) -> RealmId {
        match self {
            RealmCertificate::Role(c) => c.realm,
            RealmCertificate::KeyRotation(c) => c.realm,
        }
    }
}

/// A digest of the check values of key indexes 1 to `up_to` of `realm`, in order: what a
/// message seals beside the keys it hands out, so that a key failing its check value is its
/// sender's doing, while a sealed digest other than the recipient's certificates give is a
/// split view of them (the server's doing).
pub fn key_checks_digest<'a>(
    realm: &RealmId,
    up_to: u32,
    checks: impl IntoIterator<Item = &'a Digest>,
) -> Digest {
    let mut data = b"strongroom key checks v1".to_vec();
    data.extend_from_slice(realm.as_bytes());
    data.extend_from_slice(&up_to.to_be_bytes());
    for check in checks {
        data.extend_from_slice(check.as_bytes());
    }
    Digest::of(&data)
}

/// The check value of a realm key: members compare it with the rotation certificate.
pub fn key_check(key: &SecretKey, realm: &RealmId, index: u32) -> Digest {
    let check_key = derive_key("strongroom 2026-11 realm key check", key.as_bytes());
    let mut input = realm.as_bytes().to_vec();
    input.extend_from_slice(&index.to_be_bytes());
    mac(&check_key, &input)
}

/// Why a realm certificate was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RealmError {
    /// Not a realm certificate.
    #[error("workspace certificate refused: it is malformed ({0})")]
    Malformed(#[from] DecodeError),
    /// The author or signature fails the identity chain.
    #[error("workspace certificate refused: {0}")]
    Identity(TrustError),
    /// The certificate is about another realm.
    #[error("workspace certificate refused: it belongs to another workspace")]
    WrongRealm,
    /// The certificate is dated too far from the time the server received it.
    #[error("workspace certificate refused: {0}")]
    OutOfBallpark(#[from] OutOfBallpark),
    /// Timestamps must increase along the realm's chain.
    #[error("workspace certificate refused: its timestamp is not after the previous one")]
    TimestampNotIncreasing,
    /// A realm starts with its creator making itself OWNER.
    #[error("workspace certificate refused: a workspace starts with its creator as OWNER")]
    BadCreation,
    /// The author's role does not allow this change.
    #[error("workspace certificate refused: the author's role ({0}) does not allow this change")]
    NotAllowed(String),
    /// A member tried to change their own role.
    #[error("workspace certificate refused: a member cannot change their own role")]
    OwnRole,
    /// The target user is unknown or revoked.
    #[error("workspace certificate refused: user {0} is unknown or revoked")]
    BadTarget(UserId),
    /// Key indexes go up by one.
    #[error("workspace certificate refused: key index {found} does not follow {current}")]
    KeyIndex {
        /// The current index.
        current: u32,
        /// The refused index.
        found: u32,
    },
}

/// A realm's validated chain: roles over time and certified keys.
#[derive(Debug, Clone)]
pub struct RealmChain {
    realm: RealmId,
    /// Each user's role changes: (date, reception, role).
    history: HashMap<UserId, Vec<(Timestamp, Timestamp, Option<WorkspaceRole>)>>,
    key_checks: BTreeMap<u32, Digest>,
    /// When each key index was certified.
    key_times: BTreeMap<u32, Timestamp>,
    last_timestamp: Option<Timestamp>,
    len: u64,
}

impl RealmChain {
    /// An empty chain for `realm`.
    pub fn new(realm: RealmId) -> Self {
        Self {
            realm,
            history: HashMap::new(),
            key_checks: BTreeMap::new(),
            key_times: BTreeMap::new(),
            last_timestamp: None,
            len: 0,
        }
    }

    /// The realm.
    pub fn realm(&self) -> RealmId {
        self.realm
    }

    /// How many certificates were accepted.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the chain is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The timestamp of the last certificate.
    pub fn last_timestamp(&self) -> Option<Timestamp> {
        self.last_timestamp
    }

    /// The current key index (0 before the first rotation).
    pub fn key_index(&self) -> u32 {
        self.key_checks.keys().next_back().copied().unwrap_or(0)
    }

    /// The key index that was current at `at` (0 before the first rotation).
    pub fn key_index_at(&self, at: Timestamp) -> u32 {
        self.key_times
            .iter()
            .take_while(|(_, t)| **t <= at)
            .last()
            .map(|(index, _)| *index)
            .unwrap_or(0)
    }

    /// The certified check value of a key index.
    pub fn key_check(&self, index: u32) -> Option<&Digest> {
        self.key_checks.get(&index)
    }

    /// The digest of the check values of key indexes 1 to `up_to` ([`key_checks_digest`]), or
    /// `None` if one of them is not certified.
    pub fn key_checks_digest(&self, up_to: u32) -> Option<Digest> {
        let checks: Option<Vec<&Digest>> = (1..=up_to).map(|i| self.key_checks.get(&i)).collect();
        Some(key_checks_digest(&self.realm, up_to, checks?))
    }

    /// A user's current role.
    pub fn role(&self, user: &UserId) -> Option<WorkspaceRole> {
        self.history
            .get(user)
            .and_then(|h| h.last())
            .and_then(|(_, _, r)| *r)
    }

    /// A user's role at a point in time.
    pub fn role_at(&self, user: &UserId, at: Timestamp) -> Option<WorkspaceRole> {
        self.history
            .get(user)?
            .iter()
            .take_while(|(t, _, _)| *t <= at)
            .last()
            .and_then(|(_, _, r)| *r)
    }

    /// A user's role when the server had received the certificates up to `received`.
    pub fn role_received_at(&self, user: &UserId, received: Timestamp) -> Option<WorkspaceRole> {
        self.history
            .get(user)?
            .iter()
            .take_while(|(_, r, _)| *r <= received)
            .last()
            .and_then(|(_, _, r)| *r)
    }

    /// Whether `user` could write an object dated (as judged) `judged` and received at
    /// `received`: by the role certificates' dates at `judged`, or by their receptions at
    /// `received`. Either frame alone would refuse honest writes: a removal dated behind its
    /// arrival (a slow clock) would refuse what the server accepted meanwhile, and a grant
    /// dated ahead of its arrival (a fast clock) the grantee's first writes, the creator's own
    /// first root folder among them.
    pub fn could_write(&self, user: &UserId, judged: Timestamp, received: Timestamp) -> bool {
        self.role_at(user, judged)
            .is_some_and(WorkspaceRole::can_write)
            || self
                .role_received_at(user, received)
                .is_some_and(WorkspaceRole::can_write)
    }

    /// Current members and their roles.
    pub fn members(&self) -> impl Iterator<Item = (UserId, WorkspaceRole)> + '_ {
        self.history
            .iter()
            .filter_map(|(user, h)| h.last().and_then(|(_, _, r)| r.map(|r| (*user, r))))
    }

    /// Whether `user` was removed after the current key was certified: they may still hold
    /// it, so a rotation is due (an eviction whose rotation failed is taken up again here).
    pub fn removed_since_rotation(&self, user: &UserId) -> bool {
        let rotated = self.key_times.values().next_back().copied();
        self.history
            .get(user)
            .and_then(|h| h.last())
            .is_some_and(|(at, _, role)| role.is_none() && rotated.is_none_or(|r| *at > r))
    }

    /// Whether `user` was ever a member.
    pub fn was_member(&self, user: &UserId) -> bool {
        self.history.contains_key(user)
    }

    /// Validates a signed realm certificate against this chain and the identity chain, without
    /// changing either. `received` is when the server received it (see
    /// [`CertificateChain::validate`]).
    pub fn validate(
        &self,
        identity: &CertificateChain,
        signed: &[u8],
        received: Timestamp,
    ) -> Result<RealmCertificate, RealmError> {
        let signed = SignedCertificate::decode(signed)?;
        let certificate = RealmCertificate::decode(&signed.content)?;
        if certificate.realm() != self.realm {
            return Err(RealmError::WrongRealm);
        }
        let timestamp = certificate.timestamp();
        check_ballpark(timestamp, received)?;
        if self.last_timestamp.is_some_and(|last| timestamp <= last) {
            return Err(RealmError::TimestampNotIncreasing);
        }
        let author_device = certificate.author();
        let judged = judged_at(timestamp, received);
        let (device, author) = identity
            .active_author_for(&author_device, judged, received)
            .map_err(RealmError::Identity)?;
        signed.verify_signature(&device.verify_key).map_err(|_| {
            RealmError::Identity(TrustError::BadSignature(format!("device {author_device}")))
        })?;
        let author_id = author.certificate.user_id;
        let author_role = self.role(&author_id);
        match &certificate {
            RealmCertificate::Role(c) if self.is_empty() => {
                if c.user_id != author_id || c.role != Some(WorkspaceRole::Owner) {
                    return Err(RealmError::BadCreation);
                }
            }
            RealmCertificate::Role(c) => {
                if c.user_id == author_id {
                    return Err(RealmError::OwnRole);
                }
                let allowed = author_role.is_some_and(|r| r.may_set(self.role(&c.user_id), c.role));
                if !allowed {
                    return Err(RealmError::NotAllowed(role_name(author_role)));
                }
                let target_ok = identity
                    .user(&c.user_id)
                    .is_some_and(|u| c.role.is_none() || !u.is_revoked_for(judged, received));
                if !target_ok {
                    return Err(RealmError::BadTarget(c.user_id));
                }
            }
            RealmCertificate::KeyRotation(c) => {
                if self.is_empty() {
                    return Err(RealmError::BadCreation);
                }
                if !author_role.is_some_and(WorkspaceRole::can_manage) {
                    return Err(RealmError::NotAllowed(role_name(author_role)));
                }
                if c.key_index != self.key_index() + 1 {
                    return Err(RealmError::KeyIndex {
                        current: self.key_index(),
                        found: c.key_index,
                    });
                }
            }
        }
        Ok(certificate)
    }

    /// Validates and appends.
    pub fn add(
        &mut self,
        identity: &CertificateChain,
        signed: &[u8],
        received: Timestamp,
    ) -> Result<RealmCertificate, RealmError> {
        let certificate = self.validate(identity, signed, received)?;
        match &certificate {
            RealmCertificate::Role(c) => {
                self.history
                    .entry(c.user_id)
                    .or_default()
                    .push((c.timestamp, received, c.role))
            }
            RealmCertificate::KeyRotation(c) => {
                self.key_checks.insert(c.key_index, c.key_check);
                self.key_times.insert(c.key_index, c.timestamp);
            }
        }
        self.last_timestamp = Some(certificate.timestamp());
        self.len += 1;
        Ok(certificate)
    }
}

fn role_name(role: Option<WorkspaceRole>) -> String {
    role.map(|r| r.to_string().to_uppercase())
        .unwrap_or_else(|| "not a member".into())
}

#[cfg(test)]
mod tests;
