//! Folding in place: a projection step changes journeys where the projection in memory
//! keeps them, instead of copying each one it touches and putting the copy back.
//!
//! Copying was most of a rebuild's cost (every event cloned and dropped a whole journey).
//! A [`Workspace`] is the step's view of a [`CachedStore`]'s layers under their write lock,
//! held for one record at a time, so that readers see every event whole and never wait
//! long. A journey not yet in the active layer is brought there first: from the checkpoint
//! being written (copied when changed, as that copy is being written), from the cache (which
//! it leaves: its one copy is now the active one) or from the store below. A reader holding
//! a journey while it changes keeps its own version ([`std::sync::Arc::make_mut`]).
//!
//! A step's other changes (identity links, offsets, tokens) still go through one
//! [`crate::ProjectionBatch`] when it commits; the checkpoint is cut between steps
//! ([`CachedStore::seal`]), so it never holds part of one.

use std::sync::Arc;

use hashbrown::hash_map::EntryRef;
use rezef_events::agent::AgentState;
use rezef_events::fold::Applied;
use rezef_events::{AgentId, ChannelIdentity, CustomerId, Event, Journey, TenantId, Timestamp};
use rezef_measure::MeasureRules;

use crate::Result;
use crate::cached::{CachedStore, Layers};
use crate::journey_cache::{Cached, Entry};
use crate::measurement::Measurement;
use crate::memory::Tables;
use crate::store::TokenGrant;

/// A projection step's view of the layers in memory, under their write lock.
#[derive(Debug)]
pub struct Workspace<'a> {
    store: &'a CachedStore,
    layers: &'a mut Layers,
}

impl<'a> Workspace<'a> {
    pub(crate) fn new(store: &'a CachedStore, layers: &'a mut Layers) -> Self {
        Self { store, layers }
    }

    /// The journey of `customer`, to change in place; `None` if there is none.
    pub fn journey(
        &mut self,
        tenant: &TenantId,
        customer: &CustomerId,
    ) -> Result<Option<&mut Journey>> {
        let slot = match self.layers.active.journey_entry(tenant, customer) {
            EntryRef::Occupied(known) => known.into_mut(),
            EntryRef::Vacant(place) => {
                let flushing = self.layers.flushing.as_deref();
                match behind(self.store, flushing, tenant, customer)? {
                    Some(journey) => place.insert(Some(journey)),
                    None => return Ok(None),
                }
            }
        };
        Ok(slot.as_mut().map(Arc::make_mut))
    }

    /// The journey of `customer`, to change in place, made by `new` if there is none.
    pub fn journey_or_new(
        &mut self,
        tenant: &TenantId,
        customer: &CustomerId,
        new: impl FnOnce() -> Journey,
    ) -> Result<&mut Journey> {
        Ok(self.journey_to_measure(tenant, customer, new)?.0)
    }

    /// The journey of `customer`, to change in place, made by `new` if there is none, with
    /// the measurement to measure what was folded into it ([`Measuring::observe`]): one
    /// lookup for both.
    pub fn journey_to_measure(
        &mut self,
        tenant: &TenantId,
        customer: &CustomerId,
        new: impl FnOnce() -> Journey,
    ) -> Result<(&mut Journey, Measuring<'_>)> {
        let Layers {
            active,
            flushing,
            measurement,
            ..
        } = &mut *self.layers;
        let slot = match active.journey_entry(tenant, customer) {
            EntryRef::Occupied(known) => known.into_mut(),
            EntryRef::Vacant(place) => {
                place.insert(behind(self.store, flushing.as_deref(), tenant, customer)?)
            }
        };
        let journey = Arc::make_mut(slot.get_or_insert_with(|| Arc::new(new())));
        let rules = &self.store.config().measure;
        Ok((journey, Measuring { rules, measurement }))
    }

    /// Keeps `journey` under its customer (a new one, one restored, a merge pointer).
    pub fn put(&mut self, journey: Journey) {
        self.layers.active.put_journey(Arc::new(journey));
    }

