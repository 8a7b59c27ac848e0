//! `rezef.v1.Insights`: the measurement projection read (docs/measurement.md). A report merges
//! the figures of every partition this node serves: figures only add, so the merge is exact.

mod request;

use std::collections::BTreeMap;

use rezef_measure::{BucketKey, Figures};
use rezef_proto::v1::{GetReportRequest, GetReportResponse, insights_server::Insights};
use tonic::{Request, Response, Status};
use tracing::{Instrument, info_span};

use crate::Result;
use crate::backbone::Backbone;
use crate::cluster::Topology;
use crate::convert::insights::row_to_proto;

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

#[tonic::async_trait]
impl Insights for InsightsService {
    async fn get_report(
        &self,
        request: Request<GetReportRequest>,
    ) -> Result<Response<GetReportResponse>, Status> {
        let span = info_span!("get_report", tenant = %request.get_ref().tenant_id);
        let report = self.report(request.into_inner()).instrument(span).await?;
        Ok(Response::new(report))
    }
}
