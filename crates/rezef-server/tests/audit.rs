//! ReplayHistory's filters over real gRPC on loopback (docs/audit.md): by conversation, by
//! channel, the offsets it runs over in its headers, and what it refuses; the hash chain
//! checked while it replays (`verify_chain`), on an intact log and on a tampered one.

mod common;

use std::path::Path;
use std::sync::Arc;

use futures::StreamExt;
use rezef_adapter::{Client, EventFactory, proto};
use rezef_server::{ServerConfig, SystemClock};
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

/// A server holding [`a_chat_and_a_call`], projected; a replay of that customer.
async fn served() -> (Running, Client, proto::ReplayHistoryRequest, u64) {
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
    (server, client, request, last)
}

#[tokio::test]
async fn a_replay_keeps_one_conversation_or_one_channel_and_says_its_range() {
    let (_server, client, request, last) = served().await;

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

/// Every message of a replay, up to the error that ended it if one did.
async fn messages(
    client: &Client,
    request: proto::ReplayHistoryRequest,
) -> (Vec<proto::ReplayedEvent>, Option<tonic::Status>) {
    let mut stream = (client.audit().replay_history(request).await)
        .expect("replay")
        .into_inner();
    let mut received = Vec::new();
    while let Some(message) = stream.next().await {
        match message {
            Ok(message) => received.push(message),
            Err(status) => return (received, Some(status)),
        }
    }
    (received, None)
}

/// Changes `from` to `to` (as long) in the log's one segment and recomputes the frame's CRC
/// (the first frame's: where the test's events are), as a forger who knows the format would.
fn tamper(log_dir: &Path, from: &[u8], to: &[u8]) {
    let segment = std::fs::read_dir(log_dir)
        .expect("log dir")
        .map(|entry| entry.expect("entry").path())
        .find(|path| path.extension().is_some_and(|e| e == "log"))
        .expect("a segment");
    let mut bytes = std::fs::read(&segment).expect("read");
    let at = (bytes.windows(from.len()))
        .position(|w| w == from)
        .expect("the text is in the log");
    bytes[at..at + to.len()].copy_from_slice(to);
    let frame_len = u32::from_le_bytes(bytes[12..16].try_into().expect("4 bytes")) as usize;
    let crc = crc32c::crc32c(&bytes[8..frame_len]);
    bytes[4..8].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&segment, bytes).expect("write");
}

#[tokio::test]
async fn a_replay_that_verifies_the_chain_ends_with_the_logs_head_or_data_loss_where_it_breaks() {
    let (server, client, request, last) = served().await;
    let request = proto::ReplayHistoryRequest {
        channel: proto::Channel::Voice as i32,
        verify_chain: true,
        ..request
    };

    let (received, error) = messages(&client, request.clone()).await;
    assert!(error.is_none(), "{error:?}");
    let (proof, events) = received.split_last().expect("messages");
    let offsets: Vec<u64> = events.iter().map(|e| e.offset).collect();
    assert_eq!(offsets, [1, 3], "the replay is the same with the check");
    let verified = proof
        .verified
        .clone()
        .expect("the last message says what was proven");
    assert!(proof.event.is_none());
    assert_eq!((verified.start_offset, verified.end_offset), (0, last + 1));
    assert_eq!(proof.offset, last + 1);
    assert_eq!(verified.head.len(), 64);
    let (unverified, _) = messages(
        &client,
        proto::ReplayHistoryRequest {
            verify_chain: false,
            ..request.clone()
        },
    )
    .await;
    assert!(
        unverified
            .iter()
            .all(|m| m.verified.is_none() && m.event.is_some())
    );

    let dir = server.stop_keeping().await;
    let log_dir = ServerConfig {
        data_dir: dir.path().to_path_buf(),
        ..ServerConfig::default()
    }
    .log_dir();
    let rezef_log::Verdict::Intact(on_disk) = rezef_log::verify(&log_dir).expect("reads") else {
        panic!("an untouched log verifies");
    };
    assert_eq!(on_disk.head.map(|h| h.to_hex()), Some(verified.head));

    // An event's source changed in the log (messages are sealed: it is in the clear), its
    // checksum recomputed: the server reads it (the CRC checks out) and replays it, and the
    // chain names the frame.
    tamper(&log_dir, b"web-chat", b"WEB-CHAT");
    let server = Running::start_in(ServerConfig::default(), Arc::new(SystemClock), dir).await;
    let client = server.client().await;
    let (received, error) = messages(&client, request).await;
    let status = error.expect("the replay fails at its end");
    assert_eq!(status.code(), Code::DataLoss);
    assert!(
        status.message().contains("offset 0"),
        "{}",
        status.message()
    );
    assert!(
        !status.message().contains(".log"),
        "no file names: {}",
        status.message()
    );
    assert!(received.iter().all(|m| m.verified.is_none()));
    assert_eq!(received.len(), 2, "the events are sent, then the verdict");
    server.stop().await;
}
