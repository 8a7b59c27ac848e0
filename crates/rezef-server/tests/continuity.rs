//! Continuity over real gRPC on loopback: ResumeConversation, continuation tokens,
//! WatchConversation and the Identities service, each method's answers and status codes.

mod common;

use futures::StreamExt;
use rezef_adapter::{Client, EventFactory, identity_ref, proto};
use rezef_server::ServerConfig;
use tonic::Code;

use common::{Running, chat, fields, status_of};

const TENANT: &str = "acme";

/// Publishes `events`; the offset of the last one.
async fn publish(client: &mut Client, events: Vec<proto::Event>) -> u64 {
    let ack = client.publish(events).await.expect("publish");
    ack.first_offset + u64::from(ack.count) - 1
}

fn resume_request(customer: proto::CustomerRef) -> proto::ResumeConversationRequest {
    proto::ResumeConversationRequest {
        tenant_id: TENANT.into(),
        customer: Some(customer),
        channel: proto::Channel::Voice as i32,
        ..Default::default()
    }
}

fn phone(value: &str) -> proto::ChannelIdentity {
    proto::ChannelIdentity {
        kind: proto::IdentityKind::Phone as i32,
        value: value.into(),
        network: String::new(),
    }
}

fn crm(value: &str) -> proto::ChannelIdentity {
    proto::ChannelIdentity {
        kind: proto::IdentityKind::CrmId as i32,
        value: value.into(),
        network: String::new(),
    }
}

/// A chat with an intent and a sensitive value; the offset of its last event.
async fn chat_with_a_card(client: &mut Client, visitor: &str) -> (EventFactory, u64) {
    let chat = chat(TENANT, visitor);
    let last = publish(
        client,
        vec![
            chat.interaction_started(proto::Direction::Inbound),
            chat.intent_detected("billing.dispute", 0.9, "bot"),
            chat.context("card", "4111111111111111", true),
            chat.message(proto::Participant::Customer, "charged twice"),
        ],
    )
    .await;
    (chat, last)
}

#[tokio::test]
async fn resume_answers_known_and_unknown_callers_and_names_bad_fields() {
    let server = Running::start(Default::default()).await;
    let mut client = server.client().await;
    let (chat, last) = chat_with_a_card(&mut client, "v-1").await;

    let mut request = resume_request(chat.customer_ref());
    request.min_offset = Some(last);
    let answer = client
        .journeys()
        .resume_conversation(request)
        .await
        .expect("resume")
        .into_inner();
    assert!(answer.known);
    assert_eq!(
        answer.continuation,
        proto::Continuation::WithinWindow as i32
    );
    assert!(answer.skip_self_service);
    let conversation = answer.conversation.expect("a conversation");
    assert_eq!(conversation.context[0].value, "****");
    assert_eq!(conversation.transcript.len(), 1);

    let stranger = client
        .resume(
            TENANT,
            identity_ref(proto::IdentityKind::Phone, "+972509999999"),
            proto::Channel::Voice,
            None,
        )
        .await
        .expect("resume");
    assert!(
        !stranger.known,
        "an unknown caller is an answer, not an error"
    );
    assert!(stranger.conversation.is_none());

    let mut bad = resume_request(identity_ref(proto::IdentityKind::Phone, "050-123"));
    bad.channel = 0;
    bad.transcript_limit = Some(99);
    bad.continuation_token = "no spaces!".into();
    let status = client
        .journeys()
        .resume_conversation(bad)
        .await
        .expect_err("invalid");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        fields(&status),
        [
            "customer.identity.value",
            "channel",
            "continuation_token",
            "transcript_limit"
        ]
    );
    server.stop().await;
}

