//! The projection at memory speed: journeys folded in memory, checkpointed to the store
//! below.
//!
//! Kafka Streams puts a record cache in front of its state stores and flushes it on commit;
//! Rezef can go further because its log already carries durability. A [`CachedStore`]
//! takes every projection step into memory ([`Tables`]; journeys are folded there in place,
//! `crate::workspace`), where reads see it at once, and writes what changed to the store
//! below (sled) atomically, one checkpoint at a time: every `checkpoint_interval`, or sooner
//! when the changed journeys pass `checkpoint_dirty_mib`.
//! A crash loses at most the steps since the last checkpoint, and the projector folds them
//! again from the log (it only ever folds durable records, so nothing a reader saw is lost).
//!
//! Journeys (and identity links) read from below stay in a [`JourneyCache`] bounded in
//! bytes (`cache_mib`, quick_cache's scan-resistant CLOCK-Pro) and shared by every store of
//! a node (a Kafka node folds many partitions), from which clean entries are evicted;
//! changed ones stay in the [`Tables`] until their checkpoint is written. While the store
//! below holds nothing memory does not (a fresh store or a rebuild, until the first
//! eviction), misses do not ask it at all; over a store that does, the cache is warmed in the
//! background (`crate::warm`).
//!
//! How long each checkpoint takes is told to a [`CheckpointObserver`] when one is set (the
//! server's metrics): the store knows nothing of how it is reported.

use std::collections::{BTreeMap, HashSet};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use rezef_events::agent::AgentState;
use rezef_events::routed::RoutedContact;
use rezef_events::{
    AgentId, ChannelIdentity, ConversationId, CustomerId, InteractionId, Journey, TenantId,
    Timestamp,
};
use rezef_measure::{BucketKey, Figures, Grouping, Interval, MeasureRules, Measurer};

use crate::Result;
use crate::dedup::AppliedIds;
pub use crate::journey_cache::JourneyCache;
use crate::journey_cache::{Cached, Entry, Key, weight};
use crate::measurement::{Measurement, SealedMeasure, StoredBucket, StoredKey};
use crate::memory::Tables;
use crate::store::{
    Checkpoint, Index, JourneyStore, ProjectionBatch, RoutingConfigRecord, TokenGrant, overlay,
    page,
};
use crate::workspace::Workspace;

/// How the projection uses memory and how often it checkpoints (`[projection]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectionConfig {
    /// Bytes of journeys kept in memory besides the changed ones (estimated sizes).
    pub cache_bytes: u64,
    /// A checkpoint is written at least this often while anything changed.
    pub checkpoint_interval: Duration,
    /// ...and sooner once the changed journeys and measurement buckets reach about this
    /// many bytes.
    pub checkpoint_dirty_bytes: u64,
    /// How many of the latest applied event ids are remembered for deduplication.
    pub dedup_window: usize,
    /// Bytes of sled's own page cache, per store (`crate::SledStore::open_with_cache`).
    pub store_cache_bytes: u64,
    /// Every tenant's measurement rules (`crate::measurement`).
    pub measure: MeasureRules,
}

impl Default for ProjectionConfig {
    fn default() -> Self {
        Self {
            cache_bytes: 512 << 20,
            checkpoint_interval: Duration::from_secs(5),
            checkpoint_dirty_bytes: 128 << 20,
            dedup_window: crate::DEFAULT_DEDUP_WINDOW,
            store_cache_bytes: crate::sled_store::DEFAULT_STORE_CACHE_BYTES,
            measure: MeasureRules::default(),
        }
    }
}

/// Told of every checkpoint a store writes (or fails to), with how long it took.
pub trait CheckpointObserver: std::fmt::Debug + Send + Sync {
    fn checkpoint(&self, took: Duration, written: bool);
}

#[derive(Debug)]
pub(crate) struct Layers {
    /// Steps folded since the last checkpoint began.
    pub(crate) active: Tables,
    /// The checkpoint being written, readable until it is.
    pub(crate) flushing: Option<Arc<Tables>>,
    /// Counts finished checkpoints: a read from below may fill the cache only if none
    /// finished meanwhile (else it could put back what the checkpoint replaced).
    epoch: u64,
    last_checkpoint: Instant,
    /// The average weight of the journeys of the last checkpoint, to estimate dirty bytes.
    average_weight: u64,
    /// The measurement, folded with the journeys, and what of it the checkpoint being
    /// written holds.
    pub(crate) measurement: Measurement,
    measure_flushing: Option<Arc<SealedMeasure>>,
}

