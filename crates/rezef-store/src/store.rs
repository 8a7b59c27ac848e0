//! The journey store: where the projection lives. A trait, so the embedded sled store could
//! be replaced if measurements demand it, with one conformance suite for every
//! implementation (`conformance`).

use std::sync::Arc;

use std::collections::BTreeMap;
use std::ops::Range;

use rezef_measure::{BucketKey, Figures, Grouping, Interval, Measurer};

use rezef_events::agent::AgentState;
use rezef_events::journey::redeemable_on;
use rezef_events::routed::RoutedContact;
use rezef_events::{
    AgentId, Channel, ChannelIdentity, ConversationId, CustomerId, InteractionId, Journey,
    TenantId, Timestamp,
};

use crate::Result;
use crate::dedup::AppliedIds;
use crate::measurement::{MeasureCheckpoint, Reading, StoredBucket, StoredKey};

/// Everything one projection step writes, applied atomically together with the offset it
/// reaches: after a crash the store holds either all of it or none of it.
#[derive(Debug, Default)]
pub struct ProjectionBatch {
    /// The next log offset to project: every record below it has been applied.
    pub next_offset: u64,
    pub journeys: Vec<Arc<Journey>>,
    /// Journeys that moved to another partition (an unmerge there restored them).
    pub removed: Vec<(TenantId, CustomerId)>,
    /// New identity links: `(tenant, identity) → customer`.
    pub identities: Vec<(TenantId, ChannelIdentity, CustomerId)>,
    /// Identity links undone (a forgotten customer's real identities): deleted.
    pub unlinked: Vec<(TenantId, ChannelIdentity)>,
    /// Customers forgotten: every attribute entry naming them is deleted, this batch's
    /// own too (a value set again after forgetting is indexed again by a rebuild).
    pub erased: Vec<(TenantId, CustomerId)>,
    /// Attribute index entries (`rezef_events::search::Attribute::entry`) and the customer
    /// each names.
    pub attributes: Vec<(TenantId, String, CustomerId)>,
    /// Digests of the event ids applied, by generation of the recent-ids window
    /// (`crate::dedup`), for idempotency.
    pub applied: Vec<AppliedIds>,
    /// Generations of the recent-ids window forgotten: their digests are deleted.
    pub forgotten: Vec<u64>,
    /// Which offsets belong to which customer, for audit replay.
    pub customer_events: Vec<(TenantId, CustomerId, u64)>,
    pub agents: Vec<(TenantId, AgentState)>,
    /// New conversations (and ids joined into others): `(tenant, conversation) → customer`.
    pub conversations: Vec<(TenantId, ConversationId, CustomerId)>,
    /// The customer of each contact routing decided, by interaction: what an explanation of
    /// the decision asked by interaction alone reads (`rezef explain INTERACTION`).
    pub decided: Vec<(TenantId, InteractionId, CustomerId)>,
    /// Continuation tokens issued (`Some`) or used up (`None`).
    pub tokens: Vec<(TenantId, String, Option<TokenGrant>)>,
    /// Each tenant's latest routing configuration (`RoutingConfigChanged`).
    pub routing: Vec<(TenantId, RoutingConfigRecord)>,
    /// Contacts routing holds (`Some`) or that left it (`None`), `rezef_events::routed`.
    pub routed: Vec<(TenantId, InteractionId, Option<RoutedContact>)>,
    /// The measurement at this offset (`crate::measurement`), in a checkpoint: the measurer
    /// and the buckets changed since the previous one. Steps leave it out (the measurement
    /// is in memory until a checkpoint is cut).
    pub measure: Option<Arc<MeasureCheckpoint>>,
}

/// Why a checkpoint is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checkpoint {
    /// The interval since the last one has passed.
    Interval,
    /// The changed journeys passed the bound on memory.
    Dirty,
    /// The changed journeys passed twice the bound: folding waits for the checkpoint being
    /// written before it goes on.
    Full,
}

/// A search index of the projection, scanned by key prefix (`rezef_events::search`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Index {
    /// Identity links, by `ChannelIdentity::index_key`.
    Identities,
    /// Attribute values, by `Attribute::entry`.
    Attributes,
}

