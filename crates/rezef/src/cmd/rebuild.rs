//! `rezef rebuild`: the journey store is a projection; delete it and fold the log again
//! (embedded, or the Kafka topic with `--log kafka`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use rezef_server::{LogBackend, LogPartition, ServerConfig};

use crate::config::{self, LogArgs, Overrides};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The data directory of a stopped server [default: ./rezef-data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    #[arg(long, env = "REZEF_CONFIG")]
    config: Option<PathBuf>,
    #[command(flatten)]
    log: LogArgs,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let config = config::load(
        args.config.as_deref(),
        Overrides {
            data_dir: args.data_dir,
            log: args.log.into(),
            ..Overrides::default()
        },
    )?;
    anyhow::ensure!(
        config.log.backend != LogBackend::Embedded || config.log_dir().exists(),
        "no log in {}: nothing to rebuild from",
        config.data_dir.display()
    );
    let cache = rezef_server::journey_cache(&config);
    // The partitions fold side by side, each on a core of its own.
    let bars = MultiProgress::new();
    let partitions = rezef_server::open_partitions(&config).await?;
    let rebuilds = (partitions.into_iter()).map(|p| rebuild(p, &config, &cache, &bars));
    futures::future::try_join_all(rebuilds).await?;
    Ok(())
}

/// Folds one partition of the log into a fresh store at `store_dir`.
async fn rebuild(
    partition: LogPartition,
    config: &ServerConfig,
    cache: &rezef_store::JourneyCache,
    bars: &MultiProgress,
) -> anyhow::Result<()> {
    let LogPartition {
        log,
        store_dir,
        partitioning,
        sealing,
    } = partition;
    let store_dir = store_dir.as_path();
    // A fresh store: the old one may be of another format, or damaged.
    if store_dir.exists() {
        std::fs::remove_dir_all(store_dir)?;
    }
    let store = rezef_server::open_store(config, store_dir, cache)?;
    let total = log.end_offset();
    let bar = bars.add(ProgressBar::new(total)).with_style(
        ProgressStyle::with_template(
            "{spinner} rebuilding [{bar:40}] {pos}/{len} events ({per_sec}, eta {eta})",
        )?
        .progress_chars("=> "),
    );
    let started = Instant::now();
    // The fold applies the continuity rules configured now.
    let policies = Arc::new(config.continuity.clone());
    let window = config.projection.store_config().dedup_window;
    let folded = (log.clone(), sealing);
    let stats = rezef_store::rebuild(folded, store, policies, partitioning, window, |o| {
        bar.set_position(o);
    })
    .await?;
    bar.finish();
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "rebuilt {} from {} records in {seconds:.1} s ({:.0} events/s): {} applied, {} duplicates, {} unreadable",
        store_dir.display(),
        stats.records,
        stats.records as f64 / seconds.max(1e-9),
        stats.applied,
        stats.duplicates,
        stats.undecodable
    );
    log.close().await;
    Ok(())
}
