//! GetJourney `as_of` for a customer with a long history (issue 19: p99 at 10,000 events),
//! beside GetJourney now for the same customer on the same server and client.
//!
//! The customer's calls ([`Workload::history`]: three events each) are published between
//! other customers' events, so that its history is spread over the log as a real one is.
//! One client then calls, in turn: GetJourney now, GetJourney as of a random point of the
//! customer's history (what it folds grows with the point: half the history on average),
//! and GetJourney as of its last event (the whole history folded again).

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rezef_adapter::proto;

use crate::harness::{BenchServer, Latency, Report, Rng, ms, thousands};
use crate::workload::{Source, TENANT, Workload, customer_ref};

/// Other customers' events published between two slices of the long history.
const NOISE_PER_SLICE: usize = 1_000;

#[derive(Debug, Clone, clap::Args)]
pub struct AsOfArgs {
    /// Events of the customer with the long history (three per call).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(30..=1_000_000))]
    pub events: u64,
    /// Other customers' events, spread between the long history's.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(0..=10_000_000))]
    pub others: u64,
    /// Other customers.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub customers: u64,
    /// How long to call.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub seconds: u64,
}

pub async fn run(base: &std::path::Path, args: &AsOfArgs) -> Result<Report> {
    let server = BenchServer::start(base).await?;
    let mut client = server.client().await?;
    let long = args.customers;
    let calls = u32::try_from(args.events / 3).context("--events")?;
    let offsets = publish(&mut client, args, long, calls).await?;
    let last = offsets.last().copied().context("no history published")?;
    let customer = customer_ref(long);
    client
        .journey(TENANT, customer.clone(), Some(last))
        .await
        .context("waiting for the projection")?;

    let mut report = Report::new(format!(
        "as-of: GetJourney as of a point, a customer with {} events among {} others' (1 client, alternating)",
        thousands(offsets.len() as f64),
        thousands(args.others as f64)
    ));
    let (mut now, mut random, mut whole) = (Latency::new()?, Latency::new()?, Latency::new()?);
    let mut rng = Rng::new(0xa5_0f);
    let end = last + 1;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(args.seconds) {
        let point = offsets[rng.below(offsets.len() as u64) as usize] + 1;
        for (as_of, latency) in [
            (None, &mut now),
            (Some(point), &mut random),
            (Some(end), &mut whole),
        ] {
            let as_of = as_of.map(|offset| proto::AsOf {
                point: Some(proto::as_of::Point::Offset(offset)),
            });
            let call = Instant::now();
            let answer = client
                .journey_as_of(TENANT, customer.clone(), None, as_of)
                .await;
            latency.record(call.elapsed());
            if answer
                .map_err(|e| anyhow::anyhow!("GetJourney: {e:?}"))?
                .journey
                .is_none()
            {
                bail!("GetJourney answered no journey");
            }
        }
    }
    report.row("GetJourney now (the baseline)", now.summary());
    report.row("as of a random point of the history", random.summary());
    report.row(
        format!(
            "as of its last event ({} events folded)",
            thousands(offsets.len() as f64)
        ),
        whole.summary(),
    );
    for (name, latency) in [("a random point", &random), ("the last event", &whole)] {
        report.row(
            format!("as of {name} ÷ now, p99"),
            format!(
                "{:.1}× ({} / {} ms)",
                latency.ms(0.99) / now.ms(0.99).max(1e-9),
                ms(latency.ms(0.99)),
                ms(now.ms(0.99))
            ),
        );
    }
    report.headline(
        format!("p99 {} ms as of 10k events", ms(whole.ms(0.99))),
        format!("p99 {} ms now", ms(now.ms(0.99))),
    );
    report.note(
        "An as-of read folds the customer's events up to the point again, by the projection's own \
         step, in memory (docs/audit.md): its time follows the customer's history, not the \
         log's length. Server and client share the machine.",
    );
    server.stop().await?;
    Ok(report)
}

/// Publishes the long history in slices, each after other customers' events; the long
/// customer's offsets (the last one is the log's last).
async fn publish(
    client: &mut rezef_adapter::Client,
    args: &AsOfArgs,
    long: u64,
    calls: u32,
) -> Result<Vec<u64>> {
    let history = Workload::new(long + 1, 0x19).history(long, calls);
    let slices = (args.others as usize / NOISE_PER_SLICE).max(1);
    let per_slice = history.len().div_ceil(slices);
    let mut others = Workload::new(args.customers, 0x91);
    let mut left = args.others as usize;
    let mut offsets = Vec::with_capacity(history.len());
    for slice in history.chunks(per_slice.max(1)) {
        let noise = others.events(left.min(NOISE_PER_SLICE));
        left -= noise.len();
        if !noise.is_empty() {
            (client.publish(noise).await).context("publishing others' events")?;
        }
        let ack = client
            .publish(slice.to_vec())
            .await
            .context("publishing the history")?;
        offsets.extend(ack.first_offset..ack.first_offset + u64::from(ack.count));
    }
    Ok(offsets)
}