impl Layers {
    /// The tables in memory, the checkpoint being written first: later ones win.
    fn oldest_first(&self) -> impl Iterator<Item = &Tables> {
        self.flushing.as_deref().into_iter().chain([&self.active])
    }

    /// Asks the tables in memory, newest first.
    pub(crate) fn ask<T>(&self, ask: impl Fn(&Tables) -> Option<T>) -> Option<T> {
        ask(&self.active).or_else(|| self.flushing.as_deref().and_then(ask))
    }
}

/// A journey store in memory in front of a durable one (see the module docs).
#[derive(Debug)]
pub struct CachedStore {
    pub(crate) below: Arc<dyn JourneyStore>,
    config: ProjectionConfig,
    layers: RwLock<Layers>,
    pub(crate) clean: JourneyCache,
    /// This store's key space in `clean`.
    id: AtomicU32,
    /// The store below held something when it was opened: misses must ask it.
    below_had_data: AtomicBool,
    one_checkpoint: Mutex<()>,
    observer: OnceLock<Arc<dyn CheckpointObserver>>,
}

impl CachedStore {
    /// A store with a cache of its own, of `config.cache_bytes`.
    pub fn new(below: Arc<dyn JourneyStore>, config: ProjectionConfig) -> Result<Self> {
        let cache = JourneyCache::new(config.cache_bytes);
        Self::sharing(below, config, cache)
    }

    /// A store using a node's shared cache (whose size is its own; `config.cache_bytes` is
    /// not used).
    pub fn sharing(
        below: Arc<dyn JourneyStore>,
        config: ProjectionConfig,
        clean: JourneyCache,
    ) -> Result<Self> {
        let below_had_data = AtomicBool::new(!is_empty(below.as_ref())?);
        let measurement = Measurement::open(below.clone(), config.measure.clone())?;
        Ok(Self {
            below,
            config,
            layers: RwLock::new(Layers {
                active: Tables::default(),
                flushing: None,
                epoch: 0,
                last_checkpoint: Instant::now(),
                average_weight: 2048,
                measurement,
                measure_flushing: None,
            }),
            id: AtomicU32::new(clean.new_store()),
            clean,
            below_had_data,
            one_checkpoint: Mutex::new(()),
            observer: OnceLock::new(),
        })
    }

    pub fn config(&self) -> &ProjectionConfig {
        &self.config
    }

    /// How many measurement buckets are in memory (`crate::measurement`, retention).
    pub fn resident_buckets(&self) -> Result<usize> {
        let tally = self.read().measurement.tally();
        Ok(tally.synced()?.buckets.resident_buckets())
    }

    /// Tells `observer` of every checkpoint from now on (the first observer set stays).
    pub fn observe_checkpoints(&self, observer: Arc<dyn CheckpointObserver>) {
        let _ = self.observer.set(observer);
    }

    /// The cache this store reads through (a node's, shared by its stores).
    pub fn cache(&self) -> &JourneyCache {
        &self.clean
    }

    pub(crate) fn key(&self, tenant: &TenantId, entry: Entry) -> Key {
        (self.id.load(Ordering::Relaxed), tenant.clone(), entry)
    }

