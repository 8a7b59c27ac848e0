//! The dashboard in a real browser (issue 18, item 6): `rezef serve` with its dashboard, a
//! scripted day published over gRPC, and `tests/browser/dashboard.mjs` (playwright-core
//! driving Debian's chromium) checking that the page asks for an API key, then shows the API's
//! figures and follows one customer's tracker live while more events arrive, says the
//! connection is lost when the server is killed (`kill -9`) and resumes by itself when it is
//! started again on the same data and address, and stays readable (no overflow, the figures
//! on the screen, text contrast) on a phone, in the dark scheme and on a wall screen.
//! Screenshots are kept under `target/browser-screenshots/`.
//!
//! Needs node, `npm ci --prefix tests/browser` and chromium; `.ci/run` installs them and sets
//! `BROWSER_TESTS=1`. Without that variable the test says it is skipped and passes (as
//! the Kafka tests do without `KAFKA_BROKERS`); with it, anything missing is a failure.

use std::path::Path;
use std::time::{Duration, SystemTime};

use rezef_adapter::proto;
use rezef_events::Timestamp;
use rezef_events::event::AbandonPoint;
use rezef_events::testing::EventBuilder;
use rezef_proto::json::to_json;
use rezef_scenarios::browser::browser;
use rezef_scenarios::{RezefServer, free_port};

const TENANT: &str = "acme";
const TRACKED: &str = "+972501234567";
/// How long the browser may take for each step.
const STEP: Duration = Duration::from_secs(60);

fn now_secs() -> i64 {
    let since = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH);
    since
        .map_or(0, |d| d.as_secs())
        .try_into()
        .expect("a date after 1970")
}

fn caller(n: u32, started_secs: i64) -> EventBuilder {
    let start = Timestamp::from_unix_nanos(started_secs * 1_000_000_000);
    EventBuilder::phone(TENANT, &format!("+97250000000{n}"))
        .on(rezef_events::Channel::Voice, &format!("call-{n}"))
        .ids(&format!("day-{n}"))
        .starting_at(start)
}

/// Seconds of the UTC day the script needs behind it: its calls end before now, and the
/// page shows today only.
const SCRIPT_SECS: i64 = 400;

/// Now, at least [`SCRIPT_SECS`] into the UTC day (early in a day, waits until then).
async fn now_in_the_day() -> i64 {
    let into_day = now_secs().rem_euclid(86_400);
    if into_day < SCRIPT_SECS {
        let left = (SCRIPT_SECS - into_day).unsigned_abs();
        tokio::time::sleep(Duration::from_secs(left)).await;
    }
    now_secs()
}

/// The hour before now, or what has passed of the day if less (the same calls closer
/// together): answered calls in and out of target, abandons in the IVR and in the queue,
/// and the tracked caller waiting in the queue.
fn script(now: i64) -> (Vec<rezef_events::Event>, EventBuilder) {
    let wait = |b: &mut EventBuilder, secs| b.wait(Duration::from_secs(secs));
    let span = (now.rem_euclid(86_400) - 1).min(3600);
    let before = |sixths: i64| now - span * sixths / 6;
    let (mut quick, mut slow) = (caller(1, before(6)), caller(2, before(5)));
    let (mut ivr, mut queue) = (caller(3, before(4)), caller(4, before(3)));
    let mut events = vec![quick.started(), quick.queued("sales")];
    wait(&mut quick, 8);
    events.extend([quick.assigned("agent-1"), quick.ended()]);
    events.extend([slow.started(), slow.queued("billing")]);
    wait(&mut slow, 300);
    events.extend([slow.assigned("agent-2"), slow.ended()]);
    events.push(ivr.started());
    wait(&mut ivr, 45);
    events.push(ivr.abandoned(AbandonPoint::Ivr));
    events.extend([queue.started(), queue.queued("billing")]);
    wait(&mut queue, 90);
    events.push(queue.abandoned(AbandonPoint::Queue));
    let mut tracked = EventBuilder::phone(TENANT, TRACKED)
        .ids("tracked")
        .starting_at(Timestamp::from_unix_nanos((now - 180) * 1_000_000_000));
    events.push(tracked.started());
    wait(&mut tracked, 40);
    events.push(tracked.queued("sales"));
    (events, tracked)
}

