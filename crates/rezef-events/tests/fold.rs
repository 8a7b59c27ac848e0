//! The fold, given events and then expecting state; and its properties on random sequences.

use proptest::prelude::*;
use rezef_events::event::{AbandonPoint, Participant, Payload};
use rezef_events::fold::{TRANSCRIPT_LEN, customer_id_for};
use rezef_events::journey::{ConversationStatus, Stage};
use rezef_events::testing::EventBuilder;
use rezef_events::{Channel, ChannelIdentity, CustomerRef, Event, Journey};

/// Folds events (offsets 0..) into a fresh journey for the first event's customer.
fn fold(events: &[Event]) -> Journey {
    let first = &events[0];
    let customer = match &first.customer {
        Some(CustomerRef::Id(id)) => id.clone(),
        Some(CustomerRef::Identity(identity)) => customer_id_for(&first.tenant_id, identity),
        None => panic!("customer events only"),
    };
    let mut journey = Journey::new(first.tenant_id.clone(), customer, first.occurred_at);
    for (offset, event) in events.iter().enumerate() {
        journey.apply(offset as u64, event);
    }
    journey
}

#[test]
fn chat_with_a_bot_keeps_intent_context_and_transcript() {
    let mut chat = EventBuilder::visitor("acme", "v-1").on(Channel::Webchat, "chat-1");
    let journey = fold(&[
        chat.started(),
        chat.message(Participant::Customer, "my bill is wrong"),
        chat.intent("billing.dispute", 0.91),
        chat.context("invoice", "INV-7"),
        chat.message(Participant::Bot, "I see invoice INV-7"),
    ]);
    let conversation = journey.open_conversation().expect("open");
    assert_eq!(
        conversation.intent.as_ref().map(|i| i.intent.as_str()),
        Some("billing.dispute")
    );
    assert_eq!(conversation.context["invoice"].value, "INV-7");
    assert_eq!(conversation.transcript.len(), 2);
    assert_eq!(conversation.channels, [Channel::Webchat]);
    assert_eq!(journey.counters.messages, 2);
    assert_eq!(journey.counters.events, 5);
}

#[test]
fn a_second_channel_joins_the_open_conversation() {
    let mut chat = EventBuilder::customer("acme", "c-1").on(Channel::Webchat, "chat-1");
    let mut events = vec![chat.started(), chat.intent("billing", 0.8)];
    let mut voice = EventBuilder::customer("acme", "c-1")
        .ids("v")
        .on(Channel::Voice, "call-1");
    events.push(voice.started());
    events.push(voice.assigned("agent-9"));
    let journey = fold(&events);
    assert_eq!(journey.conversations.len(), 1);
    let conversation = &journey.conversations[0];
    assert_eq!(conversation.channels, [Channel::Webchat, Channel::Voice]);
    assert_eq!(conversation.interactions.len(), 2);
    assert_eq!(
        journey.last_agent_id.as_ref().map(|a| a.as_str()),
        Some("agent-9")
    );
}

#[test]
fn stages_are_tracked_with_their_times() {
    let mut ivr = EventBuilder::phone("acme", "+972501234567").on(Channel::Ivr, "call-1");
    let events = [
        ivr.started(),
        ivr.event(Payload::ContactQueued {
            queue_id: "billing".into(),
            priority: 1,
            required_skills: vec![],
            language: Some("he".into()),
        }),
        ivr.event(Payload::ContactAbandoned {
            point: AbandonPoint::Queue,
        }),
    ];
    let journey = fold(&events);
    let interaction = &journey.conversations[0].interactions[0];
    let stages: Vec<_> = interaction.stages.iter().map(|s| s.stage).collect();
    assert_eq!(
        stages,
        [
            Stage::Started,
            Stage::SelfService,
            Stage::Queued,
            Stage::Abandoned
        ]
    );
    assert_eq!(interaction.stages[2].entered_at, events[1].occurred_at);
    assert_eq!(interaction.ended_at, Some(events[2].occurred_at));
    assert_eq!(interaction.language.as_deref(), Some("he"));
    assert_eq!(journey.counters.abandons, 1);
}

