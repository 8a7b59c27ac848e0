//! The dashboard over real HTTP: its files with their types and security headers, and every
//! read answering exactly what the gRPC call answers (the same JSON, the same refusals as
//! HTTP statuses, by the same key), live streams included.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rezef_adapter::proto;
use rezef_auth::{NewKey, Role, Scope};
use rezef_events::event::AbandonPoint;
use rezef_events::testing::EventBuilder;
use rezef_events::{Channel, Event};
use rezef_proto::json::to_json;
use rezef_server::convert::event_to_proto;

use common::Running;

const TENANT: &str = "acme";
/// The UTC day of `EventBuilder`'s clock: 2023-11-14.
const DAY: (&str, &str) = ("2023-11-14T00:00:00Z", "2023-11-15T00:00:00Z");
const PHONE: &str = "+972501111111";

/// A call answered after the queue, and a caller who gave up in the IVR.
fn script() -> Vec<Event> {
    let mut answered = EventBuilder::phone(TENANT, PHONE).ids("a");
    let mut gave_up = (EventBuilder::phone(TENANT, "+972502222222"))
        .on(Channel::Voice, "call-2")
        .ids("b");
    let mut events = vec![answered.started(), answered.queued("sales")];
    answered.wait(Duration::from_secs(30));
    events.push(answered.assigned("agent-1"));
    events.push(gave_up.started());
    gave_up.wait(Duration::from_secs(50));
    events.push(gave_up.abandoned(AbandonPoint::Ivr));
    events
}

/// Publishes the script and waits until it is projected.
async fn published(server: &Running) -> rezef_adapter::Client {
    let mut client = server.client().await;
    let batch = script().iter().map(|e| event_to_proto(e, None)).collect();
    let response = client.publish(batch).await.expect("published");
    let last = response.first_offset + u64::from(response.count) - 1;
    (client.journey(TENANT, phone(), Some(last)).await).expect("projected");
    client
}

fn phone() -> proto::CustomerRef {
    rezef_adapter::identity_ref(proto::IdentityKind::Phone, PHONE)
}

fn report_request() -> proto::GetReportRequest {
    let time = |text: &str| text.parse::<prost_types::Timestamp>().expect("a time");
    proto::GetReportRequest {
        tenant_id: TENANT.into(),
        from: Some(time(DAY.0)),
        to: Some(time(DAY.1)),
        ..Default::default()
    }
}

/// One HTTP/1.1 exchange with the dashboard.
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
    key: Option<&str>,
) -> http::Response<Incoming> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connects");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(connection);
    let mut request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "rezef");
    if let Some(key) = key {
        request = request.header("authorization", format!("Bearer {key}"));
    }
    let request = request
        .body(Full::new(Bytes::from(body.to_owned())))
        .expect("a request");
    sender.send_request(request).await.expect("an answer")
}

async fn text(response: http::Response<Incoming>) -> String {
    let bytes = response.into_body().collect().await.expect("a body");
    String::from_utf8(bytes.to_bytes().to_vec()).expect("UTF-8")
}

fn header<'a>(response: &'a http::Response<Incoming>, name: &str) -> &'a str {
    (response.headers().get(name))
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// The next event of a stream: its name and data.
async fn next_event(body: &mut Incoming, buffer: &mut String) -> (String, String) {
    loop {
        if let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            if block.starts_with(':') {
                continue;
            }
            let mut lines = block.lines();
            let name = lines.next().and_then(|l| l.strip_prefix("event: "));
            let data = lines.next().and_then(|l| l.strip_prefix("data: "));
            return (name.expect("a name").into(), data.expect("data").into());
        }
        let frame = body.frame().await.expect("more events").expect("a frame");
        if let Ok(data) = frame.into_data() {
            buffer.push_str(std::str::from_utf8(&data).expect("UTF-8"));
        }
    }
}

