//! Timestamps: microseconds since the Unix epoch, UTC. The protocol never reads a clock; callers
//! pass the current time in.
//!
//! **The ballpark rule.** Whatever a device signs carries the device's own timestamp (its
//! "authored" time), and rights are judged at that time (or at its reception, if earlier:
//! [`judged_at`]): was the author revoked, did it hold the
//! role? Left alone, an author could date a certificate in 2100 and freeze a chain whose
//! timestamps must increase. So the server refuses anything authored more than
//! [`CLOCK_SKEW_MICROS`] away from its own clock and records when it received each object; every
//! client refuses anything whose authored time is that far from the recorded time, or whose
//! recorded time lies beyond the client's own clock (see [`check_ballpark`]).

use serde::{Deserialize, Serialize};
use std::fmt;

/// How far apart two honest clocks may be: a signed object's own timestamp and the time the
/// server received it, a request's timestamp and the server's clock. Five minutes.
pub const CLOCK_SKEW_MICROS: i64 = 5 * 60 * 1_000_000;

/// A point in time, in microseconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    /// From microseconds since the epoch.
    pub const fn from_micros(micros: i64) -> Self {
        Self(micros)
    }

    /// Microseconds since the epoch.
    pub const fn as_micros(self) -> i64 {
        self.0
    }

    /// The absolute distance between two timestamps, in microseconds.
    pub fn distance_micros(self, other: Timestamp) -> u64 {
        self.0.abs_diff(other.0)
    }

    /// This timestamp plus a number of microseconds (saturating).
    pub fn plus_micros(self, micros: i64) -> Self {
        Self(self.0.saturating_add(micros))
    }

    /// Whether `self` and `other` are within [`CLOCK_SKEW_MICROS`] of each other.
    pub fn within_skew_of(self, other: Timestamp) -> bool {
        self.distance_micros(other) <= CLOCK_SKEW_MICROS as u64
    }
}

/// As RFC 3339 in UTC, to the second (`2026-12-03T13:45:00Z`), for messages people read.
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seconds = self.0.div_euclid(1_000_000);
        let (days, in_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
        let (year, month, day) = civil_from_days(days);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
            in_day / 3600,
            in_day % 3600 / 60,
            in_day % 60
        )
    }
}

/// The proleptic Gregorian date of a count of days since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, valid over the whole range of `i64` days that a `Timestamp` can reach).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// A signed object dated too far from the time it was received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "it is dated {authored}, {} seconds away from when the server received it ({received}); at most {} seconds are allowed",
    authored.distance_micros(*received) / 1_000_000,
    CLOCK_SKEW_MICROS / 1_000_000
)]
pub struct OutOfBallpark {
    /// The object's own timestamp.
    pub authored: Timestamp,
    /// When the server received it (by the server's clock).
    pub received: Timestamp,
}

/// When an author's rights over a signed object are judged: the earlier of its own date and
/// the time the server received it. An object dated ahead of its arrival (by up to the
/// ballpark's skew) is judged when the server had it, so that a removal or revocation made
/// after it arrived, but dated before its own date, does not make every client refuse it
/// afterwards (a workspace poisoned by its removed member). An object dated behind its arrival
/// is judged at its date: the server can move that by at most the skew.
pub fn judged_at(authored: Timestamp, received: Timestamp) -> Timestamp {
    authored.min(received)
}

/// How long before the moment a device saw an entry's version as the latest a newer version
/// may still say it was received: two skews (the device's clock against the server's, and a
/// write in flight while the device read).
pub const BACKDATING_MARGIN_MICROS: i64 = 2 * CLOCK_SKEW_MICROS;

/// A newer version than one a device saw as the latest must have reached the server after
/// that moment: one said to be received well before it was written later and backdated (a
/// removed member's write dated to when they could still write, the server helping).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "it is said to be received at {received}, before {seen_latest} when an older version was seen as the latest"
)]
pub struct Backdated {
    /// When the server says it received the newer version.
    pub received: Timestamp,
    /// When the device last saw the older version as the latest (its own clock).
    pub seen_latest: Timestamp,
}

/// Checks a newer version's reception time against when the device last saw an older version
/// as the latest ([`Backdated`]).
pub fn check_not_backdated(received: Timestamp, seen_latest: Timestamp) -> Result<(), Backdated> {
    if received < seen_latest.plus_micros(-BACKDATING_MARGIN_MICROS) {
        return Err(Backdated {
            received,
            seen_latest,
        });
    }
    Ok(())
}

