//! The generated world both runs share: the queues, intents and languages, the routing
//! configuration (`config_toml`), the agents (`AgentSpec`) and the contacts (`ContactSpec`),
//! each derived from a seed or a number so that the in-engine and gRPC runs see the same.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

use anyhow::{Result, anyhow};
use rezef_adapter::proto;
use rezef_events::{AgentId, Channel, InteractionId};
use rezef_routing::{AgentProfile, ContactRequest};

use super::CUSTOMERS;
use crate::harness::Rng;
use crate::workload::{TENANT, customer_ref};

const LANGUAGES: [&str; 4] = ["he", "ar", "ru", "en"];
/// How often each language is an agent's first language and a contact's language, in %.
const LANGUAGE_WEIGHTS: [u64; 4] = [50, 20, 15, 15];

fn queue_id(q: u64) -> String {
    format!("q{q:03}")
}

fn intent(q: u64) -> String {
    format!("intent-{q:03}")
}

fn language(rng: &mut Rng) -> &'static str {
    let mut pick = rng.below(LANGUAGE_WEIGHTS.iter().sum());
    for (language, weight) in LANGUAGES.iter().zip(LANGUAGE_WEIGHTS) {
        if pick < weight {
            return language;
        }
        pick -= weight;
    }
    LANGUAGES[0]
}

/// The proficiency a queue's first step asks for: any (one step: `skills HAS`), or 3.
fn first_step_level(q: u64) -> u8 {
    if q.is_multiple_of(3) { 1 } else { 3 }
}

/// The agents for whom one of `contacts` waits at its queue's first step (skill, level and
/// language), so that an agent becoming available has something to be offered at once
/// rather than at the next escalation.
pub(super) fn with_work(
    agents: &[AgentSpec],
    contacts: impl Iterator<Item = ContactSpec>,
) -> Vec<usize> {
    let waiting: HashSet<(String, &str)> =
        contacts.map(|c| (queue_id(c.queue), c.language)).collect();
    agents
        .iter()
        .enumerate()
        .filter(|(_, agent)| {
            agent.skills.iter().any(|(skill, level)| {
                let q: u64 = skill[1..].parse().unwrap_or(0);
                *level >= first_step_level(q)
                    && agent
                        .languages
                        .iter()
                        .any(|l| waiting.contains(&(skill.clone(), l.as_str())))
            })
        })
        .map(|(i, _)| i)
        .collect()
}

/// The routing configuration: a queue and a rule per intent.
pub(super) fn config_toml(queues: u32) -> String {
    let mut out = String::from(
        "version = 1\n\
         default_queue = \"q000\"\n\n\
         [offers]\n\
         timeout = \"20s\"\n\
         max_declines = 3\n\
         affinity_timeout = \"60s\"\n\n\
         [priority]\n\
         tiers = { vip = 20, gold = 10 }\n\
         ageing_per_minute = 1.0\n\n",
    );
    let queues = u64::from(queues);
    for q in 0..queues {
        let (id, other) = (queue_id(q), queue_id((q + 1) % queues));
        let _ = writeln!(out, "[[queues]]\nid = \"{id}\"");
        match q % 10 {
            1 => out.push_str("strategy = \"least_occupied\"\n"),
            2 => {
                let _ = writeln!(out, "strategy = \"highest_proficiency\"\nskill = \"{id}\"");
            }
            3 => out.push_str("strategy = \"round_robin\"\n"),
            _ => {}
        }
        out.push_str("callback_above = \"10m\"\nsteps = [\n");
        match q % 3 {
            0 => {
                let _ = writeln!(
                    out,
                    "  {{ after = \"0s\", requirements = \"skills HAS '{id}'\" }},"
                );
            }
            steps => {
                let _ = writeln!(
                    out,
                    "  {{ after = \"0s\", requirements = \"skills.{id} >= {}\" }},\n  \
                     {{ after = \"30s\", requirements = \"skills HAS '{id}'\" }},",
                    first_step_level(q)
                );
                if steps == 2 {
                    let _ = writeln!(
                        out,
                        "  {{ after = \"2m\", requirements = \"skills HAS '{id}' OR skills HAS \
                         '{other}'\", drop_language = true }},"
                    );
                }
            }
        }
        out.push_str("]\n\n");
    }
    for q in 0..queues {
        let _ = writeln!(
            out,
            "[[rules]]\nname = \"rule-{q:03}\"\nwhen = \"intent == '{}'\"\nqueue = \"{}\"\n",
            intent(q),
            queue_id(q)
        );
    }
    out
}

/// An agent, as both the engine and a session's login describe them.
#[derive(Debug, Clone)]
pub(super) struct AgentSpec {
    id: String,
    pub(super) skills: BTreeMap<String, u8>,
    languages: Vec<String>,
    team: String,
    site: String,
}

impl AgentSpec {
    pub(super) fn agent_id(&self) -> Result<AgentId> {
        AgentId::new(self.id.clone()).map_err(|e| anyhow!("agent id {}: {e}", self.id))
    }

    pub(super) fn profile(&self) -> Result<AgentProfile> {
        Ok(AgentProfile {
            id: self.agent_id()?,
            skills: self.skills.clone(),
            languages: self.languages.clone(),
            team: self.team.clone(),
            site: self.site.clone(),
            capacity: BTreeMap::from([(Channel::Voice, 1), (Channel::Webchat, 3)]),
            max_load: 3,
        })
    }

