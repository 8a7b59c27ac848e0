//! Projection state in memory: the [`Tables`] that committed steps are merged into, and the
//! [`MemoryStore`] made of them.
//!
//! [`Tables`] are what [`crate::CachedStore`] keeps between checkpoints: they know what
//! changed (removals and used-up tokens as tombstones, so that they hide what the store
//! below still holds) and give it back as one [`ProjectionBatch`]. A [`MemoryStore`] is a
//! journey store with nothing below, for tests that do not need sled; it passes the same
//! conformance suite as every store.

use std::collections::{BTreeMap, HashSet};
use std::ops::Range;
use std::sync::{Arc, RwLock};

use rezef_events::agent::AgentState;
use rezef_events::routed::RoutedContact;
use rezef_events::{
    AgentId, ChannelIdentity, ConversationId, CustomerId, InteractionId, Journey, TenantId,
    Timestamp,
};
use rezef_measure::{BucketKey, Figures, Interval, Measurer};

use crate::Result;
use crate::dedup::AppliedIds;
use crate::measurement::{MeasureCheckpoint, StoredBucket, StoredKey};
use crate::store::{
    Index, JourneyStore, ProjectionBatch, RoutingConfigRecord, TokenGrant, in_scan, overlay, page,
};
use rezef_events::by_tenant::{self, ByTenant, HashMap};

type Key<T> = (TenantId, T);

/// Committed projection state: everything a [`ProjectionBatch`] carries, merged. A lookup
/// answers `Some(None)` for what is known to be gone, `None` for what it does not know.
#[derive(Debug, Default)]
pub struct Tables {
    next_offset: Option<u64>,
    journeys: ByTenant<CustomerId, Option<Arc<Journey>>>,
    /// `None`: unlinked here (a forgotten customer's), hiding a link below.
    identities: HashMap<Key<String>, (ChannelIdentity, Option<CustomerId>)>,
    attributes: BTreeMap<Key<String>, CustomerId>,
    /// Customers forgotten here: the attribute entries naming them below are hidden.
    erased: HashSet<Key<CustomerId>>,
    customer_events: ByTenant<CustomerId, Vec<u64>>,
    agents: HashMap<Key<AgentId>, AgentState>,
    conversations: HashMap<Key<ConversationId>, CustomerId>,
    decided: HashMap<Key<InteractionId>, CustomerId>,
    tokens: HashMap<Key<String>, Option<TokenGrant>>,
    routing: HashMap<TenantId, RoutingConfigRecord>,
    routed: BTreeMap<Key<InteractionId>, Option<RoutedContact>>,
    applied: BTreeMap<u64, Vec<u128>>,
    forgotten: Vec<u64>,
    /// The latest measurer checkpointed, and the buckets (`crate::measurement`).
    measurer: Option<Measurer>,
    buckets: BTreeMap<(TenantId, Interval, BucketKey), Figures>,
}

impl Tables {
    /// Merges a committed step in.
    pub fn apply(&mut self, batch: ProjectionBatch) {
        self.next_offset = Some(batch.next_offset);
        if let Some(measure) = &batch.measure {
            self.measurer = Some(measure.measurer.clone());
            for (tenant, width, key, figures) in &measure.buckets {
                let key = (tenant.clone(), *width, key.clone());
                self.buckets.insert(key, figures.clone());
            }
        }
        for journey in batch.journeys {
            self.put_journey(journey);
        }
        for (tenant, customer) in batch.removed {
            self.remove_journey(&tenant, customer);
        }
        for (tenant, identity, customer) in batch.identities {
            let key = (tenant, identity.index_key());
            self.identities.insert(key, (identity, Some(customer)));
        }
        for (tenant, identity) in batch.unlinked {
            let key = (tenant, identity.index_key());
            self.identities.insert(key, (identity, None));
        }
        for (tenant, entry, customer) in batch.attributes {
            self.attributes.insert((tenant, entry), customer);
        }
        for key in batch.erased {
            self.attributes
                .retain(|(tenant, _), customer| (tenant, &*customer) != (&key.0, &key.1));
            self.erased.insert(key);
        }
        for (tenant, customer, offset) in batch.customer_events {
            let offsets = self.customer_events.entry(&tenant, &customer).or_default();
            offsets.push(offset);
        }
        for (tenant, agent) in batch.agents {
            self.agents.insert((tenant, agent.agent_id.clone()), agent);
        }
        for (tenant, conversation, customer) in batch.conversations {
            self.conversations.insert((tenant, conversation), customer);
        }
        for (tenant, interaction, customer) in batch.decided {
            self.decided.insert((tenant, interaction), customer);
        }
        for (tenant, token, grant) in batch.tokens {
            self.tokens.insert((tenant, token), grant);
        }
        for (tenant, record) in batch.routing {
            self.routing.insert(tenant, record);
        }
        for (tenant, contact, routed) in batch.routed {
            self.routed.insert((tenant, contact), routed);
        }
        for chunk in batch.applied {
            let digests = self.applied.entry(chunk.generation).or_default();
            digests.extend(chunk.digests);
        }
        for generation in batch.forgotten {
            self.applied.remove(&generation);
            self.forgotten.push(generation);
        }
    }

