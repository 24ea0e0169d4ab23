//! The metadata store: organizations, certificates (with the users and devices they define),
//! invitations and their relayed exchange. Behind a trait so that PostgreSQL can follow SQLite.

mod files;
mod sqlite;

pub use files::FileBlockStore;
pub(crate) use sqlite::ensure_pending;

pub use sqlite::SqliteStore;

use async_trait::async_trait;
use strongroom_protocol::certificates::{Certificate, UserProfile};
use strongroom_protocol::crypto::hash::Digest;
use strongroom_protocol::crypto::signing::VerifyKey;
use strongroom_protocol::ids::{
    BlockId, DeviceId, Email, EntryId, HumanName, OrganizationId, RealmId, TokenId, UserId,
};
use strongroom_protocol::invite::InviteSide;
use strongroom_protocol::time::Timestamp;
use strongroom_protocol::wire::{
    AttemptAbort, IncomingMessage, InvitationKind, InvitationStatus, VlobChange, VlobVersion,
    VlobVersionInfo,
};

use crate::error::ApiError;

/// A store failure: either a refusal the client should see, or a backend failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A refusal (conflict, unknown object...).
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The backend failed.
    #[error("storage backend: {0}")]
    Backend(String),
}

/// Result of store operations.
pub type StoreResult<T> = Result<T, StoreError>;

/// An organization.
#[derive(Debug, Clone)]
pub struct OrganizationRecord {
    /// Name.
    pub id: OrganizationId,
    /// The id of its one-time bootstrap token.
    pub bootstrap_token_id: TokenId,
    /// Set once bootstrapped.
    pub root_verify_key: Option<VerifyKey>,
}

/// A user, as derived from the certificates.
#[derive(Debug, Clone)]
pub struct UserRecord {
    /// Id.
    pub user_id: UserId,
    /// Email.
    pub email: Email,
    /// Name.
    pub human_name: HumanName,
    /// Profile.
    pub profile: UserProfile,
    /// When revoked.
    pub revoked_on: Option<Timestamp>,
}

/// A device, as derived from the certificates.
#[derive(Debug, Clone)]
pub struct DeviceRecord {
    /// Id.
    pub device_id: DeviceId,
    /// Owner.
    pub user_id: UserId,
    /// Its key: checks the signature of every request.
    pub verify_key: VerifyKey,
}

/// A validated certificate to store: its signed bytes and decoded content.
#[derive(Debug, Clone)]
pub struct NewCertificate {
    /// The exact signed bytes.
    pub bytes: Vec<u8>,
    /// The decoded, validated content.
    pub certificate: Certificate,
    /// When the server received it (its clock), kept for every client to check the
    /// certificate's own date against.
    pub received: Timestamp,
}

/// A stored certificate (identity or realm): its signed bytes and when the server received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCertificate {
    /// The exact signed bytes.
    pub bytes: Vec<u8>,
    /// When the server received it.
    pub received: Timestamp,
}

/// What a server administrator allows an organization; `None` is no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Quotas {
    /// Bytes stored: blocks, manifests, workspace certificates and messages.
    pub storage_bytes: Option<u64>,
    /// Workspaces.
    pub workspaces: Option<u64>,
    /// Devices of users who are not revoked.
    pub devices: Option<u64>,
}

/// The answer to a batch read: the versions found and the ids that did not fit.
#[derive(Debug, Clone, Default)]
pub struct VlobBatch {
    /// The versions, at most one per id asked for.
    pub vlobs: Vec<VlobVersion>,
    /// Ids whose versions did not fit within the answer's budget.
    pub deferred: Vec<EntryId>,
}

/// An invitation.
#[derive(Debug, Clone)]
pub struct InvitationRecord {
    /// Public id (digest of the token).
    pub id: TokenId,
    /// User or device.
    pub kind: InvitationKind,
    /// The invited email, or the greeter's for device invitations.
    pub email: Email,
    /// Who created it.
    pub greeter_user_id: UserId,
    /// Their name.
    pub greeter_human_name: HumanName,
    /// When.
    pub created_on: Timestamp,
    /// When it stops working.
    pub expires_on: Timestamp,
    /// Status.
    pub status: InvitationStatus,
}

impl InvitationRecord {
    /// Whether it is still pending but past its expiry at `now`.
    pub fn expired_at(&self, now: Timestamp) -> bool {
        self.status == InvitationStatus::Pending && now > self.expires_on
    }
}

/// The relayed exchange of an invitation's current attempt.
#[derive(Debug, Clone, Default)]
pub struct Conversation {
    /// The current attempt.
    pub attempt: u32,
    /// Set once a side aborted the attempt.
    pub aborted: Option<AttemptAbort>,
    /// Greeter steps, in order.
    pub greeter: Vec<Vec<u8>>,
    /// Claimer steps, in order.
    pub claimer: Vec<Vec<u8>>,
}

/// Completing an invitation: its new certificates and the greeter's final step, stored together.
#[derive(Debug, Clone)]
pub struct Completion {
    /// The invitation.
    pub invitation: TokenId,
    /// The attempt that succeeded.
    pub attempt: u32,
    /// The greeter's final step.
    pub final_step: Vec<u8>,
}

