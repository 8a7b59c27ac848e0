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

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rezef_events::event::Presence;
use rezef_events::resume::{Caller, resume};
use rezef_events::{
    AgentId, Channel, CustomerId, CustomerRef, Event, InteractionId, Payload, TenantId, Timestamp,
};
use rezef_proto::v1::{AgentSessionEvent, agent_session_event as out};
use rezef_routing::{Engine, Offer, OfferId, Routing, RoutingConfig};
use tokio::sync::{Notify, mpsc};
use tonic::Status;
use tracing::{Instrument, debug, info_span, warn};

use crate::backbone::Backbone;
use crate::clock::{Clock, Sleep};
use crate::convert::{View, resume_to_proto, timestamp};
use crate::own_event::OwnEvent;
use crate::reader::{Fresh, JourneyReader};
use crate::{Error, Result};

/// Where a session's messages go.
pub type SessionSender = mpsc::Sender<Result<AgentSessionEvent, Status>>;

/// One tenant's routing.
pub struct Tenant {
    pub engine: Engine,
    sessions: HashMap<AgentId, SessionSender>,
    /// Whose contact each routed interaction is, and on which channel.
    contacts: HashMap<InteractionId, (CustomerId, Channel)>,
    /// The engine's next deadline as of its last operation; the timer ticks the tenant then.
    deadline: Option<Timestamp>,
    /// Warm transfers waiting for the other agent's accept, by offer.
    pub(super) warm: HashMap<OfferId, super::transfer::Asked>,
    /// Contacts just transferred: their next offer reads the journey once it has caught up,
    /// so the context shows the transfer.
    pub(super) transferring: HashSet<InteractionId>,
    /// Consults under way, by contact.
    pub(super) consults: HashMap<InteractionId, super::consult::Consulting>,
    /// Contacts the log said ended while routing did not hold them.
    pub(super) ended: super::withdraw::RecentEnds,
}

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

impl std::fmt::Debug for Tenant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tenant")
            .field("sessions", &self.sessions.len())
            .field("contacts", &self.contacts.len())
            .finish_non_exhaustive()
    }
}

