//! The measurement projection (docs/measurement.md): the partition's [`Measurer`] fed every
//! event the journey fold applied, with the journey after it, in the same step; and each
//! tenant's figures kept at two widths, 15 minutes (for reports by quarter, hour or a range
//! off day boundaries) and a day (for long ranges). It lives beside the journeys in memory
//! and is checkpointed with them: a checkpoint carries the measurer and the buckets changed
//! since the last one, in the same atomic write as the projection's offset, so a restart
//! resumes it exactly and a rebuild folds it again from the log.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use rezef_events::fold::Applied;
use rezef_events::{Event, Journey, TenantId, Timestamp};
use rezef_measure::{
    BucketKey, Buckets, Figures, Grouping, Interval, MeasureRules, Measured, Measurer,
};

/// The widths figures are kept at.
pub const WIDTHS: [Interval; 2] = [Interval::Quarter, Interval::Day];

/// One stored bucket: whose, at which width, which, and its figures.
pub type StoredBucket = (TenantId, Interval, BucketKey, Figures);

/// What a checkpoint writes of the measurement: the measurer, and the buckets changed since
/// the previous checkpoint (read back from a store: all of them).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MeasureCheckpoint {
    pub measurer: Measurer,
    pub buckets: Vec<StoredBucket>,
}

/// A tenant's figures at both widths.
#[derive(Debug, Clone, PartialEq)]
struct TenantFigures([Buckets; 2]);

impl Default for TenantFigures {
    fn default() -> Self {
        Self(WIDTHS.map(Buckets::new))
    }
}

impl TenantFigures {
    fn at(&self, width: Interval) -> &Buckets {
        &self.0[usize::from(width != Interval::Quarter)]
    }

    fn at_mut(&mut self, width: Interval) -> &mut Buckets {
        &mut self.0[usize::from(width != Interval::Quarter)]
    }

    /// Day buckets for a range on day boundaries asked by day or as one row, else quarters.
    fn for_report(&self, range: &Range<Timestamp>, grouping: Grouping) -> &Buckets {
        let on_days = |at: Timestamp| Interval::Day.floor(at) == at;
        let by_day = matches!(grouping.interval, None | Some(Interval::Day));
        let days = by_day && on_days(range.start) && on_days(range.end);
        &self.0[usize::from(days)]
    }
}

/// The measurement of one partition (see the module docs).
#[derive(Debug, Default)]
pub struct Measurement {
    measurer: Measurer,
    tenants: BTreeMap<TenantId, TenantFigures>,
    /// Buckets changed since the last checkpoint was cut.
    dirty: BTreeSet<(TenantId, Interval, BucketKey)>,
}

impl Measurement {
    /// The measurement a store holds.
    pub fn restore(stored: MeasureCheckpoint) -> Self {
        let mut measurement = Self {
            measurer: stored.measurer,
            ..Self::default()
        };
        for (tenant, width, key, figures) in stored.buckets {
            let buckets = measurement.tenants.entry(tenant).or_default().at_mut(width);
            buckets.restore(key, figures);
        }
        measurement
    }

    /// Measures the event the fold applied at `offset`, `journey` being the journey after it
    /// and `applied` what the fold did.
    pub fn observe(
        &mut self,
        rules: &MeasureRules,
        offset: u64,
        event: &Event,
        recorded_at: Option<Timestamp>,
        (journey, applied): (&Journey, &Applied),
    ) {
        let config = rules.for_tenant(&journey.tenant_id);
        let folded = (journey, applied);
        for record in (self.measurer).observe(config, offset, event, recorded_at, folded) {
            let tenant = match &record {
                // The clock decides pending resolutions of any tenant.
                Measured::Fcr(decision) => &decision.tenant_id,
                _ => &journey.tenant_id,
            };
            let figures = self.tenants.entry(tenant.clone()).or_default();
            for width in WIDTHS {
                let key = figures.at_mut(width).add(&record);
                self.dirty.insert((tenant.clone(), width, key));
            }
        }
    }

    /// What the next checkpoint writes: the measurer and the buckets changed since the last
    /// cut (no longer changed, until they change again).
    pub fn seal(&mut self) -> MeasureCheckpoint {
        let buckets = (std::mem::take(&mut self.dirty).into_iter())
            .filter_map(|(tenant, width, key)| {
                let figures = self.tenants.get(&tenant)?.at(width).get(&key)?.clone();
                Some((tenant, width, key, figures))
            })
            .collect();
        MeasureCheckpoint {
            measurer: self.measurer.clone(),
            buckets,
        }
    }

    /// A sealed checkpoint was not written: its buckets are written with the next one.
    pub fn unseal(&mut self, failed: &MeasureCheckpoint) {
        let keys = (failed.buckets.iter()).map(|(t, w, key, _)| (t.clone(), *w, key.clone()));
        self.dirty.extend(keys);
    }

    /// Everything, as a store would hold it.
    pub fn snapshot(&self) -> MeasureCheckpoint {
        let mut buckets = Vec::new();
        for (tenant, figures) in &self.tenants {
            for kept in &figures.0 {
                let all = kept
                    .iter()
                    .map(|(key, f)| (tenant.clone(), kept.width(), key.clone(), f.clone()));
                buckets.extend(all);
            }
        }
        MeasureCheckpoint {
            measurer: self.measurer.clone(),
            buckets,
        }
    }

    /// A tenant's figures in `range`, grouped (see [`Buckets::report`]), from the day
    /// buckets when the range is on day boundaries and asked by day or as a whole, else
    /// from the 15-minute ones.
    pub fn report(
        &self,
        tenant: &TenantId,
        range: Range<Timestamp>,
        grouping: Grouping,
    ) -> rezef_measure::Result<BTreeMap<BucketKey, Figures>> {
        match self.tenants.get(tenant) {
            Some(figures) => figures.for_report(&range, grouping).report(range, grouping),
            // Checked as a tenant with figures would be.
            None => Buckets::new(Interval::Quarter).report(range, grouping),
        }
    }
}
