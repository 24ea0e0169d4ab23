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
    /// How long an invitation stays valid after it is created.
    pub invitation_lifetime: std::time::Duration,
}

/// Invitations last a week unless the administrator says otherwise.
pub const DEFAULT_INVITATION_LIFETIME: std::time::Duration =
    std::time::Duration::from_secs(7 * 24 * 3600);

/// Reads a duration such as `90s`, `30m`, `12h` or `7d` (a bare number is seconds).
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let count: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 90s, 30m, 12h or 7d"))?;
    let seconds = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{text:?}: the unit must be s, m, h or d")),
    };
    count
        .checked_mul(seconds)
        .filter(|s| *s > 0 && *s <= 10 * 365 * 86_400)
        .map(std::time::Duration::from_secs)
        .ok_or_else(|| format!("{text:?} must be more than zero and at most ten years"))
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

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("12h"), Ok(Duration::from_secs(43_200)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(604_800)));
        for bad in ["", "0", "7w", "d", "-1s", "99999999999999999999d", "4000d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
