//! Conversations across channels and time (windows, same intent, reopen, inactivity,
//! tokens) and merging customers, given events and then expecting state; with properties of
//! merge and unmerge on random sequences.

use std::time::Duration;

use proptest::prelude::*;
use rezef_events::bound::MAX_CONVERSATIONS;
use rezef_events::event::{AssuranceLevel, Participant, Payload, VerificationMethod};
use rezef_events::fold::Context;
use rezef_events::journey::{ConversationStatus, JoinReason, MergeCause, MergeRecord};
use rezef_events::policy::ContinuityPolicy;
use rezef_events::testing::EventBuilder;
use rezef_events::{Channel, ChannelIdentity, CustomerId, Event, Journey, Timestamp};

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);

fn customer(id: &str) -> CustomerId {
    CustomerId::new(id).expect("valid")
}

fn fold_into(journey: &mut Journey, first_offset: u64, events: &[Event]) {
    for (n, event) in events.iter().enumerate() {
        journey.apply(first_offset + n as u64, event);
    }
}

fn fold(id: &str, events: &[Event]) -> Journey {
    let mut journey = Journey::new(
        events[0].tenant_id.clone(),
        customer(id),
        events[0].occurred_at,
    );
    fold_into(&mut journey, 0, events);
    journey
}

fn reasons(journey: &Journey) -> Vec<Vec<JoinReason>> {
    journey
        .conversations
        .iter()
        .map(|c| c.interactions.iter().map(|i| i.joined).collect())
        .collect()
}

#[test]
fn a_contact_within_the_window_continues_on_another_channel() {
    let mut chat = EventBuilder::customer("acme", "c-1").on(Channel::Webchat, "chat-1");
    let mut events = vec![chat.started(), chat.intent("billing", 0.9)];
    chat.wait(48 * HOUR);
    let mut voice = chat.on(Channel::Voice, "call-1");
    events.push(voice.started());
    let journey = fold("c-1", &events);
    assert_eq!(
        reasons(&journey),
        [[JoinReason::Opened, JoinReason::WithinWindow]]
    );
    assert_eq!(
        journey.conversations[0].channels,
        [Channel::Webchat, Channel::Voice]
    );
}

#[test]
fn past_the_window_a_contact_joins_only_on_the_same_intent() {
    let mut chat = EventBuilder::customer("acme", "c-1").on(Channel::Webchat, "chat-1");
    let mut events = vec![chat.started(), chat.intent("billing", 0.9)];
    chat.wait(4 * DAY);
    let mut voice = chat.on(Channel::Voice, "call-1");
    events.push(voice.started());
    let apart = fold("c-1", &events);
    assert_eq!(
        apart.conversations.len(),
        2,
        "a new contact opens its own conversation first"
    );

    let mut same = events.clone();
    same.push(voice.intent("billing", 0.8));
    let journey = fold("c-1", &same);
    assert_eq!(
        reasons(&journey),
        [[JoinReason::Opened, JoinReason::SameIntent]]
    );
    assert_eq!(journey.counters.conversations, 1);
    let alias = &apart.conversations[1].id;
    assert_eq!(
        journey.conversation(alias).map(|c| &c.id),
        Some(&journey.conversations[0].id),
        "the joined conversation's id still finds it"
    );

    let mut other = events;
    other.push(voice.intent("address.change", 0.8));
    assert_eq!(
        fold("c-1", &other).conversations.len(),
        2,
        "another need stays apart"
    );
}