    /// Nothing committed since these tables were made.
    pub fn is_empty(&self) -> bool {
        self.next_offset.is_none()
    }

    pub fn next_offset(&self) -> Option<u64> {
        self.next_offset
    }

    pub fn set_next_offset(&mut self, next_offset: Option<u64>) {
        self.next_offset = next_offset;
    }

    /// Journeys changed (or removed) here.
    pub fn journey_count(&self) -> usize {
        self.journeys.len()
    }

    pub fn journey(
        &self,
        tenant: &TenantId,
        customer: &CustomerId,
    ) -> Option<Option<&Arc<Journey>>> {
        self.journeys.get(tenant, customer).map(Option::as_ref)
    }

    /// The journey's place in these tables: what they know of it (`None` if it is gone), or
    /// where to put it.
    pub fn journey_entry<'a, 'k>(
        &'a mut self,
        tenant: &TenantId,
        customer: &'k CustomerId,
    ) -> by_tenant::Entry<'a, 'k, CustomerId, Option<Arc<Journey>>> {
        self.journeys.entry(tenant, customer)
    }

    /// Keeps `journey` under its customer.
    pub fn put_journey(&mut self, journey: Arc<Journey>) {
        let tenant = journey.tenant_id.clone();
        self.journeys
            .insert(&tenant, journey.customer_id.clone(), Some(journey));
    }

    /// Takes the journey out, leaving it gone (until one is put back).
    pub fn take_journey(
        &mut self,
        tenant: &TenantId,
        customer: &CustomerId,
    ) -> Option<Arc<Journey>> {
        self.journeys
            .get_mut(tenant, customer)
            .and_then(Option::take)
    }

    /// Records that the journey is gone from here (moved to another partition), hiding what
    /// a store below holds.
    pub fn remove_journey(&mut self, tenant: &TenantId, customer: CustomerId) {
        self.journeys.insert(tenant, customer, None);
    }

    /// The owner of an identity linked (`Some(Some)`) or unlinked (`Some(None)`) here.
    pub fn resolve(
        &self,
        tenant: &TenantId,
        identity: &ChannelIdentity,
    ) -> Option<Option<&CustomerId>> {
        self.identities
            .get(&(tenant.clone(), identity.index_key()))
            .map(|(_, customer)| customer.as_ref())
    }

    pub fn conversation_owner(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
    ) -> Option<&CustomerId> {
        self.conversations
            .get(&(tenant.clone(), conversation.clone()))
    }

    pub fn decided_customer(
        &self,
        tenant: &TenantId,
        interaction: &InteractionId,
    ) -> Option<&CustomerId> {
        self.decided.get(&(tenant.clone(), interaction.clone()))
    }

    pub fn token(&self, tenant: &TenantId, token: &str) -> Option<Option<&TokenGrant>> {
        self.tokens
            .get(&(tenant.clone(), token.to_owned()))
            .map(Option::as_ref)
    }

