//! What sealing personal values costs the load and the rebuild (issue 19: at most 10% each,
//! against the same benchmark without it, in the same run).
//!
//! One process loads the same workload into a fresh log and rebuilds it into a fresh store,
//! alternately plain and sealed (plain, sealed, plain, sealed, ...): the two see the same
//! machine state and allocator, and drift on a shared machine hits both alike. Sealed, the
//! records are made as the server makes them on the embedded log (`Sealing::encode_all` per
//! append, making the batch's new keys in a `FileKeyStore` of the run, one fsync), and the
//! rebuild opens them with that key store, as a node's projector does.
//!
//! Ingest over gRPC is not compared here: the server seals every append on the embedded log,
//! with no switch to turn it off (BENCHMARKS.md compares two builds for it).

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use rezef_keys::FileKeyStore;
use rezef_record::sealed::Sealing;
use rezef_store::JourneyStore;

use crate::harness::{CpuSampler, Report, Target, median, ms, segment_bytes, temp_dir, thousands};
use crate::projection::{Rebuilt, SettingsArgs, load_over, open_log, timed_rebuild};
use crate::workload::Workload;

/// The bar: sealing may take at most this share of the plain throughput.
pub const MAX_OVERHEAD: f64 = 0.10;

/// Journeys whose messages are checked after a rebuild: a sealed one opened their texts.
const CHECKED_JOURNEYS: usize = 1000;

#[derive(Debug, Clone, clap::Args)]
pub struct SealCostArgs {
    /// Events to load and rebuild in each run.
    #[arg(long, default_value_t = 500_000, value_parser = clap::value_parser!(u64).range(1_000..=10_000_000))]
    pub events: u64,
    /// Distinct customers the events are spread over.
    #[arg(long, default_value_t = 50_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub customers: u64,
    /// Pairs of runs (plain, then sealed).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub rounds: u32,
    #[command(flatten)]
    pub settings: SettingsArgs,
}

/// How a run encodes its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Plain,
    /// Sealed into a new key store: the first batches make most keys (one fsync each).
    NewKeys,
    /// Sealed again with the key store the previous run filled: every key is known, so no
    /// batch writes the store (returning customers).
    KnownKeys,
}

impl Mode {
    const ALL: [Mode; 3] = [Mode::Plain, Mode::NewKeys, Mode::KnownKeys];

    fn name(self) -> &'static str {
        match self {
            Mode::Plain => "plain",
            Mode::NewKeys => "sealed, new keys",
            Mode::KnownKeys => "sealed, keys known",
        }
    }
}

/// A figure of a run.
type Rate = fn(&Run) -> f64;

/// One load and rebuild's figures.
struct Run {
    mode: Mode,
    load_per_s: f64,
    rebuild_per_s: f64,
}

pub async fn run(base: &Path, args: &SealCostArgs) -> Result<Report> {
    let dir = temp_dir(base, "rezef-bench-seal-cost-")?;
    let mut report = Report::new(format!(
        "seal-cost: load and rebuild of {} events over {} customers, plain and sealed alternated",
        thousands(args.events as f64),
        thousands(args.customers as f64)
    ));
    let mut runs = Vec::new();
    for round in 1..=args.rounds {
        let keys = FileKeyStore::open(&dir.path().join(format!("keys-{round}")));
        let keys = Sealing::under(Arc::new(keys.context("the key store")?));
        for mode in Mode::ALL {
            let sealing = match mode {
                Mode::Plain => Sealing::default(),
                Mode::NewKeys | Mode::KnownKeys => keys.clone(),
            };
            let run_dir = dir.path().join(format!("{round}-{mode:?}"));
            let (run, described) = one(&run_dir, args, mode, sealing).await?;
            report.row(format!("round {round}, {}", mode.name()), described);
            std::fs::remove_dir_all(&run_dir).context("removing a run's data")?;
            runs.push(run);
        }
    }

    let median_of = |mode: Mode, rate: Rate| {
        let rates: Vec<f64> = runs.iter().filter(|r| r.mode == mode).map(rate).collect();
        median(&rates)
    };
    let phases: [(&str, Rate); 2] = [("load", |r| r.load_per_s), ("rebuild", |r| r.rebuild_per_s)];
    let mut headline = Vec::new();
    for (phase, rate) in phases {
        let plain = median_of(Mode::Plain, rate);
        for mode in [Mode::NewKeys, Mode::KnownKeys] {
            let sealed = median_of(mode, rate);
            let overhead = 1.0 - sealed / plain;
            let plains = runs.iter().filter(|r| r.mode == Mode::Plain);
            let rounds: Vec<String> = (plains.zip(runs.iter().filter(|r| r.mode == mode)))
                .map(|(p, s)| format!("{:.1}%", 100.0 * (1.0 - rate(s) / rate(p))))
                .collect();
            report.row(
                format!(
                    "**{phase}, {}: medians plain / sealed, cost (1 − sealed ÷ plain)**",
                    mode.name()
                ),
                format!(
                    "**{} / {} events/s, {:.1}%** (round by round: {})",
                    thousands(plain),
                    thousands(sealed),
                    100.0 * overhead,
                    rounds.join(", ")
                ),
            );
            report.target(Target::at_most(
                format!("sealing's cost of {phase} throughput ({})", mode.name()),
                100.0 * overhead,
                100.0 * MAX_OVERHEAD,
                "%",
            ));
            headline.push(format!("{phase} {}: {:.1}%", mode.name(), 100.0 * overhead));
        }
    }
    report.headline(
        format!("sealing's cost: {}", headline.join("; ")),
        "n/a (batch load and rebuild)",
    );
    report.note(
        "Each run loads the same workload (same seed, so the same customers) into a fresh log, \
         appended with fsync: false (the key store's fsyncs count in a sealed load, as in a \
         server), then rebuilds it into a fresh sled store with the server's default \
         [projection] settings. A round runs plain, sealed into a new key store, then sealed \
         again over that store. Record bytes are the log's payloads, without its frames.",
    );
    Ok(report)
}