#[test]
fn a_resolved_need_closes_the_conversation_and_the_next_contact_opens_another() {
    let mut chat = EventBuilder::customer("acme", "c-1");
    let mut events = vec![
        chat.started(),
        chat.event(Payload::WrapUpRecorded {
            agent_id: None,
            disposition: "answered".into(),
            need_resolved: true,
            notes: String::new(),
        }),
    ];
    let mut email = EventBuilder::customer("acme", "c-1")
        .ids("m")
        .on(Channel::Email, "mail-1");
    events.push(email.started());
    let journey = fold(&events);
    assert_eq!(journey.conversations.len(), 2);
    assert_eq!(
        journey.conversations[0].status,
        ConversationStatus::Resolved
    );
    assert_eq!(journey.conversations[1].status, ConversationStatus::Open);
}

#[test]
fn verification_links_and_marks_identities() {
    let phone = ChannelIdentity::phone("+972501234567").expect("valid");
    let mut chat = EventBuilder::visitor("acme", "v-1");
    let first = chat.started();
    let identified = chat.identified(vec![phone.clone()]);
    let mut journey = fold(std::slice::from_ref(&first));
    let applied = journey.apply(1, &identified);
    assert_eq!(applied.linked, std::slice::from_ref(&phone));
    let linked = journey.identity(&phone).expect("linked");
    assert!(linked.verification.is_some());
    // The visitor id was verified by the same proof.
    assert_eq!(
        journey
            .identities
            .iter()
            .filter(|l| l.verification.is_some())
            .count(),
        2
    );
}

#[test]
fn a_reveal_leaves_the_journey_as_it_was() {
    let mut chat = EventBuilder::customer("acme", "c-1").on(Channel::Webchat, "chat-1");
    let events = vec![chat.started(), chat.intent("billing", 0.8)];
    let before = fold(&events);
    chat.wait(std::time::Duration::from_secs(90 * 60));
    let mut reveal = chat.event(Payload::SensitiveRevealed {
        key_id: "0a1b2c3d4e5f".into(),
        method: "/rezef.v1.Journeys/ResumeConversation".into(),
        from_offset: None,
        to_offset: None,
    });
    (
        reveal.channel,
        reveal.conversation_id,
        reveal.interaction_id,
    ) = (None, None, None);
    let after = fold(&[events, vec![reveal]].concat());
    assert_eq!(after.conversations, before.conversations);
    assert_eq!(after.counters, before.counters);
    assert_eq!(after.last_seen_at, before.last_seen_at);
}

#[test]
fn the_transcript_is_bounded() {
    let mut chat = EventBuilder::customer("acme", "c-1");
    let events: Vec<_> = (0..TRANSCRIPT_LEN + 7)
        .map(|i| chat.message(Participant::Customer, &format!("m{i}")))
        .collect();
    let journey = fold(&events);
    let transcript = &journey.conversations[0].transcript;
    assert_eq!(transcript.len(), TRANSCRIPT_LEN);
    assert_eq!(transcript.front().map(|m| m.text.as_str()), Some("m7"));
    assert_eq!(journey.counters.messages as usize, TRANSCRIPT_LEN + 7);
}

#[test]
fn identity_derived_customer_ids_are_stable_and_tenant_scoped() {
    let phone = ChannelIdentity::phone("+972501234567").expect("valid");
    let acme = rezef_events::TenantId::new("acme").expect("ok");
    let other = rezef_events::TenantId::new("other").expect("ok");
    assert_eq!(
        customer_id_for(&acme, &phone),
        customer_id_for(&acme, &phone)
    );
    assert_ne!(
        customer_id_for(&acme, &phone),
        customer_id_for(&other, &phone)
    );
}

