use crate::encoding::Encoded;
use serde::{Deserialize, Serialize};

/// What went wrong, as a code clients match on. The message beside it is for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorCode {
    /// The body could not be decoded.
    MalformedRequest,
    /// The body is larger than the endpoint accepts.
    PayloadTooLarge,
    /// No such endpoint or object.
    NotFound,
    /// The organization does not exist on this server.
    UnknownOrganization,
    /// An organization of this name exists already.
    OrganizationExists,
    /// The organization was bootstrapped already.
    AlreadyBootstrapped,
    /// The organization is not bootstrapped yet.
    NotBootstrapped,
    /// The bootstrap token is wrong.
    InvalidBootstrapToken,
    /// The administrator token is missing or wrong.
    InvalidAdminToken,
    /// The request is not signed, or its signature does not verify.
    BadSignature,
    /// The request's timestamp, or the date of what it carries (a certificate, a manifest), is
    /// too far from the server's clock.
    StaleTimestamp,
    /// This signed request was received before: a replay.
    Replayed,
    /// The signing device is unknown.
    UnknownDevice,
    /// The signing device belongs to a revoked user.
    DeviceRevoked,
    /// The user's profile does not allow this.
    NotAllowed,
    /// A certificate was refused by validation.
    InvalidCertificate,
    /// The email belongs to a user who is not revoked.
    EmailInUse,
    /// No invitation has this token.
    UnknownInvitation,
    /// The invitation was cancelled.
    InvitationCancelled,
    /// The invitation was used already.
    InvitationAlreadyUsed,
    /// The invitation is past its expiry date.
    InvitationExpired,
    /// The attempt changed under the caller (the other side restarted).
    AttemptMismatch,
    /// The attempt was aborted by one side.
    AttemptAborted,
    /// A concurrent change won; retry.
    Conflict,
    /// No such workspace (realm) in this organization.
    UnknownRealm,
    /// A realm with this id exists already.
    RealmExists,
    /// The vlob's version moved on since the client read it (another device wrote first).
    VersionConflict,
    /// The key index is not the realm's current one.
    BadKeyIndex,
    /// No such vlob, version or block.
    UnknownObject,
    /// The organization reached a limit its server administrator set (storage, workspaces,
    /// devices, pending invitations).
    QuotaExceeded,
    /// The server failed; details are in its log.
    Internal,
}

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// The code.
    pub code: ErrorCode,
    /// One sentence for people.
    pub message: String,
}

impl Encoded for ErrorResponse {
    const TAG: &'static str = "error";
    const VERSION: u8 = 1;
}