    /// Whether the store below may hold what memory does not.
    pub(crate) fn incomplete(&self) -> bool {
        self.below_had_data.load(Ordering::Relaxed) || self.clean.evicted.load(Ordering::Relaxed)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Layers> {
        self.layers.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Layers> {
        self.layers.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks the layers in memory, newest first; `Err(epoch)` if none knows.
    fn in_memory<T>(&self, ask: impl Fn(&Tables) -> Option<T>) -> Result<T, u64> {
        let layers = self.read();
        layers.ask(ask).ok_or(layers.epoch)
    }

    /// Folds in place (a projection step's records, one at a time): `fold` changes the
    /// journeys in memory under the layers' write lock, so readers see each event whole.
    pub fn fold<T>(&self, fold: impl FnOnce(&mut Workspace<'_>) -> T) -> T {
        let mut layers = self.write();
        fold(&mut Workspace::new(self, &mut layers))
    }

    /// Cuts a checkpoint: what was folded so far is set aside to be written by
    /// [`Self::write_sealed`], and what comes next goes to fresh tables. Called between
    /// projection steps, so that a checkpoint never holds part of one. `false` if there is
    /// nothing to write or a checkpoint is still being written.
    pub fn seal(&self) -> bool {
        let mut layers = self.write();
        if layers.active.is_empty() || layers.flushing.is_some() {
            return false;
        }
        let tables = Arc::new(std::mem::take(&mut layers.active));
        layers.flushing = Some(tables);
        layers.measure_flushing = Some(Arc::new(layers.measurement.seal()));
        layers.last_checkpoint = Instant::now();
        true
    }

    /// Fills the cache with answers from below, unless a checkpoint finished since the layers
    /// were asked at `epoch` (then `false`).
    pub(crate) fn fill(
        &self,
        epoch: u64,
        entries: impl IntoIterator<Item = (Key, Cached)>,
    ) -> bool {
        let layers = self.read();
        let current = layers.epoch == epoch;
        if current {
            for (key, value) in entries {
                self.clean.insert(key, value);
            }
        }
        current
    }

    /// Counts finished checkpoints (see [`Layers`]): what is read from below after this may
    /// fill the cache while it stays the same.
    pub(crate) fn epoch(&self) -> u64 {
        self.read().epoch
    }

    /// Asks memory, then the cache, then (if it may know more) the store below.
    fn lookup<T>(
        &self,
        key: impl FnOnce() -> Key,
        ask: impl Fn(&Tables) -> Option<T>,
        cached: impl Fn(Cached) -> Option<T>,
        below: impl FnOnce() -> Result<T>,
        to_cache: impl FnOnce(&T) -> Cached,
        missing: T,
    ) -> Result<T> {
        let epoch = match self.in_memory(ask) {
            Ok(found) => return Ok(found),
            Err(epoch) => epoch,
        };
        let key = key();
        if let Some(found) = self.clean.get(&key).and_then(cached) {
            return Ok(found);
        }
        if !self.incomplete() {
            return Ok(missing);
        }
        let found = below()?;
        self.fill(epoch, [(key, to_cache(&found))]);
        Ok(found)
    }

    /// Writes the sealed tables to the store below as one checkpoint.
    pub fn write_sealed(&self) -> Result<()> {
        let _one = self
            .one_checkpoint
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        self.write_sealed_locked()
    }

    fn write_sealed_locked(&self) -> Result<()> {
        let (flushing, measure) = {
            let layers = self.read();
            (layers.flushing.clone(), layers.measure_flushing.clone())
        };
        let Some(flushing) = flushing else {
            return Ok(());
        };
        let started = Instant::now();
        let mut batch = flushing.to_batch();
        // The measurement's cut, once counted; not written without it.
        let written = (measure
            .as_deref()
            .map(SealedMeasure::checkpoint)
            .transpose())
        .and_then(|measure| {
            batch.measure = measure;
            self.below.commit(batch)
        });
        if let Some(observer) = self.observer.get() {
            observer.checkpoint(started.elapsed(), written.is_ok());
        }
        let mut weights = (0u64, 0u64);
        if written.is_ok() {
            // A read that found nothing in memory before this point may have read the old
            // version below: it must not fill the cache after the written version went in.
            self.write().epoch += 1;
            for (tenant, customer, journey) in flushing.journeys(None) {
                let journey = journey.cloned();
                if let Some(journey) = &journey {
                    weights = (weights.0 + weight(journey), weights.1 + 1);
                }
                let key = self.key(tenant, Entry::Journey(customer.clone()));
                self.clean.insert(key, Cached::Journey(journey));
            }
            for (tenant, key, owner) in flushing.links() {
                let key = self.key(tenant, Entry::Identity(key.to_owned()));
                self.clean.insert(key, Cached::Owner(owner.cloned()));
            }
        }
        let mut layers = self.write();
        if let Err(error) = written {
            // Not written: what it held goes back in front of what came since.
            let mut restored = Tables::default();
            restored.apply(flushing.to_batch());
            let since = std::mem::take(&mut layers.active);
            let folded = since.next_offset().or(flushing.next_offset());
            restored.apply(since.to_batch());
            restored.set_next_offset(folded);
            layers.active = restored;
            layers.flushing = None;
            if let Some(measure) = layers.measure_flushing.take() {
                layers.measurement.unseal(&measure);
            }
            return Err(error);
        }
        let written = layers.flushing.take();
        layers.measure_flushing = None;
        // What the checkpoint wrote of the old buckets is the store's to keep.
        layers.measurement.evict();
        layers.epoch += 1;
        if let Some(average) = weights.0.checked_div(weights.1) {
            layers.average_weight = average;
        }
        drop(layers);
        // Freeing the written tables takes a while: not under the lock readers wait for.
        drop((written, flushing));
        Ok(())
    }

    fn has_changes(&self) -> bool {
        !self.read().active.is_empty()
    }
}

fn is_empty(store: &dyn JourneyStore) -> Result<bool> {
    Ok(store.projected_offset()? == 0 && store.journeys(None).next().is_none())
}

impl JourneyStore for CachedStore {
    fn projected_offset(&self) -> Result<u64> {
        match self.in_memory(Tables::next_offset) {
            Ok(offset) => Ok(offset),
            Err(_) => self.below.projected_offset(),
        }
    }

    fn commit(&self, batch: ProjectionBatch) -> Result<()> {
        self.write().active.apply(batch);
        Ok(())
    }

    fn checkpoint_due(&self) -> Option<Checkpoint> {
        let layers = self.read();
        if layers.active.is_empty() {
            return None;
        }
        let journeys = layers.active.journey_count() as u64 * layers.average_weight;
        // Changed buckets stay in memory until written: a rebuild must checkpoint for them too.
        let dirty = journeys + layers.measurement.dirty_bytes();
        if dirty >= self.config.checkpoint_dirty_bytes.saturating_mul(2) {
            Some(Checkpoint::Full)
        } else if dirty >= self.config.checkpoint_dirty_bytes {
            Some(Checkpoint::Dirty)
        } else if layers.last_checkpoint.elapsed() >= self.config.checkpoint_interval {
            Some(Checkpoint::Interval)
        } else {
            None
        }
    }

    fn checkpoint(&self) -> Result<()> {
        let _one = self
            .one_checkpoint
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        self.seal();
        self.write_sealed_locked()
    }

    fn journey(&self, tenant: &TenantId, customer: &CustomerId) -> Result<Option<Journey>> {
        let found = self.lookup(
            || self.key(tenant, Entry::Journey(customer.clone())),
            |tables| tables.journey(tenant, customer).map(|j| j.cloned()),
            |cached| match cached {
                Cached::Journey(journey) => Some(journey),
                Cached::Owner(_) => None,
            },
            || Ok(self.below.journey(tenant, customer)?.map(Arc::new)),
            |journey| Cached::Journey(journey.clone()),
            None,
        )?;
        Ok(found.map(Arc::unwrap_or_clone))
    }

    fn journeys<'a>(
        &'a self,
        tenant: Option<&TenantId>,
    ) -> Box<dyn Iterator<Item = Result<Journey>> + 'a> {
        // Rare (tools and tests): the layers' journeys over the store's, materialised.
        let mut journeys = BTreeMap::new();
        for item in self.below.journeys(tenant) {
            match item {
                Ok(journey) => {
                    let key = (journey.tenant_id.clone(), journey.customer_id.clone());
                    journeys.insert(key, Ok(journey));
                }
                Err(error) => return Box::new(std::iter::once(Err(error))),
            }
        }
        let layers = self.read();
        for tables in layers.oldest_first() {
            for (t, customer, journey) in tables.journeys(tenant) {
                let key = (t.clone(), customer.clone());
                match journey {
                    Some(journey) => journeys.insert(key, Ok(journey.as_ref().clone())),
                    None => journeys.remove(&key),
                };
            }
        }
        Box::new(journeys.into_values())
    }

    fn journeys_after(
        &self,
        after: Option<&(TenantId, CustomerId)>,
        limit: usize,
    ) -> Result<Vec<Journey>> {
        // The layers first, as for `scan`; below, one more for each journey they removed.
        let mut over = BTreeMap::new();
        let later = |key: &(TenantId, CustomerId)| after.is_none_or(|after| key > after);
        for tables in self.read().oldest_first() {
            for (tenant, customer, journey) in tables.journeys(None) {
                let key = (tenant.clone(), customer.clone());
                if later(&key) {
                    over.insert(key, journey.map(|j| j.as_ref().clone()));
                }
            }
        }
        let gone = over.values().filter(|journey| journey.is_none()).count();
        let below = (self.below.journeys_after(after, limit + gone)?.into_iter())
            .map(|j| ((j.tenant_id.clone(), j.customer_id.clone()), j));
        let page = overlay(below, over, after, limit);
        Ok(page.into_iter().map(|(_, journey)| journey).collect())
    }

    fn links_after(
        &self,
        after: Option<&(TenantId, String)>,
        limit: usize,
    ) -> Result<Vec<(TenantId, String, CustomerId)>> {
        let mut over = BTreeMap::new();
        for tables in self.read().oldest_first() {
            for (tenant, key, owner) in tables.links() {
                over.insert((tenant.clone(), key.to_owned()), owner.cloned());
            }
        }
        let gone = over.values().filter(|owner| owner.is_none()).count();
        let below = (self.below.links_after(after, limit + gone)?.into_iter())
            .map(|(tenant, key, owner)| ((tenant, key), owner));
        let page = overlay(below, over, after, limit);
        Ok(page
            .into_iter()
            .map(|((t, key), owner)| (t, key, owner))
            .collect())
    }

    fn resolve(&self, tenant: &TenantId, identity: &ChannelIdentity) -> Result<Option<CustomerId>> {
        self.lookup(
            || self.key(tenant, Entry::Identity(identity.index_key())),
            |tables| tables.resolve(tenant, identity).map(|owner| owner.cloned()),
            |cached| match cached {
                Cached::Owner(owner) => Some(owner),
                Cached::Journey(_) => None,
            },
            || self.below.resolve(tenant, identity),
            |owner| Cached::Owner(owner.clone()),
            None,
        )
    }

    fn scan(
        &self,
        tenant: &TenantId,
        index: Index,
        prefix: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<(String, CustomerId)>> {
        // The layers first: a checkpoint finishing meanwhile moves entries below, where they
        // are read next, rather than out of sight.
        // A layer's tombstones (`None`) and forgotten customers hide what is older.
        let mut entries: BTreeMap<String, Option<CustomerId>> = BTreeMap::new();
        let mut forgotten = HashSet::new();
        for tables in self.read().oldest_first() {
            let erased: HashSet<&CustomerId> = tables.erased_of(tenant).collect();
            entries.retain(|_, owner| owner.as_ref().is_none_or(|o| !erased.contains(o)));
            forgotten.extend(erased.into_iter().cloned());
            entries.extend(tables.index_entries(tenant, index, prefix, after));
        }
        for (key, customer) in self.below.scan(tenant, index, prefix, after, limit)? {
            if !forgotten.contains(&customer) {
                entries.entry(key).or_insert(Some(customer));
            }
        }
        let linked = entries
            .into_iter()
            .filter_map(|(key, owner)| Some((key, owner?)));
        Ok(page(linked.collect(), limit))
    }

    fn conversation_owner(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
    ) -> Result<Option<CustomerId>> {
        match self.in_memory(|t| t.conversation_owner(tenant, conversation).cloned()) {
            Ok(owner) => Ok(Some(owner)),
            Err(_) => self.below.conversation_owner(tenant, conversation),
        }
    }

    fn decided_customer(
        &self,
        tenant: &TenantId,
        interaction: &InteractionId,
    ) -> Result<Option<CustomerId>> {
        match self.in_memory(|t| t.decided_customer(tenant, interaction).cloned()) {
            Ok(customer) => Ok(Some(customer)),
            Err(_) => self.below.decided_customer(tenant, interaction),
        }
    }

    fn token(&self, tenant: &TenantId, token: &str) -> Result<Option<TokenGrant>> {
        match self.in_memory(|t| t.token(tenant, token).map(|g| g.cloned())) {
            Ok(grant) => Ok(grant),
            Err(_) => self.below.token(tenant, token),
        }
    }

    fn applied_ids(&self) -> Result<Vec<AppliedIds>> {
        let mut tables = Tables::default();
        for chunk in self.below.applied_ids()? {
            tables.apply(ProjectionBatch {
                applied: vec![chunk],
                ..ProjectionBatch::default()
            });
        }
        let layers = self.read();
        for layer in layers.oldest_first() {
            tables.apply(layer.dedup_changes());
        }
        Ok(tables.applied_ids().collect())
    }

    fn customer_offsets(
        &self,
        tenant: &TenantId,
        customer: &CustomerId,
        from: u64,
        to: u64,
    ) -> Result<Vec<u64>> {
        let mut offsets = self.below.customer_offsets(tenant, customer, from, to)?;
        let layers = self.read();
        for layer in layers.oldest_first() {
            offsets.extend(layer.customer_offsets(tenant, customer, from, to));
        }
        offsets.sort_unstable();
        offsets.dedup();
        Ok(offsets)
    }

    fn agent(&self, tenant: &TenantId, agent: &AgentId) -> Result<Option<AgentState>> {
        match self.in_memory(|t| t.agent(tenant, agent).cloned()) {
            Ok(state) => Ok(Some(state)),
            Err(_) => self.below.agent(tenant, agent),
        }
    }

    fn routing_config(&self, tenant: &TenantId) -> Result<Option<RoutingConfigRecord>> {
        match self.in_memory(|t| t.routing_config(tenant).cloned()) {
            Ok(record) => Ok(Some(record)),
            Err(_) => self.below.routing_config(tenant),
        }
    }

    fn routed_contacts(&self) -> Result<Vec<(TenantId, InteractionId, RoutedContact)>> {
        // Under the read lock: a checkpoint writing below meanwhile writes what `flushing`
        // holds, which goes over it anyway.
        let layers = self.read();
        let mut routed = self.below.routed_contacts()?;
        if let Some(flushing) = &layers.flushing {
            routed = flushing.routed_over(routed);
        }
        Ok(layers.active.routed_over(routed))
    }

    fn measurer(&self) -> Result<Measurer> {
        let tally = self.read().measurement.tally();
        Ok(tally.synced()?.measurer.clone())
    }

    fn callback_arrival(&self, tenant: &TenantId, id: &InteractionId) -> Result<Option<Timestamp>> {
        // The live measurer, not a clone of it, once it measured everything folded so far.
        let tally = self.read().measurement.tally();
        Ok(tally.synced()?.measurer.callback_arrival(tenant, id))
    }

    fn bucket(&self, key: &StoredKey) -> Result<Option<Figures>> {
        let tally = self.read().measurement.tally();
        if let Some(figures) = tally.synced()?.buckets.bucket(key) {
            return Ok(Some(figures.clone()));
        }
        self.below.bucket(key)
    }

    fn buckets<'a>(
        &'a self,
        tenant: Option<&TenantId>,
        width: Interval,
        range: Range<Timestamp>,
    ) -> Box<dyn Iterator<Item = Result<StoredBucket>> + 'a> {
        // Rare (tools and tests): memory's over the store's, materialised; memory read first
        // (see `crate::measurement::Reading`).
        let mut buckets = BTreeMap::new();
        let tally = self.read().measurement.tally();
        let resident = match tally.synced() {
            Ok(counted) => counted.buckets.buckets(tenant, width, range.clone()),
            Err(error) => return Box::new(std::iter::once(Err(error))),
        };
        for stored in self.below.buckets(tenant, width, range) {
            match stored {
                Ok((t, w, key, figures)) => buckets.insert((t, w, key), figures),
                Err(error) => return Box::new(std::iter::once(Err(error))),
            };
        }
        for (t, w, key, figures) in resident {
            buckets.insert((t, w, key), figures);
        }
        Box::new((buckets.into_iter()).map(|((t, w, key), f)| Ok((t, w, key, f))))
    }

    fn report(
        &self,
        tenant: &TenantId,
        range: Range<Timestamp>,
        grouping: Grouping,
    ) -> Result<BTreeMap<BucketKey, Figures>> {
        if !self.config.measure.enabled {
            return Err(crate::Error::MeasurementOff);
        }
        // Memory first (see `crate::measurement::Reading`), then the store's range.
        let tally = self.read().measurement.tally();
        let mut reading = tally.synced()?.buckets.read(tenant, range, grouping)?;
        for stored in self
            .below
            .buckets(Some(tenant), reading.width(), reading.range())
        {
            let (_, _, key, figures) = stored?;
            reading.add_stored(&key, &figures);
        }
        Ok(reading.rows())
    }

    fn clear(&self) -> Result<()> {
        let _one = self
            .one_checkpoint
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let mut layers = self.write();
        self.below.clear()?;
        layers.active = Tables::default();
        layers.flushing = None;
        layers.measurement = Measurement::open(self.below.clone(), self.config.measure.clone())?;
        layers.measure_flushing = None;
        layers.epoch += 1;
        self.id.store(self.clean.new_store(), Ordering::Relaxed);
        self.below_had_data.store(false, Ordering::Relaxed);
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        if self.has_changes() {
            self.checkpoint()?;
        }
        self.below.flush()
    }

    fn recover(&self) -> Result<()> {
        self.below.recover()
    }
}
