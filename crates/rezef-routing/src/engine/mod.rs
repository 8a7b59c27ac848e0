//! The routing engine: agents, waiting contacts and outstanding offers, and the decisions
//! that connect them. A pure state machine: every operation takes the current time, none
//! does I/O, so the same operations give the same decisions (the server feeds it from gRPC
//! and the log, a test from a script, a benchmark from a loop).
//!
//! Invariants, kept under any interleaving of operations (property-tested against a model
//! and against a naive reference engine): an agent never holds more work on a channel than
//! its capacity there, nor more than its load limit in all; a contact is offered to or
//! assigned to at most one agent at a time (a warm transfer or a consult draws in one more
//! agent, while its agent keeps it); offers go only to available agents; every offer
//! ends (accepted, declined, expired, or withdrawn when the agent leaves), so work is never
//! stuck with an unresponsive agent.
//!
//! Cost. A decision must take microseconds with thousands of agents and contacts, so
//! nothing is recomputed from scratch: who qualifies for each step of each queue is worked
//! out when an agent logs in or the configuration changes ([`pools`]); who is free on each
//! channel is a bitset kept as work comes and goes; waiting contacts are kept sorted in the
//! order they are served ([`state::WaitKey`]). Operations note what they changed (contacts
//! to place, agents who freed up); [`Engine::dispatch`] and [`Engine::route`] then settle
//! those alone ([`matching`]): a contact looks only at the agents of its pool, a freed agent
//! only at the contacts of its pools.

mod explain;
mod matching;
mod pools;
mod state;
mod status;
mod transfer;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use rezef_events::event::Presence;
use rezef_events::explained::Explanation;
use rezef_events::{AgentId, Channel, InteractionId, Timestamp};

use crate::agent_set::AgentSet;
use crate::config::Routing;
use pools::Pools;
use state::{Agent, Aside, Contact, Ended, History, LangId, Place, State, WaitKey, mean, remember};

pub use state::AgentView;
pub use status::{AgentStatus, Held};
pub use transfer::TransferTarget;

/// Who an agent is: what they can do and how much at once.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentProfile {
    pub id: AgentId,
    /// Skill → proficiency, 1 to 5.
    pub skills: BTreeMap<String, u8>,
    /// BCP 47 language tags the agent works in; an agent speaking `he` serves contacts in
    /// `he-IL` (matched on `rezef_events::language::spoken`).
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
    /// A scheduled callback: not offered to any agent before this time. Until then the
    /// contact is held (counted in [`QueueStats::scheduled`], not as waiting) and its
    /// escalation steps and affinity wait start at this time; its priority still ages from
    /// `arrived_at`. `None`, or a time not after now: routed at once.
    pub not_before: Option<Timestamp>,
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
    /// What the engine saw when it chose among agents (`None` for a bot).
    pub explanation: Option<Box<Explanation>>,
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
    #[error("contact {contact} is assigned to {agent}: the agent completes it")]
    Assigned {
        contact: InteractionId,
        agent: AgentId,
    },
    #[error("contact {contact} is not assigned to {agent}")]
    NotAssigned {
        contact: InteractionId,
        agent: AgentId,
    },
    #[error("a transfer or consult of contact {0} is under way: it ends first")]
    TransferPending(InteractionId),
    #[error("contact {0} has no consult under way")]
    NoConsult(InteractionId),
    #[error("queue {0} is not configured")]
    UnknownQueue(String),
    #[error("agent {0} cannot take the contact now (not available, or no room on its channel)")]
    AgentUnavailable(AgentId),
}

/// Where a withdrawn contact was.
#[derive(Debug, Clone, PartialEq)]
pub enum Withdrawn {
    /// Waiting in its queue.
    Waiting { queue: String },
    /// Offered: the offer is withdrawn, the agent free again.
    Offered(Offer),
}

/// Live figures of one queue.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueStats {
    pub queue: String,
    pub waiting: usize,
    /// Scheduled callbacks held until their time: not in `waiting`, `longest_wait` nor the
    /// estimated wait.
    pub scheduled: usize,
    pub longest_wait: Duration,
    /// Agents staffed for the queue, available and with room, per channel.
    pub available: BTreeMap<Channel, usize>,
    /// The estimated wait of a contact arriving now.
    pub estimated_wait: Option<Duration>,
    pub average_wait: Option<Duration>,
    pub average_handle_time: Option<Duration>,
}

