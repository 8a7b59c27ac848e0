//! `RoutingDecided.explanation` in and out: what routing saw when it chose among agents
//! (`rezef_events::explained`) and its `rezef.v1.RoutingExplanation` form.

use rezef_events::AgentId;
use rezef_events::explained::{AgentSeen, Explanation, Verdict};
use rezef_proto::v1;

use crate::check::{Check, ProtoEnum, id_string, timestamp};

/// The explanation of a stored or published decision, checked (paths under `at`).
pub(crate) fn from_proto(
    check: &mut Check,
    at: &str,
    p: v1::RoutingExplanation,
) -> Option<Explanation> {
    let at = |field: &str| format!("{at}.{field}");
    let text = |value: String| (!value.is_empty()).then_some(value);
    let preferred_agent = check.id(
        &at("preferred_agent_id"),
        p.preferred_agent_id,
        false,
        AgentId::new,
    );
    let last_served = check.id(
        &at("last_served_agent_id"),
        p.last_served_agent_id,
        false,
        AgentId::new,
    );
    let held_until = check.time(&at("held_until"), p.held_until);
    let agents: Vec<Option<AgentSeen>> = (p.agents.into_iter().enumerate())
        .map(|(i, agent)| seen_from_proto(check, &at(&format!("agents[{i}]")), agent))
        .collect();
    let taken_ahead: Vec<Option<AgentId>> = (p.taken_ahead.into_iter().enumerate())
        .map(|(i, id)| check.id(&at(&format!("taken_ahead[{i}]")), id, true, AgentId::new))
        .collect();
    Some(Explanation {
        strategy: p.strategy,
        skill: text(p.skill),
        requirements: p.requirements,
        language: text(p.language),
        preferred_agent,
        last_served,
        held_until,
        agents: agents.into_iter().collect::<Option<_>>()?,
        unlisted_qualified: p.unlisted_qualified,
        unlisted_unqualified: p.unlisted_unqualified,
        offline: p.offline,
        taken_ahead: taken_ahead.into_iter().collect::<Option<_>>()?,
        contacts_ahead: p.contacts_ahead,
        base_priority: p.base_priority,
        ageing_per_minute: p.ageing_per_minute,
    })
}

fn seen_from_proto(check: &mut Check, at: &str, p: v1::SeenAgent) -> Option<AgentSeen> {
    let at = |field: &str| format!("{at}.{field}");
    let agent_id = check.id(&at("agent_id"), p.agent_id, true, AgentId::new);
    let mut skills = std::collections::BTreeMap::new();
    for (skill, level) in p.skills {
        match u8::try_from(level) {
            Ok(level) => {
                skills.insert(skill, level);
            }
            Err(_) => check.fail(at(&format!("skills[{skill}]")), "must be at most 255"),
        }
    }
    let presence = check.required(&at("presence"), p.presence);
    let idle_since = check.time(&at("idle_since"), p.idle_since);
    if idle_since.is_none() {
        check.fail(at("idle_since"), "is required");
    }
    let verdict = match v1::Verdict::try_from(p.verdict) {
        Ok(v1::Verdict::Ranked) => Some(Verdict::Ranked(p.rank)),
        Ok(v1::Verdict::Held) => Some(Verdict::Held),
        Ok(v1::Verdict::Unqualified) => Some(Verdict::Unqualified(p.requirement)),
        Ok(v1::Verdict::NoLanguage) => Some(Verdict::NoLanguage),
        Ok(v1::Verdict::Unavailable) => Some(Verdict::Unavailable),
        Ok(v1::Verdict::AtCapacity) => Some(Verdict::AtCapacity),
        Ok(v1::Verdict::Declined) => Some(Verdict::Declined),
        Ok(v1::Verdict::WaitsForPreferred) => Some(Verdict::WaitsForPreferred),
        Ok(v1::Verdict::Unspecified) | Err(_) => {
            check.fail(at("verdict"), "is required");
            None
        }
    };
    Some(AgentSeen {
        agent_id: agent_id?,
        skills,
        languages: p.languages,
        team: p.team,
        site: p.site,
        presence: presence?,
        capacity: p.capacity,
        max_load: p.max_load,
        on_channel: p.on_channel,
        load: p.load,
        idle_since: idle_since?,
        declined: p.declined,
        missed: p.missed,
        verdict: verdict?,
    })
}

pub(crate) fn to_proto(explanation: Explanation) -> v1::RoutingExplanation {
    v1::RoutingExplanation {
        strategy: explanation.strategy,
        skill: explanation.skill.unwrap_or_default(),
        requirements: explanation.requirements,
        language: explanation.language.unwrap_or_default(),
        preferred_agent_id: id_string(&explanation.preferred_agent),
        last_served_agent_id: id_string(&explanation.last_served),
        held_until: explanation.held_until.map(timestamp),
        agents: explanation.agents.into_iter().map(seen_to_proto).collect(),
        unlisted_qualified: explanation.unlisted_qualified,
        unlisted_unqualified: explanation.unlisted_unqualified,
        offline: explanation.offline,
        taken_ahead: explanation
            .taken_ahead
            .iter()
            .map(ToString::to_string)
            .collect(),
        contacts_ahead: explanation.contacts_ahead,
        base_priority: explanation.base_priority,
        ageing_per_minute: explanation.ageing_per_minute,
    }
}

fn seen_to_proto(agent: AgentSeen) -> v1::SeenAgent {
    let (verdict, rank, requirement) = match agent.verdict {
        Verdict::Ranked(rank) => (v1::Verdict::Ranked, rank, String::new()),
        Verdict::Held => (v1::Verdict::Held, 0, String::new()),
        Verdict::Unqualified(requirement) => (v1::Verdict::Unqualified, 0, requirement),
        Verdict::NoLanguage => (v1::Verdict::NoLanguage, 0, String::new()),
        Verdict::Unavailable => (v1::Verdict::Unavailable, 0, String::new()),
        Verdict::AtCapacity => (v1::Verdict::AtCapacity, 0, String::new()),
        Verdict::Declined => (v1::Verdict::Declined, 0, String::new()),
        Verdict::WaitsForPreferred => (v1::Verdict::WaitsForPreferred, 0, String::new()),
    };
    v1::SeenAgent {
        agent_id: agent.agent_id.to_string(),
        skills: (agent.skills.into_iter())
            .map(|(skill, level)| (skill, u32::from(level)))
            .collect(),
        languages: agent.languages,
        team: agent.team,
        site: agent.site,
        presence: agent.presence.to_proto(),
        capacity: agent.capacity,
        max_load: agent.max_load,
        on_channel: agent.on_channel,
        load: agent.load,
        idle_since: Some(timestamp(agent.idle_since)),
        declined: agent.declined,
        missed: agent.missed,
        verdict: verdict as i32,
        rank,
        requirement,
    }
}
