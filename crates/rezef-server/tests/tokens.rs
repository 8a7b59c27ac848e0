//! Continuation tokens that cannot be guessed in practice (issue 17), over real gRPC: codes
//! of the tenant's length with a short life, link tokens, tokens bound to their channels,
//! and wrong tokens counted per identity, caller and tenant until tries are refused with
//! RESOURCE_EXHAUSTED and a RetryInfo.

mod common;

use std::time::Duration;

use rezef_adapter::{Client, EventFactory, proto};
use rezef_events::attempts::{AttemptLimit, TokenAttempts};
use rezef_server::ServerConfig;
use tonic::Code;

use common::{Running, chat};

const TENANT: &str = "acme";

/// A server whose tenant tolerates `identity` wrong tokens per identity and `tenant` in
/// all, each locking for a minute.
async fn server(identity: u32, tenant: u32) -> Running {
    let limit = |failures| AttemptLimit {
        failures,
        window: Duration::from_secs(600),
        lock: Duration::from_secs(60),
        max_lock: Duration::from_secs(600),
    };
    let mut config = ServerConfig::default();
    config.continuity.default.token_attempts = TokenAttempts {
        per_identity: limit(identity),
        per_caller: limit(1000),
        per_tenant: limit(tenant),
    };
    Running::start_with(config).await
}

/// A chat with an open conversation, and a token for it, projected.
async fn chat_with_token(
    client: &mut Client,
    visitor: &str,
    shape: proto::IssueContinuationTokenRequest,
) -> Result<proto::IssueContinuationTokenResponse, tonic::Status> {
    let chat = chat(TENANT, visitor);
    let started = chat.interaction_started(proto::Direction::Inbound);
    client.publish(vec![started]).await.expect("publish");
    let request = proto::IssueContinuationTokenRequest {
        tenant_id: TENANT.into(),
        customer: Some(chat.customer_ref()),
        channel: proto::Channel::Webchat as i32,
        ..shape
    };
    let issued = client.journeys().issue_continuation_token(request).await?;
    let issued = issued.into_inner();
    (client
        .journey(TENANT, chat.customer_ref(), Some(issued.offset))
        .await)
        .expect("the token's event is projected");
    Ok(issued)
}

/// A server tolerating `identity` wrong tokens per identity, a code issued on it, and a
/// code that is not it.
async fn code_and_a_wrong_one(
    identity: u32,
) -> (
    Running,
    Client,
    proto::IssueContinuationTokenResponse,
    &'static str,
) {
    let server = server(identity, 1000).await;
    let mut client = server.client().await;
    let issued = chat_with_token(&mut client, "v-1", Default::default())
        .await
        .expect("a code");
    let wrong = match issued.token.as_str() {
        "00000000" => "00000001",
        _ => "00000000",
    };
    (server, client, issued, wrong)
}

fn caller(number: &str) -> EventFactory {
    EventFactory::new(TENANT, "ivr")
        .identity(proto::IdentityKind::Phone, number)
        .on(proto::Channel::Ivr, format!("call-{number}"))
}

/// ResumeConversation for `number` on `channel` with `token`.
async fn resume(
    client: &Client,
    number: &str,
    channel: proto::Channel,
    token: &str,
) -> Result<proto::ResumeConversationResponse, tonic::Status> {
    let request = proto::ResumeConversationRequest {
        tenant_id: TENANT.into(),
        customer: Some(caller(number).customer_ref()),
        channel: channel as i32,
        continuation_token: token.into(),
        ..Default::default()
    };
    let answer = client.journeys().resume_conversation(request).await;
    answer.map(tonic::Response::into_inner)
}

fn by_token(answer: &proto::ResumeConversationResponse) -> bool {
    answer.continuation == proto::Continuation::Token as i32
}

