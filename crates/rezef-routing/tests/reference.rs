//! The engine against a naive reference that decides from scratch on every call: at each
//! dispatch it sorts every waiting contact by its aged priority and, in that order, offers
//! each to the best of all agents who may take it. The engine reaches its decisions from
//! indexes and from what changed; under any sequence of operations (presence, profiles,
//! routes, accepts, declines, expiries, completions, disconnects, a new configuration,
//! time passing) both must make the same offers, to the same agents, in the same order,
//! and answer every decision and queue figure alike. And every decision's recorded
//! explanation, run again by `rezef_routing::choice::rerun`, reproduces it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use proptest::prelude::*;
use rezef_events::event::Presence;
use rezef_events::{AgentId, Channel, InteractionId, Timestamp};
use rezef_routing::choice::{self, Recorded};
use rezef_routing::expr::Value;
use rezef_routing::{
    AgentProfile, AgentView, ContactRequest, Decision, Engine, Offer, OfferId, QueueStats, Routing,
    RoutingConfig, RoutingError, Strategy as Pick, Target,
};

/// Ageing at an odd rate, so that no two contacts' aged priorities tie exactly (the two
/// engines compute them with different roundings).
const CONFIG: &str = r#"
    version = 1
    default_queue = "general"
    [offers]
    timeout = "20s"
    max_declines = 2
    affinity_timeout = "45s"
    [priority]
    tiers = { vip = 10, gold = 5 }
    ageing_per_minute = 0.37
    repeat_boost = 3
    [bot_first.email]
    bot_id = "mail-bot"
    [[queues]]
    id = "general"
    require_language = true
    steps = [{ after = "0s" }, { after = "40s", drop_language = true }]
    [[queues]]
    id = "billing"
    strategy = "least_occupied"
    require_language = true
    steps = [
      { after = "0s", requirements = "skills.billing >= 4" },
      { after = "25s", requirements = "skills HAS 'billing'", drop_affinity = true },
      { after = "70s", requirements = "team == 'overflow' OR skills HAS 'billing'", drop_language = true },
    ]
    [[queues]]
    id = "sales"
    strategy = "highest_proficiency"
    skill = "sales"
    steps = [{ after = "0s", requirements = "skills HAS 'sales'" }]
    [[queues]]
    id = "support"
    strategy = "round_robin"
    steps = [{ after = "0s" }, { after = "30s" }]
    [[rules]]
    name = "billing"
    when = "intent == 'billing'"
    queue = "billing"
    [[rules]]
    name = "sales"
    when = "intent == 'sales'"
    queue = "sales"
    priority = 2
    [[rules]]
    name = "support-by-topic"
    when = "intent == 'support' AND context.topic != null"
    queue = "support"
    requirements = "skills HAS contact.context.topic"
    [[rules]]
    name = "support"
    when = "intent == 'support'"
    queue = "support"
    requirements = "site == 'north'"
"#;

/// The replacement: billing is gone (its contacts go to the default queue), support is
/// served by the longest idle, and new rules.
const CONFIG_2: &str = r#"
    version = 2
    default_queue = "general"
    [offers]
    timeout = "15s"
    max_declines = 3
    affinity_timeout = "20s"
    [priority]
    tiers = { vip = 7 }
    ageing_per_minute = 0.53
    [[queues]]
    id = "sales"
    steps = [{ after = "0s", requirements = "skills HAS 'sales' OR skills HAS 'billing'" }]
    [[queues]]
    id = "general"
    steps = [{ after = "0s" }]
    [[queues]]
    id = "support"
    require_language = true
    steps = [{ after = "0s", requirements = "languages HAS contact.language" }, { after = "20s" }]
    [[rules]]
    name = "sales"
    when = "intent == 'sales' OR intent == 'billing'"
    queue = "sales"
    [[rules]]
    name = "support"
    when = "intent == 'support'"
    queue = "support"
"#;

