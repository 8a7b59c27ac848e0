//! Matching waiting contacts with free agents, from what changed since the last settling.
//!
//! The engine keeps one invariant between settlings: no placed waiting contact has a free
//! agent who may take it. So only two things can make a match: a contact placed anew (new,
//! back from an offer, at its next escalation step, out of affinity) and an agent who
//! freed up (available, work done, an offer ended, a new profile). Settling serves them in
//! the order a full pass over every waiting contact would, highest priority first, each to
//! its best agent, at the cost of the few contacts and agents concerned.

use std::collections::BTreeSet;

use rezef_events::event::Presence;
use rezef_events::{AgentId, Timestamp};

use super::Engine;
use super::pools::Pool;
use super::state::{AgentView, Contact, Place, State, WaitKey};
use crate::agent_set::AgentSet;
use crate::choice::{Standing, order};

impl Engine {
    /// Takes a contact out of its pool (or its agent's affinity line) and its timer.
    pub(super) fn unplace(&mut self, seq: u64) {
        let Some(contact) = self.contacts.get_mut(&seq) else {
            return;
        };
        match std::mem::replace(&mut contact.place, Place::Nowhere) {
            Place::Nowhere => {}
            Place::Agent(agent) => {
                self.agents[agent].affine.remove(&contact.key);
            }
            Place::Pool(pool, slot) => {
                let waiting = &mut self.pools.pools[pool].waiting;
                if let Some(line) = waiting.get_mut(&slot) {
                    line.remove(&contact.key);
                    if line.is_empty() {
                        waiting.remove(&slot);
                    }
                }
            }
        }
        if let Some(at) = contact.timer.take() {
            self.timers.remove(&(at, seq));
        }
    }

    /// Places a waiting contact for `now`: with its preferred agent while affinity holds,
    /// otherwise in the pool of its queue's current step; sets its next timer.
    fn place(&mut self, seq: u64, now: rezef_events::Timestamp) {
        let Some(contact) = self.contacts.get(&seq) else {
            return;
        };
        if contact.state != State::Waiting {
            return;
        }
        // A scheduled callback: held until its time, then in its queue's line like any other.
        if let Some(at) = contact.held {
            let contact = self.contacts.get_mut(&seq).expect("looked up above");
            if now < at {
                self.timers.insert((at, seq));
                contact.timer = Some(at);
                return;
            }
            contact.held = None;
            self.queue_waiting[contact.queue].insert(contact.key);
            self.queue_arrivals[contact.queue].insert((contact.arrived_at, seq));
        }
        let contact = &self.contacts[&seq];
        let step = self.step_of(contact, now);
        let queue = &self.routing.queues[contact.queue];
        let affinity_ends = contact.queued_at.plus(self.routing.offers.affinity_timeout);
        let preferred = self.affinity(contact, step, now);
        let next_step = queue
            .steps
            .get(step + 1)
            .map(|s| contact.queued_at.plus(s.after));
        let timer = next_step
            .into_iter()
            .chain(preferred.as_ref().map(|_| affinity_ends))
            .min();
        let pool = self.pools.pool_of(contact.queue, step, contact.rule);
        // The preferred agent alone, while they are available or about to be, if they meet
        // this step's requirements: affinity chooses among the qualified, never outside.
        let with_agent = preferred
            .as_ref()
            .and_then(|agent| self.agent_index.get(agent).copied())
            .filter(|agent| {
                matches!(
                    self.agents[*agent].presence,
                    Presence::Available | Presence::Busy | Presence::AfterContactWork
                ) && self.qualifies(pool, contact, *agent)
            });
        let place = match with_agent {
            Some(agent) => {
                self.agents[agent].affine.insert(contact.key);
                Place::Agent(agent)
            }
            None => {
                let pool_state = &mut self.pools.pools[pool];
                let slot = (
                    contact.channel,
                    contact.language.filter(|_| pool_state.language),
                );
                pool_state
                    .waiting
                    .entry(slot)
                    .or_default()
                    .insert(contact.key);
                Place::Pool(pool, slot)
            }
        };
        match (&preferred, &contact.request.preferred_agent) {
            (Some(agent), _) => {
                self.preferring
                    .entry(agent.clone())
                    .or_default()
                    .insert(seq);
            }
            (None, Some(agent)) => {
                if let Some(waiting) = self.preferring.get_mut(agent) {
                    waiting.remove(&seq);
                    if waiting.is_empty() {
                        self.preferring.remove(agent);
                    }
                }
            }
            (None, None) => {}
        }
        if let Some(at) = timer {
            self.timers.insert((at, seq));
        }
        self.just_placed.insert(contact.key);
        let contact = self.contacts.get_mut(&seq).expect("looked up above");
        contact.place = place;
        contact.timer = timer;
    }

    /// The agent the contact's affinity names while it holds: not past its window nor a
    /// step that drops it, and not declined.
    pub(super) fn affinity(
        &self,
        contact: &Contact,
        step: usize,
        now: Timestamp,
    ) -> Option<AgentId> {
        let queue = &self.routing.queues[contact.queue];
        let affinity_ends = contact.queued_at.plus(self.routing.offers.affinity_timeout);
        contact.request.preferred_agent.clone().filter(|agent| {
            !queue.steps[..=step].iter().any(|s| s.drop_affinity)
                && now < affinity_ends
                && !contact.declined_by.contains(agent)
        })
    }