/// A tenant's routing configuration as the log recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutingConfigRecord {
    pub version: u64,
    /// The TOML document, as set.
    pub config: String,
}

/// Whom an unused continuation token was issued to, until when it holds and on which
/// channels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenGrant {
    pub customer: CustomerId,
    pub expires_at: Timestamp,
    /// Empty: any channel.
    pub redeem_on: Vec<Channel>,
}

/// Whether an index key is one [`JourneyStore::scan`] answers.
pub(crate) fn in_scan(key: &str, prefix: &str, after: &str) -> bool {
    key.starts_with(prefix) && key > after
}

/// The first `limit` entries of `entries`, in key order.
pub(crate) fn page(
    entries: BTreeMap<String, CustomerId>,
    limit: usize,
) -> Vec<(String, CustomerId)> {
    entries.into_iter().take(limit).collect()
}

/// The first `limit` entries after `after` of `below` with `over` laid on it (`None`: gone),
/// in key order. `below` must hold the first `limit` entries below after `after`, plus one
/// for each entry `over` removes.
pub(crate) fn overlay<K: Ord + Clone, V>(
    below: impl IntoIterator<Item = (K, V)>,
    over: impl IntoIterator<Item = (K, Option<V>)>,
    after: Option<&K>,
    limit: usize,
) -> Vec<(K, V)> {
    let mut entries: BTreeMap<K, Option<V>> = (below.into_iter())
        .map(|(key, value)| (key, Some(value)))
        .collect();
    let later = |key: &K| after.is_none_or(|after| key > after);
    entries.extend(over.into_iter().filter(|(key, _)| later(key)));
    (entries.into_iter())
        .filter_map(|(key, value)| Some((key, value?)))
        .take(limit)
        .collect()
}

impl TokenGrant {
    /// Whether a contact on `channel` may use the token at `at`.
    pub fn admits(&self, channel: Option<Channel>, at: Timestamp) -> bool {
        at < self.expires_at && redeemable_on(&self.redeem_on, channel)
    }
}

