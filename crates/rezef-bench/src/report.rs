//! Reports over a month (issue 18: a 30-day report over 100 queues at 1,000,000 events, p99
//! ≤ 100 ms the aim). A contact centre's month is appended to an embedded log and folded
//! through the real projection (the projector, the projection in memory over sled, the
//! measurement in the same step, checkpoints letting go of old buckets), so the buckets are
//! the ones a server would have; then `JourneyStore::report` is called over and over for
//! each shape, in process: what `rezef.v1.Insights/GetReport` runs for each request.
//!
//! The baseline, in the same run: the same reports from every day bucket held in memory
//! (`rezef_measure::Buckets`, as the projection held them before retention), so the cost of
//! reading past buckets back from sled shows.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use bytes::Bytes;
use rezef_events::event::{AbandonPoint, Direction, EndReason, SCHEMA_VERSION};
use rezef_events::{
    AgentId, Channel, CustomerId, CustomerRef, Event, EventId, InteractionId, Payload, TenantId,
    Timestamp,
};
use rezef_log::Log;
use rezef_measure::{Buckets, Grouping, Interval};
use rezef_store::{CachedStore, JourneyStore, ProjectionConfig, Projector, SledStore};

use crate::harness::{
    Latency, Report, Rng, Target, mib, ms, proc_status_bytes, temp_dir, thousands,
};
use crate::projection::open_log;
use crate::workload::TENANT;

#[derive(Debug, Clone, clap::Args)]
pub struct ReportArgs {
    /// Events in the month's log (about five per contact).
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1_000..=10_000_000))]
    pub events: u64,
    /// Queues the contacts are spread over.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub queues: u64,
    /// Days the contacts are spread over (reports ask for 30 of them, or all if fewer).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(i64).range(7..=90))]
    pub days: i64,
    /// Seconds each report shape is called for (one call at a time).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub seconds: u64,
}

const DAY_NANOS: i64 = 86_400 * 1_000_000_000;

/// One contact's events in `queue`: `(seconds after arrival, payload)`.
fn contact(rng: &mut Rng, queue: &str) -> Result<Vec<(i64, Payload)>> {
    let started = Payload::InteractionStarted {
        direction: Direction::Inbound,
        identity: None,
        entry_point: "main".into(),
        language: None,
        continuation_token: None,
    };
    let ivr = 5 + rng.below(55) as i64;
    let abandoned = |point| Payload::ContactAbandoned { point };
    let queued = Payload::ContactQueued {
        queue_id: queue.into(),
        priority: 1,
        required_skills: Vec::new(),
        language: None,
    };
    Ok(match rng.below(100) {
        // Gave up in the IVR.
        0..5 => vec![(0, started), (ivr, abandoned(AbandonPoint::Ivr))],
        // Gave up in the queue.
        5..20 => vec![
            (0, started),
            (ivr, queued),
            (
                ivr + 5 + rng.below(300) as i64,
                abandoned(AbandonPoint::Queue),
            ),
        ],
        // Answered, mostly fast, a tenth after a long wait; wrapped up, a tenth surveyed.
        _ => {
            let wait = if rng.below(10) == 0 {
                120 + rng.below(780)
            } else {
                1 + rng.below(119)
            };
            let answered = ivr + wait as i64;
            let ended = answered + 60 + rng.below(840) as i64;
            let wrapped = ended + 30 + rng.below(90) as i64;
            let mut steps = vec![
                (0, started),
                (ivr, queued),
                (
                    answered,
                    Payload::ContactAssigned {
                        agent_id: AgentId::new(format!("agent-{}", rng.below(400)))
                            .map_err(anyhow::Error::msg)?,
                        queue_id: String::new(),
                    },
                ),
                (
                    ended,
                    Payload::InteractionEnded {
                        reason: Some(EndReason::Completed),
                    },
                ),
                (
                    wrapped,
                    Payload::WrapUpRecorded {
                        agent_id: None,
                        disposition: "done".into(),
                        need_resolved: rng.below(5) != 0,
                        notes: String::new(),
                    },
                ),
            ];
            if rng.below(10) == 0 {
                let survey = Payload::SurveyAnswered {
                    csat: Some(1 + rng.below(5) as u32),
                    nps: Some(rng.below(11) as u32),
                    effort: Some(1 + rng.below(7) as u32),
                    comment: String::new(),
                };
                steps.push((wrapped + 60, survey));
            }
            steps
        }
    })
}

