//! The measurement projection (docs/measurement.md): the partition's [`Measurer`] fed every
//! event the journey fold applied, with the journey after it, in the same step; and each
//! tenant's figures kept at two widths, 15 minutes (for reports by quarter, hour or a range
//! off day boundaries) and a day (for long ranges). A checkpoint carries the measurer and
//! the buckets changed since the last one, in the same atomic write as the projection's
//! offset, so a restart resumes it exactly and a rebuild folds it again from the log.
//!
//! **Retention.** Only the buckets that can still change soon stay in memory: those whose
//! interval ended less than [`RESIDENT_AFTER_END`] before the measurer's clock (the latest
//! event time), and those changed since the last checkpoint (counted in the changed state
//! that makes a checkpoint due, so a rebuild over months does not hold them all). Once a checkpoint has written
//! an older one, it is let go of ([`Measurement::evict`]); the store holds it. A record that
//! lands in a bucket let go of (a late end, a first-contact decision days later) adds to the
//! stored figures: [`Measurement::absent`] names the buckets to read back first, and the
//! store layer hands them over ([`Measurement::load`]), so this stays free of I/O. A report
//! reads the buckets in memory over the stored ones ([`Reading`]).

use std::collections::{BTreeMap, BTreeSet};
use std::mem;
use std::ops::Range;
use std::time::Duration;

use rezef_events::by_tenant::ByTenant;
use rezef_events::fold::Applied;
use rezef_events::{Event, Journey, TenantId, Timestamp};
use rezef_measure::record::Dims;
use rezef_measure::{
    BucketKey, Figures, Grouping, Interval, MeasureRules, Measured, Measurer, Report,
};

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

/// A bucket in memory, and whether it changed since the last checkpoint was cut.
#[derive(Debug, Clone, PartialEq)]
struct Held {
    figures: Figures,
    dirty: bool,
}

/// One tenant's and dimensions' buckets in memory, at each width by interval start.
type ByStart = [BTreeMap<Timestamp, Held>; 2];

fn index(width: Interval) -> usize {
    usize::from(width != Interval::Quarter)
}

/// Day buckets for a range on day boundaries asked by day or as one row, else quarters.
fn width_for(range: &Range<Timestamp>, grouping: Grouping) -> Interval {
    let on_days = |at: Timestamp| Interval::Day.floor(at) == at;
    let by_day = matches!(grouping.interval, None | Some(Interval::Day));
    if by_day && on_days(range.start) && on_days(range.end) {
        Interval::Day
    } else {
        Interval::Quarter
    }
}

/// The records one event produced, each with its tenant, to add once the buckets they
/// count in are in memory.
#[derive(Debug, Default)]
#[must_use = "records are counted by `Measurement::add`"]
pub struct Observed(Vec<(TenantId, Measured)>);

/// The measurement of one partition (see the module docs).
#[derive(Debug, Default)]
pub struct Measurement {
    measurer: Measurer,
    /// Buckets in memory: from [`Self::resident_from`] on all of them (the store holds no
    /// other), before it those changed since they were read back and not let go of yet.
    /// Looked up by a record's tenant and dimensions as borrowed, then by start: counting a
    /// record clones no key.
    held: ByTenant<Dims, ByStart>,
    /// How many of them changed since the last checkpoint was cut.
    dirty: usize,
}

impl Measurement {
    /// The measurement a store holds, from its measurer; the buckets it keeps in memory
    /// (from [`Self::resident_from`] on) are put back with [`Self::restore`].
    pub fn new(measurer: Measurer) -> Self {
        Self {
            measurer,
            ..Self::default()
        }
    }

    /// From when on every bucket of `width` is in memory: the start of the interval
    /// [`RESIDENT_AFTER_END`] before the measurer's clock (all of them before any event).
    pub fn resident_from(&self, width: Interval) -> Timestamp {
        let Some(clock) = self.measurer.clock() else {
            return Timestamp::from_unix_nanos(i64::MIN);
        };
        let lag = i64::try_from(RESIDENT_AFTER_END.as_nanos()).unwrap_or(i64::MAX);
        width.floor(Timestamp::from_unix_nanos(
            clock.unix_nanos().saturating_sub(lag),
        ))
    }

    /// Puts back a bucket as the store holds it.
    pub fn restore(&mut self, (tenant, width, key, figures): StoredBucket) {
        let by_start = self.held.entry(&tenant, &key.dims).or_default();
        let held = Held {
            figures,
            dirty: false,
        };
        if let Some(was) = by_start[index(width)].insert(key.start, held) {
            self.dirty -= usize::from(was.dirty);
        }
    }

