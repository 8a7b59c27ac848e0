//! A report read from memory and the store, for [`crate::JourneyStore::report`].

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use rezef_events::Timestamp;
use rezef_measure::{BucketKey, Figures, Grouping, Interval, Report};

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
    /// A report over stored buckets only, of the width [`crate::Measurement::read`] would read:
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

    /// Merges a bucket in memory in: newer than the store's copy, which is left out.
    pub(crate) fn add_in_memory(&mut self, key: BucketKey, figures: &Figures) {
        self.report.add(&key, figures);
        self.in_memory.insert(key);
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
