//! Agents hand contacts on from their desktop (`transfer` in `AgentSession`): blind or warm,
//! to another agent or to a queue. The engine moves the contact
//! (`rezef_routing::Engine::transfer`); here the transfer is recorded as a
//! `ContactTransferred` event when it happens (blind: at once; warm: when the other agent
//! accepts, just before their `ContactAssigned`), so the conversation's transfer count
//! follows, the other agent's offer carries the context as of the transfer, and the agent
//! who asked is told how it ended (`transfer_ended`).

use rezef_events::{AgentId, InteractionId, Payload, TenantId, Timestamp};
use rezef_proto::v1::agent_session_event as out;
use rezef_proto::v1::agent_session_request::Transfer;
use rezef_routing::{Offer, TransferTarget};

use super::desk::{Effects, Outgoing};
use super::tenant::Tenant;
use crate::convert::Check;
use crate::{Error, Result};

/// A transfer or consult an agent asked for (kept, when warm or a consult, until the other
/// agent answers).
#[derive(Debug, Clone)]
pub struct Asked {
    pub(super) from: AgentId,
    pub(super) contact: InteractionId,
    pub(super) reason: String,
    /// The agent asked, for a warm transfer or a consult.
    pub(super) to: Option<AgentId>,
    pub(super) consult: bool,
}

/// How a transfer ended, for the agent who asked for it.
#[derive(Debug, Clone)]
pub struct Ended {
    contact: InteractionId,
    transferred: bool,
    to_agent: Option<AgentId>,
    to_queue: String,
}

impl From<Ended> for out::TransferEnded {
    fn from(ended: Ended) -> Self {
        Self {
            interaction_id: ended.contact.to_string(),
            transferred: ended.transferred,
            to_agent_id: ended.to_agent.map(|a| a.to_string()).unwrap_or_default(),
            to_queue_id: ended.to_queue,
        }
    }
}

/// The request, validated: the contact, the target and the reason.
fn parse(agent: &AgentId, request: Transfer) -> Result<(InteractionId, TransferTarget, String)> {
    let mut check = Check::default();
    let named_agent = !request.to_agent_id.is_empty();
    let contact = check.id(
        "transfer.interaction_id",
        request.interaction_id,
        true,
        InteractionId::new,
    );
    let to_agent = check.id(
        "transfer.to_agent_id",
        request.to_agent_id,
        false,
        AgentId::new,
    );
    let to_queue = Some(request.to_queue_id).filter(|q| !q.is_empty());
    match (&to_agent, &to_queue) {
        (Some(_), Some(_)) => {
            check.fail("transfer.to_queue_id", "give an agent or a queue, not both")
        }
        (None, None) if !named_agent => {
            check.fail("transfer.to_agent_id", "an agent or a queue is required");
        }
        (Some(to), None) if to == agent => {
            check.fail("transfer.to_agent_id", "is the agent who holds the contact");
        }
        (None, Some(_)) if request.warm => {
            check.fail("transfer.warm", "a warm transfer goes to an agent");
        }
        _ => {}
    }
    let target = match (to_agent, to_queue) {
        (Some(agent), None) => Some(TransferTarget::Agent {
            agent,
            warm: request.warm,
        }),
        (None, Some(queue)) => Some(TransferTarget::Queue(queue)),
        _ => None,
    };
    (check.finish(|| Some((contact?, target?, request.reason)))).map_err(Error::from)
}

impl Tenant {
    /// `agent` transfers a contact they hold, as their session asked.
    pub(super) fn transfer(
        &mut self,
        tenant: &TenantId,
        agent: &AgentId,
        request: Transfer,
        now: Timestamp,
        effects: &mut Effects,
    ) -> Result<()> {
        let (contact, target, reason) = parse(agent, request)?;
        let warm = self.engine.transfer(&contact, agent, target.clone(), now)?;
        self.transferring.insert(contact.clone());
        let to = match &target {
            TransferTarget::Agent { agent, .. } => Some(agent.clone()),
            TransferTarget::Queue(_) => None,
        };
        // To the agent consulted: it moved at once.
        let consulted = self
            .consults
            .remove(&contact)
            .filter(|_| to.is_some() && self.engine.assigned_to(&contact) == to.as_ref());
        let asked = Asked {
            from: agent.clone(),
            contact,
            reason,
            to,
            consult: false,
        };
        if let Some(offer) = warm {
            self.warm.insert(offer, asked);
            return Ok(());
        }
        let to = match target {
            TransferTarget::Agent { agent: to, .. } => (Some(to), String::new()),
            TransferTarget::Queue(queue) => (None, queue),
        };
        let contact = asked.contact.clone();
        if let Some(consulted) = &consulted {
            self.log_consult_end(tenant, consulted, now, effects);
        }
        self.transferred(tenant, asked, to, now, effects);
        if let Some(consulted) = consulted {
            self.transferring.remove(&contact);
            self.consult_taken_over(tenant, consulted, now, effects);
        }
        Ok(())
    }

    /// The `ContactTransferred` event, and the agent who asked told it happened.
    pub(super) fn transferred(
        &self,
        tenant: &TenantId,
        asked: Asked,
        (to_agent, to_queue): (Option<AgentId>, String),
        now: Timestamp,
        effects: &mut Effects,
    ) {
        let payload = Payload::ContactTransferred {
            from_agent_id: Some(asked.from.clone()),
            to_agent_id: to_agent.clone(),
            to_queue_id: to_queue.clone(),
            reason: asked.reason,
        };
        effects
            .events
            .extend(self.contact_event(tenant, &asked.contact, payload, now));
        let ended = Ended {
            contact: asked.contact,
            transferred: true,
            to_agent,
            to_queue,
        };
        effects
            .messages
            .push((asked.from, Outgoing::TransferEnded(ended)));
    }

    /// An accepted offer: a warm transfer happens now (recorded before the assignment), a
    /// consult starts. Whether the accepting agent now holds the contact (not a consult).
    pub(super) fn accepted(
        &mut self,
        tenant: &TenantId,
        offer: &Offer,
        now: Timestamp,
        effects: &mut Effects,
    ) -> bool {
        match self.warm.remove(&offer.id) {
            Some(asked) if asked.consult => {
                self.consult_started(tenant, asked, offer, now, effects);
                false
            }
            Some(asked) => {
                let to = (Some(offer.agent.clone()), String::new());
                self.transferred(tenant, asked, to, now, effects);
                true
            }
            None => true,
        }
    }

    /// Warm transfers (and consults) whose offer ended without an accept: the contact stayed
    /// with its agent, who is told.
    pub(super) fn settle_transfers(&mut self, effects: &mut Effects) {
        let ended: Vec<_> = self
            .warm
            .keys()
            .filter(|id| self.engine.outstanding(**id).is_none())
            .copied()
            .collect();
        for id in ended {
            if let Some(asked) = self.warm.remove(&id) {
                if asked.consult {
                    self.consult_not_started(asked, effects);
                    continue;
                }
                let ended = Ended {
                    contact: asked.contact,
                    transferred: false,
                    to_agent: None,
                    to_queue: String::new(),
                };
                effects
                    .messages
                    .push((asked.from, Outgoing::TransferEnded(ended)));
            }
        }
    }
}
