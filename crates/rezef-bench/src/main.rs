//! `rezef-bench`: the benchmark harness of Rezef.
//!
//! Each benchmark starts what it measures for real (an in-process `rezef_server::Server` on
//! `127.0.0.1:0` over a fresh temp data directory, spoken to through `rezef_adapter::Client`
//! over gRPC, or the log and store directly where that is the subject), runs for a bounded
//! time or count, and prints Markdown: the figures, p50/p99 latencies from HDR histograms, and
//! the targets marked PASS or MISS. `all` runs every benchmark in sequence and ends
//! with a summary table; that output is what BENCHMARKS.md records.
//!
//! Layout: `harness` (server, histograms, report), `workload` (the synthetic events), `reads`
//! (concurrent reads over gRPC and in process), `fill` (a large store written directly),
//! `contact_centre` (a contact centre's events, for the measurement), `month` (a contact
//! centre's month folded and measured, for reports), `simulated` (simulated days, for
//! `measure-cost --simulated-contacts-per-day`), and one file per benchmark: `ingest`,
//! `adapter` (the SDK's publisher against the raw client, and its spool's replay),
//! `projection`, `measure_cost`, `seal_cost`, `partitions`, `freshness`, `get_journey`, `grpc_load`,
//! `auth_load` and `report_load` (calls loaded by h2load from another process), `resume`, `as_of`,
//! `identity_fold`, `routing`, `kafka`, `report`.

mod adapter;
mod as_of;
mod auth_load;
mod certificate;
mod contact_centre;
mod fill;
mod freshness;
mod get_journey;
mod grpc_load;
mod harness;
mod identity_fold;
mod ingest;
mod kafka;
mod long_history;
mod measure_cost;
mod month;
mod partitions;
mod projection;
mod reads;
mod report;
mod report_load;
mod resume;
mod routing;
mod seal_cost;
mod simulated;
mod workload;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use clap::{Parser, Subcommand};

use crate::harness::{CpuSampler, Report, targets_table};

#[derive(Debug, Parser)]
#[command(
    name = "rezef-bench",
    about = "Rezef's benchmarks: ingest, projection, freshness, GetJourney, ResumeConversation, identity fold, routing, reports"
)]
struct Cli {
    /// Where the temp data directories go (on the disk you want to measure).
    #[arg(long, global = true, env = "REZEF_BENCH_DIR")]
    dir: Option<PathBuf>,
    /// Hard limit for the whole run; past it the process exits with an error.
    #[arg(long, global = true, default_value_t = 1200, value_parser = clap::value_parser!(u64).range(1..=7200))]
    timeout_seconds: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Durable ingest over gRPC, with the raw fsync baseline of the same disk.
    Ingest(ingest::IngestArgs),
    /// The SDK's publisher against the raw client on the same server, and the spool's
    /// replay after an outage.
    Adapter(adapter::AdapterArgs),
    /// Rebuild of the journey projection from a large log.
    Projection(projection::ProjectionArgs),
    /// Rebuild of a contact centre's log with measurement off and on, alternated: what the
    /// measurement projection costs.
    MeasureCost(measure_cost::MeasureCostArgs),
    /// Load and rebuild with personal values plain and sealed, alternated: what sealing
    /// costs them.
    SealCost(seal_cost::SealCostArgs),
    /// Rebuild over several partitions of the embedded log side by side, against one.
    Partitions(partitions::PartitionsArgs),
    /// Publish ack → visible in GetJourney, under a steady publish rate.
    Freshness(freshness::FreshnessArgs),
    /// GetJourney under concurrent load, with an in-process baseline.
    GetJourney(get_journey::GetJourneyArgs),
    /// GetJourney and ResumeConversation loaded by h2load from another process, beside
    /// grpc.health.v1.Health/Check on the same server.
    GrpcLoad(grpc_load::GrpcLoadArgs),
    /// GetJourney and Publish without keys, with API keys, and with keys over TLS, loaded by
    /// h2load, side by side.
    AuthLoad(auth_load::AuthLoadArgs),
    /// ResumeConversation by phone over a large store, with in-process baselines.
    Resume(resume::ResumeArgs),
    /// GetJourney as of a point, for a customer with a long history, beside GetJourney now.
    AsOf(as_of::AsOfArgs),
    /// Rebuild with 20% identity links and merges, against a rebuild without them.
    #[command(alias = "identity")]
    IdentityFold(identity_fold::IdentityFoldArgs),
    /// Routing decisions and agent available → offer, in the engine and over gRPC.
    Routing(routing::RoutingArgs),
    /// Rezef on a Kafka log: publish beside the embedded log, projection per node, failover.
    Kafka(kafka::KafkaArgs),
    /// GetReport's work over a month of measured contacts.
    Report(report::ReportArgs),
    /// GetReport over gRPC on a month of measured contacts, loaded by h2load beside
    /// grpc.health.v1.Health/Check on the same server.
    ReportLoad(report_load::ReportLoadArgs),
    /// Every benchmark in sequence, then a summary table.
    All(AllArgs),
}

#[derive(Debug, Clone, clap::Args)]
struct AllArgs {
    /// Duration of each timed measurement.
    #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u64).range(1..=120))]
    seconds: u64,
    /// Events of the projection benchmark.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1_000..=10_000_000))]
    events: u64,
    /// Customers in the store of the resume benchmark.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    resume_customers: u64,
    /// Concurrent clients of the ingest runs.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=256))]
    clients: u32,
}

