//! What every handler shares.

use std::collections::HashMap;
use std::sync::Arc;

use strongroom_protocol::ids::{OrganizationId, RealmId};
use strongroom_protocol::trust::CertificateChain;
use strongroom_protocol::workspace::RealmChain;

use strongroom_protocol::links::ServerAddr;
use tokio::sync::watch;

use crate::admin_token::AdminToken;
use crate::events::EventHub;
use crate::mail::Mailer;
use crate::store::{BlockStore, MetadataStore};

/// Shared state of the server.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// The fields of [`AppState`].
pub struct Inner {
    /// Metadata.
    pub store: Arc<dyn MetadataStore>,
    /// Encrypted blocks.
    pub blocks: Arc<dyn BlockStore>,
    /// Invitation emails.
    pub mailer: Arc<dyn Mailer>,
    /// Event streams.
    pub events: EventHub,
    /// How clients reach this server (for links).
    pub public_url: ServerAddr,
    /// The administrator token.
    pub admin_token: AdminToken,
    /// How long invitations last.
    pub invitation_lifetime: std::time::Duration,
    /// Becomes true when the server shuts down, ending event streams.
    pub shutdown: watch::Receiver<bool>,
    /// Each organization's validated chain, as last read from the store. Holding the lock
    /// serializes certificate writes in this process; the store's optimistic length check covers
    /// several processes.
    pub chains: tokio::sync::Mutex<HashMap<OrganizationId, CertificateChain>>,
    /// Each workspace's validated realm chain, likewise; locked after `chains`, never before.
    pub realm_chains: tokio::sync::Mutex<HashMap<(OrganizationId, RealmId), RealmChain>>,
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