#[tokio::test]
async fn the_page_is_served_with_its_types_and_a_strict_policy() {
    let server = Running::start_with(rezef_server::ServerConfig::default()).await;
    let addr = server.dashboard.expect("on by default");
    let files = [
        ("/", "text/html; charset=utf-8", "<main"),
        ("/app.js", "text/javascript; charset=utf-8", "import"),
        (
            "/style.css",
            "text/css; charset=utf-8",
            "prefers-reduced-motion",
        ),
    ];
    for (path, content_type, holds) in files {
        let response = http(addr, "GET", path, "", None).await;
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(header(&response, "content-type"), content_type, "{path}");
        assert_eq!(header(&response, "x-content-type-options"), "nosniff");
        let policy = header(&response, "content-security-policy");
        assert!(policy.contains("script-src 'self';"), "{policy}");
        assert!(!policy.contains("unsafe-inline"), "{policy}");
        assert!(text(response).await.contains(holds), "{path}");
    }
    let missing = http(addr, "GET", "/nothing-here", "", None).await;
    assert_eq!(missing.status(), 404);
    let posted = http(addr, "POST", "/app.js", "", None).await;
    assert_eq!(posted.status(), 405);
    let got = http(addr, "GET", "/api/report", "", None).await;
    assert_eq!(got.status(), 405);
    server.stop().await;
}

#[tokio::test]
async fn a_report_is_the_grpc_answer_and_a_bad_one_the_grpc_refusal() {
    let server = Running::start_with(rezef_server::ServerConfig::default()).await;
    let addr = server.dashboard.expect("on by default");
    let client = published(&server).await;
    let asked = report_request();
    let by_grpc = (client.insights().get_report(asked.clone()).await)
        .expect("a report")
        .into_inner();
    assert_eq!(by_grpc.rows.len(), 1, "{by_grpc:?}");

    let response = http(addr, "POST", "/api/report", &to_json(&asked), None).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-type"), "application/json");
    assert_eq!(header(&response, "cache-control"), "no-store");
    assert_eq!(text(response).await, to_json(&by_grpc));

    // `from` not on a quarter hour: the service's own refusal, naming the field.
    let bad = to_json(&asked).replace("00:00:00Z", "00:00:07Z");
    let response = http(addr, "POST", "/api/report", &bad, None).await;
    assert_eq!(response.status(), 400);
    let said: serde_json::Value = serde_json::from_str(&text(response).await).expect("JSON");
    assert_eq!(said["code"], "INVALID_ARGUMENT");
    assert!(
        said["message"]
            .as_str()
            .expect("a message")
            .contains("from"),
        "{said}"
    );
    let response = http(addr, "POST", "/api/report", "{\"tenant\":1}", None).await;
    assert_eq!(response.status(), 400);
    server.stop().await;
}

#[tokio::test]
async fn the_key_of_the_page_is_the_key_of_the_call() {
    let acme = || Scope::Tenant(TENANT.into());
    let keys = vec![
        NewKey::new(acme(), [Role::Supervisor]),
        NewKey::new(acme(), [Role::Adapter]),
        NewKey::new(Scope::Tenant("globex".into()), [Role::Supervisor]),
    ];
    let (server, tokens) = Running::with_keys(keys).await;
    let addr = server.dashboard.expect("on by default");
    let asked = to_json(&report_request());
    let cases = [
        (None, 401),
        (Some("rzf_not_a_key"), 401),
        (Some(tokens[1].as_str()), 403),
        (Some(tokens[2].as_str()), 403),
        (Some(tokens[0].as_str()), 200),
    ];
    for (key, status) in cases {
        let response = http(addr, "POST", "/api/report", &asked, key).await;
        assert_eq!(response.status(), status, "{key:?}");
        let live = http(addr, "POST", "/api/live", &asked, key).await;
        assert_eq!(live.status(), status, "live, {key:?}");
    }
    server.stop().await;
}

