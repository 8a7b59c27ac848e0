//! The desk: each tenant's routing engine, the agent sessions connected to it, and the clock
//! that withdraws expired offers and escalates waiting contacts on time.
//!
//! The engine is pure and runs under a lock for microseconds; what follows from its
//! decisions (events to append, messages to sessions) is collected as [`Effects`] and carried
//! out after the lock is released: events first, so the log records a decision before any
//! agent sees it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rezef_events::event::Presence;
use rezef_events::{
    AgentId, Channel, CustomerId, Event, InteractionId, Payload, TenantId, Timestamp,
};
use rezef_proto::v1::{AgentSessionEvent, agent_session_event as out};
use rezef_routing::{Engine, Offer, Routing};
use tokio::sync::{Notify, mpsc};
use tonic::Status;
use tracing::{Instrument, debug, info_span, warn};

use crate::backbone::Backbone;
use crate::convert::{View, resume_to_proto, timestamp};
use crate::{Error, Result};

/// Where a session's messages go.
pub type SessionSender = mpsc::Sender<Result<AgentSessionEvent, Status>>;

/// One tenant's routing.
pub struct Tenant {
    pub engine: Engine,
    sessions: HashMap<AgentId, SessionSender>,
    /// Whose contact each routed interaction is, and on which channel.
    contacts: HashMap<InteractionId, (CustomerId, Channel)>,
}

