//! The synthetic traffic: realistic contact-centre events for many customers, so that the
//! benchmarks exercise the same validation, encoding, fold and storage paths as production.
//!
//! Every customer is named by `customer_id` (`cust-0000042`). Its events follow a plausible
//! pattern: each run of ten events is one interaction (`interaction_started`, an
//! `intent_detected`, a couple of `context_set`s, and `message_sent`s in between), spread over
//! the channels. Encoded in the log, an event takes roughly 250-400 bytes. The events are the
//! ones `rezef_adapter::EventFactory` would make, built directly so that generating them costs
//! the server under test as little CPU as possible (they share the machine).
//!
//! Two variants serve the continuity benchmarks: [`Workload::with_identity_links`] turns two
//! events of every ten into `customer_identified` events that link new identities or prove
//! another customer's CRM id (so the projector merges the two), and
//! [`Workload::conversation`] scripts one customer's whole chat: intent, context, a
//! transcript and a phone number verified by one-time code, as a voice channel would find it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

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

/// Messages in a [`Workload::conversation`] transcript.
pub const CONVERSATION_MESSAGES: usize = 10;

fn identified(
    method: proto::VerificationMethod,
    assurance: proto::AssuranceLevel,
    proven: proto::ChannelIdentity,
) -> Payload {
    Payload::CustomerIdentified(proto::CustomerIdentified {
        method: method as i32,
        assurance: assurance as i32,
        identities: vec![proven],
        expires_at: None,
    })
}

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

/// The mobile number of customer number `n` (E.164, as normalised).
pub fn phone(n: u64) -> String {
    format!("+97250{n:07}")
}

/// A reference to customer number `n` by phone number, as a voice channel sees a caller.
pub fn phone_ref(n: u64) -> proto::CustomerRef {
    proto::CustomerRef {
        r#ref: Some(proto::customer_ref::Ref::Identity(identity(
            proto::IdentityKind::Phone,
            phone(n),
        ))),
    }
}

/// The CRM id of customer number `n`.
pub fn crm_id(n: u64) -> String {
    format!("CRM-{n:08}")
}

/// The customer who turns out to be the same person as customer number `n`: customers come
/// in pairs (0 and 1, 2 and 3, ...), so that every merge joins two customers and no journey
/// grows without bound.
pub fn partner(n: u64) -> u64 {
    n ^ 1
}

fn identity(kind: proto::IdentityKind, value: String) -> proto::ChannelIdentity {
    proto::ChannelIdentity {
        kind: kind as i32,
        value,
        network: String::new(),
    }
}

/// Where a load phase takes its events from.
pub trait Source {
    /// The next `size` events.
    fn events(&mut self, size: usize) -> Vec<proto::Event>;
}

impl Source for Workload {
    fn events(&mut self, size: usize) -> Vec<proto::Event> {
        self.batch(size).1
    }
}

