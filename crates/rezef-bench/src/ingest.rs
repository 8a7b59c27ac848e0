//! Durable ingest over gRPC, and the disk's own limit measured in the same run.
//!
//! Why both: an events/s figure alone says little on an unknown disk. Every acknowledged
//! batch is `fdatasync`ed, so the floor is the disk's sync latency. Right after the gRPC run
//! (server stopped, so nothing else competes), one writer appends the same bytes to a file in
//! the same directory, in chunks the size of one batch's log frame, calling
//! `File::sync_data()` after each. The ratio of the two byte rates is the figure we track.
//! With several concurrent clients Rezef's group commit shares one fsync among several
//! batches and can beat that single-writer baseline; both raw numbers are reported.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use prost::Message;
use rezef_adapter::proto;

use crate::harness::{
    BenchServer, Latency, Report, Target, mb_per_s, ms, segment_bytes, thousands,
};
use crate::workload::{TENANT, Workload, customer_ref};

/// The goal for durable ingest with batches of 1,000.
pub const TARGET_EVENTS_PER_S: f64 = 100_000.0;

#[derive(Debug, Clone, clap::Args)]
pub struct IngestArgs {
    /// Events per publish batch.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub batch: u32,
    /// How long to publish (the raw-disk baseline is capped at the same time).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub seconds: u64,
    /// Concurrent publishing tasks, each on its own HTTP/2 connection.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub clients: u32,
    /// Distinct customers the events are spread over.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub customers: u64,
}

/// What the publishing tasks did together.
pub struct Published {
    pub latency: Latency,
    pub events: u64,
    pub batches: u64,
    pub request_bytes: u64,
    /// Time the tasks spent making events (not the server's).
    pub generating: Duration,
    /// From the start to the last acknowledgement.
    pub elapsed: Duration,
}

/// Publishes from one task per connection for `args.seconds`, batches of `args.batch`
/// events spread over `args.customers`.
pub async fn publish_for(
    connections: Vec<rezef_adapter::Client>,
    args: &IngestArgs,
) -> Result<Published> {
    let batch = args.batch as usize;
    let clients = connections.len() as u64;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let mut tasks = Vec::new();
    for (i, mut client) in connections.into_iter().enumerate() {
        let mut workload = Workload::part(args.customers, i as u64, clients, 0x1e57);
        tasks.push(tokio::spawn(async move {
            let mut result = TaskResult {
                latency: Latency::new()?,
                events: 0,
                batches: 0,
                request_bytes: 0,
                generating: Duration::ZERO,
                last_ack: Instant::now(),
            };
            while Instant::now() < deadline {
                let generated = Instant::now();
                let (_, events) = workload.batch(batch);
                let request = proto::PublishRequest {
                    events,
                    sequence: 0,
                };
                result.request_bytes += request.encoded_len() as u64;
                result.generating += generated.elapsed();
                let sent = Instant::now();
                let ack = client.publish(request.events).await.context("publish")?;
                result.last_ack = Instant::now();
                result.latency.record(result.last_ack - sent);
                result.events += u64::from(ack.count);
                result.batches += 1;
            }
            anyhow::Ok(result)
        }));
    }
    let mut published = Published {
        latency: Latency::new()?,
        events: 0,
        batches: 0,
        request_bytes: 0,
        generating: Duration::ZERO,
        elapsed: Duration::ZERO,
    };
    let mut last_ack = started;
    for task in tasks {
        let result = task.await.context("a publishing task panicked")??;
        published.latency.merge(&result.latency)?;
        published.events += result.events;
        published.batches += result.batches;
        published.request_bytes += result.request_bytes;
        published.generating += result.generating;
        last_ack = last_ack.max(result.last_ack);
    }
    published.elapsed = last_ack - started;
    Ok(published)
}

/// What one publishing task did.
struct TaskResult {
    latency: Latency,
    events: u64,
    batches: u64,
    request_bytes: u64,
    generating: Duration,
    last_ack: Instant,
}

/// The single-writer fsync baseline.
struct RawResult {
    bytes: u64,
    chunks: u64,
    elapsed: Duration,
    latency: Latency,
    capped: bool,
}

