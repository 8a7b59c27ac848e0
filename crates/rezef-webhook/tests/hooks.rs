//! The adapter with `deploy/rezef-webhook.toml`'s helpdesk route against a real `rezef
//! serve` (the `rezef` binary: `cargo build -p rezef` first), through HTTP as a helpdesk
//! posts: a signed ticket (`tests/fixtures/helpdesk-ticket-created.json`) becomes the
//! customer's journey and its solving ends it; the same POST twice is applied once; a bad
//! signature is 401, a body lacking a path 400 naming it, an unknown route 404, an oversized
//! body 413, a full spool 503, all with nothing published.

use std::path::Path;

use rezef_adapter::proto;
use rezef_scenarios::{RezefServer, free_port};
use rezef_webhook::Settings;
use rezef_webhook::auth::sign_hex;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The example's secret.
const SECRET: &str = "change-me";
const TENANT: &str = "acme";
const EMAIL: &str = "dana.levi@example.com";

fn fixture() -> Value {
    let file =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/helpdesk-ticket-created.json");
    let text = std::fs::read_to_string(file).expect("the fixture");
    serde_json::from_str(&text).expect("JSON")
}

/// An adapter served in this process until dropped.
struct Adapter {
    addr: std::net::SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
    _spool: tempfile::TempDir,
}

impl Adapter {
    /// With the deployed example's settings, on `rezef_url`, changed by `adjust`.
    async fn start(rezef_url: &str, adjust: impl FnOnce(&mut Settings)) -> Self {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/rezef-webhook.toml");
        let mut settings: Settings =
            rezef_adapter::service::load(Some(&file), "REZEF_WEBHOOK_TEST_").expect("loads");
        let spool = tempfile::tempdir().expect("dir");
        settings.rezef.address = rezef_url.to_owned();
        settings.spool.dir = spool.path().to_path_buf();
        adjust(&mut settings);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("an address");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            rezef_webhook::run(settings, listener, shutdown)
                .await
                .expect("the adapter runs");
        });
        Self {
            addr,
            _stop: stop,
            _spool: spool,
        }
    }

    /// POSTs `body` to `path` signed with the example's secret (`signature` None), or with
    /// `signature` (`Some(None)`: no header); the status and the body as JSON.
    async fn post(&self, path: &str, body: &str, signature: Option<Option<&str>>) -> (u16, Value) {
        let computed = format!("sha256={}", sign_hex(SECRET, body.as_bytes()));
        let header = match signature {
            None => format!("X-Helpdesk-Signature: {computed}\r\n"),
            Some(Some(given)) => format!("X-Helpdesk-Signature: {given}\r\n"),
            Some(None) => String::new(),
        };
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: hooks.example.com\r\n\
             Content-Type: application/json\r\n{header}\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let (status, text) = self.send(&request).await;
        let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, json)
    }

    async fn send(&self, request: &str) -> (u16, String) {
        let mut stream = TcpStream::connect(self.addr).await.expect("connect");
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut answer = Vec::new();
        // A server refusing a body it has not read may reset the connection after answering.
        if let Err(error) = stream.read_to_end(&mut answer).await {
            assert!(!answer.is_empty(), "no answer: {error}");
        }
        let answer = String::from_utf8_lossy(&answer).into_owned();
        let status = answer[9..12].parse().expect("a status line");
        let body = answer
            .split_once("\r\n\r\n")
            .map_or("", |(_, b)| b)
            .to_owned();
        (status, body)
    }

    /// The counter or gauge `name` at `/metrics`.
    async fn metric(&self, name: &str) -> f64 {
        let request = "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        let (_, text) = self.send(request).await;
        (text.lines())
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{name} in {text}"))
    }
}

/// The customer's journey once `ready` holds (within 20 s).
async fn journey_when(
    server: &RezefServer,
    ready: impl Fn(&proto::Journey) -> bool,
) -> proto::Journey {
    let customer = rezef_adapter::identity_ref(proto::IdentityKind::Email, EMAIL);
    rezef_scenarios::journey_when(&mut server.client().await, TENANT, customer, ready).await
}

fn ticket(journey: &proto::Journey) -> Option<&proto::Interaction> {
    (journey.conversations.iter())
        .flat_map(|c| &c.interactions)
        .find(|i| i.interaction_id == "35436")
}

/// The helpdesk's new ticket becomes an interaction on web chat with its intent, context and
/// the customer's message; `ticket.solved` ends it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_helpdesk_ticket_becomes_the_customers_journey() {
    let data = tempfile::tempdir().expect("dir");
    let server = RezefServer::start(data.path()).await;
    let adapter = Adapter::start(&server.url(), |_| {}).await;

    let (status, answer) = adapter
        .post("/hooks/helpdesk", &fixture().to_string(), None)
        .await;
    assert_eq!(status, 202, "{answer}");
    let delivery = "01JEX7Q4M8R2T6V0W3Y5Z7A9BC";
    assert_eq!(
        answer["accepted"],
        json!(
            ["opened", "category", "account", "comment"]
                .map(|e| format!("webhook:helpdesk:{e}:{delivery}"))
        )
    );

    let solved = json!({
        "id": "01JEX9B0C1D2E3F4G5H6J7K8LM",
        "type": "ticket.solved",
        "time": "2026-12-07T09:30:00Z",
        "account": { "subdomain": "acme" },
        "ticket": { "id": 35436, "channel": "web", "requester": { "email": EMAIL } },
    });
    let (status, answer) = adapter
        .post("/hooks/helpdesk", &solved.to_string(), None)
        .await;
    assert_eq!(status, 202, "{answer}");

    let journey = journey_when(&server, |j| {
        ticket(j).is_some_and(|i| i.stage == proto::Stage::Ended as i32)
    })
    .await;
    let conversation = &journey.conversations[0];
    let interaction = ticket(&journey).expect("the ticket");
    assert_eq!(interaction.channel, proto::Channel::Webchat as i32);
    assert_eq!(interaction.direction, proto::Direction::Inbound as i32);
    assert_eq!(
        conversation.intent.as_ref().map(|i| i.intent.as_str()),
        Some("tech_support.connectivity")
    );
    let account = (conversation.context.iter())
        .find(|c| c.key == "account_number")
        .expect("the account number in the context");
    assert_eq!(account.value, "ACC-88231");
    let message = conversation.transcript.first().expect("the comment");
    assert_eq!(
        message.text,
        "Since the upgrade my router drops the connection every hour."
    );
}

