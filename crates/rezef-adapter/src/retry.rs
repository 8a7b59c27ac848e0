//! When to send a batch again, and after how long.
//!
//! Exponential backoff with full jitter (AWS's "Exponential Backoff and Jitter"): the n-th
//! retry waits a uniformly drawn time in `[0, min(max, base × 2ⁿ)]`, so that adapters
//! restarted together do not hammer a recovering server in step. A server that says how long
//! to wait (`google.rpc.RetryInfo` on `UNAVAILABLE` or `RESOURCE_EXHAUSTED`) is waited for at
//! least that long.
//!
//! What is retried: the server or the way to it failing (`UNAVAILABLE`, a deadline, a broken
//! connection, `RESOURCE_EXHAUSTED` with a `RetryInfo`: a key over its rate). What is not: the
//! caller's own mistakes (`INVALID_ARGUMENT`, `PERMISSION_DENIED`, `UNAUTHENTICATED`, a batch
//! over the server's size limits — `RESOURCE_EXHAUSTED` without a `RetryInfo` — and anything
//! else), which sending again cannot mend.

use std::time::Duration;

use tonic_types::StatusExt;

use crate::Error;

/// How long to wait between attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first retry's ceiling.
    pub base: Duration,
    /// No draw exceeds this (a server's `RetryInfo` may ask for longer, and gets it).
    pub max: Duration,
}

impl Default for Backoff {
    /// 50 ms doubling up to 10 s.
    fn default() -> Self {
        Self {
            base: Duration::from_millis(50),
            max: Duration::from_secs(10),
        }
    }
}

impl Backoff {
    /// The wait before retry `attempt` (0 for the first), with `unit` a uniform draw in
    /// `[0, 1)` and `retry_after` the server's `RetryInfo` delay, if it gave one.
    pub fn delay(&self, attempt: u32, unit: f64, retry_after: Option<Duration>) -> Duration {
        let ceiling = self
            .base
            .checked_mul(1u32.checked_shl(attempt).unwrap_or(u32::MAX))
            .map_or(self.max, |ceiling| ceiling.min(self.max));
        let drawn = ceiling.mul_f64(unit.clamp(0.0, 1.0));
        drawn.max(retry_after.unwrap_or_default())
    }

    /// [`Backoff::delay`] with a fresh random draw.
    pub fn next_delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        self.delay(attempt, random_unit(), retry_after)
    }
}

/// A uniform draw in `[0, 1)`; half-way when the system has no randomness to give.
fn random_unit() -> f64 {
    // 53 random bits: every f64 in [0, 1) of that spacing.
    getrandom::u64().map_or(0.5, |bits| (bits >> 11) as f64 / (1u64 << 53) as f64)
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send again, after at least this long if the server said so.
    Retry { retry_after: Option<Duration> },
    /// Sending again cannot succeed.
    Permanent,
}

