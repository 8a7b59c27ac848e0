//! The projector over the real embedded log and the real sled store.

mod common;

use std::sync::Arc;

use rezef_events::event::Participant;
use rezef_events::fold::customer_id_for;
use rezef_events::testing::EventBuilder;
use rezef_events::{Channel, ChannelIdentity, CustomerId, Event, Journey, TenantId};
use rezef_log::Log;
use rezef_store::{CachedStore, DEFAULT_DEDUP_WINDOW, JourneyStore, Projector, rebuild};

use common::Fixture;

/// Customers 0..n, each chatting then calling; a few events each.
fn traffic(customers: usize) -> Vec<Event> {
    let mut events = Vec::new();
    for c in 0..customers {
        let mut chat = EventBuilder::customer("acme", &format!("c-{c}")).ids(&format!("c{c}"));
        events.push(chat.started());
        events.push(chat.intent("billing", 0.7));
        events.push(chat.message(Participant::Customer, "hello"));
        events.push(chat.context("order", &format!("o-{c}")));
    }
    // Interleave customers the way live traffic would.
    let mut interleaved = Vec::new();
    for i in 0..4 {
        interleaved.extend(events.iter().skip(i).step_by(4).cloned());
    }
    interleaved
}

fn fold_by_hand(events: &[Event], tenant: &TenantId, customer: &CustomerId) -> Journey {
    let mut journey: Option<Journey> = None;
    for (offset, event) in events.iter().enumerate() {
        let Some(rezef_events::CustomerRef::Id(id)) = &event.customer else {
            continue;
        };
        if id != customer || &event.tenant_id != tenant {
            continue;
        }
        journey
            .get_or_insert_with(|| Journey::new(tenant.clone(), id.clone(), event.occurred_at))
            .apply(offset as u64, event);
    }
    journey.expect("the customer has events")
}

#[tokio::test]
async fn the_projection_equals_the_pure_fold() {
    let fixture = Fixture::new();
    let events = traffic(25);
    fixture.publish(&events).await;
    let store = fixture.store("store");
    let mut projector = Projector::new(fixture.log(), store.clone()).expect("projector");
    let stats = projector
        .catch_up(fixture.log.end_offset(), |_| {})
        .await
        .expect("catch up");
    assert_eq!(stats.applied, events.len() as u64);
    assert_eq!(
        store.projected_offset().expect("offset"),
        events.len() as u64
    );
    let tenant = TenantId::new("acme").expect("valid");
    for c in [0, 7, 24] {
        let customer = CustomerId::new(format!("c-{c}")).expect("valid");
        let stored = store
            .journey(&tenant, &customer)
            .expect("get")
            .expect("present");
        assert_eq!(stored, fold_by_hand(&events, &tenant, &customer));
    }
    assert_eq!(store.journeys(Some(&tenant)).count(), 25);
}

#[tokio::test]
async fn stopping_and_resuming_anywhere_applies_each_event_exactly_once() {
    let fixture = Fixture::new();
    let events = traffic(40);
    fixture.publish(&events).await;
    let end = fixture.log.end_offset();

    // Reference: one uninterrupted run.
    let reference = fixture.store("reference");
    Projector::new(fixture.log(), reference.clone())
        .expect("projector")
        .catch_up(end, |_| {})
        .await
        .expect("catch up");

    // Interrupted: stop at uneven points, drop the store, reopen it from disk, resume.
    let mut stop = 0;
    for step in [1, 13, 29, 2, 61, 160] {
        stop = (stop + step).min(end);
        let store = fixture.store("interrupted");
        let mut projector = Projector::new(fixture.log(), store.clone()).expect("projector");
        projector.catch_up(stop, |_| {}).await.expect("catch up");
        assert_eq!(store.projected_offset().expect("offset"), stop);
        store.flush().expect("flush");
    }
    let store = fixture.store("interrupted");
    Projector::new(fixture.log(), store.clone())
        .expect("projector")
        .catch_up(end, |_| {})
        .await
        .expect("catch up");

    let all = |s: &Arc<CachedStore>| -> Vec<Journey> {
        s.journeys(None).map(|j| j.expect("decodes")).collect()
    };
    let (resumed, reference) = (all(&store), all(&reference));
    assert_eq!(resumed, reference);
    let applied: u64 = resumed.iter().map(|j| j.counters.events).sum();
    assert_eq!(applied, events.len() as u64);
}

