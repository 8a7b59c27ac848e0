//! Read-after-write freshness: how long after a publish is acknowledged does `GetJourney`
//! show that event, under a steady load.
//!
//! Why it matters: an adapter that publishes "intent detected" and then routes the contact
//! reads the journey right away; the projection must be at that event by then. Batches of
//! 100 are published on a fixed 10 ms cadence (10,000 events/s by default), each in its own
//! task so that a slow fsync does not shift the schedule. For every batch, its last event is
//! the sample: as soon as the ack arrives, `GetJourney(min_offset = that offset)` is called
//! (the server waits until the projection has reached it) and ack→response is recorded. At the
//! same moment a probe without `min_offset`, on another connection, tells whether the
//! projection had already passed the event when the ack came back.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rezef_adapter::Client;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::harness::{BenchServer, Latency, Report, Target, thousands};
use crate::workload::{TENANT, Workload, customer_ref};

/// The goal for p99 of ack → visible in GetJourney, by publish rate: 20 ms up to 10,000
/// events/s, 50 ms above (issue 12 names 10,000 and 50,000 events/s).
pub fn target_p99_ms(rate: u64) -> f64 {
    if rate <= 10_000 { 20.0 } else { 50.0 }
}

/// Publishes allowed in flight before the schedule waits (a server that cannot keep up shows
/// as a lower achieved rate, not as an unbounded backlog).
const MAX_IN_FLIGHT: usize = 64;

#[derive(Debug, Clone, clap::Args)]
pub struct FreshnessArgs {
    /// Target publish rate, events/s.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(100..=1_000_000))]
    pub rate: u64,
    /// How long to publish.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub seconds: u64,
    /// Events per batch.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub batch: u32,
    /// Distinct customers the events are spread over.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub customers: u64,
}

struct Sample {
    events: u64,
    publish: Duration,
    fresh: Duration,
    already_projected: bool,
}

pub async fn run(base: &Path, args: &FreshnessArgs) -> Result<Report> {
    let batch = args.batch as usize;
    let server = BenchServer::start(base).await?;
    // Two connections carry the publishes and the timed reads; a third carries the probes.
    let publishers = server.clients(2).await?;
    let prober = server.client().await?;
    let period = Duration::from_secs_f64(batch as f64 / args.rate as f64);
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut workload = Workload::new(args.customers, 0xf7e5);
    let mut tasks = JoinSet::new();

    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let mut tick = 0usize;
    let mut samples = Vec::new();
    let mut failures = 0u64;
    while Instant::now() < deadline {
        ticker.tick().await;
        let permit = in_flight
            .clone()
            .acquire_owned()
            .await
            .context("semaphore closed")?;
        let (customers, events) = workload.batch(batch);
        let customer = customers.last().copied().unwrap_or(0);
        let client = publishers[tick % publishers.len()].clone();
        tick += 1;
        tasks.spawn(sample(client, prober.clone(), events, customer, permit));
        // Collect what is done, so that the set does not grow with the run.
        while let Some(done) = tasks.try_join_next() {
            match done.context("a sample task panicked")? {
                Ok(sample) => samples.push(sample),
                Err(_) => failures += 1,
            }
        }
    }
    let publishing = started.elapsed();
    while let Some(done) = tasks.join_next().await {
        match done.context("a sample task panicked")? {
            Ok(sample) => samples.push(sample),
            Err(_) => failures += 1,
        }
    }
    server.stop().await?;

    let mut fresh = Latency::new()?;
    let mut publish = Latency::new()?;
    let mut events = 0;
    let mut already = 0;
    for sample in &samples {
        fresh.record(sample.fresh);
        publish.record(sample.publish);
        events += sample.events;
        already += u64::from(sample.already_projected);
    }
    let mut report = Report::new(format!(
        "freshness: {} events/s in batches of {batch}, {} s",
        thousands(args.rate as f64),
        args.seconds
    ));
    report.row(
        "achieved publish rate",
        format!(
            "{} events/s",
            thousands(events as f64 / publishing.as_secs_f64())
        ),
    );
    report.row(
        "publish latency (per batch, to durable ack)",
        publish.summary(),
    );
    report.row("samples (one per batch)", thousands(samples.len() as f64));
    report.row(
        "**ack → visible in GetJourney**",
        format!("**{}**", fresh.summary()),
    );
    report.row("mean ack → visible", format!("{:.2} ms", fresh.mean_ms()));
    report.row(
        "already projected when the ack arrived (probe)",
        format!(
            "{:.1}% ({} of {})",
            100.0 * already as f64 / samples.len().max(1) as f64,
            thousands(already as f64),
            thousands(samples.len() as f64)
        ),
    );
    if failures > 0 {
        report.row(
            "failed samples (publish or read errors)",
            thousands(failures as f64),
        );
    }
    report.headline(
        format!(
            "{} events/s published; {:.1}% already projected at ack",
            thousands(events as f64 / publishing.as_secs_f64()),
            100.0 * already as f64 / samples.len().max(1) as f64
        ),
        format!("ack → visible {}", fresh.summary()),
    );
    report.target(Target::at_most(
        "freshness p99 (ack → GetJourney shows it)",
        fresh.ms(0.99),
        target_p99_ms(args.rate),
        "ms",
    ));
    Ok(report)
}

async fn sample(
    mut client: Client,
    mut prober: Client,
    events: Vec<rezef_adapter::proto::Event>,
    customer: u64,
    _permit: tokio::sync::OwnedSemaphorePermit,
) -> Result<Sample> {
    let sent = Instant::now();
    let ack = client.publish(events).await.context("publish")?;
    let acked = Instant::now();
    let offset = ack.first_offset + u64::from(ack.count).saturating_sub(1);
    let timed = async {
        let response = client
            .journey(TENANT, customer_ref(customer), Some(offset))
            .await;
        (response, Instant::now())
    };
    let ((timed, answered), probe) =
        tokio::join!(timed, prober.journey(TENANT, customer_ref(customer), None));
    timed.context("GetJourney with min_offset")?;
    // NOT_FOUND means the customer's first event is not projected yet: not fresh.
    let already_projected = probe.is_ok_and(|response| response.projected_offset > offset);
    Ok(Sample {
        events: u64::from(ack.count),
        publish: acked - sent,
        fresh: answered - acked,
        already_projected,
    })
}
