//! The journey projection: a store for journey state behind the [`JourneyStore`] trait, its
//! implementations (sled on disk, [`MemoryStore`], and the [`CachedStore`] that keeps the
//! projection in memory in front of sled, checkpointing it), and the [`Projector`] that
//! folds the log into it.
//!
//! The log carries durability; the store is a projection that can always be rebuilt from
//! it ([`rebuild`]). That is why sled (beta, with no safe synchronous commit) is acceptable
//! here, and why checkpoints can be seconds apart: a lost tail of projection work is redone
//! from the stored offset after a restart.
//!
//! # Layout
//! - `store.rs`: the [`JourneyStore`] trait and what a commit carries; `conformance.rs`: the
//!   suite every implementation passes; `memory.rs`: the tables in memory and
//!   [`MemoryStore`]; `sled_store.rs` (and `sled_store/pieces.rs`, a large checkpoint written
//!   through a redo journal): the store on disk.
//! - `cached.rs`: [`CachedStore`], the projection in memory in front of sled, checkpointing;
//!   `journey_cache.rs`: what it keeps of the store below, bounded in bytes; [`warm`]:
//!   filling that cache at start.
//! - `projector.rs`: the [`Projector`] loop; `read_ahead.rs`: reading and decoding the log on
//!   a task of its own; `step.rs`: one step folded in place (`workspace.rs`), identity
//!   decisions carried out; [`dedup`]: the recent event ids; `partitioning.rs`: a
//!   projector's place in a partitioned log and its relay.
//! - `measurement/`: the measurement projection (`rezef_measure`), fed in the same step as
//!   the fold, counted on a thread beside it and checkpointed with it, only its recent
//!   buckets kept in memory
//!   (`sled_store/measured.rs`: the buckets in sled, by tenant, width and start).
//! - `blocking.rs`: work off the async runtime. The maps the fold looks journeys up in are
//!   `rezef_events::by_tenant`'s, shared with the measurer.

mod as_of;
mod blocking;
mod cached;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod dedup;
mod error;
mod journey_cache;
mod measurement;
mod memory;
mod partitioning;
mod projector;
mod read_ahead;
pub mod redact;
mod sled_store;
mod step;
mod store;
pub mod warm;
mod workspace;

pub use as_of::journey_as_of;
pub use cached::{CachedStore, CheckpointObserver, JourneyCache, ProjectionConfig};
pub use error::{Error, Result};
pub use journey_cache::CacheReads;
pub use measurement::{
    BUCKET_BYTES, MeasureCheckpoint, Measurement, RESIDENT_AFTER_END, Reading, SealedMeasure,
    StoredBucket, StoredKey,
};
pub use memory::MemoryStore;
pub use partitioning::{AlreadySent, Partitioning, Relay, RelayFuture};
pub use projector::{
    DEFAULT_DEDUP_WINDOW, JourneyChanged, ProjectionStats, ProjectionWatch, Projector,
    ProjectorHealth, rebuild,
};
pub use read_ahead::STEP_RECORDS;
pub use sled_store::{MEASURE_FORMAT, SledStore};
pub use store::{
    Checkpoint, Index, JourneyStore, ProjectionBatch, RoutingConfigRecord, TokenGrant,
};
pub use workspace::{Measuring, Workspace};
