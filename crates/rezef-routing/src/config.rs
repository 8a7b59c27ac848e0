//! The routing configuration: queues with their strategy and escalation steps, the rules
//! that send a contact to a queue, priorities by customer tier, bot-first channels and
//! offer handling. It is written as TOML (see `deploy/routing.toml`), versioned, and
//! compiled once: every expression is parsed and every reference checked, and each mistake
//! is reported with where it is (`rules[2].when: unknown attribute ...`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rezef_events::event::Presence;
use rezef_events::{Channel, Timestamp};
use serde::{Deserialize, Serialize};

use crate::engine::ContactRequest;
use crate::expr::{Expr, Value};
use crate::rule_index::RuleIndex;

/// The attributes a rule's `when` may name: the contact's.
pub const CONTACT_ATTRIBUTES: &[&str] = &[
    "channel",
    "intent",
    "language",
    "language_tag",
    "tier",
    "context",
    "repeat",
    "customer_years",
    "human_requested",
    "bot_failures",
];

/// The attributes requirements may name: the agent's, and the contact's under `contact`.
pub const AGENT_ATTRIBUTES: &[&str] = &["id", "skills", "languages", "team", "site", "contact"];

/// How a queue picks among the agents who can take a contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// The agent idle the longest (fair to agents; the usual default).
    #[default]
    LongestIdle,
    /// The agent with the smallest share of their load limit in use.
    LeastOccupied,
    /// The agent with the highest proficiency in the queue's `skill`.
    HighestProficiency,
    /// Agents in turn.
    RoundRobin,
}

impl Strategy {
    const ALL: [Self; 4] = [
        Self::LongestIdle,
        Self::LeastOccupied,
        Self::HighestProficiency,
        Self::RoundRobin,
    ];