/// A helpdesk sending the same delivery again (no answer in time) gets the same ids, and
/// the server applies its events once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_post_twice_is_applied_once() {
    let data = tempfile::tempdir().expect("dir");
    let server = RezefServer::start(data.path()).await;
    let adapter = Adapter::start(&server.url(), |_| {}).await;
    let body = fixture().to_string();
    let (first_status, first) = adapter.post("/hooks/helpdesk", &body, None).await;
    let (again_status, again) = adapter.post("/hooks/helpdesk", &body, None).await;
    assert_eq!((first_status, again_status), (202, 202));
    assert_eq!(first, again);

    let journey = journey_when(&server, |j| {
        j.counters
            .as_ref()
            .is_some_and(|c| c.duplicates_ignored == 4)
    })
    .await;
    let counters = journey.counters.expect("counters");
    assert_eq!((counters.interactions, counters.messages), (1, 1));
    assert_eq!(journey.conversations[0].transcript.len(), 1);
}

/// A wrong or missing signature is 401 and publishes nothing; so is a signature over
/// another body. (No server needed.)
#[tokio::test]
async fn a_bad_signature_is_401_and_nothing_is_published() {
    let adapter = Adapter::start(&format!("http://127.0.0.1:{}", free_port()), |_| {}).await;
    let body = fixture().to_string();
    let other = format!("sha256={}", sign_hex(SECRET, b"{}"));
    let wrong = format!("sha256={}", sign_hex("not-the-secret", body.as_bytes()));
    for signature in [
        Some(other.as_str()),
        Some(wrong.as_str()),
        Some("sha256=zz"),
        None,
    ] {
        let (status, answer) = adapter
            .post("/hooks/helpdesk", &body, Some(signature))
            .await;
        assert_eq!(status, 401, "{signature:?}: {answer}");
        assert!(answer["error"].is_string(), "{answer}");
    }
    assert_eq!(
        adapter.metric("rezef_adapter_events_accepted_total").await,
        0.0
    );
    let (status, _) = adapter.post("/hooks/helpdesk", &body, None).await;
    assert_eq!(status, 202);
    assert_eq!(
        adapter.metric("rezef_adapter_events_accepted_total").await,
        4.0
    );
}

/// A body lacking what the mapping needs is 400 naming the path; one that is no JSON 400;
/// an unknown route 404; nothing published. (No server needed.)
#[tokio::test]
async fn an_unmapped_body_is_400_naming_the_path() {
    let adapter = Adapter::start(&format!("http://127.0.0.1:{}", free_port()), |_| {}).await;
    let mut body = fixture();
    body["ticket"]["requester"] = json!({ "name": "Dana Levi" });
    let (status, answer) = adapter
        .post("/hooks/helpdesk", &body.to_string(), None)
        .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["path"], "/ticket/requester/email");
    assert!(
        (answer["error"].as_str()).is_some_and(|e| e.contains("/ticket/requester/email")),
        "{answer}"
    );

    let (status, answer) = adapter.post("/hooks/helpdesk", "{\"id\": ", None).await;
    assert_eq!(status, 400, "{answer}");
    let (status, _) = adapter.post("/hooks/elsewhere", "{}", None).await;
    assert_eq!(status, 404);

    let ignored = json!({ "id": "x", "type": "ticket.viewed" });
    let (status, answer) = adapter
        .post("/hooks/helpdesk", &ignored.to_string(), None)
        .await;
    assert_eq!((status, answer), (200, json!({ "accepted": [] })));
    assert_eq!(
        adapter.metric("rezef_adapter_events_accepted_total").await,
        0.0
    );
}

/// A body over `max_body_bytes` is 413; with Rezef away and the spool full, 503.
#[tokio::test]
async fn an_oversized_body_is_413_and_a_full_spool_503() {
    let adapter = Adapter::start(&format!("http://127.0.0.1:{}", free_port()), |s| {
        s.webhook.max_body_bytes = 256;
        s.spool.max_bytes = 2000;
    })
    .await;
    let big = json!({ "padding": "x".repeat(300) }).to_string();
    let (status, answer) = adapter.post("/hooks/helpdesk", &big, None).await;
    assert_eq!(status, 413, "{answer}");

    let small = json!({
        "id": "d-1",
        "type": "ticket.solved",
        "time": "2026-12-07T09:30:00Z",
        "account": { "subdomain": "acme" },
        "ticket": { "id": 1, "channel": "web", "requester": { "email": EMAIL } },
    });
    let mut statuses = Vec::new();
    for n in 0..40 {
        let mut body = small.clone();
        body["id"] = json!(format!("d-{n}"));
        statuses.push(
            adapter
                .post("/hooks/helpdesk", &body.to_string(), None)
                .await
                .0,
        );
    }
    assert_eq!(statuses[0], 202);
    assert_eq!(statuses.last(), Some(&503), "{statuses:?}");
}