#[tokio::test]
async fn sensitive_values_are_revealed_only_to_allowed_keys() {
    let server = Running::start_with(ServerConfig {
        reveal_keys: vec!["desk-key".into()],
        ..ServerConfig::default()
    })
    .await;
    let mut client = server.client().await;
    let (chat, last) = chat_with_a_card(&mut client, "v-1").await;
    let ask = |key: Option<&str>| {
        let mut request = tonic::Request::new(proto::ResumeConversationRequest {
            reveal_sensitive: true,
            min_offset: Some(last),
            ..resume_request(chat.customer_ref())
        });
        if let Some(key) = key {
            let value = format!("Bearer {key}").parse().expect("header value");
            request.metadata_mut().insert("authorization", value);
        }
        let mut journeys = client.journeys();
        async move { journeys.resume_conversation(request).await }
    };
    for key in [None, Some("guess")] {
        let status = ask(key).await.expect_err("refused");
        assert_eq!(status.code(), Code::PermissionDenied, "{key:?}");
    }
    let answer = ask(Some("desk-key")).await.expect("allowed").into_inner();
    let card = &answer.conversation.expect("conversation").context[0];
    assert_eq!(
        (card.value.as_str(), card.masked),
        ("4111111111111111", false)
    );
    server.stop().await;
}

#[tokio::test]
async fn a_token_continues_the_conversation_once_and_bad_requests_are_refused() {
    let server = Running::start(Default::default()).await;
    let mut client = server.client().await;
    let (chat, _) = chat_with_a_card(&mut client, "v-1").await;
    let service = client.journeys();
    let issue =
        |customer: proto::CustomerRef, conversation: &str, ttl: Option<prost_types::Duration>| {
            let request = proto::IssueContinuationTokenRequest {
                tenant_id: TENANT.into(),
                customer: Some(customer),
                conversation_id: conversation.into(),
                ttl,
                channel: proto::Channel::Webchat as i32,
                ..Default::default()
            };
            let mut journeys = service.clone();
            async move { journeys.issue_continuation_token(request).await }
        };
    let issued = issue(chat.customer_ref(), "", None)
        .await
        .expect("issued")
        .into_inner();
    assert_eq!(issued.token.len(), 8, "a code of the default 8 digits");
    assert!(issued.token.bytes().all(|b| b.is_ascii_digit()));

    let unknown = identity_ref(proto::IdentityKind::ChatVisitor, "nobody");
    let codes = [
        issue(unknown, "", None).await.expect_err("unknown").code(),
        issue(chat.customer_ref(), "cnv-nope", None)
            .await
            .expect_err("no such")
            .code(),
        issue(
            chat.customer_ref(),
            "",
            Some(prost_types::Duration {
                seconds: 0,
                nanos: 0,
            }),
        )
        .await
        .expect_err("zero ttl")
        .code(),
        // Protobuf normalises this to 59.999999999 s; nobody meant it.
        issue(
            chat.customer_ref(),
            "",
            Some(prost_types::Duration {
                seconds: 60,
                nanos: -1,
            }),
        )
        .await
        .expect_err("negative nanos")
        .code(),
    ];
    assert_eq!(
        codes,
        [
            Code::NotFound,
            Code::NotFound,
            Code::InvalidArgument,
            Code::InvalidArgument
        ]
    );

    // A caller from a number nobody knows says the code.
    let call = EventFactory::new(TENANT, "voice")
        .identity(proto::IdentityKind::Phone, "+972501112222")
        .on(proto::Channel::Voice, "call-1");
    let mut start = call.interaction_started(proto::Direction::Inbound);
    if let Some(proto::event::Payload::InteractionStarted(started)) = &mut start.payload {
        started.continuation_token = issued.token.clone();
    }
    let after = publish(&mut client, vec![start]).await;
    let journey = client
        .journey(TENANT, call.customer_ref(), Some(after))
        .await
        .expect("the caller is the chat's customer")
        .journey
        .expect("journey");
    let conversation = &journey.conversations[0];
    assert_eq!(conversation.conversation_id, issued.conversation_id);
    let joined: Vec<_> = conversation.interactions.iter().map(|i| i.joined).collect();
    assert_eq!(
        joined,
        [
            proto::JoinReason::Opened as i32,
            proto::JoinReason::Token as i32
        ]
    );

    // The token is used up.
    let mut again = resume_request(call.customer_ref());
    again.continuation_token = issued.token;
    let answer = client
        .journeys()
        .resume_conversation(again)
        .await
        .expect("resume")
        .into_inner();
    assert_ne!(answer.continuation, proto::Continuation::Token as i32);

    // A resolved need leaves nothing open to continue.
    let wrap = chat.event(proto::event::Payload::WrapUpRecorded(
        proto::WrapUpRecorded {
            disposition: "refunded".into(),
            need_resolved: true,
            ..Default::default()
        },
    ));
    publish(&mut client, vec![wrap]).await;
    let status = issue(chat.customer_ref(), "", None)
        .await
        .expect_err("nothing open");
    assert_eq!(
        status.code(),
        Code::FailedPrecondition,
        "{}",
        status.message()
    );
    server.stop().await;
}

