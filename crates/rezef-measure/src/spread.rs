//! The spread of a station's durations: a mergeable histogram in whole seconds, from 0 to 30
//! days, to two significant digits, in HdrHistogram's bucket layout (the `hdrhistogram`
//! crate, a port of Gil Tene's HdrHistogram, says which bucket a value falls in): up to
//! 255 s every second is exact; above, a value is reported as the start of its bucket, less
//! than 1% (1/128) below the true value. Averages hide the spread; a histogram keeps it,
//! and two histograms add exactly, in any order, so buckets of 15 minutes roll up to a
//! month without losing it.
//!
//! Sparse: a spread holds only the buckets something fell in, as (bucket start, count) in
//! order of start. A station of a 15-minute bucket sees a handful of distinct durations,
//! where HdrHistogram's dense form is 2,048 counters (16 KiB) to allocate, zero, copy, encode
//! and walk at every merge; the sparse form adds, merges and stores in proportion to what
//! it holds, and reads the same percentiles (the tests below and the worked example's).
//!
//! Dense once busy: a spread that comes to hold many buckets close together (a day's queue
//! waits, second by second) turns into counters by bucket index up to its last bucket, where
//! recording is one increment, not a search of hundreds of pairs (a quarter of the
//! measurement's counting, profiled), and no more than twice the pairs' memory when it
//! turns. Either form reads, merges, compares and stores as the same pairs.
//! The serde form is the pairs, checked on the way in.

use std::cmp::Ordering;
use std::sync::LazyLock;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest duration kept apart: 30 days, in seconds. Longer ones count as 30 days.
const HIGHEST_SECS: u64 = 30 * 24 * 3600;
const SIGNIFICANT_DIGITS: u8 = 2;

/// The bucket layout: an empty histogram of these bounds, asked where values fall.
static LAYOUT: LazyLock<Histogram<u64>> = LazyLock::new(|| {
    Histogram::new_with_bounds(1, HIGHEST_SECS, SIGNIFICANT_DIGITS)
        .expect("constant bounds are valid")
});

/// Below this many seconds every second is a bucket of its own (HdrHistogram's first 256
/// sub-buckets at two significant digits), so most durations need not ask the layout.
const EXACT_BELOW: u64 = 256;

/// The start of the bucket `secs` falls in.
fn bucket_of(secs: u64) -> u64 {
    if secs < EXACT_BELOW {
        return secs;
    }
    LAYOUT.lowest_equivalent(secs.min(HIGHEST_SECS))
}

/// Above [`EXACT_BELOW`], each power of two is split into this many buckets.
const PER_OCTAVE: u64 = EXACT_BELOW / 2;

/// The bucket `secs` falls in, counted from the first (0 s), in the layout's order: the
/// dense form's index. Tested against the layout for every bucket.
fn index_of(secs: u64) -> usize {
    let secs = secs.min(HIGHEST_SECS);
    if secs < EXACT_BELOW {
        return secs as usize;
    }
    // The octave [2^(k+7), 2^(k+8)) is split into 128 buckets 2^k wide.
    let shift = u64::from(63 - secs.leading_zeros() - 7);
    (PER_OCTAVE * shift + (secs >> shift)) as usize
}

/// The start of the bucket at `index` (the inverse of [`index_of`] on bucket starts).
fn start_of(index: usize) -> u64 {
    let index = index as u64;
    if index < EXACT_BELOW {
        return index;
    }
    let shift = index / PER_OCTAVE - 1;
    (index - PER_OCTAVE * shift) << shift
}

/// A sparse spread turns dense from this many buckets on, when the counters up to its last
/// bucket take no more than twice the memory of its pairs (8 bytes a counter, 16 a pair).
const DENSE_FROM: usize = 64;

/// A merge adds the other's buckets one by one in place when it holds at most this many
/// times fewer (a search each), else walks both into a new list.
const SMALL_INTO_LARGE: usize = 8;

/// Durations recorded at one station, for percentiles (see the module docs).
#[derive(Debug, Clone)]
pub struct Spread(Counts);

#[derive(Debug, Clone)]
enum Counts {
    /// (bucket start in seconds, count), in order of start, no count zero.
    Sparse(Vec<(u64, u64)>),
    /// Count by bucket index ([`index_of`]), up to the last bucket holding something or
    /// beyond.
    Dense(Vec<u64>),
}