/// Appends a month of contacts from `first` on, `args.events` events, each contact's events
/// together, the contacts in order of arrival. Returns the contacts.
async fn load(
    log: &Arc<rezef_log::EmbeddedLog>,
    args: &ReportArgs,
    first: Timestamp,
) -> Result<u64> {
    let tenant = TenantId::new(TENANT).map_err(|e| anyhow!("tenant: {e}"))?;
    let contacts = args.events / 5;
    let customers = (contacts / 4).max(1);
    let spacing = args.days * DAY_NANOS / contacts.max(1) as i64;
    let (mut rng, mut batch, mut appended) = (Rng::new(18), Vec::new(), 0u64);
    let mut n = 0u64;
    while appended + (batch.len() as u64) < args.events {
        let arrival = first.unix_nanos() + n as i64 * spacing;
        let queue = format!("queue-{:03}", rng.below(args.queues));
        let channel = if rng.below(5) == 0 {
            Channel::Webchat
        } else {
            Channel::Voice
        };
        let customer = CustomerId::new(format!("cust-{:07}", rng.below(customers)))
            .map_err(anyhow::Error::msg)?;
        for (i, (secs, payload)) in contact(&mut rng, &queue)?.into_iter().enumerate() {
            let event = Event {
                event_id: EventId::new(format!("month-{n}-{i}")).map_err(anyhow::Error::msg)?,
                tenant_id: tenant.clone(),
                occurred_at: Timestamp::from_unix_nanos(arrival + secs * 1_000_000_000),
                source: "bench".into(),
                schema_version: SCHEMA_VERSION,
                customer: Some(CustomerRef::Id(customer.clone())),
                conversation_id: None,
                interaction_id: Some(
                    InteractionId::new(format!("month-{n}")).map_err(anyhow::Error::msg)?,
                ),
                channel: Some(channel),
                forward: None,
                payload,
            };
            batch.push(Bytes::from(rezef_record::encode(&event)));
        }
        n += 1;
        if batch.len() >= 1000 {
            appended += log.append(std::mem::take(&mut batch)).await?.count as u64;
        }
    }
    if !batch.is_empty() {
        log.append(batch).await?;
    }
    Ok(n)
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
    let log = open_log(&dir.path().join("log"))?;
    // The month ends at last midnight: every event is in the past, as a log's would be.
    let midnight = Interval::Day.floor(Timestamp::now()).unix_nanos();
    let first = Timestamp::from_unix_nanos(midnight - args.days * DAY_NANOS);
    eprintln!("  loading {} events", thousands(args.events as f64));
    let contacts = load(&log, args, first).await?;

    let sled = Arc::new(SledStore::open(dir.path().join("store")).context("the store")?);
    let below: Arc<dyn JourneyStore> = sled.clone();
    let store = Arc::new(CachedStore::new(below, ProjectionConfig::default())?);
    eprintln!("  folding and measuring");
    let folding = Instant::now();
    let dyn_log: Arc<dyn Log> = log.clone();
    let mut projector = Projector::new(dyn_log, store.clone())?;
    let end = log.end_offset();
    projector.catch_up(end, |_| {}).await?;
    store.flush()?;
    let folded = folding.elapsed();

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
    let days = args.days.min(30);
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
    ];
    // The baseline's buckets: every day bucket of the month in memory.
    let mut in_memory = Buckets::new(Interval::Day);
    for bucket in sled.buckets(Some(&tenant), Interval::Day, month.clone()) {
        let (_, _, key, figures) = bucket?;
        in_memory.restore(key, figures);
    }

    let mut report = Report::new(format!(
        "report: GetReport's work over {days} of {} days, {} queues, {} events",
        args.days,
        args.queues,
        thousands(end as f64)
    ));
    report.row(
        "month",
        format!(
            "{} contacts ({} events) over {} queues and {} days, folded and measured through \
             the projection in {} s ({} events/s)",
            thousands(contacts as f64),
            thousands(end as f64),
            args.queues,
            args.days,
            ms(folded.as_secs_f64()),
            thousands(end as f64 / folded.as_secs_f64())
        ),
    );
    report.row(
        "buckets in memory after the last checkpoint (retention)",
        format!(
            "{} of {} stored; process RSS {}",
            thousands(store.resident_buckets() as f64),
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
                format!("{name}, {} queues: p99", args.queues),
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
