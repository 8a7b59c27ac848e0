//! Projection throughput: how fast `rezef_store::rebuild` folds a large log into a fresh
//! sled store, and what the log and the store cost on disk and in memory.
//!
//! Why directly on an `EmbeddedLog` rather than over gRPC: the rebuild is what an operator
//! waits for after a format change or a lost store, and it must be measured alone. The load
//! phase is not the subject, so it appends with `fsync: false` (said in the report).
//!
//! The rebuild goes through the store the server uses: sled behind the projection in memory
//! (`CachedStore`), checkpointed. Beside it, in the same run, two baselines: the pure fold of
//! the same records in memory with no store at all (decode + `Journey::apply`), and sled's
//! raw batch insert of the same final journeys (what the checkpoints cannot go below).

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use bytes::Bytes;
use rezef_events::partition::Partitioner;
use rezef_events::{CustomerId, CustomerRef, Journey};
use rezef_log::{EmbeddedLog, EmbeddedLogConfig, Log};
use rezef_record::sealed::Sealing;
use rezef_store::{
    CachedStore, CheckpointObserver, DEFAULT_DEDUP_WINDOW, JourneyStore, ProjectionBatch,
    ProjectionConfig, ProjectionStats, SledStore, rebuild,
};

use crate::harness::{
    Latency, Report, Target, dir_size, mib, ms, proc_status_bytes, process_cpu, reset_peak_rss,
    segment_bytes, temp_dir, thousands,
};
use crate::workload::{Source, Workload};

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
    #[command(flatten)]
    pub settings: SettingsArgs,
}

/// `[projection]` settings a rebuild benchmark may change (each defaults to the server's).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SettingsArgs {
    /// `[projection] checkpoint_interval_ms` for the rebuild.
    #[arg(long)]
    pub checkpoint_interval_ms: Option<u64>,
    /// `[projection] checkpoint_dirty_mib` for the rebuild.
    #[arg(long)]
    pub checkpoint_dirty_mib: Option<u64>,
    /// `[projection] cache_mib` for the rebuild.
    #[arg(long)]
    pub cache_mib: Option<u64>,
    /// `[projection] store_cache_mib` (sled's page cache) for the rebuild.
    #[arg(long)]
    pub store_cache_mib: Option<u64>,
}

impl SettingsArgs {
    /// The server's projection settings, with the ones given on the command line.
    pub fn config(&self) -> ProjectionConfig {
        let defaults = ProjectionConfig::default();
        ProjectionConfig {
            checkpoint_dirty_bytes: (self.checkpoint_dirty_mib)
                .map_or(defaults.checkpoint_dirty_bytes, |mib| mib << 20),
            cache_bytes: self.cache_mib.map_or(defaults.cache_bytes, |mib| mib << 20),
            checkpoint_interval: (self.checkpoint_interval_ms)
                .map_or(defaults.checkpoint_interval, Duration::from_millis),
            store_cache_bytes: (self.store_cache_mib)
                .map_or(defaults.store_cache_bytes, |mib| mib << 20),
            ..defaults
        }
    }
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
    let rss_before = proc_status_bytes("VmRSS");
    let Rebuilt {
        stats,
        elapsed: rebuild_elapsed,
        store,
        ..
    } = timed_rebuild(&log, &store_dir, args.settings.config(), Sealing::default()).await?;
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
            Some(bytes) if peak_reset => format!(
                "{} (during the rebuild; {} when it began, the load phase's)",
                mib(bytes),
                rss_before.map_or_else(|| "unknown".into(), mib)
            ),
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
         cache is 512 MiB. The rebuild uses the server's default [projection] settings \
         (cache 512 MiB, checkpoints every 5 s or 128 MiB of changed journeys); the store is \
         fsynced once, at the end.",
    );

    drop(store);
    if !args.no_breakdown {
        let records = log.read(0, usize::MAX).await.context("reading the log")?;
        let (raw_dir, store_dir) = (dir.path().join("raw-sled"), store_dir.clone());
        let breakdown =
            tokio::task::spawn_blocking(move || breakdown(&records, &raw_dir, &store_dir))
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
            "baseline: decode of every record (rezef_record::decode, protobuf)",
            share(breakdown.decode),
        );
        report.row(
            "baseline: fold in memory, no store (Journey::apply)",
            share(breakdown.fold),
        );
        let pure = breakdown.decode + breakdown.fold;
        report.row(
            "**baseline: the pure fold (decode + fold), no store**",
            format!(
                "**{} events/s**; the rebuild reaches {:.2}× of it",
                thousands(stats.records as f64 / pure.as_secs_f64()),
                pure.as_secs_f64() / rebuild_elapsed.as_secs_f64()
            ),
        );
        report.row(
            "baseline: sled's raw batch insert of the same final journeys",
            format!(
                "{} journeys in {} s ({} journeys/s) = {}",
                thousands(breakdown.journeys as f64),
                ms(breakdown.raw_insert.as_secs_f64()),
                thousands(breakdown.journeys as f64 / breakdown.raw_insert.as_secs_f64()),
                share(breakdown.raw_insert)
            ),
        );
        let (keys, copy) = breakdown.every_key;
        report.row(
            "baseline: sled's raw insert of every key the rebuilt store holds, in key order",
            format!(
                "{} keys ({:.2} per event) in {} s ({} µs/key) = {}",
                thousands(keys as f64),
                keys as f64 / stats.records.max(1) as f64,
                ms(copy.as_secs_f64()),
                ms(copy.as_secs_f64() * 1e6 / keys.max(1) as f64),
                share(copy)
            ),
        );
    }
    log.close().await;
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
    /// The records' bytes (the log's frames not counted).
    pub bytes: u64,
    /// Of `elapsed`, the time spent encoding (and sealing) the records.
    pub encoding: Duration,
    /// Of them, `customer_identified` events (identity links and proofs).
    pub identified: u64,
    pub elapsed: Duration,
}