/// A random but well-formed event for customer `c-1`, on one of three channels.
fn arb_event() -> impl Strategy<Value = (u8, u8, Payload)> {
    let payload = prop_oneof![
        Just(Payload::InteractionStarted {
            direction: rezef_events::event::Direction::Inbound,
            identity: None,
            entry_point: String::new(),
            language: None,
            continuation_token: None,
        }),
        "[a-c]{1,2}".prop_map(|intent| Payload::IntentDetected {
            intent,
            confidence: 0.5,
            detected_by: "bot".into()
        }),
        ("[a-c]", "[x-z]{0,3}").prop_map(|(key, value)| Payload::ContextSet {
            key,
            value,
            sensitive: false
        }),
        "[a-z]{1,5}".prop_map(|text| Payload::MessageSent {
            from: Participant::Customer,
            sender_id: String::new(),
            text,
            attachments: vec![],
            sensitive: false,
        }),
        Just(Payload::ContactAbandoned {
            point: AbandonPoint::Queue
        }),
        Just(Payload::InteractionEnded { reason: None }),
        any::<bool>().prop_map(|need_resolved| Payload::WrapUpRecorded {
            agent_id: None,
            disposition: "done".into(),
            need_resolved,
            notes: String::new()
        }),
    ];
    (0u8..3, 0u8..4, payload)
}

fn build(specs: &[(u8, u8, Payload)]) -> Vec<Event> {
    let channels = [Channel::Webchat, Channel::Voice, Channel::Email];
    let mut builder = EventBuilder::customer("acme", "c-1");
    specs
        .iter()
        .map(|(channel, interaction, payload)| {
            builder = builder.clone().on(
                channels[*channel as usize],
                &format!("i-{channel}-{interaction}"),
            );
            builder.event(payload.clone())
        })
        .collect()
}

proptest! {
    #[test]
    fn the_fold_is_deterministic(specs in prop::collection::vec(arb_event(), 1..60)) {
        let events = build(&specs);
        prop_assert_eq!(fold(&events), fold(&events));
    }

    #[test]
    fn replaying_changes_nothing(specs in prop::collection::vec(arb_event(), 1..60), cut in 0usize..60) {
        let events = build(&specs);
        let mut journey = fold(&events);
        let once = journey.clone();
        // A crash-and-resume replays a suffix (or everything) again with the same offsets.
        for (offset, event) in events.iter().enumerate().skip(cut.min(events.len())) {
            prop_assert!(!journey.apply(offset as u64, event).changed);
        }
        prop_assert_eq!(journey, once);
    }

    #[test]
    fn invariants_hold(specs in prop::collection::vec(arb_event(), 1..80)) {
        let events = build(&specs);
        let journey = fold(&events);
        prop_assert_eq!(journey.counters.events, events.len() as u64);
        let mut seen = std::collections::HashSet::new();
        for conversation in &journey.conversations {
            prop_assert!(conversation.transcript.len() <= TRANSCRIPT_LEN);
            for interaction in &conversation.interactions {
                // Every interaction lives in exactly one conversation.
                prop_assert!(seen.insert(interaction.id.clone()));
                prop_assert_eq!(interaction.stages.last().map(|s| s.stage), Some(interaction.stage));
                prop_assert!(interaction.stages.windows(2).all(|w| w[0].entered_at <= w[1].entered_at));
            }
        }
        // Interactions and conversations are all counted, whole or compacted (`bound`).
        let counted: u32 = journey.conversations.iter().map(|c| c.earlier_interactions).sum::<u32>()
            + journey.past.iter().map(|s| s.interactions).sum::<u32>();
        prop_assert_eq!(journey.counters.interactions as usize, seen.len() + counted as usize);
        prop_assert_eq!(
            journey.counters.conversations as usize,
            journey.conversations.len() + journey.past.len() + journey.counters.conversations_forgotten as usize
        );
        prop_assert!(journey.conversations.iter().filter(|c| c.status == ConversationStatus::Open).count() <= journey.conversations.len());
        // The state survives its stored form.
        prop_assert_eq!(Journey::from_bytes(&journey.to_bytes()).expect("decodes"), journey);
    }
}
