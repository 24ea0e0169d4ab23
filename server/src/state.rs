//! What every handler shares.

use std::collections::HashMap;
use std::sync::Arc;

use strongroom_protocol::ids::OrganizationId;
use strongroom_protocol::trust::CertificateChain;

use strongroom_protocol::links::ServerAddr;
use tokio::sync::watch;

use crate::admin_token::AdminToken;
use crate::events::EventHub;
use crate::mail::Mailer;
use crate::store::MetadataStore;

/// Shared state of the server.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// The fields of [`AppState`].
pub struct Inner {
    /// Metadata.
    pub store: Arc<dyn MetadataStore>,
    /// Invitation emails.
    pub mailer: Arc<dyn Mailer>,
    /// Event streams.
    pub events: EventHub,
    /// How clients reach this server (for links).
    pub public_url: ServerAddr,
    /// The administrator token.
    pub admin_token: AdminToken,
    /// Becomes true when the server shuts down, ending event streams.
    pub shutdown: watch::Receiver<bool>,
    /// Each organization's validated chain, as last read from the store. Holding the lock
    /// serializes certificate writes in this process; the store's optimistic length check covers
    /// several processes.
    pub chains: tokio::sync::Mutex<HashMap<OrganizationId, CertificateChain>>,
}

impl AppState {
    /// Wraps the fields.
    pub fn new(inner: Inner) -> Self {
        Self(Arc::new(inner))
    }
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}