impl Default for Spread {
    fn default() -> Self {
        Self(Counts::Sparse(Vec::new()))
    }
}

/// p50, p90 and p99 of a spread, with how many durations it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub max: Duration,
}

/// Adds `count` at `index` of dense counters, growing them to reach it.
fn add_at(counts: &mut Vec<u64>, index: usize, count: u64) {
    if index >= counts.len() {
        counts.resize(index + 1, 0);
    }
    counts[index] = counts[index].saturating_add(count);
}

/// Adds `count` to the pair of `start` in sparse pairs, or inserts it in order.
fn add_pair(pairs: &mut Vec<(u64, u64)>, start: u64, count: u64) {
    match pairs.binary_search_by_key(&start, |(s, _)| *s) {
        Ok(at) => pairs[at].1 = pairs[at].1.saturating_add(count),
        Err(at) => pairs.insert(at, (start, count)),
    }
}

/// Sparse pairs as dense counters.
fn dense(pairs: &[(u64, u64)]) -> Vec<u64> {
    let mut counts = Vec::new();
    for &(start, count) in pairs {
        add_at(&mut counts, index_of(start), count);
    }
    counts
}

/// Two sparse spreads' pairs added (see [`SMALL_INTO_LARGE`]).
fn merge_pairs(a: &mut Vec<(u64, u64)>, b: &[(u64, u64)]) {
    if a.is_empty() {
        return a.extend_from_slice(b);
    }
    // A few buckets into many (a report summing a month into one row): found in place,
    // rather than the whole copied at every merge.
    if b.len().saturating_mul(SMALL_INTO_LARGE) <= a.len() {
        for &(start, count) in b {
            add_pair(a, start, count);
        }
        return;
    }
    let (mut i, mut j) = (0, 0);
    let mut merged = Vec::with_capacity(a.len() + b.len());
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            Ordering::Less => (merged.push(a[i]), i += 1),
            Ordering::Greater => (merged.push(b[j]), j += 1),
            Ordering::Equal => {
                merged.push((a[i].0, a[i].1.saturating_add(b[j].1)));
                (i += 1, j += 1)
            }
        };
    }
    merged.extend_from_slice(&a[i..]);
    merged.extend_from_slice(&b[j..]);
    *a = merged;
}

impl Spread {
    /// Records one duration, to the nearest second (saturating at 30 days).
    pub fn record(&mut self, duration: Duration) {
        let secs = duration.as_secs() + u64::from(duration.subsec_millis() >= 500);
        match &mut self.0 {
            Counts::Dense(counts) => add_at(counts, index_of(secs), 1),
            Counts::Sparse(pairs) => {
                let held = pairs.len();
                add_pair(pairs, bucket_of(secs), 1);
                if pairs.len() > held {
                    self.dense_if_busy();
                }
            }
        }
    }

    /// Turns dense when busy (see [`DENSE_FROM`]).
    fn dense_if_busy(&mut self) {
        let Counts::Sparse(pairs) = &self.0 else {
            return;
        };
        let Some(&(last, _)) = pairs.last() else {
            return;
        };
        if pairs.len() >= DENSE_FROM && index_of(last) < 4 * pairs.len() {
            self.0 = Counts::Dense(dense(pairs));
        }
    }

    /// Adds another spread's durations to this one.
    pub fn merge(&mut self, other: &Self) {
        match (&mut self.0, &other.0) {
            (Counts::Sparse(a), Counts::Sparse(b)) => merge_pairs(a, b),
            (Counts::Dense(a), Counts::Sparse(b)) => {
                for &(start, count) in b {
                    add_at(a, index_of(start), count);
                }
            }
            (Counts::Dense(a), Counts::Dense(b)) => {
                if b.len() > a.len() {
                    a.resize(b.len(), 0);
                }
                for (mine, theirs) in a.iter_mut().zip(b) {
                    *mine = mine.saturating_add(*theirs);
                }
            }
            (Counts::Sparse(a), Counts::Dense(b)) => {
                let mut both = b.clone();
                for &(start, count) in a.iter() {
                    add_at(&mut both, index_of(start), count);
                }
                self.0 = Counts::Dense(both);
            }
        }
    }

