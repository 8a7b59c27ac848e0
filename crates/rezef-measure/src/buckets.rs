//! Stored figures by bucket: an interval (15 minutes, an hour or a day, in UTC) and the
//! queue, channel and intent a record counts under. A projection adds records as they come
//! and checkpoints the buckets; a report merges the buckets of a range into the grouping it
//! asks for, which is exact because figures only add.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::{Deserialize, Serialize};

use rezef_events::Timestamp;

use crate::error::{Error, Result};
use crate::figures::Figures;
use crate::record::{Dims, Measured};

/// The width of an interval. Intervals start at multiples of it since the epoch (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Interval {
    Quarter,
    Hour,
    Day,
}

impl Interval {
    fn millis(self) -> i64 {
        match self {
            Self::Quarter => 15 * 60_000,
            Self::Hour => 3_600_000,
            Self::Day => 86_400_000,
        }
    }

    /// The start of the interval `at` falls in.
    pub fn floor(self, at: Timestamp) -> Timestamp {
        let millis = at.unix_millis();
        Timestamp::from_unix_millis(millis - millis.rem_euclid(self.millis()))
    }

    /// The interval `at` falls in: from its start (inclusive) to the next one's (exclusive).
    pub fn around(self, at: Timestamp) -> Range<Timestamp> {
        let start = self.floor(at);
        start..Timestamp::from_unix_millis(start.unix_millis() + self.millis())
    }
}

/// Which bucket: the interval's start and the dimensions.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct BucketKey {
    pub start: Timestamp,
    pub dims: Dims,
}

impl BucketKey {
    /// The bucket of `width` a record counts in.
    pub fn of(width: Interval, measured: &Measured) -> Self {
        Self {
            start: width.floor(measured.at()),
            dims: measured.dims().clone(),
        }
    }
}

/// How a report groups buckets: by interval (`None`: the whole range in one, starting at
/// the range's start) and by any of the dimensions (a dimension not grouped by is `None`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grouping {
    pub interval: Option<Interval>,
    pub queue: bool,
    pub channel: bool,
    pub intent: bool,
}

/// Figures by bucket, at one interval width.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Buckets {
    width: Interval,
    #[serde(with = "crate::pairs")]
    figures: BTreeMap<BucketKey, Figures>,
}

impl Default for Buckets {
    fn default() -> Self {
        Self::new(Interval::Quarter)
    }
}

impl Buckets {
    /// No figures yet, kept in intervals of `width`.
    pub fn new(width: Interval) -> Self {
        Self {
            width,
            figures: BTreeMap::new(),
        }
    }

    /// The width of its intervals.
    pub fn width(&self) -> Interval {
        self.width
    }

    /// Counts a record in its bucket; returns which bucket (for a projection to note what
    /// its next checkpoint writes).
    pub fn add(&mut self, measured: &Measured) -> BucketKey {
        let key = BucketKey::of(self.width, measured);
        match self.figures.get_mut(&key) {
            Some(figures) => figures.add(measured),
            None => {
                let mut figures = Figures::default();
                figures.add(measured);
                self.figures.insert(key.clone(), figures);
            }
        }
        key
    }

    /// The figures of one bucket.
    pub fn get(&self, key: &BucketKey) -> Option<&Figures> {
        self.figures.get(key)
    }

    /// How many buckets it holds.
    pub fn len(&self) -> usize {
        self.figures.len()
    }

    pub fn is_empty(&self) -> bool {
        self.figures.is_empty()
    }

    /// Keeps only the buckets `keep` says to (a projection lets go of old ones it stored).
    pub fn retain(&mut self, mut keep: impl FnMut(&BucketKey) -> bool) {
        self.figures.retain(|key, _| keep(key));
    }

    /// Puts back a bucket as a checkpoint stored it (its start on this width's boundaries).
    pub fn restore(&mut self, key: BucketKey, figures: Figures) {
        debug_assert_eq!(key.start, self.width.floor(key.start));
        self.figures.insert(key, figures);
    }

    /// Adds another set of buckets (of any width no finer than this one's: each goes to
    /// the bucket of this width its start falls in).
    pub fn merge(&mut self, other: &Self) {
        for (key, figures) in &other.figures {
            let key = BucketKey {
                start: self.width.floor(key.start),
                dims: key.dims.clone(),
            };
            self.figures.entry(key).or_default().merge(figures);
        }
    }

    /// Every bucket, in order of start and dimensions.
    pub fn iter(&self) -> impl Iterator<Item = (&BucketKey, &Figures)> {
        self.figures.iter()
    }

