//! The agents' side: which free agent takes which waiting contact, and what the contact
//! then looks like, from the offer to the wrap-up and the survey.

use rezef_proto::v1::{Channel, EndReason, Participant};

use super::{Action, Sim, State, ms};
use crate::emit;

impl Sim<'_> {
    /// Gives every waiting contact, first come first served, to a free agent of its skill
    /// (and language, when some agent speaks it): the least loaded, then the longest idle.
    pub(super) fn dispatch(&mut self) {
        if !self
            .seats
            .iter()
            .any(|s| s.on_shift && s.load < s.agent.capacity)
        {
            return;
        }
        let mut index = 0;
        while index < self.waiting.len() {
            let c = self.waiting[index];
            match self.free_agent(c) {
                Some(seat) => {
                    self.waiting.remove(index);
                    self.handle(c, seat);
                }
                None => index += 1,
            }
        }
    }

    fn cost(&self, c: usize, seat: usize) -> u32 {
        match self.contacts[c].channel {
            Channel::Voice => self.seats[seat].agent.capacity,
            _ => 1,
        }
    }

    fn free_agent(&self, c: usize) -> Option<usize> {
        let queue = self.queue_of(c);
        let language = self.contacts[c].need.language;
        let by_language = self.served.contains(&(queue, language));
        let spoken = &self.config.languages[language].0;
        (0..self.seats.len())
            .filter(|s| {
                let seat = &self.seats[*s];
                seat.on_shift
                    && seat.agent.serves(&self.queues[queue])
                    && (!by_language || seat.agent.speaks(spoken))
                    && seat.load + self.cost(c, *s) <= seat.agent.capacity
            })
            .min_by_key(|s| (self.seats[*s].load, self.seats[*s].idle_since, *s))
    }

    /// An agent takes the contact: the offer, the answer (or the callback's dial), the
    /// talk with perhaps a consult on hold, the end, the wrap-up and perhaps a survey, all
    /// written now at their times; the agent is free again after the wrap-up.
    fn handle(&mut self, c: usize, seat: usize) {
        let now = self.now;
        let cost = self.cost(c, seat);
        self.seats[seat].load += cost;
        let callback = self.contacts[c].state == (State::Waiting { callback: true });
        self.contacts[c].state = State::Done;
        let agent = self.seats[seat].agent.id.clone();
        let contact = self.contacts[c].clone();
        let queue = self.queues[self.queue_of(c)].clone();
        let intent = self.config.intents[contact.need.intent].clone();
        let mut answer = now;
        if callback {
            let dial = now + ms(self.rng.log_normal(15.0, 0.3));
            let reached = self.rng.chance(self.config.callback_reached);
            self.emit(c, dial, emit::called_back(reached, &agent));
            if !reached {
                self.schedule(dial, Action::Free { agent: seat, cost });
                self.finished(c, dial, false);
                return;
            }
            answer = dial + 1_000;
        } else if contact.channel != Channel::Email {
            self.emit(c, now, emit::offered(&agent, &queue));
            answer = now + ms(self.rng.log_normal(5.0, 0.3));
        }
        self.emit(c, answer, emit::assigned(&agent, &queue));
        let median = match contact.channel {
            Channel::Voice => 300.0,
            Channel::Webchat => 420.0,
            Channel::Email => 240.0,
            _ => 600.0,
        };
        let talk = ms(self.rng.log_normal(median, 0.5));
        let mut end = answer + talk;
        if contact.channel == Channel::Voice {
            if self.rng.chance(0.08) {
                let hold = ms(self.rng.log_normal(60.0, 0.4));
                self.emit(c, answer + talk / 2, emit::consult(&agent, true));
                self.emit(c, answer + talk / 2 + hold, emit::consult(&agent, false));
                end += hold;
            }
        } else {
            let reply = answer + (talk / 4).min(30_000);
            self.emit(
                c,
                reply,
                emit::said(
                    Participant::Agent,
                    "Thanks for waiting, let me check that for you.",
                ),
            );
        }
        self.emit(c, end, emit::ended(EndReason::Completed));
        let resolved = self.rng.chance(intent.resolved);
        let wrap = end + ms(self.rng.log_normal(30.0, 0.5));
        self.emit(c, wrap, emit::wrapped_up(&agent, resolved));
        self.schedule(wrap, Action::Free { agent: seat, cost });
        if self.rng.chance(self.config.survey) {
            let waited = (answer - contact.arrived) / 1000;
            let good = resolved && waited < 120;
            let csat = if good {
                4 + self.rng.below(2)
            } else {
                1 + self.rng.below(3)
            } as u32;
            let nps = if good {
                7 + self.rng.below(4)
            } else {
                self.rng.below(8)
            } as u32;
            let effort = if good {
                1 + self.rng.below(3)
            } else {
                3 + self.rng.below(5)
            } as u32;
            let at = wrap + ms(self.rng.log_normal(600.0, 0.5));
            self.emit(c, at, emit::survey(csat, nps, effort));
        }
        self.finished(c, wrap, resolved);
    }
}
