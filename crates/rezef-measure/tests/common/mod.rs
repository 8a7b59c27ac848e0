//! Scripted contacts for the measurement's tests; the projection they run through is
//! `rezef_measure::testing::Projection`.

#![allow(dead_code)] // each test binary uses part of it

use rezef_events::event::{AbandonPoint, EndReason, SCHEMA_VERSION};
use rezef_events::{
    AgentId, Channel, ChannelIdentity, CustomerId, CustomerRef, Event, EventId, InteractionId,
    Payload, TenantId, Timestamp,
};
pub use rezef_measure::testing::Projection;

/// Events written contact by contact, then put in the order they happened.
#[derive(Debug, Default)]
pub struct Script {
    events: Vec<Event>,
}

impl Script {
    /// A contact: `customer` on `channel` in interaction `interaction`, from `start`.
    pub fn contact(
        &mut self,
        customer: &str,
        interaction: &str,
        channel: Channel,
        start: Timestamp,
    ) -> Contact<'_> {
        Contact {
            script: self,
            customer: customer.into(),
            interaction: interaction.into(),
            channel,
            start,
        }
    }

    /// Every event, in the order they happened (ties in the order written).
    pub fn events(mut self) -> Vec<Event> {
        self.events.sort_by_key(|e| e.occurred_at);
        self.events
    }
}

/// Writes one contact's events at seconds after its start.
#[derive(Debug)]
pub struct Contact<'s> {
    script: &'s mut Script,
    customer: String,
    interaction: String,
    channel: Channel,
    start: Timestamp,
}

pub fn secs_after(at: Timestamp, secs: i64) -> Timestamp {
    Timestamp::from_unix_nanos(at.unix_nanos() + secs * 1_000_000_000)
}

pub fn agent(id: &str) -> AgentId {
    AgentId::new(id).expect("valid")
}

impl Contact<'_> {
    pub fn at(&mut self, secs: i64, payload: Payload) -> &mut Self {
        let n = self.script.events.len();
        self.script.events.push(Event {
            event_id: EventId::new(format!("{}-{n}", self.interaction)).expect("valid"),
            tenant_id: TenantId::new("acme").expect("valid"),
            occurred_at: secs_after(self.start, secs),
            source: "script".into(),
            schema_version: SCHEMA_VERSION,
            customer: Some(CustomerRef::Id(
                CustomerId::new(self.customer.as_str()).expect("valid"),
            )),
            conversation_id: None,
            interaction_id: Some(InteractionId::new(self.interaction.as_str()).expect("valid")),
            channel: Some(self.channel),
            forward: None,
            erased: false,
            payload,
        });
        self
    }
}

pub fn started() -> Payload {
    Payload::InteractionStarted {
        direction: rezef_events::event::Direction::Inbound,
        identity: None,
        entry_point: "main".into(),
        language: None,
        continuation_token: None,
    }
}

pub fn intent(intent: &str) -> Payload {
    Payload::IntentDetected {
        intent: intent.into(),
        confidence: 0.9,
        detected_by: "ivr".into(),
    }
}

pub fn queued(queue: &str) -> Payload {
    Payload::ContactQueued {
        queue_id: queue.into(),
        priority: 1,
        required_skills: Vec::new(),
        language: None,
    }
}

pub fn offered(to: &str) -> Payload {
    Payload::ContactOffered {
        agent_id: agent(to),
        queue_id: String::new(),
    }
}

pub fn assigned(to: &str) -> Payload {
    Payload::ContactAssigned {
        agent_id: agent(to),
        queue_id: String::new(),
    }
}

pub fn transferred(from: &str, to: &str) -> Payload {
    Payload::ContactTransferred {
        from_agent_id: Some(agent(from)),
        to_agent_id: Some(agent(to)),
        to_queue_id: String::new(),
        reason: "specialist".into(),
    }
}

pub fn consult(started: bool, by: &str, with: &str) -> Payload {
    let (agent_id, consulted_agent_id) = (agent(by), agent(with));
    if started {
        Payload::ConsultStarted {
            agent_id,
            consulted_agent_id,
        }
    } else {
        Payload::ConsultEnded {
            agent_id,
            consulted_agent_id,
        }
    }
}

pub fn callback_requested(queue: &str) -> Payload {
    callback(queue, None)
}

/// A callback published as its own contact, keeping the arrival of the contact it replaces.
pub fn callback_arrived_at(queue: &str, original_arrival: Timestamp) -> Payload {
    callback(queue, Some(original_arrival))
}

fn callback(queue: &str, original_arrival_at: Option<Timestamp>) -> Payload {
    Payload::CallbackRequested {
        callback_to: ChannelIdentity::phone("+972501234567").expect("valid"),
        preferred_at: None,
        queue_id: queue.into(),
        original_arrival_at,
    }
}

pub fn callback_completed(reached: bool, by: Option<&str>) -> Payload {
    Payload::CallbackCompleted {
        reached,
        agent_id: by.map(agent),
    }
}

pub fn abandoned(point: AbandonPoint) -> Payload {
    Payload::ContactAbandoned { point }
}

pub fn ended(reason: EndReason) -> Payload {
    Payload::InteractionEnded {
        reason: Some(reason),
    }
}

pub fn wrapped_up(by: &str, resolved: bool) -> Payload {
    Payload::WrapUpRecorded {
        agent_id: Some(agent(by)),
        disposition: "done".into(),
        need_resolved: resolved,
        notes: String::new(),
    }
}

pub fn survey(csat: u32, nps: u32, effort: u32) -> Payload {
    Payload::SurveyAnswered {
        csat: Some(csat),
        nps: Some(nps),
        effort: Some(effort),
        comment: String::new(),
    }
}

pub fn agent_message(by: &str) -> Payload {
    Payload::MessageSent {
        from: rezef_events::event::Participant::Agent,
        sender_id: by.into(),
        text: "hello".into(),
        attachments: Vec::new(),
        sensitive: false,
    }
}