pub async fn run(base: &Path, args: &IngestArgs) -> Result<Report> {
    let batch = args.batch as usize;
    let server = BenchServer::start(base).await?;
    let connections = server.clients(args.clients as usize).await?;
    // A sentinel customer outside the workload's range, projected before the run: reading
    // its journey at the end tells the projection's position.
    let sentinel = args.customers;
    let mut probe = server.client().await?;
    let ack = probe
        .publish(vec![Workload::range(sentinel, 1, 0).next_for(sentinel)])
        .await
        .context("publishing the sentinel")?;
    probe
        .journey(TENANT, customer_ref(sentinel), Some(ack.first_offset))
        .await
        .context("waiting for the sentinel's projection")?;

    let Published {
        latency,
        events,
        batches,
        request_bytes,
        generating,
        elapsed,
    } = publish_for(connections, args).await?;

    // How far the projection, running in the same server, lagged when publishing stopped.
    let projected = probe
        .journey(TENANT, customer_ref(sentinel), None)
        .await
        .context("reading the sentinel's journey")?
        .projected_offset;

    let dir = server.stop().await?;
    let log_bytes = segment_bytes(&dir.path().join("log"))?;
    let chunk = usize::try_from(log_bytes / batches.max(1))
        .unwrap_or(usize::MAX)
        .max(1);
    let raw_dir = dir.path().to_path_buf();
    let cap = Duration::from_secs(args.seconds);
    let raw = tokio::task::spawn_blocking(move || raw_fsync(&raw_dir, chunk, log_bytes, cap))
        .await
        .context("the baseline writer panicked")??;

    let events_per_s = events as f64 / elapsed.as_secs_f64();
    let batches_per_s = batches as f64 / elapsed.as_secs_f64();
    let rezef_mb_s = mb_per_s(log_bytes as f64, elapsed);
    let raw_mb_s = mb_per_s(raw.bytes as f64, raw.elapsed);
    let raw_chunks_per_s = raw.chunks as f64 / raw.elapsed.as_secs_f64();

    let mut report = Report::new(format!(
        "ingest: batches of {batch}, {} client(s), {} s",
        args.clients, args.seconds
    ));
    report.row("events acknowledged (durable)", thousands(events as f64));
    report.row(
        "throughput",
        format!("{} events/s", thousands(events_per_s)),
    );
    report.row("batches/s", thousands(batches_per_s));
    report.row("publish latency (per batch)", latency.summary());
    report.row(
        "bytes per event (log frame / gRPC request)",
        format!(
            "{:.0} / {:.0}",
            log_bytes as f64 / events.max(1) as f64,
            request_bytes as f64 / events.max(1) as f64
        ),
    );
    report.row("Rezef log write rate", format!("{rezef_mb_s:.1} MB/s"));
    report.row(
        "raw fsync baseline (1 writer, chunk = 1 batch frame)",
        format!(
            "{raw_mb_s:.1} MB/s, {} chunks/s of {} KiB, sync_data {}{}",
            thousands(raw_chunks_per_s),
            chunk / 1024,
            raw.latency.summary(),
            if raw.capped {
                " (stopped at the time cap)"
            } else {
                ""
            }
        ),
    );
    report.row(
        "**ratio Rezef bytes/s ÷ raw fsync'd bytes/s**",
        format!("**{:.2}**", rezef_mb_s / raw_mb_s.max(1e-9)),
    );
    report.row(
        "batches/s ÷ raw chunks/s",
        format!("{:.2}", batches_per_s / raw_chunks_per_s.max(1e-9)),
    );
    // The log holds the sentinel and then the run's events.
    report.row(
        "projection lag when publishing stopped",
        format!(
            "{} events",
            thousands((events + 1).saturating_sub(projected) as f64)
        ),
    );
    report.note(format!(
        "Client and server share this process and its cores; generating the events took {} s \
         of client CPU ({} µs per event), outside the latency measurement but inside the \
         throughput window. The server's projector runs concurrently, as in production.",
        ms(generating.as_secs_f64()),
        ms(generating.as_secs_f64() * 1e6 / events.max(1) as f64),
    ));
    if args.clients > 1 {
        report.note(
            "With several clients, group commit shares one fdatasync among concurrent batches, \
             so a ratio above 1 is possible against the single-writer baseline.",
        );
    }
    report.headline(
        format!(
            "{} events/s; {rezef_mb_s:.1} MB/s vs raw fsync {raw_mb_s:.1} MB/s (ratio {:.2})",
            thousands(events_per_s),
            rezef_mb_s / raw_mb_s.max(1e-9)
        ),
        format!("batch {}", latency.summary()),
    );
    if batch == 1000 {
        report.target(Target::at_least(
            format!("ingest, batches of 1,000, {} client(s)", args.clients),
            events_per_s,
            TARGET_EVENTS_PER_S,
            "events/s",
        ));
    }
    Ok(report)
}

/// Appends `total` bytes to a new file in `dir` in chunks of `chunk` bytes, `sync_data` after
/// each, stopping early at `cap`. The file is removed afterwards.
fn raw_fsync(dir: &Path, chunk: usize, total: u64, cap: Duration) -> Result<RawResult> {
    let path = dir.join("raw-fsync-baseline.bin");
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    // Not zeros, in case anything below us compresses or deduplicates.
    let mut rng = crate::harness::Rng::new(42);
    let data: Vec<u8> = (0..chunk).map(|_| rng.next_u64() as u8).collect();
    let mut latency = Latency::new()?;
    let (mut bytes, mut chunks) = (0u64, 0u64);
    let started = Instant::now();
    let mut capped = false;
    while bytes < total {
        if started.elapsed() >= cap {
            capped = true;
            break;
        }
        let at = Instant::now();
        file.write_all(&data).context("writing the baseline file")?;
        file.sync_data().context("syncing the baseline file")?;
        latency.record(at.elapsed());
        bytes += chunk as u64;
        chunks += 1;
    }
    let elapsed = started.elapsed();
    drop(file);
    std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
    Ok(RawResult {
        bytes,
        chunks,
        elapsed,
        latency,
        capped,
    })
}
