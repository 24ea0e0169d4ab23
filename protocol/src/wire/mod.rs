//! What travels between clients and the server: request and response bodies, errors, events and
//! request signatures. Bodies are MessagePack envelopes ([`crate::encoding`]).

mod errors;
mod events;
mod identity;
mod invitations;
mod realms;
mod signature;

pub use errors::{ErrorCode, ErrorResponse};
pub use events::{EventError, ServerEvent};
pub use identity::{
    Ack, BootstrapRequest, CertificatesResponse, CreateOrganizationRequest,
    CreateOrganizationResponse, OrganizationQuotas, ReceivedCertificate, UploadCertificateRequest,
    UploadCertificateResponse,
};
pub use invitations::{
    AbortReason, AbortRequest, AttemptAbort, CompleteInvitationRequest, CreateInvitationRequest,
    CreateInvitationResponse, EmailDelivery, InvitationInfo, InvitationKind,
    InvitationListResponse, InvitationStatus, JoinAttemptResponse, PostStepRequest, StepsResponse,
};
pub use realms::{
    CreateRealmRequest, IncomingMessage, MessagesResponse, OutgoingMessage,
    RealmCertificateRequest, RealmCertificatesResponse, RealmChangesResponse,
    VlobBatchWriteRequest, VlobBatchWriteResponse, VlobChange, VlobHistoryResponse,
    VlobReadRequest, VlobReadResponse, VlobVersion, VlobVersionInfo, VlobWriteRequest,
    VlobWriteResponse, VlobWriteResult,
};
pub use signature::{
    HEADER_DEVICE, HEADER_SIGNATURE, HEADER_TIMESTAMP, MAX_CLOCK_SKEW_MICROS, RequestSignature,
};

/// The media type of every request and response body.
pub const CONTENT_TYPE: &str = "application/vnd.strongroom.v1+msgpack";

/// The largest request body the server accepts on identity endpoints (1 MiB).
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// The largest response a client reads from identity endpoints (16 MiB): a hostile server
/// cannot make it allocate without bound.
pub const MAX_RESPONSE_BYTES: usize = 16 << 20;

/// At most this many certificates per [`CertificatesResponse`] and
/// [`RealmCertificatesResponse`]; clients page through the rest.
pub const CERTIFICATES_PAGE: u64 = 1000;

/// The most versions, messages and other payload one answer carries (8 MiB, half of what a
/// client reads): a request that asks for more is answered in pages, so that no request makes
/// the server build an answer of unbounded size.
pub const MAX_READ_ANSWER_BYTES: usize = 8 << 20;

/// At most this many versions per [`VlobHistoryResponse`].
pub const HISTORY_PAGE: u64 = 5000;

/// At most this many messages per [`MessagesResponse`].
pub const MESSAGES_PAGE: u64 = 1000;

/// The largest sealed message the server queues (64 KiB; a message carries a workspace's name
/// and keys).
pub const MAX_MESSAGE_BYTES: usize = 64 << 10;

/// The largest step of the invitation exchange the server relays (64 KiB; the real ones hold
/// keys, nonces and ids).
pub const MAX_STEP_BYTES: usize = 64 << 10;

/// At most this many pending user invitations per organization (the listing stays bounded).
/// Device invitations do not count here: any member may create them, so that a member cannot
/// take every slot and block the ADMINs' user invitations (see
/// [`MAX_PENDING_DEVICE_INVITATIONS_PER_USER`]).
pub const MAX_PENDING_INVITATIONS: usize = 1000;

/// At most this many pending device invitations per user: enough to enroll a few devices at
/// once, too few for one member to crowd the organization's invitations.
pub const MAX_PENDING_DEVICE_INVITATIONS_PER_USER: usize = 5;

/// The largest encrypted manifest a vlob holds (2 MiB).
pub const MAX_VLOB_BYTES: usize = 2 << 20;

/// The largest request body of realm endpoints (a batch read, a vlob write): 4 MiB.
pub const MAX_REALM_BODY_BYTES: usize = 4 << 20;

/// The largest encrypted block (plaintext block size plus encryption overhead): 8 MiB.
pub const MAX_BLOCK_BYTES: usize = 8 << 20;

/// At most this many writes per [`VlobBatchWriteRequest`].
pub const MAX_BATCH_WRITES: usize = 1000;

/// At most this many changes per [`RealmChangesResponse`] and vlobs per [`VlobReadRequest`].
pub const REALM_PAGE: u64 = 5000;
