//! `Identities/ForgetCustomer` over real gRPC on loopback (docs/audit.md, "Forgetting a
//! customer"): the person's keys destroyed, so replays and a rebuild of the projection show
//! their events erased while another customer's stay whole; a merged customer forgotten by
//! the id of the one absorbed; what the call refuses.

mod common;

use std::sync::Arc;

use futures::StreamExt;
use rezef_adapter::{Client, EventFactory, proto};
use rezef_server::{ServerConfig, SystemClock};
use tonic::Code;

use common::{Running, fields};

const TENANT: &str = "acme";

fn chat(visitor: &str) -> EventFactory {
    EventFactory::new(TENANT, "web-chat")
        .identity(proto::IdentityKind::ChatVisitor, visitor)
        .on(proto::Channel::Webchat, format!("chat-{visitor}"))
}

/// Publishes a customer's chat with a message and a context value; their customer id.
async fn chatted(client: &mut Client, visitor: &str, text: &str) -> String {
    let chat = chat(visitor);
    let ack = (client.publish(vec![
        chat.interaction_started(proto::Direction::Inbound),
        chat.message(proto::Participant::Customer, text),
        chat.context("order", &format!("order of {visitor}"), false),
    ]))
    .await
    .expect("published");
    let last = ack.first_offset + u64::from(ack.count) - 1;
    let journey = (client
        .journey(TENANT, chat.customer_ref(), Some(last))
        .await)
        .expect("projected")
        .journey
        .expect("a journey");
    journey.customer_id
}

async fn forget(
    client: &Client,
    customer_id: &str,
    reason: &str,
) -> Result<proto::ForgetCustomerResponse, tonic::Status> {
    let request = proto::ForgetCustomerRequest {
        tenant_id: TENANT.into(),
        customer_id: customer_id.into(),
        reason: reason.into(),
    };
    Ok(client
        .identities()
        .forget_customer(request)
        .await?
        .into_inner())
}

/// The customer's events, by replay.
async fn replay(client: &Client, customer_id: &str) -> Vec<proto::Event> {
    let request = proto::ReplayHistoryRequest {
        tenant_id: TENANT.into(),
        customer: Some(proto::CustomerRef {
            r#ref: Some(proto::customer_ref::Ref::CustomerId(customer_id.into())),
        }),
        ..Default::default()
    };
    let stream = client
        .audit()
        .replay_history(request)
        .await
        .expect("replays");
    let replayed: Vec<_> = stream.into_inner().collect().await;
    (replayed.into_iter())
        .filter_map(|r| r.expect("replayed").event)
        .collect()
}

fn by_id(id: &str) -> proto::CustomerRef {
    proto::CustomerRef {
        r#ref: Some(proto::customer_ref::Ref::CustomerId(id.into())),
    }
}

fn message_text(event: &proto::Event) -> Option<&str> {
    match &event.payload {
        Some(proto::event::Payload::MessageSent(m)) => Some(&m.text),
        _ => None,
    }
}

fn shown_identity(event: &proto::Event) -> Option<&str> {
    match event.customer.as_ref()?.r#ref.as_ref()? {
        proto::customer_ref::Ref::Identity(identity) => Some(&identity.value),
        proto::customer_ref::Ref::CustomerId(_) => None,
    }
}