/// The handle time assumed before a queue has any history.
const DEFAULT_HANDLE_TIME: Duration = Duration::from_secs(300);

fn minutes(d: Duration) -> f64 {
    d.as_secs_f64() / 60.0
}

/// The engine.
#[derive(Debug, Clone)]
pub struct Engine {
    routing: Routing,
    pools: Pools,
    agents: Vec<Agent>,
    agent_index: HashMap<AgentId, usize>,
    /// Available agents with room, per channel.
    free: BTreeMap<Channel, AgentSet>,
    /// Agents not offline.
    online: AgentSet,
    languages: HashMap<String, LangId>,
    /// Speakers of each language, by [`LangId`].
    speakers: Vec<AgentSet>,
    contacts: BTreeMap<u64, Contact>,
    contact_index: HashMap<InteractionId, u64>,
    /// Waiting contacts of each queue, in serving order and by arrival.
    queue_waiting: Vec<BTreeSet<WaitKey>>,
    queue_arrivals: Vec<BTreeSet<(Timestamp, u64)>>,
    /// Waiting contacts whose affinity to an agent still runs, by that agent.
    preferring: HashMap<AgentId, BTreeSet<u64>>,
    /// When waiting contacts change step or lose their affinity.
    timers: BTreeSet<(Timestamp, u64)>,
    offers: BTreeMap<OfferId, Offer>,
    expiries: BTreeSet<(Timestamp, OfferId)>,
    /// Contacts to place again, agents who may take more: settled at the next dispatch.
    unplaced: BTreeSet<u64>,
    freed: BTreeSet<usize>,
    /// Contacts placed since the last matching.
    just_placed: BTreeSet<WaitKey>,
    /// Offers made and not yet handed over by [`Engine::dispatch`].
    outbox: Vec<Offer>,
    history: Vec<History>,
    round_robin: Vec<Option<AgentId>>,
    next_offer: u64,
    next_seq: u64,
}

impl Engine {
    pub fn new(routing: Routing) -> Self {
        let queues = routing.queues.len();
        Self {
            pools: Pools::new(&routing),
            routing,
            agents: Vec::new(),
            agent_index: HashMap::new(),
            free: BTreeMap::new(),
            online: AgentSet::default(),
            languages: HashMap::new(),
            speakers: Vec::new(),
            contacts: BTreeMap::new(),
            contact_index: HashMap::new(),
            queue_waiting: vec![BTreeSet::new(); queues],
            queue_arrivals: vec![BTreeSet::new(); queues],
            preferring: HashMap::new(),
            timers: BTreeSet::new(),
            offers: BTreeMap::new(),
            expiries: BTreeSet::new(),
            unplaced: BTreeSet::new(),
            freed: BTreeSet::new(),
            just_placed: BTreeSet::new(),
            outbox: Vec::new(),
            history: vec![History::default(); queues],
            round_robin: vec![None; queues],
            next_offer: 1,
            next_seq: 0,
        }
    }

    pub fn routing(&self) -> &Routing {
        &self.routing
    }

    /// Replaces the configuration. Waiting contacts keep their place in line; a queue that
    /// no longer exists sends its contacts to the default queue. The next dispatch offers
    /// what the new configuration allows.
    pub fn reconfigure(&mut self, routing: Routing) {
        let old = std::mem::replace(&mut self.routing, routing);
        let routing = &self.routing;
        let mut history = vec![History::default(); routing.queues.len()];
        for (i, queue) in old.queues.iter().enumerate() {
            if let Some(new) = routing.queue_index(&queue.id) {
                history[new] = std::mem::take(&mut self.history[i]);
            }
        }
        self.history = history;
        self.round_robin = vec![None; routing.queues.len()];
        self.pools = Pools::new(routing);
        for (index, agent) in self.agents.iter_mut().enumerate() {
            agent.pools = self.pools.admit(routing, index, &agent.attributes);
            agent.affine.clear();
        }
        self.queue_waiting = vec![BTreeSet::new(); routing.queues.len()];
        self.queue_arrivals = vec![BTreeSet::new(); routing.queues.len()];
        self.preferring.clear();
        self.timers.clear();
        for (seq, contact) in &mut self.contacts {
            contact.queue = routing
                .queue_index(&old.queues[contact.queue].id)
                .unwrap_or(routing.default_queue);
            contact.rule = None;
            contact.key = WaitKey::new(
                contact.base_priority,
                routing.priority.ageing_per_minute,
                contact.arrived_at,
                *seq,
            );
            contact.place = Place::Nowhere;
            contact.timer = None;
            if contact.state == State::Waiting {
                if contact.held.is_none() {
                    self.queue_waiting[contact.queue].insert(contact.key);
                    self.queue_arrivals[contact.queue].insert((contact.arrived_at, *seq));
                }
                self.unplaced.insert(*seq);
            }
        }
    }

