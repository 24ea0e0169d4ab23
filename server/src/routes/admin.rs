use axum::extract::State;
use rand_core::OsRng;
use strongroom_protocol::ids::BootstrapToken;
use strongroom_protocol::links::BootstrapLink;
use strongroom_protocol::wire::{CreateOrganizationRequest, CreateOrganizationResponse};

use crate::auth::Administrator;
use crate::clock::now;
use crate::error::ApiError;
use crate::extract::Msgpack;
use crate::state::AppState;

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
