//! Server settings.

use std::net::SocketAddr;
use std::path::PathBuf;
use strongroom_protocol::links::ServerAddr;

/// Everything `strongroom-server run` needs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Data directory: the SQLite database, the administrator token, the outbox.
    pub data_dir: PathBuf,
    /// `smtp://host:port` (or `smtps://...`) for invitation emails; none writes to the outbox.
    pub smtp_url: Option<String>,
    /// Sender address of invitation emails.
    pub email_from: String,
    /// The address clients use to reach this server, written into links. Defaults to
    /// `http://` and the listening address.
    pub public_url: Option<ServerAddr>,
}

impl ServerConfig {
    /// The default data directory: `$XDG_DATA_HOME/strongroom-server`, or
    /// `~/.local/share/strongroom-server`.
    pub fn default_data_dir() -> PathBuf {
        if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
            return PathBuf::from(dir).join("strongroom-server");
        }
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| ".".into());
        home.join(".local/share/strongroom-server")
    }
}