// ---------------------------------------------------------------------------------------
// The reference: everything derived again from the agents and contacts at each call.

#[derive(Debug, Clone)]
struct RefAgent {
    profile: AgentProfile,
    presence: Presence,
    idle_since: Timestamp,
    work: BTreeMap<InteractionId, Channel>,
    misses: u32,
}

#[derive(Debug, Clone, PartialEq)]
enum RefState {
    Waiting,
    Offered(OfferId),
    Assigned(AgentId, Timestamp),
}

#[derive(Debug, Clone)]
struct RefContact {
    request: ContactRequest,
    channel: Channel,
    arrived: Timestamp,
    queued: Timestamp,
    queue: usize,
    rule: Option<usize>,
    base: f64,
    seq: u64,
    state: RefState,
    declined: BTreeSet<AgentId>,
    missed: BTreeSet<AgentId>,
}

#[derive(Debug, Clone)]
struct Reference {
    routing: Routing,
    agents: BTreeMap<AgentId, RefAgent>,
    contacts: BTreeMap<InteractionId, RefContact>,
    offers: BTreeMap<OfferId, Offer>,
    outbox: Vec<Offer>,
    last_offered: BTreeMap<usize, AgentId>,
    handle_times: BTreeMap<String, VecDeque<Duration>>,
    waits: BTreeMap<String, VecDeque<Duration>>,
    next_offer: u64,
    next_seq: u64,
}

fn push(samples: &mut VecDeque<Duration>, sample: Duration) {
    samples.push_back(sample);
    if samples.len() > 100 {
        samples.pop_front();
    }
}

fn average(samples: Option<&VecDeque<Duration>>) -> Option<Duration> {
    let samples = samples.filter(|s| !s.is_empty())?;
    Some(samples.iter().sum::<Duration>() / samples.len() as u32)
}

impl Reference {
    fn new(routing: Routing) -> Self {
        Self {
            routing,
            agents: BTreeMap::new(),
            contacts: BTreeMap::new(),
            offers: BTreeMap::new(),
            outbox: Vec::new(),
            last_offered: BTreeMap::new(),
            handle_times: BTreeMap::new(),
            waits: BTreeMap::new(),
            next_offer: 1,
            next_seq: 0,
        }
    }

    fn reconfigure(&mut self, routing: Routing) {
        for contact in self.contacts.values_mut() {
            let id = &self.routing.queues[contact.queue].id;
            contact.queue = routing.queue_index(id).unwrap_or(routing.default_queue);
            contact.rule = None;
        }
        self.last_offered.clear();
        self.routing = routing;
    }

    fn upsert_agent(&mut self, profile: AgentProfile, now: Timestamp) {
        match self.agents.get_mut(&profile.id) {
            Some(agent) => agent.profile = profile,
            None => {
                let agent = RefAgent {
                    profile: profile.clone(),
                    presence: Presence::Offline,
                    idle_since: now,
                    work: BTreeMap::new(),
                    misses: 0,
                };
                self.agents.insert(profile.id, agent);
            }
        }
    }

    fn set_presence(&mut self, id: &AgentId, presence: Presence, now: Timestamp) {
        let agent = self.agents.get_mut(id).expect("known agent");
        if agent.presence != Presence::Available && presence == Presence::Available {
            agent.idle_since = now;
            agent.misses = 0;
        }
        agent.presence = presence;
        if presence != Presence::Available {
            let theirs: Vec<OfferId> = self
                .offers
                .values()
                .filter(|o| &o.agent == id)
                .map(|o| o.id)
                .collect();
            for offer in theirs {
                self.end(offer, None);
            }
        }
    }

