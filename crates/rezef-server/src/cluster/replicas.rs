//! The partitions served on this node, as calls find them. `crate::node` adds and removes
//! them as they are assigned, and every change is signalled (`changes`): a reader that waits
//! on the projections served here (`insights::Projections`) must learn that the set moved.

use std::collections::HashMap;
use std::sync::RwLock;

use tokio::sync::watch;

use crate::backbone::Backbone;

/// A partition served here, as calls see it.
#[derive(Debug, Clone)]
pub struct Replica {
    pub backbone: Backbone,
    /// Calls are served once the projection reaches this offset (on Kafka, the end at
    /// assignment; on the embedded log, which no other node serves, 0).
    pub ready_at: u64,
}

#[derive(Debug, Default)]
pub struct Replicas {
    served: RwLock<HashMap<u32, Replica>>,
    /// Sent on every partition added or removed.
    changed: watch::Sender<()>,
}

impl Replicas {
    pub fn get(&self, partition: u32) -> Option<Replica> {
        let served = self.served.read().unwrap_or_else(|p| p.into_inner());
        served.get(&partition).cloned()
    }

    pub fn all(&self) -> Vec<(u32, Backbone)> {
        let served = self.served.read().unwrap_or_else(|p| p.into_inner());
        let mut all: Vec<_> = served
            .iter()
            .map(|(p, r)| (*p, r.backbone.clone()))
            .collect();
        all.sort_by_key(|(p, _)| *p);
        all
    }

    /// Whether a partition served here has not caught up yet.
    #[cfg(feature = "kafka")]
    pub fn catching_up(&self) -> bool {
        let served = self.served.read().unwrap_or_else(|p| p.into_inner());
        (served.values()).any(|r| r.backbone.projection.position() < r.ready_at)
    }

    /// Serves `partition` here with `replica`, or no longer (`None`); signals the change.
    pub fn set(&self, partition: u32, replica: Option<Replica>) {
        let mut served = self.served.write().unwrap_or_else(|p| p.into_inner());
        match replica {
            Some(replica) => served.insert(partition, replica),
            None => served.remove(&partition),
        };
        self.changed.send_replace(());
    }

    /// A receiver that sees every change of the partitions served here made after this call
    /// (`changed()` resolves), not those before.
    pub fn changes(&self) -> watch::Receiver<()> {
        self.changed.subscribe()
    }
}
