//! The adapter against a real `rezef serve` (the `rezef` binary: `cargo build -p rezef`
//! first, or `REZEF_BIN`), through its WebSocket as the widget speaks it: a hello starts an
//! interaction in the visitor's journey and the bot greets; a keyword is answered and its
//! intent recorded; "agent" hands off and routes the chat, an agent is offered it with the
//! transcript, accepts, and their reply reaches the visitor; a visitor coming back is shown
//! the conversation and not sent the agent's reply again; a page of another origin is
//! refused with 403; an oversize frame is answered with an error frame and closes the chat;
//! with Rezef down a chat goes on with the bot and its events arrive once Rezef is back, and
//! the visitor's `end` ends it; the adapter restarting does not end a chat.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::TENANT;
use futures::{SinkExt, StreamExt};
use rezef_adapter::proto::{self, agent_session_event::Event as Received, event::Payload};
use rezef_adapter::{Client, EventFactory, identity_ref};
use rezef_scenarios::{RezefServer, free_port};
use rezef_webchat::Settings;
use rezef_webchat::bot::Answer;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const SHOP: &str = "https://shop.example.com";
const WAIT: Duration = Duration::from_secs(20);

/// An adapter served in this process until dropped.
struct Adapter {
    addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    running: tokio::task::JoinHandle<Result<(), rezef_adapter::Error>>,
    _spool: tempfile::TempDir,
}

impl Adapter {
    async fn start(rezef_url: &str, tune: impl FnOnce(&mut Settings)) -> Self {
        let spool = tempfile::tempdir().expect("dir");
        let mut settings = Settings::default();
        settings.rezef.address = rezef_url.to_owned();
        settings.spool.dir = spool.path().to_path_buf();
        settings.webchat.tenant = TENANT.into();
        settings.webchat.allowed_origins = vec![SHOP.into()];
        settings.webchat.resume_timeout_ms = Duration::from_millis(1500);
        // A visitor who goes away ends the chat soon (the test of coming back sets more).
        settings.webchat.reconnect_grace_ms = Duration::from_millis(200);
        settings.bot.answers = vec![Answer {
            keywords: vec!["opening hours".into()],
            reply: "We are open 8 to 20.".into(),
            intent: "info.hours".into(),
        }];
        tune(&mut settings);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("an address");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let running = tokio::spawn(rezef_webchat::run(settings, listener, shutdown));
        Self {
            addr,
            stop,
            running,
            _spool: spool,
        }
    }

    /// Stops it as SIGTERM does.
    async fn stop(self) {
        let _ = self.stop.send(());
        let stopped = tokio::time::timeout(WAIT, self.running).await;
        let run = stopped.expect("stops in time").expect("no panic");
        run.expect("a clean stop");
    }
}

/// A visitor's widget, as a WebSocket client.
struct Visitor {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Visitor {
    /// Opens `/chat` from a page of `origin`.
    async fn connect(addr: SocketAddr, origin: &str) -> Result<Self, tungstenite::Error> {
        let mut request = format!("ws://{addr}/chat")
            .into_client_request()
            .expect("a request");
        let origin = origin.parse().expect("a header value");
        request.headers_mut().insert("origin", origin);
        let (ws, _) = tokio_tungstenite::connect_async(request).await?;
        Ok(Self { ws })
    }

    async fn send(&mut self, frame: Value) {
        let text = frame.to_string();
        self.ws.send(Message::text(text)).await.expect("sent");
    }