    /// Ends an offer; `Some(declined)` for a decline or a miss, `None` for a withdrawal.
    fn end(&mut self, id: OfferId, declined: Option<bool>) -> Option<Offer> {
        let offer = self.offers.remove(&id)?;
        let agent = self
            .agents
            .get_mut(&offer.agent)
            .expect("offers go to agents");
        agent.work.remove(&offer.contact);
        let contact = self.contacts.get_mut(&offer.contact).expect("offered");
        contact.state = RefState::Waiting;
        if let Some(declined) = declined {
            if declined {
                contact.declined.insert(offer.agent.clone());
            } else {
                contact.missed.insert(offer.agent.clone());
            }
            agent.misses += 1;
            if agent.misses >= self.routing.offers.max_declines {
                let away = self.routing.offers.presence_after_declines;
                let (who, at) = (offer.agent.clone(), agent.idle_since);
                self.set_presence(&who, away, at);
            }
        }
        Some(offer)
    }

    fn room(agent: &RefAgent, channel: Channel) -> bool {
        let used = agent.work.values().filter(|c| **c == channel).count() as u32;
        used < agent.profile.capacity.get(&channel).copied().unwrap_or(0)
            && (agent.work.len() as u32) < agent.profile.max_load
    }

    fn step(&self, contact: &RefContact, now: Timestamp) -> usize {
        let steps = &self.routing.queues[contact.queue].steps;
        let in_queue = now.since(contact.queued);
        (0..steps.len())
            .rev()
            .find(|s| steps[*s].after <= in_queue)
            .unwrap_or(0)
    }

    fn priority(&self, contact: &RefContact, now: Timestamp) -> f64 {
        let minutes = now.since(contact.arrived).as_secs_f64() / 60.0;
        contact.base + self.routing.priority.ageing_per_minute * minutes
    }

    /// Every agent who may take the contact now, best first.
    fn candidates(&self, id: &InteractionId, now: Timestamp) -> Vec<AgentId> {
        let contact = &self.contacts[id];
        let queue = &self.routing.queues[contact.queue];
        let step = self.step(contact, now);
        let reached = &queue.steps[..=step];
        let language = (queue.require_language && !reached.iter().any(|s| s.drop_language))
            .then_some(contact.request.language.as_ref())
            .flatten();
        let contact_attributes = contact.request.attributes(contact.queued);
        let mut requirements: Vec<_> = queue.steps[step].requirements.iter().collect();
        requirements.extend(
            contact
                .rule
                .and_then(|r| self.routing.rules[r].requirements.as_ref()),
        );
        // Whether the agent may serve it at this step, presence and room aside.
        let qualified = |a: &RefAgent| {
            let attributes = a.profile.attributes();
            let view = AgentView {
                agent: &attributes,
                contact: &contact_attributes,
            };
            language.is_none_or(|l| a.profile.languages.contains(l))
                && requirements.iter().all(|e| e.matches(&view))
        };
        if let Some(preferred) = &contact.request.preferred_agent
            && !reached.iter().any(|s| s.drop_affinity)
            && now < contact.queued.plus(self.routing.offers.affinity_timeout)
            && !contact.declined.contains(preferred)
            && let Some(agent) = self.agents.get(preferred)
            && agent.presence != Presence::Away
            && agent.presence != Presence::Offline
            && qualified(agent)
        {
            let free = agent.presence == Presence::Available && Self::room(agent, contact.channel);
            return if free {
                vec![preferred.clone()]
            } else {
                vec![]
            };
        }
        let mut eligible: Vec<&RefAgent> = self
            .agents
            .values()
            .filter(|a| a.presence == Presence::Available && Self::room(a, contact.channel))
            .filter(|a| !contact.declined.contains(&a.profile.id))
            .filter(|a| qualified(a))
            .collect();
        let level = |a: &RefAgent| {
            let skill = queue.skill.as_deref().unwrap_or_default();
            -f64::from(a.profile.skills.get(skill).copied().unwrap_or(0))
        };
        let load = |a: &RefAgent| a.work.len() as f64 / f64::from(a.profile.max_load.max(1));
        let first_key = |a: &RefAgent| match queue.strategy {
            Pick::LeastOccupied => load(a),
            Pick::HighestProficiency => level(a),
            Pick::LongestIdle | Pick::RoundRobin => 0.0,
        };
        if queue.strategy == Pick::RoundRobin {
            // `agents` iterates by id: start after the last agent offered this queue's work.
            if let Some(last) = self.last_offered.get(&contact.queue) {
                let after = eligible.iter().filter(|a| &a.profile.id <= last).count();
                eligible.rotate_left(after);
            }
        } else {
            eligible.sort_by(|a, b| {
                first_key(a)
                    .total_cmp(&first_key(b))
                    .then(a.idle_since.cmp(&b.idle_since))
            });
        }
        eligible.sort_by_key(|a| contact.missed.contains(&a.profile.id));
        eligible.iter().map(|a| a.profile.id.clone()).collect()
    }

