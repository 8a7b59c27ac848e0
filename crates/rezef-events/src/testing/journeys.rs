//! A journey with something in nearly every part, for tests of whatever carries whole
//! journeys (snapshots in handovers, the store): a field lost on the way shows up as a
//! difference, because hardly any is left empty.

use std::time::Duration;

use super::{EventBuilder, must};
use crate::event::{
    AbandonPoint, AssuranceLevel, Channel, Direction, EndReason, Event, HandoffReason, Participant,
    Payload, StepOutcome, VerificationMethod,
};
use crate::fold::{Context, customer_id_for};
use crate::identity::ChannelIdentity;
use crate::ids::{AgentId, CustomerId};
use crate::journey::{Journey, MergeCause, MergeRecord};
use crate::policy::{ContinuityPolicy, MergeRefusal};

const DAY: Duration = Duration::from_secs(24 * 3600);

/// Customer `c-a` of tenant `acme`, with two members merged in (one by a verification, one
/// on request) and a refused link. Its conversations were opened, joined by token, on the
/// same intent, within the window and by name, resolved, reopened and closed as inactive;
/// its interactions went through every stage.
pub fn rich_journey() -> Journey {
    let mut journey = fold(&own_events(), 0);
    let (member, member_events) = verified_member();
    let member_journey = fold(&member_events, 100);
    let requested = fold(&requested_member(), 200);

    let mut later = EventBuilder::phone("acme", "+972549876543").ids("b-later");
    later.wait(10 * DAY);
    journey.absorb(
        member_journey,
        MergeRecord {
            at: later.clock(),
            offset: 300,
            cause: MergeCause::Verified {
                method: VerificationMethod::Document,
                assurance: AssuranceLevel::High,
                identity: must(ChannelIdentity::phone("+972549876543")),
            },
        },
    );
    journey.absorb(
        requested,
        MergeRecord {
            at: later.clock(),
            offset: 301,
            cause: MergeCause::Requested {
                reason: "same person".into(),
                requested_by: "agent-9".into(),
            },
        },
    );
    let policy = ContinuityPolicy::default();
    let as_member = Context {
        policy: &policy,
        origin: Some(&member),
        foreign: &[],
        recorded_at: None,
    };
    let said = later
        .on(Channel::Voice, "call-b1")
        .message(Participant::Customer, "still down");
    journey.apply_with(302, &said, &as_member);
    journey.refuse_link(
        &must(ChannelIdentity::email("dana@example.com")),
        must(CustomerId::new("c-x")),
        MergeRefusal::SharedIdentity,
        said.occurred_at,
        303,
    );
    journey
}

/// Folds events (offsets from `first_offset`) into a new journey of the first's customer.
fn fold(events: &[Event], first_offset: u64) -> Journey {
    let first = &events[0];
    let customer = match &first.customer {
        Some(crate::CustomerRef::Id(id)) => id.clone(),
        Some(crate::CustomerRef::Identity(identity)) => customer_id_for(&first.tenant_id, identity),
        None => unreachable!("customer events only"),
    };
    let mut journey = Journey::new(first.tenant_id.clone(), customer, first.occurred_at);
    for (offset, event) in (first_offset..).zip(events) {
        journey.apply(offset, event);
    }
    journey
}

fn agent(id: &str) -> AgentId {
    must(AgentId::new(id))
}

