//! The server's clock, read in one place.

use strongroom_protocol::time::Timestamp;

/// Now, in microseconds since the epoch.
pub fn now() -> Timestamp {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0);
    Timestamp::from_micros(micros)
}
