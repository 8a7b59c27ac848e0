//! A journey as the projection knew it before an earlier offset (docs/audit.md): folded
//! again, by the projection's own step, from the events that could have shaped it, into a
//! projection in memory that lives for one call.
//!
//! Which events: those of the customer asked for, of the journey holding it now and that
//! journey's members (a merge brings a member's history), and, in turn, of the owners now
//! of every identity those events show and of every customer they name (a merge, an
//! unmerge): deciding an identity looks at its owner's journey, so the owner's history is
//! folded too. The live projection's customer → offsets index says where each one's events
//! are, so the cost follows the customer's history, not the log's length.
//!
//! Exact as long as owners do not change: an identity is owned by whoever first linked it
//! and stays so through merges and unmerges, which is what the fold does.

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use rezef_events::merge::{self, Hop};
use rezef_events::policy::Policies;
use rezef_events::{ChannelIdentity, CustomerId, CustomerRef, Event, Journey, Payload, TenantId};
use rezef_log::Log;
use rezef_measure::MeasureRules;
use rezef_record::sealed::Sealing;

use crate::dedup::DedupWindow;
use crate::memory::MemoryStore;
use crate::read_ahead::{Decoded, decode};
use crate::step::Step;
use crate::store::JourneyStore;
use crate::{CachedStore, Error, ProjectionConfig, Result};

/// Records read at once when the offsets wanted are close together.
const READ_SPAN: u64 = 256;

/// The journey `customer` had in `tenant` once the projection had folded every record
/// below `until`, from the events `live` (a projection at or past `until`) indexes; `None`
/// if the tenant did not know the customer then.
pub async fn journey_as_of(
    (log, sealing): (&dyn Log, &Sealing),
    live: &dyn JourneyStore,
    policies: Arc<Policies>,
    tenant: &TenantId,
    customer: &CustomerRef,
    until: u64,
) -> Result<Option<Journey>> {
    let Some(asked) = customer_now(live, tenant, customer)? else {
        return Ok(None);
    };
    let records = history((log, sealing), live, tenant, asked, until).await?;
    let scratch = crate::blocking::run(move || fold(policies, records)).await?;
    let id = match customer {
        CustomerRef::Id(id) => Some(id.clone()),
        CustomerRef::Identity(identity) => scratch.resolve(tenant, identity)?,
    };
    match id {
        Some(id) => holding(scratch.as_ref(), tenant, &id),
        None => Ok(None),
    }
}

/// The customer a reference names now.
fn customer_now(
    live: &dyn JourneyStore,
    tenant: &TenantId,
    customer: &CustomerRef,
) -> Result<Option<CustomerId>> {
    match customer {
        CustomerRef::Id(id) => Ok(Some(id.clone())),
        CustomerRef::Identity(identity) => live.resolve(tenant, identity),
    }
}

/// The journey holding `customer` in `store`: its own, or the one it was merged into.
fn holding(
    store: &dyn JourneyStore,
    tenant: &TenantId,
    customer: &CustomerId,
) -> Result<Option<Journey>> {
    let found = merge::walk(customer, |id| -> Result<_> {
        Ok(match store.journey(tenant, &id)? {
            Some(Journey {
                merged_into: Some(next),
                ..
            }) => Hop::MergedInto(next),
            journey => Hop::End(journey),
        })
    })?;
    found.ok_or_else(|| Error::MergeCycle {
        tenant: tenant.clone(),
        customer: customer.clone(),
    })
}

/// The records below `until` of every customer whose history shapes `asked`'s journey (see
/// the module docs), in log order.
async fn history(
    (log, sealing): (&dyn Log, &Sealing),
    live: &dyn JourneyStore,
    tenant: &TenantId,
    asked: CustomerId,
    until: u64,
) -> Result<Vec<Decoded>> {
    let mut records = BTreeMap::new();
    let mut found = Found::default();
    found.add(&asked);
    while let Some(customer) = found.queue.pop_front() {
        let mut wanted = live.customer_offsets(tenant, &customer, 0, until)?;
        wanted.retain(|offset| !records.contains_key(offset));
        for record in read(log, sealing, &wanted).await? {
            if let Ok(event) = &record.event {
                found.related(live, tenant, event)?;
            }
            records.insert(record.offset, record);
        }
        if let Some(root) = holding(live, tenant, &customer)? {
            found.add(&root.customer_id);
            root.merged_customers().for_each(|member| found.add(member));
        }
    }
    Ok(records.into_values().collect())
}

/// The customers found so far (those not searched yet queued), and the identities already
/// looked up: a customer's events show the same few identities again and again.
#[derive(Debug, Default)]
struct Found {
    customers: BTreeSet<CustomerId>,
    queue: VecDeque<CustomerId>,
    identities: HashSet<ChannelIdentity>,
}

impl Found {
    fn add(&mut self, customer: &CustomerId) {
        if !self.customers.contains(customer) {
            self.customers.insert(customer.clone());
            self.queue.push_back(customer.clone());
        }
    }

    /// Adds the customers an event's identity decisions and merges look at: the one it
    /// names, the owners now of the identities it shows, and the one a merge or an unmerge
    /// names.
    fn related(&mut self, live: &dyn JourneyStore, tenant: &TenantId, event: &Event) -> Result<()> {
        if let Some(CustomerRef::Id(id)) = &event.customer {
            self.add(id);
        }
        for identity in event.identities() {
            if self.identities.insert(identity.clone())
                && let Some(owner) = live.resolve(tenant, identity)?
            {
                self.add(&owner);
            }
        }
        if let Payload::CustomersMerged { absorbed, .. }
        | Payload::CustomersUnmerged { absorbed, .. } = &event.payload
        {
            self.add(absorbed);
        }
        Ok(())
    }
}

/// The records at `offsets` (ascending), decoded; reads close offsets together.
async fn read(log: &dyn Log, sealing: &Sealing, offsets: &[u64]) -> Result<Vec<Decoded>> {
    let start = log.start_offset();
    if let Some(&offset) = offsets.first().filter(|first| **first < start) {
        return Err(Error::HistoryGone { offset, start });
    }
    let mut decoded = Vec::with_capacity(offsets.len());
    let mut rest = offsets;
    while let Some(&first) = rest.first() {
        let close = rest.iter().take_while(|o| **o < first + READ_SPAN).count();
        let span = rest[close - 1] - first + 1;
        let records = log.read(first, usize::try_from(span).unwrap_or(1)).await?;
        let Some(last) = records.last().map(|record| record.offset) else {
            return Err(Error::HistoryGone {
                offset: first,
                start,
            });
        };
        let wanted = |record: &&rezef_log::Record| rest.binary_search(&record.offset).is_ok();
        decoded.extend(records.iter().filter(wanted).map(|r| decode(r, sealing)));
        rest = &rest[rest.partition_point(|offset| *offset <= last)..];
    }
    Ok(decoded)
}

/// A projection in memory of `records` (in log order), folded as the projector folds.
fn fold(policies: Arc<Policies>, records: Vec<Decoded>) -> Result<Arc<CachedStore>> {
    let config = ProjectionConfig {
        measure: MeasureRules {
            enabled: false,
            ..MeasureRules::default()
        },
        ..ProjectionConfig::default()
    };
    let store = Arc::new(CachedStore::new(Arc::new(MemoryStore::new()), config)?);
    let window = DedupWindow::new(records.len().max(1), Vec::new());
    let mut step = Step::new(policies, None, Arc::new(Mutex::new(window)));
    for record in records {
        store.fold(|workspace| step.record(workspace, record))?;
    }
    store.commit(step.finish().0)?;
    Ok(store)
}