#[tokio::test]
async fn a_repeated_event_id_is_applied_once() {
    let fixture = Fixture::new();
    let mut chat = EventBuilder::customer("acme", "c-1");
    let message = chat.message(Participant::Customer, "hi");
    // A retry within one batch and another one later.
    fixture.publish(&[message.clone(), message.clone()]).await;
    fixture.publish(&[message]).await;
    let store = fixture.store("store");
    let stats = Projector::new(fixture.log(), store.clone())
        .expect("projector")
        .catch_up(3, |_| {})
        .await
        .expect("catch up");
    assert_eq!((stats.applied, stats.duplicates), (1, 2));
    let tenant = TenantId::new("acme").expect("valid");
    let journey = store
        .journey(&tenant, &CustomerId::new("c-1").expect("valid"))
        .expect("get")
        .expect("present");
    assert_eq!(journey.counters.messages, 1);
    assert_eq!(journey.counters.duplicates_ignored, 2);
}

#[tokio::test]
async fn a_verified_phone_number_leads_the_call_to_the_chat_customer() {
    let fixture = Fixture::new();
    let phone = ChannelIdentity::phone("+972501234567").expect("valid");
    let mut chat = EventBuilder::visitor("acme", "visitor-1").on(Channel::Webchat, "chat-1");
    let mut call = EventBuilder::phone("acme", "+972 50 123 4567").ids("call");
    let events = [
        chat.started(),
        chat.intent("billing.dispute", 0.9),
        chat.identified(vec![phone.clone()]),
        call.started(),
    ];
    fixture.publish(&events).await;
    let store = fixture.store("store");
    Projector::new(fixture.log(), store.clone())
        .expect("projector")
        .catch_up(4, |_| {})
        .await
        .expect("catch up");

    let tenant = TenantId::new("acme").expect("valid");
    let customer = store
        .resolve(&tenant, &phone)
        .expect("resolve")
        .expect("linked");
    let visitor = ChannelIdentity::new(rezef_events::IdentityKind::ChatVisitor, "visitor-1", None)
        .expect("valid");
    assert_eq!(customer, customer_id_for(&tenant, &visitor));
    let journey = store
        .journey(&tenant, &customer)
        .expect("get")
        .expect("present");
    let conversation = journey.open_conversation().expect("open");
    assert_eq!(conversation.channels, [Channel::Webchat, Channel::Voice]);
    assert_eq!(journey.counters.events, 4);
    assert_eq!(
        store.journeys(None).count(),
        1,
        "no stranger was created for the call"
    );
}

/// A log written by an earlier version (JSON records) and then by this one (protobuf) projects
/// exactly as a log of protobuf records only.
#[tokio::test]
async fn old_json_records_and_protobuf_records_project_identically() {
    let events = traffic(30);
    let (old, new) = events.split_at(events.len() / 2);
    let upgraded = Fixture::new();
    upgraded.publish_as(old, rezef_events::codec::encode).await;
    upgraded.publish(new).await;
    let fresh = Fixture::new();
    fresh.publish(&events).await;

    let mut journeys = Vec::new();
    for fixture in [&upgraded, &fresh] {
        let store = fixture.store("store");
        common::project(fixture, &store).await;
        let all: Vec<_> = store.journeys(None).map(|j| j.expect("decodes")).collect();
        assert_eq!(all.len(), 30);
        journeys.push(all);
    }
    assert_eq!(journeys[0], journeys[1]);
}

