//! Projection throughput: how fast `rezef_store::rebuild` folds a large log into a fresh
//! sled store, and what the log and the store cost on disk and in memory.
//!
//! Why directly on an `EmbeddedLog` rather than over gRPC: the rebuild is what an operator
//! waits for after a format change or a lost store, and it must be measured alone. The load
//! phase is not the subject, so it appends with `fsync: false` (said in the report).
//!
//! After the rebuild, the same records are replayed through the pieces of a projection step
//! in memory (decode, fold, journey state encode/decode per step) so that the report shows
//! where the time goes without a profiler; the rest is the store itself.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use bytes::Bytes;
use rezef_events::{CustomerId, CustomerRef, Journey, codec};
use rezef_log::{EmbeddedLog, EmbeddedLogConfig, Log};
use rezef_store::{JourneyStore, ProjectionStats, STEP_RECORDS, SledStore, rebuild};

use crate::harness::{
    Report, Target, dir_size, mib, ms, proc_status_bytes, reset_peak_rss, segment_bytes, temp_dir,
    thousands,
};
use crate::workload::Workload;

/// The goal for projection.
pub const TARGET_EVENTS_PER_S: f64 = 200_000.0;

/// Events appended per log batch in the load phase.
const LOAD_BATCH: usize = 1000;

#[derive(Debug, Clone, clap::Args)]
pub struct ProjectionArgs {
    /// Events to load into the log and then project.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1_000..=10_000_000))]
    pub events: u64,
    /// Distinct customers the events are spread over.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub customers: u64,
    /// Skip the in-memory cost breakdown after the rebuild.
    #[arg(long)]
    pub no_breakdown: bool,
}

pub async fn run(base: &Path, args: &ProjectionArgs) -> Result<Report> {
    let dir = temp_dir(base, "rezef-bench-projection-")?;
    let log_dir = dir.path().join("log");
    let store_dir = dir.path().join("store");
    let log = open_log(&log_dir)?;

    // Load: realistic events, validated and encoded exactly as the Ingest service does.
    let loaded = load(&log, &mut Workload::new(args.customers, 0x9e0), args.events).await?;
    let (loaded, load_elapsed) = (loaded.events, loaded.elapsed);

    // Rebuild into a fresh store: the figure.
    let peak_reset = reset_peak_rss();
    let Rebuilt {
        stats,
        elapsed: rebuild_elapsed,
        store,
    } = timed_rebuild(&log, &store_dir).await?;
    let peak_rss = proc_status_bytes("VmHWM");
    let events_per_s = stats.records as f64 / rebuild_elapsed.as_secs_f64();

    let flushing = store.clone();
    tokio::task::spawn_blocking(move || flushing.flush())
        .await
        .context("flush panicked")?
        .context("flushing the store")?;
    let store_size = store.size_on_disk().context("store size")?;
    let (store_files, store_allocated) = dir_size(&store_dir)?;
    let log_bytes = segment_bytes(&log_dir)?;
    let per_event = |bytes: u64| format!("{:.0} B", bytes as f64 / stats.records.max(1) as f64);

    let mut report = Report::new(format!(
        "projection: rebuild of {} events over {} customers",
        thousands(args.events as f64),
        thousands(args.customers as f64)
    ));
    report.row(
        "load phase (not the figure)",
        format!(
            "{} events in {} s ({} events/s), log appended with fsync: false",
            thousands(loaded as f64),
            ms(load_elapsed.as_secs_f64()),
            thousands(loaded as f64 / load_elapsed.as_secs_f64())
        ),
    );
    report.row(
        "rebuild",
        format!(
            "{} records in {} s (applied {}, duplicates {}, undecodable {})",
            thousands(stats.records as f64),
            ms(rebuild_elapsed.as_secs_f64()),
            thousands(stats.applied as f64),
            stats.duplicates,
            stats.undecodable
        ),
    );
    report.row(
        "**projection throughput**",
        format!("**{} events/s**", thousands(events_per_s)),
    );
    report.row(
        "log on disk (segment files)",
        format!("{} = {} per event", mib(log_bytes), per_event(log_bytes)),
    );
    report.row(
        "store: SledStore::size_on_disk after flush",
        format!("{} = {} per event", mib(store_size), per_event(store_size)),
    );
    report.row(
        "store: files in its directory (length / allocated)",
        format!(
            "{} / {} = {} / {} per event",
            mib(store_files),
            mib(store_allocated),
            per_event(store_files),
            per_event(store_allocated)
        ),
    );
    report.row(
        "peak RSS of the process (VmHWM)",
        match peak_rss {
            Some(bytes) if peak_reset => format!("{} (during the rebuild)", mib(bytes)),
            Some(bytes) => format!(
                "{} (whole process: the peak could not be reset)",
                mib(bytes)
            ),
            None => "not reported by the kernel".into(),
        },
    );
    report.headline(
        format!(
            "{} events/s; log {} + store {} per event",
            thousands(events_per_s),
            per_event(log_bytes),
            per_event(store_size)
        ),
        "n/a (batch rebuild)",
    );
    report.target(Target::at_least(
        "projection (rebuild)",
        events_per_s,
        TARGET_EVENTS_PER_S,
        "events/s",
    ));
    report.note(
        "The log was just written, so the rebuild reads it from the page cache; sled's own \
         cache is 512 MiB. The store is not fsynced per step (by design: it is rebuilt from the log).",
    );

    if !args.no_breakdown {
        let records = log.read(0, usize::MAX).await.context("reading the log")?;
        let breakdown = tokio::task::spawn_blocking(move || breakdown(&records))
            .await
            .context("the breakdown panicked")??;
        let share = |part: Duration| {
            format!(
                "{} s = {:.0}% of the rebuild ({} µs/event)",
                ms(part.as_secs_f64()),
                100.0 * part.as_secs_f64() / rebuild_elapsed.as_secs_f64(),
                ms(part.as_secs_f64() * 1e6 / stats.records.max(1) as f64)
            )
        };
        report.row(
            "breakdown: JSON decode of every record (codec::decode)",
            share(breakdown.decode),
        );
        report.row(
            "breakdown: fold in memory (Journey::apply)",
            share(breakdown.fold),
        );
        report.row(
            "breakdown: journey state encode + decode, once per customer per step",
            share(breakdown.state),
        );
        let rest =
            rebuild_elapsed.saturating_sub(breakdown.decode + breakdown.fold + breakdown.state);
        report.row(
            "breakdown: the rest (sled reads, index writes, apply_batch, log reads)",
            share(rest),
        );
    }
    log.close().await;
    drop(store);
    Ok(report)
}