#[tokio::test]
async fn codes_are_short_lived_links_are_long_and_both_work_only_on_their_channels() {
    let server = server(100, 1000).await;
    let mut client = server.client().await;

    // A code for the IVR: 8 digits, 15 minutes.
    let ivr_only = proto::IssueContinuationTokenRequest {
        redeem_on: vec![proto::Channel::Voice as i32, proto::Channel::Ivr as i32],
        ..Default::default()
    };
    let code = chat_with_token(&mut client, "v-1", ivr_only.clone())
        .await
        .expect("a code");
    assert_eq!(code.token.len(), 8);
    assert!(code.token.bytes().all(|b| b.is_ascii_digit()));
    let life = code.expires_at.expect("expiry").seconds - chrono_now();
    assert!(
        (890..=900).contains(&life),
        "a code lives 15 minutes: {life}s"
    );

    // On another channel it is a wrong token; on the IVR, the conversation.
    let stranger = "+972501110000";
    let elsewhere = resume(&client, stranger, proto::Channel::Webchat, &code.token).await;
    assert!(!elsewhere.expect("answered").known, "not the customer's");
    let answer =
        (resume(&client, stranger, proto::Channel::Ivr, &code.token).await).expect("answered");
    assert!(by_token(&answer));
    assert_eq!(
        answer.conversation.expect("conversation").conversation_id,
        code.conversation_id
    );

    // A link token: 26 characters, a day.
    let link = proto::IssueContinuationTokenRequest {
        format: proto::TokenFormat::Link as i32,
        ..Default::default()
    };
    let issued = chat_with_token(&mut client, "v-2", link.clone())
        .await
        .expect("a link");
    assert_eq!(issued.token.len(), 26);
    let life = issued.expires_at.expect("expiry").seconds - chrono_now();
    assert!(
        (86_390..=86_400).contains(&life),
        "a link lives a day: {life}s"
    );

    // Lives past the format's longest are refused, naming the field.
    let week = Some(prost_types::Duration {
        seconds: 7 * 86_400,
        nanos: 0,
    });
    let long_code = proto::IssueContinuationTokenRequest {
        ttl: week,
        ..ivr_only
    };
    let refused = chat_with_token(&mut client, "v-3", long_code)
        .await
        .expect_err("a week-long code");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(refused.message().contains("ttl"), "{}", refused.message());
    let unknown = proto::IssueContinuationTokenRequest {
        format: 7,
        redeem_on: vec![proto::Channel::Ivr as i32, 99],
        ..Default::default()
    };
    let refused = chat_with_token(&mut client, "v-5", unknown)
        .await
        .expect_err("values the contract lacks");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(common::fields(&refused), ["format", "redeem_on[1]"]);
    let long_link = proto::IssueContinuationTokenRequest { ttl: week, ..link };
    chat_with_token(&mut client, "v-4", long_link)
        .await
        .expect("a week-long link");
    server.stop().await;
}

#[tokio::test]
async fn a_guessing_identity_is_locked_out_right_or_wrong_and_others_are_not() {
    let (server, client, issued, wrong) = code_and_a_wrong_one(3).await;

    // Given three wrong codes from one number
    let guesser = "+972502220000";
    for _ in 0..3 {
        let answer = resume(&client, guesser, proto::Channel::Ivr, wrong).await;
        assert!(!answer.expect("a wrong token is answered").known);
    }

    // Then its next try is refused, even with the right code, with the time to wait
    let refused = resume(&client, guesser, proto::Channel::Ivr, &issued.token)
        .await
        .expect_err("locked out");
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert!(
        refused.message().contains("identity"),
        "{}",
        refused.message()
    );
    let retry = tonic_types::StatusExt::get_details_retry_info(&refused).expect("retry info");
    let wait = retry.retry_delay.expect("a delay");
    assert!(wait > Duration::from_secs(50) && wait <= Duration::from_secs(60));

    // And a call without a token from it is still answered; another number's code works
    resume(&client, guesser, proto::Channel::Ivr, "")
        .await
        .expect("no token, no limit");
    let answer = resume(&client, "+972503330000", proto::Channel::Ivr, &issued.token)
        .await
        .expect("another number");
    assert!(by_token(&answer));
    server.stop().await;
}

#[tokio::test]
async fn many_numbers_guessing_lock_the_tenant_s_tokens() {
    let server = server(100, 5).await;
    let mut client = server.client().await;
    let issued = chat_with_token(&mut client, "v-1", Default::default())
        .await
        .expect("a code");

    // Given five wrong codes, each from another number
    for n in 0..5 {
        let wrong = format!("9999999{n}");
        if wrong == issued.token {
            continue;
        }
        let number = format!("+97250444000{n}");
        resume(&client, &number, proto::Channel::Ivr, &wrong)
            .await
            .expect("answered");
    }

    // Then a number never seen is refused too: the tenant is locked out
    let refused = resume(&client, "+972505550000", proto::Channel::Ivr, &issued.token)
        .await
        .expect_err("the tenant is locked out");
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert!(
        refused.message().contains("tenant"),
        "{}",
        refused.message()
    );
    server.stop().await;
}

#[tokio::test]
async fn a_token_on_an_interaction_s_start_is_a_try_too() {
    let (server, mut client, issued, wrong) = code_and_a_wrong_one(2).await;
    let number = "+972506660000";
    let start_with = |token: &str, n: usize| {
        let call = caller(number).on(proto::Channel::Ivr, format!("call-{n}"));
        let mut start = call.interaction_started(proto::Direction::Inbound);
        if let Some(proto::event::Payload::InteractionStarted(started)) = &mut start.payload {
            started.continuation_token = token.to_owned();
        }
        start
    };

    // Given two calls from one number published starting with wrong codes (accepted: the
    // events are valid; their tokens continue nothing)
    for n in 0..2 {
        client
            .publish(vec![start_with(wrong, n)])
            .await
            .expect("a wrong token is no invalid event");
    }

    // Then the number is locked out: its next start with a token is refused, and so is
    // its ResumeConversation with one
    let refused = client.publish(vec![start_with(&issued.token, 2)]).await;
    let status = common::status_of(refused);
    assert_eq!(
        status.code(),
        Code::ResourceExhausted,
        "{}",
        status.message()
    );
    let refused = resume(&client, number, proto::Channel::Ivr, &issued.token)
        .await
        .expect_err("locked out");
    assert_eq!(refused.code(), Code::ResourceExhausted);
    server.stop().await;
}

/// Seconds since the epoch, now.
fn chrono_now() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    now.map_or(0, |d| d.as_secs() as i64)
}
