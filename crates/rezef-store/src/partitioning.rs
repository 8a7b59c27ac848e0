//! A projector's place in a partitioned log (Kafka): which partition it folds, how keys map
//! to partitions, and the [`Relay`] that carries what other partitions must decide there.
//!
//! On an embedded log of one partition there is no relay: every journey is here. On one of
//! several, the relay appends to the other partitions of the same node.

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use rezef_events::partition::Partitioner;
use rezef_events::{CustomerId, Event, TenantId};

/// What a relay's send resolves to.
pub type RelayFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// Appends events to the partitions they belong to (forwarded events and handovers).
///
/// A send succeeds only once every event is durably in its partition: the projector commits
/// the step that produced them afterwards, and sends them again after a crash (their ids
/// make the second copy a duplicate).
pub trait Relay: Send + Sync + Debug + 'static {
    fn send(&self, events: Vec<Event>) -> RelayFuture<'_>;
}

/// The partition a projector folds.
#[derive(Debug, Clone)]
pub struct Partitioning {
    pub partitioner: Partitioner,
    pub partition: u32,
    pub relay: Arc<dyn Relay>,
}

impl Partitioning {
    /// Whether a customer's journey lives on this partition.
    pub fn holds(&self, tenant: &TenantId, customer: &CustomerId) -> bool {
        self.partitioner.customer(tenant, customer) == self.partition
    }
}

/// For a rebuild: what the fold sends elsewhere was sent when the events were first folded
/// (a projector sends before it commits), so it is not sent again.
#[derive(Debug)]
pub struct AlreadySent;

impl Relay for AlreadySent {
    fn send(&self, _events: Vec<Event>) -> RelayFuture<'_> {
        Box::pin(async { Ok(()) })
    }
}
