//! Why a contact went to that agent: what the routing engine saw when it chose among
//! agents, recorded with the decision (`RoutingDecided.explanation`), so that an audit can
//! read it and run the engine's choice again on it (`rezef_routing::choice`).
//!
//! Self-contained: only what the engine saw (the step's requirements as written, each
//! agent's profile, presence and load as they were), nothing read from a projection. Bounded:
//! at most [`MAX_LISTED`] agents, the others counted.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::event::Presence;
use crate::ids::AgentId;
use crate::time::Timestamp;

/// The most agents an explanation lists: the ranked first, then the contact's preferred
/// agent, then those who declined it or let its offer expire, then the others free on its
/// channel (all logged in).
pub const MAX_LISTED: usize = 20;

/// What the engine saw when it chose among agents for a contact.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Explanation {
    /// The queue's strategy, as the configuration names it (`longest_idle`, ...).
    pub strategy: String,
    /// For `highest_proficiency`: the skill that ranks.
    pub skill: Option<String>,
    /// The requirements that applied, as written: the step's, then the rule's.
    pub requirements: Vec<String>,
    /// The language (BCP 47) agents had to speak; unset: none required.
    pub language: Option<String>,
    /// The agent the contact's affinity named while it held (its window, not declined);
    /// the contact waits for them alone while they are available, busy or in after-contact
    /// work and meet the step.
    pub preferred_agent: Option<AgentId>,
    /// For `round_robin`: the agent last offered a contact of the queue.
    pub last_served: Option<AgentId>,
    /// A scheduled callback not yet due: offered to nobody before then.
    pub held_until: Option<Timestamp>,
    /// The agents listed, each with what the engine saw and its verdict.
    pub agents: Vec<AgentSeen>,
    /// Agents logged in and not listed: qualified for the step as far as can be told without
    /// the contact (by the step's skills; busy, away or not ranked), and not.
    pub unlisted_qualified: u32,
    pub unlisted_unqualified: u32,
    /// Agents known and offline (never listed).
    pub offline: u32,
    /// Agents ranked above the one offered (all ranked, when none was) who were offered to
    /// contacts ahead in line at the same moment.
    pub taken_ahead: Vec<AgentId>,
    /// Queued: the contacts ahead of it in its queue.
    pub contacts_ahead: Option<u32>,
    /// The priority: `base_priority` (queue, rule, tier, tenure, repeat) plus
    /// `ageing_per_minute` for every minute since arrival.
    pub base_priority: f64,
    pub ageing_per_minute: f64,
}

/// One agent as the engine saw them when it chose, and why they were or were not chosen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentSeen {
    pub agent_id: AgentId,
    /// Skill → proficiency, 1 to 5.
    pub skills: BTreeMap<String, u8>,
    /// BCP 47 tags.
    pub languages: Vec<String>,
    pub team: String,
    pub site: String,
    pub presence: Presence,
    /// How many contacts of the contact's channel the agent takes at once, and of all.
    pub capacity: u32,
    pub max_load: u32,
    /// Contacts held (offered or assigned) on the contact's channel, and on all.
    pub on_channel: u32,
    pub load: u32,
    pub idle_since: Timestamp,
    /// The agent declined this contact (not offered it again).
    pub declined: bool,
    /// The agent let an offer of it expire (offered it after everyone else).
    pub missed: bool,
    pub verdict: Verdict,
}

/// Why an agent was or was not chosen: the first reason that applies, in this order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Eligible: the place in the strategy's order (0: the first choice).
    Ranked(u32),
    /// The contact is a callback not yet due.
    Held,
    /// Does not meet this requirement (as written).
    Unqualified(String),
    /// Does not speak the contact's language.
    NoLanguage,
    /// Not available (see `presence`).
    Unavailable,
    /// No room: at capacity on the channel, or at the load limit.
    AtCapacity,
    /// Declined this contact.
    Declined,
    /// The contact waits for its preferred agent alone while affinity holds.
    WaitsForPreferred,
}