#[test]
fn a_contact_soon_after_resolution_about_the_same_need_reopens_and_counts_as_repeat() {
    let mut chat = EventBuilder::customer("acme", "c-1").on(Channel::Webchat, "chat-1");
    let mut events = vec![
        chat.started(),
        chat.intent("billing", 0.9),
        chat.wrapped_up(true),
    ];
    chat.wait(2 * DAY);
    let mut voice = chat.on(Channel::Voice, "call-1");
    events.extend([voice.started(), voice.intent("billing", 0.9)]);
    let journey = fold("c-1", &events);
    assert_eq!(journey.conversations.len(), 1);
    let conversation = &journey.conversations[0];
    assert_eq!(conversation.status, ConversationStatus::Open);
    assert_eq!(conversation.closed_at, None);
    assert_eq!(conversation.repeat_contacts, 1);
    assert_eq!(journey.counters.repeat_contacts, 1);
    assert_eq!(
        reasons(&journey),
        [[JoinReason::Opened, JoinReason::Reopened]]
    );

    // Long after, the same intent is a new need.
    let mut late = events[..3].to_vec();
    let mut voice = EventBuilder::customer("acme", "c-1")
        .on(Channel::Voice, "call-2")
        .ids("late");
    voice.wait(30 * DAY);
    late.extend([voice.started(), voice.intent("billing", 0.9)]);
    let journey = fold("c-1", &late);
    assert_eq!(journey.conversations.len(), 2);
    assert_eq!(journey.counters.repeat_contacts, 0);
}

#[test]
fn an_idle_conversation_closes_as_inactive() {
    let mut chat = EventBuilder::customer("acme", "c-1").on(Channel::Webchat, "chat-1");
    let mut events = vec![chat.started(), chat.intent("billing", 0.9)];
    let last_activity = chat.clock();
    chat.wait(8 * DAY);
    let mut email = chat.on(Channel::Email, "mail-1");
    events.push(email.started());
    let journey = fold("c-1", &events);
    let first = &journey.conversations[0];
    assert_eq!(first.status, ConversationStatus::Inactive);
    assert_eq!(first.closed_at, Some(last_activity.plus(7 * DAY)));
    assert_eq!(journey.conversations[1].status, ConversationStatus::Open);

    // The event that found it idle says so, once.
    let mut again = fold("c-1", &events[..2]);
    let applied = again.apply(2, &events[2]);
    assert_eq!(applied.closed, std::slice::from_ref(&first.id));
    assert_eq!(
        applied.opened,
        std::slice::from_ref(&journey.conversations[1].id)
    );
    let later = email.event(Payload::InteractionEnded { reason: None });
    assert!(again.apply(3, &later).closed.is_empty());
}

#[test]
fn a_token_continues_its_conversation_once_even_past_the_window() {
    let mut chat = EventBuilder::customer("acme", "c-1")
        .on(Channel::Webchat, "chat-1")
        .in_conversation("cnv-chat");
    let mut events = vec![chat.started()];
    let expires_at = chat.clock().plus(30 * DAY);
    events.push(chat.event(Payload::ContinuationTokenIssued {
        token: "482913".into(),
        expires_at,
        redeem_on: Vec::new(),
    }));
    let mut other = EventBuilder::customer("acme", "c-1")
        .on(Channel::Webchat, "chat-0")
        .ids("o");
    other.wait(4 * DAY);
    events.push(other.started()); // past the window: a newer open conversation
    let mut voice = EventBuilder::customer("acme", "c-1")
        .on(Channel::Voice, "call-1")
        .ids("v");
    voice.wait(5 * DAY);
    events.push(voice.started_with_token("482913"));
    let journey = fold("c-1", &events);
    let chat = journey
        .conversation(&rezef_events::ConversationId::new("cnv-chat").expect("valid"))
        .expect("present");
    assert_eq!(
        chat.interactions
            .iter()
            .map(|i| i.joined)
            .collect::<Vec<_>>(),
        [JoinReason::Named, JoinReason::Token]
    );
    assert!(chat.tokens.is_empty(), "a token is used once");

    let mut again = EventBuilder::customer("acme", "c-1")
        .on(Channel::Voice, "call-2")
        .ids("w");
    again.wait(5 * DAY);
    let mut journey = journey;
    let applied = journey.apply(10, &again.started_with_token("482913"));
    assert!(applied.tokens_used.is_empty());
}

