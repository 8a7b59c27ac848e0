//! Reports over a month (issue 18: a 30-day report over 100 queues at 1,000,000 events, p99
//! ≤ 100 ms the aim). A contact centre's month is appended and folded through the real
//! projection (`month`), so the buckets are the ones a server would have; then
//! `JourneyStore::report` is called over and over for each shape, in process: what
//! `rezef.v1.Insights/GetReport` runs for each request (`report-load` calls it over gRPC).
//!
//! The baseline, in the same run: the same reports from every day bucket held in memory
//! (`rezef_measure::Buckets`, as the projection held them before retention), so the cost of
//! reading past buckets back from sled shows.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use rezef_events::{TenantId, Timestamp};
use rezef_measure::{Buckets, Grouping, Interval};
use rezef_store::JourneyStore;

use crate::harness::{Latency, Report, Target, mib, ms, proc_status_bytes, temp_dir, thousands};
use crate::month::{self, DAY_NANOS, MonthArgs};
use crate::workload::TENANT;

#[derive(Debug, Clone, clap::Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub month: MonthArgs,
    /// Seconds each report shape is called for (one call at a time).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub seconds: u64,
}

/// Calls `report` for `seconds` (at least five times), one call at a time.
fn timed(
    seconds: u64,
    mut report: impl FnMut() -> Result<usize>,
) -> Result<(Latency, Duration, usize)> {
    let mut latency = Latency::new()?;
    let (started, mut rows) = (Instant::now(), 0);
    while started.elapsed() < Duration::from_secs(seconds) || latency.count() < 5 {
        let call = Instant::now();
        rows = report()?;
        latency.record(call.elapsed());
    }
    Ok((latency, started.elapsed(), rows))
}

pub async fn run(base: &Path, args: &ReportArgs) -> Result<Report> {
    let dir = temp_dir(base, "rezef-bench-report-")?;
    // The month ends at last midnight: every event is in the past, as a log's would be.
    let midnight = Interval::Day.floor(Timestamp::now()).unix_nanos();
    let first = Timestamp::from_unix_nanos(midnight - args.month.days * DAY_NANOS);
    let month::Month {
        contacts,
        events: end,
        folded,
        sled,
        store,
        ..
    } = month::fill(dir.path(), &args.month, first).await?;

    // What memory would hold without retention: every bucket, its spreads' pairs 16 bytes
    // each (and 16 KiB each as dense HdrHistograms, the form before).
    let all = Timestamp::from_unix_nanos(i64::MIN)..Timestamp::MAX;
    let (mut stored, mut spreads, mut pairs) = (0u64, 0u64, 0u64);
    for width in [Interval::Quarter, Interval::Day] {
        for bucket in sled.buckets(None, width, all.clone()) {
            let (_, _, _, figures) = bucket?;
            stored += 1;
            spreads += figures.stations.values().filter(|s| s.count() > 0).count() as u64;
            pairs += figures
                .stations
                .values()
                .map(|s| s.buckets() as u64)
                .sum::<u64>();
        }
    }

    let tenant = TenantId::new(TENANT).map_err(|e| anyhow!("tenant: {e}"))?;
    let days = args.month.days.min(30);
    let month = Timestamp::from_unix_nanos(midnight - days * DAY_NANOS)
        ..Timestamp::from_unix_nanos(midnight);
    let week = Timestamp::from_unix_nanos(midnight - 7 * DAY_NANOS)..month.end;
    let by = |interval, queue| Grouping {
        interval,
        queue,
        ..Grouping::default()
    };
    let shapes = [
        (
            format!("{days} days by day"),
            month.clone(),
            by(Some(Interval::Day), false),
        ),
        (
            format!("{days} days by queue"),
            month.clone(),
            by(None, true),
        ),
        (
            format!("{days} days by day × queue"),
            month.clone(),
            by(Some(Interval::Day), true),
        ),
        (
            "7 days by quarter hour".to_string(),
            week,
            by(Some(Interval::Quarter), false),
        ),
        (
            format!("{days} days as one row"),
            month.clone(),
            by(None, false),
        ),
    ];
    // The baseline's buckets: every day bucket of the month in memory.
    let mut in_memory = Buckets::new(Interval::Day);
    for bucket in sled.buckets(Some(&tenant), Interval::Day, month.clone()) {
        let (_, _, key, figures) = bucket?;
        in_memory.restore(key, figures);
    }

    let mut report = Report::new(format!(
        "report: GetReport's work over {days} of {} days, {} queues, {} events",
        args.month.days,
        args.month.queues,
        thousands(end as f64)
    ));
    report.row(
        "month",
        format!(
            "{} contacts ({} events) over {} queues and {} days, folded and measured through \
             the projection in {} s ({} events/s)",
            thousands(contacts as f64),
            thousands(end as f64),
            args.month.queues,
            args.month.days,
            ms(folded.as_secs_f64()),
            thousands(end as f64 / folded.as_secs_f64())
        ),
    );
    report.row(
        "buckets in memory after the last checkpoint (retention)",
        format!(
            "{} of {} stored; process RSS {}",
            thousands(store.resident_buckets()? as f64),
            thousands(stored as f64),
            proc_status_bytes("VmRSS").map_or("unknown".into(), mib)
        ),
    );
    report.row(
        "without retention (every bucket in memory, as before)",
        format!(
            "{} buckets, {} non-empty spreads: {} of sparse spreads ({} pairs), \
             {} as dense HdrHistograms",
            thousands(stored as f64),
            thousands(spreads as f64),
            mib(pairs * 16),
            thousands(pairs as f64),
            mib(spreads * 16 * 1024)
        ),
    );
    for (n, (name, range, grouping)) in shapes.iter().enumerate() {
        let (latency, elapsed, rows) = timed(args.seconds, || {
            Ok(store.report(&tenant, range.clone(), *grouping)?.len())
        })?;
        report.row(
            format!("**{name}** ({rows} rows), memory over sled"),
            format!(
                "{}, {:.1} calls/s",
                latency.summary(),
                latency.count() as f64 / elapsed.as_secs_f64()
            ),
        );
        if n == 2 {
            report.target(Target::at_most(
                format!("{name}, {} queues: p99", args.month.queues),
                latency.ms(0.99),
                100.0,
                "ms",
            ));
        }
        if grouping.interval != Some(Interval::Quarter) {
            let (latency, elapsed, _) = timed(args.seconds.min(3), || {
                Ok(in_memory.report(range.clone(), *grouping)?.len())
            })?;
            report.row(
                format!("{name}, baseline: every day bucket in memory"),
                format!(
                    "{}, {:.1} calls/s",
                    latency.summary(),
                    latency.count() as f64 / elapsed.as_secs_f64()
                ),
            );
        }
    }
    report.note(
        "In process, one call at a time: the work of one GetReport request on one partition \
         (the server runs it on a blocking thread); gRPC and the response's encoding are not \
         included.",
    );
    Ok(report)
}