#[tokio::test]
async fn a_forgotten_customer_reads_erased_in_replays_and_after_a_rebuild_and_others_do_not() {
    let server = Running::start(Default::default()).await;
    let mut client = server.client().await;
    let dana = chatted(&mut client, "v-dana", "my card is 4580 1234").await;
    let omer = chatted(&mut client, "v-omer", "keep me").await;
    assert!(replay(&client, &dana).await.iter().all(|e| !e.erased));

    let forgotten = forget(&client, &dana, "DSR-2026-17")
        .await
        .expect("forgotten");
    assert_eq!(forgotten.customer_id, dana);
    assert_eq!(forgotten.customer_ids, std::slice::from_ref(&dana));
    assert_eq!(forgotten.keys_destroyed, 1, "her chat identity's key");

    let events = replay(&client, &dana).await;
    let (record, told): (Vec<_>, Vec<_>) = events
        .iter()
        .partition(|e| matches!(e.payload, Some(proto::event::Payload::CustomerForgotten(_))));
    assert_eq!(told.len(), 3);
    for event in &told {
        assert!(event.erased, "{event:?}");
        let identity = shown_identity(event).expect("shown by identity");
        assert!(identity.starts_with("erased:") && !identity.contains("dana"));
    }
    assert_eq!(told.iter().find_map(|e| message_text(e)), Some(""));
    let Some(proto::event::Payload::CustomerForgotten(record)) = &record[0].payload else {
        panic!("the record of the forgetting");
    };
    assert_eq!(
        (record.key_ids.len(), record.reason.as_str()),
        (1, "DSR-2026-17")
    );
    assert_eq!(record.requested_by, "anonymous");
    let kept = replay(&client, &omer).await;
    assert!(kept.iter().all(|e| !e.erased));
    assert_eq!(kept.iter().find_map(|e| message_text(e)), Some("keep me"));

    live_projection_is_erased(&mut client, &dana, forgotten.offset).await;
    let as_of = Some(proto::AsOf {
        point: Some(proto::as_of::Point::Offset(forgotten.offset)),
    });
    let then = (client
        .journey_as_of(TENANT, by_id(&dana), None, as_of)
        .await)
        .expect("the journey as of before the forgetting")
        .journey
        .expect("a journey");
    let values: Vec<_> = (then.identities.iter())
        .filter_map(|l| l.identity.as_ref().map(|i| i.value.as_str()))
        .collect();
    assert!(
        values.len() == 1 && values[0].starts_with("erased:"),
        "{values:?}"
    );
    again_is_harmless(&client, &dana).await;

    // A rebuild folds the erased events: the same customer, its identity erased.
    let dir = server.stop_keeping().await;
    std::fs::remove_dir_all(dir.path().join("store")).expect("the projection removed");
    let server = Running::start_in(ServerConfig::default(), Arc::new(SystemClock), dir).await;
    let mut client = server.client().await;
    let end = client.publish(vec![
        chat("v-x").interaction_started(proto::Direction::Inbound),
    ]);
    let end = end.await.expect("published").first_offset;
    let rebuilt = (client.journey(TENANT, by_id(&dana), Some(end)).await)
        .expect("the journey")
        .journey
        .expect("a journey");
    let identities: Vec<_> = (rebuilt.identities.iter())
        .filter_map(|l| l.identity.as_ref().map(|i| i.value.clone()))
        .collect();
    assert_eq!(identities.len(), 1);
    assert!(identities[0].starts_with("erased:"), "{identities:?}");
    let status = (client
        .journey(TENANT, chat("v-dana").customer_ref(), None)
        .await)
        .expect_err("her chat identity names no one now");
    assert_eq!(common::status_of::<()>(Err(status)).code(), Code::NotFound);
    let omer_journey = (client
        .journey(TENANT, chat("v-omer").customer_ref(), None)
        .await)
        .expect("his journey")
        .journey
        .expect("a journey");
    assert_eq!(omer_journey.customer_id, omer);
    server.stop().await;
}

