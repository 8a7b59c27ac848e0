//! Agents' profiles from the wire, validated the same way at login and when an agent's
//! skills, languages or capacity change in the middle of a session (`update_profile`):
//! every mistake named by its field, under the prefix of the message it came in.

use std::collections::BTreeMap;

use rezef_events::{AgentId, Channel};
use rezef_proto::v1;
use rezef_routing::AgentProfile;

use crate::convert::Check;
use crate::{Error, Result};

/// The profile at `field` (`login.profile`), or `None` with the mistakes noted in `check`.
pub fn from_proto(
    check: &mut Check,
    field: &str,
    profile: Option<v1::AgentProfile>,
) -> Option<AgentProfile> {
    let Some(profile) = profile else {
        check.fail(field, "is required");
        return None;
    };
    let id = check.id(
        &format!("{field}.agent_id"),
        profile.agent_id,
        true,
        AgentId::new,
    );
    let mut capacity = BTreeMap::new();
    for (name, count) in profile.capacity {
        match Channel::from_name(&name) {
            Some(channel) => {
                capacity.insert(channel, count);
            }
            None => check.fail(format!("{field}.capacity[{name}]"), "is not a channel name"),
        }
    }
    let mut skills = BTreeMap::new();
    for (skill, level) in profile.skills {
        match u8::try_from(level).ok().filter(|l| (1..=5).contains(l)) {
            Some(level) => {
                skills.insert(skill, level);
            }
            None => check.fail(
                format!("{field}.skills[{skill}]"),
                "must be between 1 and 5",
            ),
        }
    }
    let languages = (profile.languages.into_iter().enumerate())
        .filter_map(|(i, tag)| {
            let at = format!("{field}.languages[{i}]");
            if tag.is_empty() {
                check.fail(&at, "must be a BCP 47 language tag");
            }
            check.language(&at, tag)
        })
        .collect();
    if profile.max_load == 0 {
        check.fail(format!("{field}.max_load"), "must be at least 1");
    }
    Some(AgentProfile {
        id: id?,
        skills,
        languages,
        team: profile.team,
        site: profile.site,
        capacity,
        max_load: profile.max_load,
    })
}

/// The profile as the contract spells it (capacity keyed by channel name).
pub fn to_proto(profile: &AgentProfile) -> v1::AgentProfile {
    v1::AgentProfile {
        agent_id: profile.id.to_string(),
        skills: profile
            .skills
            .iter()
            .map(|(skill, level)| (skill.clone(), u32::from(*level)))
            .collect(),
        languages: profile.languages.clone(),
        team: profile.team.clone(),
        site: profile.site.clone(),
        capacity: profile
            .capacity
            .iter()
            .map(|(channel, count)| (channel.to_string(), *count))
            .collect(),
        max_load: profile.max_load,
    }
}

/// The new profile a session of `agent` sends; its `agent_id` may be left empty, and may
/// not name another agent.
pub fn update(
    agent: &AgentId,
    update: v1::agent_session_request::UpdateProfile,
) -> Result<AgentProfile> {
    const FIELD: &str = "update_profile.profile";
    let mut check = Check::default();
    let mut profile = update.profile;
    if let Some(profile) = &mut profile {
        if profile.agent_id.is_empty() {
            profile.agent_id = agent.to_string();
        } else if profile.agent_id != agent.as_str() {
            check.fail(
                format!("{FIELD}.agent_id"),
                "must be the session's agent (or empty)",
            );
        }
    }
    let profile = from_proto(&mut check, FIELD, profile);
    check.finish(|| profile).map_err(Error::from)
}
