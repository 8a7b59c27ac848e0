//! An agent consults another while keeping the customer (`consult` in `AgentSession`): the
//! other agent is offered the contact with its context, and accepting joins them; the consult
//! ends when either agent ends it or the other agent's session ends, or becomes a transfer to
//! that agent. The engine holds the other agent's line (`rezef_routing::Engine::consult`);
//! here both sessions are told when it starts and ends, and the log records it
//! (`ConsultStarted` when the other agent accepts, `ConsultEnded` however it ends), so the
//! journey shows the customer on hold (`CONSULTING`) and an audit replays who was consulted.

use rezef_events::{AgentId, InteractionId, Payload, TenantId, Timestamp};
use rezef_proto::v1::agent_session_event as out;
use rezef_proto::v1::agent_session_request::{Consult, EndConsult};
use rezef_routing::Offer;

use super::desk::{Effects, Outgoing};
use super::tenant::Tenant;
use super::transfer::Asked;
use crate::convert::Check;
use crate::{Error, Result};

/// Why the offer of a consult is withdrawn when the consult is ended before the accept.
const CONSULT_ENDED: &str = "the consult ended";

/// A consult under way: who keeps the contact, and the offer the other agent accepted.
#[derive(Debug, Clone)]
pub struct Consulting {
    from: AgentId,
    offer: Offer,
}

/// A consult started or ended, for one of its agents.
#[derive(Debug, Clone)]
pub struct Changed {
    contact: InteractionId,
    with: AgentId,
    active: bool,
}

impl From<Changed> for out::ConsultChanged {
    fn from(changed: Changed) -> Self {
        Self {
            interaction_id: changed.contact.to_string(),
            with_agent_id: changed.with.to_string(),
            active: changed.active,
        }
    }
}

/// Tells `to` that the consult with `with` on `contact` started or ended.
fn tell(
    effects: &mut Effects,
    to: &AgentId,
    with: &AgentId,
    contact: &InteractionId,
    active: bool,
) {
    let changed = Changed {
        contact: contact.clone(),
        with: with.clone(),
        active,
    };
    effects
        .messages
        .push((to.clone(), Outgoing::Consult(changed)));
}

/// Tells both agents of a consult under way that it is over.
fn tell_consult_end(consulting: &Consulting, effects: &mut Effects) {
    let (contact, to) = (&consulting.offer.contact, &consulting.offer.agent);
    tell(effects, &consulting.from, to, contact, false);
    tell(effects, to, &consulting.from, contact, false);
}

impl Tenant {
    /// `agent` asks another agent to consult on a contact they hold.
    pub(super) fn consult(
        &mut self,
        agent: &AgentId,
        request: Consult,
        now: Timestamp,
    ) -> Result<()> {
        let mut check = Check::default();
        let contact = check.id(
            "consult.interaction_id",
            request.interaction_id,
            true,
            InteractionId::new,
        );
        let to = check.id(
            "consult.to_agent_id",
            request.to_agent_id,
            true,
            AgentId::new,
        );
        if to.as_ref() == Some(agent) {
            check.fail("consult.to_agent_id", "is the agent who holds the contact");
        }
        let (contact, to) = check.finish(|| Some((contact?, to?)))?;
        let offer = self.engine.consult(&contact, agent, &to, now)?;
        self.transferring.insert(contact.clone());
        let asked = Asked {
            from: agent.clone(),
            contact,
            reason: String::new(),
            to: Some(to),
            consult: true,
        };
        self.warm.insert(offer, asked);
        Ok(())
    }

