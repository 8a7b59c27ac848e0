//! `rezef.v1.Insights/GetReport` over gRPC, loaded by h2load from another process, beside
//! `grpc.health.v1.Health/Check` on the same server (issue 18's report aim, over the wire).
//! `report` times the store's work in process; this adds what a caller sees: the request
//! checked, the work on a blocking thread, the rows converted and encoded (a month by day ×
//! queue is thousands of rows), HTTP/2, and several calls at once on the machine's 2 cores.
//!
//! The month (`month`) is folded into the data directory first, then a one-partition server
//! opens it, as `rezef serve` would, in this process; h2load drives it as in `grpc-load`.
//! The month ends an hour before the current quarter hour, so its last day is today (unless
//! the run starts before 01:00 UTC) and no event lies in the future. Each round loads
//! Health/Check, then the three reports; only ratios within a round mean something, as
//! client and server share the cores.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use prost::Message;
use rezef_adapter::proto;
use rezef_events::Timestamp;
use rezef_measure::Interval;

use self::table::{Call, table};
use crate::grpc_load::{self, H2load, Loaded};
use crate::harness::{BenchServer, Report, temp_dir, thousands};
use crate::month::{self, DAY_NANOS, MonthArgs};
use crate::workload::TENANT;

mod table;

/// How long the server may take to warm its cache from the month's store.
const WARM_UP_LIMIT: std::time::Duration = std::time::Duration::from_secs(300);
const QUARTER_NANOS: i64 = 15 * 60 * 1_000_000_000;

#[derive(Debug, Clone, clap::Args)]
pub struct ReportLoadArgs {
    #[command(flatten)]
    pub month: MonthArgs,
    /// HTTP/2 connections h2load opens (a report takes a core for a while: few by default).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub connections: u32,
    /// Streams in flight per connection (connections × streams calls in flight).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub streams: u32,
    /// Seconds each call is loaded for in each round (after 1 s of warm-up).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub seconds: u64,
    /// Rounds of Health/Check and the three reports.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub rounds: u32,
    /// The h2load binary (`apt-get install nghttp2-client`; `scripts/bench` installs it).
    #[arg(long, default_value = "h2load")]
    pub h2load: PathBuf,
}

/// The month's last contact arrives before `end`: an hour before the quarter hour `now` is
/// in, so that every contact has ended by now.
pub fn month_end(now: Timestamp) -> Timestamp {
    let quarter = Interval::Quarter.floor(now).unix_nanos();
    Timestamp::from_unix_nanos(quarter - 4 * QUARTER_NANOS)
}

/// The loaded reports of a month ending at `end`, by name: (a) the day of its last contact
/// (today) by 15 minutes by queue, (b) its last `days` (at most 30) whole days by day by
/// queue, (c) the same days as one row.
pub fn requests(end: Timestamp, days: i64) -> [(String, proto::GetReportRequest); 3] {
    let days = days.min(30);
    let today = Interval::Day
        .floor(Timestamp::from_unix_nanos(end.unix_nanos() - 1))
        .unix_nanos();
    let midnight = Interval::Day.floor(end).unix_nanos();
    let request = |from: i64, to: i64, interval: proto::ReportInterval, by_queue| {
        let time = |nanos| {
            let (seconds, nanos) = Timestamp::from_unix_nanos(nanos).to_parts();
            prost_types::Timestamp { seconds, nanos }
        };
        proto::GetReportRequest {
            tenant_id: TENANT.into(),
            from: Some(time(from)),
            to: Some(time(to)),
            interval: interval as i32,
            by_queue,
            ..Default::default()
        }
    };
    let month = midnight - days * DAY_NANOS;
    [
        (
            "today by 15 minutes by queue".into(),
            request(
                today,
                today + DAY_NANOS,
                proto::ReportInterval::QuarterHour,
                true,
            ),
        ),
        (
            format!("{days} days by day by queue"),
            request(month, midnight, proto::ReportInterval::Day, true),
        ),
        (
            format!("{days} days as one row"),
            request(month, midnight, proto::ReportInterval::Unspecified, false),
        ),
    ]
}

