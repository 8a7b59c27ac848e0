//! Pools: the agents qualified for each queue's escalation step (and for each rule that adds
//! requirements of its own), worked out once per agent and configuration rather than on
//! every decision, with the contacts waiting at that step.
//!
//! A requirement that mentions the contact (`skills HAS contact.intent`) cannot be decided
//! without the contact: its pool admits every agent and the requirement is checked for
//! each pair when candidates are chosen.

use std::collections::{BTreeMap, BTreeSet};

use super::state::{AgentView, Slot, WaitKey};
use crate::agent_set::AgentSet;
use crate::config::Routing;
use crate::expr::{Expr, Value};

/// The agents who may serve one step of one queue, with the contacts waiting there.
#[derive(Debug, Clone)]
pub(super) struct Pool {
    pub queue: usize,
    pub step: usize,
    /// A rule whose own requirements apply on top of the step's.
    pub rule: Option<usize>,
    /// Agents meeting the requirements (those not decided without the contact: everyone).
    pub qualified: AgentSet,
    /// The requirements mention the contact: check them per agent and contact.
    pub per_contact: bool,
    /// The agent must speak the contact's language.
    pub language: bool,
    /// Waiting contacts by channel and language, in serving order.
    pub waiting: BTreeMap<Slot, BTreeSet<WaitKey>>,
}

#[derive(Debug, Clone)]
pub(super) struct Pools {
    pub pools: Vec<Pool>,
    /// `[queue][step]` → pool, for contacts whose rule adds no requirements.
    by_queue: Vec<Vec<usize>>,
    /// `[rule][step]` → pool, for rules with requirements.
    by_rule: Vec<Option<Vec<usize>>>,
    /// Per queue, the agents who meet some step: those staffed for it.
    pub staff: Vec<AgentSet>,
}

const NO_CONTACT: &BTreeMap<String, Value> = &BTreeMap::new();

/// Whether an agent meets `requirements` as far as can be told without the contact.
fn admits(requirements: Option<&Expr>, agent: &BTreeMap<String, Value>) -> bool {
    requirements.is_none_or(|e| {
        e.refers_to("contact")
            || e.matches(&AgentView {
                agent,
                contact: NO_CONTACT,
            })
    })
}

fn mentions_contact(requirements: Option<&Expr>) -> bool {
    requirements.is_some_and(|e| e.refers_to("contact"))
}

impl Pools {
    pub fn new(routing: &Routing) -> Self {
        let mut pools = Vec::new();
        let mut add_steps = |queue: usize, rule: Option<usize>| -> Vec<usize> {
            let config = &routing.queues[queue];
            let rule_requirements = rule.and_then(|r| routing.rules[r].requirements.as_ref());
            config
                .steps
                .iter()
                .enumerate()
                .map(|(step, s)| {
                    pools.push(Pool {
                        queue,
                        step,
                        rule,
                        qualified: AgentSet::default(),
                        per_contact: mentions_contact(s.requirements.as_ref())
                            || mentions_contact(rule_requirements),
                        language: config.require_language
                            && !config.steps[..=step].iter().any(|s| s.drop_language),
                        waiting: BTreeMap::new(),
                    });
                    pools.len() - 1
                })
                .collect()
        };
        let by_queue = (0..routing.queues.len())
            .map(|q| add_steps(q, None))
            .collect();
        let by_rule = routing
            .rules
            .iter()
            .enumerate()
            .map(|(r, rule)| {
                rule.requirements
                    .as_ref()
                    .map(|_| add_steps(rule.queue, Some(r)))
            })
            .collect();
        Self {
            pools,
            by_queue,
            by_rule,
            staff: vec![AgentSet::default(); routing.queues.len()],
        }
    }

    /// The pool of a contact of `queue` (sent there by `rule`) at `step`.
    pub fn pool_of(&self, queue: usize, step: usize, rule: Option<usize>) -> usize {
        rule.and_then(|r| self.by_rule.get(r)?.as_ref())
            .filter(|steps| self.pools[steps[step]].queue == queue)
            .unwrap_or(&self.by_queue[queue])[step]
    }

    /// Enters agent `agent` (its attributes `attributes`) in the pools it qualifies for,
    /// leaving the others; returns the pools it is in.
    pub fn admit(
        &mut self,
        routing: &Routing,
        agent: usize,
        attributes: &BTreeMap<String, Value>,
    ) -> Vec<usize> {
        let steps: Vec<Vec<bool>> = routing
            .queues
            .iter()
            .map(|q| {
                q.steps
                    .iter()
                    .map(|s| admits(s.requirements.as_ref(), attributes))
                    .collect()
            })
            .collect();
        let rules: Vec<bool> = routing
            .rules
            .iter()
            .map(|r| admits(r.requirements.as_ref(), attributes))
            .collect();
        for (queue, staff) in self.staff.iter_mut().enumerate() {
            staff.set(agent, steps[queue].iter().any(|ok| *ok));
        }
        let mut member_of = Vec::new();
        for (index, pool) in self.pools.iter_mut().enumerate() {
            let member = steps[pool.queue][pool.step] && pool.rule.is_none_or(|r| rules[r]);
            pool.qualified.set(agent, member);
            if member {
                member_of.push(index);
            }
        }
        member_of
    }
}
