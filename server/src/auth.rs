//! Who is calling: a signed device, an invitation's bearer token, or the server administrator.

use axum::extract::{FromRequestParts, OriginalUri, Request, State};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use strongroom_protocol::crypto::hash::Digest;
use strongroom_protocol::crypto::signing::{Signature, VerifyKey};
use strongroom_protocol::encoding::Encoded;
use strongroom_protocol::ids::{DeviceId, InvitationToken, OrganizationId};
use strongroom_protocol::time::Timestamp;
use strongroom_protocol::wire::{
    ErrorCode, HEADER_DEVICE, HEADER_SIGNATURE, HEADER_TIMESTAMP, MAX_BLOCK_BYTES,
    MAX_CLOCK_SKEW_MICROS, RequestSignature,
};

use crate::clock::now;
use crate::error::ApiError;
use crate::extract::read_body;
use crate::state::AppState;
use crate::store::{InvitationRecord, OrganizationRecord, UserRecord};

/// A request whose signature checked out, from a device of a non-revoked user.
#[derive(Debug, Clone)]
pub struct AuthenticatedDevice {
    /// The organization.
    pub org: OrganizationId,
    /// The device.
    pub device_id: DeviceId,
    /// Its user.
    pub user: UserRecord,
    /// Its public key, which checks what it seals.
    pub verify_key: VerifyKey,
}

/// The organization named by the second path segment (`/family/{org}/...`).
pub async fn organization_from_path(
    state: &AppState,
    path: &str,
) -> Result<OrganizationRecord, ApiError> {
    let name = path.split('/').nth(2).unwrap_or_default();
    let org: OrganizationId = name
        .parse()
        .map_err(|_| ApiError::unknown_organization(name))?;
    state
        .store
        .organization(&org)
        .await?
        .ok_or_else(|| ApiError::unknown_organization(name))
}

/// The URI as the client sent it: nested routers see it without their prefix.
fn original_uri(parts: &Parts) -> axum::http::Uri {
    parts
        .extensions
        .get::<OriginalUri>()
        .map(|o| o.0.clone())
        .unwrap_or_else(|| parts.uri.clone())
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, ApiError> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::BadSignature,
                format!("the request is not signed (missing {name} header)"),
            )
        })
}

fn bad_signature() -> ApiError {
    ApiError::new(
        ErrorCode::BadSignature,
        "the request's signature does not verify",
    )
}

