//! Rezef on a Kafka log (issue 5), against a real broker (`--brokers`, or `KAFKA_BROKERS` as
//! `scripts/kafka-broker start` prints it):
//!
//! 1. **Publish**: the ingest load of `rezef-bench ingest` through one node whose log is a
//!    Kafka topic, and the same load through a node on the embedded log, in the same run.
//! 2. **Projection per node**: a fresh node joins the topic it just published to and folds
//!    every partition from the log; the time until all of them answer.
//! 3. **Failover**: `--failover-events` events are appended to a new topic, three `rezef serve`
//!    processes (the binary next to this one) share it, and the one serving the most is killed
//!    with `kill -9`: the time until every partition answers again through the survivors,
//!    which serve the dead node's partitions from their standby copies (`--standby-replicas`)
//!    after folding the tail, or fold them from the log without one.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use rezef_adapter::{Client, proto};
use rezef_events::partition::Partitioner;
use rezef_events::{CustomerId, TenantId};
use rezef_log::Log;
use rezef_log::kafka::{KafkaConfig, KafkaLog, TopicSettings, ensure_topic};
use rezef_server::LogBackend;
use tonic::Code;

use crate::harness::{BenchServer, Report, ms, temp_dir, thousands};
use crate::ingest::{IngestArgs, Published, publish_for};
use crate::workload::{TENANT, Workload, customer_id, customer_ref};

#[derive(Debug, Clone, clap::Args)]
pub struct KafkaArgs {
    /// Bootstrap brokers.
    #[arg(long, env = "KAFKA_BROKERS")]
    pub brokers: String,
    /// Partitions of the topics the benchmark creates.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub partitions: u32,
    /// How long each publish run lasts.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub seconds: u64,
    /// Events per publish batch.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub batch: u32,
    /// Concurrent publishing tasks, each on its own connection.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub clients: u32,
    /// Distinct customers the events are spread over.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub customers: u64,
    /// Events in the log before the failover; 0 skips the failover.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(0..=10_000_000))]
    pub failover_events: u64,
    /// Standby copies of each partition the failover's nodes keep (`--standby-replicas`);
    /// 2, one on each other node, makes sure the new owner has one.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(0..=2))]
    pub standby_replicas: u32,
    /// How long the failover waits, once every partition answers, before the `kill -9`: the
    /// standby copies catch up meanwhile.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub failover_settle_seconds: u64,
    /// How long nodes may take to answer for every partition (after starting, or after the
    /// kill) before the run fails: a slow broker needs more with standby copies.
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=7200))]
    pub ready_seconds: u64,
}

/// Retention of the topics the benchmark creates: tansu 0.6 deletes the records of topics kept
/// forever (docs/kafka-testing.md).
const RETENTION: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// Events generated per round of the fill (split over the partitions).
const FILL_BATCH: usize = 3_000;

/// A topic and group name no earlier run used.
fn fresh_name(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("rezef-bench-{what}-{nanos}")
}

pub async fn run(base: &Path, args: &KafkaArgs) -> Result<Report> {
    let mut report = Report::new(format!(
        "kafka: {} partitions, batches of {}, {} clients, {} customers",
        args.partitions,
        args.batch,
        args.clients,
        thousands(args.customers as f64)
    ));
    let ingest = IngestArgs {
        batch: args.batch,
        seconds: args.seconds,
        clients: args.clients,
        customers: args.customers,
    };

    // 1. The same load on the embedded log, then on the topic.
    let embedded = BenchServer::start(base).await?;
    let published = publish_for(embedded.clients(args.clients as usize).await?, &ingest).await?;
    embedded.stop().await?;
    row(&mut report, "publish, embedded log", &published);

    let topic = fresh_name("publish");
    let on_kafka = |dir: tempfile::TempDir| {
        let (brokers, topic, partitions) = (args.brokers.clone(), topic.clone(), args.partitions);
        BenchServer::open_with(dir, move |config| {
            config.log.backend = LogBackend::Kafka;
            config.log.kafka.brokers = brokers;
            config.log.kafka.topic = topic.clone();
            config.log.kafka.group = topic;
            config.log.kafka.partitions = partitions;
            config.log.kafka.retention_ms = i64::try_from(RETENTION.as_millis()).unwrap_or(-1);
        })
    };
    let server = on_kafka(temp_dir(base, "rezef-bench-kafka-")?).await?;
    let probes = probes(args.partitions, args.customers)?;
    ready(&mut server.client().await?, &probes, args.ready_seconds).await?;
    let published = publish_for(server.clients(args.clients as usize).await?, &ingest).await?;
    server.stop().await?;
    row(&mut report, "publish, Kafka log (tansu)", &published);

    // 2. A fresh node folds the whole topic.
    let started = Instant::now();
    let fresh = on_kafka(temp_dir(base, "rezef-bench-kafka-fresh-")?).await?;
    ready(&mut fresh.client().await?, &probes, args.ready_seconds).await?;
    let folded = started.elapsed();
    fresh.stop().await?;
    report.row(
        "projection per node: a fresh node folds the topic",
        format!(
            "{} events in {:.1} s: {} events/s (joining the group included)",
            thousands(published.events as f64),
            folded.as_secs_f64(),
            thousands(published.events as f64 / folded.as_secs_f64())
        ),
    );

    // 3. Failover.
    if args.failover_events > 0
        && let Err(error) = failover(base, args, &probes, &mut report).await
    {
        report.row("failover: failed", format!("{error:#}"));
    }
    report.note(
        "The broker is tansu 0.6 with SQLite storage on the same 2 cores (scripts/kafka-broker). \
         Kafka acknowledges with acks=all from an idempotent producer; the embedded log fsyncs \
         each batch.",
    );
    Ok(report)
}

