//! `GetJourney` under concurrent load, and the same lookups in-process, so that the cost of
//! the gRPC path is visible next to the store's own.
//!
//! Why: routing engines and agent desktops read journeys far more often than adapters write
//! them. 10,000 customers with ~10 events each are published (through Publish, so the
//! projection is the real one), then many client tasks, multiplexed over a few HTTP/2
//! connections, read random customers by customer id. Afterwards, with the server stopped,
//! the store is opened in-process and the same lookups run from two threads: once as
//! `JourneyStore::journey` alone, once as the whole handler's work without the transport
//! (resolve, load, convert to protobuf, encode).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use prost::Message;
use rezef_adapter::proto;
use rezef_events::{CustomerId, TenantId};
use rezef_store::{JourneyStore, SledStore};

use crate::harness::{BenchServer, Report, Target, thousands};
use crate::reads::{self, BASELINE_MAX, Load};
use crate::workload::{TENANT, Workload, customer_id, customer_ref};

/// The goals for GetJourney.
pub const TARGET_REQ_PER_S: f64 = 20_000.0;
pub const TARGET_P99_MS: f64 = 5.0;

/// Preload batches and the tasks publishing them.
const PRELOAD_BATCH: usize = 1000;
const PRELOAD_CLIENTS: usize = 4;

#[derive(Debug, Clone, clap::Args)]
pub struct GetJourneyArgs {
    /// Concurrent reading tasks.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub clients: u32,
    /// HTTP/2 connections the tasks are spread over.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub connections: u32,
    /// How long to read (each in-process baseline runs for at most 5 s of it).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub seconds: u64,
    /// Customers preloaded.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub customers: u64,
    /// Events per preloaded customer.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub events_per_customer: u32,
}

pub async fn run(base: &Path, args: &GetJourneyArgs) -> Result<Report> {
    let preload_events = args.customers * u64::from(args.events_per_customer);
    if preload_events > 10_000_000 {
        return Err(anyhow!(
            "the preload is limited to 10,000,000 events (asked {preload_events})"
        ));
    }
    let server = BenchServer::start(base).await?;
    let preload_started = Instant::now();
    let last_offset = preload(&server, args.customers, args.events_per_customer).await?;
    // Wait until every preloaded event is projected.
    let mut client = server.client().await?;
    client
        .journey(TENANT, customer_ref(0), Some(last_offset))
        .await
        .context("waiting for the projection of the preload")?;
    let preload_elapsed = preload_started.elapsed();

    let load = Load {
        tasks: args.clients,
        connections: args.connections,
        duration: Duration::from_secs(args.seconds),
        customers: args.customers,
        seed: 0x9e7,
    };
    let grpc = reads::over_grpc(&server, load, |client, customer| {
        Box::pin(async move {
            client
                .journey(TENANT, customer_ref(customer), None)
                .await
                .context("GetJourney")?;
            Ok(())
        })
    })
    .await?;
    let dir = server.stop().await?;

    let store = Arc::new(SledStore::open(dir.path().join("store")).context("reopening the store")?);
    let baseline_for = Duration::from_secs(args.seconds).min(BASELINE_MAX);
    let tenant = TenantId::new(TENANT).map_err(|e| anyhow!("tenant: {e}"))?;
    let ids: Vec<CustomerId> = (0..args.customers)
        .map(|n| CustomerId::new(customer_id(n)).map_err(|e| anyhow!("customer id: {e}")))
        .collect::<Result<_>>()?;
    let load = {
        let store = store.clone();
        move |customer: &CustomerId| {
            store
                .journey(&tenant, customer)?
                .ok_or_else(|| anyhow!("customer {customer} not found"))
        }
    };
    let lookups = reads::in_process(baseline_for, ids.clone(), {
        let load = load.clone();
        move |customer| Ok(load(customer)?.conversations.len())
    })
    .await?;
    // What the handler does for a customer: one load, convert, encode.
    let handler = reads::in_process(baseline_for, ids, move |customer| {
        let response = proto::GetJourneyResponse {
            journey: Some(rezef_server::convert::journey_to_proto(
                &load(customer)?,
                &rezef_server::convert::View::masked(),
            )),
            projected_offset: 0,
        };
        Ok(response.encode_to_vec().len())
    })
    .await?;
    drop(store);

    let mut report = Report::new(format!(
        "get-journey: {} tasks over {} connections, {} customers, {} s",
        args.clients,
        args.connections,
        thousands(args.customers as f64),
        args.seconds
    ));
    report.row(
        "preload (Publish, then wait for projection)",
        format!(
            "{} events in {:.1} s",
            thousands(preload_events as f64),
            preload_elapsed.as_secs_f64()
        ),
    );
    report.row(
        "**GetJourney over gRPC**",
        format!("**{} req/s**", thousands(grpc.per_s())),
    );
    report.row("GetJourney latency", grpc.latency.summary());
    reads::report_baselines(
        &mut report,
        ("JourneyStore::journey", &lookups),
        ("1 lookup + journey_to_proto + encode", &handler),
    );
    report.row(
        "gRPC ÷ in-process store throughput",
        format!("{:.2}", grpc.per_s() / lookups.per_s().max(1e-9)),
    );
    report.headline(
        format!(
            "{} req/s over gRPC; in-process store {} lookups/s, handler {} req/s",
            thousands(grpc.per_s()),
            thousands(lookups.per_s()),
            thousands(handler.per_s())
        ),
        format!(
            "gRPC {}; store p50 {} / p99 {} ms",
            grpc.latency.summary(),
            crate::harness::ms(lookups.latency.ms(0.5)),
            crate::harness::ms(lookups.latency.ms(0.99))
        ),
    );
    report.target(Target::at_least(
        "GetJourney throughput",
        grpc.per_s(),
        TARGET_REQ_PER_S,
        "req/s",
    ));
    report.target(Target::at_most(
        "GetJourney p99",
        grpc.latency.ms(0.99),
        TARGET_P99_MS,
        "ms",
    ));
    report.note(
        "The reading tasks run in the same process as the server and share its 2 cores: the \
         gRPC figure pays for the client side (encode, HTTP/2, decode) too.",
    );
    Ok(report)
}

/// Publishes `events_per_customer` events for every one of `customers`, in batches, from
/// several connections; returns the highest offset acknowledged.
pub async fn preload(
    server: &BenchServer,
    customers: u64,
    events_per_customer: u32,
) -> Result<u64> {
    let mut workload = Workload::new(customers, 0x6e7);
    let mut batches = Vec::new();
    let mut batch = Vec::with_capacity(PRELOAD_BATCH);
    for _ in 0..events_per_customer {
        for customer in 0..customers {
            batch.push(workload.next_for(customer));
            if batch.len() == PRELOAD_BATCH {
                batches.push(std::mem::take(&mut batch));
            }
        }
    }
    if !batch.is_empty() {
        batches.push(batch);
    }
    let batches = Arc::new(std::sync::Mutex::new(batches.into_iter()));
    let mut tasks = Vec::new();
    for mut client in server.clients(PRELOAD_CLIENTS).await? {
        let batches = batches.clone();
        tasks.push(tokio::spawn(async move {
            let mut last = 0u64;
            loop {
                let next = batches.lock().map_err(|_| anyhow!("poisoned"))?.next();
                let Some(events) = next else { break };
                let ack = client.publish(events).await.context("preload publish")?;
                last = last.max(ack.first_offset + u64::from(ack.count).saturating_sub(1));
            }
            anyhow::Ok(last)
        }));
    }
    let mut last = 0;
    for task in tasks {
        last = last.max(task.await.context("a preload task panicked")??);
    }
    Ok(last)
}
