//! The choice among agents for one contact, as a pure function of what the engine saw:
//! who may take it and in which order, and for every other agent the first reason not.
//!
//! The engine ranks with [`order`] (one ordering for live decisions and explanations); it
//! finds the eligible agents through its indexes (bitsets kept as agents come and go),
//! which [`verdicts`] states agent by agent. A decision records what the engine saw
//! ([`Explanation`]) with the verdicts; [`rerun`] runs [`verdicts`] again on it and says
//! what differs from what the engine did. Property tests hold the engine's candidates equal
//! to [`verdicts`] on a snapshot of its state.

use std::collections::BTreeMap;

use rezef_events::event::Presence;
use rezef_events::explained::{AgentSeen, Explanation, Verdict};
use rezef_events::language::spoken;
use rezef_events::{AgentId, Timestamp};

use crate::config::{AGENT_ATTRIBUTES, Strategy};
use crate::engine::{AgentProfile, AgentView};
use crate::expr::{Expr, Value};

/// What ranks an eligible agent.
#[derive(Debug, Clone, Copy)]
pub struct Standing<'a> {
    pub id: &'a AgentId,
    pub idle_since: Timestamp,
    /// Contacts held over the load limit.
    pub occupancy: f64,
    /// In the queue's `skill` (0: none).
    pub proficiency: u8,
    /// Let an offer of this contact expire.
    pub missed: bool,
}

/// Sorts eligible agents best first by `strategy` (ties by the longest idle, then the id);
/// `last_served` is where `round_robin` goes on from. Those who let an offer of the contact
/// expire come last: someone else first, but it is never stuck.
pub fn order<'s, T>(
    strategy: Strategy,
    last_served: Option<&AgentId>,
    agents: &mut [T],
    standing: impl Fn(&T) -> Standing<'s>,
) {
    let by = |a: &T, b: &T| (standing(a), standing(b));
    match strategy {
        Strategy::LongestIdle => agents.sort_by(|a, b| {
            let (a, b) = by(a, b);
            a.idle_since.cmp(&b.idle_since).then(a.id.cmp(b.id))
        }),
        Strategy::LeastOccupied => agents.sort_by(|a, b| {
            let (a, b) = by(a, b);
            (a.occupancy.total_cmp(&b.occupancy))
                .then(a.idle_since.cmp(&b.idle_since))
                .then(a.id.cmp(b.id))
        }),
        Strategy::HighestProficiency => agents.sort_by(|a, b| {
            let (a, b) = by(a, b);
            (b.proficiency.cmp(&a.proficiency))
                .then(a.idle_since.cmp(&b.idle_since))
                .then(a.id.cmp(b.id))
        }),
        Strategy::RoundRobin => {
            agents.sort_by(|a, b| standing(a).id.cmp(standing(b).id));
            if let Some(last) = last_served {
                let split = agents.partition_point(|a| standing(a).id <= last);
                agents.rotate_left(split);
            }
        }
    }
    agents.sort_by_key(|a| standing(a).missed);
}

/// The contact and its queue step as the engine saw them.
#[derive(Debug, Clone, Copy)]
pub struct Situation<'a> {
    pub strategy: Strategy,
    pub skill: Option<&'a str>,
    /// The step's requirements, then the rule's.
    pub requirements: &'a [&'a Expr],
    /// What requirements see of the contact (`ContactRequest::attributes`).
    pub contact: &'a BTreeMap<String, Value>,
    /// The language agents must speak (`None`: none required).
    pub language: Option<&'a str>,
    /// The agent the contact's affinity names while it holds.
    pub preferred: Option<&'a AgentId>,
    pub last_served: Option<&'a AgentId>,
    /// A scheduled callback not yet due.
    pub held: bool,
}

/// What requirements see of an agent as seen (`AgentProfile::attributes`).
pub fn attributes(agent: &AgentSeen) -> BTreeMap<String, Value> {
    AgentProfile {
        id: agent.agent_id.clone(),
        skills: agent.skills.clone(),
        languages: agent.languages.clone(),
        team: agent.team.clone(),
        site: agent.site.clone(),
        capacity: BTreeMap::new(),
        max_load: agent.max_load,
    }
    .attributes()
}

/// Each agent's verdict (`attributes[i]` is what requirements see of `agents[i]`): the
/// eligible ranked by the strategy, the others with the first reason that applies. With an
/// affinity that holds (the preferred agent is available, busy or in after-contact work
/// and meets the step), the contact waits for that agent alone.
pub fn verdicts(
    situation: &Situation,
    agents: &[AgentSeen],
    attributes: &[&BTreeMap<String, Value>],
) -> Vec<Verdict> {
    let unfit = |i: usize| -> Option<Verdict> {
        let view = AgentView {
            agent: attributes[i],
            contact: situation.contact,
        };
        if let Some(missed) = situation.requirements.iter().find(|e| !e.matches(&view)) {
            return Some(Verdict::Unqualified(missed.source().to_owned()));
        }
        let speaks = |wanted: &str| {
            let wanted = spoken(wanted);
            agents[i].languages.iter().any(|l| spoken(l) == wanted)
        };
        situation
            .language
            .filter(|wanted| !speaks(wanted))
            .map(|_| Verdict::NoLanguage)
    };
    let busy = |agent: &AgentSeen| {
        if agent.presence != Presence::Available {
            Some(Verdict::Unavailable)
        } else if agent.on_channel >= agent.capacity || agent.load >= agent.max_load {
            Some(Verdict::AtCapacity)
        } else {
            None
        }
    };
    let waits_for = situation
        .preferred
        .and_then(|preferred| agents.iter().position(|a| &a.agent_id == preferred))
        .filter(|i| {
            matches!(
                agents[*i].presence,
                Presence::Available | Presence::Busy | Presence::AfterContactWork
            ) && unfit(*i).is_none()
        });
    let passed: Vec<Option<Verdict>> = (0..agents.len())
        .map(|i| {
            let agent = &agents[i];
            if situation.held {
                return Some(Verdict::Held);
            }
            unfit(i).or_else(|| match waits_for {
                Some(preferred) if preferred != i => Some(Verdict::WaitsForPreferred),
                Some(_) => busy(agent),
                None => busy(agent).or(agent.declined.then_some(Verdict::Declined)),
            })
        })
        .collect();
    let mut eligible: Vec<usize> = (0..agents.len()).filter(|i| passed[*i].is_none()).collect();
    order(
        situation.strategy,
        situation.last_served,
        &mut eligible,
        |i| standing(&agents[*i], situation.skill),
    );
    let mut ranks = vec![0; agents.len()];
    for (rank, i) in eligible.iter().enumerate() {
        ranks[*i] = u32::try_from(rank).unwrap_or(u32::MAX);
    }
    passed
        .into_iter()
        .zip(ranks)
        .map(|(passed, rank)| passed.unwrap_or(Verdict::Ranked(rank)))
        .collect()
}