/// Middleware of the `/authenticated/{org}` family: checks the device signature over method,
/// path, timestamp and body, the clock skew, and that the device's user is not revoked.
pub async fn authenticate_device(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let (mut parts, body) = request.into_parts();
    let uri = original_uri(&parts);
    let org = organization_from_path(&state, uri.path()).await?;
    if org.root_verify_key.is_none() {
        return Err(ApiError::new(
            ErrorCode::NotBootstrapped,
            "this organization is not bootstrapped yet",
        ));
    }
    let device_id: DeviceId = header(&parts.headers, HEADER_DEVICE)?
        .parse()
        .map_err(|_| ApiError::new(ErrorCode::BadSignature, "malformed device header"))?;
    let timestamp = Timestamp::from_micros(
        header(&parts.headers, HEADER_TIMESTAMP)?
            .parse()
            .map_err(|_| ApiError::new(ErrorCode::BadSignature, "malformed timestamp header"))?,
    );
    let signature = data_encoding::BASE64
        .decode(header(&parts.headers, HEADER_SIGNATURE)?.as_bytes())
        .ok()
        .and_then(|b| <[u8; 64]>::try_from(b).ok())
        .map(Signature::from_bytes)
        .ok_or_else(bad_signature)?;
    let skew = timestamp.distance_micros(now());
    if skew > MAX_CLOCK_SKEW_MICROS as u64 {
        return Err(ApiError::new(
            ErrorCode::StaleTimestamp,
            format!(
                "the request's timestamp is {} seconds away from the server's clock (at most {} allowed); check this computer's clock",
                skew / 1_000_000,
                MAX_CLOCK_SKEW_MICROS / 1_000_000
            ),
        ));
    }
    let device = state
        .store
        .device(&org.id, device_id)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::UnknownDevice,
                format!("device {device_id} is not a device of this organization"),
            )
        })?;
    // The largest body of any authenticated endpoint (a block); each endpoint then applies its own
    // limit.
    let bytes = read_body(body, MAX_BLOCK_BYTES).await?;
    let path = uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .to_owned();
    let signed = RequestSignature {
        organization: org.id.clone(),
        device: device_id,
        method: parts.method.as_str().to_owned(),
        path,
        timestamp,
        body_digest: Digest::of(&bytes),
    };
    let signed = signed.encode();
    device
        .verify_key
        .verify(&signed, &signature)
        .map_err(|_| bad_signature())?;
    // A signed request is good once: what was signed (device, method, path, time, body) is
    // remembered until its timestamp leaves the clock window, which refuses it anyway after.
    // Keyed by what was signed rather than by the signature bytes, so that no other encoding
    // of the same signature passes for a new request.
    let first_time = state
        .store
        .remember_request(
            &org.id,
            Digest::of(&signed),
            timestamp.plus_micros(MAX_CLOCK_SKEW_MICROS),
        )
        .await?;
    if !first_time {
        return Err(ApiError::new(
            ErrorCode::Replayed,
            "this signed request was already received (a replay); a client signs every request anew",
        ));
    }
    let user = state
        .store
        .user(&org.id, device.user_id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::Internal, "device without a user"))?;
    if user.revoked_on.is_some() {
        return Err(ApiError::new(
            ErrorCode::DeviceRevoked,
            format!(
                "user {} was revoked from this organization; their devices can no longer connect",
                user.email
            ),
        ));
    }
    parts.extensions.insert(AuthenticatedDevice {
        org: org.id,
        device_id,
        user,
        verify_key: device.verify_key,
    });
    Ok(next
        .run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await)
}

impl FromRequestParts<AppState> for AuthenticatedDevice {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<AuthenticatedDevice>()
            .cloned()
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::Internal,
                    "route is missing the authentication layer",
                )
            })
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// A claimer, identified by the invitation token it holds.
#[derive(Debug, Clone)]
pub struct Claimer {
    /// The organization.
    pub org: OrganizationId,
    /// The invitation.
    pub invitation: InvitationRecord,
}

impl FromRequestParts<AppState> for Claimer {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let org = organization_from_path(state, original_uri(parts).path()).await?;
        let unknown = || {
            ApiError::new(
                ErrorCode::UnknownInvitation,
                "this invitation does not exist in this organization",
            )
        };
        let token: InvitationToken = bearer(&parts.headers)
            .ok_or_else(unknown)?
            .parse()
            .map_err(|_| unknown())?;
        // Looked up by its digest: the token itself is never compared or stored.
        let invitation = state
            .store
            .invitation(&org.id, token.id())
            .await?
            .ok_or_else(unknown)?;
        ensure_not_expired(&invitation)?;
        Ok(Claimer {
            org: org.id,
            invitation,
        })
    }
}

/// A pending invitation past its expiry date works no more.
pub fn ensure_not_expired(invitation: &InvitationRecord) -> Result<(), ApiError> {
    if invitation.expired_at(now()) {
        return Err(ApiError::new(
            ErrorCode::InvitationExpired,
            format!(
                "this invitation expired on {}; ask for a new one",
                invitation.expires_on
            ),
        ));
    }
    Ok(())
}

/// The server administrator, holding the token of `DATA/admin.token`.
pub struct Administrator;

impl FromRequestParts<AppState> for Administrator {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match bearer(&parts.headers) {
            Some(token) if state.admin_token.matches(token) => Ok(Administrator),
            _ => Err(ApiError::new(
                ErrorCode::InvalidAdminToken,
                "the administrator token is missing or wrong",
            )),
        }
    }
}
