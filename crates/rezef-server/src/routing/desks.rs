//! Which routing desks run on this node: one per partition served here, each running the
//! routing of the tenants whose routing partition it is.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use rezef_events::TenantId;
use tonic::metadata::MetadataMap;

use super::desk::Desk;
use crate::Result;
use crate::cluster::{Place, Topology};

/// The routing desks of the partitions served here: a tenant's routing runs on the desk of
/// its routing partition, on the node that serves it (on the embedded log, the one desk).
/// `crate::node` adds and removes them with their partitions.
#[derive(Debug)]
pub struct Desks {
    topology: Topology,
    by_partition: RwLock<HashMap<u32, Arc<Desk>>>,
}

impl Desks {
    pub fn new(topology: Topology) -> Self {
        Self {
            topology,
            by_partition: RwLock::default(),
        }
    }

    pub fn set(&self, partition: u32, desk: Option<Arc<Desk>>) {
        let mut desks = self.by_partition.write().unwrap_or_else(|p| p.into_inner());
        match desk {
            Some(desk) => desks.insert(partition, desk),
            None => desks.remove(&partition),
        };
    }

    fn get(&self, partition: u32) -> Option<Arc<Desk>> {
        let desks = self.by_partition.read().unwrap_or_else(|p| p.into_inner());
        desks.get(&partition).cloned()
    }

    pub(super) fn topology(&self) -> &Topology {
        &self.topology
    }

    /// Every desk of this node's.
    pub fn all(&self) -> Vec<Arc<Desk>> {
        let desks = self.by_partition.read().unwrap_or_else(|p| p.into_inner());
        desks.values().cloned().collect()
    }

    /// A desk of this node's, to validate a call whose tenant is not valid.
    pub(super) fn any(&self) -> Option<Arc<Desk>> {
        let desks = self.by_partition.read().unwrap_or_else(|p| p.into_inner());
        desks.values().next().cloned()
    }

    /// The desk of `tenant`'s routing: on the owner of its routing partition, which alone
    /// writes it (docs/scale-out.md §5).
    pub(super) fn place(
        &self,
        tenant: &TenantId,
        metadata: &MetadataMap,
    ) -> Result<Place<Arc<Desk>>> {
        let partition = self.topology.partitioner().routing(tenant);
        Ok(match self.topology.place(partition, metadata)? {
            Place::Here(_) => match self.get(partition) {
                Some(desk) => Place::Here(desk),
                None => return Err(self.topology.not_served_here(partition)),
            },
            Place::There(peer) => Place::There(peer),
        })
    }
}
