//! The projector and forgetting (crates/rezef-server/src/forget.rs logs `CustomerForgotten`,
//! then destroys the keys): a node stopped in between destroys them when its projector reads
//! the event again, and the journey it folds reads erased.

mod common;

use std::sync::Arc;

use bytes::Bytes;
use rezef_events::event::Participant;
use rezef_events::fold::customer_id_for;
use rezef_events::testing::EventBuilder;
use rezef_events::{ChannelIdentity, CustomerRef, IdentityKind, Payload};
use rezef_keys::{FileKeyStore, KeyStore};
use rezef_log::Log;
use rezef_record::sealed::{self, Sealing};
use rezef_store::{JourneyStore, Projector};

use common::Fixture;

#[tokio::test]
async fn a_forgetting_whose_keys_outlived_a_crash_destroys_them_when_folded() {
    let fixture = Fixture::new();
    let keys_dir = tempfile::tempdir().expect("keys dir");
    let keys = Arc::new(FileKeyStore::open(keys_dir.path()).expect("key store"));
    let sealing = Sealing::under(keys.clone());
    let mut chat = EventBuilder::visitor("acme", "v-dana");
    let events = [
        chat.started(),
        chat.message(Participant::Customer, "my card is 4580"),
    ];
    let records = sealing.encode_all(events.to_vec()).expect("sealed");
    let ids = sealed::key_ids(&records[1]).expect("key ids");
    let visitor = ChannelIdentity::stored(IdentityKind::ChatVisitor, "v-dana".into(), None);
    let customer = customer_id_for(&events[0].tenant_id, &visitor);
    // Logged, and the node stopped before destroying the keys.
    let mut forgotten =
        EventBuilder::customer("acme", customer.as_str()).event(Payload::CustomerForgotten {
            key_ids: ids.iter().map(ToString::to_string).collect(),
            requested_by: "key-1".into(),
            reason: "DSR-1".into(),
        });
    forgotten.event_id = rezef_events::EventId::new("forgotten-1").expect("valid");
    forgotten.channel = None;
    forgotten.conversation_id = None;
    let mut records: Vec<Bytes> = records.into_iter().map(Bytes::from).collect();
    records.push(Bytes::from(rezef_record::encode(&forgotten)));
    fixture.log.append(records).await.expect("appended");
    assert!(ids.iter().all(|id| keys.key(id).is_some()));

    let store = fixture.store("store");
    Projector::new(fixture.log(), store.clone())
        .expect("projector")
        .with_sealing(sealing)
        .catch_up(fixture.log.end_offset(), |_| {})
        .await
        .expect("caught up");

    assert!(ids.iter().all(|id| keys.key(id).is_none()), "destroyed");
    let journey = store
        .journey(&forgotten.tenant_id, &customer)
        .expect("read");
    let journey = journey.expect("the journey");
    assert!(journey.identities.iter().all(|l| l.identity.is_erased()));
    let texts: Vec<_> = (journey.conversations.iter())
        .flat_map(|c| c.transcript.iter().map(|t| t.text.clone()))
        .collect();
    assert_eq!(texts, [String::new()]);
    let owner = store
        .resolve(&forgotten.tenant_id, &visitor)
        .expect("resolve");
    assert_eq!(owner, None);
    let reference = Some(CustomerRef::Identity(visitor));
    assert_eq!(
        events[0].customer, reference,
        "the chat was by her visitor id"
    );
}
