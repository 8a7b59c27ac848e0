//! Identity resolution through the real log and sled: links, merges by verified evidence,
//! refused weak links, merge and unmerge events, continuation tokens; and that a projection
//! interrupted anywhere and a rebuild end with the same identities.

mod common;

use std::sync::Arc;

use proptest::prelude::*;
use rezef_events::event::{AssuranceLevel, Participant, Payload, VerificationMethod};
use rezef_events::fold::customer_id_for;
use rezef_events::journey::JoinReason;
use rezef_events::policy::MergeRefusal;
use rezef_events::testing::EventBuilder;
use rezef_events::{
    Channel, ChannelIdentity, ConversationId, CustomerId, Event, IdentityKind, Journey,
};
use rezef_log::Log;
use rezef_store::{CachedStore, DEFAULT_DEDUP_WINDOW, JourneyStore, Projector, rebuild};

use common::identity_log::{acme, arb_identity_events, crm, identity_events, verified};
use common::{Fixture, project};

fn phone() -> ChannelIdentity {
    ChannelIdentity::phone("+972501234567").expect("valid")
}

fn visitor_id() -> CustomerId {
    let visitor = ChannelIdentity::new(IdentityKind::ChatVisitor, "v-1", None).expect("valid");
    customer_id_for(&acme(), &visitor)
}

fn journey(store: &Arc<CachedStore>, customer: &CustomerId) -> Journey {
    store
        .journey(&acme(), customer)
        .expect("get")
        .expect("present")
}

/// A chat visitor who proved a CRM id, then (later in time) a caller with a call of their own.
fn two_strangers() -> (EventBuilder, EventBuilder, Vec<Event>) {
    let mut chat = EventBuilder::visitor("acme", "v-1").on(Channel::Webchat, "chat-1");
    let mut call = EventBuilder::phone("acme", "+972501234567").ids("p");
    call.wait(std::time::Duration::from_secs(60));
    let events = vec![
        chat.started(),
        chat.intent("billing", 0.9),
        chat.identified(vec![crm("C-1")]),
        call.started(),
        call.message(Participant::Customer, "hello"),
    ];
    (chat, call, events)
}

#[tokio::test]
async fn a_verification_proving_anothers_identity_merges_them_into_the_elder() {
    let fixture = Fixture::new();
    let (_, mut call, mut events) = two_strangers();
    events.push(verified(
        &mut call,
        VerificationMethod::Knowledge,
        AssuranceLevel::High,
        crm("C-1"),
    ));
    fixture.publish(&events).await;
    let store = fixture.store("store");
    project(&fixture, &store).await;

    let caller = customer_id_for(&acme(), &phone());
    let absorbed = journey(&store, &caller);
    assert_eq!(
        absorbed.merged_into,
        Some(visitor_id()),
        "the elder survives"
    );
    let merged = journey(&store, &visitor_id());
    assert_eq!(merged.merged_customers().collect::<Vec<_>>(), [&caller]);
    assert_eq!(merged.conversations.len(), 2);
    assert_eq!(merged.counters.events, events.len() as u64);
    assert_eq!(
        store.resolve(&acme(), &phone()).expect("resolve"),
        Some(caller),
        "the phone stays the member's; reads follow the pointer"
    );
}

#[tokio::test]
async fn shared_or_spoofable_evidence_leaves_customers_apart_and_records_why() {
    let fixture = Fixture::new();
    let (_, mut call, mut events) = two_strangers();
    let family = ChannelIdentity::email("family@example.com").expect("valid");
    let mut chat = EventBuilder::visitor("acme", "v-1").ids("c2");
    events.push(chat.identified(vec![family.clone()]));
    events.push(call.identified(vec![family.clone()])); // a one-time code to a shared mailbox
    events.push(verified(
        &mut call,
        VerificationMethod::CallerId,
        AssuranceLevel::High,
        crm("C-1"),
    ));
    fixture.publish(&events).await;
    let store = fixture.store("store");
    project(&fixture, &store).await;

    let caller = journey(&store, &customer_id_for(&acme(), &phone()));
    assert_eq!(caller.merged_into, None);
    let refusals: Vec<_> = caller
        .conflicts
        .iter()
        .map(|c| (c.identity.clone(), c.refusal))
        .collect();
    assert_eq!(
        refusals,
        [
            (family.clone(), MergeRefusal::SharedIdentity),
            (crm("C-1"), MergeRefusal::ExcludedMethod)
        ]
    );
    assert!(caller.conflicts.iter().all(|c| c.owner == visitor_id()));
    assert_eq!(
        store.resolve(&acme(), &family).expect("resolve"),
        Some(visitor_id())
    );
    assert!(journey(&store, &visitor_id()).shares.is_empty());
}