    /// Places again the contacts whose timers fell due and those changes left unplaced.
    pub(super) fn place_all(&mut self, now: rezef_events::Timestamp) {
        while let Some((at, seq)) = self.timers.first().copied() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            if let Some(contact) = self.contacts.get_mut(&seq) {
                contact.timer = None;
            }
            self.unplaced.insert(seq);
        }
        for seq in std::mem::take(&mut self.unplaced) {
            self.unplace(seq);
            self.place(seq, now);
        }
    }

    /// Whether the agent may serve the contact in `pool`, presence and room aside: they meet
    /// the requirements and speak the contact's language where the pool needs it.
    fn qualifies(&self, pool: usize, contact: &Contact, agent: usize) -> bool {
        let pool = &self.pools.pools[pool];
        pool.qualified.contains(agent)
            && (!pool.language
                || contact
                    .language
                    .is_none_or(|language| self.speakers[language].contains(agent)))
            && (!pool.per_contact || self.requirements_hold(pool, contact, agent))
    }

    /// Whether the requirements that mention the contact hold for this agent.
    fn requirements_hold(&self, pool: &Pool, contact: &Contact, agent: usize) -> bool {
        let view = AgentView {
            agent: &self.agents[agent].attributes,
            contact: &contact.attributes,
        };
        let step = &self.routing.queues[pool.queue].steps[pool.step];
        let rule = pool
            .rule
            .and_then(|r| self.routing.rules[r].requirements.as_ref());
        step.requirements
            .iter()
            .chain(rule)
            .all(|e| e.matches(&view))
    }

    /// The free agents who may take the placed contact now, best first.
    pub(super) fn ranked(&self, seq: u64) -> Vec<usize> {
        let Some(contact) = self.contacts.get(&seq) else {
            return Vec::new();
        };
        let free = |agent: usize| {
            self.free
                .get(&contact.channel)
                .is_some_and(|f| f.contains(agent))
        };
        let (pool, slot) = match contact.place {
            Place::Nowhere => return Vec::new(),
            Place::Agent(agent) => return if free(agent) { vec![agent] } else { Vec::new() },
            Place::Pool(pool, slot) => (&self.pools.pools[pool], slot),
        };
        let Some(free) = self.free.get(&contact.channel) else {
            return Vec::new();
        };
        let mut sets: Vec<&AgentSet> = vec![&pool.qualified, free];
        if let Some(language) = slot.1 {
            sets.push(&self.speakers[language]);
        }
        let mut eligible: Vec<usize> = AgentSet::common(&sets)
            .into_iter()
            .filter(|a| !contact.declined_by.contains(&self.agents[*a].profile.id))
            .filter(|a| !pool.per_contact || self.requirements_hold(pool, contact, *a))
            .collect();
        let queue = &self.routing.queues[pool.queue];
        let skill = queue.skill.as_deref().unwrap_or_default();
        let last = self.round_robin[pool.queue].as_ref();
        order(queue.strategy, last, &mut eligible, |a| {
            let agent = &self.agents[*a];
            Standing {
                id: &agent.profile.id,
                idle_since: agent.idle_since,
                occupancy: agent.occupancy(),
                proficiency: agent.profile.skills.get(skill).copied().unwrap_or(0),
                missed: contact.missed_by.contains(&agent.profile.id),
            }
        });
        eligible
    }

    /// The first waiting contact the agent may take now, in serving order.
    fn first_for(&self, agent: usize) -> Option<WaitKey> {
        let entry = &self.agents[agent];
        if entry.presence != Presence::Available {
            return None;
        }
        let has_room = |channel| self.free.get(&channel).is_some_and(|f| f.contains(agent));
        let mut best = entry
            .affine
            .iter()
            .find(|key| has_room(self.contacts[&key.seq].channel))
            .copied();
        let channels: Vec<_> = entry
            .profile
            .capacity
            .keys()
            .copied()
            .filter(|c| has_room(*c))
            .collect();
        for pool in &entry.pools {
            let pool = &self.pools.pools[*pool];
            let languages = std::iter::once(None)
                .chain(entry.languages.iter().map(Some).filter(|_| pool.language));
            for language in languages {
                for channel in &channels {
                    let Some(line) = pool.waiting.get(&(*channel, language.copied())) else {
                        continue;
                    };
                    let found = line
                        .iter()
                        .take_while(|key| best.is_none_or(|b| **key < b))
                        .find(|key| {
                            let contact = &self.contacts[&key.seq];
                            !contact.declined_by.contains(&entry.profile.id)
                                && (!pool.per_contact
                                    || self.requirements_hold(pool, contact, agent))
                        });
                    if let Some(key) = found {
                        best = Some(*key);
                    }
                }
            }
        }
        best
    }

    /// Offers placed contacts to free agents until no match is left, highest priority
    /// first: of the contacts just placed and of those the freed agents may take, the
    /// first in serving order goes to its best agent, then the next.
    pub(super) fn match_up(&mut self, now: rezef_events::Timestamp) {
        let mut placed: BTreeSet<WaitKey> = BTreeSet::new();
        std::mem::swap(&mut placed, &mut self.just_placed);
        let mut freed = std::mem::take(&mut self.freed);
        loop {
            let mut best: Option<(WaitKey, usize)> = None;
            while let Some(key) = placed.first().copied() {
                match self.ranked(key.seq).first() {
                    Some(agent) => {
                        best = Some((key, *agent));
                        break;
                    }
                    None => {
                        placed.pop_first();
                    }
                }
            }
            freed.retain(|agent| match self.first_for(*agent) {
                Some(key) => {
                    if best.is_none_or(|(b, _)| key < b) {
                        best = Some((key, *agent));
                    }
                    true
                }
                None => false,
            });
            let Some((key, agent)) = best else {
                break;
            };
            let agent = self.ranked(key.seq).first().copied().unwrap_or(agent);
            placed.remove(&key);
            self.offer(key.seq, agent, now);
        }
    }
}
