//! The spread of a station's durations: a mergeable HdrHistogram (the `hdrhistogram` crate,
//! a port of Gil Tene's HdrHistogram) in whole seconds, from 0 to 30 days, to two
//! significant digits: up to 255 s every second is exact; above, a value is reported as the
//! start of its bucket, less than 1% (1/128) below the true value. Averages hide the spread;
//! a histogram keeps it, and two histograms add exactly, in any order, so buckets of 15
//! minutes roll up to a month without losing it.
//!
//! An empty spread allocates nothing (most stations of most buckets are empty). The serde
//! form is HdrHistogram's V2 encoding (compact, run-length), refused on the way in unless its
//! bounds are these.

use std::time::Duration;

use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer as HdrDeserializer, Serializer as _, V2Serializer};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest duration kept apart: 30 days, in seconds. Longer ones count as 30 days.
const HIGHEST_SECS: u64 = 30 * 24 * 3600;
const SIGNIFICANT_DIGITS: u8 = 2;

/// Durations recorded at one station, for percentiles.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Spread(Option<Box<Histogram<u64>>>);

/// p50, p90 and p99 of a spread, with how many durations it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub max: Duration,
}

fn empty() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIGHEST_SECS, SIGNIFICANT_DIGITS)
        .expect("constant bounds are valid")
}

impl Spread {
    /// Records one duration, to the nearest second (saturating at 30 days).
    pub fn record(&mut self, duration: Duration) {
        let secs = duration.as_secs() + u64::from(duration.subsec_millis() >= 500);
        self.0
            .get_or_insert_with(|| Box::new(empty()))
            .saturating_record(secs);
    }

    /// Adds another spread's durations to this one.
    pub fn merge(&mut self, other: &Self) {
        let Some(theirs) = &other.0 else { return };
        match &mut self.0 {
            Some(mine) => mine
                .add(theirs.as_ref())
                .expect("spreads share their bounds (checked when read)"),
            None => self.0 = Some(theirs.clone()),
        }
    }

    /// How many durations it holds.
    pub fn count(&self) -> u64 {
        self.0.as_ref().map_or(0, |h| h.len())
    }

    /// The duration `quantile` (0.0 to 1.0) of them are at or below (nearest rank), as the
    /// start of its histogram bucket (exact up to 255 s, less than 1% below above); `None`
    /// when empty.
    pub fn quantile(&self, quantile: f64) -> Option<Duration> {
        let histogram = self.0.as_ref()?;
        let secs = histogram.lowest_equivalent(histogram.value_at_quantile(quantile));
        Some(Duration::from_secs(secs))
    }

    /// p50, p90, p99 and the maximum; `None` when empty.
    pub fn percentiles(&self) -> Option<Percentiles> {
        Some(Percentiles {
            count: self.count(),
            p50: self.quantile(0.50)?,
            p90: self.quantile(0.90)?,
            p99: self.quantile(0.99)?,
            max: self.quantile(1.0)?,
        })
    }
}

impl Serialize for Spread {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let bytes = match &self.0 {
            None => None,
            Some(histogram) => {
                let mut bytes = Vec::new();
                V2Serializer::new()
                    .serialize(histogram.as_ref(), &mut bytes)
                    .map_err(|e| serde::ser::Error::custom(format!("histogram: {e:?}")))?;
                Some(bytes)
            }
        };
        bytes.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Spread {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let Some(bytes) = Option::<Vec<u8>>::deserialize(deserializer)? else {
            return Ok(Self(None));
        };
        let read: Histogram<u64> = HdrDeserializer::new()
            .deserialize(&mut bytes.as_slice())
            .map_err(|e| serde::de::Error::custom(format!("histogram: {e:?}")))?;
        let mut histogram = empty();
        if read.sigfig() != SIGNIFICANT_DIGITS || read.high() > HIGHEST_SECS {
            return Err(serde::de::Error::custom("histogram of other bounds"));
        }
        histogram
            .add(&read)
            .map_err(|e| serde::de::Error::custom(format!("histogram: {e:?}")))?;
        Ok(Self(Some(Box::new(histogram))))
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
        let none: Spread = serde_json::from_str("null").expect("reads");
        assert_eq!(none.percentiles(), None);
    }
}