    fn dispatch_now(&mut self, now: Timestamp) {
        let mut waiting: Vec<(f64, Timestamp, u64, InteractionId)> = self
            .contacts
            .iter()
            .filter(|(_, c)| c.state == RefState::Waiting)
            .map(|(id, c)| (self.priority(c, now), c.arrived, c.seq, id.clone()))
            .collect();
        waiting.sort_by(|a, b| b.0.total_cmp(&a.0).then((a.1, a.2).cmp(&(b.1, b.2))));
        for (_, _, _, id) in waiting {
            let Some(agent) = self.candidates(&id, now).into_iter().next() else {
                continue;
            };
            let contact = self.contacts.get_mut(&id).expect("waiting");
            let offer = Offer {
                id: OfferId(self.next_offer),
                contact: id.clone(),
                agent: agent.clone(),
                queue: self.routing.queues[contact.queue].id.clone(),
                made_at: now,
                expires_at: now.plus(self.routing.offers.timeout),
            };
            self.next_offer += 1;
            contact.state = RefState::Offered(offer.id);
            let entry = self.agents.get_mut(&agent).expect("a candidate");
            entry.work.insert(id, contact.channel);
            self.last_offered.insert(contact.queue, agent);
            self.offers.insert(offer.id, offer.clone());
            self.outbox.push(offer);
        }
    }

    fn dispatch(&mut self, now: Timestamp) -> Vec<Offer> {
        self.dispatch_now(now);
        let mut made = std::mem::take(&mut self.outbox);
        made.retain(|o| self.offers.contains_key(&o.id));
        made
    }

    fn route(&mut self, request: ContactRequest, now: Timestamp) -> Result<Decision, RoutingError> {
        let id = request.id.clone().expect("the tests name every contact");
        let channel = request.channel.expect("and give a channel");
        if self.contacts.contains_key(&id) {
            return Err(RoutingError::DuplicateContact(id));
        }
        let mut decision = Decision {
            contact: id.clone(),
            target: Target::Bot {
                bot_id: String::new(),
            },
            queue: String::new(),
            rule: None,
            step: 0,
            priority: 0.0,
            candidates: Vec::new(),
            config_version: self.routing.version,
            explanation: None,
        };
        if let Some(bot) = self.routing.bot_first.get(&channel)
            && !request.human_requested
            && request.bot_failures < bot.max_failures
        {
            decision.target = Target::Bot {
                bot_id: bot.bot_id.clone(),
            };
            return Ok(decision);
        }
        let rule = self.routing.rule_for(&request.attributes(now));
        let queue = rule.map_or(self.routing.default_queue, |r| self.routing.rules[r].queue);
        self.next_seq += 1;
        let contact = RefContact {
            base: self.routing.base_priority(&request, queue, rule, now),
            arrived: request.arrived_at.unwrap_or(now).min(now),
            queued: now,
            channel,
            queue,
            rule,
            seq: self.next_seq,
            state: RefState::Waiting,
            declined: BTreeSet::new(),
            missed: BTreeSet::new(),
            request,
        };
        decision.queue = self.routing.queues[queue].id.clone();
        decision.rule = rule.map(|r| self.routing.rules[r].name.clone());
        decision.step = self.step(&contact, now);
        decision.priority = self.priority(&contact, now);
        self.contacts.insert(id.clone(), contact);
        decision.candidates = self.candidates(&id, now);
        decision.candidates.truncate(10);
        let earlier = self.outbox.len();
        self.dispatch_now(now);
        if let Some(at) = self.outbox[earlier..].iter().position(|o| o.contact == id) {
            decision.target = Target::Offered(self.outbox.remove(earlier + at));
            return Ok(decision);
        }
        let me = &self.contacts[&id];
        let mine = (-self.priority(me, now), me.arrived, me.seq);
        let position = self
            .contacts
            .values()
            .filter(|c| c.queue == queue && c.state == RefState::Waiting)
            .filter(|c| (-self.priority(c, now), c.arrived, c.seq) < mine)
            .count();
        let estimated_wait = self.estimated_wait(queue, position);
        let offer_callback = match (estimated_wait, self.routing.queues[queue].callback_above) {
            (Some(wait), Some(limit)) => wait > limit,
            (None, Some(_)) => true,
            _ => false,
        };
        decision.target = Target::Queued {
            position,
            estimated_wait,
            offer_callback,
        };
        Ok(decision)
    }

