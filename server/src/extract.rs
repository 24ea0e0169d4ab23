//! MessagePack bodies in and out, with a bounded size and typed errors.

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::response::{IntoResponse, Response};
use strongroom_protocol::encoding::Encoded;
use strongroom_protocol::wire::{CONTENT_TYPE, ErrorCode, MAX_BODY_BYTES};

use crate::error::ApiError;

/// A request or response body in the protocol's envelope; a request body is refused beyond
/// `LIMIT` bytes.
pub struct Msgpack<T, const LIMIT: usize = MAX_BODY_BYTES>(pub T);

/// Reads a whole body, refusing more than `limit` bytes.
pub async fn read_body(body: Body, limit: usize) -> Result<axum::body::Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        // `to_bytes` reports an exceeded limit as a length-limit error in its source chain.
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(s) = source {
            if s.is::<http_body_util::LengthLimitError>() {
                return too_large(limit);
            }
            source = s.source();
        }
        ApiError::malformed(format!("the body could not be read: {e}"))
    })
}

pub(crate) fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("the request body is larger than the {limit} bytes this endpoint accepts"),
    )
}

impl<S: Send + Sync, T: Encoded, const LIMIT: usize> FromRequest<S> for Msgpack<T, LIMIT> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let bytes = read_body(req.into_body(), LIMIT).await?;
        T::decode(&bytes).map(Msgpack).map_err(ApiError::malformed)
    }
}

impl<T: Encoded, const LIMIT: usize> IntoResponse for Msgpack<T, LIMIT> {
    fn into_response(self) -> Response {
        (
            [(axum::http::header::CONTENT_TYPE, CONTENT_TYPE)],
            self.0.encode(),
        )
            .into_response()
    }
}