    /// The name the configuration gives it (`longest_idle`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::LongestIdle => "longest_idle",
            Self::LeastOccupied => "least_occupied",
            Self::HighestProficiency => "highest_proficiency",
            Self::RoundRobin => "round_robin",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// The file as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingConfig {
    /// The configuration's version, chosen by whoever edits it; recorded with every
    /// decision, so an audit knows which rules applied.
    pub version: u64,
    /// The queue of a contact no rule matches.
    pub default_queue: String,
    #[serde(default)]
    pub offers: OfferSettings,
    #[serde(default)]
    pub priority: PrioritySettings,
    /// Channels that start with a bot.
    #[serde(default)]
    pub bot_first: BTreeMap<Channel, BotFirst>,
    pub queues: Vec<QueueConfig>,
    /// Tried in order; the first whose `when` holds decides.
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OfferSettings {
    /// An offer not accepted within this time is withdrawn and goes to the next agent.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// After this many declined or missed offers in a row, the agent is set to `presence`.
    pub max_declines: u32,
    pub presence_after_declines: Presence,
    /// How long a returning conversation waits for its last agent (while that agent is
    /// available or about to be, and meets the current step) before any agent may take it.
    #[serde(with = "humantime_serde")]
    pub affinity_timeout: Duration,
}

impl Default for OfferSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(20),
            max_declines: 3,
            presence_after_declines: Presence::Away,
            affinity_timeout: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrioritySettings {
    /// Priority added per customer tier (`vip = 20`). Unknown tiers add nothing.
    pub tiers: BTreeMap<String, f64>,
    /// Priority gained per minute of waiting, so that nobody starves.
    pub ageing_per_minute: f64,
    /// Added for a repeat contact about an open conversation.
    pub repeat_boost: f64,
    /// Added per year the customer has been known (capped at 10 years): long-standing
    /// customers are never served after new ones of the same tier.
    pub tenure_per_year: f64,
}

impl Default for PrioritySettings {
    fn default() -> Self {
        Self {
            tiers: BTreeMap::new(),
            ageing_per_minute: 1.0,
            repeat_boost: 5.0,
            tenure_per_year: 0.5,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BotFirst {
    pub bot_id: String,
    /// After this many failed bot turns the customer goes to a human.
    #[serde(default = "default_bot_failures")]
    pub max_failures: u32,
}

fn default_bot_failures() -> u32 {
    2
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    pub id: String,
    #[serde(default)]
    pub strategy: Strategy,
    /// For `highest_proficiency`: the skill whose proficiency ranks the agents.
    #[serde(default)]
    pub skill: Option<String>,
    /// Priority added to every contact of the queue.
    #[serde(default)]
    pub priority: f64,
    /// Whether an agent must speak the contact's language (when it is known).
    #[serde(default = "yes")]
    pub require_language: bool,
    /// Above this estimated wait, a callback is offered.
    #[serde(default, with = "humantime_serde")]
    pub callback_above: Option<Duration>,
    /// Escalation steps, by time in the queue: the first must start at 0.
    pub steps: Vec<StepConfig>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepConfig {
    /// When the step starts, counted from the contact's arrival in the queue.
    #[serde(with = "humantime_serde")]
    pub after: Duration,
    /// What an agent must satisfy; unset: any agent.
    #[serde(default)]
    pub requirements: Option<String>,
    /// From this step on, the last agent is no longer waited for.
    #[serde(default)]
    pub drop_affinity: bool,
    /// From this step on, an agent need not speak the contact's language (an overflow
    /// team with interpreters).
    #[serde(default)]
    pub drop_language: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    pub name: String,
    /// A condition over the contact (`intent == 'billing.dispute' AND tier == 'vip'`).
    pub when: String,
    pub queue: String,
    #[serde(default)]
    pub priority: f64,
    /// Requirements added to the queue's steps for contacts of this rule.
    #[serde(default)]
    pub requirements: Option<String>,
}

/// A configuration mistake, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConfigError {
    pub path: String,
    pub message: String,
}

/// A compiled queue.
#[derive(Debug, Clone)]
pub struct Queue {
    pub id: String,
    pub strategy: Strategy,
    pub skill: Option<String>,
    pub priority: f64,
    pub require_language: bool,
    pub callback_above: Option<Duration>,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone)]
pub struct Step {
    pub after: Duration,
    pub requirements: Option<Expr>,
    pub drop_affinity: bool,
    pub drop_language: bool,
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub when: Expr,
    pub queue: usize,
    pub priority: f64,
    pub requirements: Option<Expr>,
}

/// A configuration checked and ready: what the engine runs on.
#[derive(Debug, Clone)]
pub struct Routing {
    pub version: u64,
    pub default_queue: usize,
    pub offers: OfferSettings,
    pub priority: PrioritySettings,
    pub bot_first: BTreeMap<Channel, BotFirst>,
    pub queues: Vec<Queue>,
    pub rules: Vec<Rule>,
    /// Finds the first rule met without trying each.
    rule_index: RuleIndex,
}

impl Routing {
    pub fn queue_index(&self, id: &str) -> Option<usize> {
        self.queues.iter().position(|q| q.id == id)
    }

    /// The first rule whose condition the contact's attributes meet.
    pub fn rule_for(&self, contact: &BTreeMap<String, Value>) -> Option<usize> {
        self.rule_index.first_match(&self.rules, contact)
    }

    /// The escalation step of `queue` reached after `in_queue`.
    pub fn step_at(&self, queue: usize, in_queue: Duration) -> usize {
        self.queues[queue]
            .steps
            .iter()
            .rposition(|s| s.after <= in_queue)
            .unwrap_or(0)
    }

    /// Priority at arrival: the queue's, the rule's, the tier's, a repeat contact's boost
    /// and the customer's tenure (capped at ten years). Ageing comes on top while it waits.
    pub fn base_priority(
        &self,
        request: &ContactRequest,
        queue: usize,
        rule: Option<usize>,
        now: Timestamp,
    ) -> f64 {
        let settings = &self.priority;
        let tenure_years = request
            .customer_since
            .map_or(0.0, |since| {
                now.since(since).as_secs_f64() / (365.25 * 86_400.0)
            })
            .min(10.0);
        let tier = request
            .tier
            .as_deref()
            .and_then(|t| settings.tiers.get(t))
            .copied()
            .unwrap_or(0.0);
        let repeat = if request.repeat {
            settings.repeat_boost
        } else {
            0.0
        };
        self.queues[queue].priority
            + rule.map_or(0.0, |r| self.rules[r].priority)
            + tier
            + repeat
            + settings.tenure_per_year * tenure_years
    }
}

impl RoutingConfig {
    /// Reads a TOML configuration and compiles it. Every mistake is reported: each wrong
    /// setting (see `reading`), then what compiling the rest finds.
    pub fn from_toml(text: &str) -> Result<Routing, Vec<ConfigError>> {
        let (config, mut mistakes) = crate::reading::read::<Self>(text)?;
        let compiled = config.compile();
        if mistakes.is_empty() {
            return compiled;
        }
        // A setting read as its default may upset a check of its own place: it was reported.
        let reported = |path: &str| mistakes.iter().any(|m| path.starts_with(&m.path));
        let more: Vec<_> = (compiled.err().into_iter().flatten())
            .filter(|e| !reported(&e.path))
            .collect();
        mistakes.extend(more);
        Err(mistakes)
    }

    /// Checks everything and compiles the expressions; every mistake is reported.
    pub fn compile(self) -> Result<Routing, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let mut fail = |path: String, message: String| errors.push(ConfigError { path, message });
        let parse =
            |path: String, source: &str, roots: &[&str], fail: &mut dyn FnMut(String, String)| {
                Expr::parse(source, roots)
                    .map_err(|e| fail(path, format!("{} at position {}", e.message, e.position)))
                    .ok()
            };

        let mut seen = BTreeSet::new();
        let mut queues = Vec::new();
        for (i, q) in self.queues.iter().enumerate() {
            let at = format!("queues[{i}]");
            if q.id.is_empty() {
                fail(format!("{at}.id"), "is required".into());
            }
            if !seen.insert(q.id.clone()) {
                fail(format!("{at}.id"), format!("`{}` is defined twice", q.id));
            }
            if q.strategy == Strategy::HighestProficiency && q.skill.is_none() {
                fail(
                    format!("{at}.skill"),
                    "is required by the highest_proficiency strategy".into(),
                );
            }
            if q.steps.first().is_none_or(|s| !s.after.is_zero()) {
                fail(
                    format!("{at}.steps"),
                    "the first step must start at 0s".into(),
                );
            }
            if q.steps.windows(2).any(|w| w[0].after >= w[1].after) {
                fail(
                    format!("{at}.steps"),
                    "steps must start at increasing times".into(),
                );
            }
            let steps = q
                .steps
                .iter()
                .enumerate()
                .map(|(s, step)| Step {
                    after: step.after,
                    requirements: step.requirements.as_deref().and_then(|source| {
                        parse(
                            format!("{at}.steps[{s}].requirements"),
                            source,
                            AGENT_ATTRIBUTES,
                            &mut fail,
                        )
                    }),
                    drop_affinity: step.drop_affinity,
                    drop_language: step.drop_language,
                })
                .collect();
            queues.push(Queue {
                id: q.id.clone(),
                strategy: q.strategy,
                skill: q.skill.clone(),
                priority: q.priority,
                require_language: q.require_language,
                callback_above: q.callback_above,
                steps,
            });
        }
        let index = |id: &str| queues.iter().position(|q: &Queue| q.id == id);
        let default_queue = index(&self.default_queue);
        if default_queue.is_none() {
            fail(
                "default_queue".into(),
                format!("no queue `{}`", self.default_queue),
            );
        }
        let mut rules = Vec::new();
        for (i, r) in self.rules.iter().enumerate() {
            let at = format!("rules[{i}]");
            let queue = index(&r.queue);
            if queue.is_none() {
                fail(format!("{at}.queue"), format!("no queue `{}`", r.queue));
            }
            let when = parse(format!("{at}.when"), &r.when, CONTACT_ATTRIBUTES, &mut fail);
            let requirements = r.requirements.as_deref().and_then(|source| {
                parse(
                    format!("{at}.requirements"),
                    source,
                    AGENT_ATTRIBUTES,
                    &mut fail,
                )
            });
            if let (Some(queue), Some(when)) = (queue, when) {
                rules.push(Rule {
                    name: r.name.clone(),
                    when,
                    queue,
                    priority: r.priority,
                    requirements,
                });
            }
        }
        if self.offers.timeout.is_zero() {
            fail("offers.timeout".into(), "must be positive".into());
        }
        if self.offers.max_declines == 0 {
            fail("offers.max_declines".into(), "must be at least 1".into());
        }
        match (errors.is_empty(), default_queue) {
            (true, Some(default_queue)) => Ok(Routing {
                version: self.version,
                default_queue,
                offers: self.offers,
                priority: self.priority,
                bot_first: self.bot_first,
                queues,
                rule_index: RuleIndex::new(&rules),
                rules,
            }),
            _ => Err(errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
        version = 7
        default_queue = "general"

        [priority]
        tiers = { vip = 20, gold = 10 }

        [bot_first.webchat]
        bot_id = "helper-bot"

        [[queues]]
        id = "general"
        steps = [{ after = "0s" }]

        [[queues]]
        id = "billing"
        strategy = "highest_proficiency"
        skill = "billing"
        callback_above = "5m"
        steps = [
          { after = "0s", requirements = "skills.billing >= 4" },
          { after = "30s", requirements = "skills HAS 'billing'", drop_affinity = true },
          { after = "2m", requirements = "team == 'overflow'", drop_language = true },
        ]

        [[rules]]
        name = "billing"
        when = "intent IN ['billing.dispute', 'billing.double_charge']"
        queue = "billing"
    "#;

    #[test]
    fn a_good_configuration_compiles() {
        let routing = RoutingConfig::from_toml(GOOD).expect("compiles");
        assert_eq!(routing.version, 7);
        assert_eq!(routing.queues.len(), 2);
        assert_eq!(routing.queues[1].steps.len(), 3);
        assert_eq!(routing.rules[0].queue, 1);
        assert_eq!(routing.bot_first[&Channel::Webchat].max_failures, 2);
        assert_eq!(routing.priority.tiers["vip"], 20.0);
    }

    #[test]
    fn the_deploy_example_compiles() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/routing.toml");
        let text = std::fs::read_to_string(path).expect("the example exists");
        let routing = RoutingConfig::from_toml(&text).expect("the example compiles");
        assert_eq!(routing.queues.len(), 2);
    }

    #[test]
    fn every_mistake_is_reported_with_its_place() {
        let bad = GOOD
            .replace("skills.billing >= 4", "skils.billing >= 4")
            .replace("queue = \"billing\"", "queue = \"bill\"")
            .replace("{ after = \"30s\"", "{ after = \"3m\"");
        let errors = RoutingConfig::from_toml(&bad).expect_err("invalid");
        let paths: Vec<_> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "queues[1].steps",
                "queues[1].steps[0].requirements",
                "rules[0].queue"
            ]
        );
        assert!(
            errors[1].message.contains("unknown attribute `skils`"),
            "{}",
            errors[1]
        );
        let typo = RoutingConfig::from_toml("version = 1\ndefault_queue = \"q\"\nqueus = []\n");
        assert!(typo.expect_err("unknown key")[0].message.contains("queus"));
    }

    /// A wrong value does not hide the mistakes after it: each is reported with its path.
    #[test]
    fn a_wrong_value_and_a_wrong_rule_are_both_reported() {
        let bad = format!(
            "{GOOD}\n[offers]\ntimeout = \"2 parsecs\"\n\n[[rules]]\nname = \"vip\"\n\
             when = \"tire == 'vip'\"\nqueue = \"general\"\npriority = \"high\"\n"
        );
        let errors = RoutingConfig::from_toml(&bad).expect_err("invalid");
        let paths: Vec<_> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            ["rules[1].priority", "offers.timeout", "rules[1].when"]
        );
        assert!(errors[1].message.contains("parsecs"), "{}", errors[1]);
        assert!(
            errors[2].message.contains("unknown attribute `tire`"),
            "{}",
            errors[2]
        );
    }
}
