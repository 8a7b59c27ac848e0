//! Every reveal is itself recorded. Given an auditor's key, when it is served sensitive
//! values (a resume or a replay with `reveal_sensitive`), then a `SensitiveRevealed` event
//! naming the key and the call is in the log first, and a later replay shows it; a refused
//! reveal records nothing, and nobody can publish such a record.

mod common;

use common::Running;
use futures::StreamExt;
use rezef_adapter::proto::{self, event::Payload};
use rezef_auth::{NewKey, Role, Scope, Token};
use tonic::Code;

const TENANT: &str = "acme";

fn acme(roles: &[Role]) -> NewKey {
    NewKey::new(Scope::Tenant(TENANT.into()), roles.iter().copied())
}

fn key_id(token: &str) -> String {
    token.parse::<Token>().expect("a token").id
}

/// Every event a replay of `customer` (or of partition 0) serves.
async fn replay(
    client: &rezef_adapter::Client,
    customer: Option<proto::CustomerRef>,
    reveal: bool,
) -> Result<Vec<proto::Event>, tonic::Status> {
    let request = proto::ReplayHistoryRequest {
        tenant_id: TENANT.into(),
        customer,
        reveal_sensitive: reveal,
        ..Default::default()
    };
    let mut stream = client.audit().replay_history(request).await?.into_inner();
    let mut events = Vec::new();
    while let Some(replayed) = stream.next().await {
        events.extend(replayed?.event);
    }
    Ok(events)
}

fn reveals(events: &[proto::Event]) -> Vec<(proto::SensitiveRevealed, bool)> {
    (events.iter())
        .filter_map(|event| match &event.payload {
            Some(Payload::SensitiveRevealed(reveal)) => {
                Some((reveal.clone(), event.customer.is_some()))
            }
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_reveal_is_in_the_log_before_the_values_are_served() {
    let keys = vec![
        acme(&[Role::Adapter]),
        acme(&[Role::Channel, Role::Auditor]),
        acme(&[Role::Channel]),
        acme(&[Role::Auditor]),
    ];
    let (server, tokens) = Running::with_keys(keys).await;
    let mut adapter = server.client_with(&tokens[0]).await;
    let desk = server.client_with(&tokens[1]).await;
    let plain_desk = server.client_with(&tokens[2]).await;
    let auditor = server.client_with(&tokens[3]).await;

    let chat = common::chat(TENANT, "v-1");
    let published = adapter
        .publish(vec![
            chat.interaction_started(proto::Direction::Inbound),
            chat.context("card", "4111111111111111", true),
        ])
        .await
        .expect("published");
    let last = published.first_offset + 1;
    let resume = |reveal: bool| proto::ResumeConversationRequest {
        tenant_id: TENANT.into(),
        customer: Some(chat.customer_ref()),
        channel: proto::Channel::Voice as i32,
        reveal_sensitive: reveal,
        min_offset: Some(last),
        ..Default::default()
    };

    // Without the auditor role: refused, and nothing recorded.
    let refused = (plain_desk
        .journeys()
        .resume_conversation(resume(true))
        .await)
        .expect_err("not an auditor");
    assert_eq!(refused.code(), Code::PermissionDenied);
    let before = replay(&auditor, Some(chat.customer_ref()), false).await;
    assert!(reveals(&before.expect("replayed")).is_empty());

    let answer = (desk.journeys().resume_conversation(resume(true)).await)
        .expect("an auditor's reveal")
        .into_inner();
    let card = &answer.conversation.expect("conversation").context[0];
    assert_eq!(card.value, "4111111111111111");

    // The auditor replays with values revealed: the resume's reveal is there, and this
    // replay's own is recorded for the next one.
    let first = replay(&auditor, Some(chat.customer_ref()), true).await;
    let recorded = reveals(&first.expect("replayed"));
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    let (resumed, about_the_customer) = &recorded[0];
    assert_eq!(resumed.key_id, key_id(&tokens[1]));
    assert_eq!(resumed.method, "/rezef.v1.Journeys/ResumeConversation");
    assert!(about_the_customer);
    let second = replay(&auditor, Some(chat.customer_ref()), false).await;
    let recorded = reveals(&second.expect("replayed"));
    assert_eq!(recorded.len(), 2, "{recorded:?}");
    let (replayed, _) = &recorded[1];
    assert_eq!(replayed.key_id, key_id(&tokens[3]));
    assert_eq!(replayed.method, "/rezef.v1.Audit/ReplayHistory");
    assert_eq!(replayed.from_offset, Some(0));
    assert!(replayed.to_offset.is_some_and(|to| to > last));

    // A replay of the whole partition concerns no one customer: so does its record.
    replay(&auditor, None, true).await.expect("replayed");
    let all = replay(&auditor, None, false).await.expect("replayed");
    let (whole, about_a_customer) = reveals(&all).pop().expect("recorded");
    assert_eq!(whole.method, "/rezef.v1.Audit/ReplayHistory");
    assert!(!about_a_customer);
    server.stop().await;
}

#[tokio::test]
async fn nobody_publishes_a_reveal() {
    let (server, tokens) = Running::with_keys(vec![acme(&[Role::Adapter])]).await;
    let mut adapter = server.client_with(&tokens[0]).await;
    let mut forged = common::chat(TENANT, "v-1").interaction_started(proto::Direction::Inbound);
    forged.payload = Some(Payload::SensitiveRevealed(proto::SensitiveRevealed {
        key_id: "someone-else".into(),
        method: "/rezef.v1.Audit/ReplayHistory".into(),
        from_offset: None,
        to_offset: None,
    }));
    let status = common::status_of(adapter.publish(vec![forged]).await);
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(common::fields(&status), ["events[0].sensitive_revealed"]);
    server.stop().await;
}
