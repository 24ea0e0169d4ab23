//! Windows file times: 100-nanosecond intervals since 1601-01-01 (UTC).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// 1970-01-01 as a file time.
const UNIX_EPOCH_AS_FILETIME: u64 = 116_444_736_000_000_000;

/// `time` as a file time (times before 1970 are shown as 1970).
pub fn from_system_time(time: SystemTime) -> u64 {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let ticks = since.as_secs() * 10_000_000 + u64::from(since.subsec_nanos()) / 100;
    UNIX_EPOCH_AS_FILETIME + ticks
}

/// A file time as a system time; `None` for 0, which Windows uses for "leave unchanged", and
/// for times before 1970, which workspaces cannot hold.
pub fn to_system_time(filetime: u64) -> Option<SystemTime> {
    let ticks = filetime.checked_sub(UNIX_EPOCH_AS_FILETIME)?;
    if filetime == 0 {
        return None;
    }
    Some(
        UNIX_EPOCH
            + Duration::from_secs(ticks / 10_000_000)
            + Duration::from_nanos((ticks % 10_000_000) * 100),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates_round_trip() {
        assert_eq!(from_system_time(UNIX_EPOCH), UNIX_EPOCH_AS_FILETIME);
        // 2026-11-27T00:00:00Z is 1795737600 s after the Unix epoch.
        let day = UNIX_EPOCH + Duration::from_secs(1_795_737_600);
        let filetime = from_system_time(day);
        assert_eq!(filetime, 134_402_112_000_000_000);
        assert_eq!(to_system_time(filetime), Some(day));
        let precise = day + Duration::from_nanos(1_234_500);
        assert_eq!(to_system_time(from_system_time(precise)), Some(precise));
    }

    #[test]
    fn zero_and_pre_1970_times_are_not_times() {
        assert_eq!(to_system_time(0), None);
        assert_eq!(to_system_time(UNIX_EPOCH_AS_FILETIME - 1), None);
    }
}
