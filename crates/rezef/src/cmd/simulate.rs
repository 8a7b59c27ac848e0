//! `rezef simulate`: a contact centre's day (`rezef-simulate`; docs/simulate.md) published
//! to a server through the SDK's `Publisher` (batches, retries, a spool), as fast as it
//! goes or paced at `--speed` times real time so a dashboard animates; or written as JSON
//! Lines (`--out`), what `rezef publish` reads.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use rezef_adapter::{Client, Publisher, PublisherConfig, jsonl, proto};
use rezef_simulate::{Config, simulate};

const DAY_SECS: u64 = 86_400;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long, env = "REZEF_TENANT")]
    tenant: String,
    /// Contacts with a new need over the day (Poisson by hour); returns come on top.
    #[arg(long, default_value_t = 2_000)]
    contacts: u32,
    /// Agents on shift during business hours (08:00-20:00 UTC).
    #[arg(long, default_value_t = 30)]
    agents: u32,
    /// The same seed (and tenant and day) gives the same day, event ids included: a day
    /// published twice is recorded once.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The day to simulate, YYYY-MM-DD (UTC) [default: yesterday, so every time is past].
    #[arg(long, value_parser = crate::args::day, conflicts_with = "today")]
    day: Option<SystemTime>,
    /// Today, up to now.
    #[arg(long)]
    today: bool,
    /// Publish at this many times real time (60: an hour a minute) [default: as fast as
    /// the server takes them].
    #[arg(long)]
    speed: Option<f64>,
    /// Write the events as JSON Lines to this file (`-`: standard output) instead of
    /// publishing them.
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    addr: crate::ServerAddr,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    if let Some(speed) = args.speed {
        anyhow::ensure!(
            speed.is_finite() && speed > 0.0,
            "--speed must be more than 0"
        );
    }
    let now = SystemTime::now();
    let midnight = |at: SystemTime| -> anyhow::Result<SystemTime> {
        let secs = at.duration_since(UNIX_EPOCH)?.as_secs();
        Ok(UNIX_EPOCH + Duration::from_secs(secs - secs % DAY_SECS))
    };
    let today = midnight(now)?;
    let day_start = match (args.day, args.today) {
        (Some(day), _) => day,
        (None, true) => today,
        (None, false) => today - Duration::from_secs(DAY_SECS),
    };
    anyhow::ensure!(
        day_start <= today,
        "--day is in the future: the server does not take events from the future"
    );
    let mut config = Config::new(args.tenant, day_start, args.contacts, args.agents);
    config.seed = args.seed;
    config.until = (day_start == today).then_some(now);
    let day = simulate(&config).context("the simulation's settings")?;
    match &args.out {
        Some(path) => write(path, &day.events)?,
        None => publish(&args.addr, day.events, args.speed).await?,
    }
    println!("{}", day.summary);
    Ok(())
}

fn write(path: &PathBuf, events: &[proto::Event]) -> anyhow::Result<()> {
    let mut out: Box<dyn Write> = if path.as_os_str() == "-" {
        Box::new(std::io::stdout().lock())
    } else {
        let file = std::fs::File::create(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Box::new(std::io::BufWriter::new(file))
    };
    for event in events {
        writeln!(out, "{}", jsonl::write_event(event))?;
    }
    out.flush()?;
    eprintln!("wrote {} events to {}", events.len(), path.display());
    Ok(())
}

async fn publish(
    addr: &crate::ServerAddr,
    events: Vec<proto::Event>,
    speed: Option<f64>,
) -> anyhow::Result<()> {
    publish_through(super::connect(addr).await?, events, speed).await
}

/// Hands the events to a `Publisher` of `client` (spooled in a temporary directory), at
/// their pace divided by `speed` if given, and waits until the server has acknowledged them
/// all.
pub(crate) async fn publish_through(
    client: Client,
    events: Vec<proto::Event>,
    speed: Option<f64>,
) -> anyhow::Result<()> {
    let spool = tempfile::tempdir()?;
    let publisher = Publisher::start(client, PublisherConfig::new(spool.path())).await?;
    let total = events.len();
    let seconds = |event: &proto::Event| event.occurred_at.map_or(0.0, |t| t.seconds as f64);
    let first = events.first().map_or(0.0, seconds);
    let started = Instant::now();
    let mut batch = Vec::new();
    let mut shown_hour = None;
    for event in events {
        if let Some(speed) = speed {
            let due = Duration::from_secs_f64((seconds(&event) - first).max(0.0) / speed);
            if due > started.elapsed() {
                if !batch.is_empty() {
                    publisher.publish_all(std::mem::take(&mut batch)).await?;
                }
                tokio::time::sleep_until((started + due).into()).await;
            }
            let hour = event.occurred_at.map(|t| t.seconds / 3600 % 24);
            if hour != shown_hour {
                eprintln!("simulated clock {:02}:00", hour.unwrap_or(0));
                shown_hour = hour;
            }
        }
        batch.push(event);
        if batch.len() == 5_000 {
            publisher.publish_all(std::mem::take(&mut batch)).await?;
        }
    }
    if !batch.is_empty() {
        publisher.publish_all(batch).await?;
    }
    publisher.flush().await.context("publishing the day")?;
    let stats = publisher.stats();
    publisher.close(Duration::from_secs(5)).await?;
    eprintln!(
        "{} of {total} events published and acknowledged ({} retries)",
        stats.acknowledged, stats.retries
    );
    Ok(())
}