#[tokio::test]
async fn a_conversation_is_watched_from_an_offset_without_gaps_or_repeats() {
    let server = Running::start(Default::default()).await;
    let mut client = server.client().await;
    let (chat, last) = chat_with_a_card(&mut client, "v-1").await;
    let conversation = client
        .journey(TENANT, chat.customer_ref(), Some(last))
        .await
        .expect("journey")
        .journey
        .expect("journey")
        .conversations[0]
        .conversation_id
        .clone();
    let service = client.journeys();
    let watch = |from_offset: Option<u64>| {
        let request = proto::WatchConversationRequest {
            tenant_id: TENANT.into(),
            conversation_id: conversation.clone(),
            from_offset,
        };
        let mut journeys = service.clone();
        async move { journeys.watch_conversation(request).await }
    };
    let mut stream = watch(None).await.expect("watch").into_inner();
    let first = stream.next().await.expect("an update").expect("ok");
    assert_eq!(
        first.conversation.expect("conversation").interactions.len(),
        1
    );

    let queued = chat.event(proto::event::Payload::ContactQueued(proto::ContactQueued {
        queue_id: "billing".into(),
        ..Default::default()
    }));
    publish(&mut client, vec![queued]).await;
    let next = stream.next().await.expect("an update").expect("ok");
    let stage = next.conversation.expect("conversation").interactions[0].stage;
    assert_eq!(stage, proto::Stage::Queued as i32);
    drop(stream);

    // Reconnecting from the last update's offset: nothing is repeated, the next change comes.
    let mut resumed = watch(Some(next.projected_offset))
        .await
        .expect("watch")
        .into_inner();
    let assigned = chat.event(proto::event::Payload::ContactAssigned(
        proto::ContactAssigned {
            agent_id: "agent-7".into(),
            queue_id: String::new(),
        },
    ));
    publish(&mut client, vec![assigned]).await;
    let update = resumed.next().await.expect("an update").expect("ok");
    let conversation_now = update.conversation.expect("conversation");
    assert_eq!(
        conversation_now.interactions[0].stage,
        proto::Stage::Connected as i32
    );
    assert_eq!(conversation_now.last_agent_id, "agent-7");

    let mut unknown = client.journeys();
    let status = unknown
        .watch_conversation(proto::WatchConversationRequest {
            tenant_id: TENANT.into(),
            conversation_id: "cnv-nope".into(),
            from_offset: None,
        })
        .await
        .expect_err("unknown");
    assert_eq!(status.code(), Code::NotFound);
    let status = unknown
        .watch_conversation(proto::WatchConversationRequest::default())
        .await
        .expect_err("empty");
    assert_eq!(fields(&status), ["tenant_id", "conversation_id"]);
    server.stop().await;
}