/// Once the projection has folded the forgetting: the journey's identity and texts erased,
/// the identity resolving to no one, the context value finding no one.
async fn live_projection_is_erased(client: &mut Client, customer: &str, forgotten_at: u64) {
    let journey = (client
        .journey(TENANT, by_id(customer), Some(forgotten_at))
        .await)
        .expect("the journey")
        .journey
        .expect("a journey");
    let identity = journey.identities[0].identity.as_ref().expect("identity");
    assert!(identity.value.starts_with("erased:"), "{identity:?}");
    let conversation = &journey.conversations[0];
    assert!(
        conversation
            .transcript
            .iter()
            .all(|entry| entry.text.is_empty())
    );
    assert!(
        conversation
            .context
            .iter()
            .all(|entry| entry.value.is_empty())
    );
    let status = (client
        .journey(TENANT, chat("v-dana").customer_ref(), None)
        .await)
        .expect_err("her chat identity names no one now");
    assert_eq!(common::status_of::<()>(Err(status)).code(), Code::NotFound);
    let query = proto::find_customers_request::Query::Attribute(proto::AttributeMatch {
        scope: proto::AttributeScope::Context as i32,
        name: "order".into(),
        value: "order of v-dana".into(),
    });
    let request = proto::FindCustomersRequest {
        tenant_id: TENANT.into(),
        query: Some(query),
        ..Default::default()
    };
    let found = client
        .identities()
        .find_customers(request)
        .await
        .expect("finds");
    assert!(found.into_inner().customers.is_empty());
}

/// Forgetting again destroys nothing more and is recorded again.
async fn again_is_harmless(client: &Client, customer: &str) {
    let again = forget(client, customer, "DSR-2026-17 again")
        .await
        .expect("again");
    assert_eq!(again.keys_destroyed, 0);
}

#[tokio::test]
async fn forgetting_a_customer_merged_into_another_forgets_the_person() {
    let server = Running::start(Default::default()).await;
    let mut client = server.client().await;
    let survivor = chatted(&mut client, "v-1", "first chat").await;
    let absorbed = chatted(&mut client, "v-2", "second chat").await;
    let merge = proto::MergeCustomersRequest {
        tenant_id: TENANT.into(),
        survivor_customer_id: survivor.clone(),
        absorbed_customer_id: absorbed.clone(),
        reason: "same person".into(),
        requested_by: "agent-1".into(),
    };
    let merged = client
        .identities()
        .merge_customers(merge)
        .await
        .expect("merged");
    let offset = merged.into_inner().offset;
    client
        .journey(TENANT, chat("v-1").customer_ref(), Some(offset))
        .await
        .expect("projected");

    let forgotten = forget(&client, &absorbed, "DSR-9")
        .await
        .expect("forgotten");
    assert_eq!(forgotten.customer_id, survivor);
    assert_eq!(forgotten.customer_ids, [survivor.clone(), absorbed.clone()]);
    assert_eq!(forgotten.keys_destroyed, 2, "both chat identities' keys");
    for customer in [&survivor, &absorbed] {
        let texts: Vec<_> = replay(&client, customer)
            .await
            .iter()
            .filter_map(|e| message_text(e).map(str::to_owned))
            .collect();
        assert!(
            !texts.is_empty() && texts.iter().all(String::is_empty),
            "{texts:?}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn forget_customer_refuses_what_it_cannot_do() {
    let server = Running::start(Default::default()).await;
    let mut client = server.client().await;
    let dana = chatted(&mut client, "v-dana", "hello").await;
    let status = forget(&client, &dana, "").await.expect_err("no reason");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(fields(&status), ["reason"]);
    let status = forget(&client, "", "DSR-1").await.expect_err("no customer");
    assert_eq!(fields(&status), ["customer_id"]);
    let status = forget(&client, &dana, "line\nbreak")
        .await
        .expect_err("control");
    assert_eq!(fields(&status), ["reason"]);
    let status = forget(&client, "cus-nobody", "DSR-1")
        .await
        .expect_err("unknown");
    assert_eq!(status.code(), Code::NotFound);
    let published = chat("v-dana").event(proto::event::Payload::CustomerForgotten(
        proto::CustomerForgotten {
            key_ids: vec![],
            requested_by: "me".into(),
            reason: "forged".into(),
        },
    ));
    let status = client.publish(vec![published]).await.expect_err("refused");
    let status = common::status_of::<()>(Err(status));
    assert_eq!(fields(&status), ["events[0].customer_forgotten"]);
    assert!(replay(&client, &dana).await.iter().all(|e| !e.erased));
    server.stop().await;
}
