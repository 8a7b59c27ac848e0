//! `rezef.cluster.v1.Partitions`, what nodes call on each other, and its client side: how a
//! partition's projector reaches the other partitions (docs/scale-out.md §2): events
//! forwarded to the journey they belong to and handovers go to the partition's owner, which
//! alone appends to it: here for a partition this node owns, else through the owner's
//! `rezef.cluster.v1.Partitions/Append`.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use rezef_events::{CustomerRef, Event, JourneySnapshot, Payload, TenantId};
use rezef_proto::cluster::v1::partitions_client::PartitionsClient;
use rezef_proto::cluster::v1::partitions_server::Partitions;
use rezef_proto::cluster::v1::{
    AppendRequest, AppendResponse, ReadFiguresRequest, ReadFiguresResponse, ReadJourneyRequest,
    ReadJourneyResponse,
};
use rezef_store::{Relay, RelayFuture};
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};
use tracing::{Instrument, info_span};

use super::{Cluster, Place, forward};
use crate::{Error, Result};

/// The relay of the projectors of one node.
#[derive(Debug)]
pub struct ClusterRelay {
    /// Weak: the cluster owns the projectors that hold this.
    cluster: Weak<Cluster>,
}

impl ClusterRelay {
    pub fn new(cluster: &Arc<Cluster>) -> Self {
        Self {
            cluster: Arc::downgrade(cluster),
        }
    }

    async fn send_all(&self, events: Vec<Event>) -> Result<()> {
        let cluster = self
            .cluster
            .upgrade()
            .ok_or_else(|| Error::Unavailable("the node is stopping".into()))?;
        let mut parts: BTreeMap<u32, Vec<Event>> = BTreeMap::new();
        for event in events {
            let partition = cluster.partitioner.event(&event);
            parts.entry(partition).or_default().push(event);
        }
        for (partition, events) in parts {
            match cluster.place_writer(partition)? {
                Place::Here(backbone) => {
                    let records = backbone.seal(events).await?;
                    backbone.log.append(records).await?;
                }
                Place::There(peer) => {
                    // In the clear between nodes (TLS between them): the owner seals.
                    let request = Request::new(AppendRequest {
                        partition,
                        events: events.iter().map(rezef_record::encode).collect(),
                    });
                    forward!(peer, PartitionsClient, append, request).map_err(Error::Forwarded)?;
                }
            }
        }
        Ok(())
    }
}

impl Relay for ClusterRelay {
    fn send(&self, events: Vec<Event>) -> RelayFuture<'_> {
        let span = info_span!("relay", events = events.len());
        Box::pin(
            async move { self.send_all(events).await.map_err(|e| e.to_string()) }.instrument(span),
        )
    }
}

/// `rezef.cluster.v1.Partitions`: other nodes' projectors append to partitions owned here.
#[derive(Debug, Clone)]
pub struct PartitionsService {
    cluster: Arc<Cluster>,
}

impl PartitionsService {
    pub fn new(cluster: Arc<Cluster>) -> Self {
        Self { cluster }
    }

    async fn append(&self, request: AppendRequest) -> Result<u64> {
        let partition = request.partition;
        if partition >= self.cluster.partitioner.partitions() {
            return Err(Error::invalid(
                "partition",
                format!("must be below {}", self.cluster.partitioner.partitions()),
            ));
        }
        if request.events.is_empty() {
            return Err(Error::invalid("events", "at least one event is required"));
        }
        let mut events = Vec::with_capacity(request.events.len());
        for (i, bytes) in request.events.into_iter().enumerate() {
            let event = rezef_record::decode(&bytes)
                .map_err(|e| Error::invalid(format!("events[{i}]"), e.to_string()))?;
            if !matches!(event.payload, Payload::Handover(_)) && event.forward.is_none() {
                return Err(Error::invalid(
                    format!("events[{i}]"),
                    "must be a handover or a forwarded event: publish through rezef.v1.Ingest",
                ));
            }
            if self.cluster.partitioner.event(&event) != partition {
                return Err(Error::invalid(
                    format!("events[{i}]"),
                    format!("does not belong to partition {partition}"),
                ));
            }
            events.push(event);
        }
        // Appended by the owner only: a node that does not own it says who does.
        let Some(replica) = self.cluster.replicas.get(partition) else {
            return Err(self.cluster.not_served_here(partition));
        };
        let records = replica.backbone.seal(events).await?;
        Ok(replica.backbone.log.append(records).await?.first_offset)
    }
}

#[tonic::async_trait]
impl Partitions for PartitionsService {
    async fn append(
        &self,
        request: Request<AppendRequest>,
    ) -> Result<Response<AppendResponse>, Status> {
        let request = request.into_inner();
        let span = info_span!(
            "cluster_append",
            partition = request.partition,
            events = request.events.len()
        );
        let first_offset = PartitionsService::append(self, request)
            .instrument(span)
            .await?;
        Ok(Response::new(AppendResponse { first_offset }))
    }

    async fn read_journey(
        &self,
        request: Request<ReadJourneyRequest>,
    ) -> Result<Response<ReadJourneyResponse>, Status> {
        let request = request.into_inner();
        let span = info_span!("cluster_read_journey", tenant = %request.tenant_id);
        let response = read_here(&self.cluster, request).instrument(span).await?;
        Ok(Response::new(response))
    }

    async fn read_figures(
        &self,
        request: Request<ReadFiguresRequest>,
    ) -> Result<Response<ReadFiguresResponse>, Status> {
        let request = request.into_inner();
        let span = info_span!(
            "cluster_read_figures",
            tenant = %request.tenant_id,
            partitions = request.partitions.len()
        );
        let response = super::figures::read_here(&self.cluster, request)
            .instrument(span)
            .await?;
        Ok(Response::new(response))
    }
}

/// The owner's side of `ReadJourney`.
async fn read_here(
    cluster: &Arc<Cluster>,
    request: ReadJourneyRequest,
) -> Result<ReadJourneyResponse> {
    let tenant = TenantId::new(request.tenant_id).map_err(|e| Error::invalid("tenant_id", e))?;
    let customer: CustomerRef = serde_json::from_slice(&request.customer)
        .map_err(|e| Error::invalid("customer", e.to_string()))?;
    let partition = cluster.partitioner().reference(&tenant, &customer);
    // Caught up here (else UNAVAILABLE with a retry hint), or not served here at all.
    let Place::Here(backbone) = cluster.place(partition, &MetadataMap::new())? else {
        return Err(cluster.not_served_here(partition));
    };
    if let Some(wait_ms) = request.wait_ms {
        let wait = Duration::from_millis(wait_ms);
        backbone.caught_up_to(request.min_offset, wait).await?;
    }
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