    /// Measures the event the fold applied at `offset`, `journey` being the journey after it
    /// and `applied` what the fold did: the records, for [`Self::add`] once the buckets
    /// [`Self::absent`] names are loaded.
    pub fn observe(
        &mut self,
        rules: &MeasureRules,
        offset: u64,
        event: &Event,
        recorded_at: Option<Timestamp>,
        (journey, applied): (&Journey, &Applied),
    ) -> Observed {
        let config = rules.for_tenant(&journey.tenant_id);
        let folded = (journey, applied);
        let records = (self.measurer).observe(config, offset, event, recorded_at, folded);
        Observed(
            (records.into_iter())
                .map(|record| {
                    let tenant = match &record {
                        // The clock decides pending resolutions of any tenant.
                        Measured::Fcr(decision) => decision.tenant_id.clone(),
                        _ => journey.tenant_id.clone(),
                    };
                    (tenant, record)
                })
                .collect(),
        )
    }

    fn resident(&self, (tenant, width, key): &StoredKey) -> Option<&Figures> {
        let by_start = self.held.get(tenant, &key.dims)?;
        Some(&by_start[index(*width)].get(&key.start)?.figures)
    }

    /// The buckets `observed` counts in that are not in memory but may be stored: each must
    /// be read back ([`Self::load`]) before the records are added.
    pub fn absent(&self, observed: &Observed) -> BTreeSet<StoredKey> {
        let mut absent = BTreeSet::new();
        let floors = WIDTHS.map(|width| self.resident_from(width));
        for (tenant, record) in &observed.0 {
            for (width, floor) in WIDTHS.into_iter().zip(floors) {
                let start = width.floor(record.at());
                if start >= floor {
                    continue;
                }
                let by_start = self.held.get(tenant, record.dims());
                if !by_start.is_some_and(|b| b[index(width)].contains_key(&start)) {
                    absent.insert((tenant.clone(), width, BucketKey::of(width, record)));
                }
            }
        }
        absent
    }

    /// A bucket read back from the store (`None`: it holds none), into memory.
    pub fn load(&mut self, (tenant, width, key): StoredKey, stored: Option<Figures>) {
        self.restore((tenant, width, key, stored.unwrap_or_default()));
    }

    /// Counts the records in their buckets (every one [`Self::absent`] named loaded).
    pub fn add(&mut self, observed: Observed) {
        debug_assert!(
            self.absent(&observed).is_empty(),
            "absent buckets not loaded"
        );
        for (tenant, record) in &observed.0 {
            let by_start = self.held.entry(tenant, record.dims()).or_default();
            for width in WIDTHS {
                let start = width.floor(record.at());
                let held = by_start[index(width)].entry(start).or_insert_with(|| Held {
                    figures: Figures::default(),
                    dirty: false,
                });
                held.figures.add(record);
                self.dirty += usize::from(!mem::replace(&mut held.dirty, true));
            }
        }
    }

    /// What the next checkpoint writes: the measurer and the buckets changed since the last
    /// cut (no longer changed, until they change again), in key order.
    pub fn seal(&mut self) -> MeasureCheckpoint {
        let mut buckets = Vec::with_capacity(self.dirty);
        for (tenant, dims, by_start) in self.held.iter_mut() {
            for (width, held) in WIDTHS.into_iter().zip(by_start.iter_mut()) {
                let changed = held.iter_mut().filter(|(_, held)| held.dirty);
                for (start, held) in changed {
                    held.dirty = false;
                    let key = BucketKey {
                        start: *start,
                        dims: dims.clone(),
                    };
                    buckets.push((tenant.clone(), width, key, held.figures.clone()));
                }
            }
        }
        self.dirty = 0;
        buckets.sort_unstable_by(|a, b| (&a.0, a.1, &a.2).cmp(&(&b.0, b.1, &b.2)));
        MeasureCheckpoint {
            measurer: self.measurer.clone(),
            buckets,
        }
    }

    /// A sealed checkpoint was not written: its buckets are written with the next one.
    pub fn unseal(&mut self, failed: &MeasureCheckpoint) {
        for (tenant, width, key, _) in &failed.buckets {
            let Some(by_start) = self.held.get_mut(tenant, &key.dims) else {
                continue;
            };
            // Still held: let go of only after a checkpoint wrote it.
            if let Some(held) = by_start[index(*width)].get_mut(&key.start) {
                self.dirty += usize::from(!mem::replace(&mut held.dirty, true));
            }
        }
    }

