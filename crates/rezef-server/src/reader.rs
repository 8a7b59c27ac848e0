//! The read service: a customer's journey wherever it is kept: in a partition this node
//! serves, or through the owner of its partition. Routing needs it: a tenant's routing runs
//! on one node (docs/scale-out.md §5), its customers' journeys are spread over all of them.
//! Between nodes a journey travels as a [`JourneySnapshot`], whose layout stays decodable
//! across versions, so that nodes of two versions can read each other's during an upgrade.

use std::sync::{Arc, Weak};
use std::time::Duration;

use rezef_events::merge::MAX_MERGE_DEPTH;
use rezef_events::{CustomerId, CustomerRef, Journey, JourneySnapshot, TenantId};
use rezef_proto::cluster::v1::partitions_client::PartitionsClient;
use rezef_proto::cluster::v1::{ReadJourneyRequest, ReadJourneyResponse};
use tonic::Request;
use tonic::metadata::MetadataMap;

use crate::cluster::{Cluster, Place, forward};
use crate::{Error, Result};

/// Read-your-writes for a read: the projection of the journey's partition must first have
/// applied everything logged in it when the read arrives, and the record at `min_offset`
/// (an offset of that partition, as `Ingest.Publish` answers), waiting at most `wait`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fresh {
    pub min_offset: Option<u64>,
    pub wait: Duration,
}

/// Reads journeys across the partitions (weak: the cluster holds what holds the reader).
#[derive(Debug, Clone)]
pub struct JourneyReader {
    cluster: Weak<Cluster>,
}

impl JourneyReader {
    pub fn new(cluster: &Arc<Cluster>) -> Self {
        Self {
            cluster: Arc::downgrade(cluster),
        }
    }

    /// The journey of the customer a reference names, following merges across partitions;
    /// with `fresh`, once the projection has caught up (`min_offset` applies to the first
    /// partition asked, the customer's own).
    pub async fn journey(
        &self,
        tenant: &TenantId,
        customer: &CustomerRef,
        mut fresh: Option<Fresh>,
    ) -> Result<Option<Journey>> {
        let cluster = (self.cluster.upgrade())
            .ok_or_else(|| Error::Unavailable("the node is stopping".into()))?;
        let mut reference = customer.clone();
        // Each partition walks its own merge pointers (`Backbone::journey_of`); a chain that
        // crosses partitions is bounded by the same count.
        for _ in 0..MAX_MERGE_DEPTH {
            let partition = cluster.partitioner().reference(tenant, &reference);
            let moved = match cluster.place(partition, &MetadataMap::new())? {
                Place::Here(backbone) => {
                    if let Some(fresh) = fresh {
                        backbone.caught_up_to(fresh.min_offset, fresh.wait).await?;
                    }
                    match backbone.find_journey(tenant, &reference) {
                        Err(Error::Moved { customer, .. }) => customer,
                        found => return found,
                    }
                }
                Place::There(peer) => {
                    let request = Request::new(ReadJourneyRequest {
                        tenant_id: tenant.to_string(),
                        customer: serde_json::to_vec(&reference).unwrap_or_default(),
                        wait_ms: fresh
                            .map(|f| u64::try_from(f.wait.as_millis()).unwrap_or(u64::MAX)),
                        min_offset: fresh.and_then(|f| f.min_offset),
                    });
                    let response = forward!(peer, PartitionsClient, read_journey, request)
                        .map_err(Error::Forwarded)?
                        .into_inner();
                    match decode(response)? {
                        Ok(journey) => return Ok(journey),
                        Err(moved) => moved,
                    }
                }
            };
            reference = CustomerRef::Id(moved);
            // The offset was one of the customer's partition, not of where they moved.
            if let Some(fresh) = &mut fresh {
                fresh.min_offset = None;
            }
        }
        Err(Error::Unavailable(format!(
            "the journey of {customer:?} moved more than {MAX_MERGE_DEPTH} times; retry"
        )))
    }
}

/// The journey in an answer, or where it moved.
fn decode(response: ReadJourneyResponse) -> Result<Result<Option<Journey>, CustomerId>> {
    if !response.moved_to_customer_id.is_empty() {
        let moved = CustomerId::new(response.moved_to_customer_id)
            .map_err(|e| Error::Unavailable(format!("a node answered a bad customer id: {e}")))?;
        return Ok(Err(moved));
    }
    if response.journey.is_empty() {
        return Ok(Ok(None));
    }
    JourneySnapshot::from_bytes(&response.journey)
        .map(|snapshot| Ok(Some(snapshot.into_journey())))
        .map_err(|e| Error::Unavailable(format!("a node answered an unreadable journey: {e}")))
}