/// Events of every ten that are `customer_identified` with [`Workload::with_identity_links`].
pub const IDENTITY_EVENTS_PER_TEN: u32 = 2;

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
    /// Whether events 3 and 7 of every ten link and prove identities.
    identity_links: bool,
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
            identity_links: false,
        }
    }

    /// Makes two events of every ten (20%) `customer_identified` events: event 3 links a new
    /// identity (the customer's CRM id in its first interaction, an app account in later
    /// ones) by one-time code; event 7 proves the CRM id of the customer's [`partner`] by
    /// knowledge questions at high assurance. Whichever of a pair proves the other's CRM id
    /// first (or links its own after the other proved it) makes the projector merge the two;
    /// later proofs find the id already theirs.
    pub fn with_identity_links(mut self) -> Self {
        self.identity_links = true;
        self
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
            3 if self.identity_links => {
                let linked = if interaction == 0 {
                    identity(proto::IdentityKind::CrmId, crm_id(customer))
                } else {
                    identity(
                        proto::IdentityKind::AppUser,
                        format!("app-{customer}-{interaction}"),
                    )
                };
                identified(
                    proto::VerificationMethod::OneTimeCode,
                    proto::AssuranceLevel::Substantial,
                    linked,
                )
            }
            7 if self.identity_links => identified(
                proto::VerificationMethod::Knowledge,
                proto::AssuranceLevel::High,
                identity(proto::IdentityKind::CrmId, crm_id(partner(customer))),
            ),
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
        self.event(customer, interaction, channel, SystemTime::now(), payload)
    }

    /// An event of customer number `customer`'s interaction number `interaction`, at `at`.
    pub fn event(
        &mut self,
        customer: u64,
        interaction: u32,
        channel: proto::Channel,
        at: SystemTime,
        payload: Payload,
    ) -> proto::Event {
        proto::Event {
            event_id: self.event_id(),
            tenant_id: TENANT.into(),
            occurred_at: Some(prost_types::Timestamp::from(at)),
            recorded_at: None,
            source: "bench-adapter".into(),
            schema_version: 1,
            customer: Some(customer_ref(customer)),
            conversation_id: String::new(),
            interaction_id: format!("ix-{customer}-{interaction}"),
            channel: channel as i32,
            forwarded_to_customer_id: String::new(),
            erased: false,
            payload: Some(payload),
        }
    }

    /// Customer number `customer`'s web chat, ending a few seconds before now: the chat
    /// starts (visitor id, language), the bot detects an intent, sets an order number and a
    /// sensitive card suffix, exchanges [`CONVERSATION_MESSAGES`] messages with the customer,
    /// and the customer proves their mobile number ([`phone`]) by one-time code. Folded, it
    /// is an open conversation that a call from that number within the continuation window
    /// continues, skipping self service and re-verification.
    pub fn conversation(&mut self, customer: u64) -> Vec<proto::Event> {
        let pick = self.rng.next_u64() as usize;
        let mut payloads = vec![
            Payload::InteractionStarted(proto::InteractionStarted {
                direction: proto::Direction::Inbound as i32,
                identity: Some(identity(
                    proto::IdentityKind::ChatVisitor,
                    format!("visitor-{customer}"),
                )),
                entry_point: "https://example.com/support".into(),
                language: ["he", "en", "ar", "ru"][pick % 4].into(),
                ..Default::default()
            }),
            Payload::IntentDetected(proto::IntentDetected {
                intent: INTENTS[pick % INTENTS.len()].into(),
                confidence: 0.91,
                detected_by: "nlu-v3".into(),
            }),
            Payload::ContextSet(proto::ContextSet {
                key: "order_id".into(),
                value: format!("ORD-{:08}", pick % 100_000_000),
                sensitive: false,
            }),
            Payload::ContextSet(proto::ContextSet {
                key: "card_last4".into(),
                value: format!("{:04}", pick % 10_000),
                sensitive: true,
            }),
        ];
        for m in 0..CONVERSATION_MESSAGES {
            let line = pick / 7 + m;
            payloads.push(Payload::MessageSent(if m % 2 == 0 {
                proto::MessageSent {
                    from: proto::Participant::Customer as i32,
                    text: CUSTOMER_LINES[line % CUSTOMER_LINES.len()].into(),
                    ..Default::default()
                }
            } else {
                proto::MessageSent {
                    from: proto::Participant::Bot as i32,
                    sender_id: "support-bot".into(),
                    text: BOT_LINES[line % BOT_LINES.len()].into(),
                    ..Default::default()
                }
            }));
        }
        payloads.push(identified(
            proto::VerificationMethod::OneTimeCode,
            proto::AssuranceLevel::Substantial,
            identity(proto::IdentityKind::Phone, phone(customer)),
        ));
        let end = SystemTime::now() - Duration::from_secs(5);
        let count = payloads.len() as u32;
        payloads
            .into_iter()
            .zip(0u32..)
            .map(|(payload, i)| {
                let at = end - Duration::from_secs(u64::from(count - i) * 20);
                self.event(customer, 0, proto::Channel::Webchat, at, payload)
            })
            .collect()
    }

    /// Customer number `customer` with a long history: `interactions - 1` earlier calls, two
    /// hours apart (each started, with an intent, then ended), and today's chat
    /// ([`Self::conversation`]) last. Folded, the old calls are closed conversations, most of
    /// them compacted into summaries (`rezef_events::bound`).
    pub fn history(&mut self, customer: u64, interactions: u32) -> Vec<proto::Event> {
        let now = SystemTime::now();
        let mut events = Vec::with_capacity(interactions as usize * 3 + 16);
        for call in 1..interactions {
            let at = now - Duration::from_secs(u64::from(interactions - call) * 7_200);
            let intent = INTENTS[call as usize % INTENTS.len()];
            let payloads = [
                Payload::InteractionStarted(proto::InteractionStarted {
                    direction: proto::Direction::Inbound as i32,
                    ..Default::default()
                }),
                Payload::IntentDetected(proto::IntentDetected {
                    intent: intent.into(),
                    confidence: 0.9,
                    detected_by: "ivr".into(),
                }),
                Payload::InteractionEnded(proto::InteractionEnded {
                    reason: proto::EndReason::Completed as i32,
                }),
            ];
            for (payload, minute) in payloads.into_iter().zip(0u64..) {
                let at = at + Duration::from_secs(minute * 60);
                events.push(self.event(customer, call, proto::Channel::Voice, at, payload));
            }
        }
        events.extend(self.conversation(customer));
        events
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
            total += rezef_record::encode(&event).len();
        }
        // A stored record (protobuf) is about half the event's JSON form (200 to 450 bytes).
        let average = total / 500;
        assert!(
            (100..=300).contains(&average),
            "average encoded size {average}"
        );
    }

    #[test]
    fn identity_links_are_a_fifth_of_every_ten_events_and_valid() {
        let mut workload = Workload::new(4, 7).with_identity_links();
        let mut proven = Vec::new();
        for n in 0..10 {
            let event = workload.next_for(1);
            let event = rezef_server::convert::event_from_proto(event).expect("valid event");
            if let rezef_events::Payload::CustomerIdentified {
                method,
                assurance,
                identities,
                ..
            } = &event.payload
            {
                proven.push((n, *method, *assurance, identities[0].to_string()));
            }
        }
        use rezef_events::event::{AssuranceLevel, VerificationMethod};
        assert_eq!(
            proven,
            [
                (
                    3,
                    VerificationMethod::OneTimeCode,
                    AssuranceLevel::Substantial,
                    format!("crm_id:{}", crm_id(1))
                ),
                (
                    7,
                    VerificationMethod::Knowledge,
                    AssuranceLevel::High,
                    format!("crm_id:{}", crm_id(0))
                ),
            ]
        );
    }

    #[test]
    fn a_scripted_conversation_folds_into_what_a_call_continues() {
        use rezef_events::event::{AssuranceLevel, VerificationMethod};
        use rezef_events::policy::ContinuityPolicy;
        use rezef_events::resume::{Caller, Continuation, resume};

        let mut workload = Workload::new(10, 7);
        let events: Vec<_> = workload
            .conversation(3)
            .into_iter()
            .map(|e| rezef_server::convert::event_from_proto(e).expect("valid event"))
            .collect();
        let first = &events[0];
        let customer = rezef_events::CustomerId::new(customer_id(3)).expect("valid id");
        let mut journey =
            rezef_events::Journey::new(first.tenant_id.clone(), customer, first.occurred_at);
        for (offset, event) in (0u64..).zip(&events) {
            journey.apply(offset, event);
        }
        let conversation = &journey.conversations[0];
        assert_eq!(journey.conversations.len(), 1);
        assert!(conversation.intent.is_some());
        assert_eq!(conversation.transcript.len(), CONVERSATION_MESSAGES);
        assert_eq!(
            conversation
                .context
                .values()
                .filter(|c| c.sensitive)
                .count(),
            1
        );
        let caller = rezef_events::CustomerRef::Id(journey.customer_id.clone());
        let answer = resume(
            &journey,
            Caller::Shown(&caller),
            rezef_events::Channel::Voice,
            rezef_events::Timestamp::now(),
            &ContinuityPolicy::default(),
            None,
        );
        assert_eq!(
            answer.conversation.map(|(_, how)| how),
            Some(Continuation::WithinWindow)
        );
        let verified = answer.verified.expect("verified");
        assert_eq!(verified.identity.to_string(), format!("phone:{}", phone(3)));
        assert_eq!(
            (verified.method, verified.assurance),
            (VerificationMethod::OneTimeCode, AssuranceLevel::Substantial)
        );
        assert!(verified.skip_verification && answer.skip_self_service);
    }
}