#[tokio::test]
async fn the_live_stream_starts_with_the_reports_and_the_tracker_with_the_customer() {
    let server = Running::start_with(rezef_server::ServerConfig::default()).await;
    let addr = server.dashboard.expect("on by default");
    let client = published(&server).await;
    let asked = report_request();
    let report = (client.insights().get_report(asked.clone()).await)
        .expect("a report")
        .into_inner();
    let by_quarter = proto::GetReportRequest {
        interval: proto::ReportInterval::QuarterHour.into(),
        ..asked.clone()
    };
    let spread = (client.insights().get_report(by_quarter).await)
        .expect("a report")
        .into_inner();

    let response = http(addr, "POST", "/api/live", &to_json(&asked), None).await;
    assert_eq!(header(&response, "content-type"), "text/event-stream");
    let (mut body, mut buffer) = (response.into_body(), String::new());
    let report_event = next_event(&mut body, &mut buffer).await;
    assert_eq!(report_event, ("report".into(), to_json(&report)));
    let spread_event = next_event(&mut body, &mut buffer).await;
    assert_eq!(spread_event, ("spread".into(), to_json(&spread)));
    // No routing configuration: Routing's own refusal, for both of its panels.
    let mut problems = vec![
        next_event(&mut body, &mut buffer).await,
        next_event(&mut body, &mut buffer).await,
    ];
    for (name, data) in &problems {
        assert_eq!(name, "problem");
        assert!(data.contains("FAILED_PRECONDITION"), "{data}");
    }
    problems.sort_by_key(|(_, data)| data.contains("\"source\":\"queues\""));
    assert!(
        problems[0].1.contains("\"source\":\"agents\""),
        "{problems:?}"
    );
    assert!(
        problems[1].1.contains("\"source\":\"queues\""),
        "{problems:?}"
    );

    let track = proto::TrackCustomerRequest {
        tenant_id: TENANT.into(),
        customer: Some(phone()),
    };
    let mut by_grpc = (client.insights().track_customer(track.clone()).await)
        .expect("tracking")
        .into_inner();
    let tracker = by_grpc.message().await.expect("a tracker").expect("one");
    let response = http(addr, "POST", "/api/track", &to_json(&track), None).await;
    let (mut body, mut buffer) = (response.into_body(), String::new());
    let event = next_event(&mut body, &mut buffer).await;
    assert_eq!(event, ("tracker".into(), to_json(&tracker)));

    let stranger = proto::TrackCustomerRequest {
        customer: Some(rezef_adapter::identity_ref(
            proto::IdentityKind::Email,
            "nobody@example.com",
        )),
        ..track
    };
    let response = http(addr, "POST", "/api/track", &to_json(&stranger), None).await;
    assert_eq!(response.status(), 404);
    server.stop().await;
}

/// Longer than the figures take to be read again after a change.
const SETTLE: Duration = Duration::from_millis(1500);

/// How many GetReport calls answered OK, as `/metrics` counts them (the dashboard's too).
async fn reports_read(metrics: SocketAddr) -> u64 {
    let scraped = text(http(metrics, "GET", "/metrics", "", None).await).await;
    let series = "rezef_grpc_requests_total{service=\"rezef.v1.Insights\",method=\"GetReport\",code=\"OK\"} ";
    (scraped.lines())
        .find_map(|line| line.strip_prefix(series))
        .map_or(0, |count| count.parse().expect("a count"))
}

/// The next `report` or `spread` event within `wait`, if any.
async fn next_figures(
    body: &mut Incoming,
    buffer: &mut String,
    wait: Duration,
) -> Option<(String, String)> {
    let figures = async {
        loop {
            let event = next_event(body, buffer).await;
            if event.0 == "report" || event.0 == "spread" {
                return event;
            }
        }
    };
    tokio::time::timeout(wait, figures).await.ok()
}

