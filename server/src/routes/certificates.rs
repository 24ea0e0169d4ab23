use std::collections::HashMap;

use axum::extract::{Query, State};
use serde_bytes::ByteBuf;
use strongroom_protocol::certificates::Signer;
use strongroom_protocol::ids::OrganizationId;
use strongroom_protocol::trust::CertificateChain;
use strongroom_protocol::wire::{
    CERTIFICATES_PAGE, CertificatesResponse, ErrorCode, ReceivedCertificate, ServerEvent,
    UploadCertificateRequest, UploadCertificateResponse,
};

use crate::auth::AuthenticatedDevice;
use crate::clock::now;
use crate::error::ApiError;
use crate::extract::Msgpack;
use crate::state::AppState;
use crate::store::{Completion, NewCertificate};

/// `?from=N`: where a listing starts.
#[derive(serde::Deserialize)]
pub struct FromQuery {
    #[serde(default)]
    pub from: u64,
}

/// `GET /authenticated/{org}/certificates?from=N`
pub async fn list(
    State(state): State<AppState>,
    auth: AuthenticatedDevice,
    Query(query): Query<FromQuery>,
) -> Result<Msgpack<CertificatesResponse>, ApiError> {
    let certificates = state
        .store
        .certificates(&auth.org, query.from, Some(CERTIFICATES_PAGE))
        .await?;
    Ok(Msgpack(CertificatesResponse {
        from: query.from,
        certificates: certificates
            .into_iter()
            .map(|c| ReceivedCertificate {
                certificate: ByteBuf::from(c.bytes),
                received: c.received,
            })
            .collect(),
    }))
}

/// The organization's chain, brought up to date with the store: only certificates added since
/// the cached copy (by this process or another one) are read and validated.
pub(crate) async fn current_chain<'a>(
    state: &AppState,
    chains: &'a mut HashMap<OrganizationId, CertificateChain>,
    org: &OrganizationId,
) -> Result<&'a mut CertificateChain, ApiError> {
    if !chains.contains_key(org) {
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
        chains.insert(org.clone(), CertificateChain::new(root));
    }
    let chain = chains.get_mut(org).expect("inserted above");
    for stored in state.store.certificates(org, chain.len(), None).await? {
        chain.add(&stored.bytes, stored.received).map_err(|e| {
            ApiError::new(
                ErrorCode::Internal,
                format!("the stored certificate chain is invalid: {e}"),
            )
        })?;
    }
    Ok(chain)
}

/// Validates certificates signed by the calling device against the chain and appends them
/// (with an invitation's completion, atomically). Each must be dated within the clock skew of
/// now (the ballpark rule), and now is recorded as its reception time. The event streams of
/// users revoked by these certificates are closed.
pub async fn append_signed_by(
    state: &AppState,
    auth: &AuthenticatedDevice,
    certificates: Vec<ByteBuf>,
    completion: Option<Completion>,
    check: impl Fn(&[NewCertificate]) -> Result<(), ApiError>,
) -> Result<u64, ApiError> {
    let mut chains = state.chains.lock().await;
    let current = current_chain(state, &mut chains, &auth.org).await?;
    let expected_len = current.len();
    let mut chain = current.clone();
    let mut new = Vec::with_capacity(certificates.len());
    let received = now();
    for bytes in certificates {
        let certificate = chain.add(&bytes, received)?;
        if certificate.author() != Signer::Device(auth.device_id) {
            return Err(ApiError::new(
                ErrorCode::NotAllowed,
                "a device may only upload certificates it signed itself",
            ));
        }
        new.push(NewCertificate {
            bytes: bytes.into_vec(),
            certificate,
            received,
        });
    }
    check(&new)?;
    let revoked: Vec<_> = new
        .iter()
        .filter_map(|c| match &c.certificate {
            strongroom_protocol::certificates::Certificate::RevokedUser(r) => Some(r.user_id),
            _ => None,
        })
        .collect();
    let len = state
        .store
        .append_certificates(&auth.org, expected_len, new, completion)
        .await?;
    *current = chain;
    state
        .events
        .publish(&auth.org, ServerEvent::Certificates { count: len });
    for user in revoked {
        state.events.revoke(&auth.org, user);
    }
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
