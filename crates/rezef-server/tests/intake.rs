//! What an intake adapter and an auditor meet over real gRPC on loopback: events dated in
//! the future, continuation tokens that do not verify, errors that always reach the client,
//! configuration mistakes all reported, sensitive values masked in replays and transcripts.

mod common;

use rezef_adapter::{identity_ref, proto};
use tonic::Code;

use common::{Running, chat, fields};

const TENANT: &str = "acme";

/// A routing configuration with a 21,400-character line missing its closing quote: the
/// parser quotes the line, and the client still gets INVALID_ARGUMENT naming the file.
#[tokio::test]
async fn an_error_quoting_a_huge_line_still_reaches_the_client() {
    let server = Running::start(Default::default()).await;
    let client = server.client().await;
    let config = format!(
        "version = 1\ndefault_queue = \"general\"\nname = \"{}\n",
        "x".repeat(21_400)
    );
    let status = client
        .routing()
        .set_routing_config(proto::SetRoutingConfigRequest {
            tenant_id: TENANT.into(),
            config,
        })
        .await
        .expect_err("invalid");
    assert_eq!(status.code(), Code::InvalidArgument, "{}", status.message());
    assert_eq!(fields(&status), ["config.(file)"]);
    assert!(status.message().len() <= 1024, "{}", status.message().len());
    server.stop().await;
}

/// A bad duration does not hide a bad rule: SetRoutingConfig names both, with their paths.
#[tokio::test]
async fn every_configuration_mistake_is_reported_with_its_path() {
    let server = Running::start(Default::default()).await;
    let client = server.client().await;
    let config = r#"
        version = 1
        default_queue = "general"

        [offers]
        timeout = "2 parsecs"

        [[queues]]
        id = "general"
        steps = [{ after = "0s" }]

        [[rules]]
        name = "billing"
        when = "intent == 'billing'"
        queue = "general"

        [[rules]]
        name = "vip"
        when = "tire == 'vip'"
        queue = "general"
    "#;
    let status = client
        .routing()
        .set_routing_config(proto::SetRoutingConfigRequest {
            tenant_id: TENANT.into(),
            config: config.into(),
        })
        .await
        .expect_err("invalid");
    assert_eq!(status.code(), Code::InvalidArgument, "{}", status.message());
    assert_eq!(
        fields(&status),
        ["config.offers.timeout", "config.rules[1].when"]
    );
    server.stop().await;
}

/// A chat verified by one-time code gives a token; a caller from a number nobody knows says
/// it. The call continues the chat, but the caller verifies again (docs/continuity.md).
#[tokio::test]
async fn a_continuation_token_grants_continuity_not_verification() {
    let server = Running::start(Default::default()).await;
    let mut client = server.client().await;
    let chat = chat(TENANT, "v-token");
    let ack = client
        .publish(vec![
            chat.interaction_started(proto::Direction::Inbound),
            chat.identified(
                proto::VerificationMethod::OneTimeCode,
                proto::AssuranceLevel::Substantial,
                Vec::new(),
            ),
        ])
        .await
        .expect("publish");
    let issued = client
        .journeys()
        .issue_continuation_token(proto::IssueContinuationTokenRequest {
            tenant_id: TENANT.into(),
            customer: Some(chat.customer_ref()),
            channel: proto::Channel::Webchat as i32,
            ..Default::default()
        })
        .await
        .expect("issued")
        .into_inner();
    assert!(issued.offset > ack.first_offset);
    let caller = identity_ref(proto::IdentityKind::Phone, "+15551230001");
    let answer = client
        .journeys()
        .resume_conversation(proto::ResumeConversationRequest {
            tenant_id: TENANT.into(),
            customer: Some(caller),
            channel: proto::Channel::Voice as i32,
            continuation_token: issued.token,
            min_offset: Some(issued.offset),
            ..Default::default()
        })
        .await
        .expect("resume")
        .into_inner();
    assert_eq!(answer.continuation(), proto::Continuation::Token);
    let verified = answer
        .verified
        .expect("the chat's verification is reported");
    assert!(!verified.skip_verification, "the token proves no identity");
    server.stop().await;
}

