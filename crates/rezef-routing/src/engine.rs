//! The routing engine: agents, waiting contacts and outstanding offers, and the decisions
//! that connect them. A pure state machine: every operation takes the current time, none
//! does I/O, so the same operations give the same decisions (the server feeds it from gRPC
//! and the log, a test from a script, a benchmark from a loop).
//!
//! Invariants, kept under any interleaving of operations (property-tested against a model):
//! an agent never holds more work on a channel than its capacity there, nor more than its
//! load limit in all; a contact is offered to or assigned to at most one agent at a time;
//! offers go only to available agents; every offer ends (accepted, declined, expired, or
//! withdrawn when the agent leaves), so work is never stuck with an unresponsive agent.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use rezef_events::event::Presence;
use rezef_events::{AgentId, Channel, InteractionId, Timestamp};

use crate::config::{Routing, Strategy};
use crate::expr::{Attributes, Value};

/// Who an agent is: what they can do and how much at once.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentProfile {
    pub id: AgentId,
    /// Skill → proficiency, 1 to 5.
    pub skills: BTreeMap<String, u8>,
    /// BCP 47 language tags the agent works in.
    pub languages: Vec<String>,
    pub team: String,
    pub site: String,
    /// How many contacts of each channel at once (a channel not listed: none).
    pub capacity: BTreeMap<Channel, u32>,
    /// How many contacts at once, over all channels.
    pub max_load: u32,
}

/// A contact that needs routing, with what the backbone knows of it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContactRequest {
    pub id: Option<InteractionId>,
    pub channel: Option<Channel>,
    /// When the customer first arrived (a callback keeps the original arrival).
    pub arrived_at: Option<Timestamp>,
    pub intent: Option<String>,
    pub language: Option<String>,
    pub tier: Option<String>,
    /// When the customer was first known, for the tenure priority.
    pub customer_since: Option<Timestamp>,
    /// A repeat contact about an open conversation.
    pub repeat: bool,
    /// The conversation's last agent (or a preferred one), tried first.
    pub preferred_agent: Option<AgentId>,
    pub context: BTreeMap<String, String>,
    /// The customer asked for a human, or the bot handed off.
    pub human_requested: bool,
    pub bot_failures: u32,
}

/// The identity of an offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OfferId(pub u64);

/// A contact offered to an agent, until accepted, declined or expired.
#[derive(Debug, Clone, PartialEq)]
pub struct Offer {
    pub id: OfferId,
    pub contact: InteractionId,
    pub agent: AgentId,
    pub queue: String,
    pub made_at: Timestamp,
    pub expires_at: Timestamp,
}

/// What routing decided for a new contact.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// Self service first.
    Bot { bot_id: String },
    /// An agent is free now: the contact is offered.
    Offered(Offer),
    /// The contact waits in its queue.
    Queued {
        position: usize,
        /// `None` while no agent is staffed for the queue.
        estimated_wait: Option<Duration>,
        /// The wait is above the queue's threshold: offer the customer a callback.
        offer_callback: bool,
    },
}

/// A decision with everything an audit needs to understand it.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub contact: InteractionId,
    pub target: Target,
    pub queue: String,
    /// The rule that chose the queue (`None`: the default queue).
    pub rule: Option<String>,
    /// The escalation step that applied.
    pub step: usize,
    pub priority: f64,
    /// The agents that qualified, best first (at most 10).
    pub candidates: Vec<AgentId>,
    pub config_version: u64,
}

/// Why an operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoutingError {
    #[error("contact {0} is already being routed")]
    DuplicateContact(InteractionId),
    #[error("contact {0} is not being routed")]
    UnknownContact(InteractionId),
    #[error("agent {0} is not known")]
    UnknownAgent(AgentId),
    #[error("offer {0} is not outstanding (accepted, declined, expired or withdrawn)")]
    UnknownOffer(u64),
    #[error("offer {offer} was made to {to}, not {by}")]
    NotYourOffer {
        offer: u64,
        to: AgentId,
        by: AgentId,
    },
    #[error("the request lacks {0}")]
    Missing(&'static str),
}

#[derive(Debug, Clone, PartialEq)]
enum State {
    Waiting,
    Offered(OfferId),
    Assigned { agent: AgentId, since: Timestamp },
}