/// The ballpark rule: an object authored at `authored` and received by the server at
/// `received` must have been dated within [`CLOCK_SKEW_MICROS`] of its arrival.
pub fn check_ballpark(authored: Timestamp, received: Timestamp) -> Result<(), OutOfBallpark> {
    if authored.within_skew_of(received) {
        Ok(())
    } else {
        Err(OutOfBallpark { authored, received })
    }
}

/// A time the server says it received something, checked against the reader's own clock: a
/// server cannot have received anything later than now (give or take the skew).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the server says it received it at {received}, which is after this computer's clock ({now}); check this computer's clock"
)]
pub struct ReceivedInTheFuture {
    /// What the server said.
    pub received: Timestamp,
    /// The reader's clock.
    pub now: Timestamp,
}

/// Checks a reception time the server reported against the reader's clock `now`.
pub fn check_received(received: Timestamp, now: Timestamp) -> Result<(), ReceivedInTheFuture> {
    if received <= now.plus_micros(CLOCK_SKEW_MICROS) {
        Ok(())
    } else {
        Err(ReceivedInTheFuture { received, now })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rights_are_judged_at_the_earlier_of_date_and_reception() {
        let (early, late) = (Timestamp::from_micros(10), Timestamp::from_micros(20));
        assert_eq!(
            judged_at(late, early),
            early,
            "dated ahead: judged at arrival"
        );
        assert_eq!(
            judged_at(early, late),
            early,
            "dated behind: judged at its date"
        );
    }

    #[test]
    fn a_newer_version_received_well_before_an_older_one_was_seen_latest_is_backdated() {
        let seen = Timestamp::from_micros(1_000 * CLOCK_SKEW_MICROS);
        assert!(check_not_backdated(seen, seen).is_ok());
        assert!(check_not_backdated(seen.plus_micros(-BACKDATING_MARGIN_MICROS), seen).is_ok());
        let backdated = seen.plus_micros(-BACKDATING_MARGIN_MICROS - 1);
        assert_eq!(
            check_not_backdated(backdated, seen),
            Err(Backdated {
                received: backdated,
                seen_latest: seen
            })
        );
    }

    #[test]
    fn dates_print_as_rfc3339() {
        assert_eq!(
            Timestamp::from_micros(0).to_string(),
            "1970-01-01T00:00:00Z"
        );
        // 2026-12-03T13:45:07.5Z
        assert_eq!(
            Timestamp::from_micros(1_796_305_507_500_000).to_string(),
            "2026-12-03T13:45:07Z"
        );
        assert_eq!(
            Timestamp::from_micros(951_782_400_000_000).to_string(),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(
            Timestamp::from_micros(-1).to_string(),
            "1969-12-31T23:59:59Z"
        );
        assert_eq!(
            Timestamp::from_micros(4_102_444_800_000_000).to_string(),
            "2100-01-01T00:00:00Z"
        );
        // The extremes do not panic.
        let _ = Timestamp::from_micros(i64::MAX).to_string();
        let _ = Timestamp::from_micros(i64::MIN).to_string();
    }

    #[test]
    fn the_ballpark_is_five_minutes_either_way() {
        let received = Timestamp::from_micros(1_796_305_507_500_000);
        for offset in [0, CLOCK_SKEW_MICROS, -CLOCK_SKEW_MICROS] {
            assert!(check_ballpark(received.plus_micros(offset), received).is_ok());
        }
        for offset in [CLOCK_SKEW_MICROS + 1, -CLOCK_SKEW_MICROS - 1, i64::MAX] {
            let authored = received.plus_micros(offset);
            assert_eq!(
                check_ballpark(authored, received),
                Err(OutOfBallpark { authored, received })
            );
        }
        let error = check_ballpark(Timestamp::from_micros(4_102_444_800_000_000), received)
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("it is dated 2100-01-01T00:00:00Z"),
            "{error}"
        );
    }

    #[test]
    fn a_reception_time_cannot_be_in_the_readers_future() {
        let now = Timestamp::from_micros(1_796_305_507_500_000);
        assert!(check_received(now.plus_micros(CLOCK_SKEW_MICROS), now).is_ok());
        assert!(check_received(Timestamp::from_micros(0), now).is_ok());
        assert!(check_received(now.plus_micros(CLOCK_SKEW_MICROS + 1), now).is_err());
    }
}
