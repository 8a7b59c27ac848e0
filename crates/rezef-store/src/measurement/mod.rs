//! The measurement projection (docs/measurement.md): the partition's [`Measurer`] fed every
//! event the journey fold applied, with what it reads of the journey after it (an
//! [`Observation`], read in the same step), and the records it makes counted into each
//! tenant's figures, both on a thread of its own beside the fold (`tally`); figures kept at
//! two widths, 15 minutes (for reports by quarter, hour or a range off day boundaries) and
//! a day (for long ranges). A checkpoint carries the measurer and
//! the buckets changed since the last one, in the same atomic write as the projection's
//! offset, so a restart resumes it exactly and a rebuild folds it again from the log.
//!
//! **Retention.** Only the buckets that can still change soon stay in memory: those whose
//! interval ended less than [`RESIDENT_AFTER_END`] before the measurer's clock (the latest
//! event time), and those changed since the last checkpoint (counted in the changed state
//! that makes a checkpoint due, so a rebuild over months does not hold them all). Once a checkpoint has written
//! an older one, it is let go of ([`Measurement::evict`]); the store holds it. A record that
//! lands in a bucket let go of (a late end, a first-contact decision days later) adds to the
//! stored figures: the counter reads the bucket back first (`held`: which; `tally`: reads).
//! A report reads the buckets in memory over the stored ones ([`Reading`]).
//!
//! `held.rs`: the buckets in memory; `tally.rs`: the counter; `reading.rs`: reports.

mod held;
mod reading;
mod tally;

use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rezef_events::fold::Applied;
use rezef_events::{Event, Journey, TenantId, Timestamp};
use rezef_measure::{BucketKey, Figures, Interval, MeasureRules, Measurer, Observation};

use crate::store::JourneyStore;
use crate::{Error, Result};
use held::{Floors, HeldBuckets};
pub use reading::Reading;
pub(crate) use tally::Tally;
use tally::lock;

/// The widths figures are kept at.
pub const WIDTHS: [Interval; 2] = [Interval::Quarter, Interval::Day];

/// How long after its interval ended a bucket stays in memory (see the module docs): a
/// quarter for the hour after it, the day until 01:00 the next day.
pub const RESIDENT_AFTER_END: Duration = Duration::from_secs(3600);

/// What a bucket in memory is taken to weigh, for the bound on what a checkpoint has yet to
/// write (`crate::ProjectionConfig::checkpoint_dirty_bytes`): its counters and its stations'
/// sparse spreads (a few dozen 16-byte pairs each), over-estimated.
pub const BUCKET_BYTES: u64 = 8 * 1024;

/// Which stored bucket: whose, at which width, which.
pub type StoredKey = (TenantId, Interval, BucketKey);

/// One stored bucket: whose, at which width, which, and its figures.
pub type StoredBucket = (TenantId, Interval, BucketKey, Figures);

/// What a checkpoint writes of the measurement: the measurer, and the buckets changed since
/// the previous checkpoint.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MeasureCheckpoint {
    pub measurer: Measurer,
    pub buckets: Vec<StoredBucket>,
}

/// From when on every bucket of each width is in memory, at the measurer's `clock` (unix
/// nanos; `i64::MIN` before any event): the start of the interval [`RESIDENT_AFTER_END`]
/// before it.
fn floors(clock: i64) -> Floors {
    let lag = i64::try_from(RESIDENT_AFTER_END.as_nanos()).unwrap_or(i64::MAX);
    let from = Timestamp::from_unix_nanos(clock.saturating_sub(lag));
    WIDTHS.map(|width| match clock {
        i64::MIN => Timestamp::from_unix_nanos(i64::MIN),
        _ => width.floor(from),
    })
}

/// The measurement of one partition (see the module docs): its counter, which measures and
/// counts beside the fold.
#[derive(Debug)]
pub struct Measurement {
    tally: Tally,
}