#[derive(Debug, Clone)]
struct Contact {
    request: ContactRequest,
    id: InteractionId,
    channel: Channel,
    arrived_at: Timestamp,
    queued_at: Timestamp,
    queue: usize,
    rule: Option<usize>,
    /// Fixed at arrival; ageing is added at each decision.
    base_priority: f64,
    seq: u64,
    state: State,
    /// Agents who declined it: not offered it again.
    declined_by: BTreeSet<AgentId>,
    /// Agents who let an offer of it expire: offered it again only after everyone else.
    missed_by: BTreeSet<AgentId>,
    attributes: BTreeMap<String, Value>,
}

/// How an offer ended without an assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// The agent left (away, offline, disconnected).
    Withdrawn,
    Declined,
    /// Not accepted in time.
    Missed,
}

#[derive(Debug, Clone)]
struct Agent {
    profile: AgentProfile,
    presence: Presence,
    idle_since: Timestamp,
    /// Offered or assigned contacts, with their channel.
    work: BTreeMap<InteractionId, Channel>,
    misses_in_row: u32,
    attributes: BTreeMap<String, Value>,
}

impl Agent {
    fn free_for(&self, channel: Channel) -> bool {
        let on_channel = self.work.values().filter(|c| **c == channel).count();
        let capacity = self.profile.capacity.get(&channel).copied().unwrap_or(0) as usize;
        on_channel < capacity && self.work.len() < self.profile.max_load as usize
    }

    fn occupancy(&self) -> f64 {
        self.work.len() as f64 / f64::from(self.profile.max_load.max(1))
    }
}

/// Recent figures of a queue, for estimated waits.
#[derive(Debug, Clone, Default)]
struct History {
    handle_times: VecDeque<Duration>,
    waits: VecDeque<Duration>,
}

const HISTORY_LEN: usize = 100;
/// The handle time assumed before a queue has any history.
const DEFAULT_HANDLE_TIME: Duration = Duration::from_secs(300);

fn remember(samples: &mut VecDeque<Duration>, sample: Duration) {
    if samples.len() == HISTORY_LEN {
        samples.pop_front();
    }
    samples.push_back(sample);
}

fn mean(samples: &VecDeque<Duration>) -> Option<Duration> {
    let count = u32::try_from(samples.len()).ok().filter(|n| *n > 0)?;
    Some(samples.iter().sum::<Duration>() / count)
}

/// Live figures of one queue.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueStats {
    pub queue: String,
    pub waiting: usize,
    pub longest_wait: Duration,
    /// Agents available with free capacity, per channel.
    pub available: BTreeMap<Channel, usize>,
    /// The estimated wait of a contact arriving now.
    pub estimated_wait: Option<Duration>,
    pub average_wait: Option<Duration>,
    pub average_handle_time: Option<Duration>,
}

/// The engine.
#[derive(Debug, Clone)]
pub struct Engine {
    routing: Routing,
    agents: BTreeMap<AgentId, Agent>,
    contacts: BTreeMap<InteractionId, Contact>,
    offers: BTreeMap<OfferId, Offer>,
    history: Vec<History>,
    round_robin: Vec<Option<AgentId>>,
    next_offer: u64,
    next_seq: u64,
}

fn minutes(d: Duration) -> f64 {
    d.as_secs_f64() / 60.0
}

/// An agent's attributes with the contact's under `contact`, for requirements.
struct AgentView<'a> {
    agent: &'a BTreeMap<String, Value>,
    contact: &'a BTreeMap<String, Value>,
}

impl Attributes for AgentView<'_> {
    fn get(&self, path: &[String]) -> Value {
        match path.split_first() {
            Some((first, rest)) if first == "contact" => Attributes::get(self.contact, rest),
            _ => Attributes::get(self.agent, path),
        }
    }
}

impl Engine {
    pub fn new(routing: Routing) -> Self {
        let queues = routing.queues.len();
        Self {
            routing,
            agents: BTreeMap::new(),
            contacts: BTreeMap::new(),
            offers: BTreeMap::new(),
            history: vec![History::default(); queues],
            round_robin: vec![None; queues],
            next_offer: 1,
            next_seq: 0,
        }
    }

    pub fn routing(&self) -> &Routing {
        &self.routing
    }

