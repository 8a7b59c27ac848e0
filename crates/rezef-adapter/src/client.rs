//! A thin typed client over the services, with the errors an adapter must tell apart:
//! its own bad input (do not retry) versus the server being unavailable (retry; event ids
//! make retries safe). A server with API keys wants one on every call
//! (`authorization: Bearer rzf_…`), so the key is given once ([`Client::with_token`]) and every
//! client this type hands out, the generated ones too, carries it.

use std::fmt;

use futures::{Stream, StreamExt};
use rezef_proto::v1::{
    self, GetJourneyRequest, GetJourneyResponse, PublishRequest, PublishResponse,
    ReplayHistoryRequest, ReplayedEvent, ResolveCustomerRequest, ResolveCustomerResponse,
    ResumeConversationRequest, ResumeConversationResponse, audit_client::AuditClient,
    identities_client::IdentitiesClient, ingest_client::IngestClient,
    insights_client::InsightsClient, journeys_client::JourneysClient,
    routing_client::RoutingClient,
};
use tonic::metadata::AsciiMetadataValue;
use tonic::service::{Interceptor, interceptor::InterceptedService};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::Error;

/// Adds `authorization: Bearer <key>` to each call, when the client has a key: the
/// interceptor of the generated clients [`Client`] hands out.
#[derive(Clone, Default)]
pub struct Auth {
    /// `Bearer <key>`, marked sensitive (kept out of HTTP/2 header tables and `Debug`).
    bearer: Option<AsciiMetadataValue>,
}

impl Interceptor for Auth {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        // A call that sets its own `authorization` keeps it.
        if let Some(bearer) = &self.bearer
            && !request.metadata().contains_key("authorization")
        {
            request
                .metadata_mut()
                .insert("authorization", bearer.clone());
        }
        Ok(request)
    }
}

/// Never prints the key.
impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = if self.bearer.is_some() {
            "Bearer …"
        } else {
            "none"
        };
        f.debug_struct("Auth").field("key", &key).finish()
    }
}

/// How a client checks the server and proves itself over TLS ([`Client::connect_tls`]).
#[derive(Clone, Default)]
pub struct TlsOptions {
    /// PEM CA certificates that signed the server's certificate; unset: the public web's
    /// roots (webpki-roots).
    pub ca_pem: Option<Vec<u8>>,
    /// PEM certificate and private key of this client, for a server that asks for one (mTLS).
    pub identity_pem: Option<(Vec<u8>, Vec<u8>)>,
    /// The name the server's certificate must carry, when not the address's host.
    pub domain: Option<String>,
}

/// Never prints the private key.
impl fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsOptions")
            .field("ca_pem", &self.ca_pem.as_ref().map(Vec::len))
            .field("identity", &self.identity_pem.is_some())
            .field("domain", &self.domain)
            .finish()
    }
}

/// A connection to a Rezef server. Cheap to clone (one HTTP/2 connection underneath).
#[derive(Debug, Clone)]
pub struct Client {
    channel: Channel,
    auth: Auth,
}

impl Client {
    /// Connects to `addr` (`http://host:port`).
    pub async fn connect(addr: impl Into<String>) -> Result<Self, Error> {
        let addr = addr.into();
        let channel = (endpoint(&addr, None)?.connect().await)
            .map_err(|source| Error::Connect { addr, source })?;
        Ok(Self::from_channel(channel))
    }

    /// Connects to `addr` (`https://host:port`) over TLS: the server's certificate checked
    /// against `tls.ca_pem` (else the public web's roots), and for mTLS this client's own.
    pub async fn connect_tls(addr: impl Into<String>, tls: TlsOptions) -> Result<Self, Error> {
        let addr = addr.into();
        let channel = (endpoint(&addr, Some(tls))?.connect().await)
            .map_err(|source| Error::Connect { addr, source })?;
        Ok(Self::from_channel(channel))
    }

    /// A client of `addr` (`http://…`, or `https://…` with `tls`) that connects on its first
    /// call, and again on a later call after losing the server: for a
    /// [`Publisher`](crate::Publisher) that must start, and accept events, while Rezef is
    /// down. Calls while the server is out of reach fail `UNAVAILABLE`.
    pub fn connect_lazy(addr: impl Into<String>, tls: Option<TlsOptions>) -> Result<Self, Error> {
        Ok(Self::from_channel(
            endpoint(&addr.into(), tls)?.connect_lazy(),
        ))
    }

    /// The connection underneath, for services the SDK does not wrap (`grpc.health.v1`).
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    pub fn from_channel(channel: Channel) -> Self {
        Self {
            channel,
            auth: Auth::default(),
        }
    }