/// Most steps one side may post in one attempt; the exchange needs five.
pub const MAX_STEPS_PER_SIDE: usize = 16;

/// Where metadata lives. Every method is atomic.
#[async_trait]
pub trait MetadataStore: Send + Sync + 'static {
    /// Creates an organization awaiting bootstrap.
    async fn create_organization(
        &self,
        id: &OrganizationId,
        bootstrap_token_id: TokenId,
        now: Timestamp,
    ) -> StoreResult<()>;

    /// An organization.
    async fn organization(&self, id: &OrganizationId) -> StoreResult<Option<OrganizationRecord>>;

    /// Bootstraps: sets the root key and stores the first certificates, once; refuses a wrong
    /// token or a second bootstrap.
    async fn bootstrap(
        &self,
        id: &OrganizationId,
        token_id: TokenId,
        root_verify_key: VerifyKey,
        certificates: Vec<NewCertificate>,
        now: Timestamp,
    ) -> StoreResult<()>;

    /// Signed certificates from index `from` on, at most `limit` of them.
    async fn certificates(
        &self,
        id: &OrganizationId,
        from: u64,
        limit: Option<u64>,
    ) -> StoreResult<Vec<StoredCertificate>>;

    /// Appends validated certificates if the chain still has `expected_len` certificates
    /// (otherwise [`ErrorCode::Conflict`](strongroom_protocol::wire::ErrorCode::Conflict));
    /// with a completion, spends the invitation in the same transaction. A new user's personal
    /// realm id is reserved for them; a revoked user's pending invitations are cancelled; the
    /// device quota is enforced. Returns the new length.
    async fn append_certificates(
        &self,
        id: &OrganizationId,
        expected_len: u64,
        certificates: Vec<NewCertificate>,
        completion: Option<Completion>,
    ) -> StoreResult<u64>;

    /// A user.
    async fn user(&self, id: &OrganizationId, user: UserId) -> StoreResult<Option<UserRecord>>;

    /// The non-revoked user holding an email.
    async fn active_user_by_email(
        &self,
        id: &OrganizationId,
        email: &Email,
    ) -> StoreResult<Option<UserRecord>>;

    /// A device.
    async fn device(
        &self,
        id: &OrganizationId,
        device: DeviceId,
    ) -> StoreResult<Option<DeviceRecord>>;

    /// Creates an invitation; a user invitation is refused beyond
    /// [`MAX_PENDING_INVITATIONS`](strongroom_protocol::wire::MAX_PENDING_INVITATIONS) pending
    /// user invitations in the organization, a device invitation beyond
    /// [`MAX_PENDING_DEVICE_INVITATIONS_PER_USER`](strongroom_protocol::wire::MAX_PENDING_DEVICE_INVITATIONS_PER_USER)
    /// pending device invitations of its greeter.
    async fn create_invitation(
        &self,
        id: &OrganizationId,
        invitation: InvitationRecord,
    ) -> StoreResult<()>;

    /// An invitation.
    async fn invitation(
        &self,
        id: &OrganizationId,
        invitation: TokenId,
    ) -> StoreResult<Option<InvitationRecord>>;

    /// Pending invitations that have not expired at `now`.
    async fn pending_invitations(
        &self,
        id: &OrganizationId,
        now: Timestamp,
    ) -> StoreResult<Vec<InvitationRecord>>;

    /// Cancels a pending invitation.
    async fn cancel_invitation(&self, id: &OrganizationId, invitation: TokenId) -> StoreResult<()>;

    /// Joins the exchange for `side`: the current attempt, or a new one if the current attempt
    /// was aborted or `side` already posted in it (it restarted).
    async fn join_attempt(
        &self,
        id: &OrganizationId,
        invitation: TokenId,
        side: InviteSide,
    ) -> StoreResult<u32>;

    /// Appends a step of `side` to the current attempt.
    async fn post_step(
        &self,
        id: &OrganizationId,
        invitation: TokenId,
        attempt: u32,
        side: InviteSide,
        step: Vec<u8>,
    ) -> StoreResult<()>;

    /// Marks the current attempt aborted.
    async fn abort_attempt(
        &self,
        id: &OrganizationId,
        invitation: TokenId,
        attempt: u32,
        abort: AttemptAbort,
    ) -> StoreResult<()>;

    /// The current attempt's steps.
    async fn conversation(
        &self,
        id: &OrganizationId,
        invitation: TokenId,
    ) -> StoreResult<Conversation>;

    /// Creates a workspace realm with its first certificates; refuses an existing or reserved
    /// id (every user's personal realm is reserved when the user is certified) and enforces the
    /// workspace quota; the certificates' bytes count against the storage quota.
    async fn create_realm(
        &self,
        id: &OrganizationId,
        realm: RealmId,
        certificates: Vec<StoredCertificate>,
    ) -> StoreResult<()>;

    /// A realm's certificates from index `from` on, at most `limit`; `None` if the realm does
    /// not exist.
    async fn realm_certificates(
        &self,
        id: &OrganizationId,
        realm: RealmId,
        from: u64,
        limit: Option<u64>,
    ) -> StoreResult<Option<Vec<StoredCertificate>>>;

    /// Appends a validated realm certificate if the realm's chain still has `expected_len`
    /// certificates, and queues its messages, in one transaction; the certificate's and the
    /// messages' bytes count against the storage quota.
    async fn append_realm_certificate(
        &self,
        id: &OrganizationId,
        realm: RealmId,
        expected_len: u64,
        certificate: StoredCertificate,
        messages: Vec<NewMessage>,
    ) -> StoreResult<()>;

    /// Stores a new version of a vlob if it is one more than the last (else `VersionConflict`);
    /// returns the realm's new checkpoint. Enforces the storage quota.
    async fn write_vlob(
        &self,
        id: &OrganizationId,
        realm: RealmId,
        write: VlobVersion,
    ) -> StoreResult<u64>;

    /// Stores many vlob versions in one transaction; each is `None` if its version conflicts.
    async fn write_vlobs(
        &self,
        id: &OrganizationId,
        realm: RealmId,
        writes: Vec<VlobVersion>,
    ) -> StoreResult<Vec<Option<u64>>>;

    /// The latest version of each vlob (or the version current at `at`), each id once; absent
    /// ones are skipped. Versions beyond `budget` bytes of blobs (the first one always fits)
    /// are not read: their ids come back deferred.
    async fn read_vlobs(
        &self,
        id: &OrganizationId,
        realm: RealmId,
        ids: Vec<EntryId>,
        at: Option<Timestamp>,
        budget: usize,
    ) -> StoreResult<VlobBatch>;

    /// Versions of a vlob from `from` on, at most `limit`, without content.
    async fn vlob_history(
        &self,
        id: &OrganizationId,
        realm: RealmId,
        vlob: EntryId,
        from: u32,
        limit: u64,
    ) -> StoreResult<Vec<VlobVersionInfo>>;

    /// One version of a vlob.
    async fn vlob_version(
        &self,
        id: &OrganizationId,
        realm: RealmId,
        vlob: EntryId,
        version: u32,
    ) -> StoreResult<Option<VlobVersion>>;

    /// The realm's checkpoint and up to `limit` changes after `since`.
    async fn realm_changes(
        &self,
        id: &OrganizationId,
        realm: RealmId,
        since: u64,
        limit: u64,
    ) -> StoreResult<(u64, Vec<VlobChange>)>;

    /// A user's messages from index `from` on: at most `limit` of them and `budget` bytes (the
    /// first always fits); `true` when more follow.
    async fn messages(
        &self,
        id: &OrganizationId,
        user: UserId,
        from: u64,
        limit: u64,
        budget: usize,
    ) -> StoreResult<(Vec<IncomingMessage>, bool)>;

    /// Refuses a block of `size` more bytes if it would exceed the storage quota.
    async fn check_storage(&self, id: &OrganizationId, size: u64) -> StoreResult<()>;

    /// Records a stored block (its bytes live in the block store) and counts its size against
    /// the storage quota.
    async fn record_block(
        &self,
        id: &OrganizationId,
        realm: RealmId,
        block: BlockId,
        size: u64,
        author: DeviceId,
    ) -> StoreResult<()>;

    /// Sets an organization's quotas.
    async fn set_quotas(&self, id: &OrganizationId, quotas: Quotas) -> StoreResult<()>;

    /// An organization's quotas.
    async fn quotas(&self, id: &OrganizationId) -> StoreResult<Quotas>;

    /// The bytes an organization stores, counted against its storage quota: blocks, manifests,
    /// workspace certificates and messages.
    async fn stored_bytes(&self, id: &OrganizationId) -> StoreResult<u64>;

    /// Remembers a signed request (by the digest of what was signed) until `expires`; `false`
    /// if it was seen before: a replay. Shared by every server process of the deployment.
    async fn remember_request(
        &self,
        id: &OrganizationId,
        request: Digest,
        expires: Timestamp,
    ) -> StoreResult<bool>;
}

/// A message to queue for a recipient.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// The recipient.
    pub recipient: UserId,
    /// The sending device.
    pub sender: DeviceId,
    /// When the server received it.
    pub received: Timestamp,
    /// Signed and sealed content.
    pub sealed: Vec<u8>,
}

/// Where encrypted blocks live. Blocks are immutable: a block id is written once.
#[async_trait]
pub trait BlockStore: Send + Sync + 'static {
    /// Stores a block; storing the same bytes again is a no-op, other bytes are refused.
    async fn put(
        &self,
        id: &OrganizationId,
        realm: RealmId,
        block: BlockId,
        bytes: Vec<u8>,
    ) -> StoreResult<()>;

    /// A block's bytes, if stored.
    async fn get(
        &self,
        id: &OrganizationId,
        realm: RealmId,
        block: BlockId,
    ) -> StoreResult<Option<Vec<u8>>>;
}
