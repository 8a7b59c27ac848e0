//! The adapter against a real `rezef serve` (the `rezef` binary: `cargo build -p rezef`
//! first), through HTTP as Twilio calls it: signed webhooks accepted and unsigned or
//! tampered ones refused with nothing published; an unknown caller gets the menu, a caller
//! with an open conversation a greeting that skips it; an SMS is a message in the journey; a
//! status callback ends the call; with Rezef down a call still gets the menu, and its events
//! arrive once Rezef is back.

use std::time::{Duration, Instant};

use rezef_adapter::{EventFactory, proto};
use rezef_scenarios::{RezefServer, free_port};
use rezef_twilio::Settings;
use rezef_twilio::settings::{Account, MenuOption};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const ACCOUNT: &str = "AC00000000000000000000000000000001";
const TOKEN: &str = "12345";
const TENANT: &str = "acme";
const PUBLIC: &str = "https://voice.example.com";
const CALLER: &str = "+12349013030";
const LINE: &str = "+18005551212";

/// An adapter served in this process until dropped.
struct Adapter {
    addr: std::net::SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    running: tokio::task::JoinHandle<Result<(), rezef_adapter::Error>>,
    spool: tempfile::TempDir,
}

impl Adapter {
    async fn start(rezef_url: &str) -> Self {
        let spool = tempfile::tempdir().expect("dir");
        let mut settings = Settings::default();
        settings.rezef.address = rezef_url.to_owned();
        settings.spool.dir = spool.path().to_path_buf();
        settings.twilio.public_url = PUBLIC.into();
        settings.twilio.resume_timeout_ms = Duration::from_millis(500);
        settings.accounts = vec![Account {
            account_sid: ACCOUNT.into(),
            auth_token: TOKEN.into(),
            tenant: TENANT.into(),
        }];
        settings.voice.options = vec![MenuOption {
            digits: "1".into(),
            intent: "billing".into(),
            label: "billing".into(),
            connect: None,
        }];
        settings.voice.topics = [("billing.dispute".into(), "your billing dispute".into())].into();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("an address");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let running = tokio::spawn(rezef_twilio::run(settings, listener, shutdown));
        Self {
            addr,
            stop,
            running,
            spool,
        }
    }

    /// POSTs `params` to `path` signed as Twilio would (`signature` None), or with
    /// `signature` (`Some(None)`: no header); the status and body.
    async fn post(
        &self,
        path: &str,
        params: &[(&str, &str)],
        signature: Option<Option<&str>>,
    ) -> (u16, String) {
        let owned: Vec<(String, String)> = (params.iter())
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let body = serde_urlencoded::to_string(&owned).expect("a form");
        let computed = rezef_twilio::signature::sign(TOKEN, &format!("{PUBLIC}{path}"), &owned);
        let header = match signature {
            None => format!("X-Twilio-Signature: {computed}\r\n"),
            Some(Some(given)) => format!("X-Twilio-Signature: {given}\r\n"),
            Some(None) => String::new(),
        };
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: voice.example.com\r\n\
             Content-Type: application/x-www-form-urlencoded\r\n{header}\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        self.send(&request).await
    }

    /// Stops it as SIGTERM does; its spool's directory.
    async fn stop(self) -> tempfile::TempDir {
        let _ = self.stop.send(());
        let stopped = tokio::time::timeout(Duration::from_secs(20), self.running);
        let run = stopped.await.expect("stops in time").expect("no panic");
        run.expect("a clean stop");
        self.spool
    }

    async fn get(&self, path: &str) -> (u16, String) {
        self.send(&format!(
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        ))
        .await
    }

    async fn send(&self, request: &str) -> (u16, String) {
        let mut stream = TcpStream::connect(self.addr).await.expect("connect");
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.expect("read");
        let status = answer[9..12].parse().expect("a status line");
        let body = answer
            .split_once("\r\n\r\n")
            .map_or("", |(_, b)| b)
            .to_owned();
        (status, body)
    }

    /// The counter or gauge `name` at `/metrics`.
    async fn metric(&self, name: &str) -> f64 {
        let (_, text) = self.get("/metrics").await;
        (text.lines())
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{name} in {text}"))
    }
}

fn call(sid: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AccountSid", ACCOUNT.into()),
        ("CallSid", sid.into()),
        ("From", CALLER.into()),
        ("To", LINE.into()),
        ("CallStatus", "ringing".into()),
        ("Direction", "inbound".into()),
    ]
}

fn borrowed<'a>(params: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    params.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// The caller's journey once `ready` holds (within 20 s).
async fn journey_when(
    server: &RezefServer,
    caller: &str,
    ready: impl Fn(&proto::Journey) -> bool,
) -> proto::Journey {
    let customer = rezef_adapter::identity_ref(proto::IdentityKind::Phone, caller);
    rezef_scenarios::journey_when(&mut server.client().await, TENANT, customer, ready).await
}

