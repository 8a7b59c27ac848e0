//! The buckets a partition's measurement keeps in memory, at both widths, and what changed
//! since the last checkpoint was cut. Pure: the counter (`super::tally`) reads back from the
//! store what [`HeldBuckets::absent`] names and hands it over with [`HeldBuckets::load`].

use std::collections::{BTreeMap, BTreeSet};
use std::mem;
use std::ops::Range;

use rezef_events::by_tenant::ByTenant;
use rezef_events::{TenantId, Timestamp};
use rezef_measure::record::Dims;
use rezef_measure::{BucketKey, Figures, Grouping, Interval, Measured};

use super::reading::Reading;
use super::{StoredBucket, StoredKey, WIDTHS};

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

/// From when on every bucket of each width of [`WIDTHS`] is in memory.
pub(crate) type Floors = [Timestamp; 2];

/// The buckets in memory (see the module docs): from the floors on all of them (the store
/// holds no other), before them those changed since they were read back and not let go of
/// yet. Looked up by a record's tenant and dimensions as borrowed, then by start: counting a
/// record clones no key.
#[derive(Debug, Default)]
pub(crate) struct HeldBuckets {
    held: ByTenant<Dims, ByStart>,
    /// How many of them changed since the last checkpoint was cut.
    dirty: usize,
}

impl HeldBuckets {
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

    /// The buckets `records` count in that are not in memory but may be stored (before
    /// `floors`): each must be read back ([`Self::load`]) before the records are added.
    pub fn absent(&self, records: &[(TenantId, Measured)], floors: Floors) -> BTreeSet<StoredKey> {
        let mut absent = BTreeSet::new();
        for (tenant, record) in records {
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
    pub fn add(&mut self, records: &[(TenantId, Measured)]) {
        for (tenant, record) in records {
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

    /// The buckets changed since the last cut (no longer changed, until they change again),
    /// in key order.
    pub fn seal(&mut self) -> Vec<StoredBucket> {
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
        buckets
    }

    /// A sealed cut was not written: its buckets are written with the next one.
    pub fn unseal(&mut self, failed: &[StoredBucket]) {
        for (tenant, width, key, _) in failed {
            let Some(by_start) = self.held.get_mut(tenant, &key.dims) else {
                continue;
            };
            // Still held: let go of only after a checkpoint wrote it.
            if let Some(held) = by_start[index(*width)].get_mut(&key.start) {
                self.dirty += usize::from(!mem::replace(&mut held.dirty, true));
            }
        }
    }

    /// Lets go of the buckets before `floors` that are not changed since the last cut:
    /// call once a checkpoint is written (the store holds them).
    pub fn evict(&mut self, floors: Floors) {
        self.held.retain(|by_start| {
            for (held, floor) in by_start.iter_mut().zip(floors) {
                held.retain(|start, held| *start >= floor || held.dirty);
            }
            by_start.iter().any(|held| !held.is_empty())
        });
    }

    /// How many buckets changed since the last cut.
    pub fn dirty(&self) -> usize {
        self.dirty
    }

    /// How many buckets are in memory (both widths, every tenant).
    pub fn resident_buckets(&self) -> usize {
        let held = self.held.iter().flat_map(|(_, _, by_start)| by_start);
        held.map(BTreeMap::len).sum()
    }

    /// A bucket in memory.
    pub fn bucket(&self, (tenant, width, key): &StoredKey) -> Option<&Figures> {
        let by_start = self.held.get(tenant, &key.dims)?;
        Some(&by_start[index(*width)].get(&key.start)?.figures)
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
        let width = index(reading.width());
        for (dims, by_start) in self.held.of(tenant) {
            for (start, held) in by_start[width].range(reading.range()) {
                let key = BucketKey {
                    start: *start,
                    dims: dims.clone(),
                };
                reading.add_in_memory(key, &held.figures);
            }
        }
        Ok(reading)
    }
}
