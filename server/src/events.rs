//! The event hub: handlers publish, Server-Sent Event streams subscribe and filter.

use strongroom_protocol::ids::OrganizationId;
use strongroom_protocol::wire::ServerEvent;
use tokio::sync::broadcast;

/// Fans events out to every open stream. A slow stream that falls behind is told to catch up
/// by polling (it gets a `lagged` event), never blocks the others.
#[derive(Clone)]
pub struct EventHub {
    sender: broadcast::Sender<(OrganizationId, ServerEvent)>,
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
            sender: broadcast::channel(1024).0,
        }
    }

    /// Publishes an event of an organization.
    pub fn publish(&self, org: &OrganizationId, event: ServerEvent) {
        // No subscriber is fine: clients that are offline catch up by polling.
        let _ = self.sender.send((org.clone(), event));
    }

    /// A new subscription.
    pub fn subscribe(&self) -> broadcast::Receiver<(OrganizationId, ServerEvent)> {
        self.sender.subscribe()
    }
}
