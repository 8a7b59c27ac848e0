//! A rebuild over several partitions of the embedded log (`log.partitions`), each folded on
//! a core of its own, against the same log in one partition, in the same run.
//!
//! Why: one projector folds one partition on one thread (with its decoding and checkpoint
//! writing beside it), so a log of one partition leaves cores idle. Partitions of one node
//! fold side by side, as `rezef rebuild` and `rezef serve` run them. The same workload (same
//! seed) is loaded once per partition count, each event in the partition Ingest puts it in
//! (`Partitioner::event`); the workload names customers by id, so no event belongs to two
//! partitions and nothing is handed over. Every count's rebuild runs the server's way: a
//! sled store per partition behind the projection in memory, one journey cache for the node.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rezef_events::partition::Partitioner;
use rezef_log::Log;
use rezef_record::sealed::Sealing;
use rezef_store::{
    AlreadySent, CachedStore, DEFAULT_DEDUP_WINDOW, JourneyCache, JourneyStore, Partitioning,
    SledStore, rebuild,
};

use crate::harness::{
    CpuSampler, Report, Target, mib, ms, proc_status_bytes, reset_peak_rss, temp_dir, thousands,
};
use crate::projection::{Loaded, SettingsArgs, TARGET_EVENTS_PER_S, load_over, open_log};
use crate::workload::Workload;

#[derive(Debug, Clone, clap::Args)]
pub struct PartitionsArgs {
    /// Events to load and rebuild, for each partition count.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1_000..=10_000_000))]
    pub events: u64,
    /// Distinct customers the events are spread over.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub customers: u64,
    /// The partition counts, in the order they run; the first is the baseline.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    pub partitions: Vec<u32>,
    #[command(flatten)]
    pub settings: SettingsArgs,
}

/// One partition count's rebuild.
#[derive(Debug)]
struct Run {
    partitions: u32,
    loaded: Loaded,
    records: u64,
    elapsed: Duration,
    cpu: Option<(f64, f64)>,
    peak_rss: Option<u64>,
    /// Records of the fullest partition ÷ of the emptiest.
    skew: f64,
}

impl Run {
    fn per_s(&self) -> f64 {
        self.records as f64 / self.elapsed.as_secs_f64()
    }
}

pub async fn run(base: &Path, args: &PartitionsArgs) -> Result<Report> {
    let mut runs = Vec::new();
    for &partitions in &args.partitions {
        eprintln!("  {partitions} partition(s)");
        runs.push(one(base, args, partitions).await?);
    }
    let baseline = runs.first().context("no partition counts given")?;
    let mut report = Report::new(format!(
        "partitions: rebuild of {} events over {} customers, by partition count",
        thousands(args.events as f64),
        thousands(args.customers as f64)
    ));
    for run in &runs {
        report.row(
            format!("{} partition(s): **rebuild**", run.partitions),
            format!(
                "**{} events/s** ({} records in {} s; {:.2}× of {} partition(s); cores: this \
                 process / others {}; peak RSS {}; fullest ÷ emptiest partition {:.3}); loaded \
                 in {} s with fsync: false (not the figure)",
                thousands(run.per_s()),
                thousands(run.records as f64),
                ms(run.elapsed.as_secs_f64()),
                run.per_s() / baseline.per_s().max(1e-9),
                baseline.partitions,
                run.cpu.map_or_else(
                    || "n/a".into(),
                    |(own, others)| format!("{own:.2} / {others:.2}")
                ),
                run.peak_rss.map_or_else(|| "n/a".into(), mib),
                run.skew,
                ms(run.loaded.elapsed.as_secs_f64())
            ),
        );
    }
    let best = (runs.iter()).max_by(|a, b| a.per_s().total_cmp(&b.per_s()));
    let best = best.context("no runs")?;
    report.headline(
        format!(
            "{} events/s on {} partition(s) vs {} on {}",
            thousands(best.per_s()),
            best.partitions,
            thousands(baseline.per_s()),
            baseline.partitions
        ),
        "n/a (batch rebuild)",
    );
    report.target(Target::at_least(
        format!("projection (rebuild), {} partition(s)", best.partitions),
        best.per_s(),
        TARGET_EVENTS_PER_S,
        "events/s",
    ));
    report.note(
        "Each count loads the same events (same seed) into a fresh data directory, then \
         rebuilds every partition at once into its own sled store, under the server's default \
         [projection] settings and one journey cache for the node; the figure is all records \
         over the time until the last partition is flushed.",
    );
    Ok(report)
}