    /// Replaces the configuration. Waiting contacts keep their place; a queue that no
    /// longer exists sends its contacts to the default queue.
    pub fn reconfigure(&mut self, routing: Routing) {
        let old: Vec<String> = self.routing.queues.iter().map(|q| q.id.clone()).collect();
        let mut history = vec![History::default(); routing.queues.len()];
        for (i, id) in old.iter().enumerate() {
            if let Some(new) = routing.queue_index(id) {
                history[new] = std::mem::take(&mut self.history[i]);
            }
        }
        for contact in self.contacts.values_mut() {
            contact.queue = routing
                .queue_index(&old[contact.queue])
                .unwrap_or(routing.default_queue);
            contact.rule = None;
        }
        self.round_robin = vec![None; routing.queues.len()];
        self.history = history;
        self.routing = routing;
    }

    /// Adds an agent or updates their profile (work in hand stays).
    pub fn upsert_agent(&mut self, profile: AgentProfile, now: Timestamp) {
        let attributes = agent_attributes(&profile);
        match self.agents.get_mut(&profile.id) {
            Some(agent) => {
                agent.profile = profile;
                agent.attributes = attributes;
            }
            None => {
                self.agents.insert(
                    profile.id.clone(),
                    Agent {
                        profile,
                        presence: Presence::Offline,
                        idle_since: now,
                        work: BTreeMap::new(),
                        misses_in_row: 0,
                        attributes,
                    },
                );
            }
        }
    }

    /// An agent's presence changed. Leaving (away, offline) withdraws their offers: the
    /// contacts go back to their queues.
    pub fn set_presence(
        &mut self,
        agent: &AgentId,
        presence: Presence,
        now: Timestamp,
    ) -> Result<(), RoutingError> {
        let entry = self
            .agents
            .get_mut(agent)
            .ok_or_else(|| RoutingError::UnknownAgent(agent.clone()))?;
        if entry.presence != Presence::Available && presence == Presence::Available {
            entry.idle_since = now;
            entry.misses_in_row = 0;
        }
        entry.presence = presence;
        if presence != Presence::Available {
            self.withdraw_offers_of(agent);
        }
        Ok(())
    }

    /// The agent's session ended: offers go back, the agent is offline.
    pub fn disconnect(&mut self, agent: &AgentId, now: Timestamp) -> Result<(), RoutingError> {
        self.set_presence(agent, Presence::Offline, now)
    }

    fn withdraw_offers_of(&mut self, agent: &AgentId) {
        let withdrawn: Vec<OfferId> = self
            .offers
            .values()
            .filter(|o| &o.agent == agent)
            .map(|o| o.id)
            .collect();
        for id in withdrawn {
            self.end_offer(id, Ended::Withdrawn);
        }
    }

    /// Ends an offer without an assignment; the contact waits again.
    fn end_offer(&mut self, id: OfferId, how: Ended) -> Option<Offer> {
        let offer = self.offers.remove(&id)?;
        let missed = how != Ended::Withdrawn;
        if let Some(agent) = self.agents.get_mut(&offer.agent) {
            agent.work.remove(&offer.contact);
            if missed {
                agent.misses_in_row += 1;
                if agent.misses_in_row >= self.routing.offers.max_declines {
                    agent.presence = self.routing.offers.presence_after_declines;
                }
            }
        }
        if let Some(contact) = self.contacts.get_mut(&offer.contact) {
            contact.state = State::Waiting;
            match how {
                Ended::Declined => contact.declined_by.insert(offer.agent.clone()),
                Ended::Missed => contact.missed_by.insert(offer.agent.clone()),
                Ended::Withdrawn => false,
            };
        }
        if missed
            && self
                .agents
                .get(&offer.agent)
                .is_some_and(|a| a.presence != Presence::Available)
        {
            self.withdraw_offers_of(&offer.agent.clone());
        }
        Some(offer)
    }

