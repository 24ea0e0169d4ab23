use std::convert::Infallible;

use axum::extract::State;
use axum::response::IntoResponse;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::StreamExt;
use strongroom_protocol::wire::ServerEvent;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use crate::auth::{AuthenticatedDevice, Claimer};
use crate::events::{HubEvent, Published};
use crate::state::AppState;

/// What a stream does with one published item.
enum Step {
    /// Sends this event.
    Send(ServerEvent),
    /// Not for this stream.
    Skip,
    /// The stream ends (its device's user was revoked).
    End,
}

/// A stream of the hub's events chosen by `choose`, ending when the server shuts down or when
/// `choose` says so.
fn stream<F>(state: &AppState, choose: F) -> impl IntoResponse + use<F>
where
    F: Fn(&Published) -> Step + Send + 'static,
{
    let mut shutdown = state.shutdown.clone();
    let events = BroadcastStream::new(state.events.subscribe())
        .map(move |item| match item {
            Ok(published) => choose(&published),
            Err(BroadcastStreamRecvError::Lagged(_)) => Step::Send(ServerEvent::Lagged),
        })
        .take_while(|step| std::future::ready(!matches!(step, Step::End)))
        .filter_map(|step| {
            std::future::ready(match step {
                Step::Send(e) => {
                    let (name, data) = e.to_sse();
                    Some(Ok::<_, Infallible>(Event::default().event(name).data(data)))
                }
                Step::Skip | Step::End => None,
            })
        })
        .take_until(async move {
            let _ = shutdown.wait_for(|stopping| *stopping).await;
        });
    Sse::new(events).keep_alive(KeepAlive::default())
}

/// `GET /authenticated/{org}/events`: new certificates, invitation activity, realm changes and
/// this user's messages; the stream ends when the user is revoked.
pub async fn organization_events(
    State(state): State<AppState>,
    auth: AuthenticatedDevice,
) -> impl IntoResponse {
    let (org, user) = (auth.org, auth.user.user_id);
    stream(&state, move |p| {
        if p.org != org || p.audience.is_some_and(|a| a != user) {
            return Step::Skip;
        }
        match &p.event {
            HubEvent::Event(event) => Step::Send(event.clone()),
            HubEvent::Revoked => Step::End,
        }
    })
}

/// `GET /invited/{org}/invitation/events`: activity on the claimer's invitation only.
pub async fn invitation_events(
    State(state): State<AppState>,
    claimer: Claimer,
) -> impl IntoResponse {
    let (org, id) = (claimer.org, claimer.invitation.id);
    stream(&state, move |p| match &p.event {
        HubEvent::Event(event @ ServerEvent::Invitation { id: i }) if p.org == org && *i == id => {
            Step::Send(event.clone())
        }
        _ => Step::Skip,
    })
}
