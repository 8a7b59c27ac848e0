//! The desk: each tenant's routing engine, the agent sessions connected to it, and the timer
//! that withdraws expired offers and escalates waiting contacts on time.
//!
//! The engine is pure and runs under a lock for microseconds; what follows from its
//! decisions (events to append, messages to sessions) is collected as [`Effects`] and carried
//! out after the lock is released: events first, so the log records a decision before any
//! agent sees it. Effects carry what rendering them needs (an offer's customer), so that
//! sending takes no lock per message.
//!
//! The timer sleeps until the earliest of the tenants' next deadlines, by the desk's
//! [`Clock`]. Requests dispatch by themselves, so a request wakes the timer only when it
//! made a deadline earlier than the one the timer sleeps until: a tick (expiry, dispatch)
//! per request would cost as much as the request.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rezef_events::event::Presence;
use rezef_events::resume::{Caller, resume};
use rezef_events::{AgentId, Channel, CustomerId, CustomerRef, Event, TenantId, Timestamp};
use rezef_proto::v1::{AgentSessionEvent, ResumeConversationResponse};
use rezef_routing::{Engine, Offer, Routing, RoutingConfig};
use tokio::sync::{Notify, mpsc};
use tonic::Status;
use tracing::{Instrument, debug, info_span, warn};

use super::tenant::Tenant;
use crate::backbone::Backbone;
use crate::clock::{Clock, Sleep};
use crate::convert::routing as convert;
use crate::convert::{View, resume_to_proto};
use crate::reader::{Fresh, JourneyReader};
use crate::{Error, Result};

/// Where a session's messages go.
pub type SessionSender = mpsc::Sender<Result<AgentSessionEvent, Status>>;