    /// (bucket start in seconds, count) of every bucket holding something, in order.
    fn pairs(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        let (sparse, dense): (&[(u64, u64)], &[u64]) = match &self.0 {
            Counts::Sparse(pairs) => (pairs, &[]),
            Counts::Dense(counts) => (&[], counts),
        };
        let counted = (dense.iter().enumerate()).filter(|(_, count)| **count > 0);
        (sparse.iter().copied()).chain(counted.map(|(index, count)| (start_of(index), *count)))
    }

    /// How many of its buckets hold something.
    pub fn buckets(&self) -> usize {
        self.pairs().count()
    }

    /// How many durations it holds.
    pub fn count(&self) -> u64 {
        (self.pairs()).fold(0, |total, (_, count)| total.saturating_add(count))
    }

    /// The duration `quantile` (0.0 to 1.0) of them are at or below (nearest rank, as
    /// HdrHistogram counts it), as the start of its bucket (exact up to 255 s, less than 1%
    /// below above); `None` when empty.
    pub fn quantile(&self, quantile: f64) -> Option<Duration> {
        let rank = ((quantile.min(1.0) * self.count() as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        let (start, _) = self.pairs().find(|(_, count)| {
            seen = seen.saturating_add(*count);
            seen >= rank
        })?;
        Some(Duration::from_secs(start))
    }

    /// p50, p90, p99 and the maximum; `None` when empty. As [`Self::quantile`] reads them,
    /// in one walk (a report reads every station of thousands of rows).
    pub fn percentiles(&self) -> Option<Percentiles> {
        let count = self.count();
        let (max, _) = self.pairs().last()?;
        let rank = |quantile: f64| ((quantile * count as f64).ceil() as u64).max(1);
        let ranks = [rank(0.50), rank(0.90), rank(0.99)];
        let mut starts = [max; 3];
        let (mut found, mut seen) = (0, 0u64);
        for (start, n) in self.pairs() {
            seen = seen.saturating_add(n);
            while found < ranks.len() && seen >= ranks[found] {
                starts[found] = start;
                found += 1;
            }
            if found == ranks.len() {
                break;
            }
        }
        let [p50, p90, p99] = starts.map(Duration::from_secs);
        Some(Percentiles {
            count,
            p50,
            p90,
            p99,
            max: Duration::from_secs(max),
        })
    }
}

/// Equal when they hold the same durations, in either form.
impl PartialEq for Spread {
    fn eq(&self, other: &Self) -> bool {
        self.pairs().eq(other.pairs())
    }
}

impl Eq for Spread {}

/// The pairs, in either form: what a derived form of `Spread(Vec<(u64, u64)>)` writes.
impl Serialize for Spread {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Pairs<'a>(&'a Spread);
        impl Serialize for Pairs<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut seq = serializer.serialize_seq(Some(self.0.buckets()))?;
                for pair in self.0.pairs() {
                    seq.serialize_element(&pair)?;
                }
                seq.end()
            }
        }
        serializer.serialize_newtype_struct("Spread", &Pairs(self))
    }
}