    /// Takes the journey out, leaving none under its customer until one is put back.
    pub fn take(&mut self, tenant: &TenantId, customer: &CustomerId) -> Result<Option<Journey>> {
        if self.journey(tenant, customer)?.is_none() {
            return Ok(None);
        }
        let taken = self.layers.active.take_journey(tenant, customer);
        Ok(taken.map(Arc::unwrap_or_clone))
    }

    /// The journey left this partition: none is kept under its customer.
    pub fn remove(&mut self, tenant: &TenantId, customer: &CustomerId) {
        self.layers.active.remove_journey(tenant, customer.clone());
    }

    /// The customer an identity is linked to.
    pub fn resolve(
        &mut self,
        tenant: &TenantId,
        identity: &ChannelIdentity,
    ) -> Result<Option<CustomerId>> {
        if let Some(owner) = self
            .layers
            .ask(|t| t.resolve(tenant, identity).map(|o| o.cloned()))
        {
            return Ok(owner);
        }
        let key = self
            .store
            .key(tenant, Entry::Identity(identity.index_key()));
        if let Some(Cached::Owner(owner)) = self.store.clean.get(&key) {
            return Ok(owner);
        }
        if !self.store.incomplete() {
            return Ok(None);
        }
        let owner = self.store.below.resolve(tenant, identity)?;
        // Under the write lock no checkpoint can finish meanwhile: the answer is current.
        self.store.clean.insert(key, Cached::Owner(owner.clone()));
        Ok(owner)
    }

    /// The grant of a continuation token, if it is still unused.
    pub fn token(&mut self, tenant: &TenantId, token: &str) -> Result<Option<TokenGrant>> {
        match self
            .layers
            .ask(|t| t.token(tenant, token).map(|g| g.cloned()))
        {
            Some(grant) => Ok(grant),
            None => self.store.below.token(tenant, token),
        }
    }

    /// An agent's state as folded so far.
    pub fn agent(&mut self, tenant: &TenantId, agent: &AgentId) -> Result<Option<AgentState>> {
        match self.layers.ask(|t| t.agent(tenant, agent).cloned()) {
            Some(state) => Ok(Some(state)),
            None => self.store.below.agent(tenant, agent),
        }
    }
}

/// The measurement of a journey's partition, beside the journey being folded.
#[derive(Debug)]
pub struct Measuring<'a> {
    rules: &'a MeasureRules,
    measurement: &'a mut Measurement,
}

impl Measuring<'_> {
    /// Measures the event just applied to `journey` at `offset` (the fold said it did
    /// `applied`), under the tenant's rules (`crate::measurement`); nothing when
    /// measurement is off. Its records are counted beside the fold; the counter's failure,
    /// if it failed.
    pub fn observe(
        self,
        (offset, event): (u64, &Event),
        recorded_at: Timestamp,
        (journey, applied): (&Journey, &Applied),
    ) -> Result<()> {
        if !self.rules.enabled {
            return Ok(());
        }
        let at = Some(recorded_at);
        (self.measurement).observe(self.rules, offset, event, at, (journey, applied))
    }
}

/// A journey the active layer does not know yet, from where it is: the checkpoint being
/// written, the cache or the store below.
fn behind(
    store: &CachedStore,
    flushing: Option<&Tables>,
    tenant: &TenantId,
    customer: &CustomerId,
) -> Result<Option<Arc<Journey>>> {
    if let Some(known) = flushing.and_then(|t| t.journey(tenant, customer)) {
        return Ok(known.cloned());
    }
    // A cached copy is current: the cache holds what a checkpoint wrote, put there after
    // the epoch moved, or what a reader read below while no checkpoint finished
    // (`CachedStore::fill`), and a journey in no layer has not changed since.
    let key = store.key(tenant, Entry::Journey(customer.clone()));
    if let Some(Cached::Journey(journey)) = store.clean.remove(&key) {
        return Ok(journey);
    }
    if !store.incomplete() {
        return Ok(None);
    }
    Ok(store.below.journey(tenant, customer)?.map(Arc::new))
}

