//! The contact-centre workload: customers contacting over voice (through the IVR), web chat
//! (through a bot), WhatsApp and email, entering queues, offered to agents, answered or
//! abandoned, put on hold for a consult, transferred, called back, wrapped up and surveyed:
//! the events the measurement projection turns into records (`rezef_measure::Measurer`),
//! where [`crate::workload::Workload`] has none of them.
//!
//! Contacts overlap as in a real centre: [`CONCURRENT`] are under way at once, each event
//! comes from one of them picked at random, and the centre's clock (in the past, so the
//! server never clamps it) moves on by [`TICK`] an event, so a contact's steps are about a
//! minute apart and a million events span about six hours of quarter-hour buckets.

use std::time::{Duration, SystemTime};

use rezef_adapter::proto;
use rezef_adapter::proto::event::Payload;

use crate::harness::Rng;
use crate::workload::{Source, Workload};

mod steps;

use steps::{
    abandoned, assigned, callback, called_back, consult, detected, ended, handoff, menu, offered,
    queued, said, started, survey, transferred, with, wrapped_up,
};

/// Contacts under way at once.
pub const CONCURRENT: usize = 3_000;
/// How far the centre's clock moves per event.
pub const TICK: Duration = Duration::from_millis(20);

const QUEUES: [&str; 8] = [
    "billing",
    "sales",
    "support",
    "retention",
    "orders",
    "tech-l2",
    "vip",
    "collections",
];
const INTENTS: [&str; 6] = [
    "billing.dispute",
    "billing.payment_arrangement",
    "orders.where_is_my_order",
    "account.password_reset",
    "plans.upgrade",
    "support.technical_fault",
];
const AGENTS: u64 = 400;

/// One contact under way: its customer, number, channel and the steps left (reversed).
#[derive(Debug, Clone)]
struct Contact {
    customer: u64,
    number: u32,
    channel: proto::Channel,
    steps: Vec<Payload>,
}

/// Generates a contact centre's events (see the module docs).
#[derive(Debug, Clone)]
pub struct ContactCentre {
    events: Workload,
    rng: Rng,
    customers: u64,
    clock: SystemTime,
    contacts: u32,
    under_way: Vec<Contact>,
}

impl ContactCentre {
    /// A centre serving customers `0..customers`, its clock starting early enough that
    /// `events` events end before now.
    pub fn new(customers: u64, events: u64, seed: u64) -> Self {
        let span = TICK.saturating_mul(u32::try_from(events).unwrap_or(u32::MAX));
        let clock = SystemTime::now() - span - Duration::from_secs(3600);
        let mut centre = Self {
            events: Workload::new(1, seed),
            rng: Rng::new(seed ^ 0xcc),
            customers: customers.max(1),
            clock,
            contacts: 0,
            under_way: Vec::with_capacity(CONCURRENT),
        };
        for _ in 0..CONCURRENT {
            let contact = centre.new_contact();
            centre.under_way.push(contact);
        }
        centre
    }

    /// The next event of a contact under way (a new contact takes the place of one done).
    pub fn next_event(&mut self) -> proto::Event {
        self.clock += TICK;
        let slot = self.rng.below(CONCURRENT as u64) as usize;
        if self.under_way[slot].steps.is_empty() {
            self.under_way[slot] = self.new_contact();
        }
        let contact = &mut self.under_way[slot];
        let (customer, number, channel) = (contact.customer, contact.number, contact.channel);
        let payload = contact.steps.pop().unwrap_or_else(|| ended(1));
        (self.events).event(customer, number, channel, self.clock, payload)
    }

    fn new_contact(&mut self) -> Contact {
        self.contacts = self.contacts.wrapping_add(1);
        let customer = self.rng.below(self.customers);
        let roll = self.rng.below(100);
        let channel = match roll {
            0..55 => proto::Channel::Voice,
            55..80 => proto::Channel::Webchat,
            80..90 => proto::Channel::Whatsapp,
            _ => proto::Channel::Email,
        };
        let mut steps = self.script(channel, customer);
        steps.reverse();
        Contact {
            customer,
            number: self.contacts,
            channel,
            steps,
        }
    }