impl<'de> Deserialize<'de> for Spread {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let pairs = Vec::<(u64, u64)>::deserialize(deserializer)?;
        let ordered = pairs.windows(2).all(|w| w[0].0 < w[1].0);
        let buckets =
            (pairs.iter()).all(|(start, count)| *count > 0 && bucket_of(*start) == *start);
        match ordered && buckets {
            true => Ok(Self(Counts::Sparse(pairs))),
            false => Err(serde::de::Error::custom(
                "a spread's buckets must be bucket starts in order, with counts",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn given_a_hundred_waits_then_percentiles_within_one_percent() {
        let mut spread = Spread::default();
        for s in 1..=100 {
            spread.record(secs(s));
        }
        let p = spread.percentiles().expect("not empty");
        assert_eq!(p.count, 100);
        assert_eq!(
            (p.p50.as_secs(), p.p90.as_secs(), p.p99.as_secs()),
            (50, 90, 99)
        );
        assert_eq!(p.max, secs(100));
    }

    #[test]
    fn given_long_durations_then_reported_as_their_bucket_start_within_one_percent() {
        let mut spread = Spread::default();
        spread.record(secs(7198));
        spread.record(Duration::from_millis(2_399_600));
        // 7198 s is in the bucket 7168..=7199 (32 s wide); 2399.6 s rounds to 2400, which
        // starts its bucket (16 s wide).
        assert_eq!(spread.quantile(0.5), Some(secs(2400)));
        assert_eq!(spread.quantile(1.0), Some(secs(7168)));
    }

    #[test]
    fn given_two_halves_when_merged_either_way_then_equal_to_the_whole() {
        let (mut a, mut b, mut whole) = (Spread::default(), Spread::default(), Spread::default());
        for s in 0..50 {
            a.record(secs(s));
            whole.record(secs(s));
        }
        for s in 50..90 {
            b.record(secs(s * 7));
            whole.record(secs(s * 7));
        }
        let mut ab = a.clone();
        ab.merge(&b);
        let mut ba = b.clone();
        ba.merge(&a);
        assert_eq!(ab, whole);
        assert_eq!(ba, whole);
    }

    #[test]
    fn given_a_spread_when_serialised_then_read_back_equal() {
        let mut spread = Spread::default();
        spread.record(secs(2400));
        spread.record(Duration::from_millis(300));
        let json = serde_json::to_string(&spread).expect("serialises");
        let back: Spread = serde_json::from_str(&json).expect("reads");
        assert_eq!(back, spread);
        let none: Spread = serde_json::from_str("[]").expect("reads");
        assert_eq!(none.percentiles(), None);
        let read = serde_json::from_str::<Spread>("[[300,1],[2400,2]]").expect("reads");
        assert_eq!(read.count(), 3);
        // Not a bucket start (7168..=7199, 300..=301), out of order, a count of zero.
        for bad in ["[[7198,1]]", "[[301,1]]", "[[2400,1],[0,1]]", "[[0,0]]"] {
            assert!(serde_json::from_str::<Spread>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn given_a_short_duration_then_its_bucket_is_the_layout_s() {
        for secs in 0..4 * EXACT_BELOW {
            assert_eq!(bucket_of(secs), LAYOUT.lowest_equivalent(secs), "{secs} s");
        }
        assert_eq!(bucket_of(EXACT_BELOW - 1), EXACT_BELOW - 1);
        assert_ne!(bucket_of(EXACT_BELOW + 1), EXACT_BELOW + 1);
    }

    #[test]
    fn given_every_bucket_then_its_index_and_start_are_the_layout_s() {
        let last = index_of(HIGHEST_SECS);
        for index in 0..=last {
            let start = start_of(index);
            assert_eq!(LAYOUT.lowest_equivalent(start), start, "bucket {index}");
            assert_eq!(index_of(start), index, "bucket {index}");
            let end = LAYOUT.highest_equivalent(start);
            assert_eq!(
                index_of(end.min(HIGHEST_SECS)),
                index,
                "bucket {index}'s end"
            );
            if index < last {
                assert_eq!(start_of(index + 1), end + 1, "after bucket {index}");
            }
        }
        assert_eq!(index_of(u64::MAX), last);
    }

    #[test]
    fn given_many_close_durations_then_dense_and_read_as_before() {
        let mut spread = Spread::default();
        for s in 0..DENSE_FROM as u64 - 1 {
            spread.record(secs(s));
        }
        assert!(matches!(spread.0, Counts::Sparse(_)));
        let sparse = spread.clone();
        spread.record(secs(100));
        assert!(
            matches!(spread.0, Counts::Dense(_)),
            "busy and close together"
        );
        spread.record(secs(7198));
        assert_eq!(spread.buckets(), DENSE_FROM + 1);
        assert_eq!(spread.quantile(1.0), Some(secs(7168)));
        let json = serde_json::to_string(&spread).expect("serialises");
        assert!(json.starts_with("[[0,1],[1,1],") && json.ends_with("[100,1],[7168,1]]"));
        let back: Spread = serde_json::from_str(&json).expect("reads");
        assert_eq!(back, spread);
        assert_ne!(sparse, spread);
        let bytes = postcard::to_stdvec(&spread).expect("encodes");
        assert_eq!(
            postcard::from_bytes::<Spread>(&bytes).expect("decodes"),
            spread
        );
        // Far apart: the counters would weigh more than twice the pairs.
        let mut wide = Spread::default();
        for s in 0..DENSE_FROM as u64 * 2 {
            wide.record(secs(s * 1000));
        }
        assert!(matches!(wide.0, Counts::Sparse(_)));
    }

    proptest::proptest! {
        /// Either form, merged in any order into either form, reads and stores as one
        /// sparse spread of every duration would.
        #[test]
        fn dense_and_sparse_forms_agree(
            close in proptest::collection::vec(0u64..400, 0..600),
            far in proptest::collection::vec(0u64..3_000_000, 0..80),
        ) {
            let (mut a, mut b, mut whole) =
                (Spread::default(), Spread::default(), Spread::default());
            let mut pairs = Vec::new();
            for s in &close {
                a.record(secs(*s));
                whole.record(secs(*s));
                add_pair(&mut pairs, bucket_of(*s), 1);
            }
            for s in &far {
                b.record(secs(*s));
                whole.record(secs(*s));
                add_pair(&mut pairs, bucket_of((*s).min(HIGHEST_SECS)), 1);
            }
            let sparse = Spread(Counts::Sparse(pairs));
            proptest::prop_assert_eq!(&whole, &sparse);
            let (mut ab, mut ba) = (a.clone(), b.clone());
            ab.merge(&b);
            ba.merge(&a);
            for merged in [&ab, &ba] {
                proptest::prop_assert_eq!(merged, &sparse);
                proptest::prop_assert_eq!(merged.percentiles(), sparse.percentiles());
                proptest::prop_assert_eq!(merged.count(), sparse.count());
                let bytes = postcard::to_stdvec(merged).expect("encodes");
                proptest::prop_assert_eq!(&bytes, &postcard::to_stdvec(&sparse).expect("encodes"));
            }
        }

        /// A merge of few buckets into many (in place) or of many into few (a walk of both)
        /// equals recording every duration into one spread.
        #[test]
        fn a_merge_of_any_sizes_equals_one_spread_of_all(
            many in proptest::collection::vec(0u64..100_000, 0..400),
            few in proptest::collection::vec(0u64..100_000, 0..40),
        ) {
            let (mut large, mut small, mut whole) =
                (Spread::default(), Spread::default(), Spread::default());
            for s in &many {
                large.record(secs(*s));
                whole.record(secs(*s));
            }
            for s in &few {
                small.record(secs(*s));
                whole.record(secs(*s));
            }
            let mut into_large = large.clone();
            into_large.merge(&small);
            let mut into_small = small;
            into_small.merge(&large);
            proptest::prop_assert_eq!(&into_large, &whole);
            proptest::prop_assert_eq!(&into_small, &whole);
        }

        /// The sparse form reads what HdrHistogram's dense form reads, merged or not.
        #[test]
        fn percentiles_equal_hdrhistograms(
            a in proptest::collection::vec(0u64..3_000_000, 0..60),
            b in proptest::collection::vec(0u64..3_000_000, 0..60),
        ) {
            let mut dense = Histogram::<u64>::new_with_bounds(1, HIGHEST_SECS, SIGNIFICANT_DIGITS)
                .expect("valid");
            let (mut left, mut right) = (Spread::default(), Spread::default());
            for s in &a {
                left.record(secs(*s));
                dense.saturating_record((*s).min(HIGHEST_SECS));
            }
            for s in &b {
                right.record(secs(*s));
                dense.saturating_record((*s).min(HIGHEST_SECS));
            }
            left.merge(&right);
            proptest::prop_assert_eq!(left.count(), dense.len());
            let walked = left.percentiles().map(|p| (p.p50, p.p90, p.p99, p.max));
            let asked = |q| left.quantile(q);
            let each = (|| Some((asked(0.5)?, asked(0.9)?, asked(0.99)?, asked(1.0)?)))();
            proptest::prop_assert_eq!(walked, each);
            for q in [0.0, 0.25, 0.5, 0.9, 0.99, 0.999, 1.0] {
                let expected = (!dense.is_empty()).then(|| {
                    secs(dense.lowest_equivalent(dense.value_at_quantile(q)))
                });
                proptest::prop_assert_eq!(left.quantile(q), expected, "q {}", q);
            }
        }
    }
}
