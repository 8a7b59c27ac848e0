//! Concurrent reads, taken the same way by every read benchmark (`get-journey`, `resume`):
//! many client tasks over a few HTTP/2 connections calling the real server, and the same
//! lookups in process, on plain threads without gRPC, as the baseline that shows what the
//! transport costs.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use rezef_adapter::Client;

use crate::harness::{BenchServer, Latency, Report, Rng, thousands};

/// Threads of the in-process baselines: the machine's 2 cores.
pub const BASELINE_THREADS: usize = 2;

/// How an in-process baseline is capped, so that it does not dominate a run.
pub const BASELINE_MAX: Duration = Duration::from_secs(5);

/// One call of a reading task, on its client, for a customer number.
pub type CallFuture<'a> = Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>>;

/// What a read run measured.
#[derive(Debug)]
pub struct Reads {
    pub latency: Latency,
    pub elapsed: Duration,
}

impl Reads {
    pub fn per_s(&self) -> f64 {
        self.latency.count() as f64 / self.elapsed.as_secs_f64()
    }
}

/// Reports the two in-process baselines of a read benchmark: the store lookups alone
/// (`lookups`, what they are) and the handler's whole work without transport (`work`).
pub fn report_baselines(report: &mut Report, lookups: (&str, &Reads), work: (&str, &Reads)) {
    report.row(
        format!("in-process {}, {BASELINE_THREADS} threads", lookups.0),
        format!(
            "{} lookups/s, {}",
            thousands(lookups.1.per_s()),
            lookups.1.latency.summary()
        ),
    );
    report.row(
        format!("in-process handler work without transport, {BASELINE_THREADS} threads"),
        format!(
            "{} req/s, {} ({})",
            thousands(work.1.per_s()),
            work.1.latency.summary(),
            work.0
        ),
    );
}

/// The shape of a gRPC read run.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    /// Concurrent tasks, each with one call in flight.
    pub tasks: u32,
    /// HTTP/2 connections the tasks are spread over.
    pub connections: u32,
    pub duration: Duration,
    /// Each call reads a random customer number below this.
    pub customers: u64,
    /// Seeds each task's choice of customers.
    pub seed: u64,
}

/// Runs `load.tasks` tasks calling `call` on random customers until `load.duration` is over.
pub async fn over_grpc<F>(server: &BenchServer, load: Load, call: F) -> Result<Reads>
where
    F: for<'a> Fn(&'a mut Client, u64) -> CallFuture<'a> + Send + Sync + 'static,
{
    let call = Arc::new(call);
    let connections = server.clients(load.connections as usize).await?;
    let started = Instant::now();
    let deadline = started + load.duration;
    let mut tasks = Vec::new();
    for i in 0..load.tasks as usize {
        let mut client = connections[i % connections.len()].clone();
        let mut rng = Rng::new(load.seed + i as u64);
        let call = call.clone();
        tasks.push(tokio::spawn(async move {
            let mut latency = Latency::new()?;
            while Instant::now() < deadline {
                let customer = rng.below(load.customers);
                let sent = Instant::now();
                call(&mut client, customer).await?;
                latency.record(sent.elapsed());
            }
            anyhow::Ok(latency)
        }));
    }
    let mut latency = Latency::new()?;
    for task in tasks {
        latency.merge(&task.await.context("a reading task panicked")??)?;
    }
    Ok(Reads {
        latency,
        elapsed: started.elapsed(),
    })
}

/// Runs `lookup` on random keys from [`BASELINE_THREADS`] threads for `duration`, off the
/// async runtime. `lookup` returns a size, so that its work cannot be optimised away.
pub async fn in_process<K: Send + Sync + 'static>(
    duration: Duration,
    keys: Vec<K>,
    lookup: impl Fn(&K) -> Result<usize> + Send + Sync + 'static,
) -> Result<Reads> {
    if keys.is_empty() {
        return Err(anyhow!("an in-process baseline needs keys"));
    }
    tokio::task::spawn_blocking(move || threads(BASELINE_THREADS, duration, keys, lookup))
        .await
        .context("the baseline panicked")?
}

fn threads<K: Send + Sync + 'static>(
    threads: usize,
    duration: Duration,
    keys: Vec<K>,
    lookup: impl Fn(&K) -> Result<usize> + Send + Sync + 'static,
) -> Result<Reads> {
    let lookup = Arc::new(lookup);
    let keys = Arc::new(keys);
    let started = Instant::now();
    let deadline = started + duration;
    let mut handles = Vec::new();
    for t in 0..threads {
        let (lookup, keys) = (lookup.clone(), keys.clone());
        handles.push(std::thread::spawn(move || {
            let mut rng = Rng::new(0xba5e + t as u64);
            let mut latency = Latency::new()?;
            let mut sink = 0usize;
            while Instant::now() < deadline {
                let key = &keys[rng.below(keys.len() as u64) as usize];
                let at = Instant::now();
                sink = sink.wrapping_add(lookup(key)?);
                latency.record(at.elapsed());
            }
            std::hint::black_box(sink);
            anyhow::Ok(latency)
        }));
    }
    let mut latency = Latency::new()?;
    for handle in handles {
        let result = handle
            .join()
            .map_err(|_| anyhow!("a baseline thread panicked"))??;
        latency.merge(&result)?;
    }
    Ok(Reads {
        latency,
        elapsed: started.elapsed(),
    })
}