async fn publish(client: &mut rezef_adapter::Client, events: &[rezef_events::Event]) {
    let batch = (events.iter())
        .map(|e| rezef_record::event_to_proto(e, None))
        .collect();
    let response = client.publish(batch).await.expect("published");
    let last = response.first_offset + u64::from(response.count) - 1;
    let tracked = rezef_adapter::identity_ref(proto::IdentityKind::Phone, TRACKED);
    (client.journey(TENANT, tracked, Some(last)).await).expect("projected");
}

fn timestamp(seconds: i64) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds, nanos: 0 }
}

/// The day's figures (from `midnight`) as the API answers them.
async fn report(client: &rezef_adapter::Client, midnight: i64) -> proto::GetReportResponse {
    let asked = proto::GetReportRequest {
        tenant_id: TENANT.into(),
        from: Some(timestamp(midnight)),
        to: Some(timestamp(midnight + 86_400)),
        ..Default::default()
    };
    (client.insights().get_report(asked).await)
        .expect("a report")
        .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_the_api_s_figures_follows_a_customer_and_resumes_after_a_kill() {
    let Some(browser) = browser("dashboard.mjs") else {
        return;
    };
    // Given `rezef serve` with API keys and its dashboard, and a scripted hour published
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().to_str().expect("a UTF-8 path");
    let key = |roles| {
        let args = ["--data-dir", data_dir, "--tenant", TENANT, "--role", roles];
        rezef_scenarios::create_key(&args)
    };
    let (writer, reader) = (key("adapter,channel,supervisor"), key("supervisor,auditor"));
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let routing = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/routing.toml");
    let routing = routing.to_str().expect("a UTF-8 path");
    let flags = ["--dashboard-listen", &listen, "--routing-config", routing];
    let server = (RezefServer::start_with(dir.path(), &flags).await).with_token(&writer);
    let mut client = server.client().await;
    let now = now_in_the_day().await;
    let (events, mut tracked) = script(now);
    publish(&mut client, &events).await;

    // And the day's figures as the API answers them
    let midnight = now - now.rem_euclid(86_400);
    let figures = report(&client, midnight).await;
    let day = &timestamp(midnight).to_string()[..10];

    // When the browser opens the page and tracks the caller
    let url = format!("http://{listen}/?tenant={TENANT}&day={day}");
    let expected = to_json(&figures);
    let env = [
        ("DASHBOARD_URL", url.as_str()),
        ("EXPECTED_REPORT", expected.as_str()),
        ("TRACK_PHONE", TRACKED),
        ("API_KEY", reader.as_str()),
    ];
    let mut page = browser.drive(&env, STEP);
    assert_eq!(
        page.next().as_deref(),
        Ok("tracking"),
        "the browser found the caller"
    );

    // Then, as the caller is answered (two minutes in the queue), the page follows
    tracked.wait(Duration::from_secs(120));
    publish(&mut client, &[tracked.assigned("agent-1")]).await;
    page.tell("published");
    assert_eq!(
        page.next().as_deref(),
        Ok("followed"),
        "the browser followed the caller"
    );

    // When the server is killed, the page says the connection is lost
    let grpc_port = server.port;
    server.kill9();
    assert_eq!(page.next().as_deref(), Ok("lost"), "the page saw it lost");

    // And when it is back on the same data and address with one more caller, the page
    // resumes by itself and shows the API's figures
    let back = RezefServer::start_on(grpc_port, dir.path(), &flags, None).await;
    let back = back.with_token(&writer);
    let mut client_back = back.client().await;
    let mut fifth = caller(5, now - 60);
    let mut more = vec![fifth.started(), fifth.queued("sales")];
    fifth.wait(Duration::from_secs(20));
    more.push(fifth.abandoned(AbandonPoint::Queue));
    publish(&mut client_back, &more).await;
    let figures_back = report(&client_back, midnight).await;
    page.tell(&format!("restarted {}", to_json(&figures_back)));

    // And it stays readable on a phone, in the dark and on a wall screen
    assert_eq!(
        page.next().as_deref(),
        Ok("done"),
        "the page resumed and is readable everywhere"
    );
    page.finish();
    drop(back);
}
