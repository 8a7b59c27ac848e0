//! `rezef.v1.Insights`: the measurement projection read (docs/measurement.md). A report merges
//! the figures of every partition this node serves: figures only add, so the merge is exact.
//! The customer tracker is the journeys' watch, on the customer's partition, rendered as
//! stations (`rezef_measure::tracker`).

mod request;

use std::collections::BTreeMap;

use rezef_measure::{BucketKey, Figures, tracker};
use rezef_proto::v1::{
    CustomerTracker, GetReportRequest, GetReportResponse, TrackCustomerRequest,
    insights_client::InsightsClient, insights_server::Insights,
};
use tonic::{Request, Response, Status};
use tracing::{Instrument, info_span};

use crate::Result;
use crate::backbone::Backbone;
use crate::cluster::{Place, Topology, forward_stream};
use crate::convert::insights::{row_to_proto, tracker_to_proto};
use crate::journeys::{WatchStream, place_customer, watch};

/// The service, reading the partitions served here.
#[derive(Debug, Clone)]
pub struct InsightsService {
    topology: Topology,
}

impl InsightsService {
    pub fn new(topology: Topology) -> Self {
        Self { topology }
    }

    async fn report(&self, request: GetReportRequest) -> Result<GetReportResponse> {
        let asked = request::check(request)?;
        let backbones: Vec<Backbone> = (self.topology.local().into_iter())
            .map(|(_, backbone)| backbone)
            .collect();
        // A long report merges many buckets: off the async runtime.
        let merged = tokio::task::spawn_blocking(move || -> Result<_> {
            let mut merged: BTreeMap<BucketKey, Figures> = BTreeMap::new();
            for backbone in backbones {
                let range = asked.range.clone();
                let figures = backbone
                    .store
                    .report(&asked.tenant, range, asked.grouping)?;
                for (key, figures) in figures {
                    merged.entry(key).or_default().merge(&figures);
                }
            }
            Ok(merged)
        })
        .await
        .map_err(|e| crate::Error::Unavailable(format!("the report's task failed: {e}")))??;
        let rows = (merged.iter()).map(|(key, figures)| row_to_proto(key, figures));
        Ok(GetReportResponse {
            rows: rows.collect(),
        })
    }
}

/// The tracker of the customer a request names, now and after every change, on the
/// customer's partition here (the journeys' watch, rendered as the tracker).
fn track(
    backbone: Backbone,
    request: TrackCustomerRequest,
) -> Result<WatchStream<CustomerTracker>> {
    let (tenant, customer) =
        Backbone::parse_customer(backbone.check(), request.tenant_id, request.customer)?;
    let customer_id = backbone.journey(&tenant, &customer)?.customer_id;
    let span = info_span!("track_customer", %tenant, customer = %customer_id);
    Ok(watch(
        backbone,
        tenant,
        customer_id,
        None,
        span,
        |journey, offset| {
            let tracker = tracker::track(journey);
            let id = journey.customer_id.as_str();
            Some(tracker_to_proto(id, tracker.as_ref(), offset))
        },
    ))
}

#[tonic::async_trait]
impl Insights for InsightsService {
    type TrackCustomerStream = WatchStream<CustomerTracker>;

    async fn track_customer(
        &self,
        request: Request<TrackCustomerRequest>,
    ) -> Result<Response<Self::TrackCustomerStream>, Status> {
        let message = request.get_ref();
        let customer = message.customer.as_ref();
        match place_customer(&self.topology, &request, &message.tenant_id, customer)? {
            Place::Here(backbone) => Ok(Response::new(track(backbone, request.into_inner())?)),
            Place::There(peer) => forward_stream!(peer, InsightsClient, track_customer, request),
        }
    }

    async fn get_report(
        &self,
        request: Request<GetReportRequest>,
    ) -> Result<Response<GetReportResponse>, Status> {
        let span = info_span!("get_report", tenant = %request.get_ref().tenant_id);
        let report = self.report(request.into_inner()).instrument(span).await?;
        Ok(Response::new(report))
    }
}
