//! Rezef's gRPC edge: the `rezef.v1` services over the log and the journey store.
//!
//! - [`Server`] opens the data directory, starts the node and serves.
//! - `node`: the partitions this node serves, each a log folded into a store with its
//!   `Backbone` and routing desk: the embedded log's one (a cluster of one) or a Kafka
//!   topic's as the consumer group assigns them (`node/group.rs`).
//! - `cluster`: where each partition is served (here, on another node, not yet), placing
//!   and forwarding calls, and `rezef.cluster.v1.Partitions` between nodes.
//! - `backbone`: what the services answer from for one partition: its log, store, projection.
//! - `reader`: the read service, a customer's journey on whichever partition holds it.
//! - `log` and `projection`: opening the log (embedded or Kafka), the journey store (sled
//!   behind the projection in memory) and its projector, the same way everywhere.
//! - [`Clock`]: the time routing decides by ([`SystemClock`], or a [`ManualClock`] in tests).
//! - `ingest`, `journeys`, `identities`, `routing`, `audit`: one module per service;
//!   `find`: the customer search `identities` serves.
//! - `health`: what `grpc.health.v1.Health` says, from the log's writes and the projector.
//! - `metrics`: Prometheus's `/metrics` (`[metrics]`); every metric's name in `metrics/names.rs`.
//! - `dashboard`: the live web dashboard (`[dashboard]`), reading through the gRPC services;
//!   `http_listener`: the HTTP/1.1 loop both serve on.
//! - `convert`: the public contract ⇄ the domain, where requests are validated.
//! - [`Error`]: every failure, mapped to a gRPC status in one place.

mod audit;
mod auth;
mod backbone;
mod clock;
mod cluster;
mod config;
pub mod convert;
mod dashboard;
mod error;
mod find;
mod forget;
mod health;
mod http_listener;
mod identities;
mod ingest;
mod insights;
mod journeys;
mod log;
mod metrics;
mod node;
mod own_event;
mod projection;
mod reader;
mod reveal;
mod routing;
mod server;
mod shutdown;
mod tls;
mod token_tries;

pub use audit::{REPLAY_FROM_HEADER, REPLAY_TO_HEADER};
pub use clock::{Clock, ManualClock, Sleep, SystemClock};
pub use cluster::{FORWARDED_HEADER, ROUTE_HEADER};
pub use config::{
    AuthSettings, ClusterSettings, DashboardSettings, KafkaSettings, Librdkafka, Limits,
    LogBackend, LogSettings, MetricsSettings, ProjectionSettings, SaslMechanism, Secret,
    SecurityProtocol, ServerConfig, TlsSettings,
};
pub use error::{Error, OWNER_HEADER, Result};
pub use log::{LogPartition, open_partitions};
pub use projection::{journey_cache, open_store};
pub use server::Server;
