//! What the engine records of a choice among agents (`rezef_events::explained`): the agents
//! it looked at as they were, bounded, each with its verdict from [`crate::choice`].

use std::collections::BTreeMap;

use rezef_events::explained::{AgentSeen, Explanation, MAX_LISTED, Verdict};
use rezef_events::{AgentId, Timestamp};

use super::Engine;
use crate::agent_set::AgentSet;
use crate::choice::{self, Situation};
use crate::config::Strategy;
use crate::expr::{Expr, Value};

impl Engine {
    /// What the engine sees of contact `seq`'s choice at `now`, its candidates `ranked`:
    /// the ranked agents first, then its preferred agent, then those who declined it or let
    /// its offer expire, then the others free on its channel, [`MAX_LISTED`] at most, all
    /// logged in; the others counted.
    pub(super) fn explanation(&self, seq: u64, ranked: &[usize], now: Timestamp) -> Explanation {
        let contact = &self.contacts[&seq];
        let step = self.step_of(contact, now);
        let queue = &self.routing.queues[contact.queue];
        let pool = &self.pools.pools[self.pools.pool_of(contact.queue, step, contact.rule)];
        let rule = pool
            .rule
            .and_then(|r| self.routing.rules[r].requirements.as_ref());
        let requirements: Vec<&Expr> = queue.steps[step].requirements.iter().chain(rule).collect();
        let preferred = self.affinity(contact, step, now);
        let last_served = self.round_robin[contact.queue]
            .clone()
            .filter(|_| queue.strategy == Strategy::RoundRobin);

        // Listed: the agents the choice is about: the ranked, the preferred, those who turned
        // this contact down, and the others free on its channel who were not ranked (the
        // "why not her, she was free" of an audit). Never a walk over everyone logged in:
        // busy agents are counted from the sets, so a route under load lists next to nobody.
        let index = |agent: &AgentId| self.agent_index.get(agent).copied();
        let preferred_index = preferred.as_ref().and_then(index);
        let turned_down = (contact.declined_by.iter())
            .chain(&contact.missed_by)
            .filter_map(index);
        let free = (self.free.get(&contact.channel).into_iter()).flat_map(AgentSet::iter);
        let mut listed: Vec<usize> = Vec::with_capacity(MAX_LISTED);
        for agent in (ranked.iter().copied())
            .chain(preferred_index)
            .chain(turned_down)
            .chain(free)
            .filter(|agent| self.online.contains(*agent))
        {
            if listed.len() == MAX_LISTED {
                break;
            }
            if !listed.contains(&agent) {
                listed.push(agent);
            }
        }
        let online = self.online.len();
        let qualified = self.online.count_common(&pool.qualified);
        let listed_qualified = listed
            .iter()
            .filter(|a| pool.qualified.contains(**a))
            .count();
        let unlisted_qualified = qualified.saturating_sub(listed_qualified);
        let unlisted_unqualified =
            (online - qualified).saturating_sub(listed.len() - listed_qualified);

        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let mut agents: Vec<AgentSeen> = listed
            .iter()
            .map(|index| {
                let agent = &self.agents[*index];
                let profile = &agent.profile;
                AgentSeen {
                    agent_id: profile.id.clone(),
                    skills: profile.skills.clone(),
                    languages: profile.languages.clone(),
                    team: profile.team.clone(),
                    site: profile.site.clone(),
                    presence: agent.presence,
                    capacity: profile.capacity.get(&contact.channel).copied().unwrap_or(0),
                    max_load: profile.max_load,
                    on_channel: count(
                        agent
                            .work
                            .values()
                            .filter(|c| **c == contact.channel)
                            .count(),
                    ),
                    load: count(agent.work.len()),
                    idle_since: agent.idle_since,
                    declined: contact.declined_by.contains(&profile.id),
                    missed: contact.missed_by.contains(&profile.id),
                    verdict: Verdict::Held,
                }
            })
            .collect();
        let attributes: Vec<&BTreeMap<String, Value>> =
            listed.iter().map(|a| &self.agents[*a].attributes).collect();
        let language = contact
            .request
            .language
            .as_deref()
            .filter(|_| pool.language);
        let situation = Situation {
            strategy: queue.strategy,
            skill: queue.skill.as_deref(),
            requirements: &requirements,
            contact: &contact.attributes,
            language,
            preferred: preferred.as_ref(),
            last_served: last_served.as_ref(),
            held: contact.held.is_some(),
        };
        let verdicts = choice::verdicts(&situation, &agents, &attributes);
        for (agent, verdict) in agents.iter_mut().zip(verdicts) {
            agent.verdict = verdict;
        }
        Explanation {
            strategy: queue.strategy.name().to_owned(),
            skill: queue.skill.clone(),
            requirements: requirements.iter().map(|e| e.source().to_owned()).collect(),
            language: language.map(str::to_owned),
            preferred_agent: preferred,
            last_served,
            held_until: contact.held,
            agents,
            unlisted_qualified: count(unlisted_qualified),
            unlisted_unqualified: count(unlisted_unqualified),
            offline: count(self.agents.len().saturating_sub(online)),
            taken_ahead: Vec::new(),
            contacts_ahead: None,
            base_priority: contact.base_priority,
            ageing_per_minute: self.routing.priority.ageing_per_minute,
        }
    }
}