    /// The next frame: a JSON object, or `{"close": code}`.
    async fn next(&mut self) -> Value {
        loop {
            let frame = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a frame in time");
            match frame {
                Some(Ok(Message::Text(text))) => {
                    return serde_json::from_str(text.as_str()).expect("JSON");
                }
                Some(Ok(Message::Close(frame))) => {
                    return json!({ "close": frame.map(|f| u16::from(f.code)) });
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return json!({ "close": null }),
            }
        }
    }

    /// Frames until one of `kind` (`type`), which is returned.
    async fn until(&mut self, kind: &str) -> Value {
        loop {
            let frame = self.next().await;
            assert!(frame.get("close").is_none(), "closed waiting for {kind}");
            if frame["type"] == kind {
                return frame;
            }
        }
    }

    /// Says hello as visitor `visitor` (carrying on `chat`); the welcome.
    async fn hello(&mut self, visitor: &str, chat: Option<&str>) -> Value {
        let mut hello = json!({ "type": "hello", "visitor": visitor, "language": "en" });
        if let Some(chat) = chat {
            hello["chat"] = json!(chat);
        }
        self.send(hello).await;
        self.until("welcome").await
    }
}

/// `visitor`'s journey once `ready` holds.
async fn journey_when(
    client: &mut Client,
    visitor: &str,
    ready: impl Fn(&proto::Journey) -> bool,
) -> proto::Journey {
    let customer = identity_ref(proto::IdentityKind::ChatVisitor, visitor);
    rezef_scenarios::journey_when(client, TENANT, customer, ready).await
}

fn chat_of<'a>(
    journey: &'a proto::Journey,
    chat: &str,
) -> Option<(&'a proto::Conversation, &'a proto::Interaction)> {
    journey.conversations.iter().find_map(|c| {
        let interaction = c.interactions.iter().find(|i| i.interaction_id == chat)?;
        Some((c, interaction))
    })
}

async fn backbone() -> (RezefServer, tempfile::TempDir, Client) {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = RezefServer::start(&dir.path().join("data")).await;
    let client = server.client().await;
    (server, dir, client)
}

#[tokio::test]
async fn a_hello_starts_the_chat_and_the_bot_answers_a_keyword_with_its_intent() {
    let (server, _dir, mut client) = backbone().await;
    let adapter = Adapter::start(&server.url(), |_| {}).await;
    let mut visitor = Visitor::connect(adapter.addr, SHOP).await.expect("open");

    // Given a new visitor, when they say hello,
    let welcome = visitor.hello("v-keyword", None).await;
    // then a fresh chat is open, greeted by the bot.
    assert_eq!(welcome["resumed"], false);
    let chat = welcome["chat"].as_str().expect("a chat id").to_owned();
    let greeting = visitor.until("message").await;
    assert_eq!(
        (greeting["from"].as_str(), greeting["sender"].as_str()),
        (Some("bot"), Some("webchat-bot"))
    );
    assert_eq!(visitor.until("status").await["status"], "bot");

    // When they ask about a keyword,
    let asked = json!({ "type": "message", "id": "m-1", "text": "Your opening hours?" });
    visitor.send(asked.clone()).await;
    assert_eq!(visitor.until("ack").await["id"], "m-1");
    // then the bot answers it,
    assert_eq!(
        visitor.until("message").await["text"],
        "We are open 8 to 20."
    );
    // and the same message sent again is acknowledged, not answered again.
    visitor.send(asked).await;
    assert_eq!(visitor.until("ack").await["id"], "m-1");

    // The journey has the chat, the intent and the three messages, once each.
    let journey = journey_when(&mut client, "v-keyword", |j| {
        chat_of(j, &chat).is_some_and(|(c, _)| c.transcript.len() >= 3 && c.intent.is_some())
    })
    .await;
    let (conversation, interaction) = chat_of(&journey, &chat).expect("the chat");
    assert_eq!(interaction.channel, proto::Channel::Webchat as i32);
    assert_eq!(
        conversation.intent.as_ref().map(|i| i.intent.as_str()),
        Some("info.hours")
    );
    let said: Vec<_> = conversation
        .transcript
        .iter()
        .map(|t| t.text.as_str())
        .collect();
    assert_eq!(
        said[1..],
        ["Your opening hours?", "We are open 8 to 20."],
        "{said:?}"
    );
}

#[tokio::test]
async fn asking_for_an_agent_routes_the_chat_and_the_agents_reply_reaches_the_visitor() {
    let (server, _dir, mut client) = backbone().await;
    let mut desk = common::agent_on_duty(&client).await;
    let adapter = Adapter::start(&server.url(), |_| {}).await;
    let mut visitor = Visitor::connect(adapter.addr, SHOP).await.expect("open");
    let chat = visitor.hello("v-handoff", None).await["chat"]
        .as_str()
        .expect("a chat id")
        .to_owned();
    assert_eq!(visitor.until("status").await["status"], "bot");

    // When the visitor asks for a person,
    let ask = json!({ "type": "message", "id": "m-1", "text": "Can I talk to an agent please" });
    visitor.send(ask).await;
    assert_eq!(visitor.until("ack").await["id"], "m-1");
    // then the bot says so and the chat waits for an agent,
    assert_eq!(visitor.until("message").await["from"], "bot");
    assert_eq!(visitor.until("status").await["status"], "waiting");

    // and the agent is offered the chat with its transcript and the bot's summary.
    let offer = loop {
        let event = tokio::time::timeout(WAIT, desk.next())
            .await
            .expect("in time");
        if let Received::Offer(offer) = event.expect("ok").expect("open") {
            break offer;
        }
    };
    assert_eq!(offer.interaction_id, chat);
    let context = offer.context.expect("context");
    let conversation = context.conversation.clone().expect("a conversation");
    let texts: Vec<_> = conversation
        .transcript
        .iter()
        .map(|t| t.text.as_str())
        .collect();
    assert!(
        texts.contains(&"Can I talk to an agent please"),
        "{texts:?}"
    );
    assert_eq!(
        conversation.handoff_summary,
        "The visitor asked for a person."
    );

    // When the agent accepts,
    desk.accept(offer.offer_id).await.expect("accepted");
    // then the visitor is told an agent has the chat;
    assert_eq!(visitor.until("status").await["status"], "agent");
    // when the agent replies (the desktop publishes to Rezef),
    let desktop = EventFactory::new(TENANT, "agent-desktop")
        .customer(context.customer_id.clone())
        .on(proto::Channel::Webchat, chat.clone());
    let mut reply = desktop.message(proto::Participant::Agent, "Hi, I am Dana. How can I help?");
    if let Some(Payload::MessageSent(message)) = &mut reply.payload {
        message.sender_id = "dana".into();
    }
    client.publish(vec![reply]).await.expect("published");
    // then the visitor receives it.
    let received = visitor.until("message").await;
    assert_eq!(
        (
            received["from"].as_str(),
            received["sender"].as_str(),
            received["text"].as_str()
        ),
        (
            Some("agent"),
            Some("dana"),
            Some("Hi, I am Dana. How can I help?")
        )
    );
    // While the agent has the chat, the visitor's messages are recorded and the bot is quiet.
    let thanks = json!({ "type": "message", "id": "m-2", "text": "agent, thanks" });
    visitor.send(thanks).await;
    assert_eq!(visitor.until("ack").await["id"], "m-2");
    let quiet = tokio::time::timeout(Duration::from_secs(1), visitor.until("message")).await;
    assert!(quiet.is_err(), "the bot spoke: {quiet:?}");

    // A visitor coming back after closing the page is shown the conversation so far,
    drop(visitor);
    journey_when(&mut client, "v-handoff", |j| {
        chat_of(j, &chat).is_some_and(|(_, i)| i.stage == proto::Stage::Ended as i32)
    })
    .await;
    let mut back = Visitor::connect(adapter.addr, SHOP).await.expect("open");
    let welcome = back.hello("v-handoff", Some(&chat)).await;
    assert_eq!(welcome["resumed"], true);
    assert_ne!(
        welcome["chat"],
        chat.as_str(),
        "the closed chat is not carried on"
    );
    let shown: Vec<_> = (welcome["transcript"]
        .as_array()
        .expect("a transcript")
        .iter())
    .map(|e| e["text"].as_str().unwrap_or_default().to_owned())
    .collect();
    assert!(
        shown.contains(&"Can I talk to an agent please".to_owned()),
        "{shown:?}"
    );
    assert!(
        shown.contains(&"Hi, I am Dana. How can I help?".to_owned()),
        "{shown:?}"
    );
    // and is not sent the agent's reply again.
    assert_eq!(back.until("status").await["status"], "bot");
    let again = tokio::time::timeout(Duration::from_secs(2), back.until("message")).await;
    assert!(
        again.as_ref().is_err() || again.as_ref().is_ok_and(|m| m["from"] != "agent"),
        "{again:?}"
    );
}

#[tokio::test]
async fn a_page_of_another_origin_is_refused_with_403() {
    let adapter = Adapter::start(&format!("http://127.0.0.1:{}", free_port()), |_| {}).await;
    let refused = Visitor::connect(adapter.addr, "https://evil.example.net").await;
    match refused {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 403),
        Err(other) => panic!("expected a 403, got {other}"),
        Ok(_) => panic!("a page of another origin opened a chat"),
    }
    assert!(Visitor::connect(adapter.addr, SHOP).await.is_ok());
    let own = format!("http://{}", adapter.addr);
    assert!(Visitor::connect(adapter.addr, &own).await.is_ok());
}

