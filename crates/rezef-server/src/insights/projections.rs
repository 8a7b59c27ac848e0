//! When live figures are read again, for every reader that follows them
//! (`Insights/WatchInterval`, the dashboard's `report` and `spread`): figures change only
//! when a partition projects more of its log, so a reader marks the positions of the
//! projections here before it reads, then waits for one to move past its mark (no polling:
//! an idle centre costs nothing), and reads again at most once a [`COALESCE`] (a busy log's
//! changes go out together). While other nodes serve some partitions, whose projections are
//! not seen here, it reads again every [`COALESCE`].

use std::time::Duration;

use futures::future::select_all;
use tokio::time::Instant;

use crate::backbone::Backbone;
use crate::cluster::Topology;

/// The shortest time between two reads of the same figures.
pub const COALESCE: Duration = Duration::from_secs(1);

/// The projections whose positions say when figures may have changed. It reads nothing.
#[derive(Debug, Clone)]
pub struct Projections {
    topology: Topology,
}

impl Projections {
    pub fn new(topology: Topology) -> Self {
        Self { topology }
    }

    /// Where the projections served here stand now, to take before a read: what it reads
    /// then holds at least every record below these positions.
    pub fn mark(&self) -> Mark {
        let backbones: Vec<Backbone> = (self.topology.local().into_iter())
            .map(|(_, backbone)| backbone)
            .collect();
        let positions = (backbones.iter())
            .map(|b| b.projection.position())
            .collect();
        let partitions = self.topology.partitioner().partitions() as usize;
        Mark {
            elsewhere: backbones.len() < partitions,
            backbones,
            positions,
            next_read: Instant::now() + COALESCE,
        }
    }
}

/// The positions of the projections served here, taken before a read.
#[derive(Debug)]
pub struct Mark {
    backbones: Vec<Backbone>,
    positions: Vec<u64>,
    /// Another node serves some partition (or none does): its figures change without a
    /// projection here moving.
    elsewhere: bool,
    /// [`COALESCE`] after the mark.
    next_read: Instant,
}

impl Mark {
    /// Resolves once what was read after the mark may have changed: a projection here
    /// moved past it or, while another node serves some partition, [`COALESCE`] after the
    /// mark. Never otherwise (nor once every projector here stopped).
    pub async fn moved(&self) {
        if self.elsewhere {
            return tokio::time::sleep_until(self.next_read).await;
        }
        let waits = (self.backbones.iter().zip(&self.positions)).map(|(backbone, position)| {
            Box::pin(async move {
                if !backbone.projection.wait_past(*position).await {
                    std::future::pending::<()>().await;
                }
            })
        });
        let waits: Vec<_> = waits.collect();
        if waits.is_empty() {
            return std::future::pending().await;
        }
        select_all(waits).await;
    }

    /// Resolves [`COALESCE`] after the mark: the earliest time of the next read.
    pub async fn coalesced(&self) {
        tokio::time::sleep_until(self.next_read).await;
    }
}
