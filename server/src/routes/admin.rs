use axum::extract::{Path, State};
use rand_core::OsRng;
use strongroom_protocol::ids::{BootstrapToken, OrganizationId};
use strongroom_protocol::links::BootstrapLink;
use strongroom_protocol::wire::{
    Ack, CreateOrganizationRequest, CreateOrganizationResponse, OrganizationQuotas,
};

use crate::auth::Administrator;
use crate::clock::now;
use crate::error::ApiError;
use crate::extract::Msgpack;
use crate::state::AppState;
use crate::store::Quotas;

/// `POST /admin/organizations`: a new organization and its one-time bootstrap link.
pub async fn create_organization(
    State(state): State<AppState>,
    _: Administrator,
    Msgpack(request): Msgpack<CreateOrganizationRequest>,
) -> Result<Msgpack<CreateOrganizationResponse>, ApiError> {
    let token = BootstrapToken::generate(&mut OsRng);
    state
        .store
        .create_organization(&request.organization, token.id(), now())
        .await?;
    tracing::info!(organization = %request.organization, "organization created");
    let link = BootstrapLink {
        server: state.public_url.clone(),
        organization: request.organization,
        token,
    };
    Ok(Msgpack(CreateOrganizationResponse {
        bootstrap_url: link.to_string(),
    }))
}

fn organization_named(name: &str) -> Result<OrganizationId, ApiError> {
    name.parse()
        .map_err(|_| ApiError::unknown_organization(name))
}

/// `GET /admin/organizations/{org}/quotas`
pub async fn quotas(
    State(state): State<AppState>,
    _: Administrator,
    Path(org): Path<String>,
) -> Result<Msgpack<OrganizationQuotas>, ApiError> {
    let org = organization_named(&org)?;
    let quotas = state.store.quotas(&org).await?;
    let stored = state.store.stored_bytes(&org).await?;
    Ok(Msgpack(OrganizationQuotas {
        storage_bytes: quotas.storage_bytes,
        workspaces: quotas.workspaces,
        devices: quotas.devices,
        stored_bytes: Some(stored),
    }))
}

/// `PUT /admin/organizations/{org}/quotas`: from now on, what would exceed a quota is refused
/// with `QuotaExceeded` (what is stored already stays).
pub async fn set_quotas(
    State(state): State<AppState>,
    _: Administrator,
    Path(org): Path<String>,
    Msgpack(request): Msgpack<OrganizationQuotas>,
) -> Result<Msgpack<Ack>, ApiError> {
    let org = organization_named(&org)?;
    state
        .store
        .set_quotas(
            &org,
            Quotas {
                storage_bytes: request.storage_bytes,
                workspaces: request.workspaces,
                devices: request.devices,
            },
        )
        .await?;
    tracing::info!(organization = %org, ?request, "quotas set");
    Ok(Msgpack(Ack {}))
}
