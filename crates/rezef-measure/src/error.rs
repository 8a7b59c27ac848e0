//! What can go wrong in this crate: a configuration or a report's range and grouping are
//! refused, naming the field. Measuring itself never fails (an event that does not fit is
//! measured as far as it goes), so one odd event cannot stop a projection that measures.

use crate::buckets::Interval;

/// A measurement configuration that cannot be used, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A service-level target of zero makes every contact late.
    #[error("service-level target for {what} must be more than 0 seconds")]
    ZeroTarget { what: String },
    /// The short-abandon threshold must be shorter than the target of every real-time
    /// channel and queue, or the classic figure would exclude contacts it counts as late.
    #[error(
        "short_abandon_seconds ({short}) must be less than the service-level target of {what} ({target} s)"
    )]
    ShortAbandonNotBelowTarget {
        short: u64,
        what: String,
        target: u64,
    },
    /// First-contact resolution needs a window of 1 to 90 days.
    #[error("fcr_window_days must be between 1 and 90, got {days}")]
    FcrWindowOutOfRange { days: u32 },
    /// Opening hours that cannot be read or overlap.
    #[error("business hours of {queue}: {reason}")]
    BadHours { queue: String, reason: String },
    /// A report over no time.
    #[error("range: the start must be before the end")]
    EmptyRange,
    /// A report by intervals finer than the stored buckets.
    #[error("interval: {asked:?} is finer than the buckets kept ({kept:?})")]
    IntervalTooFine { asked: Interval, kept: Interval },
}

/// This crate's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