fn interaction<'a>(journey: &'a proto::Journey, id: &str) -> Option<&'a proto::Interaction> {
    (journey.conversations.iter())
        .flat_map(|c| &c.interactions)
        .find(|i| i.interaction_id == id)
}

/// Twilio's signature accepted; a changed parameter, a missing header, a wrong one or an
/// unknown account refused with 403 and nothing published. (No server needed.)
#[tokio::test]
async fn signed_webhooks_are_taken_and_others_refused_with_nothing_published() {
    let adapter = Adapter::start(&format!("http://127.0.0.1:{}", free_port())).await;
    let params = call("CA0001");
    let params = borrowed(&params);
    let signature = rezef_twilio::signature::sign(
        TOKEN,
        &format!("{PUBLIC}/twilio/voice"),
        &(params.iter())
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<Vec<_>>(),
    );
    let mut changed = params.clone();
    changed[2].1 = "+19999999999";
    let refused = [
        adapter
            .post("/twilio/voice", &changed, Some(Some(&signature)))
            .await,
        adapter.post("/twilio/voice", &params, Some(None)).await,
        adapter
            .post(
                "/twilio/voice",
                &params,
                Some(Some("0/KCTR6DLpKmkAf8muzZqo1nDgQ=")),
            )
            .await,
        adapter
            .post(
                "/twilio/sms",
                &[("AccountSid", "ACunknown"), ("From", CALLER)],
                None,
            )
            .await,
    ];
    for (status, _) in &refused {
        assert_eq!(*status, 403);
    }
    assert_eq!(
        adapter.metric("rezef_adapter_events_accepted_total").await,
        0.0
    );

    let (status, twiml) = adapter
        .post("/twilio/voice", &params, Some(Some(&signature)))
        .await;
    assert_eq!(status, 200, "{twiml}");
    assert_eq!(
        adapter.metric("rezef_adapter_events_accepted_total").await,
        1.0
    );
    let (status, ready) = adapter.get("/readyz").await;
    assert_eq!(status, 200);
    assert!(ready.contains("\"spooled_events\":1"), "{ready}");
    let forbidden = "rezef_adapter_http_requests_total{route=\"/twilio/voice\",status=\"403\"}";
    assert_eq!(adapter.metric(forbidden).await, 3.0);

    // Stopped, the adapter leaves the event it could not deliver in its spool, unlocked.
    let spool = adapter.stop().await;
    let limits = rezef_adapter::spool::SpoolLimits::default();
    let reopened = rezef_adapter::spool::Spool::open(spool.path(), limits).expect("unlocked");
    assert_eq!(reopened.end().seq - reopened.head().seq, 1);
}

/// A caller Rezef has never seen gets the menu; one whose web chat about a billing dispute
/// is open is greeted by it and connected without the menu.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_caller_gets_the_menu_and_a_known_one_skips_it() {
    let data = tempfile::tempdir().expect("dir");
    let server = RezefServer::start(data.path()).await;
    let adapter = Adapter::start(&server.url()).await;

    let params = call("CA0002");
    let (status, menu) = adapter
        .post("/twilio/voice", &borrowed(&params), None)
        .await;
    assert_eq!(status, 200);
    assert!(menu.contains("<Gather"), "{menu}");
    assert!(
        menu.contains("action=\"https://voice.example.com/twilio/voice/gather\""),
        "{menu}"
    );

    let known = "+12125550100";
    let chat = EventFactory::new(TENANT, "web-chat")
        .identity(proto::IdentityKind::Phone, known)
        .on(proto::Channel::Webchat, "chat-1");
    let mut client = server.client().await;
    let ack = client
        .publish(vec![
            chat.interaction_started(proto::Direction::Inbound),
            chat.intent_detected("billing.dispute", 0.9, "bot"),
        ])
        .await
        .expect("published");
    let customer = chat.customer_ref();
    let last = ack.first_offset + u64::from(ack.count) - 1;
    let resumed = client.resume(TENANT, customer, proto::Channel::Voice, Some(last));
    assert!(resumed.await.expect("resumed").skip_self_service);

    let mut params = call("CA0003");
    params[2].1 = known.into();
    let (status, greeting) = adapter
        .post("/twilio/voice", &borrowed(&params), None)
        .await;
    assert_eq!(status, 200);
    assert!(!greeting.contains("<Gather"), "{greeting}");
    assert!(greeting.contains("your billing dispute"), "{greeting}");
    assert!(greeting.contains("\">support</Enqueue>"), "{greeting}");
    let journey = journey_when(&server, known, |j| {
        interaction(j, "CA0003").is_some_and(|i| i.stage == proto::Stage::Queued as i32)
    })
    .await;
    assert_eq!(
        journey.conversations.len(),
        1,
        "the call joined the chat's conversation"
    );
}

