//! An agent consults another while keeping the customer (`consult` in `AgentSession`): the
//! other agent is offered the contact with its context, and accepting joins them; the consult
//! ends when either agent ends it or the other agent's session ends, or becomes a transfer to
//! that agent. The engine holds the other agent's line (`rezef_routing::Engine::consult`);
//! here both sessions are told when it starts and ends. Consults are not recorded in the log:
//! the event model has no fact for them yet.

use rezef_events::{AgentId, InteractionId, TenantId, Timestamp};
use rezef_proto::v1::agent_session_event as out;
use rezef_proto::v1::agent_session_request::{Consult, EndConsult};
use rezef_routing::Offer;

use super::desk::{Effects, Outgoing, Tenant};
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
        let violations = check.into_violations();
        let (Some(contact), Some(to), true) = (contact, to, violations.is_empty()) else {
            return Err(Error::InvalidArgument(violations));
        };
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
        let from = match pending {
            Some(offer) => {
                let asked = self.warm.remove(&offer.id);
                effects
                    .messages
                    .push((consulted.clone(), Outgoing::Withdrawn(offer, CONSULT_ENDED)));
                asked.map(|a| a.from)
            }
            None => {
                let consulting = self.consults.remove(&contact);
                if let Some(consulting) = &consulting {
                    tell(effects, &consulted, &consulting.from, &contact, false);
                }
                consulting.map(|c| c.from)
            }
        };
        if let Some(from) = from {
            tell(effects, &from, &consulted, &contact, false);
        }
        Ok(())
    }

    /// The other agent accepted: both are told, the consult is under way.
    pub(super) fn consult_started(&mut self, asked: Asked, offer: &Offer, effects: &mut Effects) {
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

    /// The agent who kept the contact transferred it to the one consulted: it is theirs
    /// now, and both are told the consult is over.
    pub(super) fn consult_taken_over(
        &mut self,
        tenant: &TenantId,
        consulting: Consulting,
        now: Timestamp,
        effects: &mut Effects,
    ) {
        let contact = consulting.offer.contact.clone();
        let to = consulting.offer.agent.clone();
        tell(effects, &consulting.from, &to, &contact, false);
        tell(effects, &to, &consulting.from, &contact, false);
        self.assigned(tenant, consulting.offer, now, effects);
    }

    /// Consults the engine ended by itself (the agent consulted left): both are told.
    pub(super) fn settle_consults(&mut self, effects: &mut Effects) {
        let ended: Vec<InteractionId> = self
            .consults
            .iter()
            .filter(|(contact, c)| self.engine.consulting(contact) != Some(&c.offer.agent))
            .map(|(contact, _)| contact.clone())
            .collect();
        for contact in ended {
            if let Some(consulting) = self.consults.remove(&contact) {
                let to = &consulting.offer.agent;
                tell(effects, &consulting.from, to, &contact, false);
                tell(effects, to, &consulting.from, &contact, false);
            }
        }
    }
}