    /// Routes a new contact: a bot, an agent free now, or its queue.
    pub fn route(
        &mut self,
        request: ContactRequest,
        now: Timestamp,
    ) -> Result<Decision, RoutingError> {
        let id = request
            .id
            .clone()
            .ok_or(RoutingError::Missing("the contact id"))?;
        let channel = request
            .channel
            .ok_or(RoutingError::Missing("the channel"))?;
        if self.contacts.contains_key(&id) {
            return Err(RoutingError::DuplicateContact(id));
        }
        let attributes = contact_attributes(&request, now);
        if let Some(bot) = self.routing.bot_first.get(&channel)
            && !request.human_requested
            && request.bot_failures < bot.max_failures
        {
            return Ok(Decision {
                contact: id,
                target: Target::Bot {
                    bot_id: bot.bot_id.clone(),
                },
                queue: String::new(),
                rule: None,
                step: 0,
                priority: 0.0,
                candidates: Vec::new(),
                config_version: self.routing.version,
            });
        }
        let rule = self
            .routing
            .rules
            .iter()
            .position(|r| r.when.matches(&attributes));
        let queue = rule.map_or(self.routing.default_queue, |r| self.routing.rules[r].queue);
        let settings = &self.routing.priority;
        let tenure_years = request
            .customer_since
            .map_or(0.0, |since| {
                now.since(since).as_secs_f64() / (365.25 * 86_400.0)
            })
            .min(10.0);
        let base_priority = self.routing.queues[queue].priority
            + rule.map_or(0.0, |r| self.routing.rules[r].priority)
            + request
                .tier
                .as_deref()
                .and_then(|t| settings.tiers.get(t))
                .copied()
                .unwrap_or(0.0)
            + if request.repeat {
                settings.repeat_boost
            } else {
                0.0
            }
            + settings.tenure_per_year * tenure_years;
        let arrived_at = request.arrived_at.unwrap_or(now).min(now);
        self.next_seq += 1;
        self.contacts.insert(
            id.clone(),
            Contact {
                id: id.clone(),
                channel,
                arrived_at,
                queued_at: now,
                queue,
                rule,
                base_priority,
                seq: self.next_seq,
                state: State::Waiting,
                declined_by: BTreeSet::new(),
                missed_by: BTreeSet::new(),
                attributes,
                request,
            },
        );
        let candidates = self.candidates(&id, now);
        let step = self.step_of(&self.contacts[&id], now);
        let priority = self.priority(&self.contacts[&id], now);
        // Someone who waited longer (or matters more) gets the free agent first.
        let offers = self.dispatch(now);
        let target = match offers.into_iter().find(|o| o.contact == id) {
            Some(offer) => Target::Offered(offer),
            None => {
                let position = self.position(&id, now);
                let estimated_wait = self.estimated_wait(queue, position);
                let offer_callback =
                    match (estimated_wait, self.routing.queues[queue].callback_above) {
                        (Some(wait), Some(limit)) => wait > limit,
                        (None, Some(_)) => true,
                        _ => false,
                    };
                Target::Queued {
                    position,
                    estimated_wait,
                    offer_callback,
                }
            }
        };
        Ok(Decision {
            contact: id,
            target,
            queue: self.routing.queues[queue].id.clone(),
            rule: rule.map(|r| self.routing.rules[r].name.clone()),
            step,
            priority,
            candidates: candidates.into_iter().take(10).collect(),
            config_version: self.routing.version,
        })
    }

    fn priority(&self, contact: &Contact, now: Timestamp) -> f64 {
        contact.base_priority
            + self.routing.priority.ageing_per_minute * minutes(now.since(contact.arrived_at))
    }

    fn step_of(&self, contact: &Contact, now: Timestamp) -> usize {
        let in_queue = now.since(contact.queued_at);
        self.routing.queues[contact.queue]
            .steps
            .iter()
            .rposition(|s| s.after <= in_queue)
            .unwrap_or(0)
    }