    /// The id of the language a `tag` speaks: `he`, `he-IL` and `iw` are one
    /// (`rezef_events::language::spoken`).
    fn language(&mut self, tag: &str) -> LangId {
        let spoken = rezef_events::language::spoken(tag);
        if let Some(id) = self.languages.get(&spoken) {
            return *id;
        }
        self.speakers.push(AgentSet::default());
        self.languages.insert(spoken, self.speakers.len() - 1);
        self.speakers.len() - 1
    }

    fn agent_index(&self, agent: &AgentId) -> Result<usize, RoutingError> {
        self.agent_index
            .get(agent)
            .copied()
            .ok_or_else(|| RoutingError::UnknownAgent(agent.clone()))
    }

    /// Adds an agent or updates their profile (work in hand stays).
    pub fn upsert_agent(&mut self, profile: AgentProfile, now: Timestamp) {
        let attributes = profile.attributes();
        let languages: Vec<LangId> = profile.languages.iter().map(|l| self.language(l)).collect();
        let index = match self.agent_index.get(&profile.id) {
            Some(index) => *index,
            None => {
                self.agents.push(Agent {
                    profile: profile.clone(),
                    attributes: BTreeMap::new(),
                    languages: Vec::new(),
                    presence: Presence::Offline,
                    idle_since: now,
                    work: BTreeMap::new(),
                    misses_in_row: 0,
                    pools: Vec::new(),
                    affine: BTreeSet::new(),
                });
                self.agent_index
                    .insert(profile.id.clone(), self.agents.len() - 1);
                self.agents.len() - 1
            }
        };
        for speakers in &mut self.speakers {
            speakers.set(index, false);
        }
        for language in &languages {
            self.speakers[*language].insert(index);
        }
        let pools = self.pools.admit(&self.routing, index, &attributes);
        let agent = &mut self.agents[index];
        agent.profile = profile;
        agent.attributes = attributes;
        agent.languages = languages;
        agent.pools = pools;
        self.refresh(index);
        self.freed.insert(index);
        self.replace_preferring(index);
    }

    /// Keeps the agent's membership of the free and online sets true to their state.
    fn refresh(&mut self, index: usize) {
        let agent = &self.agents[index];
        let available = agent.presence == Presence::Available;
        for channel in agent.profile.capacity.keys() {
            self.free.entry(*channel).or_default();
        }
        for (channel, free) in &mut self.free {
            free.set(index, available && agent.has_room(*channel));
        }
        self.online.set(index, agent.presence != Presence::Offline);
    }

