//! Records dated after the log recorded them (written before the edge refused such dates,
//! or by an adapter whose clock runs ahead) are projected as of their record's time.

mod common;

use std::time::Duration;

use rezef_events::event::{AssuranceLevel, Payload, VerificationMethod};
use rezef_events::fold::customer_id_for;
use rezef_events::journey::ConversationStatus;
use rezef_events::testing::EventBuilder;
use rezef_events::{CustomerRef, Timestamp};
use rezef_store::JourneyStore;

use common::{Fixture, project};

#[tokio::test]
async fn a_record_dated_2100_neither_closes_the_live_chat_nor_holds_its_verification() {
    let fixture = Fixture::new();
    let mut chat = EventBuilder::visitor("acme", "v-1");
    chat.wait(Timestamp::now().since(chat.clock()));
    let started = chat.started();
    chat.wait(Duration::from_secs(76 * 365 * 24 * 3600));
    let in_2100 = chat.event(Payload::CustomerIdentified {
        method: VerificationMethod::OneTimeCode,
        assurance: AssuranceLevel::Substantial,
        identities: Vec::new(),
        expires_at: None,
    });
    fixture.publish(&[started, in_2100]).await;
    let store = fixture.store("store");
    project(&fixture, &store).await;

    let Some(CustomerRef::Identity(visitor)) = &chat.started().customer else {
        unreachable!("a visitor")
    };
    let customer = customer_id_for(
        &rezef_events::TenantId::new("acme").expect("valid"),
        visitor,
    );
    let journey = store
        .journey(
            &rezef_events::TenantId::new("acme").expect("valid"),
            &customer,
        )
        .expect("read")
        .expect("projected");
    let recorded_by = Timestamp::now();
    assert_eq!(journey.conversations[0].status, ConversationStatus::Open);
    assert!(
        journey.last_seen_at <= recorded_by,
        "{:?}",
        journey.last_seen_at
    );
    let verification = journey.identities[0]
        .verification
        .as_ref()
        .expect("verified");
    assert!(verification.verified_at <= recorded_by);
}