    /// The agents who may take the contact now, best first.
    fn candidates(&self, id: &InteractionId, now: Timestamp) -> Vec<AgentId> {
        let Some(contact) = self.contacts.get(id) else {
            return Vec::new();
        };
        let queue = &self.routing.queues[contact.queue];
        let step_index = self.step_of(contact, now);
        let step = &queue.steps[step_index];
        let affinity_drop = queue.steps[..=step_index].iter().any(|s| s.drop_affinity);
        let language_drop = queue.steps[..=step_index].iter().any(|s| s.drop_language);
        // Affinity: the preferred agent alone, while they are available or about to be.
        if let Some(preferred) = &contact.request.preferred_agent
            && !affinity_drop
            && now < contact.queued_at.plus(self.routing.offers.affinity_timeout)
            && !contact.declined_by.contains(preferred)
            && let Some(agent) = self.agents.get(preferred)
            && matches!(
                agent.presence,
                Presence::Available | Presence::Busy | Presence::AfterContactWork
            )
        {
            return if agent.presence == Presence::Available && agent.free_for(contact.channel) {
                vec![preferred.clone()]
            } else {
                Vec::new()
            };
        }
        let rule_requirements = contact
            .rule
            .and_then(|r| self.routing.rules[r].requirements.as_ref());
        let language = contact
            .request
            .language
            .as_ref()
            .filter(|_| queue.require_language && !language_drop);
        let mut eligible: Vec<&Agent> = self
            .agents
            .values()
            .filter(|a| a.presence == Presence::Available && a.free_for(contact.channel))
            .filter(|a| !contact.declined_by.contains(&a.profile.id))
            .filter(|a| language.is_none_or(|l| a.profile.languages.iter().any(|x| x == l)))
            .filter(|a| {
                let view = AgentView {
                    agent: &a.attributes,
                    contact: &contact.attributes,
                };
                step.requirements.as_ref().is_none_or(|e| e.matches(&view))
                    && rule_requirements.is_none_or(|e| e.matches(&view))
            })
            .collect();
        match queue.strategy {
            Strategy::LongestIdle => eligible.sort_by_key(|a| a.idle_since),
            Strategy::LeastOccupied => eligible.sort_by(|a, b| {
                a.occupancy()
                    .total_cmp(&b.occupancy())
                    .then(a.idle_since.cmp(&b.idle_since))
            }),
            Strategy::HighestProficiency => {
                let skill = queue.skill.as_deref().unwrap_or_default();
                let level = |a: &Agent| a.profile.skills.get(skill).copied().unwrap_or(0);
                eligible.sort_by(|a, b| {
                    level(b)
                        .cmp(&level(a))
                        .then(a.idle_since.cmp(&b.idle_since))
                });
            }
            Strategy::RoundRobin => {
                if let Some(last) = &self.round_robin[contact.queue] {
                    let split = eligible.partition_point(|a| &a.profile.id <= last);
                    eligible.rotate_left(split);
                }
            }
        }
        // Those who let it expire come last: someone else first, but it is never stuck.
        eligible.sort_by_key(|a| contact.missed_by.contains(&a.profile.id));
        eligible.into_iter().map(|a| a.profile.id.clone()).collect()
    }

    /// Offers waiting contacts to free agents, highest priority first. Call it after
    /// anything that frees an agent or changes who may take what (and at the deadlines of
    /// [`Engine::next_deadline`]).
    pub fn dispatch(&mut self, now: Timestamp) -> Vec<Offer> {
        let mut waiting: Vec<(f64, Timestamp, u64, InteractionId)> = self
            .contacts
            .values()
            .filter(|c| c.state == State::Waiting)
            .map(|c| (self.priority(c, now), c.arrived_at, c.seq, c.id.clone()))
            .collect();
        waiting.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        let mut made = Vec::new();
        for (_, _, _, id) in waiting {
            if !self
                .agents
                .values()
                .any(|a| a.presence == Presence::Available)
            {
                break;
            }
            if let Some(agent) = self.candidates(&id, now).into_iter().next() {
                made.push(self.offer(&id, &agent, now));
            }
        }
        made
    }

    fn offer(&mut self, id: &InteractionId, agent_id: &AgentId, now: Timestamp) -> Offer {
        let contact = self
            .contacts
            .get_mut(id)
            .expect("offered contacts are routed");
        let offer = Offer {
            id: OfferId(self.next_offer),
            contact: id.clone(),
            agent: agent_id.clone(),
            queue: self.routing.queues[contact.queue].id.clone(),
            made_at: now,
            expires_at: now.plus(self.routing.offers.timeout),
        };
        self.next_offer += 1;
        contact.state = State::Offered(offer.id);
        let queue = contact.queue;
        let channel = contact.channel;
        if let Some(agent) = self.agents.get_mut(agent_id) {
            agent.work.insert(id.clone(), channel);
        }
        self.round_robin[queue] = Some(agent_id.clone());
        self.offers.insert(offer.id, offer.clone());
        offer
    }

