//! What the engine keeps of each agent and contact, and the order waiting contacts are
//! served in.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use rezef_events::event::Presence;
use rezef_events::language::spoken;
use rezef_events::{AgentId, Channel, InteractionId, Timestamp};

use super::{AgentProfile, ContactRequest, OfferId};
use crate::expr::{Attributes, Value};

/// An interned language tag: agents' and contacts' languages compare as numbers.
pub(super) type LangId = usize;

/// Where a waiting contact sits in a pool: its channel, and its language when the pool
/// requires the agent to speak it.
pub(super) type Slot = (Channel, Option<LangId>);

/// The order in which waiting contacts are served: highest priority first, then the
/// earliest arrival, then the first routed.
///
/// Priority ages linearly: `base + ageing × minutes waited`. Two contacts' priorities thus
/// compare at any instant as `base − ageing × arrival` does, so the order is fixed when the
/// contact arrives, and waiting contacts stay sorted without being re-sorted as time passes.
#[derive(Debug, Clone, Copy)]
pub(super) struct WaitKey {
    /// `ageing × arrival (minutes) − base`: lower is served first.
    rank: f64,
    pub arrived: Timestamp,
    pub seq: u64,
}

impl WaitKey {
    pub fn new(base_priority: f64, ageing_per_minute: f64, arrived: Timestamp, seq: u64) -> Self {
        let minutes = arrived.unix_nanos() as f64 / 60e9;
        Self {
            rank: ageing_per_minute * minutes - base_priority,
            arrived,
            seq,
        }
    }
}

impl Ord for WaitKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.rank
            .total_cmp(&other.rank)
            .then(self.arrived.cmp(&other.arrived))
            .then(self.seq.cmp(&other.seq))
    }
}

impl PartialOrd for WaitKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for WaitKey {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for WaitKey {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    Waiting,
    Offered(OfferId),
    Assigned { agent: usize, since: Timestamp },
}

/// Where a waiting contact can be found by an agent who frees up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Place {
    /// Not waiting, or waiting to be placed at the next settling.
    Nowhere,
    /// Waiting for its preferred agent alone (affinity).
    Agent(usize),
    /// Waiting in a pool, for any agent of it.
    Pool(usize, Slot),
}

#[derive(Debug, Clone)]
pub(super) struct Contact {
    pub request: ContactRequest,
    pub id: InteractionId,
    pub channel: Channel,
    pub language: Option<LangId>,
    pub arrived_at: Timestamp,
    /// When its queue's steps (and affinity wait) started, or start: a scheduled callback's
    /// time.
    pub queued_at: Timestamp,
    /// When the wait an accept ends began, for the queue's average wait: the arrival, or the
    /// blind transfer that made it wait again (the wait before was counted then).
    pub waiting_since: Timestamp,
    /// A scheduled callback not yet due: out of its queue's line and every pool until then.
    pub held: Option<Timestamp>,
    pub queue: usize,
    pub rule: Option<usize>,
    /// Fixed at arrival; ageing is added at each decision.
    pub base_priority: f64,
    pub key: WaitKey,
    pub state: State,
    pub place: Place,
    /// When its placement changes by itself: the next escalation step, the end of affinity.
    pub timer: Option<Timestamp>,
    /// Another agent drawn into the assigned contact while its agent keeps it: a warm
    /// transfer or a consult.
    pub aside: Option<Aside>,
    /// Agents who declined it: not offered it again.
    pub declined_by: BTreeSet<AgentId>,
    /// Agents who let an offer of it expire: offered it again only after everyone else.
    pub missed_by: BTreeSet<AgentId>,
    pub attributes: BTreeMap<String, Value>,
}

/// Another agent drawn into an assigned contact, whose capacity is held for it: offered a
/// warm transfer (accepting takes the contact) or a consult (accepting joins its agent, who
/// keeps it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Aside {
    pub agent: usize,
    /// The offer, until the other agent accepts it.
    pub offer: Option<OfferId>,
    pub consult: bool,
}

/// How an offer ended without an assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ended {
    /// The agent left (away, offline, disconnected).
    Withdrawn,
    Declined,
    /// Not accepted in time.
    Missed,
}

#[derive(Debug, Clone)]
pub(super) struct Agent {
    pub profile: AgentProfile,
    pub attributes: BTreeMap<String, Value>,
    pub languages: Vec<LangId>,
    pub presence: Presence,
    pub idle_since: Timestamp,
    /// Offered or assigned contacts, with their channel.
    pub work: BTreeMap<InteractionId, Channel>,
    pub misses_in_row: u32,
    /// The pools the agent qualifies for.
    pub pools: Vec<usize>,
    /// Contacts waiting for this agent alone (affinity), in serving order.
    pub affine: BTreeSet<WaitKey>,
}

impl Agent {
    /// Room for one more contact on `channel`, presence aside.
    pub fn has_room(&self, channel: Channel) -> bool {
        let on_channel = self.work.values().filter(|c| **c == channel).count();
        let capacity = self.profile.capacity.get(&channel).copied().unwrap_or(0) as usize;
        on_channel < capacity && self.work.len() < self.profile.max_load as usize
    }