/// A month folded and served, with its reports checked.
struct Served {
    server: BenchServer,
    /// Health/Check, then each report of [`requests`], answered with rows.
    calls: Vec<Call>,
    contacts: u64,
    events: u64,
    folded: std::time::Duration,
    warm_up: std::time::Duration,
}

/// Folds a month ending at `end` into a new data directory under `base`, opens a server on
/// it, and asks it each report once through the real client.
async fn serve(base: &Path, args: &MonthArgs, end: Timestamp) -> Result<Served> {
    let dir = temp_dir(base, "rezef-bench-report-load-")?;
    let first = Timestamp::from_unix_nanos(end.unix_nanos() - args.days * DAY_NANOS);
    let month = month::fill(dir.path(), args, first).await?;
    let (contacts, events, folded) = (month.contacts, month.events, month.folded);
    // The server opens the log and the store itself: let go of them first.
    month.log.close().await;
    drop(month);

    let server = BenchServer::open(dir).await?;
    let (warm_up, _) = server.warmed(WARM_UP_LIMIT).await?;
    let client = server.client().await?;
    let mut calls = vec![Call::new("grpc.health.v1.Health/Check".into(), Vec::new())];
    // Every request must be answered OK, with rows, before it is loaded: h2load sees only
    // HTTP statuses, not gRPC ones.
    for (name, request) in requests(end, args.days) {
        let answer = (client.insights().get_report(request.clone()).await)
            .with_context(|| format!("GetReport, {name}"))?
            .into_inner();
        if answer.rows.is_empty() {
            bail!("GetReport, {name}: no rows (was the month loaded before it?)");
        }
        let mut call = Call::new(name, request.encode_to_vec());
        call.answer = Some((answer.rows.len(), answer.encoded_len()));
        calls.push(call);
    }
    Ok(Served {
        server,
        calls,
        contacts,
        events,
        folded,
        warm_up,
    })
}