    /// Sends `token` (an API key, `rzf_…`, from `rezef keys create`) as
    /// `authorization: Bearer <token>` on every call from now on.
    pub fn with_token(mut self, token: impl Into<String>) -> Result<Self, Error> {
        let token = token.into();
        // Visible ASCII, one word: what `rezef keys create` prints and a header may carry
        // (a header would take bytes above 127, which servers then cannot read as text).
        let refused = || Error::Token("an API key is one word of printable ASCII (rzf_…)".into());
        if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(refused());
        }
        let mut bearer =
            AsciiMetadataValue::try_from(format!("Bearer {token}")).map_err(|_| refused())?;
        bearer.set_sensitive(true);
        self.auth = Auth {
            bearer: Some(bearer),
        };
        Ok(self)
    }

    /// Publishes a batch; returns once it is durable.
    pub async fn publish(&mut self, events: Vec<v1::Event>) -> Result<PublishResponse, Error> {
        let request = PublishRequest {
            events,
            sequence: 0,
        };
        Ok(self.ingest().publish(request).await?.into_inner())
    }

    /// A customer's journey; with `min_offset`, once that event is projected.
    pub async fn journey(
        &mut self,
        tenant: &str,
        customer: v1::CustomerRef,
        min_offset: Option<u64>,
    ) -> Result<GetJourneyResponse, Error> {
        self.journey_as_of(tenant, customer, min_offset, None).await
    }

    /// A customer's journey as the projection knew it at `as_of` (now if `None`).
    pub async fn journey_as_of(
        &mut self,
        tenant: &str,
        customer: v1::CustomerRef,
        min_offset: Option<u64>,
        as_of: Option<v1::AsOf>,
    ) -> Result<GetJourneyResponse, Error> {
        let request = GetJourneyRequest {
            tenant_id: tenant.to_owned(),
            customer: Some(customer),
            min_offset,
            as_of,
        };
        Ok(self.journeys().get_journey(request).await?.into_inner())
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
            .journeys()
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
            .identities()
            .resolve_customer(request)
            .await?
            .into_inner())
    }

    /// The original events matching `request`, in log order.
    pub async fn replay(
        &mut self,
        request: ReplayHistoryRequest,
    ) -> Result<impl Stream<Item = Result<ReplayedEvent, Error>> + use<>, Error> {
        let stream = self.audit().replay_history(request).await?.into_inner();
        Ok(stream.map(|item| item.map_err(Error::from)))
    }

    /// The generated clients, for calls this type does not wrap (streams, metadata); they
    /// carry the API key, if the client has one.
    pub fn ingest(&self) -> IngestClient<InterceptedService<Channel, Auth>> {
        IngestClient::with_interceptor(self.channel.clone(), self.auth.clone())
            .max_decoding_message_size(usize::MAX)
    }

    pub fn journeys(&self) -> JourneysClient<InterceptedService<Channel, Auth>> {
        JourneysClient::with_interceptor(self.channel.clone(), self.auth.clone())
            .max_decoding_message_size(usize::MAX)
    }

    pub fn identities(&self) -> IdentitiesClient<InterceptedService<Channel, Auth>> {
        IdentitiesClient::with_interceptor(self.channel.clone(), self.auth.clone())
            .max_decoding_message_size(usize::MAX)
    }

    pub fn routing(&self) -> RoutingClient<InterceptedService<Channel, Auth>> {
        RoutingClient::with_interceptor(self.channel.clone(), self.auth.clone())
            .max_decoding_message_size(usize::MAX)
    }

    pub fn audit(&self) -> AuditClient<InterceptedService<Channel, Auth>> {
        AuditClient::with_interceptor(self.channel.clone(), self.auth.clone())
            .max_decoding_message_size(usize::MAX)
    }

    pub fn insights(&self) -> InsightsClient<InterceptedService<Channel, Auth>> {
        InsightsClient::with_interceptor(self.channel.clone(), self.auth.clone())
            .max_decoding_message_size(usize::MAX)
    }
}

/// The endpoint of `addr`, over TLS with `tls`.
fn endpoint(addr: &str, tls: Option<TlsOptions>) -> Result<Endpoint, Error> {
    let endpoint = Endpoint::from_shared(addr.to_owned())
        .map_err(|source| Error::Connect {
            addr: addr.to_owned(),
            source,
        })?
        .tcp_nodelay(true);
    let Some(tls) = tls else {
        return Ok(endpoint);
    };
    let mut config = ClientTlsConfig::new();
    config = match tls.ca_pem {
        Some(ca) => config.ca_certificate(Certificate::from_pem(ca)),
        None => config.with_webpki_roots(),
    };
    if let Some((cert, key)) = tls.identity_pem {
        config = config.identity(Identity::from_pem(cert, key));
    }
    if let Some(domain) = tls.domain {
        config = config.domain_name(domain);
    }
    (endpoint.tls_config(config)).map_err(|e| Error::Tls(e.to_string()))
}