/// Loads and rebuilds in `run_dir`, encoding with `sealing`: the figures, and a line
/// describing them.
async fn one(
    run_dir: &Path,
    args: &SealCostArgs,
    mode: Mode,
    sealing: Sealing,
) -> Result<(Run, String)> {
    let cpu = CpuSampler::start();
    let log_dir = run_dir.join("log");
    let log = open_log(&log_dir)?;
    let mut workload = Workload::new(args.customers, 0x9e0);
    let loaded = load_over(
        std::slice::from_ref(&log),
        &mut workload,
        args.events,
        &sealing,
    );
    let loaded = loaded.await?;
    let log_bytes = segment_bytes(&log_dir)?;
    let Rebuilt {
        stats,
        elapsed,
        projection,
        ..
    } = timed_rebuild(
        &log,
        &run_dir.join("store"),
        args.settings.config(),
        sealing,
    )
    .await?;
    log.close().await;
    if stats.undecodable > 0 {
        bail!("{} records could not be read", stats.undecodable);
    }
    let (messages, empty) = messages(&*projection)?;
    if empty > 0 || messages == 0 {
        bail!("{empty} of {messages} messages read empty after the rebuild");
    }
    let run = Run {
        mode,
        load_per_s: loaded.events as f64 / loaded.elapsed.as_secs_f64(),
        rebuild_per_s: stats.records as f64 / elapsed.as_secs_f64(),
    };
    let per_event = |bytes: u64| bytes as f64 / loaded.events.max(1) as f64;
    let cores = cpu.and_then(|cpu| cpu.finish()).map_or_else(
        || "cores n/a".into(),
        |(own, others)| format!("cores: this {own:.2}, others {others:.2}"),
    );
    let described = format!(
        "load {} events/s (encoding {} µs/event); rebuild {} events/s ({} s, {} applied); record {:.0} B, log {:.0} B per event; {cores}",
        thousands(run.load_per_s),
        ms(loaded.encoding.as_secs_f64() * 1e6 / loaded.events.max(1) as f64),
        thousands(run.rebuild_per_s),
        ms(elapsed.as_secs_f64()),
        thousands(stats.applied as f64),
        per_event(loaded.bytes),
        per_event(log_bytes)
    );
    Ok((run, described))
}

/// The messages of the first journeys, and how many of them read empty: none, when the
/// rebuild opened the sealed texts (the workload's are never empty).
fn messages(projection: &dyn JourneyStore) -> Result<(usize, usize)> {
    let journeys = projection.journeys_after(None, CHECKED_JOURNEYS)?;
    let conversations = journeys.iter().flat_map(|j| &j.conversations);
    let messages = conversations.flat_map(|c| &c.transcript);
    Ok(messages.fold((0, 0), |(all, empty), message| {
        (all + 1, empty + usize::from(message.text.is_empty()))
    }))
}