pub async fn run(base: &Path, args: &ReportLoadArgs) -> Result<Report> {
    let version = grpc_load::h2load_version(&args.h2load)?;
    let served = serve(base, &args.month, month_end(Timestamp::now())).await?;
    let Served {
        server,
        mut calls,
        contacts,
        events,
        folded,
        warm_up,
    } = served;

    let h2load = H2load {
        binary: args.h2load.clone(),
        connections: args.connections,
        streams: args.streams,
        seconds: args.seconds,
    };
    let files = tempfile::tempdir().context("a temp dir for h2load's files")?;
    for round in 1..=args.rounds {
        eprintln!("  round {round} of {}", args.rounds);
        for call in &mut calls {
            let path = if call.answer.is_some() {
                "rezef.v1.Insights/GetReport"
            } else {
                "grpc.health.v1.Health/Check"
            };
            let url = format!("{}/{path}", server.url());
            let loaded: Loaded = grpc_load::load(&h2load, files.path(), &url, &call.body, &[])
                .await
                .with_context(|| format!("h2load on {}", call.name))?;
            if loaded.requests == 0 {
                return Err(anyhow!(
                    "h2load completed no {} in round {round}",
                    call.name
                ));
            }
            call.rounds.push(loaded);
        }
    }
    server.stop().await?;

    let mut report = Report::new(format!(
        "report-load: GetReport over gRPC, h2load {} connections × {} streams, {} s per call, \
         {} rounds; {} events, {} queues, {} days",
        args.connections,
        args.streams,
        args.seconds,
        args.rounds,
        thousands(events as f64),
        args.month.queues,
        args.month.days
    ));
    report.row("load generator", version);
    report.row(
        "month",
        format!(
            "{} contacts ({} events), folded and measured in {:.1} s; the server warmed its \
             cache in {:.1} s",
            thousands(contacts as f64),
            thousands(events as f64),
            folded.as_secs_f64(),
            warm_up.as_secs_f64()
        ),
    );
    table(&mut report, &calls, args.month.queues);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: i64 = 60 * 1_000_000_000;
    /// 2026-12-06T00:00:00Z.
    const MIDNIGHT: i64 = 1_796_515_200 * 1_000_000_000;

    fn nanos(time: &Option<prost_types::Timestamp>) -> i64 {
        let time = time.as_ref().expect("set");
        time.seconds * 1_000_000_000 + i64::from(time.nanos)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_small_month_is_served_and_answers_every_report_with_rows() {
        // A week of 1,000 events over 5 queues, ending at 09:00 today.
        let base = tempfile::tempdir().expect("dir");
        let args = MonthArgs {
            events: 1_000,
            queues: 5,
            days: 7,
        };
        let today = Interval::Day.floor(Timestamp::now()).unix_nanos();
        let end = Timestamp::from_unix_nanos(today + 9 * 60 * MINUTE);
        let served = serve(base.path(), &args, end).await.expect("served");
        assert!(served.events >= 1_000, "{}", served.events);
        let names: Vec<&str> = served.calls.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "grpc.health.v1.Health/Check",
                "today by 15 minutes by queue",
                "7 days by day by queue",
                "7 days as one row"
            ]
        );
        let rows: Vec<usize> = (served.calls[1..].iter())
            .map(|c| c.answer.expect("answered").0)
            .collect();
        // Today's morning by quarter hour by queue, then 7 days (the first from 09:00) by
        // day: rows for some of the 5 queues and one for the contacts without a queue (IVR
        // abandons); the whole week in one row.
        assert!(rows[0] > 1 && rows[0] <= 36 * 6, "{rows:?}");
        assert!(rows[1] > 7 && rows[1] <= 7 * 6, "{rows:?}");
        assert_eq!(rows[2], 1);
        served.server.stop().await.expect("stopped");
    }

    #[test]
    fn the_month_ends_an_hour_before_the_current_quarter_hour() {
        let now = Timestamp::from_unix_nanos(MIDNIGHT + 10 * 60 * MINUTE + 7 * MINUTE + 5);
        let end = month_end(now);
        assert_eq!(end.unix_nanos(), MIDNIGHT + 9 * 60 * MINUTE);
    }

    #[test]
    fn the_reports_cover_the_last_day_and_the_whole_days_before_it_within_the_limits() {
        // A month ending at 09:00: today is the day it ends in.
        let end = Timestamp::from_unix_nanos(MIDNIGHT + 9 * 60 * MINUTE);
        let [(today_name, today), (by_day_name, by_day), (one_name, one)] = requests(end, 45);
        assert_eq!(
            (nanos(&today.from), nanos(&today.to)),
            (MIDNIGHT, MIDNIGHT + DAY_NANOS)
        );
        assert_eq!(today.interval, proto::ReportInterval::QuarterHour as i32);
        assert!(today.by_queue, "{today_name}");
        // 30 whole days (never more: the by-day shapes are issue 18's month), up to midnight.
        assert_eq!(by_day_name, "30 days by day by queue");
        for report in [&by_day, &one] {
            assert_eq!(
                (nanos(&report.from), nanos(&report.to)),
                (MIDNIGHT - 30 * DAY_NANOS, MIDNIGHT)
            );
            assert_eq!(report.tenant_id, TENANT);
        }
        assert_eq!(by_day.interval, proto::ReportInterval::Day as i32);
        assert!(by_day.by_queue);
        assert_eq!(one_name, "30 days as one row");
        assert_eq!(one.interval, proto::ReportInterval::Unspecified as i32);
        assert!(!one.by_queue && !one.by_channel && !one.by_intent);
    }

    #[test]
    fn a_month_ending_at_midnight_reports_the_day_before_as_today() {
        let [(_, today), (_, by_day), _] = requests(Timestamp::from_unix_nanos(MIDNIGHT), 7);
        // The last contact arrived before midnight: its day is the one before.
        assert_eq!(
            (nanos(&today.from), nanos(&today.to)),
            (MIDNIGHT - DAY_NANOS, MIDNIGHT)
        );
        assert_eq!(
            (nanos(&by_day.from), nanos(&by_day.to)),
            (MIDNIGHT - 7 * DAY_NANOS, MIDNIGHT)
        );
    }
}