/// A message for an agent's session, made after the lock is released.
#[derive(Debug)]
pub enum Outgoing {
    /// With the contact's customer and channel (`None` if unknown), for its context;
    /// `fresh`: read once the projection has caught up (after a transfer); `consult`: the
    /// offer is a consult.
    Offer {
        offer: Offer,
        customer: Option<(CustomerId, Channel)>,
        fresh: bool,
        consult: bool,
    },
    Withdrawn(Offer, &'static str),
    Assigned(Offer),
    Presence(Presence, &'static str),
    ProfileUpdated,
    TransferEnded(super::transfer::Ended),
    Consult(super::consult::Changed),
}

/// A tenant's routing in figures: its queues, and its agents by presence.
#[derive(Debug)]
pub struct Figures {
    pub tenant: TenantId,
    pub queues: Vec<rezef_routing::QueueStats>,
    pub agents: std::collections::BTreeMap<Presence, usize>,
}

/// What a decision leads to.
#[derive(Debug, Default)]
pub struct Effects {
    pub events: Vec<Event>,
    pub messages: Vec<(AgentId, Outgoing)>,
}

#[derive(Debug)]
pub struct Desk {
    /// The log routing's events are appended to (on Kafka: the tenant's routing partition's;
    /// its projector forwards customer events to their journeys' partitions).
    backbone: Backbone,
    /// Where customers' journeys are read (on Kafka: any partition).
    reader: JourneyReader,
    tenants: Mutex<HashMap<TenantId, Tenant>>,
    /// Every tenant starts with this configuration (the server's `routing_config` file).
    initial: Option<Routing>,
    clock: Arc<dyn Clock>,
    /// Wakes the timer to look at the deadlines again.
    wake: Notify,
    /// The deadline the timer sleeps until, in nanoseconds since the epoch ([`IDLE`]: none).
    /// Read and written under the tenants' lock, so that a request that makes an earlier
    /// deadline either sees the timer's new value or is seen by the timer.
    sleeping_until: AtomicU64,
    /// Counts changes to any tenant's routing, for queue watchers.
    changes: tokio::sync::watch::Sender<u64>,
    /// One past the last log record routing has read for contacts that ended
    /// ([`super::withdraw::follow`]); the log's end when the desk started.
    followed: tokio::sync::watch::Sender<u64>,
    /// Whether the contacts held before the desk started are held again
    /// ([`super::recover`]).
    recovered: tokio::sync::watch::Sender<bool>,
}

/// The `source` of the events routing logs.
pub(super) const SOURCE: &str = "rezef.routing";

/// `sleeping_until` when the timer has no deadline.
const IDLE: u64 = u64::MAX;

fn nanos(at: Timestamp) -> u64 {
    u64::try_from(at.unix_nanos()).unwrap_or(0)
}

impl Desk {
    pub fn new(
        backbone: Backbone,
        reader: JourneyReader,
        initial: Option<Routing>,
        clock: Arc<dyn Clock>,
    ) -> Arc<Self> {
        Arc::new(Self {
            reader,
            tenants: Mutex::new(HashMap::new()),
            initial,
            clock,
            wake: Notify::new(),
            sleeping_until: AtomicU64::new(IDLE),
            changes: tokio::sync::watch::channel(0).0,
            followed: tokio::sync::watch::channel(backbone.log.end_offset()).0,
            recovered: tokio::sync::watch::channel(false).0,
            backbone,
        })
    }

    pub fn backbone(&self) -> &Backbone {
        &self.backbone
    }

    pub fn reader(&self) -> &JourneyReader {
        &self.reader
    }

    /// The time by routing's clock.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<TenantId, Tenant>> {
        // A panic under the lock leaves the engine as the last operation left it; its
        // invariants hold between operations, so carrying on is sound.
        self.tenants
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `work` on the tenant's routing; FAILED_PRECONDITION if it has no configuration.
    /// Wakes the timer if the tenant's next deadline is now earlier than the timer's.
    pub fn with_tenant<T>(
        &self,
        tenant: &TenantId,
        work: impl FnOnce(&mut Tenant) -> Result<T>,
    ) -> Result<T> {
        let result = {
            let mut tenants = self.lock();
            let found = self.tenant(&mut tenants, tenant)?;
            let result = work(found);
            // The timer stops at shutdown: no deadline to keep then.
            if !self.backbone.is_closing() {
                found.note_deadline(self.clock.now());
                if found
                    .deadline
                    .is_some_and(|at| nanos(at) < self.sleeping_until.load(Ordering::Relaxed))
                {
                    self.wake.notify_one();
                }
            }
            result
        };
        self.changes.send_modify(|n| *n += 1);
        result
    }

    /// Where routing has read the log up to (one past the last record read).
    pub fn followed(&self) -> &tokio::sync::watch::Sender<u64> {
        &self.followed
    }

    /// Waits, at most `wait`, until routing has read everything logged so far: a contact
    /// whose end was acknowledged before now is withdrawn by then.
    pub async fn followed_up(&self, wait: Duration) -> Result<()> {
        let started = tokio::time::Instant::now();
        self.recovered(wait).await?;
        let wait = wait.saturating_sub(started.elapsed());
        let end = self.backbone.log.end_offset();
        let mut followed = self.followed.subscribe();
        match tokio::time::timeout(wait, followed.wait_for(|at| *at >= end)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(Error::Unavailable("routing stopped reading the log".into())),
            Err(_) => Err(Error::DeadlineExceeded(format!(
                "routing did not read the log up to offset {end} within {} ms (it is at {})",
                wait.as_millis(),
                *self.followed.borrow()
            ))),
        }
    }

    /// Waits, at most `wait`, until routing holds again the contacts it held before it
    /// started ([`super::recover`]); UNAVAILABLE past it (worth retrying).
    pub async fn recovered(&self, wait: Duration) -> Result<()> {
        if *self.recovered.borrow() {
            return Ok(());
        }
        let mut recovered = self.recovered.subscribe();
        match tokio::time::timeout(wait, recovered.wait_for(|done| *done)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(Error::Unavailable("routing stopped".into())),
            Err(_) => Err(Error::Unavailable(format!(
                "routing is starting: the contacts it held are not back in their queues yet \
                 (the projection is at offset {}); retry",
                self.backbone.projection.position()
            ))),
        }
    }

    /// Notes that the contacts held before the desk started are held again.
    pub fn set_recovered(&self) {
        self.recovered.send_replace(true);
    }

    /// The longest a session's request waits for routing to read the log.
    pub fn max_wait(&self) -> Duration {
        Duration::from_millis(self.backbone.limits.max_wait_ms)
    }

    /// Each tenant's queues and agents now, for the metrics (`crate::metrics`).
    pub fn figures(&self) -> Vec<Figures> {
        let now = self.now();
        let tenants = self.lock();
        let mut figures: Vec<Figures> = (tenants.iter())
            .map(|(tenant, t)| {
                let mut agents = std::collections::BTreeMap::new();
                for agent in t.engine.agents() {
                    *agents.entry(agent.presence).or_default() += 1;
                }
                Figures {
                    tenant: tenant.clone(),
                    queues: t.engine.stats(now),
                    agents,
                }
            })
            .collect();
        figures.sort_by(|a, b| a.tenant.cmp(&b.tenant));
        figures
    }

    /// Whether any tenant's routing has started here (routed, configured, an agent).
    pub fn has_tenants(&self) -> bool {
        !self.lock().is_empty()
    }

    /// Changes to any tenant's routing.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// The tenant's routing, started on first use with the configuration last set through
    /// the log (kept by the projection: it survives restarts and partition moves), else the
    /// initial one.
    fn tenant<'a>(
        &self,
        tenants: &'a mut HashMap<TenantId, Tenant>,
        tenant: &TenantId,
    ) -> Result<&'a mut Tenant> {
        if !tenants.contains_key(tenant) {
            let Some(routing) = self.stored_config(tenant)?.or_else(|| self.initial.clone()) else {
                return Err(Error::FailedPrecondition(format!(
                    "tenant {tenant} has no routing configuration: set one with SetRoutingConfig"
                )));
            };
            tenants.insert(tenant.clone(), Tenant::new(Engine::new(routing)));
        }
        Ok(tenants.get_mut(tenant).expect("inserted above"))
    }