    /// The agent takes the offered contact.
    pub fn accept(
        &mut self,
        offer: OfferId,
        agent: &AgentId,
        now: Timestamp,
    ) -> Result<Offer, RoutingError> {
        let found = self.own_offer(offer, agent)?;
        if now >= found.expires_at {
            self.end_offer(offer, Ended::Missed);
            return Err(RoutingError::UnknownOffer(offer.0));
        }
        let found = self.offers.remove(&offer).expect("checked above");
        if let Some(contact) = self.contacts.get_mut(&found.contact) {
            let wait = now.since(contact.arrived_at);
            remember(&mut self.history[contact.queue].waits, wait);
            contact.state = State::Assigned {
                agent: agent.clone(),
                since: now,
            };
        }
        if let Some(entry) = self.agents.get_mut(agent) {
            entry.misses_in_row = 0;
        }
        Ok(found)
    }

    /// The agent declines the offer: the contact goes to the next candidate.
    pub fn decline(&mut self, offer: OfferId, agent: &AgentId) -> Result<Offer, RoutingError> {
        self.own_offer(offer, agent)?;
        Ok(self
            .end_offer(offer, Ended::Declined)
            .expect("checked above"))
    }

    fn own_offer(&self, offer: OfferId, agent: &AgentId) -> Result<Offer, RoutingError> {
        let found = self
            .offers
            .get(&offer)
            .ok_or(RoutingError::UnknownOffer(offer.0))?;
        if &found.agent != agent {
            return Err(RoutingError::NotYourOffer {
                offer: offer.0,
                to: found.agent.clone(),
                by: agent.clone(),
            });
        }
        Ok(found.clone())
    }

    /// Withdraws offers past their timeout (a miss for the agent); returns them.
    pub fn expire_offers(&mut self, now: Timestamp) -> Vec<Offer> {
        let due: Vec<OfferId> = self
            .offers
            .values()
            .filter(|o| o.expires_at <= now)
            .map(|o| o.id)
            .collect();
        due.into_iter()
            .filter_map(|id| self.end_offer(id, Ended::Missed))
            .collect()
    }

    /// The contact is over (handled, or abandoned while waiting): capacity is freed.
    pub fn complete(&mut self, id: &InteractionId, now: Timestamp) -> Result<(), RoutingError> {
        let contact = self
            .contacts
            .remove(id)
            .ok_or_else(|| RoutingError::UnknownContact(id.clone()))?;
        match contact.state {
            State::Waiting => {}
            State::Offered(offer) => {
                self.offers.remove(&offer);
                self.release(id, None, now);
            }
            State::Assigned { agent, since } => {
                remember(
                    &mut self.history[contact.queue].handle_times,
                    now.since(since),
                );
                self.release(id, Some(&agent), now);
            }
        }
        Ok(())
    }

    fn release(&mut self, id: &InteractionId, holder: Option<&AgentId>, now: Timestamp) {
        for (agent_id, agent) in &mut self.agents {
            if holder.is_none_or(|h| h == agent_id)
                && agent.work.remove(id).is_some()
                && agent.work.is_empty()
            {
                agent.idle_since = now;
            }
        }
    }

    /// When something changes by itself next: an offer expires, a contact reaches its next
    /// escalation step or the end of its affinity wait. The caller dispatches then.
    pub fn next_deadline(&self, now: Timestamp) -> Option<Timestamp> {
        let offers = self.offers.values().map(|o| o.expires_at);
        let steps = self
            .contacts
            .values()
            .filter(|c| c.state == State::Waiting)
            .flat_map(|c| {
                let queue = &self.routing.queues[c.queue];
                let next_step = queue
                    .steps
                    .iter()
                    .map(|s| c.queued_at.plus(s.after))
                    .find(|at| *at > now);
                let affinity = c
                    .request
                    .preferred_agent
                    .as_ref()
                    .map(|_| c.queued_at.plus(self.routing.offers.affinity_timeout))
                    .filter(|at| *at > now);
                next_step.into_iter().chain(affinity)
            });
        offers.chain(steps).min()
    }