fn row(report: &mut Report, what: &str, published: &Published) {
    let seconds = published.elapsed.as_secs_f64();
    report.row(
        what,
        format!(
            "{} events/s; batch p50 {} / p99 {} / max {} ms",
            thousands(published.events as f64 / seconds),
            ms(published.latency.ms(0.50)),
            ms(published.latency.ms(0.99)),
            ms(published.latency.max_ms()),
        ),
    );
}

/// One customer of the workload on each partition: calls about them show whether the
/// partition is served.
fn probes(partitions: u32, customers: u64) -> Result<Vec<proto::CustomerRef>> {
    let partitioner = Partitioner::new(NonZeroU32::new(partitions).context("no partitions")?);
    let tenant = TenantId::new(TENANT).map_err(|e| anyhow!("{e}"))?;
    let mut found = BTreeMap::new();
    for n in 0..customers {
        let id = CustomerId::new(customer_id(n)).map_err(|e| anyhow!("{e}"))?;
        found.entry(partitioner.customer(&tenant, &id)).or_insert(n);
        if found.len() == partitions as usize {
            return Ok(found.values().map(|&n| customer_ref(n)).collect());
        }
    }
    bail!("{customers} customers do not cover {partitions} partitions")
}

/// Waits until a call about each probe is answered (not `UNAVAILABLE`).
async fn ready(client: &mut Client, probes: &[proto::CustomerRef], within: u64) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(within);
    for probe in probes {
        loop {
            match client.journey(TENANT, probe.clone(), None).await {
                Err(rezef_adapter::Error::Status(s)) if s.code() == Code::Unavailable => {
                    if Instant::now() > deadline {
                        bail!("a partition did not come back: {}", s.message());
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                _ => break,
            }
        }
    }
    Ok(())
}

/// A `rezef serve` process of the failover measurement.
struct Node {
    child: Child,
    url: String,
}

impl Node {
    fn start(binary: &Path, dir: &Path, args: &KafkaArgs, topic: &str, id: usize) -> Result<Node> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new(binary)
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .args(["--dashboard-listen", "127.0.0.1:0"])
            .arg(dir)
            .args(["--log", "kafka", "--kafka-brokers", &args.brokers])
            .args(["--kafka-topic", topic, "--kafka-group", topic])
            .args(["--kafka-partitions", &args.partitions.to_string()])
            .args(["--kafka-retention-ms", &RETENTION.as_millis().to_string()])
            .args(["--node-id", &format!("bench-{id}")])
            .args(["--standby-replicas", &args.standby_replicas.to_string()])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        Ok(Node {
            child,
            url: format!("http://127.0.0.1:{port}"),
        })
    }

    async fn client(&self) -> Result<Client> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match Client::connect(self.url.clone()).await {
                Ok(client) => return Ok(client),
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => return Err(e).context("connecting to a node"),
            }
        }
    }

    /// How many of the probes this node serves itself.
    async fn serves(&self, probes: &[proto::CustomerRef]) -> Result<usize> {
        let client = self.client().await?;
        let mut served = 0;
        for probe in probes {
            let mut request = tonic::Request::new(proto::GetJourneyRequest {
                tenant_id: TENANT.into(),
                customer: Some(probe.clone()),
                ..Default::default()
            });
            request
                .metadata_mut()
                .insert(rezef_server::ROUTE_HEADER, "self".parse()?);
            match client.journeys().get_journey(request).await {
                Err(s) if s.code() == Code::Unavailable => {}
                _ => served += 1,
            }
        }
        Ok(served)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `rezef` binary built beside this one (`cargo build --release -p rezef -p rezef-bench`).
fn rezef_binary() -> Result<PathBuf> {
    let here = std::env::current_exe()?;
    let binary = here.with_file_name("rezef");
    if !binary.exists() {
        bail!(
            "{} is missing: build it with `cargo build --release -p rezef`",
            binary.display()
        );
    }
    Ok(binary)
}

async fn failover(
    base: &Path,
    args: &KafkaArgs,
    probes: &[proto::CustomerRef],
    report: &mut Report,
) -> Result<()> {
    let binary = rezef_binary()?;
    let topic = fresh_name("failover");
    let filled = fill(args, &topic).await?;
    report.row(
        "failover: log filled directly",
        format!(
            "{} events in {:.1} s ({} events/s)",
            thousands(filled.0 as f64),
            filled.1.as_secs_f64(),
            thousands(filled.0 as f64 / filled.1.as_secs_f64())
        ),
    );

    let dirs = (0..3)
        .map(|_| temp_dir(base, "rezef-bench-node-"))
        .collect::<Result<Vec<_>>>()?;
    let started = Instant::now();
    let mut nodes = Vec::new();
    for (id, dir) in dirs.iter().enumerate() {
        nodes.push(Node::start(&binary, dir.path(), args, &topic, id)?);
    }
    ready(&mut nodes[0].client().await?, probes, args.ready_seconds).await?;
    let caught_up = started.elapsed();
    report.row(
        "failover: three nodes start and fold their partitions",
        format!("{:.1} s", caught_up.as_secs_f64()),
    );

    tokio::time::sleep(Duration::from_secs(args.failover_settle_seconds)).await;
    let mut shares = Vec::new();
    for node in &nodes {
        shares.push(node.serves(probes).await?);
    }
    let victim = (0..nodes.len())
        .max_by_key(|&i| shares[i])
        .context("three nodes")?;
    let mut killed = nodes.remove(victim);
    let killed_at = Instant::now();
    killed.child.kill().context("kill -9")?;
    killed.child.wait()?;
    ready(&mut nodes[0].client().await?, probes, args.ready_seconds).await?;
    let failover = killed_at.elapsed();
    report.row(
        "failover: `kill -9` of a node → all partitions answer again",
        format!(
            "{:.1} s (the node served {} of {} partitions; {} events in the log; {} standby \
             copies of each partition, killed {} s after all partitions answered)",
            failover.as_secs_f64(),
            shares[victim],
            args.partitions,
            thousands(filled.0 as f64),
            args.standby_replicas,
            args.failover_settle_seconds
        ),
    );
    Ok(())
}

/// Appends `failover_events` workload events to a new topic, each to its customer's
/// partition, straight through the Kafka log (not the subject).
async fn fill(args: &KafkaArgs, topic: &str) -> Result<(u64, Duration)> {
    let mut config = KafkaConfig::new(&args.brokers, topic, 0);
    config.request_timeout = Duration::from_secs(120);
    let partitions = i32::try_from(args.partitions)?;
    let mut settings = TopicSettings::new(partitions, 1);
    settings.retention = Some(RETENTION);
    ensure_topic(&config, &settings).await?;
    let mut logs = Vec::new();
    for partition in 0..partitions {
        config.partition = partition;
        logs.push(KafkaLog::open(config.clone()).await?);
    }
    let partitioner = Partitioner::new(NonZeroU32::new(args.partitions).context("partitions")?);
    let mut workload = Workload::new(args.customers, 0xfa11);
    let started = Instant::now();
    let mut filled = 0;
    while filled < args.failover_events {
        let (_, batch) = workload.batch(FILL_BATCH);
        let mut parts: BTreeMap<u32, Vec<Bytes>> = BTreeMap::new();
        for event in batch {
            let event = rezef_server::convert::event_from_proto(event)
                .map_err(|v| anyhow!("the workload made an invalid event: {v:?}"))?;
            let payload = Bytes::from(rezef_record::encode(&event));
            parts
                .entry(partitioner.event(&event))
                .or_default()
                .push(payload);
        }
        let appends = parts
            .into_iter()
            .map(|(partition, payloads)| logs[partition as usize].append(payloads));
        for appended in futures::future::join_all(appends).await {
            filled += u64::from(appended?.count);
        }
    }
    let elapsed = started.elapsed();
    for log in logs {
        log.close().await;
    }
    Ok((filled, elapsed))
}
