//! Every failure a client can see: a typed [`ErrorCode`], an HTTP status and one sentence.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use strongroom_protocol::encoding::Encoded;
use strongroom_protocol::trust::TrustError;
use strongroom_protocol::wire::{CONTENT_TYPE, ErrorCode, ErrorResponse};

use crate::store::StoreError;

/// An error answered to a client.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct ApiError {
    /// The code.
    pub code: ErrorCode,
    /// The sentence.
    pub message: String,
}

impl ApiError {
    /// An error with a code and a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// The HTTP status that goes with the code.
    pub fn status(&self) -> StatusCode {
        use ErrorCode::*;
        match self.code {
            MalformedRequest | InvalidCertificate => StatusCode::BAD_REQUEST,
            PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            NotFound | UnknownOrganization | UnknownInvitation | UnknownRealm | UnknownObject => {
                StatusCode::NOT_FOUND
            }
            RealmExists | VersionConflict | BadKeyIndex => StatusCode::CONFLICT,
            BadSignature
            | StaleTimestamp
            | Replayed
            | UnknownDevice
            | InvalidAdminToken
            | InvalidBootstrapToken => StatusCode::UNAUTHORIZED,
            QuotaExceeded => StatusCode::FORBIDDEN,
            DeviceRevoked | NotAllowed => StatusCode::FORBIDDEN,
            OrganizationExists | AlreadyBootstrapped | EmailInUse | Conflict | AttemptMismatch
            | AttemptAborted => StatusCode::CONFLICT,
            NotBootstrapped => StatusCode::CONFLICT,
            InvitationCancelled | InvitationAlreadyUsed | InvitationExpired => StatusCode::GONE,
            Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The organization named in the path does not exist.
    pub fn unknown_organization(org: &str) -> Self {
        Self::new(
            ErrorCode::UnknownOrganization,
            format!("organization {org:?} does not exist on this server"),
        )
    }

    /// The body could not be decoded.
    pub fn malformed(reason: impl std::fmt::Display) -> Self {
        Self::new(
            ErrorCode::MalformedRequest,
            format!("malformed request: {reason}"),
        )
    }
}

impl From<TrustError> for ApiError {
    fn from(e: TrustError) -> Self {
        let code = match e {
            TrustError::EmailInUse(_) => ErrorCode::EmailInUse,
            TrustError::AuthorNotAdmin(_) => ErrorCode::NotAllowed,
            TrustError::OutOfBallpark(_) => ErrorCode::StaleTimestamp,
            _ => ErrorCode::InvalidCertificate,
        };
        Self::new(code, e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Api(api) => api,
            StoreError::Backend(reason) => {
                tracing::error!(%reason, "metadata store failure");
                Self::new(
                    ErrorCode::Internal,
                    "the server's storage failed; see its log",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.code == ErrorCode::Internal {
            tracing::error!(message = %self.message, "internal error");
        } else {
            tracing::debug!(code = ?self.code, message = %self.message, "request refused");
        }
        let body = ErrorResponse {
            code: self.code,
            message: self.message.clone(),
        }
        .encode();
        (
            self.status(),
            [(axum::http::header::CONTENT_TYPE, CONTENT_TYPE)],
            body,
        )
            .into_response()
    }
}
