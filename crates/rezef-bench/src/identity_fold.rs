//! Identity resolution at projection speed: how much slower does the rebuild get when a
//! fifth of the events link identities and merge customers?
//!
//! Why: verifications are frequent (every IVR PIN, every one-time code in a chat), and each
//! one that proves an identity makes the projector look up who owns it, follow merge
//! pointers, and, when it belongs to another customer, load both journeys and merge them.
//! Two logs of the same size over the same customers are loaded and rebuilt in one run with
//! `rezef_store::rebuild`, exactly as `projection` does: the baseline with the ordinary
//! workload, then the same workload with two events of every ten turned into
//! `customer_identified` events ([`Workload::with_identity_links`]: a new identity linked by
//! one-time code, and another customer's CRM id proven by knowledge questions at high
//! assurance, which merges the two). After the second rebuild the store is scanned and the
//! merges counted, so that the run cannot silently measure a fold that merged nothing.

use std::path::Path;

use anyhow::{Context, Result, bail};
use rezef_record::sealed::Sealing;
use rezef_store::JourneyStore;

use crate::harness::{CpuSampler, Report, mib, ms, temp_dir, thousands};
use crate::projection::{Loaded, Rebuilt, load, open_log, timed_rebuild};
use crate::workload::{IDENTITY_EVENTS_PER_TEN, Workload};

#[derive(Debug, Clone, clap::Args)]
pub struct IdentityFoldArgs {
    /// Events in each of the two logs.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1_000..=10_000_000))]
    pub events: u64,
    /// Distinct customers the events are spread over (in pairs that turn out to be one
    /// person).
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(2..=10_000_000))]
    pub customers: u64,
}

/// One log, rebuilt, and what its projection holds.
#[derive(Debug)]
struct Run {
    loaded: Loaded,
    records: u64,
    elapsed: std::time::Duration,
    /// Cores used by this process and by others during the rebuild.
    cpu: Option<(f64, f64)>,
    store_bytes: u64,
    journeys: u64,
    /// Customers merged into another (their record is a pointer).
    merged: u64,
    /// Journeys holding merged members.
    survivors: u64,
    /// Identities linked, over all journeys.
    identities: u64,
    /// Links refused (conflicts kept for review).
    conflicts: u64,
}

impl Run {
    fn per_s(&self) -> f64 {
        self.records as f64 / self.elapsed.as_secs_f64()
    }
}

pub async fn run(base: &Path, args: &IdentityFoldArgs) -> Result<Report> {
    eprintln!("  baseline: the ordinary workload");
    let baseline = one(base, args, false).await?;
    eprintln!("  with identity links and merges");
    let links = one(base, args, true).await?;
    if links.merged == 0 || links.survivors == 0 {
        bail!("no customers were merged: the benchmark would measure nothing ({links:?})");
    }
    if baseline.merged != 0 {
        bail!("the baseline merged customers: {baseline:?}");
    }
    let ratio = links.per_s() / baseline.per_s().max(1e-9);

    let mut report = Report::new(format!(
        "identity-fold: rebuild of {} events over {} customers, {}% identity links/merges vs none",
        thousands(args.events as f64),
        thousands(args.customers as f64),
        IDENTITY_EVENTS_PER_TEN * 10
    ));
    for (name, run) in [
        ("baseline (no identity events)", &baseline),
        ("with identity links and merges", &links),
    ] {
        report.row(
            format!("{name}: log"),
            format!(
                "{} events, of them {} customer_identified ({:.1}%); loaded in {} s with fsync: false (not the figure)",
                thousands(run.loaded.events as f64),
                thousands(run.loaded.identified as f64),
                100.0 * run.loaded.identified as f64 / run.loaded.events.max(1) as f64,
                ms(run.loaded.elapsed.as_secs_f64())
            ),
        );
        report.row(
            format!("{name}: **rebuild**"),
            format!(
                "**{} events/s** ({} records in {} s; cores: this process / others {})",
                thousands(run.per_s()),
                thousands(run.records as f64),
                ms(run.elapsed.as_secs_f64()),
                cores(run.cpu)
            ),
        );
        report.row(
            format!("{name}: projection"),
            format!(
                "{} journey records, {} merged into another, {} holding merged members, {} identities linked, {} links refused; store {}",
                thousands(run.journeys as f64),
                thousands(run.merged as f64),
                thousands(run.survivors as f64),
                thousands(run.identities as f64),
                thousands(run.conflicts as f64),
                mib(run.store_bytes)
            ),
        );
    }
    report.row(
        "**ratio: with identity events ÷ baseline**",
        format!("**{ratio:.2}**"),
    );
    report.headline(
        format!(
            "{} events/s with {}% identity events ({} merges) vs {} without: ratio {ratio:.2}",
            thousands(links.per_s()),
            IDENTITY_EVENTS_PER_TEN * 10,
            thousands(links.merged as f64),
            thousands(baseline.per_s())
        ),
        "n/a (batch rebuild)",
    );
    report.note(
        "Both logs hold the same number of events for the same customers, made from the same \
         seed; in the second, events 3 and 7 of every ten are customer_identified instead of \
         a message. Customers come in pairs (0 and 1, 2 and 3, ...) that prove each other's \
         CRM id, so each pair merges once and later proofs find the id already theirs.",
    );
    report.note("No separate goal: the projection goal (≥ 200,000 events/s) applies to both.");
    Ok(report)
}

