//! Rezef's gRPC edge: the `rezef.v1` services over the log and the journey store.
//!
//! - [`Server`] opens the data directory, starts the projector and serves.
//! - `projection`: the journey store (sled behind the projection in memory) and its
//!   projector, opened the same way everywhere.
//! - `cluster`: which node serves which partition of a Kafka log, and forwarding to it.
//! - [`Clock`]: the time routing decides by ([`SystemClock`], or a [`ManualClock`] in tests).
//! - `ingest`, `journeys`, `identities`, `routing`, `audit`: one module per service;
//!   `find`: the customer search `identities` serves.
//! - `convert`: the public contract ⇄ the domain, where requests are validated.
//! - [`Error`]: every failure, mapped to a gRPC status in one place.

mod audit;
mod backbone;
mod clock;
mod cluster;
mod config;
pub mod convert;
mod error;
mod find;
mod identities;
mod ingest;
mod journeys;
mod projection;
mod routing;
mod server;

pub use clock::{Clock, ManualClock, Sleep, SystemClock};
pub use cluster::{FORWARDED_HEADER, ROUTE_HEADER};
pub use config::{
    ClusterSettings, KafkaSettings, Limits, LogBackend, LogSettings, ProjectionSettings,
    ServerConfig,
};
pub use error::{Error, OWNER_HEADER, Result};
pub use projection::{journey_cache, open_store};
pub use server::{LogPartition, Server, open_partitions};