    /// The entries of a search index here that [`JourneyStore::scan`] answers, in no order.
    pub fn index_entries(
        &self,
        tenant: &TenantId,
        index: Index,
        prefix: &str,
        after: &str,
    ) -> Vec<(String, Option<CustomerId>)> {
        match index {
            Index::Identities => (self.identities.iter())
                .filter(|((t, key), _)| t == tenant && in_scan(key, prefix, after))
                .map(|((_, key), (_, customer))| (key.clone(), customer.clone()))
                .collect(),
            Index::Attributes => (self.attributes)
                .range((tenant.clone(), prefix.to_owned())..)
                .take_while(|((t, key), _)| t == tenant && key.starts_with(prefix))
                .filter(|((_, key), _)| key.as_str() > after)
                .map(|((_, key), customer)| (key.clone(), Some(customer.clone())))
                .collect(),
        }
    }

    /// The customer's offsets committed here, in `[from, to)`.
    pub fn customer_offsets(
        &self,
        tenant: &TenantId,
        customer: &CustomerId,
        from: u64,
        to: u64,
    ) -> impl Iterator<Item = u64> + '_ {
        self.customer_events
            .get(tenant, customer)
            .into_iter()
            .flatten()
            .copied()
            .filter(move |o| (from..to).contains(o))
    }

    pub fn agent(&self, tenant: &TenantId, agent: &AgentId) -> Option<&AgentState> {
        self.agents.get(&(tenant.clone(), agent.clone()))
    }

    pub fn routing_config(&self, tenant: &TenantId) -> Option<&RoutingConfigRecord> {
        self.routing.get(tenant)
    }

    /// The journeys known here (removed ones as `None`), of one tenant or all.
    pub fn journeys<'a>(
        &'a self,
        tenant: Option<&'a TenantId>,
    ) -> impl Iterator<Item = (&'a TenantId, &'a CustomerId, Option<&'a Arc<Journey>>)> + 'a {
        (self.journeys.iter())
            .filter(move |(t, _, _)| tenant.is_none_or(|tenant| *t == tenant))
            .map(|(t, customer, journey)| (t, customer, journey.as_ref()))
    }

    /// The tenant's customers forgotten here: entries naming them below are stale.
    pub fn erased_of<'a>(&'a self, tenant: &'a TenantId) -> impl Iterator<Item = &'a CustomerId> {
        (self.erased.iter()).filter_map(move |(t, customer)| (t == tenant).then_some(customer))
    }

    /// The identity links made (owner) or undone (`None`) here: tenant, identity key, owner.
    pub fn links(&self) -> impl Iterator<Item = (&TenantId, &str, Option<&CustomerId>)> {
        (self.identities.iter())
            .map(|((tenant, key), (_, owner))| (tenant, key.as_str(), owner.as_ref()))
    }

    /// Only what these tables did to the recent-ids window, as a batch.
    pub fn dedup_changes(&self) -> ProjectionBatch {
        ProjectionBatch {
            applied: self.applied_ids().collect(),
            forgotten: self.forgotten.clone(),
            ..ProjectionBatch::default()
        }
    }

    /// A copy of everything here as one batch (journeys shared, not copied).
    pub fn to_batch(&self) -> ProjectionBatch {
        let mut batch = ProjectionBatch {
            next_offset: self.next_offset.unwrap_or_default(),
            forgotten: self.forgotten.clone(),
            ..ProjectionBatch::default()
        };
        for (tenant, customer, journey) in self.journeys.iter() {
            match journey {
                Some(journey) => batch.journeys.push(journey.clone()),
                None => batch.removed.push((tenant.clone(), customer.clone())),
            }
        }
        for ((tenant, _), (identity, customer)) in &self.identities {
            match customer {
                Some(customer) => {
                    (batch.identities).push((tenant.clone(), identity.clone(), customer.clone()))
                }
                None => batch.unlinked.push((tenant.clone(), identity.clone())),
            }
        }
        batch.erased = self.erased.iter().cloned().collect();
        batch.attributes = (self.attributes.iter())
            .map(|((tenant, entry), customer)| (tenant.clone(), entry.clone(), customer.clone()))
            .collect();
        for (tenant, customer, offsets) in self.customer_events.iter() {
            let owner = offsets
                .iter()
                .map(|o| (tenant.clone(), customer.clone(), *o));
            batch.customer_events.extend(owner);
        }
        batch.agents = (self.agents.iter())
            .map(|((t, _), a)| (t.clone(), a.clone()))
            .collect();
        batch.conversations = (self.conversations.iter())
            .map(|((tenant, conversation), customer)| {
                (tenant.clone(), conversation.clone(), customer.clone())
            })
            .collect();
        batch.decided = (self.decided.iter())
            .map(|((tenant, interaction), customer)| {
                (tenant.clone(), interaction.clone(), customer.clone())
            })
            .collect();
        batch.tokens = (self.tokens.iter())
            .map(|((tenant, token), grant)| (tenant.clone(), token.clone(), grant.clone()))
            .collect();
        batch.routing = (self.routing.iter())
            .map(|(t, r)| (t.clone(), r.clone()))
            .collect();
        batch.routed = (self.routed.iter())
            .map(|((t, c), r)| (t.clone(), c.clone(), r.clone()))
            .collect();
        batch.applied = self.applied_ids().collect();
        batch.measure = self.measure_checkpoint().map(Arc::new);
        batch
    }

    /// The measurement checkpointed here, if any.
    pub fn measure_checkpoint(&self) -> Option<MeasureCheckpoint> {
        let measurer = self.measurer.clone()?;
        let buckets = (self.buckets.iter())
            .map(|((t, w, key), f)| (t.clone(), *w, key.clone(), f.clone()))
            .collect();
        Some(MeasureCheckpoint { measurer, buckets })
    }

    /// A bucket checkpointed here.
    pub fn bucket(&self, key: &StoredKey) -> Option<&Figures> {
        self.buckets.get(key)
    }

    /// The buckets checkpointed here of `width` starting in `range`, of one tenant or all.
    pub fn buckets(
        &self,
        tenant: Option<&TenantId>,
        width: Interval,
        range: Range<Timestamp>,
    ) -> Vec<StoredBucket> {
        (self.buckets.iter())
            .filter(|((t, w, key), _)| {
                *w == width && tenant.is_none_or(|only| only == t) && range.contains(&key.start)
            })
            .map(|((t, w, key), f)| (t.clone(), *w, key.clone(), f.clone()))
            .collect()
    }

    /// `below` (contacts routing holds, in key order) with what these tables changed.
    pub fn routed_over(
        &self,
        below: Vec<(TenantId, InteractionId, RoutedContact)>,
    ) -> Vec<(TenantId, InteractionId, RoutedContact)> {
        let mut merged: BTreeMap<Key<InteractionId>, Option<RoutedContact>> = below
            .into_iter()
            .map(|(tenant, contact, routed)| ((tenant, contact), Some(routed)))
            .collect();
        merged.extend(self.routed.iter().map(|(k, r)| (k.clone(), r.clone())));
        (merged.into_iter())
            .filter_map(|((tenant, contact), routed)| Some((tenant, contact, routed?)))
            .collect()
    }

    pub fn applied_ids(&self) -> impl Iterator<Item = AppliedIds> + '_ {
        self.applied.iter().map(|(generation, digests)| AppliedIds {
            generation: *generation,
            digests: digests.clone(),
        })
    }
}

