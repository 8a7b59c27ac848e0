//! The time routing decides by. Offers expire, contacts escalate and affinity waits end by
//! the clock, so the clock is given to the routing service rather than read from the
//! system: the server runs on [`SystemClock`]; a test runs it on a [`ManualClock`] it
//! advances, so that "30 s in the queue" is tested without waiting 30 s, and an offer
//! never expires because the machine was slow. The same clock says which interval of the
//! figures is the current one (`Insights/WatchInterval`).
//!
//! A clock also knows how to wait for its own time ([`Clock::sleep_until`]): the desk's
//! timer sleeps until the engine's next deadline by the clock it runs on. The system clock
//! sleeps in real time; a manual clock wakes it when it is advanced to the deadline, since a
//! real sleep would never reach a manual deadline.

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use rezef_events::Timestamp;
use tokio::sync::watch;

/// A wait for a clock's time, from [`Clock::sleep_until`].
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Where routing reads the time.
pub trait Clock: Send + Sync + Debug {
    fn now(&self) -> Timestamp;

    /// Resolves once this clock reads `deadline` or later. It may resolve earlier (the
    /// system clock can be set back): the caller reads the time again.
    fn sleep_until(&self, deadline: Timestamp) -> Sleep;
}

/// The system's wall clock, in real time.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }

    fn sleep_until(&self, deadline: Timestamp) -> Sleep {
        Box::pin(tokio::time::sleep(deadline.since(Timestamp::now())))
    }
}

/// A clock that moves only when told; its clones share one time. The time lives in a
/// watch channel, so that whoever sleeps until a deadline wakes when it is reached.
#[derive(Debug, Clone)]
pub struct ManualClock {
    time: Arc<watch::Sender<Timestamp>>,
}

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        Self {
            time: Arc::new(watch::Sender::new(start)),
        }
    }

    pub fn advance(&self, by: Duration) {
        self.time.send_modify(|now| *now = now.plus(by));
    }

    pub fn set(&self, to: Timestamp) {
        self.time.send_replace(to);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.time.borrow()
    }

    fn sleep_until(&self, deadline: Timestamp) -> Sleep {
        let mut time = self.time.subscribe();
        // The sender lives as long as this clock, which its sleepers' owner holds.
        Box::pin(async move {
            let _ = time.wait_for(|now| *now >= deadline).await;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_manual_sleep_ends_when_the_clock_reaches_its_deadline() {
        let clock = ManualClock::new(Timestamp::from_unix_millis(1_000));
        let deadline = clock.now().plus(Duration::from_secs(30));
        let mut sleep = tokio::spawn(clock.sleep_until(deadline));
        clock.advance(Duration::from_secs(29));
        let early = tokio::time::timeout(Duration::from_millis(50), &mut sleep).await;
        assert!(early.is_err(), "29 s is not 30 s");
        clock.advance(Duration::from_secs(1));
        tokio::time::timeout(Duration::from_secs(5), sleep)
            .await
            .expect("woken at 30 s")
            .expect("joins");
        assert_eq!(clock.now(), deadline);
    }
}
