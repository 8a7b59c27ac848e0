//! Points in time as nanoseconds since the Unix epoch: exact for protobuf timestamps (so an
//! audit replay returns the instant that was published) and cheap to compare and store.

use serde::{Deserialize, Serialize};

/// An instant, in nanoseconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The last representable instant (in 2262).
    pub const MAX: Self = Self(i64::MAX);

    pub const fn from_unix_nanos(nanos: i64) -> Self {
        Self(nanos)
    }

    pub const fn from_unix_millis(millis: i64) -> Self {
        Self(millis.saturating_mul(1_000_000))
    }

    /// From protobuf's `(seconds, nanos)`; `None` when out of range (past year 2262).
    pub fn from_parts(seconds: i64, nanos: i32) -> Option<Self> {
        seconds
            .checked_mul(1_000_000_000)
            .and_then(|n| n.checked_add(i64::from(nanos)))
            .map(Self)
    }

    pub const fn unix_nanos(self) -> i64 {
        self.0
    }

    pub const fn unix_millis(self) -> i64 {
        self.0.div_euclid(1_000_000)
    }

    /// Protobuf's `(seconds, nanos)` with `0 <= nanos < 1e9`.
    pub const fn to_parts(self) -> (i64, i32) {
        (
            self.0.div_euclid(1_000_000_000),
            self.0.rem_euclid(1_000_000_000) as i32,
        )
    }

    /// This instant plus `duration`, saturating at the end of time.
    pub fn plus(self, duration: std::time::Duration) -> Self {
        let nanos = i64::try_from(duration.as_nanos()).unwrap_or(i64::MAX);
        Self(self.0.saturating_add(nanos))
    }

    /// This instant minus `duration`, saturating at the start of time.
    pub fn minus(self, duration: std::time::Duration) -> Self {
        let nanos = i64::try_from(duration.as_nanos()).unwrap_or(i64::MAX);
        Self(self.0.saturating_sub(nanos))
    }

    /// The time from `earlier` to this instant (zero if `earlier` is later).
    pub fn since(self, earlier: Self) -> std::time::Duration {
        u64::try_from(self.0.saturating_sub(earlier.0))
            .map(std::time::Duration::from_nanos)
            .unwrap_or_default()
    }

    /// The current time.
    pub fn now() -> Self {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Self(i64::try_from(since_epoch.as_nanos()).unwrap_or(i64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_round_trip_including_before_the_epoch() {
        for (s, n) in [
            (0, 0),
            (1_700_000_000, 999_999_999),
            (-1, 5),
            (-2, 999_999_999),
        ] {
            let t = Timestamp::from_parts(s, n).expect("in range");
            assert_eq!(t.to_parts(), (s, n));
        }
        assert_eq!(Timestamp::from_parts(i64::MAX, 0), None);
    }

    #[test]
    fn millis_truncate_towards_the_past() {
        assert_eq!(Timestamp::from_unix_nanos(-1).unix_millis(), -1);
        assert_eq!(
            Timestamp::from_unix_millis(1234).unix_nanos(),
            1_234_000_000
        );
    }
}