#[tokio::test]
async fn identities_resolve_link_merge_and_unmerge_with_clear_refusals() {
    let server = Running::start(Default::default()).await;
    let mut client = server.client().await;
    let (chat, _) = chat_with_a_card(&mut client, "v-1").await;
    let call = EventFactory::new(TENANT, "voice")
        .identity(proto::IdentityKind::Phone, "+972501234567")
        .on(proto::Channel::Voice, "call-1");
    let last = publish(
        &mut client,
        vec![call.interaction_started(proto::Direction::Inbound)],
    )
    .await;
    let visitor = client
        .journey(TENANT, chat.customer_ref(), Some(last))
        .await
        .expect("journey")
        .journey
        .expect("journey")
        .customer_id;
    let caller = client
        .resolve(TENANT, phone("+972501234567"), None)
        .await
        .expect("resolve")
        .customer_id;
    assert_ne!(visitor, caller);
    let mut identities = client.identities();

    // Unknown and malformed identities.
    let status = client.resolve(TENANT, phone("+972509999999"), None).await;
    assert_eq!(status_of(status).code(), Code::NotFound);
    let status = status_of(client.resolve(TENANT, phone("050-123"), None).await);
    assert_eq!(fields(&status), ["identity.value"]);

    // A CRM id linked to the visitor; the caller's weak claim to it is refused with a reason.
    let link = |customer: &str, identity: proto::ChannelIdentity, method, assurance| {
        proto::LinkIdentityRequest {
            tenant_id: TENANT.into(),
            customer_id: customer.into(),
            identity: Some(identity),
            method: method as i32,
            assurance: assurance as i32,
            expires_at: None,
            channel: proto::Channel::Voice as i32,
            source: "crm-sync".into(),
        }
    };
    use proto::{AssuranceLevel as A, VerificationMethod as M};
    let linked = identities
        .link_identity(link(&visitor, crm("C-1"), M::Knowledge, A::Substantial))
        .await
        .expect("linked")
        .into_inner();
    assert_eq!(linked.outcome, proto::LinkOutcome::Linked as i32);
    let refused = identities
        .link_identity(link(&caller, crm("C-1"), M::CallerId, A::High))
        .await
        .expect_err("caller id never merges");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains("caller_id"),
        "{}",
        refused.message()
    );
    let empty = identities
        .link_identity(proto::LinkIdentityRequest::default())
        .await
        .expect_err("empty");
    assert_eq!(
        fields(&empty),
        [
            "tenant_id",
            "customer_id",
            "identity",
            "method",
            "assurance",
            "channel",
            "source"
        ]
    );

    // Strong evidence merges them; the caller's id then resolves to the visitor (the elder).
    let merged = identities
        .link_identity(link(&caller, crm("C-1"), M::Knowledge, A::High))
        .await
        .expect("merged")
        .into_inner();
    assert_eq!(merged.outcome, proto::LinkOutcome::Merged as i32);
    assert_eq!(merged.merged_with_customer_id, visitor);
    let by_phone = client
        .resolve(TENANT, phone("+972501234567"), Some(merged.offset))
        .await
        .expect("resolve");
    assert_eq!(
        (
            by_phone.customer_id.as_str(),
            by_phone.merged_customer_id.as_str()
        ),
        (visitor.as_str(), caller.as_str())
    );
    let journey = client
        .journey(
            TENANT,
            proto::CustomerRef {
                r#ref: Some(proto::customer_ref::Ref::CustomerId(caller.clone())),
            },
            None,
        )
        .await
        .expect("the absorbed id still resolves")
        .journey
        .expect("journey");
    assert_eq!(journey.customer_id, visitor);
    assert_eq!(journey.merges.len(), 1);
    assert_eq!(journey.conversations.len(), 2);

    // Refusals of the merge calls.
    let merge = |survivor: &str, absorbed: &str| proto::MergeCustomersRequest {
        tenant_id: TENANT.into(),
        survivor_customer_id: survivor.into(),
        absorbed_customer_id: absorbed.into(),
        reason: String::new(),
        requested_by: "agent-1".into(),
    };
    let unmerge = |customer: &str, absorbed: &str| proto::UnmergeCustomersRequest {
        tenant_id: TENANT.into(),
        customer_id: customer.into(),
        absorbed_customer_id: absorbed.into(),
        reason: "not the same person".into(),
        requested_by: "agent-1".into(),
    };
    let codes = [
        identities
            .merge_customers(merge(&visitor, &caller))
            .await
            .expect_err("already one")
            .code(),
        identities
            .merge_customers(merge(&visitor, "cus-nobody"))
            .await
            .expect_err("unknown")
            .code(),
        identities
            .unmerge_customers(unmerge(&visitor, &visitor))
            .await
            .expect_err("not a member")
            .code(),
    ];
    assert_eq!(
        codes,
        [
            Code::FailedPrecondition,
            Code::NotFound,
            Code::FailedPrecondition
        ]
    );

    // Unmerged, each is a customer of its own again.
    let undone = identities
        .unmerge_customers(unmerge(&visitor, &caller))
        .await
        .expect("unmerged")
        .into_inner();
    let by_phone = client
        .resolve(TENANT, phone("+972501234567"), Some(undone.offset))
        .await
        .expect("resolve");
    assert_eq!(by_phone.customer_id, caller);
    server.stop().await;
}
