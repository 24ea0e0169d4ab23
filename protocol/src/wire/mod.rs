//! What travels between clients and the server: request and response bodies, errors, events and
//! request signatures. Bodies are MessagePack envelopes ([`crate::encoding`]).

mod errors;
mod events;
mod identity;
mod invitations;
mod signature;

pub use errors::{ErrorCode, ErrorResponse};
pub use events::{EventError, ServerEvent};
pub use identity::{
    Ack, BootstrapRequest, CertificatesResponse, CreateOrganizationRequest,
    CreateOrganizationResponse, UploadCertificateRequest, UploadCertificateResponse,
};
pub use invitations::{
    AbortReason, AbortRequest, AttemptAbort, CompleteInvitationRequest, CreateInvitationRequest,
    CreateInvitationResponse, EmailDelivery, InvitationInfo, InvitationKind,
    InvitationListResponse, InvitationStatus, JoinAttemptResponse, PostStepRequest, StepsResponse,
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

/// At most this many certificates per [`CertificatesResponse`]; clients page through the rest.
pub const CERTIFICATES_PAGE: u64 = 1000;