#[tokio::test]
async fn rebuilding_from_the_log_ends_with_the_same_state() {
    let fixture = Fixture::new();
    fixture.publish(&traffic(30)).await;
    let store = fixture.store("store");
    Projector::new(fixture.log(), store.clone())
        .expect("projector")
        .catch_up(fixture.log.end_offset(), |_| {})
        .await
        .expect("catch up");
    let before: Vec<_> = store.journeys(None).map(|j| j.expect("decodes")).collect();

    let mut reported = Vec::new();
    let stats = rebuild(
        (fixture.log(), Default::default()),
        store.clone(),
        Default::default(),
        None,
        DEFAULT_DEDUP_WINDOW,
        |p| reported.push(p),
    )
    .await
    .expect("rebuild");
    let after: Vec<_> = store.journeys(None).map(|j| j.expect("decodes")).collect();
    assert_eq!(after, before);
    assert_eq!(stats.applied, fixture.log.end_offset());
    assert_eq!(reported.last().copied(), Some(fixture.log.end_offset()));
}

#[tokio::test]
async fn the_live_projector_follows_the_log_and_announces_changes() {
    let fixture = Fixture::new();
    let store = fixture.store("store");
    let projector = Projector::new(fixture.log(), store.clone()).expect("projector");
    let watch = projector.watch();
    let mut changes = watch.subscribe();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(projector.run(async {
        let _ = stopped.await;
    }));

    let mut chat = EventBuilder::customer("acme", "c-1");
    fixture
        .publish(&[chat.started(), chat.intent("billing", 0.5)])
        .await;
    assert!(watch.wait_past(1).await);
    let change = changes.recv().await.expect("a change");
    assert_eq!(change.customer.as_str(), "c-1");
    let tenant = TenantId::new("acme").expect("valid");
    let journey = store
        .journey(&tenant, &change.customer)
        .expect("get")
        .expect("present");
    assert_eq!(journey.counters.events, 2);

    stop.send(()).expect("running");
    running.await.expect("joins").expect("clean stop");
}

#[tokio::test]
async fn catching_up_in_one_large_step_equals_following_live() {
    let fixture = Fixture::new();
    // More than one read's worth, so catching up folds several reads into one step.
    let mut events = Vec::new();
    for round in 0..(rezef_store::STEP_RECORDS / 40 + 10) {
        for c in 0..10 {
            let mut chat =
                EventBuilder::customer("acme", &format!("c-{c}")).ids(&format!("{round}-{c}"));
            events.push(chat.message(Participant::Customer, "hi"));
            events.push(chat.context("round", &round.to_string()));
            events.push(chat.message(Participant::Customer, "again"));
            events.push(chat.message(Participant::Bot, "ok"));
        }
    }
    fixture.publish(&events).await;
    let end = fixture.log.end_offset();
    assert!(end as usize > rezef_store::STEP_RECORDS);

    let caught_up = fixture.store("caught-up");
    let stats = Projector::new(fixture.log(), caught_up.clone())
        .expect("projector")
        .catch_up(end, |_| {})
        .await
        .expect("catch up");
    assert_eq!(stats.applied, end);

    let live = fixture.store("live");
    let projector = Projector::new(fixture.log(), live.clone()).expect("projector");
    let watch = projector.watch();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(projector.run(async {
        let _ = stopped.await;
    }));
    assert!(watch.wait_past(end - 1).await);
    stop.send(()).expect("running");
    running.await.expect("joins").expect("clean stop");

    let all = |s: &Arc<CachedStore>| -> Vec<Journey> {
        s.journeys(None).map(|j| j.expect("decodes")).collect()
    };
    assert_eq!(all(&caught_up), all(&live));
    let tenant = TenantId::new("acme").expect("valid");
    let customer = CustomerId::new("c-3").expect("valid");
    let offsets = |s: &Arc<CachedStore>| {
        s.customer_offsets(&tenant, &customer, 0, end)
            .expect("offsets")
    };
    assert_eq!(offsets(&caught_up), offsets(&live));
    assert_eq!(offsets(&live).len(), events.len() / 10);
}