/// Storage of the journey projection.
pub trait JourneyStore: Send + Sync + std::fmt::Debug + 'static {
    /// The next log offset to project (0 for an empty store).
    fn projected_offset(&self) -> Result<u64>;

    /// Applies a projection step atomically.
    fn commit(&self, batch: ProjectionBatch) -> Result<()>;

    /// Whether (and why) enough has been committed in memory to write a checkpoint (see
    /// [`crate::CachedStore`]); never, for a store whose commits are already written.
    fn checkpoint_due(&self) -> Option<Checkpoint> {
        None
    }

    /// Writes what was committed in memory to the store below, atomically with its offset.
    fn checkpoint(&self) -> Result<()> {
        Ok(())
    }

    fn journey(&self, tenant: &TenantId, customer: &CustomerId) -> Result<Option<Journey>>;

    /// Every journey of a tenant (or of all tenants), in key order.
    fn journeys<'a>(
        &'a self,
        tenant: Option<&TenantId>,
    ) -> Box<dyn Iterator<Item = Result<Journey>> + 'a>;

    /// Every tenant's journeys in (tenant, customer) order, after `after` (from the first for
    /// `None`), at most `limit`: what a cache in front of the store warms from
    /// (`crate::warm`). A page shorter than `limit` is the last.
    fn journeys_after(
        &self,
        after: Option<&(TenantId, CustomerId)>,
        limit: usize,
    ) -> Result<Vec<Journey>>;

    /// Every tenant's identity links (tenant, `ChannelIdentity::index_key`, owner) in key
    /// order, after `after`, at most `limit`; a page shorter than `limit` is the last.
    fn links_after(
        &self,
        after: Option<&(TenantId, String)>,
        limit: usize,
    ) -> Result<Vec<(TenantId, String, CustomerId)>>;

    /// The customer an identity is linked to.
    fn resolve(&self, tenant: &TenantId, identity: &ChannelIdentity) -> Result<Option<CustomerId>>;

    /// Entries of a tenant's search index in key order: the keys that start with `prefix` and
    /// sort after `after` (all of them for an empty `after`), at most `limit`, each with the
    /// customer it names.
    fn scan(
        &self,
        tenant: &TenantId,
        index: Index,
        prefix: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<(String, CustomerId)>>;

    /// The customer a conversation id belongs to (as first recorded; follow merges).
    fn conversation_owner(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
    ) -> Result<Option<CustomerId>>;

    /// The customer of the contact routing decided for an interaction, if any.
    fn decided_customer(
        &self,
        tenant: &TenantId,
        interaction: &InteractionId,
    ) -> Result<Option<CustomerId>>;

    /// The grant of an unused continuation token (expired ones included: check
    /// [`TokenGrant::admits`]).
    fn token(&self, tenant: &TenantId, token: &str) -> Result<Option<TokenGrant>>;

    /// The digests of the recent-ids window, as committed (`crate::dedup`).
    fn applied_ids(&self) -> Result<Vec<AppliedIds>>;

    /// The offsets of a customer's events in `[from, to)`, ascending.
    fn customer_offsets(
        &self,
        tenant: &TenantId,
        customer: &CustomerId,
        from: u64,
        to: u64,
    ) -> Result<Vec<u64>>;

    fn agent(&self, tenant: &TenantId, agent: &AgentId) -> Result<Option<AgentState>>;

    /// The tenant's latest routing configuration set through the log, so that routing
    /// starts again with it after a restart or on the node a partition moved to.
    fn routing_config(&self, tenant: &TenantId) -> Result<Option<RoutingConfigRecord>>;

    /// Every contact routing holds and no agent took yet, of every tenant, in key order:
    /// what routing starts again with after a restart or on the node a partition moved to.
    fn routed_contacts(&self) -> Result<Vec<(TenantId, InteractionId, RoutedContact)>>;

    /// The measurer as checkpointed (a new one for a store that has none).
    fn measurer(&self) -> Result<Measurer>;

    /// What the measurer keeps of a callback of `tenant`'s interaction `id`: the customer's
    /// original arrival ([`Measurer::callback_arrival`]), as checkpointed; a store that
    /// measures in memory answers from there.
    fn callback_arrival(&self, tenant: &TenantId, id: &InteractionId) -> Result<Option<Timestamp>> {
        Ok(self.measurer()?.callback_arrival(tenant, id))
    }

    /// One bucket's figures (`crate::measurement`).
    fn bucket(&self, key: &StoredKey) -> Result<Option<Figures>>;

    /// The buckets of `width` starting in `range`, of one tenant or of all, in (tenant,
    /// start) order: a range read, not the whole measurement.
    fn buckets<'a>(
        &'a self,
        tenant: Option<&TenantId>,
        width: Interval,
        range: Range<Timestamp>,
    ) -> Box<dyn Iterator<Item = Result<StoredBucket>> + 'a>;

    /// A tenant's figures in `range`, grouped ([`crate::Measurement::read`]): by default
    /// from the buckets stored; the projection in memory reads its own over them.
    fn report(
        &self,
        tenant: &TenantId,
        range: Range<Timestamp>,
        grouping: Grouping,
    ) -> Result<BTreeMap<BucketKey, Figures>> {
        let mut reading = Reading::new(range, grouping)?;
        for stored in self.buckets(Some(tenant), reading.width(), reading.range()) {
            let (_, _, key, figures) = stored?;
            reading.add_stored(&key, &figures);
        }
        Ok(reading.rows())
    }

    /// Deletes everything, for a rebuild from the log.
    fn clear(&self) -> Result<()>;

    /// Makes everything committed so far durable (a checkpoint, then the disk). Not needed
    /// for correctness (the log is the record and the projection resumes from its stored
    /// offset) but bounds the work a restart redoes.
    fn flush(&self) -> Result<()>;

    /// Makes the store writable again after a failed commit, if it can be (sled is reopened
    /// once its disk takes writes); an error while it cannot. Nothing to do by default.
    fn recover(&self) -> Result<()> {
        Ok(())
    }
}
