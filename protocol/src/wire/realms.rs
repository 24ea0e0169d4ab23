use super::ReceivedCertificate;
use crate::encoding::Encoded;
use crate::ids::{DeviceId, EntryId, UserId};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

/// `POST /authenticated/{org}/realms/{realm}`: creates a workspace realm with its first
/// certificates (the creator as OWNER, then key index 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateRealmRequest {
    /// Signed realm certificates.
    pub certificates: Vec<ByteBuf>,
}

impl Encoded for CreateRealmRequest {
    const TAG: &'static str = "create-realm-request";
    const VERSION: u8 = 1;
}

/// A message to deliver with a realm certificate (the sealed key of a share or a rotation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutgoingMessage {
    /// The recipient.
    pub recipient: UserId,
    /// Signed, then sealed to the recipient's key.
    pub sealed: ByteBuf,
}

/// `POST /authenticated/{org}/realms/{realm}/certificates`: a role change or key rotation, with
/// the messages that go with it, stored atomically.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RealmCertificateRequest {
    /// The signed realm certificate.
    pub certificate: ByteBuf,
    /// Messages for members.
    pub messages: Vec<OutgoingMessage>,
}

impl Encoded for RealmCertificateRequest {
    const TAG: &'static str = "realm-certificate-request";
    const VERSION: u8 = 1;
}

/// `GET /authenticated/{org}/realms/{realm}/certificates?from=N`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RealmCertificatesResponse {
    /// Index of the first certificate returned.
    pub from: u64,
    /// Signed realm certificates in order, each with when the server received it, at most
    /// [`CERTIFICATES_PAGE`](super::CERTIFICATES_PAGE).
    pub certificates: Vec<ReceivedCertificate>,
}

impl Encoded for RealmCertificatesResponse {
    const TAG: &'static str = "realm-certificates-response";
    const VERSION: u8 = 2;
}

/// `POST /authenticated/{org}/realms/{realm}/vlobs`: a new version of a vlob. The server accepts
/// it only if `version` is one more than the last (optimistic concurrency).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VlobWriteRequest {
    /// The vlob.
    pub id: EntryId,
    /// The new version.
    pub version: u32,
    /// The key index that encrypts it.
    pub key_index: u32,
    /// The manifest's timestamp (within the clock window of the server).
    pub timestamp: Timestamp,
    /// The encrypted, signed manifest.
    pub blob: ByteBuf,
}

impl Encoded for VlobWriteRequest {
    const TAG: &'static str = "vlob-write-request";
    const VERSION: u8 = 1;
}

/// The answer to a vlob write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VlobWriteResponse {
    /// The realm's checkpoint after the write.
    pub checkpoint: u64,
}

impl Encoded for VlobWriteResponse {
    const TAG: &'static str = "vlob-write-response";
    const VERSION: u8 = 1;
}

/// `POST /authenticated/{org}/realms/{realm}/vlobs/read`: the latest version of many vlobs at
/// once, or the version current at a point in time. At most
/// [`REALM_PAGE`](super::REALM_PAGE) ids; the server answers each id once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VlobReadRequest {
    /// The vlobs.
    pub ids: Vec<EntryId>,
    /// Read as of this time instead of the latest.
    pub at: Option<Timestamp>,
}

impl Encoded for VlobReadRequest {
    const TAG: &'static str = "vlob-read-request";
    const VERSION: u8 = 1;
}

/// One stored version of a vlob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VlobVersion {
    /// The vlob.
    pub id: EntryId,
    /// The version.
    pub version: u32,
    /// The key index the writer declared.
    pub key_index: u32,
    /// The device that wrote it.
    pub author: DeviceId,
    /// Its timestamp (the author's).
    pub timestamp: Timestamp,
    /// When the server received it (the server's clock).
    pub received: Timestamp,
    /// The encrypted manifest.
    pub blob: ByteBuf,
}

