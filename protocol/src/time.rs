//! Timestamps: microseconds since the Unix epoch, UTC. The protocol never reads a clock; callers
//! pass the current time in.

use serde::{Deserialize, Serialize};
use std::fmt;

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
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}µs", self.0)
    }
}
