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

use super::state::{Aside, State, WaitKey, remember};
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
        if self.hand_to_consulted(contact, from, &target, now) {
            return Ok(None);
        }
        let seq = self.held_by(contact, from)?;
        let holder = self.agent_index(from)?;
        let held = &self.contacts[&seq];
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
                contact.waiting_since = now;
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
                    return Ok(Some(self.aside(seq, to, false, now)));
                } else {
                    self.release(seq, holder, now);
                    let contact = self.contacts.get_mut(&seq).expect("looked up above");
                    contact.declined_by.insert(from.clone());
                    contact.waiting_since = now;
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
        let aside = self
            .contacts
            .get(seq)?
            .aside
            .filter(|aside| !aside.consult)?;
        self.end_offer(aside.offer?, super::state::Ended::Withdrawn)
    }

    /// `from`, who holds `contact`, asks `to` (available, with room on its channel) to
    /// consult: `to` is offered it, and accepting joins `from`, who keeps the contact. The
    /// consult ends with [`Engine::end_consult`], or becomes a transfer to `to`
    /// ([`Engine::transfer`]). Returns the offer.
    pub fn consult(
        &mut self,
        contact: &InteractionId,
        from: &AgentId,
        to: &AgentId,
        now: Timestamp,
    ) -> Result<OfferId, RoutingError> {
        let seq = self.held_by(contact, from)?;
        let to_index = self.agent_index(to)?;
        let channel = self.contacts[&seq].channel;
        let free = self
            .free
            .get(&channel)
            .is_some_and(|f| f.contains(to_index));
        if self.agent_index(from)? == to_index || !free {
            return Err(RoutingError::AgentUnavailable(to.clone()));
        }
        Ok(self.aside(seq, to_index, true, now))
    }

    /// The consult of `contact` ends (asked by either agent), or its offer is withdrawn if
    /// not yet accepted. Returns the agent consulted, whose capacity is free again.
    pub fn end_consult(
        &mut self,
        contact: &InteractionId,
        by: &AgentId,
        now: Timestamp,
    ) -> Result<AgentId, RoutingError> {
        let no_consult = || RoutingError::NoConsult(contact.clone());
        let seq = *self.contact_index.get(contact).ok_or_else(no_consult)?;
        let held = &self.contacts[&seq];
        let (Some(aside), State::Assigned { agent: holder, .. }) = (held.aside, held.state) else {
            return Err(no_consult());
        };
        let by = self.agent_index(by)?;
        if !aside.consult || (by != holder && by != aside.agent) {
            return Err(no_consult());
        }
        let consulted = self.agents[aside.agent].profile.id.clone();
        match aside.offer {
            Some(offer) => {
                self.end_offer(offer, super::state::Ended::Withdrawn);
            }
            None => {
                self.contacts.get_mut(&seq).expect("looked up above").aside = None;
                self.free_agent(aside.agent, contact, now);
            }
        }
        Ok(consulted)
    }

    /// The agent consulted on the contact, once they accepted.
    pub fn consulting(&self, contact: &InteractionId) -> Option<&AgentId> {
        let aside = self.contacts.get(self.contact_index.get(contact)?)?.aside?;
        (aside.consult && aside.offer.is_none()).then(|| &self.agents[aside.agent].profile.id)
    }

    /// Consults the agent was in end (they left).
    pub(super) fn end_consults_of(&mut self, index: usize, now: Timestamp) {
        let ended: Vec<(u64, InteractionId)> = self.agents[index]
            .work
            .keys()
            .filter_map(|id| {
                let seq = *self.contact_index.get(id)?;
                let aside = self.contacts.get(&seq)?.aside?;
                (aside.consult && aside.agent == index && aside.offer.is_none())
                    .then(|| (seq, id.clone()))
            })
            .collect();
        for (seq, id) in ended {
            self.contacts.get_mut(&seq).expect("listed above").aside = None;
            self.free_agent(index, &id, now);
        }
    }

    /// A transfer to the agent `from` consults with: the contact moves to them now (their
    /// capacity is held already). Whether it was that.
    fn hand_to_consulted(
        &mut self,
        contact: &InteractionId,
        from: &AgentId,
        target: &TransferTarget,
        now: Timestamp,
    ) -> bool {
        let TransferTarget::Agent { agent: to, .. } = target else {
            return false;
        };
        let (Some(seq), Some(holder), Some(to)) = (
            self.contact_index.get(contact).copied(),
            self.agent_index.get(from).copied(),
            self.agent_index.get(to).copied(),
        ) else {
            return false;
        };
        let held = &self.contacts[&seq];
        let consulting = held
            .aside
            .is_some_and(|aside| aside.consult && aside.offer.is_none() && aside.agent == to);
        if !consulting || !matches!(held.state, State::Assigned { agent, .. } if agent == holder) {
            return false;
        }
        self.release(seq, holder, now);
        let contact = self.contacts.get_mut(&seq).expect("looked up above");
        contact.aside = None;
        contact.state = State::Assigned {
            agent: to,
            since: now,
        };
        true
    }

    /// Offers the assigned contact to another agent while its agent keeps it.
    fn aside(&mut self, seq: u64, agent: usize, consult: bool, now: Timestamp) -> OfferId {
        let offer = self.make_offer(seq, agent, now);
        self.contacts
            .get_mut(&seq)
            .expect("an assigned contact")
            .aside = Some(Aside {
            agent,
            offer: Some(offer),
            consult,
        });
        offer
    }

    /// The contact's sequence number, if `agent` holds it with nobody else drawn in.
    fn held_by(&self, contact: &InteractionId, agent: &AgentId) -> Result<u64, RoutingError> {
        let seq = self
            .contact_index
            .get(contact)
            .copied()
            .ok_or_else(|| RoutingError::UnknownContact(contact.clone()))?;
        let holder = self.agent_index(agent)?;
        let held = &self.contacts[&seq];
        if !matches!(held.state, State::Assigned { agent, .. } if agent == holder) {
            return Err(RoutingError::NotAssigned {
                contact: contact.clone(),
                agent: agent.clone(),
            });
        }
        if held.aside.is_some() {
            return Err(RoutingError::TransferPending(contact.clone()));
        }
        Ok(seq)
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