/// Whether `error` (from a `Publish`) is worth a retry.
pub fn verdict(error: &Error) -> Verdict {
    let retry = |retry_after| Verdict::Retry { retry_after };
    match error {
        Error::Connect { .. } => retry(None),
        Error::Status(status) => {
            let retry_after = status.get_details_retry_info().and_then(|i| i.retry_delay);
            match status.code() {
                tonic::Code::Unavailable
                | tonic::Code::DeadlineExceeded
                | tonic::Code::Aborted
                | tonic::Code::Cancelled
                // A connection broken mid-call (tonic reports some transport errors so).
                | tonic::Code::Unknown => retry(retry_after),
                // A key over its rate says when to come back; a batch over the size limits
                // does not, and would be refused again.
                tonic::Code::ResourceExhausted if retry_after.is_some() => retry(retry_after),
                tonic::Code::ResourceExhausted
                | tonic::Code::Ok
                | tonic::Code::InvalidArgument
                | tonic::Code::NotFound
                | tonic::Code::AlreadyExists
                | tonic::Code::PermissionDenied
                | tonic::Code::FailedPrecondition
                | tonic::Code::OutOfRange
                | tonic::Code::Unimplemented
                | tonic::Code::Internal
                | tonic::Code::DataLoss
                | tonic::Code::Unauthenticated => Verdict::Permanent,
            }
        }
        _ => Verdict::Permanent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use tonic_types::ErrorDetails;

    const BACKOFF: Backoff = Backoff {
        base: Duration::from_millis(100),
        max: Duration::from_secs(5),
    };

    #[test]
    fn given_the_first_retry_when_drawn_then_it_is_within_the_base() {
        assert_eq!(BACKOFF.delay(0, 0.0, None), Duration::ZERO);
        assert_eq!(BACKOFF.delay(0, 0.5, None), Duration::from_millis(50));
        assert!(BACKOFF.delay(0, 0.999_999, None) < Duration::from_millis(100));
    }

    #[test]
    fn given_more_retries_when_drawn_then_the_ceiling_doubles_up_to_the_max() {
        assert_eq!(BACKOFF.delay(1, 0.5, None), Duration::from_millis(100));
        assert_eq!(BACKOFF.delay(3, 0.5, None), Duration::from_millis(400));
        assert_eq!(BACKOFF.delay(10, 0.5, None), Duration::from_millis(2500));
        // Past any shift, still bounded.
        assert_eq!(BACKOFF.delay(200, 0.5, None), Duration::from_millis(2500));
    }

    #[test]
    fn given_a_retry_info_when_drawn_then_it_waits_at_least_that_long() {
        let after = Some(Duration::from_secs(2));
        assert_eq!(BACKOFF.delay(0, 0.1, after), Duration::from_secs(2));
        // Past the max too: the server knows best.
        let after = Some(Duration::from_secs(30));
        assert_eq!(BACKOFF.delay(9, 0.9, after), Duration::from_secs(30));
        // A longer draw stands.
        let after = Some(Duration::from_millis(10));
        assert_eq!(BACKOFF.delay(3, 0.5, after), Duration::from_millis(400));
    }

    #[test]
    fn given_random_draws_when_many_are_made_then_they_spread_over_the_range() {
        let draws: Vec<Duration> = (0..200).map(|_| BACKOFF.next_delay(4, None)).collect();
        let ceiling = Duration::from_millis(1600);
        assert!(draws.iter().all(|d| *d <= ceiling));
        let low = draws.iter().filter(|d| **d < ceiling / 2).count();
        assert!((40..160).contains(&low), "{low} of 200 in the lower half");
    }

    proptest! {
        #[test]
        fn a_delay_is_bounded_by_the_max_or_the_retry_info(
            attempt in 0u32..100,
            unit in 0.0f64..1.0,
            after in proptest::option::of(0u64..60_000),
        ) {
            let after = after.map(Duration::from_millis);
            let delay = BACKOFF.delay(attempt, unit, after);
            prop_assert!(delay <= BACKOFF.max.max(after.unwrap_or_default()));
            prop_assert!(delay >= after.unwrap_or_default());
        }
    }

    fn status(code: tonic::Code, retry_after: Option<Duration>) -> Error {
        let details = match retry_after {
            Some(after) => ErrorDetails::with_retry_info(Some(after)),
            None => ErrorDetails::new(),
        };
        Error::Status(tonic::Status::with_error_details(code, "x", details))
    }

    #[test]
    fn given_a_server_out_of_reach_when_judged_then_it_is_retried() {
        let after = Some(Duration::from_secs(1));
        assert_eq!(
            verdict(&status(tonic::Code::Unavailable, after)),
            Verdict::Retry { retry_after: after }
        );
        assert_eq!(
            verdict(&status(tonic::Code::Unavailable, None)),
            Verdict::Retry { retry_after: None }
        );
        assert_eq!(
            verdict(&status(tonic::Code::ResourceExhausted, after)),
            Verdict::Retry { retry_after: after }
        );
    }

    #[test]
    fn given_the_callers_mistake_when_judged_then_it_is_not_retried() {
        for code in [
            tonic::Code::InvalidArgument,
            tonic::Code::PermissionDenied,
            tonic::Code::Unauthenticated,
            tonic::Code::ResourceExhausted,
        ] {
            assert_eq!(verdict(&status(code, None)), Verdict::Permanent, "{code:?}");
        }
        let token = Error::Token("x".into());
        assert_eq!(verdict(&token), Verdict::Permanent);
    }
}