    /// A contact's steps, first first.
    fn script(&mut self, channel: proto::Channel, customer: u64) -> Vec<Payload> {
        let pick = self.rng.next_u64();
        let (roll, queue) = (pick % 100, QUEUES[(pick >> 8) as usize % QUEUES.len()]);
        let intent = INTENTS[(pick >> 16) as usize % INTENTS.len()];
        let agent = format!("agent-{:03}", (pick >> 24) % AGENTS);
        let mut steps = vec![started(), detected(intent)];
        match channel {
            proto::Channel::Voice => {
                steps.insert(1, menu(proto::StepOutcome::Continued));
                if roll < 8 {
                    return with(steps, [abandoned(proto::AbandonPoint::Ivr)]);
                }
            }
            proto::Channel::Webchat => {
                steps.push(said(proto::Participant::Bot, "I can help with that."));
                if roll < 15 {
                    return with(steps, [menu(proto::StepOutcome::Contained), ended(1)]);
                }
                if roll < 20 {
                    return with(steps, [abandoned(proto::AbandonPoint::Bot)]);
                }
                steps.push(handoff(queue));
            }
            _ => {}
        }
        steps.push(queued(queue));
        if roll >= 90 && channel != proto::Channel::Email {
            return with(steps, [abandoned(proto::AbandonPoint::Queue)]);
        }
        if (80..90).contains(&roll) && channel == proto::Channel::Voice {
            let reached = pick >> 32 & 7 != 0;
            steps.extend([
                callback(customer, queue),
                ended(2),
                called_back(reached, &agent),
            ]);
            if !reached {
                return steps;
            }
        } else {
            steps.push(offered(&agent, queue));
        }
        steps.push(assigned(&agent, queue));
        if pick >> 36 & 7 == 0 {
            steps.extend([consult(&agent, true), consult(&agent, false)]);
        }
        if pick >> 40 & 15 < 2 {
            let to = format!("agent-{:03}", (pick >> 44) % AGENTS);
            steps.extend([transferred(&agent, &to), assigned(&to, "tech-l2")]);
        }
        steps.push(said(
            proto::Participant::Agent,
            "Let me look at that for you.",
        ));
        steps.extend([ended(1), wrapped_up(&agent, pick >> 48 & 7 != 0)]);
        if pick >> 52 & 3 == 0 {
            steps.push(survey(pick >> 54));
        }
        steps
    }
}

impl Source for ContactCentre {
    fn events(&mut self, size: usize) -> Vec<proto::Event> {
        (0..size).map(|_| self.next_event()).collect()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use rezef_events::event::AbandonPoint;
    use rezef_events::{CustomerId, CustomerRef, Journey};
    use rezef_measure::record::Station;
    use rezef_measure::{Figures, MeasureConfig, Measurer};

    use super::*;

    #[test]
    fn the_centre_s_events_are_valid_and_give_the_measurement_every_kind_of_record() {
        let mut centre = ContactCentre::new(2_000, 60_000, 7);
        let (config, mut measurer) = (MeasureConfig::default(), Measurer::new());
        let mut journeys: HashMap<CustomerId, Journey> = HashMap::new();
        let mut figures = Figures::default();
        let mut last = None;
        for (offset, event) in (0u64..).zip(centre.events(60_000)) {
            let event = rezef_server::convert::event_from_proto(event).expect("valid event");
            assert!(last <= Some(event.occurred_at), "the clock moves on");
            last = Some(event.occurred_at);
            let Some(CustomerRef::Id(customer)) = &event.customer else {
                panic!("by customer id")
            };
            let journey = journeys.entry(customer.clone()).or_insert_with(|| {
                Journey::new(event.tenant_id.clone(), customer.clone(), event.occurred_at)
            });
            let applied = journey.apply(offset, &event);
            for record in measurer.observe(&config, offset, &event, None, (journey, &applied)) {
                figures.add(&record);
            }
        }
        assert!(figures.contacts > 3_000, "{}", figures.contacts);
        for point in [AbandonPoint::Ivr, AbandonPoint::Bot, AbandonPoint::Queue] {
            assert!(figures.abandons.get(&point) > Some(&50), "{point:?}");
        }
        assert!(figures.callbacks_unreached > 0);
        for station in [
            Station::SelfService,
            Station::Queue,
            Station::Offer,
            Station::CallbackWait,
            Station::Talk,
            Station::Hold,
            Station::WrapUp,
            Station::FirstResponse,
        ] {
            assert!(figures.stations.contains_key(&station), "{station:?}");
        }
        assert!(figures.resolved > 1_000 && figures.resolved_transfers > 0);
        assert!(figures.surveys.csat_count > 100);
        assert!(figures.journey.counted > figures.classic.counted);
    }
}