/// Given a code issued for the IVR, when a chat starts with it, then it continues
/// nothing (the chat opens its own conversation) and the code stays for the IVR.
#[test]
fn a_token_continues_only_on_the_channels_it_was_issued_for() {
    let mut chat = EventBuilder::customer("acme", "c-1")
        .on(Channel::Webchat, "chat-1")
        .in_conversation("cnv-chat");
    let mut events = vec![chat.started()];
    events.push(chat.event(Payload::ContinuationTokenIssued {
        token: "48291377".into(),
        expires_at: chat.clock().plus(DAY),
        redeem_on: vec![Channel::Ivr],
    }));
    let mut elsewhere = EventBuilder::customer("acme", "c-1")
        .on(Channel::Email, "mail-1")
        .ids("m");
    elsewhere.wait(Duration::from_secs(3600));
    let mut journey = fold("c-1", &events);
    let applied = journey.apply(10, &elsewhere.started_with_token("48291377"));
    assert!(applied.tokens_used.is_empty(), "not for email");
    let mut ivr = EventBuilder::customer("acme", "c-1")
        .on(Channel::Ivr, "ivr-1")
        .ids("i");
    ivr.wait(Duration::from_secs(3600));
    let applied = journey.apply(11, &ivr.started_with_token("48291377"));
    assert_eq!(applied.tokens_used, ["48291377"]);
}

fn verified(
    method: VerificationMethod,
    assurance: AssuranceLevel,
    identity: ChannelIdentity,
) -> MergeRecord {
    MergeRecord {
        at: Timestamp::from_unix_millis(1_800_000_000_000),
        offset: 1000,
        cause: MergeCause::Verified {
            method,
            assurance,
            identity,
        },
    }
}

fn crm() -> ChannelIdentity {
    ChannelIdentity::new(rezef_events::IdentityKind::CrmId, "C-1", None).expect("valid")
}

#[test]
fn a_merge_joins_histories_and_an_unmerge_gives_each_back() {
    let mut chat = EventBuilder::visitor("acme", "v-1").on(Channel::Webchat, "chat-1");
    let a = fold(
        "c-a",
        &[
            chat.started(),
            chat.intent("billing", 0.9),
            chat.assigned("agent-1"),
        ],
    );
    let mut call = EventBuilder::phone("acme", "+972501234567").ids("p");
    let b = fold(
        "c-b",
        &[call.started(), call.message(Participant::Customer, "hi")],
    );

    let mut merged = a.clone();
    let tombstone = merged.absorb(
        b.clone(),
        verified(VerificationMethod::Knowledge, AssuranceLevel::High, crm()),
    );
    assert_eq!(tombstone.merged_into, Some(customer("c-a")));
    assert_eq!(merged.conversations.len(), 2);
    assert_eq!(merged.identities.len(), 2);
    assert_eq!(
        merged.counters.events,
        a.counters.events + b.counters.events
    );
    assert_eq!(
        merged.merged_customers().collect::<Vec<_>>(),
        [&customer("c-b")]
    );

    let mut after = merged.clone();
    let restored = after.split(&customer("c-b")).expect("a member");
    assert_eq!(restored, b);
    assert_eq!(after, a);
    assert_eq!(after.split(&customer("c-b")), None, "no longer a member");
}

#[test]
fn events_after_a_merge_go_back_with_the_member_they_came_from() {
    let mut chat = EventBuilder::visitor("acme", "v-1").on(Channel::Webchat, "chat-1");
    let a = fold("c-a", &[chat.started()]);
    let mut call = EventBuilder::phone("acme", "+972501234567").ids("p");
    let b = fold("c-b", &[call.started()]);
    let mut merged = a.clone();
    merged.absorb(
        b,
        verified(VerificationMethod::Pin, AssuranceLevel::High, crm()),
    );
    // A later call from B's phone, resolved to member c-b, opens a conversation of its own.
    let mut later = EventBuilder::phone("acme", "+972501234567")
        .on(Channel::Voice, "call-9")
        .ids("q");
    later.wait(10 * DAY);
    let policy = ContinuityPolicy::default();
    let origin = customer("c-b");
    let cx = Context {
        policy: &policy,
        origin: Some(&origin),
        foreign: &[],
        recorded_at: None,
    };
    merged.apply_with(50, &later.started(), &cx);
    merged.apply_with(51, &later.intent("moving", 0.9), &cx);
    let events = merged.counters.events;
    let restored = merged.split(&origin).expect("a member");
    assert_eq!(
        restored.conversations.len(),
        2,
        "its old one and the one opened since"
    );
    assert_eq!(merged.conversations.len(), 1);
    assert_eq!(restored.counters.events + merged.counters.events, events);
    assert_eq!(restored.last_event_offset, Some(51));
}