impl Measurement {
    /// The measurement `below` holds: its measurer, and the buckets it keeps in memory read
    /// back (the rest stay in the store), measuring under `rules` and counting from now on
    /// beside the fold.
    pub fn open(below: Arc<dyn JourneyStore>, rules: MeasureRules) -> Result<Self> {
        let measurer = below.measurer()?;
        let clock = measurer.clock();
        let floors = floors(clock.map_or(i64::MIN, Timestamp::unix_nanos));
        let mut buckets = HeldBuckets::default();
        for (width, from) in WIDTHS.into_iter().zip(floors) {
            let until = Timestamp::from_unix_nanos(i64::MAX);
            for stored in below.buckets(None, width, from..until) {
                buckets.restore(stored?);
            }
        }
        Ok(Self {
            tally: Tally::start((measurer, rules), buckets, below),
        })
    }

    /// Measures the event the fold applied at `offset`, `journey` being the journey after it
    /// and `applied` what the fold did: reads what the measurer needs of them and hands it
    /// to the counter. The counter's failure, if it failed.
    pub fn observe(
        &mut self,
        rules: &MeasureRules,
        offset: u64,
        event: &Event,
        recorded_at: Option<Timestamp>,
        folded: (&Journey, &Applied),
    ) -> Result<()> {
        let tenant = &folded.0.tenant_id;
        let seen = Observation::read(rules.for_tenant(tenant), offset, event, recorded_at, folded);
        self.tally.observe(tenant, seen)
    }

    /// What the next checkpoint writes: the measurer and the buckets changed since the last
    /// cut, once the counter reached this one.
    pub fn seal(&self) -> SealedMeasure {
        SealedMeasure {
            cut: Mutex::new(Cut::Counting(self.tally.seal())),
        }
    }

    /// A sealed checkpoint was not written: its buckets are written with the next one.
    pub fn unseal(&self, failed: &SealedMeasure) {
        if let Cut::Cut(Ok(checkpoint)) = &*lock(&failed.cut) {
            self.tally.unseal(checkpoint.buckets.clone());
        }
    }

    /// Lets go of the old buckets not changed since the last cut: call once a checkpoint is
    /// written (the store holds them).
    pub fn evict(&self) {
        self.tally.evict();
    }

    /// What the buckets changed since the last checkpoint weigh, estimated ([`BUCKET_BYTES`]
    /// each): they stay in memory until a checkpoint writes them.
    pub fn dirty_bytes(&self) -> u64 {
        self.tally.dirty() as u64 * BUCKET_BYTES
    }

    /// The counter, for reading the buckets ([`Tally::synced`]) without holding what
    /// holds this.
    pub(crate) fn tally(&self) -> Tally {
        self.tally.clone()
    }
}

/// A checkpoint's measurement, cut: the buckets come once the counter reached the cut.
#[derive(Debug)]
pub struct SealedMeasure {
    cut: Mutex<Cut>,
}

#[derive(Debug)]
enum Cut {
    Counting(Receiver<tally::Cut>),
    Cut(Result<Arc<MeasureCheckpoint>, Arc<Error>>),
}

impl SealedMeasure {
    /// The checkpoint's measurement, once counted up to the cut.
    pub fn checkpoint(&self) -> Result<Arc<MeasureCheckpoint>> {
        let mut cut = lock(&self.cut);
        let done = match std::mem::replace(&mut *cut, Cut::Cut(Err(stopped()))) {
            Cut::Counting(answer) => (answer.recv())
                .unwrap_or_else(|_| Err(stopped()))
                .map(|(measurer, buckets)| Arc::new(MeasureCheckpoint { measurer, buckets })),
            Cut::Cut(done) => done,
        };
        *cut = Cut::Cut(done.clone());
        done.map_err(Error::Counting)
    }
}

fn stopped() -> Arc<Error> {
    Arc::new(Error::CounterStopped("it ended before the cut"))
}