    /// Agents not offline who meet some step of the queue (a requirement that mentions the
    /// contact counts as met).
    fn staffed(&self, queue: usize) -> Vec<&RefAgent> {
        let steps = &self.routing.queues[queue].steps;
        let nobody = BTreeMap::<String, Value>::new();
        self.agents
            .values()
            .filter(|a| {
                let attributes = a.profile.attributes();
                let view = AgentView {
                    agent: &attributes,
                    contact: &nobody,
                };
                steps.iter().any(|s| {
                    s.requirements
                        .as_ref()
                        .is_none_or(|e| e.refers_to("contact") || e.matches(&view))
                })
            })
            .collect()
    }

    fn estimated_wait(&self, queue: usize, position: usize) -> Option<Duration> {
        let staffed = self
            .staffed(queue)
            .iter()
            .filter(|a| a.presence != Presence::Offline)
            .count() as u32;
        let id = &self.routing.queues[queue].id;
        let handle = average(self.handle_times.get(id)).unwrap_or(Duration::from_secs(300));
        (staffed > 0).then(|| handle * (position as u32 + 1) / staffed)
    }

    fn accept(&mut self, id: OfferId, by: &AgentId, now: Timestamp) -> Result<Offer, RoutingError> {
        let offer = self
            .offers
            .get(&id)
            .cloned()
            .ok_or(RoutingError::UnknownOffer(id.0))?;
        if &offer.agent != by {
            return Err(RoutingError::NotYourOffer {
                offer: id.0,
                to: offer.agent,
                by: by.clone(),
            });
        }
        if now >= offer.expires_at {
            self.end(id, Some(false));
            return Err(RoutingError::UnknownOffer(id.0));
        }
        self.offers.remove(&id);
        let contact = self.contacts.get_mut(&offer.contact).expect("offered");
        contact.state = RefState::Assigned(by.clone(), now);
        let wait = now.since(contact.arrived);
        let queue = self.routing.queues[contact.queue].id.clone();
        push(self.waits.entry(queue).or_default(), wait);
        self.agents.get_mut(by).expect("known").misses = 0;
        Ok(offer)
    }