/// With Rezef out of reach the chat still opens (the events wait in the spool); a bad
/// frame is answered with an error and the chat goes on; an oversize one ends it.
#[tokio::test]
async fn an_oversize_message_is_answered_with_an_error_frame_and_closes_the_chat() {
    let down = format!("http://127.0.0.1:{}", free_port());
    let adapter = Adapter::start(&down, |s| {
        s.webchat.max_message_bytes = 256;
        s.webchat.resume_timeout_ms = Duration::from_millis(200);
    })
    .await;
    let mut visitor = Visitor::connect(adapter.addr, SHOP).await.expect("open");
    let welcome = visitor.hello("v-oversize", None).await;
    assert_eq!(welcome["resumed"], false);

    visitor
        .send(json!({ "type": "message", "id": "bad id!", "text": "hi" }))
        .await;
    let error = visitor.until("error").await;
    assert_eq!(error["reason"], "bad_message");

    let big = json!({ "type": "message", "id": "m-big", "text": "x".repeat(400) });
    visitor.send(big).await;
    let error = visitor.until("error").await;
    assert_eq!(error["reason"], "too_large");
    assert_eq!(visitor.next().await["close"], 1009);
}

/// With Rezef down a chat opens and the bot answers (the events wait in the spool); once
/// Rezef is up they are in the journey; the visitor's `end` ends the interaction.
#[tokio::test]
async fn a_chat_goes_on_with_rezef_down_and_its_events_arrive_once_it_is_back() {
    let port = free_port();
    let adapter = Adapter::start(&format!("http://127.0.0.1:{port}"), |s| {
        s.webchat.resume_timeout_ms = Duration::from_millis(300);
    })
    .await;
    let mut visitor = Visitor::connect(adapter.addr, SHOP).await.expect("open");
    let welcome = visitor.hello("v-offline", None).await;
    assert_eq!(welcome["resumed"], false);
    let chat = welcome["chat"].as_str().expect("a chat id").to_owned();
    assert_eq!(visitor.until("status").await["status"], "bot");
    let asked = json!({ "type": "message", "id": "m-1", "text": "opening hours?" });
    visitor.send(asked).await;
    assert_eq!(visitor.until("ack").await["id"], "m-1");
    assert_eq!(
        visitor.until("message").await["text"],
        "We are open 8 to 20."
    );

    // When Rezef comes up, the chat's events arrive;
    let dir = tempfile::tempdir().expect("tempdir");
    let server = RezefServer::start_on(port, &dir.path().join("data"), &[], None).await;
    let mut client = server.client().await;
    journey_when(&mut client, "v-offline", |j| {
        chat_of(j, &chat).is_some_and(|(c, _)| c.transcript.len() == 3 && c.intent.is_some())
    })
    .await;
    // and when the visitor ends the chat, it is over, as completed.
    visitor.send(json!({ "type": "end" })).await;
    assert_eq!(visitor.until("status").await["status"], "ended");
    assert_eq!(visitor.next().await["close"], 1000);
    let completed = proto::EndReason::Completed as i32;
    journey_when(&mut client, "v-offline", |j| {
        chat_of(j, &chat).is_some_and(|(_, i)| {
            i.stage == proto::Stage::Ended as i32 && i.end_reason == completed
        })
    })
    .await;
}