/// A journey store in memory only: everything is lost when it is dropped.
#[derive(Debug, Default)]
pub struct MemoryStore {
    tables: RwLock<Tables>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Tables> {
        self.tables.read().unwrap_or_else(|e| e.into_inner())
    }
}

impl JourneyStore for MemoryStore {
    fn projected_offset(&self) -> Result<u64> {
        Ok(self.read().next_offset().unwrap_or_default())
    }

    fn commit(&self, batch: ProjectionBatch) -> Result<()> {
        let mut tables = self.tables.write().unwrap_or_else(|e| e.into_inner());
        tables.apply(batch);
        Ok(())
    }

    fn journey(&self, tenant: &TenantId, customer: &CustomerId) -> Result<Option<Journey>> {
        let tables = self.read();
        Ok(tables
            .journey(tenant, customer)
            .flatten()
            .map(|j| j.as_ref().clone()))
    }

    fn journeys<'a>(
        &'a self,
        tenant: Option<&TenantId>,
    ) -> Box<dyn Iterator<Item = Result<Journey>> + 'a> {
        let tables = self.read();
        let mut journeys: Vec<Journey> = (tables.journeys(tenant))
            .filter_map(|(_, _, journey)| journey.map(|j| j.as_ref().clone()))
            .collect();
        journeys
            .sort_by(|a, b| (&a.tenant_id, &a.customer_id).cmp(&(&b.tenant_id, &b.customer_id)));
        Box::new(journeys.into_iter().map(Ok))
    }

    fn journeys_after(
        &self,
        after: Option<&(TenantId, CustomerId)>,
        limit: usize,
    ) -> Result<Vec<Journey>> {
        let tables = self.read();
        let journeys = (tables.journeys(None))
            .map(|(tenant, customer, journey)| ((tenant.clone(), customer.clone()), journey));
        let page = overlay(Vec::new(), journeys, after, limit);
        Ok(page.into_iter().map(|(_, j)| j.as_ref().clone()).collect())
    }

    fn links_after(
        &self,
        after: Option<&(TenantId, String)>,
        limit: usize,
    ) -> Result<Vec<(TenantId, String, CustomerId)>> {
        let tables = self.read();
        let links = (tables.links())
            .map(|(tenant, key, owner)| ((tenant.clone(), key.to_owned()), owner.cloned()));
        let page = overlay(Vec::new(), links, after, limit);
        Ok(page
            .into_iter()
            .map(|((t, key), owner)| (t, key, owner))
            .collect())
    }

    fn resolve(&self, tenant: &TenantId, identity: &ChannelIdentity) -> Result<Option<CustomerId>> {
        Ok(self.read().resolve(tenant, identity).flatten().cloned())
    }

    fn scan(
        &self,
        tenant: &TenantId,
        index: Index,
        prefix: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<(String, CustomerId)>> {
        let entries = self.read().index_entries(tenant, index, prefix, after);
        let linked = entries.into_iter().filter_map(|(key, c)| Some((key, c?)));
        Ok(page(linked.collect(), limit))
    }

    fn conversation_owner(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
    ) -> Result<Option<CustomerId>> {
        Ok(self
            .read()
            .conversation_owner(tenant, conversation)
            .cloned())
    }

    fn decided_customer(
        &self,
        tenant: &TenantId,
        interaction: &InteractionId,
    ) -> Result<Option<CustomerId>> {
        Ok(self.read().decided_customer(tenant, interaction).cloned())
    }

    fn token(&self, tenant: &TenantId, token: &str) -> Result<Option<TokenGrant>> {
        Ok(self.read().token(tenant, token).flatten().cloned())
    }

    fn applied_ids(&self) -> Result<Vec<AppliedIds>> {
        Ok(self.read().applied_ids().collect())
    }

    fn customer_offsets(
        &self,
        tenant: &TenantId,
        customer: &CustomerId,
        from: u64,
        to: u64,
    ) -> Result<Vec<u64>> {
        let mut offsets: Vec<u64> = (self.read())
            .customer_offsets(tenant, customer, from, to)
            .collect();
        offsets.sort_unstable();
        Ok(offsets)
    }

    fn agent(&self, tenant: &TenantId, agent: &AgentId) -> Result<Option<AgentState>> {
        Ok(self.read().agent(tenant, agent).cloned())
    }

    fn routing_config(&self, tenant: &TenantId) -> Result<Option<RoutingConfigRecord>> {
        Ok(self.read().routing_config(tenant).cloned())
    }

    fn routed_contacts(&self) -> Result<Vec<(TenantId, InteractionId, RoutedContact)>> {
        Ok(self.read().routed_over(Vec::new()))
    }

    fn measurer(&self) -> Result<Measurer> {
        Ok(self.read().measurer.clone().unwrap_or_default())
    }

    fn bucket(&self, key: &StoredKey) -> Result<Option<Figures>> {
        Ok(self.read().bucket(key).cloned())
    }

    fn buckets<'a>(
        &'a self,
        tenant: Option<&TenantId>,
        width: Interval,
        range: Range<Timestamp>,
    ) -> Box<dyn Iterator<Item = Result<StoredBucket>> + 'a> {
        let buckets = self.read().buckets(tenant, width, range);
        Box::new(buckets.into_iter().map(Ok))
    }

    fn clear(&self) -> Result<()> {
        *self.tables.write().unwrap_or_else(|e| e.into_inner()) = Tables::default();
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        Ok(())
    }
}
