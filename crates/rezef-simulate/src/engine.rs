//! The discrete-event simulation: an agenda of what happens next (an arrival, the end of
//! self service, a customer's patience running out, an agent becoming free, the centre
//! opening or closing), taken in time order. Each step writes the events the adapters
//! would publish, some of them ahead of time (a handled contact's whole talk is known when
//! an agent takes it); they are sorted by time at the end, each interaction's in the order
//! written (its times never go back). `agents.rs`: the agents' side, dispatch and handling.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};

use rezef_proto::v1::{self, AbandonPoint, Channel, EndReason, Participant, StepOutcome};

use crate::emit::{self, Stamp};
use crate::rng::Rng;
use crate::roster::{Agent, roster};
use crate::{Config, Error};

mod agents;

const HOUR_MS: u64 = 3_600_000;
const DAY_MS: u64 = 24 * HOUR_MS;
/// A need takes at most this many contacts (the first and two returns).
const MAX_VISITS: u32 = 3;

/// What happens next, on the agenda.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Action {
    Arrive(usize),
    Queue(usize),
    GiveUp(usize),
    Free { agent: usize, cost: u32 },
    Open,
    Close,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Arriving,
    Waiting { callback: bool },
    Done,
}

/// Who wants what: a customer, the intent of their need, and their language.
#[derive(Debug, Clone, Copy)]
struct Need {
    customer: u64,
    intent: usize,
    language: usize,
}

/// One contact: a customer's visit on one channel about one need.
#[derive(Debug, Clone)]
struct Contact {
    need: Need,
    channel: Channel,
    interaction: String,
    arrived: u64,
    /// Contacts about this need so far, this one included.
    visit: u32,
    /// The need is still open: a call or chat skips the menus (the conversation resumes).
    resumes: bool,
    /// The time of its latest event: later ones are never earlier.
    last: u64,
    state: State,
}

#[derive(Debug)]
struct Seat {
    agent: Agent,
    load: u32,
    on_shift: bool,
    idle_since: u64,
}

/// The simulation's state (see the module docs).
struct Sim<'a> {
    config: &'a Config,
    rng: Rng,
    stamp: Stamp,
    now: u64,
    horizon: u64,
    agenda: BinaryHeap<Reverse<(u64, u64, Action)>>,
    scheduled: u64,
    contacts: Vec<Contact>,
    seats: Vec<Seat>,
    /// Waiting contacts in the order they entered a queue.
    waiting: Vec<usize>,
    /// Queue and language pairs some agent can serve: others wait for the skill only.
    served: BTreeSet<(usize, usize)>,
    queues: Vec<String>,
    out: Vec<(u64, u64, v1::Event)>,
    customers: u64,
}

/// Runs the day: its events in time order, and the roster.
pub fn run(config: &Config) -> Result<(Vec<v1::Event>, Vec<Agent>), Error> {
    config.validate()?;
    let horizon = config.until.map_or(DAY_MS, |until| {
        let ms = until
            .duration_since(config.day_start)
            .map_or(0, |d| d.as_millis());
        u64::try_from(ms).unwrap_or(u64::MAX).min(DAY_MS)
    });
    let agents = roster(config);
    let queues: Vec<String> = config.queues().into_iter().map(str::to_owned).collect();
    let mut served = BTreeSet::new();
    for (q, queue) in queues.iter().enumerate() {
        for (l, (language, _)) in config.languages.iter().enumerate() {
            if agents.iter().any(|a| a.serves(queue) && a.speaks(language)) {
                served.insert((q, l));
            }
        }
    }
    let mut sim = Sim {
        config,
        rng: Rng::new(config.seed),
        stamp: Stamp::new(
            &config.tenant,
            &config.source,
            config.seed,
            config.day_start,
        ),
        now: 0,
        horizon,
        agenda: BinaryHeap::new(),
        scheduled: 0,
        contacts: Vec::new(),
        seats: (agents.iter().cloned())
            .map(|agent| Seat {
                agent,
                load: 0,
                on_shift: false,
                idle_since: 0,
            })
            .collect(),
        waiting: Vec::new(),
        served,
        queues,
        out: Vec::new(),
        customers: 0,
    };
    sim.arrivals();
    sim.schedule(u64::from(config.open_hour) * HOUR_MS, Action::Open);
    sim.schedule(u64::from(config.close_hour) * HOUR_MS, Action::Close);
    while let Some(Reverse((at, _, action))) = sim.agenda.pop() {
        if at >= sim.horizon {
            break;
        }
        sim.now = at;
        sim.step(action);
    }
    let mut out = sim.out;
    out.retain(|(at, _, _)| *at < horizon);
    out.sort_by_key(|(at, seq, _)| (*at, *seq));
    Ok((out.into_iter().map(|(_, _, event)| event).collect(), agents))
}