#[tokio::test]
async fn merge_and_unmerge_events_give_both_customers_back() {
    let fixture = Fixture::new();
    let (_, _, events) = two_strangers();
    fixture.publish(&events).await;
    let store = fixture.store("store");
    project(&fixture, &store).await;
    let caller = customer_id_for(&acme(), &phone());
    let before = (journey(&store, &visitor_id()), journey(&store, &caller));

    let mut desk = EventBuilder::customer("acme", visitor_id().as_str()).ids("desk");
    let mut request = |payload| {
        let mut event = desk.event(payload);
        event.channel = None;
        event.interaction_id = None;
        event
    };
    let merged = request(Payload::CustomersMerged {
        absorbed: caller.clone(),
        reason: "same person".into(),
        requested_by: "agent-1".into(),
    });
    fixture.publish(&[merged]).await;
    project(&fixture, &store).await;
    assert_eq!(journey(&store, &caller).merged_into, Some(visitor_id()));

    let unmerged = request(Payload::CustomersUnmerged {
        absorbed: caller.clone(),
        reason: "wrong person".into(),
        requested_by: "agent-1".into(),
    });
    fixture.publish(&[unmerged]).await;
    project(&fixture, &store).await;
    let mut survivor = journey(&store, &visitor_id());
    assert_eq!(
        survivor.last_event_offset,
        Some(fixture.log.end_offset() - 1)
    );
    survivor.last_event_offset = before.0.last_event_offset;
    assert_eq!((survivor, journey(&store, &caller)), before);
    let history = |c: &CustomerId| {
        store
            .customer_offsets(&acme(), c, 0, u64::MAX)
            .expect("offsets")
    };
    assert_eq!(
        history(&caller),
        [3, 4, 5, 6],
        "each keeps its own history for audits, with the merge and the unmerge that named it"
    );
    assert_eq!(history(&visitor_id()), [0, 1, 2, 5, 6]);
}

#[tokio::test]
async fn a_token_brings_an_unknown_caller_to_its_conversation() {
    let fixture = Fixture::new();
    let mut chat = EventBuilder::visitor("acme", "v-1").in_conversation("cnv-chat");
    let started = chat.started();
    let expires_at = chat.clock().plus(std::time::Duration::from_secs(3600));
    let issued = chat.event(Payload::ContinuationTokenIssued {
        token: "482913".into(),
        expires_at,
        redeem_on: Vec::new(),
    });
    let mut call = EventBuilder::phone("acme", "+972501234567").ids("p");
    call.wait(std::time::Duration::from_secs(60));
    let events = [started, issued, call.started_with_token("482913")];
    fixture.publish(&events).await;
    let store = fixture.store("store");
    project(&fixture, &store).await;

    let customer = journey(&store, &visitor_id());
    let conversation = customer
        .conversation(&ConversationId::new("cnv-chat").expect("valid"))
        .expect("present");
    let reasons: Vec<_> = conversation.interactions.iter().map(|i| i.joined).collect();
    assert_eq!(reasons, [JoinReason::Named, JoinReason::Token]);
    assert_eq!(
        store.resolve(&acme(), &phone()).expect("resolve"),
        Some(visitor_id())
    );
    assert_eq!(
        store.token(&acme(), "482913").expect("get"),
        None,
        "used up"
    );
    assert_eq!(
        store
            .conversation_owner(&acme(), &ConversationId::new("cnv-chat").expect("valid"))
            .expect("get"),
        Some(visitor_id())
    );
}

fn everything(store: &Arc<CachedStore>) -> (Vec<Journey>, Vec<Option<CustomerId>>) {
    let journeys = store.journeys(None).map(|j| j.expect("decodes")).collect();
    let owners = (0..4)
        .map(|n| {
            store
                .resolve(&acme(), &crm(&format!("C-{n}")))
                .expect("resolve")
        })
        .collect();
    (journeys, owners)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Whatever links, merges and unmerges happen, projecting in uneven steps (a crash and
    /// resume at each) and rebuilding from the log give the same journeys and identities;
    /// no event is lost or counted twice.
    #[test]
    fn replaying_the_log_rebuilds_the_same_identities(specs in arb_identity_events(), cuts in prop::collection::vec(1u64..9, 1..6)) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(async {
            let fixture = Fixture::new();
            let events = identity_events(&specs);
            fixture.publish(&events).await;
            let end = fixture.log.end_offset();
            // A new projector per step resumes from the store's offset, as after a restart.
            let stepped = fixture.store("stepped");
            let mut stop = 0;
            for cut in cuts.iter().chain(std::iter::once(&end)) {
                stop = (stop + cut).min(end);
                Projector::new(fixture.log(), stepped.clone()).expect("projector")
                    .catch_up(stop, |_| {}).await.expect("catch up");
            }
            let rebuilt = fixture.store("rebuilt");
            rebuild((fixture.log(), Default::default()), rebuilt.clone(), Default::default(), None, DEFAULT_DEDUP_WINDOW, |_| {}).await.expect("rebuild");
            let (journeys, owners) = everything(&stepped);
            prop_assert_eq!((&journeys, &owners), (&everything(&rebuilt).0, &everything(&rebuilt).1));
            let counted: u64 = journeys.iter().filter(|j| j.merged_into.is_none()).map(|j| j.counters.events).sum();
            let identity_changes = events.iter().filter(|e| e.payload.is_identity_change()).count() as u64;
            prop_assert_eq!(counted, events.len() as u64 - identity_changes);
            Ok(())
        })?;
    }
}