/// The adapter stopping closes its chats (1012) without ending them: the visitor
/// reconnecting to the adapter started again carries the chat on, not greeted again.
#[tokio::test]
async fn a_chat_carries_on_across_a_restart_of_the_adapter() {
    let (server, _dir, mut client) = backbone().await;
    let adapter = Adapter::start(&server.url(), |_| {}).await;
    let mut visitor = Visitor::connect(adapter.addr, SHOP).await.expect("open");
    let chat = visitor.hello("v-restart", None).await["chat"]
        .as_str()
        .expect("a chat id")
        .to_owned();
    assert_eq!(visitor.until("status").await["status"], "bot");
    journey_when(&mut client, "v-restart", |j| {
        chat_of(j, &chat).is_some_and(|(c, _)| !c.transcript.is_empty())
    })
    .await;

    adapter.stop().await;
    assert_eq!(visitor.next().await["close"], 1012);

    let again = Adapter::start(&server.url(), |_| {}).await;
    let mut back = Visitor::connect(again.addr, SHOP).await.expect("open");
    let welcome = back.hello("v-restart", Some(&chat)).await;
    assert_eq!(
        (welcome["chat"].as_str(), &welcome["resumed"]),
        (Some(chat.as_str()), &json!(true))
    );
    let next = back.next().await;
    assert_eq!(
        (&next["type"], &next["status"]),
        (&json!("status"), &json!("bot")),
        "{next}"
    );
    // Someone else naming that chat gets a chat of their own.
    let mut other = Visitor::connect(again.addr, SHOP).await.expect("open");
    let theirs = other.hello("v-someone-else", Some(&chat)).await;
    assert_ne!(theirs["chat"], chat.as_str());
}