/// The answer to a vlob read: at most [`MAX_READ_ANSWER_BYTES`](super::MAX_READ_ANSWER_BYTES)
/// of versions; the ids that did not fit are named in `deferred`, to be asked again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VlobReadResponse {
    /// The versions found (vlobs that do not exist, or did not yet at `at`, are absent).
    pub vlobs: Vec<VlobVersion>,
    /// Ids asked for whose versions did not fit in this answer: ask for them again.
    pub deferred: Vec<EntryId>,
}

impl Encoded for VlobReadResponse {
    const TAG: &'static str = "vlob-read-response";
    const VERSION: u8 = 2;
}

impl Encoded for VlobVersion {
    const TAG: &'static str = "vlob-version";
    const VERSION: u8 = 2;
}

/// A version's description, without its content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VlobVersionInfo {
    /// The version.
    pub version: u32,
    /// The key index.
    pub key_index: u32,
    /// The author device.
    pub author: DeviceId,
    /// Its timestamp (the author's).
    pub timestamp: Timestamp,
    /// When the server received it.
    pub received: Timestamp,
    /// Size of the encrypted blob.
    pub size: u64,
}

/// `GET /authenticated/{org}/realms/{realm}/vlobs/{id}/versions?from=N`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VlobHistoryResponse {
    /// The versions from `N` on, oldest first, at most [`HISTORY_PAGE`](super::HISTORY_PAGE):
    /// a full page means more may follow.
    pub versions: Vec<VlobVersionInfo>,
}

impl Encoded for VlobHistoryResponse {
    const TAG: &'static str = "vlob-history-response";
    const VERSION: u8 = 2;
}

/// One change in a realm: a vlob reached a version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VlobChange {
    /// The realm's checkpoint of this change.
    pub checkpoint: u64,
    /// The vlob.
    pub id: EntryId,
    /// Its new version.
    pub version: u32,
}

/// `GET /authenticated/{org}/realms/{realm}/changes?since=N`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RealmChangesResponse {
    /// The realm's current checkpoint.
    pub checkpoint: u64,
    /// Changes after `since`, in order (at most one page; ask again from the last one).
    pub changes: Vec<VlobChange>,
}

impl Encoded for RealmChangesResponse {
    const TAG: &'static str = "realm-changes-response";
    const VERSION: u8 = 1;
}

/// A message as stored for its recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncomingMessage {
    /// Its index in the recipient's queue.
    pub index: u64,
    /// The device that sent it (as the server saw the request).
    pub sender: DeviceId,
    /// When the server received it: the message's own date, which only the recipient can
    /// read, must be within the clock skew of it.
    pub received: Timestamp,
    /// Signed, then sealed to the recipient.
    pub sealed: ByteBuf,
}

/// `GET /authenticated/{org}/messages?from=N`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessagesResponse {
    /// Messages from index `from` on: at most [`MESSAGES_PAGE`](super::MESSAGES_PAGE) and
    /// [`MAX_READ_ANSWER_BYTES`](super::MAX_READ_ANSWER_BYTES).
    pub messages: Vec<IncomingMessage>,
    /// More messages follow: ask again from the next index.
    pub more: bool,
}

impl Encoded for MessagesResponse {
    const TAG: &'static str = "messages-response";
    const VERSION: u8 = 2;
}

/// `POST /authenticated/{org}/realms/{realm}/vlobs/batch`: many vlob writes in one transaction;
/// each succeeds or conflicts on its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VlobBatchWriteRequest {
    /// The writes.
    pub writes: Vec<VlobWriteRequest>,
}

impl Encoded for VlobBatchWriteRequest {
    const TAG: &'static str = "vlob-batch-write-request";
    const VERSION: u8 = 1;
}

/// The outcome of one write of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum VlobWriteResult {
    /// Stored, at this checkpoint of the realm.
    Written {
        /// The realm's checkpoint after the write.
        checkpoint: u64,
    },
    /// Another device wrote this version first.
    VersionConflict,
}

/// The answer to [`VlobBatchWriteRequest`], one result per write, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VlobBatchWriteResponse {
    /// The outcomes.
    pub results: Vec<VlobWriteResult>,
}

impl Encoded for VlobBatchWriteResponse {
    const TAG: &'static str = "vlob-batch-write-response";
    const VERSION: u8 = 1;
}
