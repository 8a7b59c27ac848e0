//! The synthetic traffic: realistic contact-centre events for many customers, so that the
//! benchmarks exercise the same validation, encoding, fold and storage paths as production.
//!
//! Every customer is named by `customer_id` (`cust-0000042`). Its events follow a plausible
//! pattern: each run of ten events is one interaction (`interaction_started`, an
//! `intent_detected`, a couple of `context_set`s, and `message_sent`s in between), spread over
//! the channels. Encoded in the log, an event takes roughly 250-400 bytes. The events are the
//! ones `rezef_adapter::EventFactory` would make, built directly so that generating them costs
//! the server under test as little CPU as possible (they share the machine).

use std::time::{SystemTime, UNIX_EPOCH};

use rezef_adapter::proto;
use rezef_adapter::proto::event::Payload;

use crate::harness::Rng;

/// The tenant every benchmark publishes to.
pub const TENANT: &str = "acme-bench";

const CHANNELS: [proto::Channel; 4] = [
    proto::Channel::Webchat,
    proto::Channel::Voice,
    proto::Channel::Whatsapp,
    proto::Channel::Email,
];

const INTENTS: [&str; 6] = [
    "billing.dispute",
    "billing.payment_arrangement",
    "orders.where_is_my_order",
    "account.password_reset",
    "plans.upgrade",
    "support.technical_fault",
];

const CONTEXT_KEYS: [&str; 5] = ["order_id", "invoice", "plan", "device", "account_tier"];

const CUSTOMER_LINES: [&str; 6] = [
    "Hi, I was charged twice for my last invoice and I would like to understand why that happened",
    "My order was supposed to arrive on Tuesday but the tracking page has not changed since Friday",
    "I cannot log in to the app any more, it keeps saying my password is wrong even after a reset",
    "Can you tell me what the difference is between the current plan and the premium one, please?",
    "The router keeps dropping the connection every evening around eight, can someone look at it?",
    "Thanks, that solves it. Could you also send me a copy of the receipt to my email address?",
];

const BOT_LINES: [&str; 4] = [
    "I can help with that. Could you confirm the order number or the invoice number it is about?",
    "Thanks. I have found your account and I can see the last three invoices on it, one moment.",
    "I am handing this conversation to one of our specialists, who will have the full context.",
    "Is there anything else I can help you with today? You can reply here at any time.",
];

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The customer id of customer number `n`.
pub fn customer_id(n: u64) -> String {
    format!("cust-{n:07}")
}

/// A reference to customer number `n` by customer id.
pub fn customer_ref(n: u64) -> proto::CustomerRef {
    proto::CustomerRef {
        r#ref: Some(proto::customer_ref::Ref::CustomerId(customer_id(n))),
    }
}

/// Generates events for `customers` customers, each following its own interaction pattern.
/// Several generators (one per client task) take disjoint customer ranges, so that each
/// customer's events keep their pattern.
#[derive(Debug, Clone)]
pub struct Workload {
    rng: Rng,
    /// Number of this generator's first customer.
    first: u64,
    /// Events generated so far, per customer of the range.
    sent: Vec<u32>,
    /// Distinguishes this generator's event ids from every other's.
    id_prefix: u64,
    issued: u64,
}

impl Workload {
    /// Customers `0..customers`.
    pub fn new(customers: u64, seed: u64) -> Self {
        Self::range(0, customers, seed)
    }

    /// Customers `first..first + count`.
    pub fn range(first: u64, count: u64, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let id_prefix = rng.next_u64() ^ u64::from(std::process::id()) ^ now_nanos();
        Self {
            rng,
            first,
            sent: vec![0; usize::try_from(count.max(1)).unwrap_or(usize::MAX)],
            id_prefix,
            issued: 0,
        }
    }

    /// The `part`-th of `parts` disjoint generators over customers `0..customers`.
    pub fn part(customers: u64, part: u64, parts: u64, seed: u64) -> Self {
        let parts = parts.max(1);
        let size = (customers / parts).max(1);
        Self::range(part * size, size, seed.wrapping_add(part))
    }

