use axum::extract::{Path, State};
use strongroom_protocol::certificates::Certificate;
use strongroom_protocol::ids::OrganizationId;
use strongroom_protocol::trust::CertificateChain;
use strongroom_protocol::wire::{Ack, BootstrapRequest, ErrorCode, ServerEvent};

use crate::clock::now;
use crate::error::ApiError;
use crate::extract::Msgpack;
use crate::state::AppState;
use crate::store::NewCertificate;

/// `POST /anonymous/{org}/bootstrap`: stores the root verify key and the first user and device,
/// once. The root secret never reaches the server.
pub async fn bootstrap(
    State(state): State<AppState>,
    Path(org): Path<String>,
    Msgpack(request): Msgpack<BootstrapRequest>,
) -> Result<Msgpack<Ack>, ApiError> {
    let org: OrganizationId = org
        .parse()
        .map_err(|_| ApiError::unknown_organization(&org))?;
    state
        .store
        .organization(&org)
        .await?
        .ok_or_else(|| ApiError::unknown_organization(org.as_str()))?;
    let mut chain = CertificateChain::new(request.root_verify_key);
    let received = now();
    let user = chain.add(&request.user_certificate, received)?;
    let device = chain.add(&request.device_certificate, received)?;
    if !matches!(
        (&user, &device),
        (Certificate::User(_), Certificate::Device(_))
    ) {
        return Err(ApiError::new(
            ErrorCode::InvalidCertificate,
            "bootstrap takes a user certificate, then a device certificate",
        ));
    }
    let certificates = vec![
        NewCertificate {
            bytes: request.user_certificate.into_vec(),
            certificate: user,
            received,
        },
        NewCertificate {
            bytes: request.device_certificate.into_vec(),
            certificate: device,
            received,
        },
    ];
    state
        .store
        .bootstrap(
            &org,
            request.token.id(),
            request.root_verify_key,
            certificates,
            now(),
        )
        .await?;
    tracing::info!(organization = %org, "organization bootstrapped");
    state
        .events
        .publish(&org, ServerEvent::Certificates { count: 2 });
    Ok(Msgpack(Ack {}))
}