fn ms(secs: f64) -> u64 {
    (secs * 1000.0).round().max(1.0) as u64
}

impl Sim<'_> {
    fn schedule(&mut self, at: u64, action: Action) {
        self.scheduled += 1;
        self.agenda.push(Reverse((at, self.scheduled, action)));
    }

    /// The day's new needs: Poisson arrivals at each hour's rate.
    fn arrivals(&mut self) {
        let total: u64 = self.config.profile.iter().map(|r| u64::from(*r)).sum();
        for (hour, rate) in (0u64..).zip(self.config.profile) {
            let per_hour = f64::from(self.config.contacts) * f64::from(rate) / total as f64;
            if per_hour <= 0.0 {
                continue;
            }
            let mut at = hour * HOUR_MS;
            loop {
                at += ms(self.rng.exponential(3600.0 / per_hour));
                if at >= (hour + 1) * HOUR_MS {
                    break;
                }
                self.customers += 1;
                let channel = self.pick_channel(None);
                let need = Need {
                    customer: self.customers,
                    intent: (self.rng).weighted(self.config.intents.iter().map(|i| i.weight)),
                    language: (self.rng).weighted(self.config.languages.iter().map(|l| l.1)),
                };
                self.arrive(need, channel, at, 1, false);
            }
        }
    }

    fn pick_channel(&mut self, not: Option<Channel>) -> Channel {
        let weights =
            self.config.channels.iter().map(
                |(channel, weight)| {
                    if Some(*channel) == not { 0 } else { *weight }
                },
            );
        let index = if weights.clone().all(|w| w == 0) {
            self.rng.weighted(self.config.channels.iter().map(|c| c.1))
        } else {
            self.rng.weighted(weights)
        };
        self.config.channels[index].0
    }

    fn arrive(&mut self, need: Need, channel: Channel, at: u64, visit: u32, resumes: bool) {
        let index = self.contacts.len();
        self.contacts.push(Contact {
            need,
            channel,
            interaction: self.stamp.interaction(index),
            arrived: at,
            visit,
            resumes,
            last: at,
            state: State::Arriving,
        });
        self.schedule(at, Action::Arrive(index));
    }

    fn emit(&mut self, contact: usize, at: u64, payload: v1::event::Payload) {
        let c = &mut self.contacts[contact];
        let at = at.max(c.last);
        c.last = at;
        let who = (c.need.customer, c.channel, c.interaction.as_str());
        let event = self.stamp.event(at, Some(who), payload);
        self.out.push((at, self.out.len() as u64, event));
    }

    fn emit_agent(&mut self, seat: usize, presence: v1::Presence) {
        let payload = emit::presence(&self.seats[seat].agent.id, presence);
        let event = self.stamp.event(self.now, None, payload);
        self.out.push((self.now, self.out.len() as u64, event));
    }

    fn is_open(&self, at: u64) -> bool {
        let hour = at / HOUR_MS;
        (u64::from(self.config.open_hour)..u64::from(self.config.close_hour)).contains(&hour)
    }

    fn step(&mut self, action: Action) {
        match action {
            Action::Arrive(c) => self.arrived(c),
            Action::Queue(c) => self.queue(c),
            Action::GiveUp(c) => self.give_up(c),
            Action::Free { agent, cost } => {
                let seat = &mut self.seats[agent];
                seat.load -= cost;
                if seat.load == 0 {
                    seat.idle_since = self.now;
                    if !seat.on_shift {
                        self.emit_agent(agent, v1::Presence::Offline);
                    }
                }
                self.dispatch();
            }
            Action::Open => {
                for seat in 0..self.seats.len() {
                    self.seats[seat].on_shift = true;
                    self.seats[seat].idle_since = self.now;
                    self.emit_agent(seat, v1::Presence::Available);
                }
                self.dispatch();
            }
            Action::Close => {
                for seat in 0..self.seats.len() {
                    self.seats[seat].on_shift = false;
                    if self.seats[seat].load == 0 {
                        self.emit_agent(seat, v1::Presence::Offline);
                    }
                }
            }
        }
    }

    /// A contact arrives: it starts, and goes through the IVR or the bot on a call or a
    /// chat (unless it resumes an open need), or straight to its queue in writing.
    fn arrived(&mut self, c: usize) {
        let now = self.now;
        let contact = self.contacts[c].clone();
        let intent = self.config.intents[contact.need.intent].clone();
        let language = self.config.languages[contact.need.language].0.clone();
        self.emit(c, now, emit::started(&language));
        let real_time = matches!(contact.channel, Channel::Voice | Channel::Webchat);
        if real_time && !self.is_open(now) {
            let prompt = "We are closed now; our hours are on the website.";
            self.emit(
                c,
                now + 8_000,
                emit::step("closed", prompt, StepOutcome::Continued),
            );
            self.emit(c, now + 10_000, emit::ended(EndReason::Completed));
            self.contacts[c].state = State::Done;
            return;
        }
        match contact.channel {
            Channel::Voice | Channel::Webchat if contact.resumes => {
                self.emit(c, now, emit::detected(&intent.name, "context"));
                self.queue(c);
            }
            Channel::Voice => {
                let menus = ms(self.rng.log_normal(40.0, 0.4));
                self.emit(
                    c,
                    now + menus / 2,
                    emit::step(
                        "main-menu",
                        "What is your call about?",
                        StepOutcome::Continued,
                    ),
                );
                self.emit(c, now + menus / 2, emit::detected(&intent.name, "ivr"));
                self.self_service(
                    c,
                    menus,
                    AbandonPoint::Ivr,
                    self.config.ivr_abandon,
                    intent.self_service,
                );
            }
            Channel::Webchat => {
                let talk = ms(self.rng.log_normal(90.0, 0.5));
                self.emit(
                    c,
                    now + 2_000,
                    emit::said(Participant::Bot, "Hi, how can I help?"),
                );
                self.emit(c, now + talk / 3, emit::detected(&intent.name, "bot"));
                self.self_service(
                    c,
                    talk,
                    AbandonPoint::Bot,
                    self.config.bot_abandon,
                    intent.self_service,
                );
            }
            _ => {
                self.emit(
                    c,
                    now,
                    emit::said(Participant::Customer, "Hello, I need help with my account."),
                );
                self.emit(c, now + 1_000, emit::detected(&intent.name, "nlu"));
                self.schedule(now + 1_000, Action::Queue(c));
            }
        }
    }

    /// The IVR's menus or the bot's talk, `took` long: the customer gives up, self service
    /// settles the need, or it hands over to the queue.
    fn self_service(
        &mut self,
        c: usize,
        took: u64,
        point: AbandonPoint,
        abandon: f64,
        contained: f64,
    ) {
        let now = self.now;
        let (step_id, prompt) = match point {
            AbandonPoint::Ivr => ("self-service-menu", "Press 1 to hear your balance."),
            _ => ("bot-answer", "Here is what I found."),
        };
        if self.rng.chance(abandon) {
            let after = took / 2 + (self.rng.unit() * took as f64 / 2.0) as u64;
            self.emit(c, now + after, emit::abandoned(point));
            self.finished(c, now + after, false);
        } else if self.rng.chance(contained) {
            self.emit(
                c,
                now + took,
                emit::step(step_id, prompt, StepOutcome::Contained),
            );
            self.emit(c, now + took + 3_000, emit::ended(EndReason::Completed));
            self.contacts[c].state = State::Done;
        } else {
            self.emit(
                c,
                now + took,
                emit::step(step_id, prompt, StepOutcome::Escalated),
            );
            if point == AbandonPoint::Bot {
                let intent = &self.config.intents[self.contacts[c].need.intent];
                let summary = format!(
                    "The customer asks about {}; the bot could not settle it.",
                    intent.name
                );
                let queue = intent.queue.clone();
                self.emit(c, now + took, emit::handoff(&queue, summary));
            }
            self.schedule(now + took, Action::Queue(c));
        }
    }

    fn queue_of(&self, c: usize) -> usize {
        let queue = &self.config.intents[self.contacts[c].need.intent].queue;
        self.queues.iter().position(|q| q == queue).unwrap_or(0)
    }

    /// The contact enters its queue; unless answered at once, a caller facing a long wait
    /// may take a callback, and anyone else waits as long as their patience lasts.
    fn queue(&mut self, c: usize) {
        let now = self.now;
        let (queue, channel) = (self.queue_of(c), self.contacts[c].channel);
        let language = self.config.languages[self.contacts[c].need.language]
            .0
            .clone();
        self.emit(c, now, emit::queued(&self.queues[queue].clone(), &language));
        self.contacts[c].state = State::Waiting { callback: false };
        self.waiting.push(c);
        self.dispatch();
        if self.contacts[c].state != (State::Waiting { callback: false }) {
            return;
        }
        let patience = match channel {
            Channel::Voice => self.config.patience_call_secs,
            Channel::Webchat => self.config.patience_chat_secs,
            Channel::Email => return,
            _ => self.config.patience_messaging_secs,
        };
        if channel == Channel::Voice
            && self.expected_wait(queue) > self.config.callback_after.as_millis() as u64
            && self.rng.chance(self.config.callback_accept)
        {
            let contact = &self.contacts[c];
            let arrival = self.config.day_start + std::time::Duration::from_millis(contact.arrived);
            let payload = emit::callback(contact.need.customer, &self.queues[queue], arrival);
            self.emit(c, now, payload);
            self.emit(c, now, emit::ended(EndReason::CustomerLeft));
            self.contacts[c].state = State::Waiting { callback: true };
            return;
        }
        let gives_up = now + ms(self.rng.exponential(patience));
        self.schedule(gives_up, Action::GiveUp(c));
    }

    /// The wait a caller is told: the contacts ahead in the queue, served by the agents of
    /// its skill on shift at the typical call's length (6 minutes).
    fn expected_wait(&self, queue: usize) -> u64 {
        let ahead = (self.waiting.iter())
            .filter(|w| self.queue_of(**w) == queue)
            .count() as u64;
        let agents = (self.seats.iter())
            .filter(|s| s.on_shift && s.agent.serves(&self.queues[queue]))
            .count() as u64;
        match agents {
            0 => u64::MAX,
            n => ahead * 360_000 / n,
        }
    }

    fn give_up(&mut self, c: usize) {
        if self.contacts[c].state != (State::Waiting { callback: false }) {
            return;
        }
        self.waiting.retain(|w| *w != c);
        self.emit(c, self.now, emit::abandoned(AbandonPoint::Queue));
        self.finished(c, self.now, false);
    }

    /// The contact is over at `at`: an open need may bring its customer back on another
    /// channel (the conversation goes on), a resolved one about the same intent (it
    /// reopens).
    fn finished(&mut self, c: usize, at: u64, resolved: bool) {
        self.contacts[c].state = State::Done;
        let contact = self.contacts[c].clone();
        if contact.visit >= MAX_VISITS {
            return;
        }
        let (share, median) = if resolved {
            (self.config.repeat, 3.0 * 3600.0)
        } else {
            (self.config.continuation, 45.0 * 60.0)
        };
        if !self.rng.chance(share) {
            return;
        }
        // Past the horizon it is never taken off the agenda, but it is made all the same, so
        // that a day cut short is the whole day's beginning, ids and all.
        let mut back = at + ms(self.rng.log_normal(median, 0.6));
        let channel = self.pick_channel(Some(contact.channel));
        // A customer coming back calls or chats while the centre is open: the next opening.
        if matches!(channel, Channel::Voice | Channel::Webchat) && !self.is_open(back) {
            let open = u64::from(self.config.open_hour) * HOUR_MS;
            back = open + back.saturating_sub(open).div_ceil(DAY_MS) * DAY_MS;
        }
        self.arrive(contact.need, channel, back, contact.visit + 1, !resolved);
    }
}
