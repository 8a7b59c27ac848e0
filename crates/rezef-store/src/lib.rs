//! The journey projection: a store for journey state behind the [`JourneyStore`] trait, its
//! embedded sled implementation, and the [`Projector`] that folds the log into it.
//!
//! The log carries durability; the store is a projection that can always be rebuilt from
//! it ([`rebuild`]). That is why sled (beta, with no safe synchronous commit) is acceptable
//! here: a lost tail of projection work is redone from the stored offset after a restart.

#[cfg(feature = "conformance")]
pub mod conformance;
mod error;
mod partitioning;
mod projector;
mod sled_store;
mod store;

pub use error::{Error, Result};
pub use partitioning::{Partitioning, Relay, RelayFuture};
pub use projector::{
    JourneyChanged, ProjectionStats, ProjectionWatch, Projector, STEP_RECORDS, rebuild,
};
pub use sled_store::SledStore;
pub use store::{JourneyStore, ProjectionBatch, RoutingConfigRecord, TokenGrant};