/// A menu choice is the intent; hanging up in the queue is an abandon there; an SMS is a
/// message in the journey; the status callback ends the call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn menu_sms_and_status_become_the_journey() {
    let data = tempfile::tempdir().expect("dir");
    let server = RezefServer::start(data.path()).await;
    let adapter = Adapter::start(&server.url()).await;

    let params = call("CA0004");
    adapter
        .post("/twilio/voice", &borrowed(&params), None)
        .await;
    let mut gather = borrowed(&params);
    gather.push(("Digits", "1"));
    let (status, twiml) = adapter.post("/twilio/voice/gather", &gather, None).await;
    assert_eq!(status, 200);
    let left = "<Enqueue action=\"https://voice.example.com/twilio/voice/queue\" method=\"POST\">support</Enqueue>";
    assert!(twiml.contains(left), "{twiml}");
    let mut hung_up = borrowed(&params);
    hung_up.push(("QueueResult", "hangup"));
    let (status, _) = adapter.post("/twilio/voice/queue", &hung_up, None).await;
    assert_eq!(status, 200);

    let sms = [
        ("AccountSid", ACCOUNT),
        ("MessageSid", "SM0001"),
        ("From", CALLER),
        ("To", LINE),
        ("Body", "my bill is wrong & too high"),
        ("NumMedia", "1"),
        ("MediaUrl0", "https://api.twilio.com/media/ME1"),
        ("MediaContentType0", "image/jpeg"),
    ];
    let (status, empty) = adapter.post("/twilio/sms", &sms, None).await;
    assert_eq!(status, 200);
    assert!(empty.ends_with("<Response></Response>"), "{empty}");

    let mut status_callback = borrowed(&params);
    status_callback[4].1 = "completed";
    let (status, _) = adapter.post("/twilio/status", &status_callback, None).await;
    assert_eq!(status, 200);

    let journey = journey_when(&server, CALLER, |j| {
        interaction(j, "CA0004").is_some_and(|i| i.end_reason == proto::EndReason::Completed as i32)
            && (j.conversations.iter())
                .any(|c| c.transcript.iter().any(|t| t.text.contains("bill")))
    })
    .await;
    let conversation = &journey.conversations[0];
    assert_eq!(
        conversation.intent.as_ref().map(|i| i.intent.as_str()),
        Some("billing")
    );
    let message = (conversation.transcript.iter())
        .find(|t| t.channel == proto::Channel::Sms as i32)
        .expect("the SMS in the transcript");
    assert_eq!(message.text, "my bill is wrong & too high");
    assert_eq!(message.attachment_count, 1);
    let call = interaction(&journey, "CA0004").expect("the call");
    assert_eq!(call.abandoned_at, proto::AbandonPoint::Queue as i32);
    assert_eq!(call.end_reason, proto::EndReason::Completed as i32);
    assert_eq!(call.self_service_steps, 1);
}

/// With Rezef down a call gets the menu within the resume deadline, and its events arrive
/// once Rezef is up; Twilio's retry of the same webhook is applied once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_rezef_down_the_call_gets_the_menu_and_its_events_arrive_later() {
    let port = free_port();
    let adapter = Adapter::start(&format!("http://127.0.0.1:{port}")).await;
    let params = call("CA0005");
    let began = Instant::now();
    let (status, menu) = adapter
        .post("/twilio/voice", &borrowed(&params), None)
        .await;
    assert_eq!(status, 200);
    assert!(menu.contains("<Gather"), "{menu}");
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "{:?}",
        began.elapsed()
    );
    // Twilio sends it again after no answer in time: same ids.
    adapter
        .post("/twilio/voice", &borrowed(&params), None)
        .await;

    let data = tempfile::tempdir().expect("dir");
    let server = RezefServer::start_on(port, data.path(), &[], None).await;
    let journey = journey_when(&server, CALLER, |j| interaction(j, "CA0005").is_some()).await;
    let counters = journey.counters.expect("counters");
    assert_eq!(counters.interactions, 1);
    let deadline = Instant::now() + Duration::from_secs(20);
    while adapter.metric("rezef_adapter_spool_events").await > 0.0 {
        assert!(Instant::now() < deadline, "the spool never emptied");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        adapter
            .metric("rezef_adapter_events_acknowledged_total")
            .await,
        2.0
    );
    assert!(adapter.metric("rezef_adapter_publish_retries_total").await >= 1.0);
    let (_, ready) = adapter.get("/readyz").await;
    assert!(ready.contains("\"server_reachable\":true"), "{ready}");
}