#[tokio::test]
async fn the_live_figures_are_read_again_only_when_a_projection_moved() {
    // Given a server counting its calls, a published script and the live stream open
    let config = rezef_server::ServerConfig {
        metrics: rezef_server::MetricsSettings {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        },
        ..rezef_server::ServerConfig::default()
    };
    let server = Running::start_with(config).await;
    let (addr, metrics) = (server.dashboard.expect("on"), server.metrics.expect("on"));
    let mut client = published(&server).await;
    let asked = report_request();
    let response = http(addr, "POST", "/api/live", &to_json(&asked), None).await;
    let (mut body, mut buffer) = (response.into_body(), String::new());
    let first = next_event(&mut body, &mut buffer).await;
    assert_eq!(first.0, "report");
    assert_eq!(next_event(&mut body, &mut buffer).await.0, "spread");

    // When nothing is projected for three seconds
    let idle = next_figures(&mut body, &mut buffer, Duration::from_secs(3)).await;

    // Then no figures are sent, nor even read again
    assert_eq!(idle, None, "nothing changed");
    assert_eq!(
        reports_read(metrics).await,
        2,
        "the report and the spread, once"
    );

    // When a third caller gives up in the IVR
    let mut third = (EventBuilder::phone(TENANT, "+972503333333"))
        .on(Channel::Voice, "call-3")
        .ids("c");
    let events = [third.started(), third.abandoned(AbandonPoint::Ivr)];
    let batch = events.iter().map(|e| event_to_proto(e, None)).collect();
    let published = client.publish(batch).await.expect("published");
    let third_ref = rezef_adapter::identity_ref(proto::IdentityKind::Phone, "+972503333333");
    let last = published.first_offset + 1;
    (client.journey(TENANT, third_ref, Some(last)).await).expect("projected");
    let projected = Instant::now();

    // Then the new figures arrive within about a second, as GetReport answers them
    let changed = next_figures(&mut body, &mut buffer, Duration::from_secs(3)).await;
    let (name, data) = changed.expect("sent within 3 s of the projection");
    println!(
        "the new figures came {:?} after the projection",
        projected.elapsed()
    );
    assert_eq!(name, "report");
    assert_ne!(data, first.1, "the figures changed");
    // ...read once, or twice if the batch was projected in two steps (a second apart)
    let mut sent = data;
    while let Some((name, data)) = next_figures(&mut body, &mut buffer, SETTLE).await {
        if name == "report" {
            sent = data;
        }
    }
    let read = reports_read(metrics).await;
    assert!([4, 6].contains(&read), "{read} reads");
    let now = (client.insights().get_report(asked).await)
        .expect("a report")
        .into_inner();
    assert_eq!(sent, to_json(&now));

    // The stream ends when the server shuts down.
    server.stop().await;
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(_)) = body.frame().await {}
    });
    ended.await.expect("the stream ended");
}

#[tokio::test]
async fn the_customer_s_history_is_the_audit_replay() {
    let server = Running::start_with(rezef_server::ServerConfig::default()).await;
    let addr = server.dashboard.expect("on by default");
    let client = published(&server).await;
    let asked = proto::ReplayHistoryRequest {
        tenant_id: TENANT.into(),
        customer: Some(phone()),
        limit: 100,
        ..Default::default()
    };
    let mut replay = (client.audit().replay_history(asked.clone()).await)
        .expect("a replay")
        .into_inner();
    let mut events = Vec::new();
    while let Some(event) = replay.message().await.expect("replayed") {
        events.push(to_json(&event));
    }
    assert_eq!(events.len(), 3);

    let response = http(addr, "POST", "/api/history", &to_json(&asked), None).await;
    assert_eq!(response.status(), 200);
    let expected = format!("{{\"events\":[{}]}}", events.join(","));
    assert_eq!(text(response).await, expected);

    let unbounded = proto::ReplayHistoryRequest { limit: 0, ..asked };
    let response = http(addr, "POST", "/api/history", &to_json(&unbounded), None).await;
    assert_eq!(response.status(), 400);
    assert!(text(response).await.contains("limit"));
    server.stop().await;
}

#[tokio::test]
async fn without_keys_the_dashboard_is_served_on_loopback_only() {
    let dir = tempfile::tempdir().expect("dir");
    let mut config = rezef_server::ServerConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        data_dir: dir.path().to_path_buf(),
        ..rezef_server::ServerConfig::default()
    };
    config.dashboard.listen = "0.0.0.0:0".parse().expect("addr");
    let refused = (rezef_server::Server::open(config.clone()).await)
        .expect_err("every tenant's data to anyone");
    assert!(
        refused.to_string().contains("0.0.0.0:0 without API keys"),
        "{refused}"
    );
    config.auth.insecure = true;
    drop(
        rezef_server::Server::open(config)
            .await
            .expect("insecure, as asked"),
    );
}
