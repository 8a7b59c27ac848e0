//! The spread of a station's durations: a mergeable HdrHistogram (the `hdrhistogram` crate,
//! a port of Gil Tene's HdrHistogram) in milliseconds, from 1 ms to 30 days, to two
//! significant digits (a percentile is within 1% of the true value). Averages hide the
//! spread; a histogram keeps it, and two histograms add exactly, in any order, so buckets
//! of 15 minutes roll up to a month without losing it.
//!
//! An empty spread allocates nothing (most stations of most buckets are empty). The serde
//! form is HdrHistogram's V2 encoding (compact, run-length), refused on the way in unless its
//! bounds are these.

use std::time::Duration;

use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer as HdrDeserializer, Serializer as _, V2Serializer};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest duration kept apart: 30 days, in milliseconds. Longer ones count as 30 days.
const HIGHEST_MS: u64 = 30 * 24 * 3600 * 1000;
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
    Histogram::new_with_bounds(1, HIGHEST_MS, SIGNIFICANT_DIGITS)
        .expect("constant bounds are valid")
}

impl Spread {
    /// Records one duration (saturating at 30 days).
    pub fn record(&mut self, duration: Duration) {
        let ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        self.0
            .get_or_insert_with(|| Box::new(empty()))
            .saturating_record(ms);
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

    /// The duration below which `quantile` (0.0 to 1.0) of them fall, rounded up to the
    /// top of its histogram bucket (at most 1% above, never below); `None` when empty.
    pub fn quantile(&self, quantile: f64) -> Option<Duration> {
        let histogram = self.0.as_ref()?;
        let ms = histogram.highest_equivalent(histogram.value_at_quantile(quantile));
        Some(Duration::from_millis(ms.min(histogram.max())))
    }

    /// p50, p90, p99 and the maximum; `None` when empty.
    pub fn percentiles(&self) -> Option<Percentiles> {
        let histogram = self.0.as_ref()?;
        Some(Percentiles {
            count: histogram.len(),
            p50: self.quantile(0.50)?,
            p90: self.quantile(0.90)?,
            p99: self.quantile(0.99)?,
            max: Duration::from_millis(histogram.max()),
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
        if read.sigfig() != SIGNIFICANT_DIGITS || read.high() > HIGHEST_MS {
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
        // The highest value of its histogram bucket: at most 1% above.
        assert!(p.max >= secs(100) && p.max <= Duration::from_millis(101_000));
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
        spread.record(Duration::from_millis(3));
        let json = serde_json::to_string(&spread).expect("serialises");
        let back: Spread = serde_json::from_str(&json).expect("reads");
        assert_eq!(back, spread);
        let none: Spread = serde_json::from_str("null").expect("reads");
        assert_eq!(none.percentiles(), None);
    }
}