/// A log in `dir` for a benchmark's load phase: appends are not fsynced (the load is not
/// the figure).
pub fn open_log(dir: &Path) -> Result<Arc<EmbeddedLog>> {
    EmbeddedLog::open(EmbeddedLogConfig {
        fsync: false,
        ..EmbeddedLogConfig::new(dir)
    })
    .context("opening the log")
}

/// What a load phase appended.
#[derive(Debug, Clone, Copy)]
pub struct Loaded {
    pub events: u64,
    /// Of them, `customer_identified` events (identity links and proofs).
    pub identified: u64,
    pub elapsed: Duration,
}

/// Appends `events` events of `workload` to `log`, in batches, each validated and encoded
/// exactly as the Ingest service does.
pub async fn load(log: &EmbeddedLog, workload: &mut Workload, events: u64) -> Result<Loaded> {
    let started = Instant::now();
    let (mut loaded, mut identified) = (0u64, 0u64);
    while loaded < events {
        let size = usize::try_from(events - loaded)
            .unwrap_or(LOAD_BATCH)
            .min(LOAD_BATCH);
        let (_, batch) = workload.batch(size);
        let mut payloads = Vec::with_capacity(size);
        for event in batch {
            let event = rezef_server::convert::event_from_proto(event).map_err(|violations| {
                anyhow!("the workload made an invalid event: {violations:?}")
            })?;
            identified += u64::from(matches!(
                event.payload,
                rezef_events::Payload::CustomerIdentified { .. }
            ));
            payloads.push(Bytes::from(codec::encode(&event)));
        }
        loaded += log.append(payloads).await.context("appending")?.count as u64;
    }
    Ok(Loaded {
        events: loaded,
        identified,
        elapsed: started.elapsed(),
    })
}

/// A rebuild and what it took.
#[derive(Debug)]
pub struct Rebuilt {
    pub stats: ProjectionStats,
    pub elapsed: Duration,
    pub store: Arc<SledStore>,
}

/// Rebuilds the projection of `log` into a new store in `store_dir`, timed (the flush
/// `rebuild` ends with included).
pub async fn timed_rebuild(log: &Arc<EmbeddedLog>, store_dir: &Path) -> Result<Rebuilt> {
    let store = Arc::new(SledStore::open(store_dir).context("opening the store")?);
    let started = Instant::now();
    let stats = rebuild(log.clone(), store.clone(), Default::default(), None, |_| {})
        .await
        .context("rebuilding")?;
    Ok(Rebuilt {
        stats,
        elapsed: started.elapsed(),
        store,
    })
}

struct Breakdown {
    decode: Duration,
    fold: Duration,
    state: Duration,
}

/// Times the CPU work of a projection step without the store, over the same records and the
/// same step size as `Projector`.
fn breakdown(records: &[rezef_log::Record]) -> Result<Breakdown> {
    let started = Instant::now();
    let mut events = Vec::with_capacity(records.len());
    for record in records {
        events.push(codec::decode(&record.payload).context("decoding a record")?);
    }
    let decode = started.elapsed();

    let mut journeys: HashMap<CustomerId, Journey> = HashMap::new();
    let started = Instant::now();
    for (record, event) in records.iter().zip(&events) {
        let Some(CustomerRef::Id(customer)) = &event.customer else {
            continue;
        };
        let journey = journeys.entry(customer.clone()).or_insert_with(|| {
            Journey::new(event.tenant_id.clone(), customer.clone(), event.occurred_at)
        });
        journey.apply(record.offset, event);
    }
    let fold = started.elapsed();

    // Each step loads and stores every customer it touches: model that with the final states
    // (an upper bound on their size) and the real step boundaries.
    let started = Instant::now();
    for step in events.chunks(STEP_RECORDS) {
        let mut touched: Vec<&CustomerId> = step
            .iter()
            .filter_map(|event| match &event.customer {
                Some(CustomerRef::Id(customer)) => Some(customer),
                _ => None,
            })
            .collect();
        touched.sort_unstable();
        touched.dedup();
        for customer in touched {
            if let Some(journey) = journeys.get(customer) {
                let bytes = journey.to_bytes();
                let back = Journey::from_bytes(&bytes).context("journey state round trip")?;
                std::hint::black_box(back);
            }
        }
    }
    let state = started.elapsed();
    Ok(Breakdown {
        decode,
        fold,
        state,
    })
}