    pub fn occupancy(&self) -> f64 {
        self.work.len() as f64 / f64::from(self.profile.max_load.max(1))
    }
}

/// Recent figures of a queue, for estimated waits.
#[derive(Debug, Clone, Default)]
pub(super) struct History {
    pub handle_times: VecDeque<Duration>,
    pub waits: VecDeque<Duration>,
}

const HISTORY_LEN: usize = 100;

pub(super) fn remember(samples: &mut VecDeque<Duration>, sample: Duration) {
    if samples.len() == HISTORY_LEN {
        samples.pop_front();
    }
    samples.push_back(sample);
}

pub(super) fn mean(samples: &VecDeque<Duration>) -> Option<Duration> {
    let count = u32::try_from(samples.len()).ok().filter(|n| *n > 0)?;
    Some(samples.iter().sum::<Duration>() / count)
}

/// An agent's attributes with the contact's under `contact`: what requirements see.
#[derive(Debug, Clone, Copy)]
pub struct AgentView<'a> {
    pub agent: &'a BTreeMap<String, Value>,
    pub contact: &'a BTreeMap<String, Value>,
}

impl Attributes for AgentView<'_> {
    fn get(&self, path: &[String]) -> Option<&Value> {
        match path.split_first() {
            Some((first, rest)) if first == "contact" => Attributes::get(self.contact, rest),
            _ => Attributes::get(self.agent, path),
        }
    }
}

impl AgentProfile {
    /// What requirements see of the agent (`skills`, `languages`, `team`, ...).
    pub fn attributes(&self) -> BTreeMap<String, Value> {
        let profile = self;
        let skills = profile
            .skills
            .iter()
            .map(|(name, level)| (name.clone(), Value::Number(f64::from(*level))))
            .collect();
        BTreeMap::from([
            ("id".to_owned(), Value::Text(profile.id.to_string())),
            ("skills".to_owned(), Value::Map(skills)),
            (
                "languages".to_owned(),
                Value::List(
                    profile
                        .languages
                        .iter()
                        .map(|tag| Value::Text(spoken(tag)))
                        .collect(),
                ),
            ),
            ("team".to_owned(), Value::Text(profile.team.clone())),
            ("site".to_owned(), Value::Text(profile.site.clone())),
        ])
    }
}

impl ContactRequest {
    /// What rules and requirements see of the contact (`intent`, `language`, `tier`, ...).
    pub fn attributes(&self, now: Timestamp) -> BTreeMap<String, Value> {
        let request = self;
        let text = |value: &Option<String>| value.as_deref().map_or(Value::Null, Value::from);
        let context = request
            .context
            .iter()
            .map(|(k, v)| (k.clone(), Value::Text(v.clone())))
            .collect();
        let years = request.customer_since.map_or(0.0, |since| {
            now.since(since).as_secs_f64() / (365.25 * 86_400.0)
        });
        BTreeMap::from([
            (
                "channel".to_owned(),
                request
                    .channel
                    .map_or(Value::Null, |c| Value::Text(c.to_string())),
            ),
            ("intent".to_owned(), text(&request.intent)),
            (
                "language".to_owned(),
                (request.language.as_deref()).map_or(Value::Null, |tag| Value::Text(spoken(tag))),
            ),
            ("language_tag".to_owned(), text(&request.language)),
            ("tier".to_owned(), text(&request.tier)),
            ("context".to_owned(), Value::Map(context)),
            ("repeat".to_owned(), Value::Bool(request.repeat)),
            ("customer_years".to_owned(), Value::Number(years)),
            (
                "human_requested".to_owned(),
                Value::Bool(request.human_requested),
            ),
            (
                "bot_failures".to_owned(),
                Value::Number(f64::from(request.bot_failures)),
            ),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiting_order_matches_aged_priority_at_any_instant() {
        let at = |s: i64| Timestamp::from_unix_millis(1_800_000_000_000 + s * 1_000);
        let ageing = 0.5;
        // (base priority, arrival in seconds)
        let contacts = [
            (10.0, 0),
            (0.0, -1_500),
            (0.0, -1_100),
            (5.0, -700),
            (0.0, 30),
        ];
        let keys: Vec<WaitKey> = contacts
            .iter()
            .enumerate()
            .map(|(seq, (base, arrived))| WaitKey::new(*base, ageing, at(*arrived), seq as u64))
            .collect();
        for now in [60, 600, 6_000] {
            let aged = |(base, arrived): (f64, i64)| base + ageing * (now - arrived) as f64 / 60.0;
            for (i, a) in contacts.iter().enumerate() {
                for (j, b) in contacts.iter().enumerate() {
                    let by_priority = aged(*b).total_cmp(&aged(*a));
                    if by_priority.is_ne() {
                        assert_eq!(keys[i].cmp(&keys[j]), by_priority, "{i} vs {j} at {now}");
                    }
                }
            }
        }
    }
}
