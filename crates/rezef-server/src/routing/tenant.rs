//! One tenant's routing on a desk: its engine, the agent sessions connected, the contacts it
//! holds, and the events and messages its decisions lead to.

use std::collections::{HashMap, HashSet};

use rezef_events::event::Presence;
use rezef_events::{
    AgentId, Channel, CustomerId, Event, InteractionId, Payload, TenantId, Timestamp,
};
use rezef_routing::{Engine, Offer, OfferId};

use super::desk::{Effects, Outgoing, SOURCE, SessionSender};
use crate::own_event::OwnEvent;

/// One tenant's routing.
pub struct Tenant {
    pub engine: Engine,
    pub(super) sessions: HashMap<AgentId, SessionSender>,
    /// Whose contact each routed interaction is, and on which channel.
    pub(super) contacts: HashMap<InteractionId, (CustomerId, Channel)>,
    /// The engine's next deadline as of its last operation; the timer ticks the tenant then.
    pub(super) deadline: Option<Timestamp>,
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

impl std::fmt::Debug for Tenant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tenant")
            .field("sessions", &self.sessions.len())
            .field("contacts", &self.contacts.len())
            .finish_non_exhaustive()
    }
}

impl Tenant {
    pub(super) fn new(engine: Engine) -> Self {
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
    pub(super) fn note_deadline(&mut self, now: Timestamp) {
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
    pub(super) fn tick(&mut self, tenant: &TenantId, now: Timestamp) -> Effects {
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
