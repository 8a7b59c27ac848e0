//! Reading a customer's journey wherever it is kept: here, on another partition this node
//! serves, or through the owner of its partition. Routing needs it: a tenant's routing runs
//! on one node (docs/scale-out.md §5), its customers' journeys are spread over all of them.
//! Between nodes a journey travels as a [`JourneySnapshot`], whose layout stays decodable
//! across versions, so that nodes of two versions can read each other's during an upgrade.

use std::sync::{Arc, Weak};

use rezef_events::{CustomerId, CustomerRef, Journey, JourneySnapshot, TenantId};
use rezef_proto::cluster::v1::partitions_client::PartitionsClient;
use rezef_proto::cluster::v1::{ReadJourneyRequest, ReadJourneyResponse};
use tonic::Request;
use tonic::metadata::MetadataMap;

use super::{Cluster, Place, forward};
use crate::backbone::Backbone;
use crate::{Error, Result};

/// How many partitions a read follows a merged customer through.
const MAX_HOPS: usize = 8;

/// Where journeys are read from.
#[derive(Debug, Clone)]
pub enum JourneyReader {
    /// One log: every journey is in this backbone's store.
    Here(Backbone),
    /// A partitioned log (weak: the cluster owns what holds the reader).
    Cluster(Weak<Cluster>),
}

impl JourneyReader {
    /// The journey of the customer a reference names, following merges across partitions.
    pub async fn journey(
        &self,
        tenant: &TenantId,
        customer: &CustomerRef,
    ) -> Result<Option<Journey>> {
        let cluster = match self {
            Self::Here(backbone) => return backbone.find_journey(tenant, customer),
            Self::Cluster(cluster) => cluster
                .upgrade()
                .ok_or_else(|| Error::Unavailable("the node is stopping".into()))?,
        };
        let mut reference = customer.clone();
        for _ in 0..MAX_HOPS {
            let partition = cluster.partitioner.reference(tenant, &reference);
            let moved = match cluster.place(partition, &MetadataMap::new())? {
                Place::Here(backbone) => match backbone.find_journey(tenant, &reference) {
                    Err(Error::Moved { customer, .. }) => customer,
                    found => return found,
                },
                Place::There(peer) => {
                    let request = Request::new(ReadJourneyRequest {
                        tenant_id: tenant.to_string(),
                        customer: serde_json::to_vec(&reference).unwrap_or_default(),
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
        }
        Err(Error::Unavailable(format!(
            "the journey of {customer:?} moved more than {MAX_HOPS} times; retry"
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

/// The owner's side of `ReadJourney`.
pub(super) fn read_here(
    cluster: &Arc<Cluster>,
    request: ReadJourneyRequest,
) -> Result<ReadJourneyResponse> {
    let tenant = TenantId::new(request.tenant_id).map_err(|e| Error::invalid("tenant_id", e))?;
    let customer: CustomerRef = serde_json::from_slice(&request.customer)
        .map_err(|e| Error::invalid("customer", e.to_string()))?;
    let partition = cluster.partitioner.reference(&tenant, &customer);
    // Caught up here (else UNAVAILABLE with a retry hint), or not served here at all.
    let Place::Here(backbone) = cluster.place(partition, &MetadataMap::new())? else {
        return Err(cluster.not_served_here(partition));
    };
    Ok(match backbone.find_journey(&tenant, &customer) {
        Ok(journey) => ReadJourneyResponse {
            journey: journey
                .map(|j| JourneySnapshot::from(j).to_bytes())
                .unwrap_or_default(),
            moved_to_customer_id: String::new(),
        },
        Err(Error::Moved { customer, .. }) => ReadJourneyResponse {
            journey: Vec::new(),
            moved_to_customer_id: customer.to_string(),
        },
        Err(error) => return Err(error),
    })
}