/// Appends `events` events of `workload` to `log`, in batches, each validated and encoded
/// exactly as the Ingest service does.
pub async fn load(
    log: &Arc<EmbeddedLog>,
    workload: &mut impl Source,
    events: u64,
) -> Result<Loaded> {
    load_over(
        std::slice::from_ref(log),
        workload,
        events,
        &Sealing::default(),
    )
    .await
}

/// As [`load`], over the partitions of a log: each event goes to the partition Ingest puts
/// it in (`Partitioner::event`), and each partition's share of a batch is encoded as the
/// server's `Backbone::seal` encodes an append (sealed when `sealing` has keys: making the
/// batch's new keys, one fsync of the key store).
pub async fn load_over(
    logs: &[Arc<EmbeddedLog>],
    workload: &mut impl Source,
    events: u64,
    sealing: &Sealing,
) -> Result<Loaded> {
    let count = u32::try_from(logs.len()).ok().and_then(NonZeroU32::new);
    let partitioner = Partitioner::new(count.context("no partitions to load")?);
    let started = Instant::now();
    let (mut loaded, mut identified, mut bytes) = (0u64, 0u64, 0u64);
    let mut encoding = Duration::ZERO;
    while loaded < events {
        let size = usize::try_from(events - loaded)
            .unwrap_or(LOAD_BATCH)
            .min(LOAD_BATCH);
        let batch = workload.events(size);
        let mut parts = vec![Vec::new(); logs.len()];
        for event in batch {
            let event = rezef_server::convert::event_from_proto(event).map_err(|violations| {
                anyhow!("the workload made an invalid event: {violations:?}")
            })?;
            identified += u64::from(matches!(
                event.payload,
                rezef_events::Payload::CustomerIdentified { .. }
            ));
            let partition = partitioner.event(&event) as usize;
            parts[partition].push(event);
        }
        for (log, events) in logs.iter().zip(parts) {
            if events.is_empty() {
                continue;
            }
            let began = Instant::now();
            let records = encode(sealing, events).await?;
            encoding += began.elapsed();
            bytes += records.iter().map(|r| r.len() as u64).sum::<u64>();
            loaded += log.append(records).await.context("appending")?.count as u64;
        }
    }
    Ok(Loaded {
        events: loaded,
        bytes,
        encoding,
        identified,
        elapsed: started.elapsed(),
    })
}

/// The records of an append, as `Backbone::seal` makes them: off the async threads when
/// sealing (making a key writes the key store).
async fn encode(sealing: &Sealing, events: Vec<rezef_events::Event>) -> Result<Vec<Bytes>> {
    let records = match sealing.keys() {
        Some(_) => {
            let sealing = sealing.clone();
            tokio::task::spawn_blocking(move || sealing.encode_all(events))
                .await
                .context("sealing panicked")?
        }
        None => sealing.encode_all(events),
    };
    let records = records.context("encoding the records")?;
    Ok(records.into_iter().map(Bytes::from).collect())
}

/// A rebuild and what it took.
#[derive(Debug)]
pub struct Rebuilt {
    pub stats: ProjectionStats,
    pub elapsed: Duration,
    /// The CPU time the process used meanwhile, every thread's ([`process_cpu`]).
    pub cpu: Option<Duration>,
    /// The sled store below the projection in memory.
    pub store: Arc<SledStore>,
    /// The projection in memory, as the rebuild left it.
    pub projection: Arc<CachedStore>,
    /// How long each batch the projector read took to fold (its step).
    pub steps: Latency,
    /// How many checkpoints it wrote, and their time in all (written beside the fold).
    pub checkpoints: (u64, Duration),
}

