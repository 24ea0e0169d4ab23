//! The event hub: handlers publish, Server-Sent Event streams subscribe and filter.

use strongroom_protocol::ids::{OrganizationId, UserId};
use strongroom_protocol::wire::ServerEvent;
use tokio::sync::broadcast;

/// An event with who may see it.
#[derive(Debug, Clone)]
pub struct Published {
    /// The organization.
    pub org: OrganizationId,
    /// Only this user's devices, or every device of the organization.
    pub audience: Option<UserId>,
    /// The event, or the end of a user's streams.
    pub event: HubEvent,
}

/// What travels through the hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HubEvent {
    /// An event for the streams of its audience.
    Event(ServerEvent),
    /// The audience was revoked: their devices' open streams end now.
    Revoked,
}

/// Fans events out to every open stream. A slow stream that falls behind is told to catch up
/// by polling (it gets a `lagged` event), never blocks the others.
#[derive(Clone)]
pub struct EventHub {
    sender: broadcast::Sender<Published>,
}

impl Default for EventHub {
    fn default() -> Self {
        Self::new()
    }
}

impl EventHub {
    /// A hub.
    pub fn new() -> Self {
        Self {
            sender: broadcast::channel(4096).0,
        }
    }

    /// Publishes an event to every device of an organization.
    pub fn publish(&self, org: &OrganizationId, event: ServerEvent) {
        self.send(org, None, event);
    }

    /// Publishes an event to one user's devices.
    pub fn publish_to(&self, org: &OrganizationId, user: UserId, event: ServerEvent) {
        self.send(org, Some(user), event);
    }

    /// Ends the open streams of a revoked user's devices.
    pub fn revoke(&self, org: &OrganizationId, user: UserId) {
        let _ = self.sender.send(Published {
            org: org.clone(),
            audience: Some(user),
            event: HubEvent::Revoked,
        });
    }

    fn send(&self, org: &OrganizationId, audience: Option<UserId>, event: ServerEvent) {
        // No subscriber is fine: clients that are offline catch up by polling.
        let _ = self.sender.send(Published {
            org: org.clone(),
            audience,
            event: HubEvent::Event(event),
        });
    }

    /// A new subscription.
    pub fn subscribe(&self) -> broadcast::Receiver<Published> {
        self.sender.subscribe()
    }
}