fn standing<'a>(agent: &'a AgentSeen, skill: Option<&str>) -> Standing<'a> {
    Standing {
        id: &agent.agent_id,
        idle_since: agent.idle_since,
        occupancy: f64::from(agent.load) / f64::from(agent.max_load.max(1)),
        proficiency: agent
            .skills
            .get(skill.unwrap_or_default())
            .copied()
            .unwrap_or(0),
        missed: agent.missed,
    }
}

/// The agents ranked, best first.
pub fn ranked(agents: &[AgentSeen]) -> Vec<&AgentId> {
    let mut ranked: Vec<(u32, &AgentId)> = agents
        .iter()
        .filter_map(|a| match a.verdict {
            Verdict::Ranked(rank) => Some((rank, &a.agent_id)),
            _ => None,
        })
        .collect();
    ranked.sort();
    ranked.into_iter().map(|(_, id)| id).collect()
}

/// A decision as the log recorded it.
#[derive(Debug, Clone, Copy)]
pub struct Recorded<'a> {
    pub explanation: &'a Explanation,
    /// What requirements saw of the contact, rebuilt from the recorded input at the
    /// decision's time.
    pub contact: &'a BTreeMap<String, Value>,
    /// The decision's candidates (the first 10 ranked).
    pub candidates: &'a [AgentId],
    /// The agent offered the contact (`None`: it was queued).
    pub offered: Option<&'a AgentId>,
}

/// Runs the choice again on what `recorded` says the engine saw: the differences from the
/// recorded verdicts, candidates and offer, none when it reproduces. The agent chosen is
/// the first ranked not taken by a contact ahead in line at the same moment.
pub fn rerun(recorded: &Recorded) -> Vec<String> {
    let explanation = recorded.explanation;
    let mut differences = Vec::new();
    let Some(strategy) = Strategy::from_name(&explanation.strategy) else {
        return vec![format!("strategy `{}` is not known", explanation.strategy)];
    };
    let mut requirements = Vec::new();
    for source in &explanation.requirements {
        match Expr::parse(source, AGENT_ATTRIBUTES) {
            Ok(expr) => requirements.push(expr),
            Err(error) => differences.push(format!("requirement does not parse: {error}")),
        }
    }
    if !differences.is_empty() {
        return differences;
    }
    let requirements: Vec<&Expr> = requirements.iter().collect();
    let situation = Situation {
        strategy,
        skill: explanation.skill.as_deref(),
        requirements: &requirements,
        contact: recorded.contact,
        language: explanation.language.as_deref(),
        preferred: explanation.preferred_agent.as_ref(),
        last_served: explanation.last_served.as_ref(),
        held: explanation.held_until.is_some(),
    };
    let owned: Vec<_> = explanation.agents.iter().map(attributes).collect();
    let seen: Vec<_> = owned.iter().collect();
    let again = verdicts(&situation, &explanation.agents, &seen);
    for (agent, verdict) in explanation.agents.iter().zip(&again) {
        if agent.verdict != *verdict {
            differences.push(format!(
                "{}: recorded {:?}, re-run {verdict:?}",
                agent.agent_id, agent.verdict
            ));
        }
    }
    let rerun: Vec<AgentSeen> = (explanation.agents.iter().zip(again))
        .map(|(agent, verdict)| AgentSeen {
            verdict,
            ..agent.clone()
        })
        .collect();
    let ranked = ranked(&rerun);
    let listed = ranked.len().min(recorded.candidates.len());
    let first: Vec<&AgentId> = recorded.candidates.iter().take(listed).collect();
    if ranked[..listed] != first[..] || (ranked.len() < recorded.candidates.len()) {
        differences.push(format!(
            "candidates recorded {:?}, re-run ranks {:?}",
            recorded.candidates, ranked
        ));
    }
    let chosen = ranked
        .iter()
        .find(|a| !explanation.taken_ahead.contains(a))
        .copied();
    if chosen != recorded.offered {
        let name = |a: Option<&AgentId>| a.map_or("nobody (queued)".to_owned(), |a| a.to_string());
        differences.push(format!(
            "offered to {}, the re-run chooses {}",
            name(recorded.offered),
            name(chosen)
        ));
    }
    differences
}
