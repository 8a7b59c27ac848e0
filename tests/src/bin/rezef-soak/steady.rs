//! The steady soak: a fixed rate of publishes and reads, not flat out, for a long time, with
//! the server's resident memory sampled. What it shows is a trend: memory that keeps
//! climbing at a load the server handles easily is a leak, whatever the first sample was.
//!
//! The customers are a fixed set, each with a web chat, all published once before the clock
//! starts so that every read finds its customer. Publishers and readers tick at fixed
//! intervals; a tick missed because a call was slow is skipped, not made up, so the load
//! stays the one asked for (the achieved rates are reported).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use hdrhistogram::Histogram;
use rezef_adapter::{Client, EventFactory, proto};
use rezef_scenarios::RezefServer;
use tokio::time::MissedTickBehavior;

use crate::memory::{slope_per_hour, status_mib};

const TENANT: &str = "acme";
/// Events in one `Publish`.
const BATCH: usize = 10;
/// Concurrent publishers and readers, each on a connection of its own.
const TASKS: u32 = 2;

#[derive(Debug, Args)]
pub struct SteadyArgs {
    /// How long the load runs.
    #[arg(long, default_value_t = 30.0)]
    minutes: f64,
    /// Events published per second (in batches of 10).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(20..=100_000))]
    rate: u32,
    /// Reads per second, half GetJourney and half ResumeConversation.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(2..=100_000))]
    reads: u32,
    /// Distinct customers the events and reads spread over.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    customers: u64,
    /// Seconds between two samples of the server's resident memory.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    sample_seconds: u64,
}

/// Runs the load and prints its figures; `Ok(false)` if calls failed.
pub async fn run(args: &SteadyArgs, dir: &Path) -> Result<bool> {
    anyhow::ensure!(
        args.minutes.is_finite() && args.minutes > 0.0,
        "--minutes must be positive"
    );
    let data = tempfile::Builder::new()
        .prefix("rezef-steady-soak")
        .tempdir_in(dir)
        .with_context(|| format!("a data directory in {}", dir.display()))?;
    let server = RezefServer::start(data.path()).await;
    let pid = server.pid();
    seed(&mut server.client().await, args.customers).await?;

    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(args.minutes * 60.0);
    let failures = Arc::new(AtomicU64::new(0));
    let mut publishers = Vec::new();
    let mut readers = Vec::new();
    let publish_every =
        Duration::from_secs_f64(f64::from(TASKS) * BATCH as f64 / f64::from(args.rate));
    let read_every = Duration::from_secs_f64(f64::from(TASKS) / f64::from(args.reads));
    for task in 0..TASKS {
        let load = Load {
            client: server.client().await,
            customers: args.customers,
            deadline,
            failures: failures.clone(),
            rng: Rng::seeded(task)?,
        };
        publishers.push(tokio::spawn(load.clone().publish(publish_every)));
        readers.push(tokio::spawn(load.read(read_every)));
    }

    let rss = sample(pid, deadline, Duration::from_secs(args.sample_seconds)).await?;
    let elapsed = started.elapsed().as_secs_f64();
    let mut publish = histogram();
    for task in publishers {
        publish.add(task.await.context("a publisher")?)?;
    }
    let (mut journey, mut resume) = (histogram(), histogram());
    for task in readers {
        let (j, r) = task.await.context("a reader")?;
        journey.add(j)?;
        resume.add(r)?;
    }
    let peak = status_mib(pid, "VmHWM")?;
    let status = server.terminate();
    anyhow::ensure!(status.success(), "rezef serve stopped with {status}");

    let failures = failures.load(Ordering::Relaxed);
    println!("## steady soak: {:.1} minutes", elapsed / 60.0);
    println!();
    println!("| figure | value |");
    println!("|---|---|");
    let events = publish.len() * BATCH as u64;
    println!(
        "| load asked / achieved | {} events/s + {} reads/s / {:.0} events/s + {:.0} reads/s |",
        args.rate,
        args.reads,
        events as f64 / elapsed,
        (journey.len() + resume.len()) as f64 / elapsed
    );
    println!("| customers | {} |", args.customers);
    println!("| events published | {events} |");
    println!("| failed calls | {failures} |");
    for (call, histogram) in [
        ("Publish (10 events)", &publish),
        ("GetJourney", &journey),
        ("ResumeConversation", &resume),
    ] {
        println!(
            "| {call} p50 / p99 / max | {} / {} / {} |",
            micros(histogram.value_at_quantile(0.5)),
            micros(histogram.value_at_quantile(0.99)),
            micros(histogram.max())
        );
    }
    report_rss(&rss, peak);
    Ok(failures == 0)
}

