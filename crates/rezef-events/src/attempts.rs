//! How often a continuation token may be guessed wrong. A code of a few digits is only as
//! strong as the number of tries an attacker gets, so failed tries are counted per scope
//! (the identity the caller shows, the API key or address asking, the tenant) and a scope
//! that fails too often is locked out, for longer each further failure. Pure: the caller
//! passes the time (since an origin it picks) and keeps one [`Attempts`] per scope.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The failed tries one scope is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttemptLimit {
    /// Failures allowed before the scope is locked out...
    pub failures: u32,
    /// ...counted until this long passes without one (then the count starts over).
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// The first lock-out; each further failure doubles it...
    #[serde(with = "humantime_serde")]
    pub lock: Duration,
    /// ...up to this.
    #[serde(with = "humantime_serde")]
    pub max_lock: Duration,
}

impl AttemptLimit {
    /// Why the limit makes no sense, if it does not.
    pub fn problem(&self) -> Option<&'static str> {
        if self.failures == 0 {
            Some("failures must be at least 1")
        } else if self.window.is_zero() || self.lock.is_zero() {
            Some("window and lock must be positive")
        } else if self.max_lock < self.lock {
            Some("max_lock must be at least lock")
        } else {
            None
        }
    }
}

/// The limits of each scope a token try is counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokenAttempts {
    /// Per identity the caller shows (one phone number, one chat visitor).
    pub per_identity: AttemptLimit,
    /// Per API key (on a server without keys: per client address).
    pub per_caller: AttemptLimit,
    /// Per tenant, whoever asks: the bound on a guesser with many numbers and addresses.
    pub per_tenant: AttemptLimit,
}

const MINUTE: Duration = Duration::from_secs(60);

impl Default for TokenAttempts {
    /// A customer mistyping a code a few times is never stopped; a guesser gets about a
    /// hundred tries per ten minutes per tenant (see `docs/continuity.md` for the odds).
    fn default() -> Self {
        Self {
            per_identity: AttemptLimit {
                failures: 5,
                window: 15 * MINUTE,
                lock: MINUTE,
                max_lock: 60 * MINUTE,
            },
            per_caller: AttemptLimit {
                failures: 50,
                window: 10 * MINUTE,
                lock: Duration::from_secs(10),
                max_lock: 15 * MINUTE,
            },
            per_tenant: AttemptLimit {
                failures: 100,
                window: 10 * MINUTE,
                lock: Duration::from_secs(10),
                max_lock: 15 * MINUTE,
            },
        }
    }
}

/// One scope's recent failures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Attempts {
    failures: u32,
    last_failure: Duration,
    locked_until: Duration,
}

impl Attempts {
    /// `Err(wait)` while the scope is locked out at `now`.
    pub fn check(&self, now: Duration) -> Result<(), Duration> {
        match self.locked_until.checked_sub(now) {
            Some(wait) if !wait.is_zero() => Err(wait),
            _ => Ok(()),
        }
    }

    /// Counts a failed try at `now`: past `limit.failures`, the scope is locked out for
    /// `lock`, doubled for each failure beyond, at most `max_lock`.
    pub fn fail(&mut self, limit: &AttemptLimit, now: Duration) {
        if self.forgotten(limit, now) {
            self.failures = 0;
        }
        self.failures = self.failures.saturating_add(1);
        self.last_failure = now;
        if let Some(beyond) = self.failures.checked_sub(limit.failures) {
            let lock = limit
                .lock
                .saturating_mul(1 << beyond.min(20))
                .min(limit.max_lock);
            self.locked_until = self.locked_until.max(now + lock);
        }
    }

    /// Whether the scope's failures no longer count at `now` (and it is not locked): its
    /// record can be dropped.
    pub fn forgotten(&self, limit: &AttemptLimit, now: Duration) -> bool {
        now.saturating_sub(self.last_failure) >= limit.window && self.check(now).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn limit() -> AttemptLimit {
        AttemptLimit {
            failures: 3,
            window: 10 * MINUTE,
            lock: MINUTE,
            max_lock: 8 * MINUTE,
        }
    }

    fn at(minutes: u64) -> Duration {
        Duration::from_secs(minutes * 60)
    }

    #[test]
    fn failures_under_the_limit_lock_nothing() {
        let mut attempts = Attempts::default();
        attempts.fail(&limit(), at(0));
        attempts.fail(&limit(), at(1));
        assert_eq!(attempts.check(at(1)), Ok(()));
    }

    #[test]
    fn the_failure_that_reaches_the_limit_locks_then_each_further_one_doubles_the_lock() {
        let mut attempts = Attempts::default();
        for minute in 0..3 {
            attempts.fail(&limit(), at(minute));
        }
        assert_eq!(attempts.check(at(2)), Err(MINUTE));
        assert_eq!(attempts.check(at(3)), Ok(()));
        attempts.fail(&limit(), at(3));
        assert_eq!(attempts.check(at(3)), Err(2 * MINUTE));
        attempts.fail(&limit(), at(5));
        assert_eq!(attempts.check(at(5)), Err(4 * MINUTE));
        attempts.fail(&limit(), at(9));
        attempts.fail(&limit(), at(17));
        // Capped at max_lock.
        assert_eq!(attempts.check(at(17)), Err(8 * MINUTE));
    }

    #[test]
    fn a_quiet_window_forgets_the_failures() {
        let mut attempts = Attempts::default();
        attempts.fail(&limit(), at(0));
        attempts.fail(&limit(), at(1));
        assert!(!attempts.forgotten(&limit(), at(5)));
        assert!(attempts.forgotten(&limit(), at(11)));
        attempts.fail(&limit(), at(11));
        attempts.fail(&limit(), at(12));
        assert_eq!(attempts.check(at(12)), Ok(()), "the count started over");
    }

    #[test]
    fn a_locked_scope_is_not_forgotten_while_locked() {
        let limit = AttemptLimit {
            max_lock: 60 * MINUTE,
            lock: 30 * MINUTE,
            ..limit()
        };
        let mut attempts = Attempts::default();
        for _ in 0..4 {
            attempts.fail(&limit, at(0));
        }
        assert!(!attempts.forgotten(&limit, at(20)));
        assert!(attempts.forgotten(&limit, at(61)));
    }

    #[test]
    fn the_default_limits_make_sense() {
        let defaults = TokenAttempts::default();
        for limit in [
            defaults.per_identity,
            defaults.per_caller,
            defaults.per_tenant,
        ] {
            assert_eq!(limit.problem(), None);
        }
        let zero = AttemptLimit {
            failures: 0,
            ..limit()
        };
        assert!(zero.problem().is_some());
    }

    proptest! {
        /// Whatever the timing of failures, a guesser never gets more than `failures` tries
        /// per window plus one per doubling lock: the count of failures that found the
        /// scope open, over a span, is bounded.
        #[test]
        fn a_guesser_gets_at_most_the_limit_per_window_plus_the_doublings(
            gaps in prop::collection::vec(0u64..200, 1..400)
        ) {
            let limit = limit();
            let mut attempts = Attempts::default();
            let mut now = Duration::ZERO;
            let mut admitted = 0u64;
            for gap in gaps {
                now += Duration::from_secs(gap);
                if attempts.check(now).is_ok() {
                    attempts.fail(&limit, now);
                    admitted += 1;
                }
            }
            let windows = now.as_secs() / limit.window.as_secs() + 1;
            // Per window: `failures`, then a lock of 1, 2, 4, 8, 8... minutes each costing
            // a try: at most 4 more in a ten-minute window.
            prop_assert!(admitted <= windows * (u64::from(limit.failures) + 4) + 2);
        }
    }
}
