//! The projector: reads the log in order and folds each event into journey state.
//!
//! Every step commits the state it produced together with the offset it reached, in one
//! atomic store batch. After a crash the store holds a whole step or none of it, and the
//! projector resumes from the stored offset: no event is applied twice, none is skipped.
//! An event id already applied is not applied again (it counts as a duplicate).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use rezef_events::agent::AgentState;
use rezef_events::fold::customer_id_for;
use rezef_events::{AgentId, CustomerId, CustomerRef, Event, EventId, Journey, TenantId, codec};
use rezef_log::{Log, Record};
use tokio::sync::{broadcast, watch};
use tracing::{Instrument, debug, info_span, warn};

use crate::Result;
use crate::store::{JourneyStore, ProjectionBatch};

/// How many log records one read (and one live projection step) takes at most.
pub const STEP_RECORDS: usize = 4096;
/// While catching up, a step commits after this many records...
pub const CATCH_UP_RECORDS: usize = 65_536;
/// ...or once it holds this many changed journeys, whichever comes first (memory bound).
pub const CATCH_UP_JOURNEYS: usize = 10_000;

/// A journey changed; `offset` is the projected offset once it was committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JourneyChanged {
    pub tenant: TenantId,
    pub customer: CustomerId,
    pub offset: u64,
}

/// What readers of the projection use: its position and its change feed.
#[derive(Debug, Clone)]
pub struct ProjectionWatch {
    position: watch::Receiver<u64>,
    changes: broadcast::Sender<JourneyChanged>,
}

impl ProjectionWatch {
    /// The projected offset: every log record below it has been applied.
    pub fn position(&self) -> u64 {
        *self.position.borrow()
    }

    /// Waits until the record at `offset` has been applied (position > offset). Returns
    /// `false` if the projector stopped first.
    pub async fn wait_past(&self, offset: u64) -> bool {
        let mut position = self.position.clone();
        position.wait_for(|p| *p > offset).await.is_ok()
    }

    /// Every journey change from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<JourneyChanged> {
        self.changes.subscribe()
    }
}

/// Counts of one run of the projector.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ProjectionStats {
    pub records: u64,
    pub applied: u64,
    pub duplicates: u64,
    /// Records that are not events this build can read; logged and passed over.
    pub undecodable: u64,
}

/// Folds the log into the store.
#[derive(Debug)]
pub struct Projector {
    log: Arc<dyn Log>,
    store: Arc<dyn JourneyStore>,
    position: watch::Sender<u64>,
    changes: broadcast::Sender<JourneyChanged>,
}

impl Projector {
    pub fn new(log: Arc<dyn Log>, store: Arc<dyn JourneyStore>) -> Result<Self> {
        let (position, _) = watch::channel(store.projected_offset()?);
        let (changes, _) = broadcast::channel(4096);
        Ok(Self {
            log,
            store,
            position,
            changes,
        })
    }

    pub fn watch(&self) -> ProjectionWatch {
        ProjectionWatch {
            position: self.position.subscribe(),
            changes: self.changes.clone(),
        }
    }

    /// Projects until `until` (exclusive) is reached, calling `progress` with the offset
    /// folded so far. Catching up folds many reads into one step (see [`CATCH_UP_RECORDS`]),
    /// so that a customer with events spread over the backlog is loaded and written once.
    pub async fn catch_up(
        &self,
        until: u64,
        mut progress: impl FnMut(u64),
    ) -> Result<ProjectionStats> {
        let mut stats = ProjectionStats::default();
        let mut step = Step::new(self.store.clone());
        let mut from = *self.position.borrow();
        while from < until {
            let want = usize::try_from(until - from).unwrap_or(usize::MAX);
            let records = self.log.read(from, want.min(STEP_RECORDS)).await?;
            let Some(last) = records.last() else { break };
            from = last.offset + 1;
            step = fold(step, records).await?;
            if step.stats.records >= CATCH_UP_RECORDS as u64
                || step.journeys.len() >= CATCH_UP_JOURNEYS
            {
                self.commit(step, &mut stats).await?;
                step = Step::new(self.store.clone());
            }
            progress(from);
        }
        if step.stats.records > 0 {
            self.commit(step, &mut stats).await?;
        }
        Ok(stats)
    }

    /// Follows the log forever (until the log closes or `shutdown` resolves).
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) -> Result<()> {
        let span = info_span!("projector");
        let mut stats = ProjectionStats::default();
        let follow = async {
            let mut since_flush = tokio::time::Instant::now();
            loop {
                let from = *self.position.borrow();
                let records = self.log.read(from, STEP_RECORDS).await?;
                if records.is_empty() {
                    if since_flush.elapsed() > Duration::from_secs(1) {
                        let store = self.store.clone();
                        spawn_blocking(move || store.flush()).await?;
                        since_flush = tokio::time::Instant::now();
                    }
                    match self.log.wait_for(from).await {
                        Ok(()) => continue,
                        Err(rezef_log::Error::Closed) => return Ok(()),
                        Err(error) => return Err(error.into()),
                    }
                }
                let step = fold(Step::new(self.store.clone()), records).await?;
                self.commit(step, &mut stats).await?;
            }
        };
        let result = tokio::select! {
            result = follow.instrument(span.clone()) => result,
            () = shutdown => Ok(()),
        };
        let store = self.store.clone();
        spawn_blocking(move || store.flush()).await?;
        span.in_scope(|| debug!(?stats, "projector stopped"));
        result
    }

    /// Writes a step to the store, then announces the new position and the changes.
    async fn commit(&self, step: Step, stats: &mut ProjectionStats) -> Result<()> {
        let step_stats = step.stats;
        let store = self.store.clone();
        let batch = spawn_blocking(move || {
            let batch = step.finish();
            store.commit(&batch)?;
            Ok(batch)
        })
        .await?;
        stats.records += step_stats.records;
        stats.applied += step_stats.applied;
        stats.duplicates += step_stats.duplicates;
        stats.undecodable += step_stats.undecodable;
        let offset = batch.next_offset;
        self.position.send_replace(offset);
        for journey in batch.journeys {
            // Nobody listening is fine.
            let _ = self.changes.send(JourneyChanged {
                tenant: journey.tenant_id,
                customer: journey.customer_id,
                offset,
            });
        }
        Ok(())
    }
}

