//! The dashboard's reads: each is one call of a `rezef.v1` service made in-process through
//! the same tower stack a network call goes through (the API key guard, the call metrics,
//! then the service with its own validation), by tonic's generated clients over that stack
//! instead of a channel. So the page sees exactly what a gRPC client with the same key would,
//! refusals included, and no read is written twice.

use std::convert::Infallible;

use http::{HeaderMap, StatusCode};
use rezef_proto::v1::{
    CustomerTracker, GetQueueStatsRequest, GetQueueStatsResponse, GetReportRequest,
    GetReportResponse, ListAgentsRequest, ListAgentsResponse, ReplayHistoryRequest, ReplayedEvent,
    TrackCustomerRequest, audit_client::AuditClient, insights_client::InsightsClient,
    routing_client::RoutingClient,
};
use tonic::body::Body;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::{Code, Status, Streaming};
use tower::util::BoxCloneSyncService;

use crate::error::{code_name, http_status};

/// The gRPC services behind their layers, as the server serves them.
pub type Grpc = BoxCloneSyncService<http::Request<Body>, http::Response<Body>, Infallible>;

/// Calls on behalf of one HTTP request: its `Authorization` header goes on as the gRPC
/// `authorization` metadata, so the key's roles and tenant apply as they do over gRPC.
#[derive(Clone)]
pub struct Gateway {
    grpc: Grpc,
    authorization: Option<MetadataValue<Ascii>>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway").finish_non_exhaustive()
    }
}

impl Gateway {
    pub fn new(grpc: Grpc) -> Self {
        Self {
            grpc,
            authorization: None,
        }
    }

    /// This gateway calling with the key in `headers`, if any (a header that is not ASCII
    /// is no key: the guard then answers as for a call without one).
    pub fn with_authorization(&self, headers: &HeaderMap) -> Self {
        let authorization = (headers.get(http::header::AUTHORIZATION))
            .and_then(|value| value.to_str().ok())
            .and_then(|value| MetadataValue::try_from(value).ok());
        Self {
            grpc: self.grpc.clone(),
            authorization,
        }
    }

    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Some(authorization) = &self.authorization {
            (request.metadata_mut()).insert("authorization", authorization.clone());
        }
        request
    }

    pub async fn report(&self, request: GetReportRequest) -> Result<GetReportResponse, Status> {
        let mut client = InsightsClient::new(self.grpc.clone());
        let response = client.get_report(self.request(request)).await?;
        Ok(response.into_inner())
    }

    pub async fn track(
        &self,
        request: TrackCustomerRequest,
    ) -> Result<Streaming<CustomerTracker>, Status> {
        let mut client = InsightsClient::new(self.grpc.clone());
        let response = client.track_customer(self.request(request)).await?;
        Ok(response.into_inner())
    }

    /// The whole replay (the caller bounds it with `limit`).
    pub async fn history(
        &self,
        request: ReplayHistoryRequest,
    ) -> Result<Vec<ReplayedEvent>, Status> {
        let mut client = AuditClient::new(self.grpc.clone());
        let mut stream = client
            .replay_history(self.request(request))
            .await?
            .into_inner();
        let mut events = Vec::new();
        while let Some(event) = stream.message().await? {
            events.push(event);
        }
        Ok(events)
    }

    pub async fn queues(
        &self,
        tenant_id: String,
    ) -> Result<Streaming<GetQueueStatsResponse>, Status> {
        let mut client = RoutingClient::new(self.grpc.clone());
        let request = self.request(GetQueueStatsRequest { tenant_id });
        Ok(client.watch_queues(request).await?.into_inner())
    }

    pub async fn agents(&self, tenant_id: String) -> Result<Streaming<ListAgentsResponse>, Status> {
        let mut client = RoutingClient::new(self.grpc.clone());
        let request = self.request(ListAgentsRequest { tenant_id });
        Ok(client.watch_agents(request).await?.into_inner())
    }
}

/// A refused call as the page is told it: the HTTP status of its gRPC code, and the gRPC
/// code and message as JSON (`{"code":"NOT_FOUND","message":"…"}`).
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub status: StatusCode,
    pub json: String,
}

impl Refusal {
    pub fn new(code: Code, message: &str) -> Self {
        Self::with_status(http_status(code), code, message)
    }

    /// A refusal by HTTP itself (a method, a size), said with the closest gRPC code.
    pub fn with_status(status: StatusCode, code: Code, message: &str) -> Self {
        let json = serde_json::json!({ "code": code_name(code), "message": message });
        Self {
            status,
            json: json.to_string(),
        }
    }
}

impl From<Status> for Refusal {
    fn from(status: Status) -> Self {
        Self::new(status.code(), status.message())
    }
}
