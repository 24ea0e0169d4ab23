use std::convert::Infallible;

use axum::extract::State;
use axum::response::IntoResponse;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::StreamExt;
use strongroom_protocol::wire::ServerEvent;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use crate::auth::{AuthenticatedDevice, Claimer};
use crate::events::Published;
use crate::state::AppState;

/// A stream of the hub's events that pass `keep`, ending when the server shuts down.
fn stream<F>(state: &AppState, keep: F) -> impl IntoResponse + use<F>
where
    F: Fn(&Published) -> bool + Send + 'static,
{
    let mut shutdown = state.shutdown.clone();
    let events = BroadcastStream::new(state.events.subscribe())
        .filter_map(move |item| {
            let event = match item {
                Ok(published) if keep(&published) => Some(published.event),
                Ok(_) => None,
                Err(BroadcastStreamRecvError::Lagged(_)) => Some(ServerEvent::Lagged),
            };
            std::future::ready(event.map(|e| {
                let (name, data) = e.to_sse();
                Ok::<_, Infallible>(Event::default().event(name).data(data))
            }))
        })
        .take_until(async move {
            let _ = shutdown.wait_for(|stopping| *stopping).await;
        });
    Sse::new(events).keep_alive(KeepAlive::default())
}

/// `GET /authenticated/{org}/events`: new certificates and invitation activity.
pub async fn organization_events(
    State(state): State<AppState>,
    auth: AuthenticatedDevice,
) -> impl IntoResponse {
    let (org, user) = (auth.org, auth.user.user_id);
    stream(&state, move |p| {
        p.org == org && p.audience.is_none_or(|a| a == user)
    })
}

/// `GET /invited/{org}/invitation/events`: activity on the claimer's invitation only.
pub async fn invitation_events(
    State(state): State<AppState>,
    claimer: Claimer,
) -> impl IntoResponse {
    let (org, id) = (claimer.org, claimer.invitation.id);
    stream(&state, move |p| {
        p.org == org && matches!(p.event, ServerEvent::Invitation { id: i } if i == id)
    })
}