/// `c-a`'s own history.
fn own_events() -> Vec<Event> {
    let mut a = EventBuilder::customer("acme", "c-a").on(Channel::Webchat, "chat-1");
    let mut events = vec![
        a.started(),
        a.event(Payload::SelfServiceStepCompleted {
            step_id: "menu".into(),
            prompt: "How can we help?".into(),
            customer_input: "bill".into(),
            outcome: Some(StepOutcome::Escalated),
        }),
        a.message(Participant::Customer, "my bill is wrong"),
        a.intent("billing.dispute", 0.92),
        a.context("invoice", "INV-7"),
        a.event(Payload::ContextSet {
            key: "card".into(),
            value: "4580".into(),
            sensitive: true,
        }),
        a.event(Payload::HandoffRequested {
            bot_id: "bot-1".into(),
            reason: HandoffReason::BotCannotHelp,
            target_queue_id: "billing".into(),
            summary: "disputes INV-7".into(),
        }),
        a.event(Payload::ContactQueued {
            queue_id: "billing".into(),
            priority: 2,
            required_skills: vec!["billing".into()],
            language: Some("he".into()),
        }),
        a.event(Payload::ContactOffered {
            agent_id: agent("agent-7"),
            queue_id: "billing".into(),
        }),
        a.assigned("agent-7"),
        a.message(Participant::Agent, "let me check"),
        a.event(Payload::ContactTransferred {
            from_agent_id: Some(agent("agent-7")),
            to_agent_id: Some(agent("agent-9")),
            to_queue_id: "billing-2".into(),
            reason: "expertise".into(),
        }),
    ];
    let expires = a.clock().plus(30 * DAY);
    events.extend([
        a.event(Payload::CustomerIdentified {
            method: VerificationMethod::OneTimeCode,
            assurance: AssuranceLevel::Substantial,
            identities: vec![
                must(ChannelIdentity::phone("+972501234567")),
                must(ChannelIdentity::email("dana@example.com")),
            ],
            expires_at: Some(expires),
        }),
        a.event(Payload::ContinuationTokenIssued {
            token: "482913".into(),
            expires_at: expires,
            redeem_on: Vec::new(),
        }),
        a.event(Payload::ContinuationTokenIssued {
            token: "771204".into(),
            expires_at: expires,
            redeem_on: Vec::new(),
        }),
        a.event(Payload::InteractionEnded {
            reason: Some(EndReason::Completed),
        }),
    ]);

    // The token carries the call into the chat's conversation; the wrap-up resolves it.
    let mut a = a.on(Channel::Voice, "call-1");
    events.extend([
        a.started_with_token("482913"),
        a.assigned("agent-9"),
        a.event(Payload::InteractionEnded {
            reason: Some(EndReason::AgentEnded),
        }),
        a.wrapped_up(true),
        a.event(Payload::SurveyAnswered {
            csat: Some(4),
            nps: Some(9),
            effort: None,
            comment: "ok".into(),
        }),
    ]);

    // A day later the same need again: the new conversation joins the resolved one.
    let mut a = a.on(Channel::Email, "mail-1");
    a.wait(DAY);
    events.extend([
        a.started(),
        a.intent("billing.dispute", 0.88),
        a.message(Participant::Customer, "still wrong"),
        a.event(Payload::InteractionEnded {
            reason: Some(EndReason::CustomerLeft),
        }),
    ]);

    // Past the continuation window, a new need; another contact about it joins it.
    let mut a = a.on(Channel::Sms, "sms-1");
    a.wait(4 * DAY);
    events.extend([
        a.event(Payload::InteractionStarted {
            direction: Direction::Outbound,
            identity: None,
            entry_point: "campaign".into(),
            language: Some("en".into()),
            continuation_token: None,
        }),
        a.intent("moving", 0.7),
        a.context("address", "Herzl 1"),
    ]);
    let mut a = a.on(Channel::App, "app-1");
    a.wait(4 * DAY);
    events.extend([a.started(), a.intent("moving", 0.75)]);
    let mut a = a.on(Channel::Ivr, "ivr-1");
    events.extend([
        a.started(),
        a.event(Payload::ContactAbandoned {
            point: AbandonPoint::Ivr,
        }),
        a.event(Payload::CallbackRequested {
            callback_to: must(ChannelIdentity::phone("+972501234567")),
            preferred_at: None,
            queue_id: "moves".into(),
            original_arrival_at: None,
        }),
    ]);

    // A case the adapter names.
    let mut case = a.on(Channel::Email, "mail-2").in_conversation("case-77");
    events.extend([
        case.started(),
        case.message(Participant::Bot, "we got your letter"),
        case.wrapped_up(true),
    ]);
    events
}

/// The member merged on a verification, known by phone, and its history.
fn verified_member() -> (CustomerId, Vec<Event>) {
    let mut b = EventBuilder::phone("acme", "+972549876543")
        .on(Channel::Voice, "call-b1")
        .ids("b");
    let events = vec![
        b.started(),
        b.intent("internet.outage", 0.8),
        b.assigned("agent-3"),
        b.event(Payload::CallbackCompleted {
            reached: true,
            agent_id: Some(agent("agent-3")),
        }),
    ];
    let identity = must(ChannelIdentity::phone("+972549876543"));
    (customer_id_for(&events[0].tenant_id, &identity), events)
}

/// The member merged on request.
fn requested_member() -> Vec<Event> {
    let mut c = EventBuilder::customer("acme", "c-c")
        .on(Channel::Whatsapp, "wa-1")
        .ids("c");
    vec![
        c.started(),
        c.message(Participant::Customer, "hi"),
        c.context("plan", "gold"),
    ]
}