    /// Lets go of the buckets before [`Self::resident_from`] that are not changed since the
    /// last checkpoint: call once a checkpoint is written (the store holds them).
    pub fn evict(&mut self) {
        let floors = WIDTHS.map(|width| self.resident_from(width));
        self.held.retain(|by_start| {
            for (held, floor) in by_start.iter_mut().zip(floors) {
                held.retain(|start, held| *start >= floor || held.dirty);
            }
            by_start.iter().any(|held| !held.is_empty())
        });
    }

    /// What the buckets changed since the last checkpoint weigh, estimated ([`BUCKET_BYTES`]
    /// each): they stay in memory until a checkpoint writes them.
    pub fn dirty_bytes(&self) -> u64 {
        self.dirty as u64 * BUCKET_BYTES
    }

    /// How many buckets are in memory (both widths, every tenant).
    pub fn resident_buckets(&self) -> usize {
        let held = self.held.iter().flat_map(|(_, _, by_start)| by_start);
        held.map(BTreeMap::len).sum()
    }

    /// The measurer, as a checkpoint would write it.
    pub fn measurer(&self) -> &Measurer {
        &self.measurer
    }

    /// A bucket in memory.
    pub fn bucket(&self, key: &StoredKey) -> Option<&Figures> {
        self.resident(key)
    }

    /// The buckets in memory of `width` starting in `range`, of one tenant or all.
    pub fn buckets(
        &self,
        tenant: Option<&TenantId>,
        width: Interval,
        range: Range<Timestamp>,
    ) -> Vec<StoredBucket> {
        let mut out = Vec::new();
        for (t, dims, by_start) in self.held.iter() {
            if tenant.is_some_and(|only| only != t) {
                continue;
            }
            for (start, held) in by_start[index(width)].range(range.clone()) {
                let key = BucketKey {
                    start: *start,
                    dims: dims.clone(),
                };
                out.push((t.clone(), width, key, held.figures.clone()));
            }
        }
        out
    }

    /// Starts a tenant's report over `range`, grouped (see [`Reading`]): the buckets in
    /// memory merged in; the store's of [`Reading::width`] in [`Reading::range`] come next.
    pub fn read(
        &self,
        tenant: &TenantId,
        range: Range<Timestamp>,
        grouping: Grouping,
    ) -> rezef_measure::Result<Reading> {
        let mut reading = Reading::new(range, grouping)?;
        let width = index(reading.width);
        for (dims, by_start) in self.held.of(tenant) {
            for (start, held) in by_start[width].range(reading.report.range()) {
                let key = BucketKey {
                    start: *start,
                    dims: dims.clone(),
                };
                reading.report.add(&key, &held.figures);
                reading.in_memory.insert(key);
            }
        }
        Ok(reading)
    }
}

/// A report read from memory and the store: a bucket in memory is newer than the store's
/// copy of it, which is then left out. Memory is read first: a bucket let go of meanwhile
/// was written before, so the store's copy is its latest.
#[derive(Debug)]
pub struct Reading {
    width: Interval,
    report: Report,
    in_memory: BTreeSet<BucketKey>,
}

impl Reading {
    /// A report over stored buckets only, of the width [`Measurement::read`] would read:
    /// the day buckets when the range is on day boundaries and asked by day or as one row,
    /// else the 15-minute ones.
    pub fn new(range: Range<Timestamp>, grouping: Grouping) -> rezef_measure::Result<Self> {
        let width = width_for(&range, grouping);
        Ok(Self {
            width,
            report: Report::new(width, range, grouping)?,
            in_memory: BTreeSet::new(),
        })
    }

    /// The width of the buckets it reads.
    pub fn width(&self) -> Interval {
        self.width
    }

    /// The range of bucket starts it reads.
    pub fn range(&self) -> Range<Timestamp> {
        self.report.range()
    }

    /// Merges a stored bucket in, unless memory's copy was.
    pub fn add_stored(&mut self, key: &BucketKey, figures: &Figures) {
        if !self.in_memory.contains(key) {
            self.report.add(key, figures);
        }
    }

    /// The rows, by their interval's start and dimensions.
    pub fn rows(self) -> BTreeMap<BucketKey, Figures> {
        self.report.rows()
    }
}