    fn complete(&mut self, id: &InteractionId, now: Timestamp) -> Result<(), RoutingError> {
        let contact = self
            .contacts
            .remove(id)
            .ok_or_else(|| RoutingError::UnknownContact(id.clone()))?;
        let holder = match contact.state {
            RefState::Waiting => return Ok(()),
            // Offered only: the agent did no work, their idle time goes on.
            RefState::Offered(offer) => {
                let offer = self.offers.remove(&offer);
                if let Some(agent) = offer.and_then(|o| self.agents.get_mut(&o.agent)) {
                    agent.work.remove(id);
                }
                return Ok(());
            }
            RefState::Assigned(agent, since) => {
                let queue = self.routing.queues[contact.queue].id.clone();
                push(
                    self.handle_times.entry(queue).or_default(),
                    now.since(since),
                );
                Some(agent)
            }
        };
        if let Some(agent) = holder.and_then(|a| self.agents.get_mut(&a))
            && agent.work.remove(id).is_some()
            && agent.work.is_empty()
        {
            agent.idle_since = now;
        }
        Ok(())
    }

    /// The contact no longer needs an agent: as a completion, unless it is assigned.
    fn withdraw(&mut self, id: &InteractionId, now: Timestamp) -> Result<(), RoutingError> {
        if let Some(RefState::Assigned(agent, _)) = self.contacts.get(id).map(|c| &c.state) {
            return Err(RoutingError::Assigned {
                contact: id.clone(),
                agent: agent.clone(),
            });
        }
        self.complete(id, now)
    }