    pub(super) fn proto(&self) -> proto::AgentProfile {
        proto::AgentProfile {
            agent_id: self.id.clone(),
            skills: self
                .skills
                .iter()
                .map(|(skill, level)| (skill.clone(), u32::from(*level)))
                .collect(),
            languages: self.languages.clone(),
            team: self.team.clone(),
            site: self.site.clone(),
            capacity: [("voice".to_owned(), 1), ("webchat".to_owned(), 3)].into(),
            max_load: 3,
        }
    }
}

/// The agents: skills spread uniformly over the queues.
pub(super) fn agents(count: u32, queues: u32, seed: u64) -> Vec<AgentSpec> {
    let mut rng = Rng::new(seed);
    let queues = u64::from(queues);
    (0..count)
        .map(|n| {
            let wanted = (4 + rng.below(5)).min(queues);
            let mut skills = BTreeMap::new();
            while (skills.len() as u64) < wanted {
                skills.insert(queue_id(rng.below(queues)), 1 + rng.below(5) as u8);
            }
            let mut languages = vec![language(&mut rng).to_owned()];
            for _ in 0..rng.below(3) {
                let extra = LANGUAGES[rng.below(LANGUAGES.len() as u64) as usize];
                if !languages.iter().any(|l| l == extra) {
                    languages.push(extra.to_owned());
                }
            }
            AgentSpec {
                id: format!("agent-{n:05}"),
                skills,
                languages,
                team: format!("team-{:02}", n % 50),
                site: if n % 2 == 0 { "tlv" } else { "haifa" }.to_owned(),
            }
        })
        .collect()
}

/// Contact number `n`: the same in process and over gRPC.
#[derive(Debug, Clone)]
pub(super) struct ContactSpec {
    n: u64,
    voice: bool,
    queue: u64,
    language: &'static str,
    tier: Option<&'static str>,
}

impl ContactSpec {
    pub(super) fn nth(n: u64, queues: u32) -> Self {
        let mut rng = Rng::new(n.wrapping_mul(0xD1B5_4A32_D192_ED03) ^ 0xc0_47ac7);
        let voice = rng.below(10) < 6;
        let queue = rng.below(u64::from(queues));
        let language = language(&mut rng);
        let tier = match rng.below(20) {
            0 => Some("vip"),
            1..=3 => Some("gold"),
            _ => None,
        };
        Self {
            n,
            voice,
            queue,
            language,
            tier,
        }
    }

    /// A contact that `agent` may take at its queue's first step (skill, level, language),
    /// if there is one: routing chooses a returning contact's last agent only among those
    /// (docs/routing.md).
    pub(super) fn for_agent(n: u64, agent: &AgentSpec, voice: bool) -> Option<Self> {
        let queue = (agent.skills.iter())
            .filter_map(|(id, level)| Some((id.strip_prefix('q')?.parse::<u64>().ok()?, *level)))
            .find(|&(q, level)| level >= first_step_level(q))?
            .0;
        let language = (LANGUAGES.iter()).find(|l| agent.languages.iter().any(|s| s == *l))?;
        Some(Self {
            n,
            voice,
            queue,
            language,
            tier: None,
        })
    }

    fn id(&self, prefix: &str) -> String {
        format!("{prefix}-{:08}", self.n)
    }

    pub(super) fn request(&self, prefix: &str) -> Result<ContactRequest> {
        let id = self.id(prefix);
        Ok(ContactRequest {
            id: Some(InteractionId::new(id.clone()).map_err(|e| anyhow!("contact {id}: {e}"))?),
            channel: Some(if self.voice {
                Channel::Voice
            } else {
                Channel::Webchat
            }),
            intent: Some(intent(self.queue)),
            language: Some(self.language.to_owned()),
            tier: self.tier.map(str::to_owned),
            ..ContactRequest::default()
        })
    }

    pub(super) fn proto(&self, prefix: &str) -> proto::RouteInteractionRequest {
        proto::RouteInteractionRequest {
            tenant_id: TENANT.into(),
            customer: Some(customer_ref(self.n % CUSTOMERS)),
            interaction_id: self.id(prefix),
            channel: if self.voice {
                proto::Channel::Voice
            } else {
                proto::Channel::Webchat
            } as i32,
            intent: intent(self.queue),
            language: self.language.into(),
            tier: self.tier.unwrap_or_default().into(),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use rezef_routing::{Engine, RoutingConfig, Target};

    use super::*;
    use crate::routing::T0;

    #[test]
    fn the_generated_configuration_compiles_and_routes_each_intent_to_its_queue() {
        let routing = RoutingConfig::from_toml(&config_toml(30)).expect("compiles");
        assert_eq!(routing.queues.len(), 30);
        assert_eq!(routing.rules.len(), 30);
        let steps: Vec<usize> = routing.queues.iter().map(|q| q.steps.len()).collect();
        assert_eq!(&steps[..4], [1, 2, 3, 1]);
        let mut engine = Engine::new(routing);
        let request = ContactSpec::nth(7, 30).request("c").expect("request");
        let queue = queue_id(ContactSpec::nth(7, 30).queue);
        let decision = engine.route(request, T0).expect("routed");
        assert_eq!(decision.queue, queue);
        assert!(matches!(decision.target, Target::Queued { .. }));
    }
}