/// mimalloc, not glibc's malloc: the projection allocates and frees journeys at a high rate
/// (docs/architecture.md, "The projection").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<()> {
    let cli = Cli::parse();
    let base = cli.dir.clone().unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&base).with_context(|| format!("creating {}", base.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let limit = Duration::from_secs(cli.timeout_seconds);
    runtime.block_on(async move {
        tokio::time::timeout(limit, run(cli.command, base))
            .await
            .map_err(|_| anyhow!("the run exceeded --timeout-seconds {}", limit.as_secs()))?
    })
}

async fn run(command: Command, base: PathBuf) -> Result<()> {
    let started = Instant::now();
    let report = match command {
        Command::Ingest(args) => with_cpu(ingest::run(&base, &args)).await?,
        Command::Adapter(args) => with_cpu(adapter::run(&base, &args)).await?,
        Command::Projection(args) => with_cpu(projection::run(&base, &args)).await?,
        Command::MeasureCost(args) => with_cpu(measure_cost::run(&base, &args)).await?,
        Command::SealCost(args) => with_cpu(seal_cost::run(&base, &args)).await?,
        Command::Partitions(args) => with_cpu(partitions::run(&base, &args)).await?,
        Command::Freshness(args) => with_cpu(freshness::run(&base, &args)).await?,
        Command::GetJourney(args) => with_cpu(get_journey::run(&base, &args)).await?,
        Command::GrpcLoad(args) => with_cpu(grpc_load::run(&base, &args)).await?,
        Command::AuthLoad(args) => with_cpu(auth_load::run(&base, &args)).await?,
        Command::Resume(args) => with_cpu(resume::run(&base, &args)).await?,
        Command::AsOf(args) => with_cpu(as_of::run(&base, &args)).await?,
        Command::IdentityFold(args) => with_cpu(identity_fold::run(&base, &args)).await?,
        Command::Routing(args) => with_cpu(routing::run(&base, &args)).await?,
        Command::Kafka(args) => with_cpu(kafka::run(&base, &args)).await?,
        Command::Report(args) => with_cpu(report::run(&base, &args)).await?,
        Command::ReportLoad(args) => with_cpu(report_load::run(&base, &args)).await?,
        Command::All(args) => return all(&base, &args).await,
    };
    println!("{}", report.markdown());
    eprintln!("done in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Runs a benchmark and adds how busy the machine was meanwhile to its report.
async fn with_cpu(bench: impl Future<Output = Result<Report>>) -> Result<Report> {
    let sampler = CpuSampler::start();
    let mut report = bench.await?;
    if let Some(sampler) = sampler {
        report.row("CPU during the whole benchmark", sampler.describe());
        report.cpu = sampler.finish();
    }
    Ok(report)
}

async fn all(base: &std::path::Path, args: &AllArgs) -> Result<()> {
    let started = Instant::now();
    let seconds = args.seconds;
    let ingest = |batch, clients| ingest::IngestArgs {
        batch,
        seconds,
        clients,
        customers: 100_000,
    };
    let mut reports: Vec<Report> = Vec::new();
    let mut step = |report: Report| {
        println!("{}", report.markdown());
        reports.push(report);
    };
    eprintln!("[1/9] ingest, batches of 100");
    step(with_cpu(ingest::run(base, &ingest(100, args.clients))).await?);
    eprintln!("[2/9] ingest, batches of 1,000");
    step(with_cpu(ingest::run(base, &ingest(1000, args.clients))).await?);
    eprintln!("[3/9] ingest, batches of 1,000, one client (like for like with the baseline)");
    step(with_cpu(ingest::run(base, &ingest(1000, 1))).await?);
    eprintln!("[4/9] projection");
    let projection = projection::ProjectionArgs {
        events: args.events,
        customers: (args.events / 10).max(1),
        no_breakdown: false,
        settings: Default::default(),
    };
    step(with_cpu(projection::run(base, &projection)).await?);
    eprintln!("[5/9] freshness");
    let freshness = freshness::FreshnessArgs {
        rate: 10_000,
        seconds,
        batch: 100,
        customers: 10_000,
    };
    step(with_cpu(freshness::run(base, &freshness)).await?);
    eprintln!("[6/9] get-journey");
    let get_journey = get_journey::GetJourneyArgs {
        clients: 64,
        connections: 8,
        seconds,
        customers: 10_000,
        events_per_customer: 10,
    };
    step(with_cpu(get_journey::run(base, &get_journey)).await?);
    eprintln!("[7/9] resume");
    let resume = resume::ResumeArgs {
        clients: 64,
        connections: 8,
        seconds,
        customers: args.resume_customers,
        history: 10_000,
        cache_mib: None,
        cold: false,
    };
    step(with_cpu(resume::run(base, &resume)).await?);
    eprintln!("[8/9] identity-fold");
    let identity_fold = identity_fold::IdentityFoldArgs {
        events: args.events,
        customers: (args.events / 10).max(2),
    };
    step(with_cpu(identity_fold::run(base, &identity_fold)).await?);
    eprintln!("[9/9] routing");
    let routing = routing::RoutingArgs {
        agents: 5_000,
        queues: 200,
        waiting: 10_000,
        seconds,
        op_seconds: seconds,
        max_ops: 5_000,
        clients: 64,
        connections: 8,
        sessions: 0,
        session_connections: 8,
        engine_only: false,
    };
    step(with_cpu(routing::run(base, &routing)).await?);

    println!("## Summary\n");
    println!(
        "| benchmark | throughput | latency | cores: this process / others |\n|---|---|---|---|"
    );
    for report in &reports {
        if let Some((throughput, latency)) = &report.headline {
            let cpu = report.cpu.map_or_else(
                || "n/a".into(),
                |(own, others)| format!("{own:.2} / {others:.2}"),
            );
            println!("| {} | {throughput} | {latency} | {cpu} |", report.title);
        }
    }
    println!();
    let targets: Vec<_> = reports
        .iter()
        .flat_map(|r| r.targets.iter().cloned())
        .collect();
    println!("{}", targets_table(&targets));
    println!("Total time: {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}