    /// 0 for the next contact of its queue to be served.
    fn position(&self, id: &InteractionId, now: Timestamp) -> usize {
        let Some(contact) = self.contacts.get(id) else {
            return 0;
        };
        let mine = (self.priority(contact, now), contact.arrived_at, contact.seq);
        self.contacts
            .values()
            .filter(|c| c.queue == contact.queue && c.state == State::Waiting && c.id != *id)
            .filter(|c| {
                let theirs = (self.priority(c, now), c.arrived_at, c.seq);
                theirs.0 > mine.0 || (theirs.0 == mine.0 && (theirs.1, theirs.2) < (mine.1, mine.2))
            })
            .count()
    }

    /// The estimated wait of the contact at `position`: the contacts ahead, served by the
    /// agents staffed for the queue at its recent handle time. `None` with nobody staffed.
    fn estimated_wait(&self, queue: usize, position: usize) -> Option<Duration> {
        let staffed = self
            .agents
            .values()
            .filter(|a| a.presence != Presence::Offline)
            .filter(|a| {
                self.routing.queues[queue].steps.iter().any(|s| {
                    let view = AgentView {
                        agent: &a.attributes,
                        contact: &BTreeMap::new(),
                    };
                    s.requirements.as_ref().is_none_or(|e| e.matches(&view))
                })
            })
            .count();
        let staffed = u32::try_from(staffed).ok().filter(|n| *n > 0)?;
        let handle = mean(&self.history[queue].handle_times).unwrap_or(DEFAULT_HANDLE_TIME);
        let ahead = u32::try_from(position + 1).unwrap_or(u32::MAX);
        Some(handle * ahead / staffed)
    }

    /// Live figures of every queue.
    pub fn stats(&self, now: Timestamp) -> Vec<QueueStats> {
        self.routing
            .queues
            .iter()
            .enumerate()
            .map(|(index, queue)| {
                let waiting: Vec<&Contact> = self
                    .contacts
                    .values()
                    .filter(|c| c.queue == index && c.state == State::Waiting)
                    .collect();
                let mut available = BTreeMap::new();
                for agent in self
                    .agents
                    .values()
                    .filter(|a| a.presence == Presence::Available)
                {
                    for channel in agent.profile.capacity.keys() {
                        if agent.free_for(*channel) {
                            *available.entry(*channel).or_insert(0) += 1;
                        }
                    }
                }
                QueueStats {
                    queue: queue.id.clone(),
                    waiting: waiting.len(),
                    longest_wait: waiting
                        .iter()
                        .map(|c| now.since(c.arrived_at))
                        .max()
                        .unwrap_or_default(),
                    available,
                    estimated_wait: self.estimated_wait(index, waiting.len()),
                    average_wait: mean(&self.history[index].waits),
                    average_handle_time: mean(&self.history[index].handle_times),
                }
            })
            .collect()
    }

    /// Outstanding offers.
    pub fn offers(&self) -> impl Iterator<Item = &Offer> {
        self.offers.values()
    }

    /// The agent a contact is assigned to, if any.
    pub fn assigned_to(&self, id: &InteractionId) -> Option<&AgentId> {
        match &self.contacts.get(id)?.state {
            State::Assigned { agent, .. } => Some(agent),
            _ => None,
        }
    }

    pub fn presence(&self, agent: &AgentId) -> Option<Presence> {
        self.agents.get(agent).map(|a| a.presence)
    }

    /// Each agent's work: contact → channel (offered or assigned).
    pub fn work(&self) -> impl Iterator<Item = (&AgentProfile, &BTreeMap<InteractionId, Channel>)> {
        self.agents.values().map(|a| (&a.profile, &a.work))
    }

    /// Contacts waiting, with their queue.
    pub fn waiting(&self) -> impl Iterator<Item = (&InteractionId, &str)> {
        self.contacts
            .values()
            .filter(|c| c.state == State::Waiting)
            .map(|c| (&c.id, self.routing.queues[c.queue].id.as_str()))
    }
}

fn agent_attributes(profile: &AgentProfile) -> BTreeMap<String, Value> {
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
                    .map(|l| Value::Text(l.clone()))
                    .collect(),
            ),
        ),
        ("team".to_owned(), Value::Text(profile.team.clone())),
        ("site".to_owned(), Value::Text(profile.site.clone())),
    ])
}

fn contact_attributes(request: &ContactRequest, now: Timestamp) -> BTreeMap<String, Value> {
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
        ("language".to_owned(), text(&request.language)),
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
