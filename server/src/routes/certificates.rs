use axum::extract::{Query, State};
use serde_bytes::ByteBuf;
use strongroom_protocol::certificates::Signer;
use strongroom_protocol::ids::OrganizationId;
use strongroom_protocol::trust::CertificateChain;
use strongroom_protocol::wire::{
    CertificatesResponse, ErrorCode, ServerEvent, UploadCertificateRequest,
    UploadCertificateResponse,
};

use crate::auth::AuthenticatedDevice;
use crate::error::ApiError;
use crate::extract::Msgpack;
use crate::state::AppState;
use crate::store::{Completion, NewCertificate};

#[derive(serde::Deserialize)]
pub struct FromQuery {
    #[serde(default)]
    from: u64,
}

/// `GET /authenticated/{org}/certificates?from=N`
pub async fn list(
    State(state): State<AppState>,
    auth: AuthenticatedDevice,
    Query(query): Query<FromQuery>,
) -> Result<Msgpack<CertificatesResponse>, ApiError> {
    let certificates = state.store.certificates(&auth.org, query.from).await?;
    Ok(Msgpack(CertificatesResponse {
        from: query.from,
        certificates: certificates.into_iter().map(ByteBuf::from).collect(),
    }))
}

/// The organization's chain as stored, validated from its root key.
pub async fn load_chain(
    state: &AppState,
    org: &OrganizationId,
) -> Result<CertificateChain, ApiError> {
    let record = state
        .store
        .organization(org)
        .await?
        .ok_or_else(|| ApiError::unknown_organization(org.as_str()))?;
    let root = record.root_verify_key.ok_or_else(|| {
        ApiError::new(
            ErrorCode::NotBootstrapped,
            "this organization is not bootstrapped yet",
        )
    })?;
    let stored = state.store.certificates(org, 0).await?;
    CertificateChain::from_certificates(root, stored.iter().map(Vec::as_slice)).map_err(|e| {
        ApiError::new(
            ErrorCode::Internal,
            format!("the stored certificate chain is invalid: {e}"),
        )
    })
}

/// Validates certificates signed by the calling device against the chain and appends them
/// (with an invitation's completion, atomically).
pub async fn append_signed_by(
    state: &AppState,
    auth: &AuthenticatedDevice,
    certificates: Vec<ByteBuf>,
    completion: Option<Completion>,
    check: impl Fn(&[NewCertificate]) -> Result<(), ApiError>,
) -> Result<u64, ApiError> {
    let _serialized = state.certificate_writes.lock().await;
    let mut chain = load_chain(state, &auth.org).await?;
    let expected_len = chain.len();
    let mut new = Vec::with_capacity(certificates.len());
    for bytes in certificates {
        let certificate = chain.add(&bytes)?;
        if certificate.author() != Signer::Device(auth.device_id) {
            return Err(ApiError::new(
                ErrorCode::NotAllowed,
                "a device may only upload certificates it signed itself",
            ));
        }
        new.push(NewCertificate {
            bytes: bytes.into_vec(),
            certificate,
        });
    }
    check(&new)?;
    let len = state
        .store
        .append_certificates(&auth.org, expected_len, new, completion)
        .await?;
    state
        .events
        .publish(&auth.org, ServerEvent::Certificates { count: len });
    Ok(len)
}

/// `POST /authenticated/{org}/certificates`: a certificate signed by the calling device, such
/// as a user revocation.
pub async fn upload(
    State(state): State<AppState>,
    auth: AuthenticatedDevice,
    Msgpack(request): Msgpack<UploadCertificateRequest>,
) -> Result<Msgpack<UploadCertificateResponse>, ApiError> {
    let len = append_signed_by(&state, &auth, vec![request.certificate], None, |_| Ok(())).await?;
    tracing::info!(organization = %auth.org, device = %auth.device_id, index = len - 1, "certificate added");
    Ok(Msgpack(UploadCertificateResponse { index: len - 1 }))
}