    /// All buckets merged.
    pub fn total(&self) -> Figures {
        let mut total = Figures::default();
        for figures in self.figures.values() {
            total.merge(figures);
        }
        total
    }

    /// The figures of buckets starting in `range`, merged by `grouping` (see [`Report`]).
    pub fn report(
        &self,
        range: Range<Timestamp>,
        grouping: Grouping,
    ) -> Result<BTreeMap<BucketKey, Figures>> {
        let mut report = Report::new(self.width, range.clone(), grouping)?;
        let first = BucketKey {
            start: range.start,
            dims: Dims::default(),
        };
        let within = (self.figures.range(first..)).take_while(|(key, _)| key.start < range.end);
        for (key, figures) in within {
            report.add(key, figures);
        }
        Ok(report.rows())
    }
}

/// A report being merged, from buckets of one width given one at a time (from memory, from a
/// store, or both): the figures of those starting in its range, merged by its grouping.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    range: Range<Timestamp>,
    grouping: Grouping,
    rows: BTreeMap<BucketKey, Figures>,
}

impl Report {
    /// A report over buckets of `width`. Refused: an empty range, or an interval finer than
    /// `width`.
    pub fn new(width: Interval, range: Range<Timestamp>, grouping: Grouping) -> Result<Self> {
        if range.start >= range.end {
            return Err(Error::EmptyRange);
        }
        if let Some(asked) = grouping.interval.filter(|i| *i < width) {
            return Err(Error::IntervalTooFine { asked, kept: width });
        }
        Ok(Self {
            range,
            grouping,
            rows: BTreeMap::new(),
        })
    }

    /// The range whose buckets it merges.
    pub fn range(&self) -> Range<Timestamp> {
        self.range.clone()
    }

    /// Merges a bucket into its row (nothing if it starts outside the range).
    pub fn add(&mut self, key: &BucketKey, figures: &Figures) {
        if !self.range.contains(&key.start) {
            return;
        }
        let grouping = self.grouping;
        let start = grouping
            .interval
            .map_or(self.range.start, |i| i.floor(key.start));
        let dims = Dims {
            queue: key.dims.queue.clone().filter(|_| grouping.queue),
            channel: key.dims.channel.filter(|_| grouping.channel),
            intent: key.dims.intent.clone().filter(|_| grouping.intent),
        };
        (self.rows.entry(BucketKey { start, dims }))
            .or_default()
            .merge(figures);
    }

    /// The rows, by their interval's start and dimensions.
    pub fn rows(self) -> BTreeMap<BucketKey, Figures> {
        self.rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_bad_range_or_grouping_then_the_error_names_the_field() {
        let buckets = Buckets::new(Interval::Hour);
        let at = Timestamp::from_unix_millis(1_796_630_400_000);
        let empty = buckets.report(at..at, Grouping::default());
        assert_eq!(empty, Err(Error::EmptyRange));
        let quarters = Grouping {
            interval: Some(Interval::Quarter),
            ..Grouping::default()
        };
        let later = Timestamp::from_unix_millis(1_796_716_800_000);
        let error = buckets.report(at..later, quarters).map(|_| ());
        assert_eq!(
            error.map_err(|e| e.to_string()),
            Err("interval: Quarter is finer than the buckets kept (Hour)".into())
        );
    }

    #[test]
    fn given_an_instant_then_its_interval_starts_on_the_boundary() {
        let at = Timestamp::from_unix_millis(1_796_630_400_000 + 17 * 60_000 + 5);
        let quarter = Interval::Quarter.floor(at).unix_millis();
        assert_eq!(quarter, 1_796_630_400_000 + 15 * 60_000);
        assert_eq!(Interval::Hour.floor(at).unix_millis(), 1_796_630_400_000);
        assert_eq!(Interval::Day.floor(at).unix_millis(), 1_796_601_600_000);
    }

    #[test]
    fn given_an_instant_on_a_boundary_then_its_interval_starts_there_and_ends_a_width_later() {
        let boundary = Timestamp::from_unix_millis(1_796_630_400_000);
        let quarter = Interval::Quarter.around(boundary);
        assert_eq!(quarter.start, boundary);
        assert_eq!(quarter.end.unix_millis(), 1_796_630_400_000 + 15 * 60_000);
        let last = Timestamp::from_unix_millis(1_796_630_400_000 - 1);
        assert_eq!(Interval::Hour.around(last).end, boundary);
        let day = Interval::Day.around(boundary);
        assert_eq!(day.end.unix_millis() - day.start.unix_millis(), 86_400_000);
    }
}
