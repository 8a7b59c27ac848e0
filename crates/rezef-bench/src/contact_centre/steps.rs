//! The steps of a contact-centre script ([`super::ContactCentre`]), each an event's payload
//! as an adapter would publish it.

use rezef_adapter::proto;
use rezef_adapter::proto::event::Payload;

pub(super) fn with(
    mut steps: Vec<Payload>,
    more: impl IntoIterator<Item = Payload>,
) -> Vec<Payload> {
    steps.extend(more);
    steps
}

pub(super) fn started() -> Payload {
    Payload::InteractionStarted(proto::InteractionStarted {
        direction: proto::Direction::Inbound as i32,
        ..Default::default()
    })
}

pub(super) fn detected(intent: &str) -> Payload {
    Payload::IntentDetected(proto::IntentDetected {
        intent: intent.into(),
        confidence: 0.9,
        detected_by: "nlu-v3".into(),
    })
}

pub(super) fn menu(outcome: proto::StepOutcome) -> Payload {
    Payload::SelfServiceStepCompleted(proto::SelfServiceStepCompleted {
        step_id: "main-menu".into(),
        prompt: "What is your call about?".into(),
        customer_input: "2".into(),
        outcome: outcome as i32,
    })
}

pub(super) fn said(from: proto::Participant, text: &str) -> Payload {
    Payload::MessageSent(proto::MessageSent {
        from: from as i32,
        text: text.into(),
        ..Default::default()
    })
}

pub(super) fn handoff(queue: &str) -> Payload {
    Payload::HandoffRequested(proto::HandoffRequested {
        bot_id: "support-bot".into(),
        reason: proto::HandoffReason::CustomerAsked as i32,
        target_queue_id: queue.into(),
        summary: "wants a person".into(),
    })
}

pub(super) fn queued(queue: &str) -> Payload {
    Payload::ContactQueued(proto::ContactQueued {
        queue_id: queue.into(),
        priority: 1,
        ..Default::default()
    })
}

pub(super) fn offered(agent: &str, queue: &str) -> Payload {
    Payload::ContactOffered(proto::ContactOffered {
        agent_id: agent.into(),
        queue_id: queue.into(),
    })
}

pub(super) fn assigned(agent: &str, queue: &str) -> Payload {
    Payload::ContactAssigned(proto::ContactAssigned {
        agent_id: agent.into(),
        queue_id: queue.into(),
    })
}

pub(super) fn consult(agent: &str, start: bool) -> Payload {
    let (agent_id, consulted_agent_id) = (agent.to_owned(), "agent-supervisor".to_owned());
    if start {
        Payload::ConsultStarted(proto::ConsultStarted {
            agent_id,
            consulted_agent_id,
        })
    } else {
        Payload::ConsultEnded(proto::ConsultEnded {
            agent_id,
            consulted_agent_id,
        })
    }
}

pub(super) fn transferred(from: &str, to: &str) -> Payload {
    Payload::ContactTransferred(proto::ContactTransferred {
        from_agent_id: from.into(),
        to_agent_id: to.into(),
        to_queue_id: "tech-l2".into(),
        reason: "second line".into(),
    })
}

pub(super) fn callback(customer: u64, queue: &str) -> Payload {
    Payload::CallbackRequested(proto::CallbackRequested {
        callback_to: Some(proto::ChannelIdentity {
            kind: proto::IdentityKind::Phone as i32,
            value: crate::workload::phone(customer),
            network: String::new(),
        }),
        queue_id: queue.into(),
        ..Default::default()
    })
}

pub(super) fn called_back(reached: bool, agent: &str) -> Payload {
    Payload::CallbackCompleted(proto::CallbackCompleted {
        reached,
        agent_id: agent.into(),
    })
}

pub(super) fn abandoned(point: proto::AbandonPoint) -> Payload {
    Payload::ContactAbandoned(proto::ContactAbandoned {
        point: point as i32,
    })
}

/// `reason`: 1 completed, 2 customer left (a leg ending while its callback waits).
pub(super) fn ended(reason: i32) -> Payload {
    Payload::InteractionEnded(proto::InteractionEnded { reason })
}

pub(super) fn wrapped_up(agent: &str, resolved: bool) -> Payload {
    Payload::WrapUpRecorded(proto::WrapUpRecorded {
        agent_id: agent.into(),
        disposition: if resolved { "resolved" } else { "follow-up" }.into(),
        need_resolved: resolved,
        notes: String::new(),
    })
}

pub(super) fn survey(pick: u64) -> Payload {
    Payload::SurveyAnswered(proto::SurveyAnswered {
        csat: Some(1 + (pick % 5) as u32),
        nps: Some((pick >> 3) as u32 % 11),
        effort: Some(1 + (pick >> 7) as u32 % 7),
        comment: String::new(),
    })
}