/// An event dated 2100 is refused, naming the field, and nothing of its batch is written;
/// one a minute ahead (a clock running fast) is taken.
#[tokio::test]
async fn an_event_dated_in_the_future_is_refused_past_the_allowed_skew() {
    let server = Running::start(Default::default()).await;
    let mut client = server.client().await;
    let chat = chat(TENANT, "v-future");
    let mut in_2100 = chat.identified(
        proto::VerificationMethod::OneTimeCode,
        proto::AssuranceLevel::Substantial,
        Vec::new(),
    );
    in_2100.occurred_at = Some(prost_types::Timestamp {
        seconds: 4_102_444_800,
        nanos: 0,
    });
    let status = common::status_of(
        client
            .publish(vec![
                chat.interaction_started(proto::Direction::Inbound),
                in_2100,
            ])
            .await,
    );
    assert_eq!(status.code(), Code::InvalidArgument, "{}", status.message());
    assert_eq!(fields(&status), ["events[1].occurred_at"]);
    let unknown = client.journey(TENANT, chat.customer_ref(), None).await;
    assert_eq!(
        common::status_of(unknown).code(),
        Code::NotFound,
        "nothing written"
    );

    let mut a_minute_ahead = chat.interaction_started(proto::Direction::Inbound);
    let now = std::time::SystemTime::now() + std::time::Duration::from_secs(60);
    a_minute_ahead.occurred_at = Some(now.into());
    client
        .publish(vec![a_minute_ahead])
        .await
        .expect("within the skew");
    server.stop().await;
}

/// The texts of the replayed messages and context values, in order.
fn replayed_texts(events: &[proto::ReplayedEvent]) -> Vec<String> {
    use proto::event::Payload;
    events
        .iter()
        .filter_map(|e| match e.event.as_ref()?.payload.as_ref()? {
            Payload::MessageSent(m) => Some(m.text.clone()),
            Payload::ContextSet(c) => Some(c.value.clone()),
            _ => None,
        })
        .collect()
}

/// A chat where the customer types the code they were sent and gives a card number, and the
/// adapter marks a password sensitive. Transcripts never show them; an audit replay masks
/// them as every other read does, unless the caller may reveal.
#[tokio::test]
async fn replays_and_transcripts_mask_sensitive_values_codes_and_cards() {
    use futures::StreamExt;
    let server = Running::start_with(rezef_server::ServerConfig {
        reveal_keys: vec!["auditor-key".into()],
        ..Default::default()
    })
    .await;
    let mut client = server.client().await;
    let chat = chat(TENANT, "v-secrets");
    let mut password = chat.message(proto::Participant::Customer, "hunter2");
    if let Some(proto::event::Payload::MessageSent(m)) = &mut password.payload {
        m.sensitive = true;
    }
    let ack = client
        .publish(vec![
            chat.interaction_started(proto::Direction::Inbound),
            chat.message(proto::Participant::Bot, "I've sent a code to your phone"),
            chat.message(proto::Participant::Customer, "482913"),
            chat.message(
                proto::Participant::Customer,
                "my card is 4111 1111 1111 1111",
            ),
            password,
            chat.context("card", "4111111111111111", true),
        ])
        .await
        .expect("publish");
    let last = ack.first_offset + u64::from(ack.count) - 1;

    let journey = client
        .journey(TENANT, chat.customer_ref(), Some(last))
        .await
        .expect("journey")
        .journey
        .expect("journey");
    let transcript: Vec<_> = (journey.conversations[0].transcript.iter())
        .map(|m| m.text.as_str())
        .collect();
    assert_eq!(
        transcript,
        [
            "I've sent a code to your phone",
            "****",
            "my card is ****",
            "****"
        ]
    );

    let replay = |key: Option<&str>, reveal: bool| {
        let mut request = tonic::Request::new(proto::ReplayHistoryRequest {
            tenant_id: TENANT.into(),
            reveal_sensitive: reveal,
            ..Default::default()
        });
        if let Some(key) = key {
            let value = format!("Bearer {key}").parse().expect("header value");
            request.metadata_mut().insert("authorization", value);
        }
        let mut audit = client.audit();
        async move {
            let stream = audit.replay_history(request).await?.into_inner();
            let events: Vec<_> = stream.collect().await;
            events.into_iter().collect::<Result<Vec<_>, _>>()
        }
    };
    let masked = replay(None, false).await.expect("replayed");
    assert_eq!(
        replayed_texts(&masked),
        [
            "I've sent a code to your phone",
            "****",
            "my card is ****",
            "****",
            "****"
        ]
    );
    for key in [None, Some("guess")] {
        let status = replay(key, true).await.expect_err("refused");
        assert_eq!(status.code(), Code::PermissionDenied, "{key:?}");
    }
    let revealed = replay(Some("auditor-key"), true).await.expect("revealed");
    assert_eq!(
        replayed_texts(&revealed),
        [
            "I've sent a code to your phone",
            "482913",
            "my card is 4111 1111 1111 1111",
            "hunter2",
            "4111111111111111"
        ]
    );
    server.stop().await;
}