/// Random customers' histories: (customer index, channel, payload kind).
fn arb_history() -> impl Strategy<Value = Vec<(usize, u8, u8)>> {
    prop::collection::vec((0usize..3, 0u8..3, 0u8..6), 1..40)
}

fn history_events(specs: &[(usize, u8, u8)]) -> Vec<(usize, Event)> {
    let channels = [Channel::Webchat, Channel::Voice, Channel::Email];
    specs
        .iter()
        .enumerate()
        .map(|(n, (who, channel, kind))| {
            let mut b = EventBuilder::customer("acme", &format!("c-{who}"))
                .on(channels[*channel as usize], &format!("i-{who}-{channel}"))
                .ids(&format!("x{n}"));
            b.wait(Duration::from_secs(n as u64 * 3600 * 11));
            let event = match kind {
                0 => b.started(),
                1 => b.intent(["billing", "moving"][n % 2], 0.9),
                2 => b.message(Participant::Customer, "hello"),
                3 => b.assigned("agent-1"),
                4 => b.wrapped_up(n % 2 == 0),
                _ => b.context("k", "v"),
            };
            (*who, event)
        })
        .collect()
}

proptest! {
    /// Folding merges then unmerges in reverse gives every customer back as it was.
    #[test]
    fn merge_then_unmerge_restores_both(specs in arb_history()) {
        let mut journeys: Vec<Journey> = (0..3)
            .map(|n| Journey::new(rezef_events::TenantId::new("acme").expect("valid"), customer(&format!("c-{n}")), Timestamp::from_unix_millis(1_700_000_000_000)))
            .collect();
        for (offset, (who, event)) in history_events(&specs).into_iter().enumerate() {
            journeys[who].apply(offset as u64, &event);
        }
        let before = journeys.clone();
        let record = verified(VerificationMethod::Document, AssuranceLevel::High, crm());
        // c-2 into c-1, then c-1 (with c-2) into c-0; undo in any order.
        let mut root = journeys[0].clone();
        let mut middle = journeys[1].clone();
        middle.absorb(journeys[2].clone(), record.clone());
        root.absorb(middle, record);
        prop_assert_eq!(root.counters.events, before.iter().map(|j| j.counters.events).sum::<u64>());
        let middle = root.split(&customer("c-1")).expect("member");
        let mut middle = middle;
        let last = middle.split(&customer("c-2")).expect("nested member");
        // Exactly as they were, unless the merged journey compacted some (`bound`): what a
        // merge compacts stays compacted, and only the counts come back.
        let whole: usize = before.iter().map(|j| j.conversations.len()).sum();
        for (after, before) in [&root, &middle, &last].into_iter().zip(&before) {
            if whole <= MAX_CONVERSATIONS {
                prop_assert_eq!(after, before);
            } else {
                prop_assert_eq!(&after.counters, &before.counters);
            }
        }
    }

    /// Whatever happens between a merge and its unmerge, nothing is lost or counted twice.
    #[test]
    fn an_unmerge_partitions_the_journey(specs in arb_history(), after in arb_history()) {
        let mut a = Journey::new(rezef_events::TenantId::new("acme").expect("valid"), customer("c-0"), Timestamp::from_unix_millis(1_700_000_000_000));
        let mut b = Journey::new(rezef_events::TenantId::new("acme").expect("valid"), customer("c-1"), Timestamp::from_unix_millis(1_700_000_000_000));
        let mut offset = 0;
        for (who, event) in history_events(&specs) {
            if who == 0 { a.apply(offset, &event); } else { b.apply(offset, &event); }
            offset += 1;
        }
        a.absorb(b, verified(VerificationMethod::Document, AssuranceLevel::High, crm()));
        let policy = ContinuityPolicy::default();
        let member = customer("c-1");
        for (who, event) in history_events(&after) {
            let origin = (who != 0).then_some(&member);
            offset += 1000;
            let cx = Context { policy: &policy, origin, foreign: &[], recorded_at: None };
            a.apply_with(offset, &event, &cx);
        }
        let total = a.clone();
        let b = a.split(&member).expect("member");
        prop_assert_eq!(a.counters.events + b.counters.events, total.counters.events);
        prop_assert_eq!(a.conversations.len() + b.conversations.len(), total.conversations.len());
        prop_assert_eq!(a.past.len() + b.past.len(), total.past.len());
        prop_assert_eq!(a.identities.len() + b.identities.len(), total.identities.len());
        prop_assert!(a.shares.is_empty() && b.shares.is_empty());
        for journey in [&a, &b] {
            prop_assert_eq!(
                journey.counters.conversations as usize,
                journey.conversations.len() + journey.past.len() + journey.counters.conversations_forgotten as usize
            );
        }
    }
}