    /// The next event of a random customer of the range, and that customer's number.
    pub fn next_random(&mut self) -> (u64, proto::Event) {
        let customer = self.first + self.rng.below(self.sent.len() as u64);
        (customer, self.next_for(customer))
    }

    /// The next event of customer `customer` (a number of this generator's range).
    pub fn next_for(&mut self, customer: u64) -> proto::Event {
        let index =
            usize::try_from(customer.saturating_sub(self.first)).unwrap_or(0) % self.sent.len();
        let n = self.sent[index];
        self.sent[index] = n.wrapping_add(1);
        let interaction = n / 10;
        let channel = CHANNELS[(customer as usize + interaction as usize) % CHANNELS.len()];
        let pick = self.rng.next_u64() as usize;
        let payload = match n % 10 {
            0 => Payload::InteractionStarted(proto::InteractionStarted {
                direction: proto::Direction::Inbound as i32,
                ..Default::default()
            }),
            1 => Payload::IntentDetected(proto::IntentDetected {
                intent: INTENTS[pick % INTENTS.len()].into(),
                confidence: 0.87,
                detected_by: "nlu-v3".into(),
            }),
            2 | 6 => Payload::ContextSet(proto::ContextSet {
                key: CONTEXT_KEYS[pick % CONTEXT_KEYS.len()].into(),
                value: format!("ORD-{:08}", pick % 100_000_000),
                sensitive: pick.is_multiple_of(7),
            }),
            4 | 8 => Payload::MessageSent(proto::MessageSent {
                from: proto::Participant::Bot as i32,
                text: BOT_LINES[pick % BOT_LINES.len()].into(),
                ..Default::default()
            }),
            _ => Payload::MessageSent(proto::MessageSent {
                from: proto::Participant::Customer as i32,
                text: CUSTOMER_LINES[pick % CUSTOMER_LINES.len()].into(),
                ..Default::default()
            }),
        };
        proto::Event {
            event_id: self.event_id(),
            tenant_id: TENANT.into(),
            occurred_at: Some(prost_types::Timestamp::from(SystemTime::now())),
            recorded_at: None,
            source: "bench-adapter".into(),
            schema_version: 1,
            customer: Some(customer_ref(customer)),
            conversation_id: String::new(),
            interaction_id: format!("ix-{customer}-{interaction}"),
            channel: channel as i32,
            payload: Some(payload),
        }
    }

    /// A unique id shaped like the UUIDv7 `EventFactory` makes (36 characters), without its
    /// cost: the generator's CPU is taken from the server under test.
    fn event_id(&mut self) -> String {
        self.issued += 1;
        let random = self.rng.next_u64();
        format!(
            "{:08x}-{:04x}-7{:03x}-{:04x}-{:012x}",
            self.id_prefix as u32,
            (self.id_prefix >> 32) as u16,
            (random & 0xfff) as u16,
            ((random >> 12) & 0xffff) as u16,
            self.issued & 0xffff_ffff_ffff
        )
    }

    /// A batch of `size` events of random customers; also returns the customer of each event.
    pub fn batch(&mut self, size: usize) -> (Vec<u64>, Vec<proto::Event>) {
        let mut customers = Vec::with_capacity(size);
        let mut events = Vec::with_capacity(size);
        for _ in 0..size {
            let (customer, event) = self.next_random();
            customers.push(customer);
            events.push(event);
        }
        (customers, events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_valid_and_of_realistic_size() {
        let mut workload = Workload::new(100, 7);
        let (_, events) = workload.batch(500);
        let mut total = 0;
        for event in events {
            let event = rezef_server::convert::event_from_proto(event).expect("valid event");
            total += rezef_events::codec::encode(&event).len();
        }
        let average = total / 500;
        assert!(
            (200..=450).contains(&average),
            "average encoded size {average}"
        );
    }
}
