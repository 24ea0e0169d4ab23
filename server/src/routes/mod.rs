//! The HTTP API, by family:
//!
//! - `/admin/...`: the server administrator (bearer token of `DATA/admin.token`);
//! - `/anonymous/{org}/...`: bootstrap;
//! - `/invited/{org}/...`: the claimer of an invitation (bearer invitation token);
//! - `/authenticated/{org}/...`: devices, every request signed.

mod admin;
mod bootstrap;
mod certificates;
mod events;
mod invitations;
mod realms;

use axum::Router;
use axum::routing::{get, post};
use strongroom_protocol::wire::{ErrorCode, MAX_BLOCK_BYTES};

use crate::auth::authenticate_device;
use crate::error::ApiError;
use crate::state::AppState;

/// The whole API.
pub fn router(state: AppState) -> Router {
    let authenticated = Router::new()
        .route(
            "/certificates",
            get(certificates::list).post(certificates::upload),
        )
        .route(
            "/invitations",
            get(invitations::list).post(invitations::create),
        )
        .route(
            "/invitations/{id}",
            get(invitations::info).delete(invitations::cancel),
        )
        .route("/invitations/{id}/join", post(invitations::greeter_join))
        .route(
            "/invitations/{id}/steps",
            get(invitations::greeter_steps).post(invitations::greeter_post_step),
        )
        .route("/invitations/{id}/abort", post(invitations::greeter_abort))
        .route("/invitations/{id}/complete", post(invitations::complete))
        .route("/events", get(events::organization_events))
        .route("/messages", get(realms::messages))
        .route("/realms/{realm}", post(realms::create))
        .route(
            "/realms/{realm}/certificates",
            get(realms::certificates).post(realms::add_certificate),
        )
        .route("/realms/{realm}/vlobs", post(realms::write_vlob))
        .route("/realms/{realm}/vlobs/read", post(realms::read_vlobs))
        .route("/realms/{realm}/vlobs/batch", post(realms::write_vlobs))
        .route(
            "/realms/{realm}/vlobs/{id}/versions",
            get(realms::vlob_history),
        )
        .route(
            "/realms/{realm}/vlobs/{id}/versions/{version}",
            get(realms::vlob_version),
        )
        .route("/realms/{realm}/changes", get(realms::changes))
        .route(
            "/realms/{realm}/blocks/{block}",
            get(realms::get_block).put(realms::put_block),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            authenticate_device,
        ));
    let invited = Router::new()
        .route("/invitation", get(invitations::claimer_info))
        .route("/invitation/join", post(invitations::claimer_join))
        .route(
            "/invitation/steps",
            get(invitations::claimer_steps).post(invitations::claimer_post_step),
        )
        .route("/invitation/abort", post(invitations::claimer_abort))
        .route("/invitation/events", get(events::invitation_events));
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/admin/organizations", post(admin::create_organization))
        .route(
            "/admin/organizations/{org}/quotas",
            get(admin::quotas).put(admin::set_quotas),
        )
        .route("/anonymous/{org}/bootstrap", post(bootstrap::bootstrap))
        .nest("/invited/{org}", invited)
        .nest("/authenticated/{org}", authenticated)
        .fallback(|| async { ApiError::new(ErrorCode::NotFound, "no such endpoint") })
        // Every handler reads its body under its own limit (`Msgpack<T, LIMIT>`, `read_body`);
        // axum's default of 2 MB would refuse blocks the protocol allows, with an untyped error.
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BLOCK_BYTES))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}
