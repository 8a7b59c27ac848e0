//! `as_of` over real gRPC on loopback (docs/audit.md): GetJourney and ResumeConversation
//! answer as the projection knew the customer at an offset or a time, and say what is wrong
//! with a point they cannot answer for.

mod common;

use rezef_adapter::{Client, proto};
use tonic::Code;

use common::{Running, chat, fields, status_of};

const TENANT: &str = "acme";

fn at_offset(offset: u64) -> Option<proto::AsOf> {
    Some(proto::AsOf {
        point: Some(proto::as_of::Point::Offset(offset)),
    })
}

/// A chat whose intent comes with its 2nd event and changes with its 4th; the offset of the
/// last event.
async fn a_chat_that_changed_its_mind(client: &mut Client) -> u64 {
    let chat = chat(TENANT, "v-1");
    let events = vec![
        chat.interaction_started(proto::Direction::Inbound),
        chat.intent_detected("billing.dispute", 0.9, "bot"),
        chat.message(proto::Participant::Customer, "charged twice"),
        chat.intent_detected("cancel", 0.95, "bot"),
    ];
    let ack = client.publish(events).await.expect("publish");
    ack.first_offset + u64::from(ack.count) - 1
}

fn intent(journey: &proto::Journey) -> &str {
    let conversation = journey.conversations.first().expect("a conversation");
    conversation
        .intent
        .as_ref()
        .map_or("", |i| i.intent.as_str())
}

#[tokio::test]
async fn get_journey_as_of_an_offset_shows_what_was_known_then() {
    let server = Running::start(Default::default()).await;
    let mut client = server.client().await;
    let last = a_chat_that_changed_its_mind(&mut client).await;
    let customer = chat(TENANT, "v-1").customer_ref();

    let now = client
        .journey(TENANT, customer.clone(), Some(last))
        .await
        .expect("now");
    assert_eq!(intent(now.journey.as_ref().expect("journey")), "cancel");

    let then = (client.journey_as_of(TENANT, customer.clone(), None, at_offset(3)))
        .await
        .expect("as of 3");
    assert_eq!(then.projected_offset, 3, "the point it is as of");
    let journey = then.journey.expect("journey");
    assert_eq!(
        intent(&journey),
        "billing.dispute",
        "the later intent is not there yet"
    );
    assert_eq!(journey.counters.expect("counters").events, 3);

    let before = client
        .journey_as_of(TENANT, customer.clone(), None, at_offset(0))
        .await;
    assert_eq!(
        status_of(before).code(),
        Code::NotFound,
        "not known before any event"
    );

    let whole = client
        .journey_as_of(TENANT, customer, None, at_offset(last + 1))
        .await;
    assert_eq!(
        whole.expect("as of the end").journey,
        now.journey,
        "as of the end: now"
    );
}

#[tokio::test]
async fn get_journey_as_of_a_time_and_points_it_cannot_answer_for() {
    let server = Running::start(Default::default()).await;
    let mut client = server.client().await;
    let last = a_chat_that_changed_its_mind(&mut client).await;
    let customer = chat(TENANT, "v-1").customer_ref();

    let long_ago = Some(proto::AsOf {
        point: Some(proto::as_of::Point::Time(prost_types::Timestamp {
            seconds: 1_000_000_000,
            nanos: 0,
        })),
    });
    let before = client
        .journey_as_of(TENANT, customer.clone(), None, long_ago)
        .await;
    assert_eq!(
        status_of(before).code(),
        Code::NotFound,
        "logged after that time"
    );
    let tomorrow = Some(proto::AsOf {
        point: Some(proto::as_of::Point::Time(prost_types::Timestamp::from(
            std::time::SystemTime::now() + std::time::Duration::from_secs(86_400),
        ))),
    });
    let later = client
        .journey_as_of(TENANT, customer.clone(), Some(last), tomorrow)
        .await;
    assert_eq!(
        intent(&later.expect("as of tomorrow").journey.expect("journey")),
        "cancel"
    );

    let past_the_end = client
        .journey_as_of(TENANT, customer.clone(), None, at_offset(last + 2))
        .await;
    assert_eq!(status_of(past_the_end).code(), Code::OutOfRange);
    let no_point = Some(proto::AsOf { point: None });
    let status = status_of(client.journey_as_of(TENANT, customer, None, no_point).await);
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(fields(&status), ["as_of"]);
}

#[tokio::test]
async fn resume_as_of_answers_what_the_channel_was_told_then_and_takes_no_token() {
    let server = Running::start(Default::default()).await;
    let mut client = server.client().await;
    let last = a_chat_that_changed_its_mind(&mut client).await;
    let request = |as_of| proto::ResumeConversationRequest {
        tenant_id: TENANT.into(),
        customer: Some(chat(TENANT, "v-1").customer_ref()),
        channel: proto::Channel::Voice as i32,
        min_offset: Some(last),
        as_of,
        ..Default::default()
    };

    let then = client
        .journeys()
        .resume_conversation(request(at_offset(2)))
        .await;
    let then = then.expect("resume as of 2").into_inner();
    assert!(then.known);
    assert_eq!(then.projected_offset, 2);
    let conversation = then.conversation.expect("the conversation to continue");
    assert_eq!(
        conversation.intent.expect("intent").intent,
        "billing.dispute"
    );
    let unknown = client
        .journeys()
        .resume_conversation(request(at_offset(0)))
        .await;
    assert!(!unknown.expect("resume as of 0").into_inner().known);

    let mut with_token = request(at_offset(2));
    with_token.continuation_token = "482913".into();
    let refused = client.journeys().resume_conversation(with_token).await;
    let status = refused.expect_err("refused");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(fields(&status), ["continuation_token"]);
}