    /// The configuration last set for `tenant` through the log, if any.
    fn stored_config(&self, tenant: &TenantId) -> Result<Option<Routing>> {
        let Some(record) = self.backbone.store.routing_config(tenant)? else {
            return Ok(None);
        };
        match RoutingConfig::from_toml(&record.config) {
            Ok(routing) => Ok(Some(routing)),
            Err(errors) => {
                // Valid when it was set; a later build may read it differently.
                warn!(%tenant, version = record.version, errors = errors.len(),
                    "the stored routing configuration no longer compiles; using the initial one");
                Ok(None)
            }
        }
    }

    /// Installs a configuration for a tenant (waiting contacts keep their place).
    pub fn configure(&self, tenant: &TenantId, routing: Routing) {
        let mut tenants = self.lock();
        let found = match tenants.entry(tenant.clone()) {
            Entry::Occupied(entry) => {
                let found = entry.into_mut();
                found.engine.reconfigure(routing);
                found
            }
            Entry::Vacant(entry) => entry.insert(Tenant::new(Engine::new(routing))),
        };
        // New steps and offer settings apply at once: the timer dispatches now.
        found.deadline = Some(self.clock.now());
        self.wake.notify_one();
    }

    /// Appends the events, then sends the messages; the offset of the first event.
    pub async fn apply(&self, tenant: &TenantId, effects: Effects) -> Result<Option<u64>> {
        let first = if effects.events.is_empty() {
            None
        } else {
            Some(self.backbone.append(&effects.events).await?)
        };
        if effects.messages.is_empty() {
            return Ok(first);
        }
        let senders: Vec<Option<SessionSender>> = {
            let tenants = self.lock();
            let sessions = tenants.get(tenant).map(|t| &t.sessions);
            effects
                .messages
                .iter()
                .map(|(agent, _)| sessions.and_then(|s| s.get(agent).cloned()))
                .collect()
        };
        for ((agent, message), sender) in effects.messages.into_iter().zip(senders) {
            let Some(sender) = sender else {
                debug!(%agent, "the agent has no session");
                continue;
            };
            let event = self.render(tenant, message).await?;
            if sender.send(Ok(event)).await.is_err() {
                debug!(%agent, "the agent's session is gone");
            }
        }
        Ok(first)
    }

