//! What the measurement projection costs the projection (issue 18: at most 15% of the plain
//! projection's throughput, in the same run).
//!
//! One log of a contact centre's events ([`ContactCentre`]: queues, offers, answers and
//! abandons, holds, transfers, callbacks, wrap-ups, surveys, so that measurement has work on
//! most events), rebuilt again and again in this process into fresh stores, alternately with
//! `[measure] enabled = false` and `true`, in both orders (off then on in odd rounds, on
//! then off in even ones: a round's second rebuild finds the pages, page cache and
//! allocator the first left): the two see the same machine, and drift on a shared machine
//! hits both alike.
//!
//! Each rebuild is judged twice: by its throughput (events per second of wall time, the
//! issue's figure) and by the CPU time the whole process used per event (every thread's,
//! user and system). Throughput moves with how the rebuild's threads share two cores from
//! round to round; CPU per event says what measuring costs in work, wherever it runs.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use rezef_events::{TenantId, Timestamp};
use rezef_measure::{Figures, Grouping, Interval, MeasureRules};
use rezef_record::sealed::Sealing;
use rezef_store::JourneyStore;

use crate::contact_centre::ContactCentre;
use crate::harness::{Latency, Report, Target, ms, temp_dir, thousands};
use crate::projection::{Rebuilt, SettingsArgs, load, open_log, timed_rebuild};
use crate::simulated::Simulated;
use crate::workload::TENANT;

/// The bar: measuring may take at most this share of the plain throughput.
pub const MAX_OVERHEAD: f64 = 0.15;

#[derive(Debug, Clone, clap::Args)]
pub struct MeasureCostArgs {
    /// Events of the contact centre to load and rebuild.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1_000..=10_000_000))]
    pub events: u64,
    /// Distinct customers contacting.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub customers: u64,
    /// Simulated days of this many new needs each (`rezef-simulate`) instead of the
    /// evenly spread contact centre (`--customers` then does not apply).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    pub simulated_contacts_per_day: Option<u32>,
    /// Pairs of rebuilds (measurement off, then on).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub rounds: u32,
    #[command(flatten)]
    pub settings: SettingsArgs,
}

/// One rebuild's figures.
struct Run {
    events_per_s: f64,
    /// CPU time of the process per event, every thread's, in µs.
    cpu_us: Option<f64>,
    steps: Latency,
}

/// Which comes first in round `round` (from 1): off in odd rounds, on in even ones.
fn order(round: u32) -> [bool; 2] {
    if round % 2 == 1 {
        [false, true]
    } else {
        [true, false]
    }
}