fn attributes_set(builder: &mut EventBuilder, tier: Option<&str>, language: Option<&str>) -> Event {
    let mut event = builder.event(Payload::CustomerAttributesSet {
        tier: tier.map(str::to_owned),
        preferred_language: language.map(str::to_owned),
    });
    // A CRM's update: no channel, no interaction.
    (event.channel, event.interaction_id) = (None, None);
    event
}

/// Given a customer in a conversation, when the CRM sets their tier and language, then the
/// journey records them and the conversation is as it was; an update changes only what it
/// names, and an empty value clears.
#[test]
fn a_customer_s_tier_and_language_are_recorded_on_the_journey_not_in_a_conversation() {
    let mut chat = EventBuilder::customer("acme", "c-1");
    let mut events = vec![chat.started(), chat.intent("billing", 0.9)];
    let before = fold("c-1", &events);
    chat.wait(HOUR);
    let vip = attributes_set(&mut chat, Some("vip"), Some("he"));
    assert_eq!(vip.validate(), Ok(()));
    events.push(vip);
    let journey = fold("c-1", &events);
    assert_eq!(journey.attributes.tier.as_deref(), Some("vip"));
    assert_eq!(journey.attributes.preferred_language.as_deref(), Some("he"));
    assert_eq!(journey.conversations, before.conversations);

    events.push(attributes_set(&mut chat, Some(""), None));
    let journey = fold("c-1", &events);
    assert_eq!(journey.attributes.tier, None);
    assert_eq!(journey.attributes.preferred_language.as_deref(), Some("he"));
    let nothing = attributes_set(&mut chat, None, Some("not a tag"));
    let fields: Vec<_> = (nothing.validate().expect_err("invalid").into_iter())
        .map(|v| v.field)
        .collect();
    assert_eq!(fields, ["customer_attributes_set.preferred_language"]);
}

/// Given A with a tier and B with a language, when B merges into A, then the journey has
/// both; when B is unmerged, each has its own again.
#[test]
fn merged_customers_share_their_attributes_until_unmerged() {
    let mut a_chat = EventBuilder::customer("acme", "c-a").ids("a");
    let mut b_chat = EventBuilder::customer("acme", "c-b").ids("b");
    let a_events = [
        a_chat.started(),
        attributes_set(&mut a_chat, Some("gold"), None),
    ];
    let b_events = [
        b_chat.started(),
        attributes_set(&mut b_chat, None, Some("ar")),
    ];
    let mut a = fold("c-a", &a_events);
    let b = fold("c-b", &b_events);
    let (a_alone, b_alone) = (a.attributes.clone(), b.attributes.clone());
    let record = MergeRecord {
        at: b_chat.clock(),
        offset: 100,
        cause: MergeCause::Requested {
            reason: "same person".into(),
            requested_by: "agent-1".into(),
        },
    };
    a.absorb(b, record);
    assert_eq!(a.attributes.tier.as_deref(), Some("gold"));
    assert_eq!(a.attributes.preferred_language.as_deref(), Some("ar"));
    let restored = a.split(&customer("c-b")).expect("a member");
    assert_eq!((a.attributes, restored.attributes), (a_alone, b_alone));
}
