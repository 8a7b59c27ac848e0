//! The events a contact centre's adapters publish, stamped: deterministic ids (the same
//! seed, tenant and day give the same ids, so publishing a day twice records it once),
//! the tenant, the source, the customer by id, the channel and the interaction.

use std::time::{Duration, SystemTime};

use rezef_proto::v1::{self, event::Payload};

use crate::rng::Rng;

/// What every event of one simulated day shares, and the counter of its ids.
#[derive(Debug)]
pub struct Stamp {
    tenant: String,
    source: String,
    day_start: SystemTime,
    prefix: u64,
    issued: u64,
}

impl Stamp {
    pub fn new(tenant: &str, source: &str, seed: u64, day_start: SystemTime) -> Self {
        let day = day_start
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let named = tenant.bytes().fold(day, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
        Self {
            tenant: tenant.into(),
            source: source.into(),
            day_start,
            prefix: Rng::new(seed ^ named).next_u64(),
            issued: 0,
        }
    }

    /// An interaction's id: the day's prefix and the contact's number.
    pub fn interaction(&self, contact: usize) -> String {
        format!("sim-{:08x}-{contact}", self.prefix >> 32)
    }

    /// An event at `at_ms` after the day's start; `who` is the customer and the
    /// interaction (none for an agent's presence).
    pub fn event(
        &mut self,
        at_ms: u64,
        who: Option<(u64, v1::Channel, &str)>,
        payload: Payload,
    ) -> v1::Event {
        self.issued += 1;
        let p = self.prefix;
        let event_id = format!(
            "{:08x}-{:04x}-7{:03x}-8{:03x}-{:012x}",
            p >> 32,
            (p >> 16) & 0xffff,
            (p >> 4) & 0xfff,
            p & 0xfff,
            self.issued
        );
        let (customer, channel, interaction_id) = match who {
            Some((customer, channel, interaction)) => (
                Some(customer_ref(customer)),
                channel as i32,
                interaction.to_owned(),
            ),
            None => (None, v1::Channel::Unspecified as i32, String::new()),
        };
        let at = self.day_start + Duration::from_millis(at_ms);
        v1::Event {
            event_id,
            tenant_id: self.tenant.clone(),
            occurred_at: Some(at.into()),
            recorded_at: None,
            source: self.source.clone(),
            schema_version: 1,
            customer,
            conversation_id: String::new(),
            interaction_id,
            channel,
            forwarded_to_customer_id: String::new(),
            erased: false,
            payload: Some(payload),
        }
    }
}

/// Customer number `n`'s id.
pub fn customer_id(n: u64) -> String {
    format!("sim-cust-{n:07}")
}

fn customer_ref(n: u64) -> v1::CustomerRef {
    v1::CustomerRef {
        r#ref: Some(v1::customer_ref::Ref::CustomerId(customer_id(n))),
    }
}

/// Customer number `n`'s mobile number (E.164), where callbacks go.
pub fn phone(n: u64) -> String {
    format!("+97254{n:07}")
}

pub fn started(language: &str) -> Payload {
    Payload::InteractionStarted(v1::InteractionStarted {
        direction: v1::Direction::Inbound as i32,
        language: language.into(),
        ..Default::default()
    })
}

pub fn step(step_id: &str, prompt: &str, outcome: v1::StepOutcome) -> Payload {
    Payload::SelfServiceStepCompleted(v1::SelfServiceStepCompleted {
        step_id: step_id.into(),
        prompt: prompt.into(),
        customer_input: String::new(),
        outcome: outcome as i32,
    })
}

pub fn detected(intent: &str, by: &str) -> Payload {
    Payload::IntentDetected(v1::IntentDetected {
        intent: intent.into(),
        confidence: 0.9,
        detected_by: by.into(),
    })
}

pub fn said(from: v1::Participant, text: &str) -> Payload {
    Payload::MessageSent(v1::MessageSent {
        from: from as i32,
        text: text.into(),
        ..Default::default()
    })
}

pub fn handoff(queue: &str, summary: String) -> Payload {
    Payload::HandoffRequested(v1::HandoffRequested {
        bot_id: "sim-bot".into(),
        reason: v1::HandoffReason::CustomerAsked as i32,
        target_queue_id: queue.into(),
        summary,
    })
}

pub fn queued(queue: &str, language: &str) -> Payload {
    Payload::ContactQueued(v1::ContactQueued {
        queue_id: queue.into(),
        priority: 1,
        required_skills: vec![queue.into()],
        language: language.into(),
    })
}

pub fn offered(agent: &str, queue: &str) -> Payload {
    Payload::ContactOffered(v1::ContactOffered {
        agent_id: agent.into(),
        queue_id: queue.into(),
    })
}

pub fn assigned(agent: &str, queue: &str) -> Payload {
    Payload::ContactAssigned(v1::ContactAssigned {
        agent_id: agent.into(),
        queue_id: queue.into(),
    })
}

pub fn consult(agent: &str, start: bool) -> Payload {
    let (agent_id, consulted_agent_id) = (agent.to_owned(), "sim-supervisor".to_owned());
    if start {
        Payload::ConsultStarted(v1::ConsultStarted {
            agent_id,
            consulted_agent_id,
        })
    } else {
        Payload::ConsultEnded(v1::ConsultEnded {
            agent_id,
            consulted_agent_id,
        })
    }
}

pub fn callback(customer: u64, queue: &str, arrival: SystemTime) -> Payload {
    Payload::CallbackRequested(v1::CallbackRequested {
        callback_to: Some(v1::ChannelIdentity {
            kind: v1::IdentityKind::Phone as i32,
            value: phone(customer),
            network: String::new(),
        }),
        preferred_at: None,
        queue_id: queue.into(),
        original_arrival_at: Some(arrival.into()),
    })
}

pub fn called_back(reached: bool, agent: &str) -> Payload {
    Payload::CallbackCompleted(v1::CallbackCompleted {
        reached,
        agent_id: agent.into(),
    })
}

pub fn abandoned(point: v1::AbandonPoint) -> Payload {
    Payload::ContactAbandoned(v1::ContactAbandoned {
        point: point as i32,
    })
}

pub fn ended(reason: v1::EndReason) -> Payload {
    Payload::InteractionEnded(v1::InteractionEnded {
        reason: reason as i32,
    })
}

pub fn wrapped_up(agent: &str, resolved: bool) -> Payload {
    Payload::WrapUpRecorded(v1::WrapUpRecorded {
        agent_id: agent.into(),
        disposition: if resolved { "resolved" } else { "follow-up" }.into(),
        need_resolved: resolved,
        notes: String::new(),
    })
}

pub fn survey(csat: u32, nps: u32, effort: u32) -> Payload {
    Payload::SurveyAnswered(v1::SurveyAnswered {
        csat: Some(csat),
        nps: Some(nps),
        effort: Some(effort),
        comment: String::new(),
    })
}

pub fn presence(agent: &str, presence: v1::Presence) -> Payload {
    Payload::AgentPresenceChanged(v1::AgentPresenceChanged {
        agent_id: agent.into(),
        presence: presence as i32,
        custom_status: String::new(),
    })
}