/// Loads the workload over `partitions` partitions and rebuilds them side by side.
async fn one(base: &Path, args: &PartitionsArgs, partitions: u32) -> Result<Run> {
    let dir = temp_dir(base, "rezef-bench-partitions-")?;
    let count = std::num::NonZeroU32::new(partitions).context("0 partitions")?;
    let logs = (0..partitions)
        .map(|p| open_log(&dir.path().join(format!("log/p{p}"))))
        .collect::<Result<Vec<_>>>()?;
    let mut workload = Workload::new(args.customers, 0x9e0);
    let loaded = load_over(&logs, &mut workload, args.events, &Sealing::default()).await?;
    let sizes: Vec<u64> = logs.iter().map(|log| log.end_offset()).collect();
    let (fullest, emptiest) = (sizes.iter().max(), sizes.iter().min());
    let skew = match (fullest, emptiest) {
        (Some(&fullest), Some(&emptiest)) => fullest as f64 / emptiest.max(1) as f64,
        _ => 1.0,
    };

    let config = args.settings.config();
    let cache = JourneyCache::new(config.cache_bytes);
    let peak_reset = reset_peak_rss();
    let sampler = CpuSampler::start();
    let started = Instant::now();
    let rebuilds = (0..partitions).zip(&logs).map(|(partition, log)| {
        let store_dir = dir.path().join(format!("store/p{partition}"));
        let (config, cache) = (config.clone(), cache.clone());
        let partitioning = (partitions > 1).then(|| Partitioning {
            partitioner: Partitioner::new(count),
            partition,
            relay: Arc::new(AlreadySent),
        });
        let log: Arc<dyn Log> = log.clone();
        async move {
            let sled = SledStore::open_with_cache(&store_dir, config.store_cache_bytes);
            let below: Arc<dyn JourneyStore> = Arc::new(sled.context("opening a store")?);
            let projection = Arc::new(CachedStore::sharing(below, config, cache)?);
            let policies = Default::default();
            let stats = rebuild(
                (log, Default::default()),
                projection,
                policies,
                partitioning,
                DEFAULT_DEDUP_WINDOW,
                |_| {},
            );
            anyhow::Ok(stats.await.context("rebuilding")?)
        }
    });
    let stats = futures::future::try_join_all(rebuilds).await?;
    let elapsed = started.elapsed();
    let cpu = sampler.and_then(|s| s.finish());
    let peak_rss = peak_reset.then(|| proc_status_bytes("VmHWM")).flatten();
    for log in &logs {
        log.close().await;
    }
    Ok(Run {
        partitions,
        loaded,
        records: stats.iter().map(|s| s.records).sum(),
        elapsed,
        cpu,
        peak_rss,
        skew,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_event_is_rebuilt_whatever_the_partition_count() {
        let dir = tempfile::tempdir().expect("dir");
        let args = PartitionsArgs {
            events: 4_000,
            customers: 200,
            partitions: vec![1, 3],
            settings: Default::default(),
        };
        for partitions in [1, 3] {
            let run = one(dir.path(), &args, partitions).await.expect("a run");
            assert_eq!((run.loaded.events, run.records), (4_000, 4_000));
            assert!(run.skew >= 1.0, "{run:?}");
        }
    }
}