/// A message for an agent's session, made after the lock is released.
#[derive(Debug)]
pub enum Outgoing {
    Offer(Offer),
    Withdrawn(Offer, &'static str),
    Assigned(Offer),
    Presence(Presence, &'static str),
}

/// What a decision leads to.
#[derive(Debug, Default)]
pub struct Effects {
    pub events: Vec<Event>,
    pub messages: Vec<(AgentId, Outgoing)>,
}

#[derive(Debug)]
pub struct Desk {
    backbone: Backbone,
    tenants: Mutex<HashMap<TenantId, Tenant>>,
    /// Every tenant starts with this configuration (the server's `routing_config` file).
    initial: Option<Routing>,
    wake: Notify,
    /// Counts changes to any tenant's routing, for queue watchers.
    changes: tokio::sync::watch::Sender<u64>,
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

impl Desk {
    pub fn new(backbone: Backbone, initial: Option<Routing>) -> Arc<Self> {
        Arc::new(Self {
            backbone,
            tenants: Mutex::new(HashMap::new()),
            initial,
            wake: Notify::new(),
            changes: tokio::sync::watch::channel(0).0,
        })
    }

    pub fn backbone(&self) -> &Backbone {
        &self.backbone
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<TenantId, Tenant>> {
        // A panic under the lock leaves the engine as the last operation left it; its
        // invariants hold between operations, so carrying on is sound.
        self.tenants
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `work` on the tenant's routing; FAILED_PRECONDITION if it has no configuration.
    /// The clock then recomputes its next deadline.
    pub fn with_tenant<T>(
        &self,
        tenant: &TenantId,
        work: impl FnOnce(&mut Tenant) -> Result<T>,
    ) -> Result<T> {
        let result = self.run(tenant, work);
        self.wake.notify_one();
        self.changes.send_modify(|n| *n += 1);
        result
    }

    /// Changes to any tenant's routing.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// `with_tenant` without waking the clock (for the clock itself).
    fn run<T>(&self, tenant: &TenantId, work: impl FnOnce(&mut Tenant) -> Result<T>) -> Result<T> {
        let mut tenants = self.lock();
        if !tenants.contains_key(tenant) {
            let Some(routing) = self.initial.clone() else {
                return Err(Error::FailedPrecondition(format!(
                    "tenant {tenant} has no routing configuration: set one with SetRoutingConfig"
                )));
            };
            tenants.insert(tenant.clone(), Tenant::new(Engine::new(routing)));
        }
        let found = tenants.get_mut(tenant).expect("inserted above");
        work(found)
    }

    /// Installs a configuration for a tenant (waiting contacts keep their place).
    pub fn configure(&self, tenant: &TenantId, routing: Routing) {
        let mut tenants = self.lock();
        match tenants.get_mut(tenant) {
            Some(found) => found.engine.reconfigure(routing),
            None => {
                tenants.insert(tenant.clone(), Tenant::new(Engine::new(routing)));
            }
        }
        self.wake.notify_one();
    }

    /// Appends the events, then sends the messages; the offset of the first event.
    pub async fn apply(&self, tenant: &TenantId, effects: Effects) -> Result<Option<u64>> {
        let first = if effects.events.is_empty() {
            None
        } else {
            let payloads = effects
                .events
                .iter()
                .map(|e| bytes::Bytes::from(rezef_events::codec::encode(e)))
                .collect();
            Some(self.backbone.log.append(payloads).await?.first_offset)
        };
        for (agent, message) in effects.messages {
            let event = self.render(tenant, message)?;
            let sender = self
                .lock()
                .get(tenant)
                .and_then(|t| t.sessions.get(&agent).cloned());
            if let Some(sender) = sender
                && sender.send(Ok(event)).await.is_err()
            {
                debug!(%agent, "the agent's session is gone");
            }
        }
        Ok(first)
    }

    fn render(&self, tenant: &TenantId, message: Outgoing) -> Result<AgentSessionEvent> {
        let event = match message {
            Outgoing::Offer(offer) => {
                let customer = self
                    .lock()
                    .get(tenant)
                    .and_then(|t| t.contacts.get(&offer.contact).cloned());
                let context = match customer {
                    Some((customer, channel)) => {
                        self.backbone.journey_of(tenant, &customer)?.map(|journey| {
                            let now = Timestamp::now();
                            let policy = self.backbone.policy(tenant);
                            let answer =
                                rezef_events::resume::resume(&journey, channel, now, policy, None);
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
        };
        Ok(AgentSessionEvent { event: Some(event) })
    }

    /// Withdraws expired offers and dispatches, for every tenant, at each deadline, until
    /// the server shuts down.
    pub fn spawn_clock(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let desk = self.clone();
        tokio::spawn(
            async move {
                loop {
                    let now = Timestamp::now();
                    let next = desk
                        .lock()
                        .values()
                        .filter_map(|t| t.engine.next_deadline(now))
                        .min();
                    let wait = next
                        .map_or(Duration::from_secs(1), |at| at.since(now))
                        .min(Duration::from_secs(1));
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        () = desk.wake.notified() => {}
                        () = desk.backbone.closed() => return,
                    }
                    let now = Timestamp::now();
                    let tenants: Vec<TenantId> = desk.lock().keys().cloned().collect();
                    for tenant in tenants {
                        let effects = desk.run(&tenant, |t| Ok(t.tick(&tenant, now)));
                        if effects.as_ref().is_ok_and(|e| !e.messages.is_empty()) {
                            desk.changes.send_modify(|n| *n += 1);
                        }
                        if let Ok(effects) = effects
                            && let Err(error) = desk.apply(&tenant, effects).await
                        {
                            warn!(%tenant, %error, "routing effects failed");
                        }
                    }
                }
            }
            .instrument(info_span!("routing_clock")),
        )
    }
}

impl Tenant {
    fn new(engine: Engine) -> Self {
        Self {
            engine,
            sessions: HashMap::new(),
            contacts: HashMap::new(),
        }
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

    /// An event about a routed contact (offered, assigned, queued).
    pub fn contact_event(
        &self,
        tenant: &TenantId,
        contact: &InteractionId,
        payload: Payload,
    ) -> Option<Event> {
        let (customer, channel) = self.contacts.get(contact)?;
        let mut event = Backbone::own_event(tenant, customer, Some(*channel), SOURCE, payload);
        event.interaction_id = Some(contact.clone());
        Some(event)
    }

    /// An agent's presence as an event (agent events concern no customer).
    pub fn presence_event(
        tenant: &TenantId,
        agent: &AgentId,
        presence: Presence,
        why: &str,
    ) -> Event {
        let placeholder = CustomerId::new("agent").expect("a valid id");
        let payload = Payload::AgentPresenceChanged {
            agent_id: agent.clone(),
            presence,
            custom_status: why.to_owned(),
        };
        let mut event = Backbone::own_event(tenant, &placeholder, None, SOURCE, payload);
        event.customer = None;
        event
    }

    /// Offers just made: a `ContactOffered` event and a message for each.
    pub fn offered(&self, tenant: &TenantId, offers: Vec<Offer>, effects: &mut Effects) {
        for offer in offers {
            let payload = Payload::ContactOffered {
                agent_id: offer.agent.clone(),
                queue_id: offer.queue.clone(),
            };
            effects
                .events
                .extend(self.contact_event(tenant, &offer.contact, payload));
            effects
                .messages
                .push((offer.agent.clone(), Outgoing::Offer(offer)));
        }
    }

    /// Expired offers withdrawn (and agents set away for missing too many), then a dispatch.
    pub fn tick(&mut self, tenant: &TenantId, now: Timestamp) -> Effects {
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
                ));
                effects.messages.push((
                    agent,
                    Outgoing::Presence(presence, "too many missed offers"),
                ));
            }
        }
        let offers = self.engine.dispatch(now);
        self.offered(tenant, offers, &mut effects);
        effects
    }
}