    /// `message` as the agent receives it: an offer with the customer's journey as the
    /// agent should see it.
    async fn render(&self, tenant: &TenantId, message: Outgoing) -> Result<AgentSessionEvent> {
        let context = match &message {
            Outgoing::Offer {
                offer,
                customer: Some((customer, channel)),
                fresh,
                ..
            } => {
                self.offer_context(tenant, offer, customer, *channel, *fresh)
                    .await?
            }
            _ => None,
        };
        Ok(convert::outgoing(message, context))
    }

    /// The context of an offer: what `ResumeConversation` would answer for its contact.
    async fn offer_context(
        &self,
        tenant: &TenantId,
        offer: &Offer,
        customer: &CustomerId,
        channel: Channel,
        fresh: bool,
    ) -> Result<Option<ResumeConversationResponse>> {
        let reference = CustomerRef::Id(customer.clone());
        let fresh = fresh.then(|| Fresh {
            min_offset: None,
            wait: self.max_wait(),
        });
        let journey = self.reader.journey(tenant, &reference, fresh).await?;
        Ok(journey.map(|journey| {
            let now = self.clock.now();
            let policy = self.backbone.policy(tenant);
            let caller = Caller::Contact(&offer.contact);
            let answer = resume(&journey, caller, channel, now, policy, None);
            let view = View {
                reveal: false,
                transcript: policy.transcript_excerpt,
                now,
            };
            resume_to_proto(
                &journey,
                &answer,
                &view,
                self.backbone.projection.position(),
            )
        }))
    }

    /// Runs the desk's own work until the server shuts down: the timer, which withdraws
    /// expired offers and dispatches each tenant at its deadline, and the reader of the log,
    /// which withdraws contacts that ended ([`super::withdraw::follow`]).
    pub fn spawn(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let desk = self.clone();
        let timer = async move {
            loop {
                desk.tick_due().await;
                let sleep = desk.next_sleep();
                tokio::select! {
                    () = sleep => {}
                    () = desk.wake.notified() => {}
                    () = desk.backbone.closed() => return,
                }
            }
        }
        .instrument(info_span!("routing_timer"));
        let follow = super::withdraw::follow(self.clone()).instrument(info_span!("routing_follow"));
        tokio::spawn(async move {
            tokio::join!(timer, follow);
        })
    }

    /// Ticks the tenants whose deadline has come.
    async fn tick_due(&self) {
        let now = self.clock.now();
        let due: Vec<TenantId> = self
            .lock()
            .iter()
            .filter(|(_, t)| t.deadline.is_some_and(|at| at <= now))
            .map(|(id, _)| id.clone())
            .collect();
        for tenant in due {
            let effects = self
                .lock()
                .get_mut(&tenant)
                .map(|t| t.tick(&tenant, now))
                .unwrap_or_default();
            if !effects.messages.is_empty() {
                self.changes.send_modify(|n| *n += 1);
            }
            if let Err(error) = self.apply(&tenant, effects).await {
                warn!(%tenant, %error, "routing effects failed");
            }
        }
    }

    /// A wait until the earliest deadline of all tenants (forever if none), noted in
    /// `sleeping_until` under the same lock the deadlines are read under.
    fn next_sleep(&self) -> Sleep {
        let tenants = self.lock();
        let next = tenants.values().filter_map(|t| t.deadline).min();
        self.sleeping_until
            .store(next.map_or(IDLE, nanos), Ordering::Relaxed);
        match next {
            Some(at) => self.clock.sleep_until(at),
            None => Box::pin(std::future::pending()),
        }
    }
}
