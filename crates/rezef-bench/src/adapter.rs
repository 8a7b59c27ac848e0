//! The SDK's publisher against the raw `Client`, on the same server in the same run, and the
//! spool's replay after an outage.
//!
//! Like for like: the publisher keeps one `Publish` in flight (so that order holds), so the
//! raw client publishes batches of the same size one at a time, from events made beforehand
//! in both runs. The publisher's figure includes what the raw client does not do: spooling
//! every event (one fsync per group of callers), reading it back and acknowledging it.
//! Then the outage: a publisher with no server spools `--outage-events`, closes, and a new
//! publisher on the same spool sends them once a server is there; the replay's rate is from
//! its start to the server's last acknowledgement.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use rezef_adapter::{Client, Publisher, PublisherConfig, proto};

use crate::harness::{BenchServer, Report, Target, temp_dir, thousands};
use crate::workload::Workload;

/// The aim: the publisher at 0.9× the raw client or better.
const TARGET_RATIO: f64 = 0.9;

#[derive(Debug, Clone, clap::Args)]
pub struct AdapterArgs {
    /// Events each of the raw and the publisher runs sends.
    #[arg(long, default_value_t = 200_000, value_parser = clap::value_parser!(u64).range(1_000..=10_000_000))]
    pub events: u64,
    /// Events per `Publish`: the raw client's batches and the publisher's most.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub batch: u32,
    /// Tasks handing events to the publisher at once, each a group at a time.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub callers: u32,
    /// Events a caller hands over in one `publish_all`.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub group: u32,
    /// Events spooled while no server is there, then replayed.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1_000..=10_000_000))]
    pub outage_events: u64,
}

/// `count` events in batches of `size`, made beforehand.
fn batches(count: u64, size: usize, seed: u64) -> Vec<Vec<proto::Event>> {
    let mut workload = Workload::new(100_000, seed);
    let mut left = count as usize;
    let mut out = Vec::new();
    while left > 0 {
        let n = left.min(size);
        out.push(workload.batch(n).1);
        left -= n;
    }
    out
}

fn publisher_config(spool: &Path, args: &AdapterArgs) -> PublisherConfig {
    PublisherConfig {
        max_batch_events: args.batch as usize,
        ..PublisherConfig::new(spool)
    }
}

/// Hands `groups` to `publisher` from `callers` tasks, then flushes; the time it all took.
async fn through_publisher(
    publisher: Arc<Publisher>,
    groups: Vec<Vec<proto::Event>>,
    callers: usize,
) -> Result<Duration> {
    let started = Instant::now();
    let mut shares: Vec<Vec<Vec<proto::Event>>> = vec![Vec::new(); callers];
    for (i, group) in groups.into_iter().enumerate() {
        shares[i % callers].push(group);
    }
    let tasks: Vec<_> = (shares.into_iter())
        .map(|share| {
            let publisher = publisher.clone();
            tokio::spawn(async move {
                for group in share {
                    publisher.publish_all(group).await?;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for task in tasks {
        task.await.context("a caller panicked")??;
    }
    publisher.flush().await.context("flush")?;
    Ok(started.elapsed())
}

fn rate(events: u64, elapsed: Duration) -> f64 {
    events as f64 / elapsed.as_secs_f64().max(1e-9)
}

pub async fn run(base: &Path, args: &AdapterArgs) -> Result<Report> {
    let batch = args.batch as usize;
    let server = BenchServer::start(base).await?;

    // The raw client, one batch at a time.
    let raw_batches = batches(args.events, batch, 0xad0);
    let mut client = server.client().await?;
    let started = Instant::now();
    for events in raw_batches {
        client.publish(events).await.context("raw publish")?;
    }
    let raw = rate(args.events, started.elapsed());

    // The publisher, on the same server.
    let spool = temp_dir(base, "rezef-bench-spool-")?;
    let groups = batches(args.events, args.group as usize, 0xad1);
    let publisher = Publisher::start(server.client().await?, publisher_config(spool.path(), args))
        .await
        .context("starting the publisher")?;
    let publisher = Arc::new(publisher);
    let elapsed = through_publisher(publisher.clone(), groups, args.callers as usize).await?;
    let published = rate(args.events, elapsed);
    let publisher = Arc::into_inner(publisher).ok_or_else(|| anyhow!("a publisher handle left"))?;
    publisher.close(Duration::from_secs(5)).await?;

    // The outage: spooled with no server, then replayed by a new publisher.
    let outage_spool = temp_dir(base, "rezef-bench-outage-")?;
    let nowhere = format!("http://127.0.0.1:{}", free_port()?);
    let offline = Client::connect_lazy(nowhere, None)?;
    let offline = Publisher::start(offline, publisher_config(outage_spool.path(), args)).await?;
    let started = Instant::now();
    for group in batches(args.outage_events, args.group as usize, 0xad2) {
        offline.publish_all(group).await.context("spooling")?;
    }
    let spooled = rate(args.outage_events, started.elapsed());
    let left = offline.close(Duration::ZERO).await?.unsent;
    let started = Instant::now();
    let online = Publisher::start(
        server.client().await?,
        publisher_config(outage_spool.path(), args),
    )
    .await?;
    online.flush().await.context("replaying the spool")?;
    let replayed = rate(left, started.elapsed());
    online.close(Duration::from_secs(5)).await?;
    server.stop().await?;

    let ratio = published / raw.max(1e-9);
    let mut report = Report::new(format!(
        "adapter SDK: {} events, batches of {batch}, {} callers in groups of {}",
        thousands(args.events as f64),
        args.callers,
        args.group
    ));
    report.row(
        "raw Client, one batch in flight",
        format!("{} events/s", thousands(raw)),
    );
    report.row(
        "Publisher (spooled, fsync per group of callers)",
        format!("{} events/s", thousands(published)),
    );
    report.row("**ratio Publisher ÷ raw**", format!("**{ratio:.2}**"));
    report.row(
        "spooling with no server",
        format!("{} events/s", thousands(spooled)),
    );
    report.row(
        format!(
            "spool replayed after the outage ({} events)",
            thousands(left as f64)
        ),
        format!("{} events/s", thousands(replayed)),
    );
    report.note(
        "Client, publisher and server share this process and its cores; events are made \
         before each timed run.",
    );
    report.headline(
        format!(
            "Publisher {} events/s, {ratio:.2}× the raw Client",
            thousands(published)
        ),
        format!("spool replay {} events/s", thousands(replayed)),
    );
    report.target(Target::at_least(
        "Publisher ÷ raw Client",
        ratio,
        TARGET_RATIO,
        "×",
    ));
    Ok(report)
}

/// A loopback port nobody listens on.
fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("a loopback port")?;
    Ok(listener.local_addr()?.port())
}