fn cores(cpu: Option<(f64, f64)>) -> String {
    cpu.map_or_else(
        || "n/a".into(),
        |(own, others)| format!("{own:.2} / {others:.2}"),
    )
}

/// Loads one log, rebuilds it, and counts what the projection holds.
async fn one(base: &Path, args: &IdentityFoldArgs, links: bool) -> Result<Run> {
    let dir = temp_dir(base, "rezef-bench-identity-")?;
    let log = open_log(&dir.path().join("log"))?;
    let mut workload = Workload::new(args.customers, 0x1d0);
    if links {
        workload = workload.with_identity_links();
    }
    let loaded = load(&log, &mut workload, args.events).await?;
    let sampler = CpuSampler::start();
    let Rebuilt {
        stats,
        elapsed,
        store,
        ..
    } = timed_rebuild(
        &log,
        &dir.path().join("store"),
        Default::default(),
        Sealing::default(),
    )
    .await?;
    let cpu = sampler.and_then(|s| s.finish());
    log.close().await;
    let counting = store.clone();
    let run = tokio::task::spawn_blocking(move || {
        let mut run = Run {
            loaded,
            records: stats.records,
            elapsed,
            cpu,
            store_bytes: counting.size_on_disk()?,
            journeys: 0,
            merged: 0,
            survivors: 0,
            identities: 0,
            conflicts: 0,
        };
        for journey in counting.journeys(None) {
            let journey = journey?;
            run.journeys += 1;
            run.merged += u64::from(journey.merged_into.is_some());
            run.survivors += u64::from(!journey.shares.is_empty());
            run.identities += journey.identities.len() as u64;
            run.conflicts += journey.conflicts.len() as u64;
        }
        anyhow::Ok(run)
    })
    .await
    .context("counting panicked")??;
    drop(store);
    drop(dir);
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn identity_links_merge_pairs_and_the_baseline_merges_none() {
        let base = tempfile::tempdir().expect("temp dir");
        let args = IdentityFoldArgs {
            events: 2_000,
            customers: 100,
        };
        let baseline = one(base.path(), &args, false).await.expect("baseline");
        assert_eq!((baseline.merged, baseline.loaded.identified), (0, 0));
        let links = one(base.path(), &args, true).await.expect("links");
        assert_eq!(links.records, 2_000);
        assert!(links.loaded.identified > 300, "{links:?}");
        // 50 pairs, each merged once at most.
        assert!((40..=50).contains(&links.merged), "{links:?}");
        assert_eq!(links.merged, links.survivors);
        assert_eq!(links.conflicts, 0);
    }
}
