//! An agent hands a contact they hold on: to a queue, or to a named agent; blind (the
//! contact leaves them at once) or warm (they keep it until the other agent accepts).
//!
//! A blind transfer to a queue makes the contact wait there like a new arrival of that queue
//! (its escalation steps start again) but with its original arrival, so its priority keeps the
//! time the customer has already waited; it is never offered back to the agent who sent it. A
//! transfer to an agent offers it to that agent only, who must be available with room on the
//! contact's channel now: the agent chose a person, not a pool, so queue requirements do not
//! apply. If a blind transfer's offer is declined or missed, the contact waits in its queue; if
//! a warm one's is, it simply stays with the agent who held it.

use rezef_events::{AgentId, InteractionId, Timestamp};

use super::state::{State, WaitKey, remember};
use super::{Engine, OfferId, RoutingError};

/// Where an agent sends a contact they hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferTarget {
    /// Blind, to the queue with this id.
    Queue(String),
    /// To this agent; `warm`: the sender keeps the contact until the agent accepts.
    Agent { agent: AgentId, warm: bool },
}

impl Engine {
    /// `from` hands `contact`, which they hold, to `target`. The offers it leads to come out
    /// of the next [`Engine::dispatch`]; a warm transfer's offer is returned.
    pub fn transfer(
        &mut self,
        contact: &InteractionId,
        from: &AgentId,
        target: TransferTarget,
        now: Timestamp,
    ) -> Result<Option<OfferId>, RoutingError> {
        let seq = self
            .contact_index
            .get(contact)
            .copied()
            .ok_or_else(|| RoutingError::UnknownContact(contact.clone()))?;
        let holder = self.agent_index(from)?;
        let held = &self.contacts[&seq];
        if !matches!(held.state, State::Assigned { agent, .. } if agent == holder) {
            return Err(RoutingError::NotAssigned {
                contact: contact.clone(),
                agent: from.clone(),
            });
        }
        if held.warm.is_some() {
            return Err(RoutingError::TransferPending(contact.clone()));
        }
        match target {
            TransferTarget::Queue(queue) => {
                let queue = self
                    .routing
                    .queue_index(&queue)
                    .ok_or(RoutingError::UnknownQueue(queue))?;
                self.release(seq, holder, now);
                let ageing = self.routing.priority.ageing_per_minute;
                let contact = self.contacts.get_mut(&seq).expect("looked up above");
                contact.request.preferred_agent = None;
                contact.declined_by.insert(from.clone());
                contact.queue = queue;
                contact.rule = None;
                contact.queued_at = now;
                contact.base_priority =
                    self.routing
                        .base_priority(&contact.request, queue, None, now);
                contact.key = WaitKey::new(contact.base_priority, ageing, contact.arrived_at, seq);
                self.wait_again(seq);
            }
            TransferTarget::Agent { agent, warm } => {
                let to = self.agent_index(&agent)?;
                let channel = held.channel;
                let free = self.free.get(&channel).is_some_and(|f| f.contains(to));
                if to == holder || !free {
                    return Err(RoutingError::AgentUnavailable(agent));
                }
                if warm {
                    let offer = self.make_offer(seq, to, now);
                    self.contacts.get_mut(&seq).expect("looked up above").warm = Some(offer);
                    return Ok(Some(offer));
                } else {
                    self.release(seq, holder, now);
                    self.contacts
                        .get_mut(&seq)
                        .expect("looked up above")
                        .declined_by
                        .insert(from.clone());
                    self.offer(seq, to, now);
                }
            }
        }
        Ok(None)
    }

    /// Withdraws the contact's pending warm transfer, if any (the customer left): the offer
    /// is gone, the contact stays with its agent. Returns the offer withdrawn.
    pub fn cancel_transfer(&mut self, contact: &InteractionId) -> Option<super::Offer> {
        let seq = self.contact_index.get(contact)?;
        let offer = self.contacts.get(seq)?.warm?;
        self.end_offer(offer, super::state::Ended::Withdrawn)
    }

    /// The agent who held the contact hands it on: their handling counts in the queue's
    /// handle time, their capacity is free again.
    pub(super) fn release(&mut self, seq: u64, holder: usize, now: Timestamp) {
        let contact = &self.contacts[&seq];
        if let State::Assigned { since, .. } = contact.state {
            remember(
                &mut self.history[contact.queue].handle_times,
                now.since(since),
            );
        }
        let id = contact.id.clone();
        self.free_agent(holder, &id, now);
    }
}
