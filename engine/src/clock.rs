//! The client's clock, read in one place.

use strongroom_protocol::time::Timestamp;

/// Now, in microseconds since the epoch.
pub fn now() -> Timestamp {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0);
    Timestamp::from_micros(micros)
}

/// A timestamp for a new certificate: now, but strictly after the chain's last one, since
/// timestamps must increase along the chain even if this computer's clock lags a little.
pub fn certificate_time(last: Option<Timestamp>) -> Timestamp {
    let now = now();
    match last {
        Some(last) if now <= last => last.plus_micros(1),
        _ => now,
    }
}