    /// Contacts with affinity to the agent are placed again: whether they wait for the
    /// agent alone depends on the agent's presence.
    fn replace_preferring(&mut self, index: usize) {
        if let Some(contacts) = self.preferring.get(&self.agents[index].profile.id) {
            self.unplaced.extend(contacts.iter().copied());
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
        let index = self.agent_index(agent)?;
        let entry = &mut self.agents[index];
        if entry.presence != Presence::Available && presence == Presence::Available {
            entry.idle_since = now;
            entry.misses_in_row = 0;
        }
        self.change_presence(index, presence);
        Ok(())
    }

    fn change_presence(&mut self, index: usize, presence: Presence) {
        self.agents[index].presence = presence;
        self.refresh(index);
        self.replace_preferring(index);
        if presence == Presence::Available {
            self.freed.insert(index);
        } else {
            self.withdraw_offers_of(index);
        }
    }

    /// The agent's session ended: offers go back, consults they were in end, the agent is
    /// offline.
    pub fn disconnect(&mut self, agent: &AgentId, now: Timestamp) -> Result<(), RoutingError> {
        self.set_presence(agent, Presence::Offline, now)?;
        self.end_consults_of(self.agent_index(agent)?, now);
        Ok(())
    }

    fn withdraw_offers_of(&mut self, index: usize) {
        // Offers of contacts waiting for an agent, and warm transfers and consults to this one.
        let withdrawn: Vec<OfferId> = self.agents[index]
            .work
            .keys()
            .filter_map(|id| {
                let contact = self.contacts.get(self.contact_index.get(id)?)?;
                match contact.state {
                    State::Offered(offer) => Some(offer),
                    State::Assigned { agent: holder, .. } if holder != index => {
                        contact.aside.and_then(|aside| aside.offer)
                    }
                    State::Assigned { .. } | State::Waiting => None,
                }
            })
            .collect();
        for offer in withdrawn {
            self.end_offer(offer, Ended::Withdrawn);
        }
    }

    /// Ends an offer without an assignment; the contact waits again.
    fn end_offer(&mut self, id: OfferId, how: Ended) -> Option<Offer> {
        let offer = self.offers.remove(&id)?;
        self.expiries.remove(&(offer.expires_at, id));
        if let Some(index) = self.agent_index.get(&offer.agent).copied() {
            let agent = &mut self.agents[index];
            agent.work.remove(&offer.contact);
            self.refresh(index);
            self.freed.insert(index);
            if how != Ended::Withdrawn {
                let agent = &mut self.agents[index];
                agent.misses_in_row += 1;
                if agent.misses_in_row >= self.routing.offers.max_declines {
                    self.change_presence(index, self.routing.offers.presence_after_declines);
                }
            }
        }
        if let Some(seq) = self.contact_index.get(&offer.contact).copied() {
            let contact = self.contacts.get_mut(&seq).expect("indexed contacts exist");
            // A warm transfer or consult that did not happen: the contact stays with its agent.
            if contact.aside.is_some_and(|aside| aside.offer == Some(id)) {
                contact.aside = None;
                return Some(offer);
            }
            match how {
                Ended::Declined => contact.declined_by.insert(offer.agent.clone()),
                Ended::Missed => contact.missed_by.insert(offer.agent.clone()),
                Ended::Withdrawn => false,
            };
            self.wait_again(seq);
        }
        Some(offer)
    }

    /// The contact waits (again): in its queue's line (a scheduled callback joins it at its
    /// time), and to be placed at the next settling.
    fn wait_again(&mut self, seq: u64) {
        let contact = self.contacts.get_mut(&seq).expect("waiting contacts exist");
        contact.state = State::Waiting;
        if contact.held.is_none() {
            self.queue_waiting[contact.queue].insert(contact.key);
            self.queue_arrivals[contact.queue].insert((contact.arrived_at, seq));
        }
        self.unplaced.insert(seq);
    }

    /// The contact stops waiting: out of every line and index.
    fn stop_waiting(&mut self, seq: u64) {
        self.unplace(seq);
        self.unplaced.remove(&seq);
        let contact = &self.contacts[&seq];
        self.queue_waiting[contact.queue].remove(&contact.key);
        self.queue_arrivals[contact.queue].remove(&(contact.arrived_at, seq));
        if let Some(preferred) = &contact.request.preferred_agent
            && let Some(waiting) = self.preferring.get_mut(preferred)
        {
            waiting.remove(&seq);
            if waiting.is_empty() {
                self.preferring.remove(preferred);
            }
        }
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
        if self.contact_index.contains_key(&id) {
            return Err(RoutingError::DuplicateContact(id));
        }
        let attributes = request.attributes(now);
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
                explanation: None,
            });
        }
        let rule = self.routing.rule_for(&attributes);
        let queue = rule.map_or(self.routing.default_queue, |r| self.routing.rules[r].queue);
        let base_priority = self.routing.base_priority(&request, queue, rule, now);
        let arrived_at = request.arrived_at.unwrap_or(now).min(now);
        let held = request.not_before.filter(|at| *at > now);
        let language = request.language.as_deref().map(|l| self.language(l));
        self.next_seq += 1;
        let seq = self.next_seq;
        let key = WaitKey::new(
            base_priority,
            self.routing.priority.ageing_per_minute,
            arrived_at,
            seq,
        );
        self.contact_index.insert(id.clone(), seq);
        self.contacts.insert(
            seq,
            Contact {
                id: id.clone(),
                channel,
                language,
                arrived_at,
                queued_at: held.unwrap_or(now),
                waiting_since: arrived_at,
                held,
                queue,
                rule,
                base_priority,
                key,
                state: State::Waiting,
                place: Place::Nowhere,
                timer: None,
                aside: None,
                declined_by: BTreeSet::new(),
                missed_by: BTreeSet::new(),
                attributes,
                request,
            },
        );
        self.wait_again(seq);
        self.place_all(now);
        let candidates = self.ranked(seq);
        let mut explanation = self.explanation(seq, &candidates, now);
        let contact = &self.contacts[&seq];
        let step = self.step_of(contact, now);
        let priority = self.priority(contact, now);
        // Someone who waited longer (or matters more) gets a free agent first.
        let earlier = self.outbox.len();
        self.match_up(now);
        let made = self.outbox[earlier..].iter().position(|o| o.contact == id);
        let offered = made.map(|at| self.outbox[earlier + at].agent.clone());
        explanation.taken_ahead = candidates
            .iter()
            .map(|a| &self.agents[*a].profile.id)
            .take_while(|a| Some(*a) != offered.as_ref())
            .filter(|a| self.outbox[earlier..].iter().any(|o| &o.agent == *a))
            .cloned()
            .collect();
        let target = match made {
            Some(at) => Target::Offered(self.outbox.remove(earlier + at)),
            None => {
                let position = self.queue_waiting[queue].range(..key).count();
                explanation.contacts_ahead = Some(u32::try_from(position).unwrap_or(u32::MAX));
                let estimated_wait = self.estimated_wait(queue, position);
                // A scheduled callback is one already.
                let offer_callback = held.is_none()
                    && match (estimated_wait, self.routing.queues[queue].callback_above) {
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
            candidates: candidates
                .into_iter()
                .take(10)
                .map(|a| self.agents[a].profile.id.clone())
                .collect(),
            config_version: self.routing.version,
            explanation: Some(Box::new(explanation)),
        })
    }

    fn priority(&self, contact: &Contact, now: Timestamp) -> f64 {
        contact.base_priority
            + self.routing.priority.ageing_per_minute * minutes(now.since(contact.arrived_at))
    }

    fn step_of(&self, contact: &Contact, now: Timestamp) -> usize {
        self.routing
            .step_at(contact.queue, now.since(contact.queued_at))
    }

    /// Applies the escalations due by `now`, offers waiting contacts to free agents
    /// (highest priority first) and hands over every offer made since the last call and
    /// still outstanding. Call
    /// it after any operation, and at the deadlines of [`Engine::next_deadline`].
    pub fn dispatch(&mut self, now: Timestamp) -> Vec<Offer> {
        self.place_all(now);
        self.match_up(now);
        // An offer that ended before it was handed over was never seen: nothing to tell.
        let mut made = std::mem::take(&mut self.outbox);
        made.retain(|offer| self.offers.contains_key(&offer.id));
        made
    }

    fn offer(&mut self, seq: u64, agent: usize, now: Timestamp) {
        self.stop_waiting(seq);
        let offer = self.make_offer(seq, agent, now);
        let contact = self.contacts.get_mut(&seq).expect("offered contacts exist");
        contact.state = State::Offered(offer);
        self.round_robin[contact.queue] = Some(self.agents[agent].profile.id.clone());
    }

    /// An offer of the contact to the agent, whose capacity is held for it until it ends;
    /// handed over at the next dispatch.
    fn make_offer(&mut self, seq: u64, agent: usize, now: Timestamp) -> OfferId {
        let contact = &self.contacts[&seq];
        let offer = Offer {
            id: OfferId(self.next_offer),
            contact: contact.id.clone(),
            agent: self.agents[agent].profile.id.clone(),
            queue: self.routing.queues[contact.queue].id.clone(),
            made_at: now,
            expires_at: now.plus(self.routing.offers.timeout),
        };
        self.next_offer += 1;
        self.agents[agent]
            .work
            .insert(offer.contact.clone(), contact.channel);
        self.refresh(agent);
        self.expiries.insert((offer.expires_at, offer.id));
        self.offers.insert(offer.id, offer.clone());
        let id = offer.id;
        self.outbox.push(offer);
        id
    }

    /// The agent no longer holds the contact: their capacity is free again.
    fn free_agent(&mut self, index: usize, contact: &InteractionId, now: Timestamp) {
        let agent = &mut self.agents[index];
        if agent.work.remove(contact).is_some() && agent.work.is_empty() {
            agent.idle_since = now;
        }
        self.refresh(index);
        self.freed.insert(index);
    }

    /// The agent takes the offered contact.
    pub fn accept(
        &mut self,
        offer: OfferId,
        agent: &AgentId,
        now: Timestamp,
    ) -> Result<Offer, RoutingError> {
        let found = self.own_offer(offer, agent)?;
        let index = self.agent_index(agent)?;
        if now >= found.expires_at {
            self.end_offer(offer, Ended::Missed);
            return Err(RoutingError::UnknownOffer(offer.0));
        }
        self.offers.remove(&offer);
        self.expiries.remove(&(found.expires_at, offer));
        if let Some(seq) = self.contact_index.get(&found.contact).copied()
            && let Some(contact) = self.contacts.get_mut(&seq)
        {
            let aside = contact.aside.filter(|aside| aside.offer == Some(offer));
            match (contact.state, aside) {
                // A consult: the agent joins the one who keeps the contact.
                (State::Assigned { .. }, Some(aside)) if aside.consult => {
                    contact.aside = Some(Aside {
                        offer: None,
                        ..aside
                    });
                    self.agents[index].misses_in_row = 0;
                    return Ok(found);
                }
                // A warm transfer: it moves from the agent who held it.
                (State::Assigned { agent: holder, .. }, Some(_)) => {
                    contact.aside = None;
                    self.release(seq, holder, now);
                }
                _ => {
                    let wait = now.since(contact.waiting_since);
                    remember(&mut self.history[contact.queue].waits, wait);
                }
            }
            let contact = self.contacts.get_mut(&seq).expect("looked up above");
            contact.state = State::Assigned {
                agent: index,
                since: now,
            };
        }
        self.agents[index].misses_in_row = 0;
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
        let mut due: Vec<OfferId> = self
            .expiries
            .iter()
            .take_while(|(at, _)| *at <= now)
            .map(|(_, id)| *id)
            .collect();
        // Oldest offer first, whatever the timeout was when each was made.
        due.sort();
        due.into_iter()
            .filter_map(|id| self.end_offer(id, Ended::Missed))
            .collect()
    }

    /// The contact is over (handled, or abandoned while waiting): capacity is freed.
    pub fn complete(&mut self, id: &InteractionId, now: Timestamp) -> Result<(), RoutingError> {
        let seq = self
            .contact_index
            .get(id)
            .copied()
            .ok_or_else(|| RoutingError::UnknownContact(id.clone()))?;
        let holder = match self.contacts[&seq].state {
            State::Waiting => {
                self.stop_waiting(seq);
                None
            }
            // Offered only: the agent did not work on it, so their idle time goes on.
            State::Offered(offer) => self.offers.remove(&offer).and_then(|offer| {
                self.expiries.remove(&(offer.expires_at, offer.id));
                let index = self.agent_index.get(&offer.agent).copied()?;
                self.agents[index].work.remove(id);
                Some(index)
            }),
            State::Assigned { .. } if self.contacts[&seq].aside.is_some() => {
                return Err(RoutingError::TransferPending(id.clone()));
            }
            State::Assigned { agent, since } => {
                let queue = self.contacts[&seq].queue;
                remember(&mut self.history[queue].handle_times, now.since(since));
                Some(agent)
            }
        };
        self.contacts.remove(&seq);
        self.contact_index.remove(id);
        if let Some(index) = holder {
            self.free_agent(index, id, now);
        }
        Ok(())
    }

    /// The contact no longer needs an agent (the customer left, the interaction ended, self
    /// service resolved the need): out of its queue, or its offer withdrawn. A contact
    /// already assigned stays the agent's until they complete it.
    pub fn withdraw(
        &mut self,
        id: &InteractionId,
        now: Timestamp,
    ) -> Result<Withdrawn, RoutingError> {
        let seq = self
            .contact_index
            .get(id)
            .copied()
            .ok_or_else(|| RoutingError::UnknownContact(id.clone()))?;
        let contact = &self.contacts[&seq];
        let withdrawn = match contact.state {
            State::Waiting => Withdrawn::Waiting {
                queue: self.routing.queues[contact.queue].id.clone(),
            },
            State::Offered(offer) => match self.offers.get(&offer) {
                Some(offer) => Withdrawn::Offered(offer.clone()),
                None => Withdrawn::Waiting {
                    queue: self.routing.queues[contact.queue].id.clone(),
                },
            },
            State::Assigned { agent, .. } => {
                return Err(RoutingError::Assigned {
                    contact: id.clone(),
                    agent: self.agents[agent].profile.id.clone(),
                });
            }
        };
        self.complete(id, now)?;
        Ok(withdrawn)
    }

    /// When something changes by itself next: an offer expires, a contact reaches its next
    /// escalation step or the end of its affinity wait, a scheduled callback falls due;
    /// `now` if changes wait to be settled. The caller dispatches then.
    pub fn next_deadline(&self, now: Timestamp) -> Option<Timestamp> {
        if !self.unplaced.is_empty() || !self.freed.is_empty() {
            return Some(now);
        }
        let offer = self.expiries.first().map(|(at, _)| *at);
        let timer = self.timers.first().map(|(at, _)| *at);
        offer.into_iter().chain(timer).min()
    }

    /// The estimated wait of the contact at `position`: the contacts ahead, served by the
    /// agents staffed for the queue at its recent handle time. `None` with nobody staffed.
    fn estimated_wait(&self, queue: usize, position: usize) -> Option<Duration> {
        let staffed = self.pools.staff[queue].count_common(&self.online);
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
                let staff = &self.pools.staff[index];
                let available = self
                    .free
                    .iter()
                    .map(|(channel, free)| (*channel, free.count_common(staff)))
                    .filter(|(_, n)| *n > 0)
                    .collect();
                let waiting = self.queue_waiting[index].len();
                let scheduled = self
                    .contacts
                    .values()
                    .filter(|c| c.queue == index && c.held.is_some())
                    .count();
                QueueStats {
                    queue: queue.id.clone(),
                    waiting,
                    scheduled,
                    longest_wait: self.queue_arrivals[index]
                        .first()
                        .map(|(arrived, _)| now.since(*arrived))
                        .unwrap_or_default(),
                    available,
                    estimated_wait: self.estimated_wait(index, waiting),
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

    /// An outstanding offer.
    pub fn outstanding(&self, id: OfferId) -> Option<&Offer> {
        self.offers.get(&id)
    }

    /// The agent a contact is assigned to, if any.
    pub fn assigned_to(&self, id: &InteractionId) -> Option<&AgentId> {
        match self.contacts.get(self.contact_index.get(id)?)?.state {
            State::Assigned { agent, .. } => Some(&self.agents[agent].profile.id),
            _ => None,
        }
    }

    pub fn presence(&self, agent: &AgentId) -> Option<Presence> {
        let index = self.agent_index.get(agent)?;
        Some(self.agents[*index].presence)
    }

    /// Each agent's work: contact → channel (offered or assigned).
    pub fn work(&self) -> impl Iterator<Item = (&AgentProfile, &BTreeMap<InteractionId, Channel>)> {
        self.agents.iter().map(|a| (&a.profile, &a.work))
    }

    /// Contacts waiting, with their queue (scheduled callbacks held until their time too).
    pub fn waiting(&self) -> impl Iterator<Item = (&InteractionId, &str)> {
        self.contacts
            .values()
            .filter(|c| c.state == State::Waiting)
            .map(|c| (&c.id, self.routing.queues[c.queue].id.as_str()))
    }
}
