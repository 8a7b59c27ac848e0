//! `rezef.v1.Insights`: the measurement projection read (docs/measurement.md). A report merges
//! the figures of every partition of the log, here and on the other nodes
//! (`cluster::figures`): figures only add, so the merge is exact.
//! The current interval is the same report, watched live (`interval`), read again when a
//! projection moved (`projections`, which the dashboard's live figures follow too). The
//! customer tracker is the journeys' watch, on the customer's partition, rendered as
//! stations (`rezef_measure::tracker`) with the callbacks' original arrivals the
//! partition's measurer keeps (the journey does not).

mod interval;
mod projections;
mod request;

use std::ops::Range;
use std::sync::Arc;

use rezef_events::{InteractionId, TenantId, Timestamp};
use rezef_measure::{Grouping, tracker};
use rezef_proto::v1::{
    CustomerTracker, GetReportRequest, GetReportResponse, IntervalUpdate, ReportRow,
    TrackCustomerRequest, WatchIntervalRequest, insights_client::InsightsClient,
    insights_server::Insights,
};
use tokio::sync::watch;
use tonic::{Request, Response, Status};
use tracing::{Instrument, info_span};

use crate::Result;
pub use projections::{Mark, Projections};

use crate::backbone::Backbone;
use crate::clock::Clock;
use crate::cluster::figures::{self, Query};
use crate::cluster::{Place, Topology, forward_stream};
use crate::convert::insights::{row_to_proto, tracker_to_proto};
use crate::journeys::{WatchStream, place_customer, watch};

/// The service, reading the partitions served here.
#[derive(Debug, Clone)]
pub struct InsightsService {
    topology: Topology,
    /// Says which interval is the current one.
    clock: Arc<dyn Clock>,
    /// Turns true when the server begins to shut down; open streams end then.
    closing: watch::Receiver<bool>,
}

impl InsightsService {
    pub fn new(topology: Topology, clock: Arc<dyn Clock>, closing: watch::Receiver<bool>) -> Self {
        Self {
            topology,
            clock,
            closing,
        }
    }

    async fn report(&self, request: GetReportRequest) -> Result<GetReportResponse> {
        let asked = request::report(request)?;
        let rows = rows(&self.topology, &asked.tenant, asked.range, asked.grouping).await?;
        Ok(GetReportResponse { rows })
    }
}

/// A tenant's figures in `range`, grouped, merged over every partition of the log wherever
/// it is served (`cluster::figures`), as report rows.
async fn rows(
    topology: &Topology,
    tenant: &TenantId,
    range: Range<Timestamp>,
    grouping: Grouping,
) -> Result<Vec<ReportRow>> {
    let merged = figures::across(topology, tenant, &Query { range, grouping }).await?;
    Ok((merged.iter())
        .map(|(key, f)| row_to_proto(key, f))
        .collect())
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
    let store = backbone.store.clone();
    Ok(watch(
        backbone,
        tenant,
        customer_id,
        None,
        span,
        move |journey, offset| {
            // What the journey does not keep: a callback's original arrival (the measurer's).
            let arrival = |id: &InteractionId| store.callback_arrival(&journey.tenant_id, id);
            let tracker = tracker::track(journey, arrival)?;
            let id = journey.customer_id.as_str();
            Ok(Some(tracker_to_proto(id, tracker.as_ref(), offset)))
        },
    ))
}

#[tonic::async_trait]
impl Insights for InsightsService {
    type TrackCustomerStream = WatchStream<CustomerTracker>;
    type WatchIntervalStream = WatchStream<IntervalUpdate>;

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

    async fn watch_interval(
        &self,
        request: Request<WatchIntervalRequest>,
    ) -> Result<Response<Self::WatchIntervalStream>, Status> {
        let asked = request::watch(request.into_inner())?;
        Ok(Response::new(interval::watch(self.clone(), asked)))
    }
}
