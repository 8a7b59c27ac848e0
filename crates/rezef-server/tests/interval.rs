//! `rezef.v1.Insights/WatchInterval` over real gRPC, on a manual clock in the scripted
//! morning: the first message holds the current interval's rows exactly as `GetReport` gives
//! them, a later one the figures after more events, and the next interval's (none yet) when
//! the clock passes the end; queue ids keep their rows only; a bad request names its field,
//! a role that may not read reports is refused, and a shutdown ends the stream UNAVAILABLE.

mod common;

use std::sync::Arc;
use std::time::Duration;

use rezef_adapter::proto;
use rezef_auth::{NewKey, Role, Scope};
use rezef_events::Event;
use rezef_server::{ManualClock, ServerConfig};
use tonic::{Code, Streaming};

use common::morning::{MIDNIGHT_SECS, TENANT, at, day, published_as, request};
use common::{Running, fields};

const QUARTER_SECS: i64 = 900;

/// A server whose clock reads `secs` into the scripted day.
async fn at_time(secs: i64) -> (Running, ManualClock) {
    let clock = ManualClock::new(at(MIDNIGHT_SECS + secs));
    let server = Running::start_with_clock(ServerConfig::default(), Arc::new(clock.clone())).await;
    (server, clock)
}

/// The scripted morning's events of call `n`.
fn call(n: u32) -> Vec<Event> {
    let id = format!("call-{n}");
    let of_call = |e: &Event| e.interaction_id.as_ref().is_some_and(|i| i.as_str() == id);
    day().into_iter().filter(of_call).collect()
}

fn watch(queue_ids: &[&str]) -> proto::WatchIntervalRequest {
    proto::WatchIntervalRequest {
        tenant_id: TENANT.into(),
        by_queue: true,
        queue_ids: queue_ids.iter().map(|q| (*q).to_owned()).collect(),
        ..Default::default()
    }
}

/// GetReport's rows for the quarter hour starting `secs` into the day, by queue.
async fn report(client: &rezef_adapter::Client, secs: i64) -> Vec<proto::ReportRow> {
    let from = MIDNIGHT_SECS + secs;
    let asked = proto::GetReportRequest {
        by_queue: true,
        ..request(
            from,
            from + QUARTER_SECS,
            proto::ReportInterval::QuarterHour,
        )
    };
    let answer = client.insights().get_report(asked).await.expect("report");
    answer.into_inner().rows
}

async fn next(stream: &mut Streaming<proto::IntervalUpdate>) -> proto::IntervalUpdate {
    let message = tokio::time::timeout(Duration::from_secs(10), stream.message()).await;
    (message.expect("a message within 10 s").expect("ok")).expect("the stream goes on")
}

fn start_secs(update: &proto::IntervalUpdate) -> i64 {
    update.start.expect("a start").seconds - MIDNIGHT_SECS
}

#[tokio::test]
async fn the_stream_gives_the_reports_rows_now_after_more_events_and_at_the_next_interval() {
    let nine = 9 * 3600;
    let (server, clock) = at_time(nine + 600).await;
    let client = published_as(&server, &call(1), "c-1").await;
    let mut stream = (client.insights().watch_interval(watch(&[])).await)
        .expect("watching")
        .into_inner();

    let first = next(&mut stream).await;
    assert_eq!((start_secs(&first), first.rolled_over), (nine, false));
    assert_eq!(
        first.end.expect("an end").seconds - MIDNIGHT_SECS,
        nine + QUARTER_SECS
    );
    assert_eq!(first.rows, report(&client, nine).await);
    assert_eq!(first.rows.len(), 1, "call 1, in sales: {:?}", first.rows);
    assert_eq!(first.rows[0].contacts, 1);

    // Call 2 arrives at 09:10 and ends at 09:15: counted in this interval.
    published_as(&server, &call(2), "c-2").await;
    let now = report(&client, nine).await;
    assert_eq!(now[0].contacts, 2);
    loop {
        let update = next(&mut stream).await;
        assert_eq!((start_secs(&update), update.rolled_over), (nine, false));
        if update.rows == now {
            break;
        }
    }

    clock.set(at(MIDNIGHT_SECS + nine + QUARTER_SECS));
    let rolled = next(&mut stream).await;
    assert_eq!(
        (start_secs(&rolled), rolled.rolled_over),
        (nine + QUARTER_SECS, true)
    );
    assert_eq!(rolled.rows, Vec::new(), "nothing arrived after 09:15");
    server.stop().await;
}

#[tokio::test]
async fn queue_ids_keep_those_queues_rows_only() {
    let ten = 10 * 3600;
    let (server, _clock) = at_time(ten + 600).await;
    // Call 3 gives up in the IVR (no queue), call 4 in the billing queue.
    let mut events = call(3);
    events.extend(call(4));
    let client = published_as(&server, &events, "c-4").await;
    let all = report(&client, ten).await;
    assert_eq!(all.len(), 2, "billing and no queue: {all:?}");

    let mut stream = (client.insights().watch_interval(watch(&["billing"])).await)
        .expect("watching")
        .into_inner();
    let first = next(&mut stream).await;
    let billing: Vec<_> = (all.into_iter())
        .filter(|row| row.queue_id.as_deref() == Some("billing"))
        .collect();
    assert_eq!(first.rows, billing);
    assert_eq!(first.rows.len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn bad_requests_name_the_field() {
    let (server, _clock) = at_time(9 * 3600).await;
    let client = server.client().await;
    let cases = [
        (
            proto::WatchIntervalRequest {
                tenant_id: String::new(),
                ..watch(&[])
            },
            "tenant_id",
        ),
        (
            proto::WatchIntervalRequest {
                interval: 9,
                ..watch(&[])
            },
            "interval",
        ),
        (
            proto::WatchIntervalRequest {
                by_queue: false,
                ..watch(&["billing"])
            },
            "queue_ids",
        ),
        (watch(&["billing", ""]), "queue_ids[1]"),
    ];
    for (asked, field) in cases {
        let status = (client.insights().watch_interval(asked).await).expect_err("refused");
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert_eq!(fields(&status), vec![field.to_owned()], "{status:?}");
    }
    server.stop().await;
}

#[tokio::test]
async fn supervisors_admins_and_auditors_watch_and_channels_may_not() {
    let acme = || Scope::Tenant(TENANT.into());
    let roles = [Role::Supervisor, Role::Admin, Role::Auditor, Role::Channel];
    let keys = roles.map(|role| NewKey::new(acme(), [role])).to_vec();
    let (server, tokens) = Running::with_keys(keys).await;
    for (role, token) in roles.iter().zip(&tokens) {
        let client = server.client_with(token).await;
        let answer = client.insights().watch_interval(watch(&[])).await;
        match role {
            Role::Channel => {
                let status = answer.expect_err("refused");
                assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
            }
            _ => {
                let mut stream = answer.expect("watching").into_inner();
                next(&mut stream).await;
            }
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn a_shutdown_ends_the_stream_unavailable() {
    let (server, _clock) = at_time(9 * 3600).await;
    let client = server.client().await;
    let mut stream = (client.insights().watch_interval(watch(&[])).await)
        .expect("watching")
        .into_inner();
    next(&mut stream).await;
    let stopped = tokio::spawn(server.stop());
    let ended = tokio::time::timeout(Duration::from_secs(10), stream.message()).await;
    let status = ended
        .expect("ended in time")
        .expect_err("an error, not the end");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    stopped.await.expect("stopped");
}