    fn stats(&self, now: Timestamp) -> Vec<QueueStats> {
        (0..self.routing.queues.len())
            .map(|q| {
                let id = &self.routing.queues[q].id;
                let waiting: Vec<&RefContact> = self
                    .contacts
                    .values()
                    .filter(|c| c.queue == q && c.state == RefState::Waiting)
                    .collect();
                let mut available = BTreeMap::new();
                for agent in self.staffed(q) {
                    for channel in agent.profile.capacity.keys() {
                        if agent.presence == Presence::Available && Self::room(agent, *channel) {
                            *available.entry(*channel).or_insert(0) += 1;
                        }
                    }
                }
                QueueStats {
                    queue: id.clone(),
                    waiting: waiting.len(),
                    // The reference routes no scheduled callbacks.
                    scheduled: 0,
                    longest_wait: waiting
                        .iter()
                        .map(|c| now.since(c.arrived))
                        .max()
                        .unwrap_or_default(),
                    available,
                    estimated_wait: self.estimated_wait(q, waiting.len()),
                    average_wait: average(self.waits.get(id)),
                    average_handle_time: average(self.handle_times.get(id)),
                }
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------
// The comparison.

#[derive(Debug, Clone)]
enum Op {
    Presence(usize, usize),
    Profile(usize, u8),
    Route {
        contact: usize,
        channel: usize,
        intent: usize,
        he: bool,
        tier: usize,
        preferred: Option<usize>,
        waited: u64,
        human: bool,
    },
    Dispatch,
    Accept(usize, bool),
    Decline(usize),
    Expire,
    Complete(usize),
    Withdraw(usize),
    Disconnect(usize),
    Reconfigure,
    Advance(u64),
}

const AGENTS: usize = 6;
const CONTACTS: usize = 16;
const PRESENCES: [Presence; 5] = [
    Presence::Available,
    Presence::Away,
    Presence::Busy,
    Presence::AfterContactWork,
    Presence::Offline,
];
const CHANNELS: [Channel; 3] = [Channel::Voice, Channel::Webchat, Channel::Email];
const INTENTS: [&str; 5] = ["billing", "sales", "support", "support/printer", "other"];
const TIERS: [Option<&str>; 3] = [None, Some("gold"), Some("vip")];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..AGENTS, 0..PRESENCES.len()).prop_map(|(a, p)| Op::Presence(a, p)),
        1 => (0..AGENTS, any::<u8>()).prop_map(|(a, variant)| Op::Profile(a, variant)),
        5 => (
            (0..CONTACTS, 0..CHANNELS.len(), 0..INTENTS.len(), any::<bool>()),
            (0..TIERS.len(), prop::option::of(0..AGENTS), 0u64..200, any::<bool>()),
        )
            .prop_map(|((contact, channel, intent, he), (tier, preferred, waited, human))| {
                Op::Route { contact, channel, intent, he, tier, preferred, waited, human }
            }),
        2 => Just(Op::Dispatch),
        3 => (0usize..4, prop::bool::weighted(0.9)).prop_map(|(k, own)| Op::Accept(k, own)),
        1 => (0usize..4).prop_map(Op::Decline),
        1 => Just(Op::Expire),
        3 => (0..CONTACTS).prop_map(Op::Complete),
        2 => (0..CONTACTS).prop_map(Op::Withdraw),
        1 => (0..AGENTS).prop_map(Op::Disconnect),
        1 => Just(Op::Reconfigure),
        3 => (1u64..40).prop_map(Op::Advance),
    ]
}

fn agent(n: usize) -> AgentId {
    AgentId::new(format!("a-{n}")).expect("valid")
}

fn contact(n: usize) -> InteractionId {
    InteractionId::new(format!("c-{n}")).expect("valid")
}

/// Agent `n`'s profile; `variant` changes skills, languages and capacity.
fn profile(n: usize, variant: u8) -> AgentProfile {
    let skills = [
        ("billing", 2 + (n + variant as usize) % 4),
        ("sales", 1 + n % 5),
    ]
    .into_iter()
    .filter(|(skill, _)| *skill != "billing" || n % 3 != 1)
    .filter(|(skill, _)| *skill != "sales" || (n + variant as usize).is_multiple_of(2))
    .map(|(skill, level)| (skill.to_owned(), level as u8))
    .chain(
        n.is_multiple_of(2)
            .then(|| ("support/printer".to_owned(), 3)),
    )
    .collect();
    let languages = match (n + variant as usize) % 3 {
        0 => vec!["he".to_owned()],
        1 => vec!["en".to_owned()],
        _ => vec!["en".to_owned(), "he".to_owned()],
    };
    AgentProfile {
        id: agent(n),
        skills,
        languages,
        team: if n == 5 { "overflow" } else { "core" }.to_owned(),
        site: if n.is_multiple_of(2) {
            "north"
        } else {
            "south"
        }
        .to_owned(),
        capacity: BTreeMap::from([
            (Channel::Voice, 1),
            (Channel::Webchat, 1 + (variant as u32 + n as u32) % 3),
            (Channel::Email, 2),
        ]),
        max_load: 2 + (n as u32 + variant as u32) % 2,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_engine_decides_as_the_naive_reference_does(ops in prop::collection::vec(op(), 1..150)) {
        let first = RoutingConfig::from_toml(CONFIG).expect("compiles");
        let second = RoutingConfig::from_toml(CONFIG_2).expect("compiles");
        let mut engine = Engine::new(first.clone());
        let mut reference = Reference::new(first);
        let mut now = Timestamp::from_unix_millis(1_800_000_000_000);
        for n in 0..AGENTS {
            engine.upsert_agent(profile(n, 0), now);
            reference.upsert_agent(profile(n, 0), now);
        }
        for op in ops {
            match op {
                Op::Presence(a, p) => {
                    engine.set_presence(&agent(a), PRESENCES[p], now).expect("known");
                    reference.set_presence(&agent(a), PRESENCES[p], now);
                }
                Op::Profile(a, variant) => {
                    engine.upsert_agent(profile(a, variant), now);
                    reference.upsert_agent(profile(a, variant), now);
                }
                Op::Route { contact: c, channel, intent, he, tier, preferred, waited, human } => {
                    let (intent, topic) = match INTENTS[intent].split_once('/') {
                        Some((intent, topic)) => (intent, Some(topic)),
                        None => (INTENTS[intent], None),
                    };
                    let request = ContactRequest {
                        id: Some(contact(c)),
                        channel: Some(CHANNELS[channel]),
                        arrived_at: Some(Timestamp::from_unix_nanos(
                            now.unix_nanos() - waited as i64 * 1_000_000_000,
                        )),
                        intent: Some(intent.to_owned()),
                        language: Some(if he { "he" } else { "en" }.to_owned()),
                        tier: TIERS[tier].map(str::to_owned),
                        repeat: waited % 3 == 0,
                        preferred_agent: preferred.map(agent),
                        context: topic
                            .map(|t| BTreeMap::from([("topic".to_owned(), format!("support/{t}"))]))
                            .unwrap_or_default(),
                        human_requested: human,
                        ..ContactRequest::default()
                    };
                    let mut decided = engine.route(request.clone(), now);
                    // Replaying what the decision recorded reproduces it.
                    if let Ok(decision) = &mut decided
                        && let Some(explanation) = decision.explanation.take()
                    {
                        let offered = match &decision.target {
                            Target::Offered(offer) => Some(&offer.agent),
                            _ => None,
                        };
                        let differences = choice::rerun(&Recorded {
                            explanation: &explanation,
                            contact: &request.attributes(now),
                            candidates: &decision.candidates,
                            offered,
                        });
                        prop_assert!(differences.is_empty(), "{:?}", differences);
                    }
                    let expected = reference.route(request, now);
                    prop_assert_eq!(decided, expected);
                }
                Op::Dispatch => {
                    prop_assert_eq!(engine.dispatch(now), reference.dispatch(now));
                }
                Op::Accept(k, own) => {
                    let offer = engine.offers().nth(k).cloned();
                    if let Some(offer) = offer {
                        let by = if own { offer.agent.clone() } else { agent(9) };
                        prop_assert_eq!(
                            engine.accept(offer.id, &by, now),
                            reference.accept(offer.id, &by, now)
                        );
                    }
                }
                Op::Decline(k) => {
                    let offer = engine.offers().nth(k).cloned();
                    if let Some(offer) = offer {
                        engine.decline(offer.id, &offer.agent).expect("own offer");
                        reference.end(offer.id, Some(true));
                    }
                }
                Op::Expire => {
                    let expired: Vec<OfferId> = reference
                        .offers
                        .values()
                        .filter(|o| o.expires_at <= now)
                        .map(|o| o.id)
                        .collect();
                    let expected: Vec<Offer> = expired
                        .into_iter()
                        .filter_map(|id| reference.end(id, Some(false)))
                        .collect();
                    prop_assert_eq!(engine.expire_offers(now), expected);
                }
                Op::Complete(c) => {
                    prop_assert_eq!(
                        engine.complete(&contact(c), now),
                        reference.complete(&contact(c), now)
                    );
                }
                Op::Withdraw(c) => {
                    let withdrawn = engine.withdraw(&contact(c), now).map(|_| ());
                    prop_assert_eq!(withdrawn, reference.withdraw(&contact(c), now));
                }
                Op::Disconnect(a) => {
                    engine.disconnect(&agent(a), now).expect("known");
                    reference.set_presence(&agent(a), Presence::Offline, now);
                }
                Op::Reconfigure => {
                    engine.reconfigure(second.clone());
                    reference.reconfigure(second.clone());
                }
                Op::Advance(seconds) => now = now.plus(Duration::from_secs(seconds)),
            }
            let offers: Vec<&Offer> = engine.offers().collect();
            prop_assert_eq!(offers, reference.offers.values().collect::<Vec<_>>());
            let work: Vec<_> = engine.work().map(|(p, w)| (p.id.clone(), w.clone())).collect();
            let expected: Vec<_> = reference
                .agents
                .values()
                .map(|a| (a.profile.id.clone(), a.work.clone()))
                .collect();
            prop_assert_eq!(work, expected);
            for (id, _) in engine.waiting() {
                prop_assert_eq!(&reference.contacts[id].state, &RefState::Waiting);
            }
            for (n, a) in reference.agents.values().enumerate() {
                prop_assert_eq!(engine.presence(&agent(n)), Some(a.presence));
            }
            prop_assert_eq!(engine.stats(now), reference.stats(now));
        }
    }
}