/// Folds records into a step, off the async runtime.
async fn fold(mut step: Step, records: Vec<Record>) -> Result<Step> {
    spawn_blocking(move || {
        for record in &records {
            step.record(record)?;
        }
        Ok(step)
    })
    .await
}

async fn spawn_blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic.into_panic()))
}

/// Deletes the projection and rebuilds it from the whole log.
pub async fn rebuild(
    log: Arc<dyn Log>,
    store: Arc<dyn JourneyStore>,
    progress: impl FnMut(u64),
) -> Result<ProjectionStats> {
    let cleared = store.clone();
    spawn_blocking(move || cleared.clear()).await?;
    let until = log.end_offset();
    let projector = Projector::new(log, store.clone())?;
    let stats = projector.catch_up(until, progress).await?;
    spawn_blocking(move || store.flush()).await?;
    Ok(stats)
}

/// One projection step: state loaded once per customer, written once.
struct Step {
    store: Arc<dyn JourneyStore>,
    journeys: HashMap<(TenantId, CustomerId), Journey>,
    links: HashMap<(TenantId, String), CustomerId>,
    seen: HashSet<(TenantId, EventId)>,
    agents: HashMap<(TenantId, AgentId), AgentState>,
    batch: ProjectionBatch,
    stats: ProjectionStats,
}

impl Step {
    fn new(store: Arc<dyn JourneyStore>) -> Self {
        Self {
            store,
            journeys: HashMap::new(),
            links: HashMap::new(),
            seen: HashSet::new(),
            agents: HashMap::new(),
            batch: ProjectionBatch::default(),
            stats: ProjectionStats::default(),
        }
    }

    fn record(&mut self, record: &Record) -> Result<()> {
        self.stats.records += 1;
        self.batch.next_offset = record.offset + 1;
        let event = match codec::decode(&record.payload) {
            Ok(event) => event,
            Err(error) => {
                self.stats.undecodable += 1;
                warn!(offset = record.offset, %error, "passing over an undecodable log record");
                return Ok(());
            }
        };
        let id = (event.tenant_id.clone(), event.event_id.clone());
        let duplicate = self.seen.contains(&id) || self.store.event_offset(&id.0, &id.1)?.is_some();
        if duplicate {
            self.stats.duplicates += 1;
            if let Some(journey) = self.journey_for(&event)? {
                journey.counters.duplicates_ignored += 1;
            }
            return Ok(());
        }
        self.seen.insert(id.clone());
        self.batch.events.push((id.0, id.1, record.offset));
        self.stats.applied += 1;

        if let rezef_events::Payload::AgentPresenceChanged { agent_id, .. } = &event.payload {
            let key = (event.tenant_id.clone(), agent_id.clone());
            let current = match self.agents.remove(&key) {
                Some(state) => Some(state),
                None => self.store.agent(&key.0, &key.1)?,
            };
            if let Some(state) = AgentState::fold(current, record.offset, &event) {
                self.agents.insert(key, state);
            }
            return Ok(());
        }

        let Some(journey) = self.journey_for(&event)? else {
            return Ok(());
        };
        let applied = journey.apply(record.offset, &event);
        let customer = journey.customer_id.clone();
        let tenant = event.tenant_id.clone();
        self.batch
            .customer_events
            .push((tenant.clone(), customer.clone(), record.offset));
        for identity in applied.linked {
            let owner = match self.links.get(&(tenant.clone(), identity.index_key())) {
                Some(owner) => Some(owner.clone()),
                None => self.store.resolve(&tenant, &identity)?,
            };
            match owner {
                None => {
                    self.links
                        .insert((tenant.clone(), identity.index_key()), customer.clone());
                    self.batch
                        .identities
                        .push((tenant.clone(), identity, customer.clone()));
                }
                Some(owner) if owner != customer => {
                    warn!(
                        tenant = %tenant, %identity, %customer, %owner,
                        "identity already belongs to another customer; not relinked"
                    );
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// The journey a customer event belongs to, loaded or started.
    fn journey_for(&mut self, event: &Event) -> Result<Option<&mut Journey>> {
        let tenant = &event.tenant_id;
        let customer = match &event.customer {
            None => return Ok(None),
            Some(CustomerRef::Id(id)) => id.clone(),
            Some(CustomerRef::Identity(identity)) => {
                match self.links.get(&(tenant.clone(), identity.index_key())) {
                    Some(customer) => customer.clone(),
                    None => self
                        .store
                        .resolve(tenant, identity)?
                        .unwrap_or_else(|| customer_id_for(tenant, identity)),
                }
            }
        };
        let key = (tenant.clone(), customer);
        if !self.journeys.contains_key(&key) {
            let journey = match self.store.journey(&key.0, &key.1)? {
                Some(journey) => journey,
                None => Journey::new(key.0.clone(), key.1.clone(), event.occurred_at),
            };
            self.journeys.insert(key.clone(), journey);
        }
        Ok(self.journeys.get_mut(&key))
    }

    fn finish(mut self) -> ProjectionBatch {
        self.batch.journeys = self.journeys.into_values().collect();
        self.batch.agents = self.agents.into_iter().map(|((t, _), s)| (t, s)).collect();
        self.batch
    }
}
