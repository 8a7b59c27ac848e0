//! Following a log: read what is there, then wait for more.
//!
//! Projections, subscriptions and replication all consume the log the same way; [`Tail`] is
//! that loop written once, on top of the [`Log`] trait only, so it works for every backend.

use std::sync::Arc;

use crate::error::Result;
use crate::{Log, Offset, Record};

/// A cursor that reads a log from a starting offset and then follows it live.
///
/// ```no_run
/// # async fn f(log: std::sync::Arc<dyn rezef_log::Log>) -> rezef_log::Result<()> {
/// let mut tail = rezef_log::tail(log, 0, 500);
/// loop {
///     for record in tail.next_batch().await? {
///         // apply `record` ...
///     }
/// }
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Tail {
    log: Arc<dyn Log>,
    next: Offset,
    batch: usize,
}

/// A [`Tail`] over `log` starting at `from`, returning at most `batch` records per call
/// (`batch` 0 is treated as 1).
pub fn tail(log: Arc<dyn Log>, from: Offset, batch: usize) -> Tail {
    Tail::new(log, from, batch)
}

impl Tail {
    /// See [`tail`].
    pub fn new(log: Arc<dyn Log>, from: Offset, batch: usize) -> Self {
        Tail {
            log,
            next: from,
            batch: batch.max(1),
        }
    }

    /// The offset the next record returned will have.
    pub fn position(&self) -> Offset {
        self.next
    }

    /// The next non-empty batch of records, in order, waiting for appends if the tail has
    /// caught up. Fails with [`Error::Closed`](crate::Error::Closed) if the log shuts down
    /// while waiting, and with the log's read error otherwise (the position is unchanged then,
    /// so the call can be retried).
    pub async fn next_batch(&mut self) -> Result<Vec<Record>> {
        loop {
            let records = self.log.read(self.next, self.batch).await?;
            if let Some(last) = records.last() {
                self.next = last.offset + 1;
                return Ok(records);
            }
            self.log.wait_for(self.next).await?;
        }
    }
}