const SOURCE: &str = "rezef.routing";

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

    async fn render(&self, tenant: &TenantId, message: Outgoing) -> Result<AgentSessionEvent> {
        let event = match message {
            Outgoing::Offer {
                offer,
                customer,
                fresh,
                consult,
            } => {
                let context = match customer {
                    Some((customer, channel)) => {
                        let reference = CustomerRef::Id(customer);
                        let fresh = fresh.then(|| Fresh {
                            min_offset: None,
                            wait: self.max_wait(),
                        });
                        let journey = self.reader.journey(tenant, &reference, fresh).await?;
                        journey.map(|journey| {
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
                        })
                    }
                    None => None,
                };
                out::Event::Offer(out::Offer {
                    offer_id: offer.id.0,
                    interaction_id: offer.contact.to_string(),
                    queue_id: offer.queue,
                    expires_at: Some(timestamp(offer.expires_at)),
                    context,
                    consult,
                })
            }
            Outgoing::Withdrawn(offer, reason) => out::Event::Withdrawn(out::OfferWithdrawn {
                offer_id: offer.id.0,
                reason: reason.into(),
            }),
            Outgoing::Assigned(offer) => out::Event::Assigned(out::Assigned {
                offer_id: offer.id.0,
                interaction_id: offer.contact.to_string(),
            }),
            Outgoing::Presence(presence, reason) => out::Event::Presence(out::PresenceChanged {
                presence: crate::convert::presence_to_proto(presence),
                reason: reason.into(),
            }),
            Outgoing::ProfileUpdated => out::Event::ProfileUpdated(out::ProfileUpdated {}),
            Outgoing::TransferEnded(ended) => out::Event::TransferEnded(ended.into()),
            Outgoing::Consult(changed) => out::Event::Consult(changed.into()),
        };
        Ok(AgentSessionEvent { event: Some(event) })
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

impl Tenant {
    fn new(engine: Engine) -> Self {
        Self {
            engine,
            sessions: HashMap::new(),
            contacts: HashMap::new(),
            deadline: None,
            warm: HashMap::new(),
            transferring: HashSet::new(),
            consults: HashMap::new(),
            ended: super::withdraw::RecentEnds::default(),
        }
    }

    /// Notes the engine's next deadline after an operation at `now`. A deadline already due
    /// stays until the timer has ticked it: the engine's deadlines from `now` on would skip
    /// an escalation step due exactly now.
    fn note_deadline(&mut self, now: Timestamp) {
        if self.deadline.is_none_or(|at| at > now) {
            self.deadline = self.engine.next_deadline(now);
        }
    }

    /// Whether a desktop session of the agent is open.
    pub fn connected(&self, agent: &AgentId) -> bool {
        self.sessions.contains_key(agent)
    }

    pub fn connect(&mut self, agent: AgentId, sender: SessionSender) {
        self.sessions.insert(agent, sender);
    }

    /// Forgets the session if it is still this one (a newer login replaces an older one).
    pub fn disconnect(&mut self, agent: &AgentId, sender: &SessionSender) -> bool {
        let current = self
            .sessions
            .get(agent)
            .is_some_and(|s| s.same_channel(sender));
        if current {
            self.sessions.remove(agent);
        }
        current
    }

    pub fn remember_contact(
        &mut self,
        contact: InteractionId,
        customer: CustomerId,
        channel: Channel,
    ) {
        self.contacts.insert(contact, (customer, channel));
    }

    pub fn forget_contact(&mut self, contact: &InteractionId) {
        self.contacts.remove(contact);
    }

    /// Whether the tenant routes `contact` now (waiting, offered or assigned).
    pub fn routes(&self, contact: &InteractionId) -> bool {
        self.contacts.contains_key(contact)
    }

    /// Whose contact a routed interaction is, and on which channel.
    pub fn customer_of(&self, contact: &InteractionId) -> Option<(CustomerId, Channel)> {
        self.contacts.get(contact).cloned()
    }

    /// An event about a routed contact (offered, assigned, queued) at `now`.
    pub fn contact_event(
        &self,
        tenant: &TenantId,
        contact: &InteractionId,
        payload: Payload,
        now: Timestamp,
    ) -> Option<Event> {
        let (customer, channel) = self.contacts.get(contact)?;
        Some(Self::about(
            tenant, contact, customer, *channel, payload, now,
        ))
    }

    pub(super) fn about(
        tenant: &TenantId,
        contact: &InteractionId,
        customer: &CustomerId,
        channel: Channel,
        payload: Payload,
        now: Timestamp,
    ) -> Event {
        OwnEvent::new(tenant, SOURCE, payload)
            .about(customer)
            .on(channel)
            .of_contact(contact.clone())
            .at(now)
            .build()
    }

    /// An agent's presence as an event at `now` (agent events concern no customer).
    pub fn presence_event(
        tenant: &TenantId,
        agent: &AgentId,
        presence: Presence,
        why: &str,
        now: Timestamp,
    ) -> Event {
        let payload = Payload::AgentPresenceChanged {
            agent_id: agent.clone(),
            presence,
            custom_status: why.to_owned(),
        };
        OwnEvent::new(tenant, SOURCE, payload).at(now).build()
    }

    /// Offers just made: a `ContactOffered` event and a message for each.
    pub fn offered(
        &mut self,
        tenant: &TenantId,
        offers: Vec<Offer>,
        now: Timestamp,
        effects: &mut Effects,
    ) {
        for offer in offers {
            let customer = self.contacts.get(&offer.contact).cloned();
            let consult = self.warm.get(&offer.id).is_some_and(|a| a.consult);
            // A consult's offer is not the contact's: it stays with its agent, and the log
            // records the consult when it starts (`ConsultStarted`).
            if let (Some((customer, channel)), false) = (&customer, consult) {
                let payload = Payload::ContactOffered {
                    agent_id: offer.agent.clone(),
                    queue_id: offer.queue.clone(),
                };
                effects.events.push(Self::about(
                    tenant,
                    &offer.contact,
                    customer,
                    *channel,
                    payload,
                    now,
                ));
            }
            let fresh = self.transferring.remove(&offer.contact);
            effects.messages.push((
                offer.agent.clone(),
                Outgoing::Offer {
                    offer,
                    customer,
                    fresh,
                    consult,
                },
            ));
        }
    }

    /// The agent holds the offered contact now: a `ContactAssigned` event, and their session
    /// told.
    pub fn assigned(&self, tenant: &TenantId, offer: Offer, now: Timestamp, effects: &mut Effects) {
        let assigned = Payload::ContactAssigned {
            agent_id: offer.agent.clone(),
            queue_id: offer.queue.clone(),
        };
        effects
            .events
            .extend(self.contact_event(tenant, &offer.contact, assigned, now));
        effects
            .messages
            .push((offer.agent.clone(), Outgoing::Assigned(offer)));
    }

    /// Offers the engine made since its last dispatch, and what became of warm transfers.
    pub fn dispatch(&mut self, tenant: &TenantId, now: Timestamp, effects: &mut Effects) {
        let offers = self.engine.dispatch(now);
        self.offered(tenant, offers, now, effects);
        self.settle_transfers(effects);
        self.settle_consults(tenant, now, effects);
    }

    /// The agent's outstanding offers but `fresh` ones, sent again (to a new session).
    pub fn resend_offers(&self, agent: &AgentId, fresh: &[Offer], effects: &mut Effects) {
        let again = self
            .engine
            .offers()
            .filter(|offer| &offer.agent == agent && !fresh.iter().any(|f| f.id == offer.id));
        for offer in again {
            let customer = self.contacts.get(&offer.contact).cloned();
            effects.messages.push((
                agent.clone(),
                Outgoing::Offer {
                    offer: offer.clone(),
                    customer,
                    fresh: false,
                    consult: self.warm.get(&offer.id).is_some_and(|a| a.consult),
                },
            ));
        }
    }

    /// Expired offers withdrawn (and agents set away for missing too many), then a dispatch;
    /// the next deadline is noted.
    fn tick(&mut self, tenant: &TenantId, now: Timestamp) -> Effects {
        let mut effects = Effects::default();
        for offer in self.engine.expire_offers(now) {
            let agent = offer.agent.clone();
            effects.messages.push((
                agent.clone(),
                Outgoing::Withdrawn(offer, "not accepted in time"),
            ));
            if let Some(presence) = self
                .engine
                .presence(&agent)
                .filter(|p| *p != Presence::Available)
            {
                effects.events.push(Self::presence_event(
                    tenant,
                    &agent,
                    presence,
                    "missed offers",
                    now,
                ));
                effects.messages.push((
                    agent,
                    Outgoing::Presence(presence, "too many missed offers"),
                ));
            }
        }
        self.dispatch(tenant, now, &mut effects);
        self.deadline = self.engine.next_deadline(now);
        effects
    }
}