#[tokio::test]
async fn a_visitor_back_within_the_grace_carries_the_chat_on_and_one_who_stays_away_ends_it() {
    let (server, _dir, mut client) = backbone().await;
    let grace = Duration::from_secs(3);
    let adapter = Adapter::start(&server.url(), |s| s.webchat.reconnect_grace_ms = grace).await;

    // Given a visitor in a chat
    let mut visitor = Visitor::connect(adapter.addr, SHOP).await.expect("open");
    let welcome = visitor.hello("v-reload", None).await;
    let chat = welcome["chat"].as_str().expect("a chat id").to_owned();
    visitor.until("message").await;

    // When the page reloads (the connection drops) and the widget comes back with the chat
    drop(visitor);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut back = Visitor::connect(adapter.addr, SHOP).await.expect("open");
    let welcome = back.hello("v-reload", Some(&chat)).await;
    // Then the same chat carries on, and outlives the first departure's grace
    assert_eq!(welcome["chat"], chat.as_str());
    tokio::time::sleep(grace + Duration::from_secs(1)).await;
    let journey = journey_when(&mut client, "v-reload", |j| chat_of(j, &chat).is_some()).await;
    let (_, interaction) = chat_of(&journey, &chat).expect("the chat");
    assert_ne!(interaction.stage, proto::Stage::Ended as i32, "not ended");

    // When the visitor goes away for good, then the chat ends once the grace is over
    drop(back);
    let journey = journey_when(&mut client, "v-reload", |j| {
        chat_of(j, &chat).is_some_and(|(_, i)| i.stage == proto::Stage::Ended as i32)
    })
    .await;
    let (_, interaction) = chat_of(&journey, &chat).expect("the chat");
    assert_eq!(
        interaction.end_reason,
        proto::EndReason::CustomerLeft as i32
    );
    adapter.stop().await;
}