/// Rebuilds the projection of `log` into a new store in `store_dir`, timed (the flush
/// `rebuild` ends with included), through the projection in memory as the server does,
/// opening sealed records with `sealing`'s keys.
pub async fn timed_rebuild(
    log: &Arc<EmbeddedLog>,
    store_dir: &Path,
    config: ProjectionConfig,
    sealing: Sealing,
) -> Result<Rebuilt> {
    let store = SledStore::open_with_cache(store_dir, config.store_cache_bytes);
    let store = Arc::new(store.context("opening the store")?);
    let below: Arc<dyn JourneyStore> = store.clone();
    let projection = Arc::new(CachedStore::new(below, config).context("the cache")?);
    let checkpoints = Arc::new(Checkpoints::default());
    projection.observe_checkpoints(checkpoints.clone());
    let mut steps = Latency::new()?;
    let cpu_before = process_cpu();
    let started = Instant::now();
    let mut step_began = started;
    let stats = rebuild(
        (log.clone(), sealing),
        projection.clone(),
        Default::default(),
        None,
        DEFAULT_DEDUP_WINDOW,
        |_| {
            steps.record(step_began.elapsed());
            step_began = Instant::now();
        },
    )
    .await
    .context("rebuilding")?;
    let elapsed = started.elapsed();
    let cpu = process_cpu()
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before));
    Ok(Rebuilt {
        stats,
        elapsed,
        cpu,
        store,
        projection,
        steps,
        checkpoints: checkpoints.written(),
    })
}

/// The checkpoints a rebuild wrote, counted as they end.
#[derive(Debug, Default)]
struct Checkpoints {
    count: AtomicU64,
    micros: AtomicU64,
}

impl CheckpointObserver for Checkpoints {
    fn checkpoint(&self, took: Duration, _written: bool) {
        self.count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.micros.fetch_add(micros, Ordering::Relaxed);
    }
}

impl Checkpoints {
    fn written(&self) -> (u64, Duration) {
        let micros = self.micros.load(Ordering::Relaxed);
        (
            self.count.load(Ordering::Relaxed),
            Duration::from_micros(micros),
        )
    }
}

struct Breakdown {
    decode: Duration,
    fold: Duration,
    journeys: usize,
    raw_insert: Duration,
    /// Keys of the rebuilt store, and the time to insert them all into a fresh sled.
    every_key: (usize, Duration),
}

/// The baselines: the pure fold of the same records with no store, sled's raw batch
/// insert of the journeys it ends with into a fresh sled in `raw_dir`, and of every key of
/// the rebuilt store in `store_dir` (what a rebuild's checkpoints write cannot cost less).
fn breakdown(records: &[rezef_log::Record], raw_dir: &Path, store_dir: &Path) -> Result<Breakdown> {
    let started = Instant::now();
    let mut events = Vec::with_capacity(records.len());
    for record in records {
        events.push(rezef_record::decode(&record.payload).context("decoding a record")?);
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

    let raw = SledStore::open(raw_dir).context("opening the raw sled")?;
    let count = journeys.len();
    let journeys: Vec<Arc<Journey>> = journeys.into_values().map(Arc::new).collect();
    let started = Instant::now();
    for chunk in journeys.chunks(10_000) {
        raw.commit(ProjectionBatch {
            journeys: chunk.to_vec(),
            ..ProjectionBatch::default()
        })
        .context("raw insert")?;
    }
    raw.flush().context("raw flush")?;
    let raw_insert = started.elapsed();
    Ok(Breakdown {
        decode,
        fold,
        journeys: count,
        raw_insert,
        every_key: copy_every_key(store_dir, &raw_dir.with_extension("every-key"))?,
    })
}

/// Inserts every key of the sled in `from` into a fresh sled in `to`, one at a time in key
/// order, as a checkpoint's writer does: how many, and how long it took.
fn copy_every_key(from: &Path, to: &Path) -> Result<(usize, Duration)> {
    let source = sled::open(from).context("opening the rebuilt store")?;
    let entries = (source.iter())
        .collect::<sled::Result<Vec<_>>>()
        .context("reading the rebuilt store")?;
    let target = sled::open(to).context("opening a fresh sled")?;
    let started = Instant::now();
    for (key, value) in &entries {
        target.insert(key, value).context("raw insert")?;
    }
    target.flush().context("raw flush")?;
    Ok((entries.len(), started.elapsed()))
}
