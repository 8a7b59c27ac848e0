//! ReplayHistory's filters over real gRPC on loopback (docs/audit.md): by conversation, by
//! channel, the offsets it runs over in its headers, and what it refuses.

mod common;

use futures::StreamExt;
use rezef_adapter::{Client, EventFactory, proto};
use tonic::Code;

use common::{Running, fields};

const TENANT: &str = "acme";

/// A customer's chat in one conversation and a call in another; the offset of the last.
async fn a_chat_and_a_call(client: &mut Client) -> (EventFactory, u64) {
    let chat = EventFactory::new(TENANT, "web-chat")
        .identity(proto::IdentityKind::ChatVisitor, "v-1")
        .conversation("cnv-chat")
        .on(proto::Channel::Webchat, "chat-1");
    let call = chat
        .clone()
        .conversation("cnv-call")
        .on(proto::Channel::Voice, "call-1");
    let events = vec![
        chat.interaction_started(proto::Direction::Inbound),
        call.interaction_started(proto::Direction::Inbound),
        chat.message(proto::Participant::Customer, "charged twice"),
        call.message(proto::Participant::Customer, "hello?"),
        chat.intent_detected("billing", 0.9, "bot"),
    ];
    let ack = client.publish(events).await.expect("publish");
    (chat, ack.first_offset + u64::from(ack.count) - 1)
}

async fn replayed(
    client: &Client,
    request: proto::ReplayHistoryRequest,
) -> Result<Vec<u64>, tonic::Status> {
    let stream = client.audit().replay_history(request).await?.into_inner();
    let replayed: Vec<_> = stream.collect().await;
    replayed.into_iter().map(|r| r.map(|e| e.offset)).collect()
}

#[tokio::test]
async fn a_replay_keeps_one_conversation_or_one_channel_and_says_its_range() {
    let server = Running::start(Default::default()).await;
    let mut client = server.client().await;
    let (chat, last) = a_chat_and_a_call(&mut client).await;
    client
        .journey(TENANT, chat.customer_ref(), Some(last))
        .await
        .expect("projected");
    let request = proto::ReplayHistoryRequest {
        tenant_id: TENANT.into(),
        customer: Some(chat.customer_ref()),
        ..Default::default()
    };

    let of_chat = proto::ReplayHistoryRequest {
        conversation_id: "cnv-chat".into(),
        ..request.clone()
    };
    assert_eq!(replayed(&client, of_chat).await.expect("replay"), [0, 2, 4]);
    let on_voice = proto::ReplayHistoryRequest {
        channel: proto::Channel::Voice as i32,
        ..request.clone()
    };
    assert_eq!(replayed(&client, on_voice).await.expect("replay"), [1, 3]);

    let response = client
        .audit()
        .replay_history(request.clone())
        .await
        .expect("replay");
    let header = |name| {
        response
            .metadata()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    assert_eq!(header("x-rezef-replay-from").as_deref(), Some("0"));
    assert_eq!(header("x-rezef-replay-to"), Some((last + 1).to_string()));

    let unknown = proto::ReplayHistoryRequest {
        conversation_id: "cnv-other".into(),
        ..request.clone()
    };
    let status = replayed(&client, unknown)
        .await
        .expect_err("no such conversation");
    assert_eq!(status.code(), Code::NotFound);
    let without_customer = proto::ReplayHistoryRequest {
        customer: None,
        conversation_id: "cnv-chat".into(),
        ..request
    };
    let status = replayed(&client, without_customer)
        .await
        .expect_err("needs a customer");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(fields(&status), ["conversation_id"]);
}
