//! When live figures are read again, for every reader that follows them
//! (`Insights/WatchInterval`, the dashboard's `report` and `spread`): figures change only
//! when a partition projects more of its log, so a reader marks the positions of the
//! projections here before it reads, then waits for one to move past its mark (no polling:
//! an idle centre costs nothing), and reads again at most once a [`COALESCE`] (a busy log's
//! changes go out together). While other nodes serve some partitions, whose projections are
//! not seen here, it reads again every [`COALESCE`]. When the partitions served here change
//! (a node joined or left the cluster), the mark's set is stale: the reader reads again and
//! marks the new set, so that a node that served every partition and lost some to a node that
//! joined reads every [`COALESCE`] from then on, and one that gains the last of them waits on
//! its projections again.

use std::time::Duration;

use futures::future::select_all;
use tokio::sync::watch;
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
        // Before the set is read: a change after it is then seen.
        let assignment = self.topology.replicas().changes();
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
            assignment,
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
    /// Sees the partitions served here change after the mark.
    assignment: watch::Receiver<()>,
}

impl Mark {
    /// Resolves once what was read after the mark may have changed: a projection here
    /// moved past it, the partitions served here changed (the mark is stale) or, while
    /// another node serves some partition, [`COALESCE`] after the mark. Never otherwise
    /// (nor once every projector here stopped).
    pub async fn moved(&self) {
        tokio::select! {
            () = self.projected() => {}
            () = self.reassigned() => {}
        }
    }

    /// Resolves once a projection here moved past the mark or, while another node serves
    /// some partition, [`COALESCE`] after the mark.
    async fn projected(&self) {
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

    /// Resolves once a partition was added here or removed after the mark.
    async fn reassigned(&self) {
        // A clone has seen what the mark's receiver has: nothing after the mark.
        let mut assignment = self.assignment.clone();
        if assignment.changed().await.is_err() {
            // The cluster is gone, and nothing serves here any more.
            std::future::pending::<()>().await;
        }
    }

    /// Resolves [`COALESCE`] after the mark: the earliest time of the next read.
    pub async fn coalesced(&self) {
        tokio::time::sleep_until(self.next_read).await;
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;
    use std::sync::Arc;

    use rezef_events::partition::Partitioner;
    use rezef_log::{EmbeddedLog, EmbeddedLogConfig, Log};
    use rezef_store::Projector;

    use super::*;
    use crate::cluster::directory::Directory;
    use crate::cluster::{Cluster, Member, Replica};

    /// A node of a two-partition cluster serving nothing yet.
    fn node() -> Topology {
        let me = Member {
            node: "node-0".into(),
            url: "http://127.0.0.1:1".into(),
        };
        let partitioner = Partitioner::new(NonZeroU32::new(2).expect("two"));
        let directory = Arc::new(Directory::default());
        Arc::new(Cluster::new(
            me,
            partitioner,
            directory,
            1 << 20,
            Arc::default(),
        ))
    }

    /// Serves `partition` on `topology` over `log`; the projector it watches, idle.
    fn serve(topology: &Topology, partition: u32, log: &Arc<dyn Log>) -> Projector {
        let (backbone, projector) = Backbone::in_memory(log.clone());
        let replica = Replica {
            backbone,
            ready_at: 0,
        };
        topology.replicas().set(partition, Some(replica));
        projector
    }

    /// How long `mark` took to move, if it did within a minute.
    async fn moved_after(mark: &Mark) -> Option<Duration> {
        let start = Instant::now();
        let moved = tokio::time::timeout(Duration::from_secs(60), mark.moved()).await;
        moved.ok().map(|()| start.elapsed())
    }

    #[tokio::test(start_paused = true)]
    async fn a_mark_moves_when_the_node_loses_a_partition_then_reads_every_second() {
        // Given a node serving both partitions, whose projections stay put
        let dir = tempfile::tempdir().expect("dir");
        let log: Arc<dyn Log> = EmbeddedLog::open(EmbeddedLogConfig::new(dir.path())).expect("log");
        let topology = node();
        let _projectors = [serve(&topology, 0, &log), serve(&topology, 1, &log)];
        let projections = Projections::new(topology.clone());

        // When nothing changes, a mark does not move
        let mark = projections.mark();
        assert_eq!(moved_after(&mark).await, None, "an idle node waits");

        // When another node takes partition 1
        let mark = projections.mark();
        let taken = async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            topology.replicas().set(1, None);
        };
        let (moved, ()) = tokio::join!(moved_after(&mark), taken);

        // Then the mark moves as the partition goes, and the next one reads every second
        assert_eq!(moved, Some(Duration::from_secs(5)));
        let mark = projections.mark();
        assert_eq!(moved_after(&mark).await, Some(COALESCE));
    }

    #[tokio::test(start_paused = true)]
    async fn a_mark_moves_when_the_node_gains_the_last_partition_then_waits_on_both() {
        // Given a node serving partition 0 only, whose projection stays put
        let dir = tempfile::tempdir().expect("dir");
        let log: Arc<dyn Log> = EmbeddedLog::open(EmbeddedLogConfig::new(dir.path())).expect("log");
        let topology = node();
        let _first = serve(&topology, 0, &log);
        let projections = Projections::new(topology.clone());

        // When it is given partition 1 half a second after a mark
        let mark = projections.mark();
        let given = async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            serve(&topology, 1, &log)
        };
        let (moved, _second) = tokio::join!(moved_after(&mark), given);

        // Then the mark moves then, before its second, and the next one waits on both
        assert_eq!(moved, Some(Duration::from_millis(500)));
        let mark = projections.mark();
        assert_eq!(
            moved_after(&mark).await,
            None,
            "every partition is here, idle"
        );
    }
}