/// One event for every customer, so that every read finds one.
async fn seed(client: &mut Client, customers: u64) -> Result<()> {
    let mut last = 0;
    let ids: Vec<u64> = (0..customers).collect();
    for chunk in ids.chunks(500) {
        let events = chunk
            .iter()
            .map(|&c| factory(c).message(proto::Participant::Customer, "hello"))
            .collect();
        last = client
            .publish(events)
            .await
            .context("seeding")?
            .first_offset;
    }
    // Projected before the clock starts: the reads measure serving, not catching up.
    client
        .journey(TENANT, factory(0).customer_ref(), Some(last))
        .await
        .context("seeding")?;
    Ok(())
}

fn factory(customer: u64) -> EventFactory {
    EventFactory::new(TENANT, "steady-soak")
        .customer(format!("s-{customer}"))
        .on(proto::Channel::Webchat, format!("chat-{customer}"))
}

/// Latencies in microseconds, up to a minute.
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("constant bounds are valid")
}

fn micros(value: u64) -> String {
    format!("{:.2} ms", value as f64 / 1000.0)
}

/// One publisher's or reader's share of the load.
#[derive(Debug, Clone)]
struct Load {
    client: Client,
    customers: u64,
    deadline: Instant,
    failures: Arc<AtomicU64>,
    rng: Rng,
}

impl Load {
    async fn publish(mut self, every: Duration) -> Histogram<u64> {
        let mut latencies = histogram();
        let mut ticks = ticker(every);
        while Instant::now() < self.deadline {
            ticks.tick().await;
            let events = (0..BATCH)
                .map(|i| {
                    let customer = factory(self.rng.below(self.customers));
                    if i == 0 {
                        customer.context("last_page", "billing", false)
                    } else {
                        customer.message(proto::Participant::Customer, "still there?")
                    }
                })
                .collect();
            let begun = Instant::now();
            let outcome = self.client.publish(events).await;
            self.record(&mut latencies, begun, outcome.is_ok());
        }
        latencies
    }

    async fn read(mut self, every: Duration) -> (Histogram<u64>, Histogram<u64>) {
        let (mut journeys, mut resumes) = (histogram(), histogram());
        let mut ticks = ticker(every);
        let mut turn = 0u64;
        while Instant::now() < self.deadline {
            ticks.tick().await;
            let customer = factory(self.rng.below(self.customers)).customer_ref();
            let begun = Instant::now();
            turn += 1;
            if turn.is_multiple_of(2) {
                let outcome = self.client.journey(TENANT, customer, None).await;
                self.record(&mut journeys, begun, outcome.is_ok());
            } else {
                let channel = proto::Channel::Voice;
                let outcome = self.client.resume(TENANT, customer, channel, None).await;
                self.record(&mut resumes, begun, outcome.is_ok());
            }
        }
        (journeys, resumes)
    }

    fn record(&self, latencies: &mut Histogram<u64>, begun: Instant, ok: bool) {
        if !ok {
            self.failures.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let micros = u64::try_from(begun.elapsed().as_micros()).unwrap_or(u64::MAX);
        latencies.saturating_record(micros);
    }
}

fn ticker(every: Duration) -> tokio::time::Interval {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
    ticks
}

/// Samples `VmRSS` of `pid` every `every` until `deadline`: (seconds since start, MiB).
async fn sample(pid: u32, deadline: Instant, every: Duration) -> Result<Vec<(f64, f64)>> {
    let started = Instant::now();
    let mut samples = Vec::new();
    let mut ticks = tokio::time::interval(every);
    while Instant::now() < deadline {
        ticks.tick().await;
        let rss = status_mib(pid, "VmRSS")?;
        let at = started.elapsed().as_secs_f64();
        eprintln!("{at:>6.0} s  VmRSS {rss:.1} MiB");
        samples.push((at, rss));
    }
    Ok(samples)
}

/// First, last and largest samples, and the trend over the second half (after warm-up:
/// caches filling and the allocator's arenas growing are the first half's business).
fn report_rss(samples: &[(f64, f64)], peak: f64) {
    let first = samples.first().map_or(0.0, |s| s.1);
    let last = samples.last().map_or(0.0, |s| s.1);
    let max = samples.iter().map(|s| s.1).fold(0.0, f64::max);
    let second_half = &samples[samples.len() / 2..];
    let slope =
        |s: &[(f64, f64)]| slope_per_hour(s).map_or("n/a".into(), |v| format!("{v:+.1} MiB/h"));
    println!("| RSS samples | {} |", samples.len());
    println!(
        "| RSS first / last / max (VmHWM) | {first:.1} / {last:.1} / {max:.1} ({peak:.1}) MiB |"
    );
    println!(
        "| RSS trend, second half / whole run | {} / {} |",
        slope(second_half),
        slope(samples)
    );
}

/// A small xorshift generator: which customer comes next needs no quality, only no lock.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn seeded(task: u32) -> Result<Self> {
        let seed = getrandom::u64().context("randomness")?;
        Ok(Self(seed | 1 | u64::from(task) << 32))
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}
