//! Operational metrics for Prometheus: `/metrics` over HTTP on a port of its own
//! (`[metrics]`, off by default), in Prometheus's text format (0.0.4).
//!
//! Built on `prometheus-client` (the Prometheus project's Rust client) rather than the
//! `metrics` facade: its registry belongs to the server, not to the process, so two servers
//! in one process (the tests, `rezef demo`) count apart, and its collectors read gauges
//! when scraped, so a queue or a partition that went away leaves no stale series behind.
//! The endpoint is a few lines of hyper 1, already under tonic.
//!
//! - `names`: every metric's name, unit, labels and help (the one list).
//! - [`Metrics`]: what the hot paths record into, handles made once: a publish batch costs
//!   a counter increment and a histogram observation, a gRPC call a map lookup by its path,
//!   and neither allocates for labels.
//! - `grpc`: the tower layer that counts and times every gRPC call, in one place.
//! - `collect`: what is read when scraped (projector lag, disk, cache, routing, partitions).
//! - `endpoint`: the HTTP listener.

mod collect;
mod endpoint;
mod grpc;
pub mod names;

use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Metric, Registry};
use rezef_store::CheckpointObserver;

pub use collect::Scrape;
pub use endpoint::Endpoint;
pub use grpc::{Calls, CallsLayer};

use names::Def;

/// One label with a value known when the code is written.
type Static = [(&'static str, &'static str); 1];
/// A histogram family made with fixed buckets.
type Histograms<S> = Family<S, Histogram, fn() -> Histogram>;

/// The figures recorded as things happen, always (an atomic add costs less than asking
/// whether anyone reads them). The gRPC calls' ([`Calls`]) are made, and their layer put in
/// front of the services, only when `/metrics` is served; those read when scraped are in
/// `collect`.
#[derive(Debug, Clone)]
pub struct Metrics {
    pub ingest: Ingest,
    pub checkpoints: Checkpoints,
}

impl Metrics {
    pub fn new() -> Self {
        Self {
            ingest: Ingest::new(),
            checkpoints: Checkpoints(Family::new_with_constructor(|| {
                Histogram::new(names::CHECKPOINT_BUCKETS)
            })),
        }
    }

    /// A registry of every metric: these handles, the gRPC calls', and `scrape` for what
    /// is read when scraped.
    pub fn registry(&self, calls: &Calls, scrape: Scrape) -> Registry {
        let mut registry = Registry::default();
        let r = &mut registry;
        add(r, names::INGEST_BATCHES, self.ingest.batches.clone());
        add(r, names::INGEST_EVENTS, self.ingest.events.clone());
        add(r, names::INGEST_APPEND_SECONDS, self.ingest.append.clone());
        add(r, names::CHECKPOINT_SECONDS, self.checkpoints.0.clone());
        calls.register(r);
        registry.register_collector(Box::new(scrape));
        registry
    }
}

/// Registers `metric` under its definition's name and help.
fn add(registry: &mut Registry, def: Def, metric: impl Metric) {
    registry.register(def.name, def.help, metric);
}

/// The publish path's figures.
#[derive(Debug, Clone)]
pub struct Ingest {
    batches: Family<Static, Counter>,
    events: Counter,
    append: Histogram,
}

impl Ingest {
    fn new() -> Self {
        Self {
            batches: Family::default(),
            events: Counter::default(),
            append: Histogram::new(names::APPEND_BUCKETS),
        }
    }

    /// A publish batch answered with `code`.
    pub fn batch(&self, code: tonic::Code) {
        let result = [("result", crate::error::code_name(code))];
        self.batches.get_or_create(&result).inc();
    }

    /// `events` appended to a partition's log, durable after `took`.
    pub fn appended(&self, events: u64, took: Duration) {
        self.events.inc_by(events);
        self.append.observe(took.as_secs_f64());
    }
}

/// How long checkpoints take, told by every journey store the node opens.
#[derive(Debug, Clone)]
pub struct Checkpoints(Histograms<Static>);

impl CheckpointObserver for Checkpoints {
    fn checkpoint(&self, took: Duration, written: bool) {
        let result = [("result", if written { "written" } else { "failed" })];
        self.0.get_or_create(&result).observe(took.as_secs_f64());
    }
}