    /// Either agent in a consult ends it (before the accept: the offer is withdrawn).
    pub(super) fn end_consult(
        &mut self,
        tenant: &TenantId,
        agent: &AgentId,
        request: EndConsult,
        now: Timestamp,
        effects: &mut Effects,
    ) -> Result<()> {
        let contact = InteractionId::new(request.interaction_id)
            .map_err(|reason| Error::invalid("end_consult.interaction_id", reason))?;
        let pending = self
            .warm
            .iter()
            .find(|(_, asked)| asked.consult && asked.contact == contact)
            .and_then(|(id, _)| self.engine.outstanding(*id).cloned());
        let consulted = self.engine.end_consult(&contact, agent, now)?;
        match pending {
            Some(offer) => {
                if let Some(asked) = self.warm.remove(&offer.id) {
                    tell(effects, &asked.from, &consulted, &contact, false);
                }
                effects
                    .messages
                    .push((consulted, Outgoing::Withdrawn(offer, CONSULT_ENDED)));
            }
            None => {
                if let Some(consulting) = self.consults.remove(&contact) {
                    self.consult_over(tenant, &consulting, now, effects);
                }
            }
        }
        Ok(())
    }

    /// A consult under way is over: `ConsultEnded` is logged, both agents are told.
    fn consult_over(
        &self,
        tenant: &TenantId,
        consulting: &Consulting,
        now: Timestamp,
        effects: &mut Effects,
    ) {
        self.log_consult_end(tenant, consulting, now, effects);
        tell_consult_end(consulting, effects);
    }

    /// The `ConsultEnded` event of a consult under way.
    pub(super) fn log_consult_end(
        &self,
        tenant: &TenantId,
        consulting: &Consulting,
        now: Timestamp,
        effects: &mut Effects,
    ) {
        let ended = Payload::ConsultEnded {
            agent_id: consulting.from.clone(),
            consulted_agent_id: consulting.offer.agent.clone(),
        };
        let contact = &consulting.offer.contact;
        effects
            .events
            .extend(self.contact_event(tenant, contact, ended, now));
    }

    /// The other agent accepted: `ConsultStarted` is logged, both are told, the consult is
    /// under way.
    pub(super) fn consult_started(
        &mut self,
        tenant: &TenantId,
        asked: Asked,
        offer: &Offer,
        now: Timestamp,
        effects: &mut Effects,
    ) {
        let started = Payload::ConsultStarted {
            agent_id: asked.from.clone(),
            consulted_agent_id: offer.agent.clone(),
        };
        effects
            .events
            .extend(self.contact_event(tenant, &asked.contact, started, now));
        tell(effects, &asked.from, &offer.agent, &asked.contact, true);
        tell(effects, &offer.agent, &asked.from, &asked.contact, true);
        let consulting = Consulting {
            from: asked.from,
            offer: offer.clone(),
        };
        self.consults.insert(asked.contact, consulting);
    }

    /// The other agent declined, missed or lost the offer: the agent who asked is told.
    pub(super) fn consult_not_started(&mut self, asked: Asked, effects: &mut Effects) {
        if let Some(to) = &asked.to {
            tell(effects, &asked.from, to, &asked.contact, false);
        }
    }

    /// The agent who kept the contact transferred it to the one consulted (its end logged
    /// first, [`Tenant::log_consult_end`]): both are told the consult is over, and the
    /// contact is theirs now.
    pub(super) fn consult_taken_over(
        &mut self,
        tenant: &TenantId,
        consulting: Consulting,
        now: Timestamp,
        effects: &mut Effects,
    ) {
        tell_consult_end(&consulting, effects);
        self.assigned(tenant, consulting.offer, now, effects);
    }

    /// Consults the engine ended by itself (the agent consulted left): over.
    pub(super) fn settle_consults(
        &mut self,
        tenant: &TenantId,
        now: Timestamp,
        effects: &mut Effects,
    ) {
        let ended: Vec<InteractionId> = self
            .consults
            .iter()
            .filter(|(contact, c)| self.engine.consulting(contact) != Some(&c.offer.agent))
            .map(|(contact, _)| contact.clone())
            .collect();
        for contact in ended {
            if let Some(consulting) = self.consults.remove(&contact) {
                self.consult_over(tenant, &consulting, now, effects);
            }
        }
    }
}
