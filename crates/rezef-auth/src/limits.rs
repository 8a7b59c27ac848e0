//! How much one key may ask of a server, so that one noisy adapter cannot starve the others:
//! calls a second, as a token bucket (a steady `calls_per_second`, bursts up to `burst`), and
//! streams open at once (watches, agent sessions, publish streams). Pure: the caller passes
//! the time, the server keeps one bucket per key.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One key's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    pub calls_per_second: u32,
    pub burst: u32,
    pub streams: u32,
}

impl Default for Limits {
    /// Far above what one adapter or desk needs, far below what would starve a node.
    fn default() -> Self {
        Self {
            calls_per_second: 5_000,
            burst: 10_000,
            streams: 1_000,
        }
    }
}

/// A key's calls in the recent past: tokens left, as of `at` (time since an origin the
/// caller picks).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    tokens: f64,
    at: Duration,
}

impl Bucket {
    /// A full bucket at `now`.
    pub fn full(limits: &Limits, now: Duration) -> Self {
        Self {
            tokens: f64::from(limits.burst.max(1)),
            at: now,
        }
    }

    /// Takes one call's token at `now`, or says how long until there is one.
    pub fn take(&mut self, limits: &Limits, now: Duration) -> Result<(), Duration> {
        let rate = f64::from(limits.calls_per_second.max(1));
        let elapsed = now.saturating_sub(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(f64::from(limits.burst.max(1)));
        self.at = self.at.max(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Ok(());
        }
        Err(Duration::from_secs_f64((1.0 - self.tokens) / rate))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn limits(calls_per_second: u32, burst: u32) -> Limits {
        Limits {
            calls_per_second,
            burst,
            streams: 1,
        }
    }

    #[test]
    fn a_burst_passes_then_calls_wait_for_the_rate() {
        let limits = limits(10, 3);
        let mut bucket = Bucket::full(&limits, Duration::ZERO);
        for _ in 0..3 {
            assert_eq!(bucket.take(&limits, Duration::ZERO), Ok(()));
        }
        let wait = bucket
            .take(&limits, Duration::ZERO)
            .expect_err("over the burst");
        assert_eq!(wait, Duration::from_millis(100));
        assert_eq!(bucket.take(&limits, Duration::from_millis(100)), Ok(()));
    }

    proptest! {
        /// Given any limits and any times of calls, when calls arrive over a span, then no more
        /// pass than the burst plus the rate over the span.
        #[test]
        fn no_more_pass_than_burst_and_rate_allow(
            rate in 1u32..1_000,
            burst in 1u32..100,
            mut times in proptest::collection::vec(0u64..5_000, 1..500),
        ) {
            times.sort_unstable();
            let limits = limits(rate, burst);
            let mut bucket = Bucket::full(&limits, Duration::ZERO);
            let passed = (times.iter())
                .filter(|ms| bucket.take(&limits, Duration::from_millis(**ms)).is_ok())
                .count() as f64;
            let span = *times.last().unwrap_or(&0) as f64 / 1000.0;
            prop_assert!(passed <= f64::from(burst) + span * f64::from(rate) + 1e-6);
        }
    }
}