pub async fn run(base: &Path, args: &MeasureCostArgs) -> Result<Report> {
    let dir = temp_dir(base, "rezef-bench-measure-cost-")?;
    let log = open_log(&dir.path().join("log"))?;
    let loaded = match args.simulated_contacts_per_day {
        Some(per_day) => {
            let mut days = Simulated::new(args.events, per_day, 0x18);
            load(&log, &mut days, args.events).await?
        }
        None => {
            let mut centre = ContactCentre::new(args.customers, args.events, 0x18);
            load(&log, &mut centre, args.events).await?
        }
    };

    let source = match args.simulated_contacts_per_day {
        Some(per_day) => format!("simulated days of {} needs", thousands(f64::from(per_day))),
        None => format!("{} customers", thousands(args.customers as f64)),
    };
    let mut report = Report::new(format!(
        "measure-cost: rebuild of {} contact-centre events over {source}, measurement off and on alternated in both orders",
        thousands(args.events as f64),
    ));
    let (mut off, mut on) = (Vec::new(), Vec::new());
    let mut measured = Figures::default();
    for round in 1..=args.rounds {
        for (place, enabled) in ["first", "second"].into_iter().zip(order(round)) {
            let store_dir = dir.path().join(format!("store-{round}-{enabled}"));
            let mut config = args.settings.config();
            config.measure = MeasureRules {
                enabled,
                ..MeasureRules::default()
            };
            let Rebuilt {
                stats,
                elapsed,
                cpu,
                projection,
                steps,
                checkpoints,
                ..
            } = timed_rebuild(&log, &store_dir, config, Sealing::default()).await?;
            let events = stats.records.max(1) as f64;
            let run = Run {
                events_per_s: stats.records as f64 / elapsed.as_secs_f64(),
                cpu_us: cpu.map(|cpu| cpu.as_secs_f64() * 1e6 / events),
                steps,
            };
            report.row(
                format!(
                    "round {round}, measurement {} ({place})",
                    if enabled { "on" } else { "off" }
                ),
                format!(
                    "{} events/s, {} µs CPU/event; per batch {}; {} checkpoints ({} s writing)",
                    thousands(run.events_per_s),
                    micros(run.cpu_us),
                    run.steps.summary(),
                    checkpoints.0,
                    ms(checkpoints.1.as_secs_f64())
                ),
            );
            if enabled {
                let projection = projection.clone();
                measured = tokio::task::spawn_blocking(move || whole_day(&*projection))
                    .await
                    .context("the report panicked")??;
            }
            drop(projection);
            std::fs::remove_dir_all(&store_dir).context("removing a rebuilt store")?;
            if enabled { &mut on } else { &mut off }.push(run);
        }
    }
    log.close().await;

    let rate = |runs: &[Run]| median(runs.iter().map(|r| r.events_per_s).collect());
    let cpu = |runs: &[Run]| {
        let each: Option<Vec<f64>> = runs.iter().map(|r| r.cpu_us).collect();
        each.map(median)
    };
    let (off_eps, on_eps) = (rate(&off), rate(&on));
    let overhead = 1.0 - on_eps / off_eps;
    // Each round's cost, its own off against its own on.
    let rounds: Vec<f64> = (off.iter().zip(&on))
        .map(|(off, on)| 1.0 - on.events_per_s / off.events_per_s)
        .collect();
    let cpu_rounds: Option<Vec<f64>> = (off.iter().zip(&on))
        .map(|(off, on)| Some(on.cpu_us? / off.cpu_us? - 1.0))
        .collect();
    report.row(
        "load phase (not the figure)",
        format!(
            "{} events in {} s, log appended with fsync: false",
            thousands(loaded.events as f64),
            ms(loaded.elapsed.as_secs_f64())
        ),
    );
    report.row(
        "what the measurement recorded (last run on)",
        format!(
            "{} contacts measured ({} journey-true, {} classic in the service level), {} resolved conversations, {} FCR decided, {} survey answers",
            thousands(measured.contacts as f64),
            thousands(measured.journey.counted as f64),
            thousands(measured.classic.counted as f64),
            thousands(measured.resolved as f64),
            thousands((measured.fcr_achieved + measured.fcr_not_achieved) as f64),
            thousands(measured.surveys.csat_count as f64),
        ),
    );
    report.row(
        "**median throughput: off / on**",
        format!(
            "**{} / {} events/s**",
            thousands(off_eps),
            thousands(on_eps)
        ),
    );
    report.row(
        "**measurement's cost (1 − on ÷ off, of the medians)**",
        format!(
            "**{}** (median of the rounds' own {}; round by round: {})",
            percent(overhead),
            percent(median(rounds.clone())),
            rounds
                .iter()
                .map(|r| percent(*r))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    report.row(
        "**median CPU per event: off / on**",
        format!("**{} / {} µs**", micros(cpu(&off)), micros(cpu(&on))),
    );
    let cpu_cost = cpu(&on).zip(cpu(&off)).map(|(on, off)| on / off - 1.0);
    report.row(
        "**measurement's CPU cost (on ÷ off − 1, of the medians)**",
        match (cpu_cost, cpu_rounds) {
            (Some(cost), Some(rounds)) => format!(
                "**{}** (median of the rounds' own {}; round by round: {})",
                percent(cost),
                percent(median(rounds.clone())),
                rounds
                    .iter()
                    .map(|r| percent(*r))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            _ => "not available (no /proc/self/stat)".into(),
        },
    );
    report.headline(
        format!(
            "{} events/s measured, {} plain ({:.1}% cost)",
            thousands(on_eps),
            thousands(off_eps),
            100.0 * overhead
        ),
        "n/a (batch rebuild)",
    );
    report.target(Target::at_most(
        "measurement's cost of projection throughput",
        100.0 * overhead,
        100.0 * MAX_OVERHEAD,
        "%",
    ));
    report.note(
        "Each rebuild folds the same log into a fresh sled store with the server's default \
         [projection] settings; only [measure] enabled differs, off first in odd rounds and \
         on first in even ones. A batch is what the projector reads at once; its time is \
         from the end of the previous batch's step to the end of its own (reading included). \
         CPU per event is the process's user and system time over the rebuild (every thread: \
         fold, read-ahead, counter, sled, checkpoints), in 10 ms ticks, divided by its events.",
    );
    Ok(report)
}

fn percent(share: f64) -> String {
    format!("{:.1}%", 100.0 * share)
}

fn micros(us: Option<f64>) -> String {
    us.map_or_else(|| "n/a".into(), |us| format!("{us:.2}"))
}

/// Every figure of the bench tenant, as one row over the days the log spans.
fn whole_day(projection: &dyn JourneyStore) -> Result<Figures> {
    let tenant = TenantId::new(TENANT).map_err(|e| anyhow!("the bench tenant: {e}"))?;
    let now = Timestamp::now();
    let start = Interval::Day.floor(Timestamp::from_unix_nanos(
        now.unix_nanos() - Duration::from_secs(30 * 86_400).as_nanos() as i64,
    ));
    let end = Interval::Day.floor(now).plus(Duration::from_secs(86_400));
    let rows = projection.report(&tenant, start..end, Grouping::default())?;
    let mut total = Figures::default();
    rows.values().for_each(|figures| total.merge(figures));
    Ok(total)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_rounds_then_each_setting_comes_first_in_every_other_one() {
        let firsts: Vec<bool> = (1..=4).map(|round| order(round)[0]).collect();
        assert_eq!(firsts, [false, true, false, true]);
        assert!((1..=4).all(|round| order(round)[0] != order(round)[1]));
    }

    #[test]
    fn given_an_even_count_then_the_median_is_the_middle_pair_s_mean() {
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(Vec::new()), 0.0);
    }
}
