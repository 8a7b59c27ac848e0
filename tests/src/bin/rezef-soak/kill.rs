//! The kill soak: crash after crash during concurrent publishing, on one data directory,
//! then the verdict of `rezef_scenarios::durability` over everything acknowledged.
//!
//! Each iteration starts `rezef serve`, waits until it answers, lets the publishers run for
//! a random part of `--window-ms` and kills the server with SIGKILL. The window is random
//! so that the kill lands anywhere: mid-batch, mid-fsync, mid-checkpoint, or while idle.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use rezef_scenarios::RezefServer;
use rezef_scenarios::durability::{
    Acked, TENANT, Verdict, acked_len, factory, publish_until_killed, verify,
};

#[derive(Debug, Args)]
pub struct KillArgs {
    /// Crashes to run; the run stops at whichever of this and --seconds comes first.
    #[arg(long, default_value_t = 20)]
    iterations: u32,
    /// Time for the crashes, in seconds (the final check comes after).
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Concurrent publishers, each on a connection of its own.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    publishers: u16,
    /// The longest publishing window, in milliseconds: each iteration kills at a random
    /// moment within it.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=600_000))]
    window_ms: u64,
    /// Also check everything every this many crashes (0: at the end only).
    #[arg(long, default_value_t = 0)]
    verify_every: u32,
}

/// Runs the soak and prints its figures; `Ok(false)` if anything acknowledged went wrong.
pub async fn run(args: &KillArgs, dir: &Path) -> Result<bool> {
    let data = tempfile::Builder::new()
        .prefix("rezef-kill-soak")
        .tempdir_in(dir)
        .with_context(|| format!("a data directory in {}", dir.display()))?;
    let acked = Acked::default();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let mut restarts = Restarts::default();
    let mut iterations = 0;
    while iterations < args.iterations && Instant::now() < deadline {
        let server = restarts.start(data.path()).await;
        let publishing = tokio::spawn(publish_until_killed(
            server.url(),
            args.publishers.into(),
            acked.clone(),
        ));
        let window = 1 + getrandom::u64().context("randomness")? % args.window_ms;
        tokio::time::sleep(Duration::from_millis(window)).await;
        server.kill9();
        publishing.await.context("publishers")?;
        iterations += 1;
        if iterations.is_multiple_of(50) {
            eprintln!(
                "{iterations} crashes, {} events acknowledged, {:.0} s",
                acked_len(&acked),
                started.elapsed().as_secs_f64()
            );
        }
        if args.verify_every > 0 && iterations.is_multiple_of(args.verify_every) {
            let verdict = check(&mut restarts, data.path(), &acked).await?;
            if !verdict.is_clean() {
                report(iterations, started, &restarts, &verdict);
                return Ok(false);
            }
        }
    }
    let verdict = check(&mut restarts, data.path(), &acked).await?;
    report(iterations, started, &restarts, &verdict);
    Ok(verdict.is_clean())
}

/// How long the server took from spawn to answering, over every start.
#[derive(Debug, Default)]
struct Restarts {
    count: u32,
    total: Duration,
    longest: Duration,
}

impl Restarts {
    async fn start(&mut self, data: &Path) -> RezefServer {
        let begun = Instant::now();
        let server = RezefServer::start(data).await;
        server
            .wait_ready(TENANT, &[factory(0).customer_ref()])
            .await;
        let took = begun.elapsed();
        self.count += 1;
        self.total += took;
        self.longest = self.longest.max(took);
        server
    }
}

/// Restarts the server, checks everything acknowledged so far, and stops it cleanly.
async fn check(restarts: &mut Restarts, data: &Path, acked: &Acked) -> Result<Verdict> {
    let server = restarts.start(data).await;
    let acked = acked
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let verdict = verify(&mut server.client().await, &acked)
        .await
        .context("reading the log and the journeys back")?;
    let status = server.terminate();
    anyhow::ensure!(status.success(), "rezef serve stopped with {status}");
    Ok(verdict)
}

fn report(iterations: u32, started: Instant, restarts: &Restarts, verdict: &Verdict) {
    let outcome = if verdict.is_clean() { "PASS" } else { "FAIL" };
    let mean = restarts.total / restarts.count.max(1);
    println!("## kill soak: {outcome}");
    println!();
    println!("| figure | value |");
    println!("|---|---|");
    println!("| iterations (kill -9) | {iterations} |");
    println!("| events acknowledged | {} |", verdict.acknowledged);
    println!("| events in the log | {} |", verdict.logged);
    println!("| events lost | {} |", verdict.lost.len());
    println!("| events duplicated | {} |", verdict.duplicated.len());
    println!("| events misplaced | {} |", verdict.misplaced.len());
    println!("| journeys miscounted | {} |", verdict.miscounted.len());
    println!(
        "| restart to ready, mean / longest | {} ms / {} ms |",
        mean.as_millis(),
        restarts.longest.as_millis()
    );
    let wall = started.elapsed().as_secs_f64();
    println!("| wall time, the checks included | {wall:.1} s |");
    for (what, ids) in [
        ("lost", &verdict.lost),
        ("duplicated", &verdict.duplicated),
        ("misplaced", &verdict.misplaced),
    ] {
        for id in ids.iter().take(10) {
            eprintln!("{what}: {id}");
        }
    }
    for (customer, events, messages, logged) in verdict.miscounted.iter().take(10) {
        eprintln!(
            "miscounted: {customer} counts {events} events, {messages} messages, logged {logged}"
        );
    }
}
