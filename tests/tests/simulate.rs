//! `rezef simulate` as a user runs it against `rezef serve`: the day it publishes is the day
//! `Insights.GetReport` reports (contacts, abandons, answered within target), and a customer
//! who came back on another channel has one conversation on both in `GetJourney`.

use std::time::{Duration, SystemTime};

use rezef_adapter::proto;
use rezef_scenarios::{RezefServer, rezef};
use rezef_simulate::{Config, simulate};

const TENANT: &str = "sim-bank";
/// 2026-11-30, a Monday: in the past, so the server takes every time as it is.
const DAY: &str = "2026-11-30";
const MIDNIGHT: u64 = 1_795_996_800;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulated_day_is_the_day_the_report_and_the_journeys_show() {
    // Given `rezef serve`, and the day the simulator makes for these settings
    let dir = tempfile::tempdir().expect("tempdir");
    let server = RezefServer::start(dir.path()).await;
    let day_start = SystemTime::UNIX_EPOCH + Duration::from_secs(MIDNIGHT);
    let mut config = Config::new(TENANT, day_start, 300, 6);
    config.seed = 5;
    let expected = simulate(&config).expect("valid").summary;
    assert!(expected.abandoned() > 0 && expected.cross_channel_customers > 0);

    // When `rezef simulate` publishes it
    let args = [
        "simulate",
        "--tenant",
        TENANT,
        "--contacts",
        "300",
        "--agents",
        "6",
        "--seed",
        "5",
        "--day",
        DAY,
        "--server",
        &server.url(),
    ];
    let output = rezef(&args, None);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    // Then it prints the summary of that day
    assert!(stdout.contains(&expected.to_string()), "{stdout}");
    assert!(
        stderr.contains(&format!("{0} of {0} events published", expected.events)),
        "{stderr}"
    );

    // and the day's report counts its contacts, abandons and answers within target
    let client = server.client().await;
    let ask = proto::GetReportRequest {
        tenant_id: TENANT.into(),
        from: Some(day_start.into()),
        to: Some((day_start + Duration::from_secs(86_400)).into()),
        interval: proto::ReportInterval::Day as i32,
        ..Default::default()
    };
    let mut row = proto::ReportRow::default();
    for _ in 0..120 {
        let rows = (client.insights().get_report(ask.clone()).await)
            .expect("a report")
            .into_inner()
            .rows;
        row = rows.into_iter().next().unwrap_or_default();
        if row.contacts >= expected.contacts {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(row.contacts, expected.contacts);
    let abandons: u64 = row.abandons.iter().map(|a| a.contacts).sum();
    assert_eq!(abandons, expected.abandoned());
    let journey_true = row.journey_true.unwrap_or_default();
    assert_eq!(journey_true.in_target, expected.answered_in_target);
    assert_eq!(row.callbacks_unreached, expected.callbacks_unreached);

    // And the customer who came back on another channel has one conversation on both
    let customer = expected
        .cross_channel_example
        .expect("a customer came back");
    let mut client = server.client().await;
    let by_id = proto::CustomerRef {
        r#ref: Some(proto::customer_ref::Ref::CustomerId(customer.clone())),
    };
    let journey = (client.journey(TENANT, by_id, None).await)
        .expect("the journey")
        .journey
        .expect("a journey");
    let conversations: Vec<_> = (journey.conversations.iter())
        .filter(|c| c.channels.len() > 1)
        .collect();
    assert_eq!(conversations.len(), 1, "{customer}: {journey:?}");
}

#[test]
fn settings_that_cannot_make_a_day_are_refused_by_name_before_anything_is_published() {
    let refused = |extra: &[&str]| {
        let mut args = vec![
            "simulate",
            "--tenant",
            TENANT,
            "--server",
            "http://127.0.0.1:9",
        ];
        args.extend(extra);
        let output = rezef(&args, None);
        assert!(!output.status.success(), "{extra:?} was accepted");
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    assert!(refused(&["--speed", "0"]).contains("--speed must be more than 0"));
    assert!(refused(&["--day", "2999-01-01"]).contains("--day is in the future"));
    assert!(refused(&["--day", "tomorrow"]).contains("not a day written YYYY-MM-DD"));
    assert!(refused(&["--contacts", "0"]).contains("contacts: must be 1 to 10,000,000"));
    assert!(refused(&["--agents", "0"]).contains("agents: must be 1 to 100,000"));
    assert!(refused(&["--today", "--day", DAY]).contains("cannot be used with"));
}

#[test]
fn out_writes_the_day_as_json_lines_that_rezef_publish_reads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("day.jsonl");
    let args = [
        "simulate",
        "--tenant",
        TENANT,
        "--contacts",
        "50",
        "--agents",
        "3",
        "--day",
        DAY,
        "--out",
        file.to_str().expect("a UTF-8 path"),
    ];
    let output = rezef(&args, None);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let read = std::fs::File::open(&file).expect("written");
    let events = rezef_adapter::jsonl::read_events(std::io::BufReader::new(read)).expect("valid");
    let day_start = SystemTime::UNIX_EPOCH + Duration::from_secs(MIDNIGHT);
    let config = Config::new(TENANT, day_start, 50, 3);
    assert_eq!(events, simulate(&config).expect("valid").events);
}
