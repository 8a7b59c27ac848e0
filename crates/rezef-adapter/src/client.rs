//! A thin typed client over the services, with the errors an adapter must tell apart:
//! its own bad input (do not retry) versus the server being unavailable (retry; event ids
//! make retries safe).

use futures::{Stream, StreamExt};
use rezef_proto::v1::{
    self, GetJourneyRequest, GetJourneyResponse, PublishRequest, PublishResponse,
    ReplayHistoryRequest, ReplayedEvent, ResolveCustomerRequest, ResolveCustomerResponse,
    ResumeConversationRequest, ResumeConversationResponse, audit_client::AuditClient,
    identities_client::IdentitiesClient, ingest_client::IngestClient,
    journeys_client::JourneysClient, routing_client::RoutingClient,
};
use tonic::transport::{Channel, Endpoint};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot reach the Rezef server at {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("{}: {}", .0.code(), .0.message())]
    Status(#[from] tonic::Status),
    #[error("line {line}: {source}")]
    Json {
        line: usize,
        #[source]
        source: rezef_proto::json::JsonError,
    },
    #[error("cannot read events: {0}")]
    Io(#[from] std::io::Error),
    #[error("agent session: {0}")]
    Session(String),
}

impl Error {
    /// Whether sending the same request again may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Connect { .. } => true,
            Self::Status(status) => matches!(
                status.code(),
                tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Aborted
            ),
            Self::Json { .. } | Self::Io(_) => false,
            Self::Session(_) => true,
        }
    }
}

/// A connection to a Rezef server. Cheap to clone (one HTTP/2 connection underneath).
#[derive(Debug, Clone)]
pub struct Client {
    ingest: IngestClient<Channel>,
    journeys: JourneysClient<Channel>,
    identities: IdentitiesClient<Channel>,
    routing: RoutingClient<Channel>,
    audit: AuditClient<Channel>,
}

impl Client {
    /// Connects to `addr` (`http://host:port`).
    pub async fn connect(addr: impl Into<String>) -> Result<Self, Error> {
        let addr = addr.into();
        let channel = Endpoint::from_shared(addr.clone())
            .map(|endpoint| endpoint.tcp_nodelay(true))
            .map_err(|source| Error::Connect {
                addr: addr.clone(),
                source,
            })?
            .connect()
            .await
            .map_err(|source| Error::Connect { addr, source })?;
        Ok(Self::from_channel(channel))
    }

    pub fn from_channel(channel: Channel) -> Self {
        let unlimited = usize::MAX;
        Self {
            ingest: IngestClient::new(channel.clone()).max_decoding_message_size(unlimited),
            journeys: JourneysClient::new(channel.clone()).max_decoding_message_size(unlimited),
            identities: IdentitiesClient::new(channel.clone()).max_decoding_message_size(unlimited),
            routing: RoutingClient::new(channel.clone()).max_decoding_message_size(unlimited),
            audit: AuditClient::new(channel).max_decoding_message_size(unlimited),
        }
    }

    /// Publishes a batch; returns once it is durable.
    pub async fn publish(&mut self, events: Vec<v1::Event>) -> Result<PublishResponse, Error> {
        let request = PublishRequest {
            events,
            sequence: 0,
        };
        Ok(self.ingest.publish(request).await?.into_inner())
    }

    /// A customer's journey; with `min_offset`, once that event is projected.
    pub async fn journey(
        &mut self,
        tenant: &str,
        customer: v1::CustomerRef,
        min_offset: Option<u64>,
    ) -> Result<GetJourneyResponse, Error> {
        let request = GetJourneyRequest {
            tenant_id: tenant.to_owned(),
            customer: Some(customer),
            min_offset,
        };
        Ok(self.journeys.get_journey(request).await?.into_inner())
    }

    /// What a channel asks when a contact arrives on `channel`: the conversation to
    /// continue, its context and the verified identity. With `min_offset`, once that event
    /// is projected.
    pub async fn resume(
        &mut self,
        tenant: &str,
        customer: v1::CustomerRef,
        channel: v1::Channel,
        min_offset: Option<u64>,
    ) -> Result<ResumeConversationResponse, Error> {
        let request = ResumeConversationRequest {
            tenant_id: tenant.to_owned(),
            customer: Some(customer),
            channel: channel as i32,
            min_offset,
            ..Default::default()
        };
        Ok(self
            .journeys
            .resume_conversation(request)
            .await?
            .into_inner())
    }

    /// The customer an identity belongs to.
    pub async fn resolve(
        &mut self,
        tenant: &str,
        identity: v1::ChannelIdentity,
        min_offset: Option<u64>,
    ) -> Result<ResolveCustomerResponse, Error> {
        let request = ResolveCustomerRequest {
            tenant_id: tenant.to_owned(),
            identity: Some(identity),
            min_offset,
        };
        Ok(self
            .identities
            .resolve_customer(request)
            .await?
            .into_inner())
    }

    /// The original events matching `request`, in log order.
    pub async fn replay(
        &mut self,
        request: ReplayHistoryRequest,
    ) -> Result<impl Stream<Item = Result<ReplayedEvent, Error>> + use<>, Error> {
        let stream = self.audit.replay_history(request).await?.into_inner();
        Ok(stream.map(|item| item.map_err(Error::from)))
    }

    /// The generated clients, for calls this type does not wrap (streams, metadata).
    pub fn ingest(&self) -> IngestClient<Channel> {
        self.ingest.clone()
    }

    pub fn journeys(&self) -> JourneysClient<Channel> {
        self.journeys.clone()
    }

    pub fn identities(&self) -> IdentitiesClient<Channel> {
        self.identities.clone()
    }

    pub fn routing(&self) -> RoutingClient<Channel> {
        self.routing.clone()
    }

    pub fn audit(&self) -> AuditClient<Channel> {
        self.audit.clone()
    }
}