#[cfg(test)]
mod tests {
    use rezef_events::Timestamp;

    use super::*;
    use crate::{JourneyStore, MemoryStore, ProjectionBatch, ProjectionConfig};

    fn ids() -> (TenantId, CustomerId) {
        let tenant = TenantId::new("acme").expect("tenant");
        (tenant, CustomerId::new("dana").expect("customer"))
    }

    /// A store with dana's journey committed at offset 1, in memory over `below`.
    fn store_with_dana(below: Arc<MemoryStore>) -> CachedStore {
        let (tenant, customer) = ids();
        let store = CachedStore::new(below, ProjectionConfig::default()).expect("store");
        store.fold(|ws| {
            ws.put(Journey::new(
                tenant,
                customer,
                Timestamp::from_unix_millis(0),
            ))
        });
        let committed = ProjectionBatch {
            next_offset: 1,
            ..ProjectionBatch::default()
        };
        store.commit(committed).expect("commit");
        store
    }

    fn events(store: &dyn JourneyStore) -> Option<u64> {
        let (tenant, customer) = ids();
        let journey = store.journey(&tenant, &customer).expect("read");
        journey.map(|j| j.counters.events)
    }

    #[test]
    fn a_fold_after_the_cut_changes_what_readers_see_not_what_the_checkpoint_writes() {
        // Given dana's journey sealed for a checkpoint
        let below = Arc::new(MemoryStore::new());
        let store = store_with_dana(below.clone());
        assert!(store.seal(), "something to write");
        // When the next step folds an event into it in place
        let (tenant, customer) = ids();
        store.fold(|ws| {
            let journey = ws.journey(&tenant, &customer).expect("read").expect("dana");
            journey.counters.events = 7;
        });
        // Then readers see the change at once, and the checkpoint writes the journey as cut
        assert_eq!(events(&store), Some(7));
        store.write_sealed().expect("checkpoint");
        assert_eq!(events(below.as_ref()), Some(0));
        assert_eq!(events(&store), Some(7));
    }

    #[test]
    fn journey_or_new_changes_the_journey_there_is_and_makes_one_only_when_there_is_none() {
        // Given dana's journey checkpointed below, and an empty cache in front of it
        let below = Arc::new(MemoryStore::new());
        store_with_dana(below.clone()).flush().expect("checkpoint");
        let store = CachedStore::new(below, ProjectionConfig::default()).expect("store");
        let (tenant, customer) = ids();
        let new = || {
            Journey::new(
                tenant.clone(),
                customer.clone(),
                Timestamp::from_unix_millis(9),
            )
        };
        // When a fold asks for it, to change or make
        store.fold(|ws| {
            let journey = ws.journey_or_new(&tenant, &customer, || panic!("dana is below"));
            journey.expect("read").counters.events = 3;
        });
        // Then the one below was changed, not replaced
        assert_eq!(events(&store), Some(3));
        // And once it is taken out, a new one is made in its place
        store.fold(|ws| ws.take(&tenant, &customer)).expect("take");
        let made = store.fold(|ws| {
            ws.journey_or_new(&tenant, &customer, new)
                .map(|j| j.counters.events)
        });
        assert_eq!(made.expect("made"), 0);
        assert_eq!(events(&store), Some(0));
    }

    #[test]
    fn a_journey_taken_out_is_gone_until_one_is_put_back() {
        let store = store_with_dana(Arc::new(MemoryStore::new()));
        store.flush().expect("checkpoint");
        let (tenant, customer) = ids();
        let taken = store.fold(|ws| ws.take(&tenant, &customer)).expect("take");
        assert_eq!(taken.map(|j| j.customer_id), Some(customer.clone()));
        // Gone in memory, although the store below still holds it.
        assert_eq!(events(&store), None);
        store.fold(|ws| {
            assert!(ws.journey(&tenant, &customer).expect("read").is_none());
            ws.put(Journey::new(
                tenant.clone(),
                customer.clone(),
                Timestamp::from_unix_millis(0),
            ));
        });
        assert_eq!(events(&store), Some(0));
    }
}
