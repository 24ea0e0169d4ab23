use crate::crypto::hash::Digest;
use crate::encoding::Encoded;
use crate::ids::{DeviceId, OrganizationId};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// Header naming the signing device.
pub const HEADER_DEVICE: &str = "strongroom-device";
/// Header with the request's timestamp (microseconds since the epoch).
pub const HEADER_TIMESTAMP: &str = "strongroom-timestamp";
/// Header with the base64 Ed25519 signature of the encoded [`RequestSignature`].
pub const HEADER_SIGNATURE: &str = "strongroom-signature";
/// How far a request's timestamp may be from the server's clock: five minutes.
pub const MAX_CLOCK_SKEW_MICROS: i64 = crate::time::CLOCK_SKEW_MICROS;

/// What a device signs for each request: it binds the method, the path with its query, the
/// organization, the time and the body, so that none can be changed or moved to another request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestSignature {
    /// The organization.
    pub organization: OrganizationId,
    /// The signing device.
    pub device: DeviceId,
    /// `GET`, `POST`...
    pub method: String,
    /// Path and query, as sent.
    pub path: String,
    /// When the request was made.
    pub timestamp: Timestamp,
    /// BLAKE3 of the body.
    pub body_digest: Digest,
}

impl Encoded for RequestSignature {
    const TAG: &'static str = "request-signature";
    const VERSION: u8 = 1;
}
