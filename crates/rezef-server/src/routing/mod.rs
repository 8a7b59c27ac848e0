//! `rezef.v1.Routing`: routing decisions for contacts, agent sessions receiving offers,
//! queue figures and the routing configuration. The decisions are the pure
//! `rezef_routing::Engine`'s; a [`desk`] keeps one per tenant (`tenant.rs`) with its
//! sessions and clock. On Kafka each tenant's routing runs on the owner of its routing
//! partition, the one writer of it; calls reaching another node are forwarded there
//! (docs/scale-out.md §5).
//!
//! This file is the tonic service and where each call is answered (`desks.rs`: the desks on
//! this node). One file per use case: `route.rs` (RouteInteraction), `session.rs` (the agent
//! session), `stats.rs` (queue figures and watches), `supervisor.rs` (agents, presence),
//! `configure.rs`, `withdraw.rs`, `transfer.rs`, `consult.rs`, `explain.rs` (ExplainDecision,
//! answered on the node serving the customer's partition); `recover.rs` holds contacts
//! again after a restart. The contract's shapes are in `crate::convert::routing`.

mod configure;
mod consult;
pub mod desk;
mod desks;
mod explain;
mod known;
mod profile;
mod recover;
mod route;
mod session;
mod stats;
mod supervisor;
mod tenant;
mod transfer;
mod withdraw;

use std::sync::Arc;

use futures::StreamExt;
use rezef_events::TenantId;
use rezef_proto::v1::{
    AgentSessionRequest, ExplainDecisionRequest, ExplainDecisionResponse, GetQueueStatsRequest,
    GetQueueStatsResponse, ListAgentsRequest, ListAgentsResponse, RouteInteractionRequest,
    RouteInteractionResponse, SetAgentPresenceRequest, SetAgentPresenceResponse,
    SetRoutingConfigRequest, SetRoutingConfigResponse, WithdrawContactRequest,
    WithdrawContactResponse, agent_session_request::Action, routing_client::RoutingClient,
    routing_server,
};
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status, Streaming};
use tracing::{Instrument, info_span};

use crate::backbone::Backbone;
use crate::cluster::{Place, answer, forward, forward_stream};
use crate::{Error, Result};
use desk::Desk;
pub use desks::Desks;
use session::SessionStream;
use stats::Watched;

/// `rezef.v1.Routing`: a tenant's routing runs on one node (on Kafka, the owner of the
/// tenant's routing partition, docs/scale-out.md §5); other nodes forward calls and relay
/// agent sessions to it.
#[derive(Debug, Clone)]
pub struct RoutingService {
    desks: Arc<Desks>,
}

/// Calls answered by a desk on this node.
#[derive(Debug, Clone)]
struct Local {
    desk: Arc<Desk>,
}

impl RoutingService {
    pub fn new(desks: Arc<Desks>) -> Self {
        Self { desks }
    }

    /// The desk running `tenant`'s routing: here, or on its owner. A tenant id that is not
    /// valid is validated in full by any desk here, so that every mistake is listed.
    fn place(&self, field: &str, tenant: &str, metadata: &MetadataMap) -> Result<Place<Local>> {
        let tenant = match TenantId::new(tenant.to_owned()) {
            Ok(tenant) => tenant,
            Err(reason) => {
                return match self.desks.any() {
                    Some(desk) => Ok(Place::Here(Local { desk })),
                    None => Err(Error::invalid(field, reason)),
                };
            }
        };
        Ok(match self.desks.place(&tenant, metadata)? {
            Place::Here(desk) => Place::Here(Local { desk }),
            Place::There(peer) => Place::There(peer),
        })
    }
}

impl RoutingService {
    /// `place` for a request whose tenant is its `tenant_id` field.
    fn place_request<T>(&self, request: &Request<T>, tenant: &str) -> Result<Place<Local>> {
        self.place("tenant_id", tenant, request.metadata())
    }
}

impl Local {
    /// `read`s the answer once routing has read everything logged before the call, within
    /// its deadline (see `Desk::followed_up`).
    async fn followed_up<T, R>(
        &self,
        request: Request<T>,
        read: impl FnOnce(&Self, T) -> Result<R>,
    ) -> Result<R> {
        let wait = self.backbone().max_wait(&request);
        self.desk.followed_up(wait).await?;
        read(self, request.into_inner())
    }

    fn backbone(&self) -> &Backbone {
        self.desk.backbone()
    }
}

#[tonic::async_trait]
impl routing_server::Routing for RoutingService {
    async fn route_interaction(
        &self,
        request: Request<RouteInteractionRequest>,
    ) -> Result<Response<RouteInteractionResponse>, Status> {
        let span = info_span!("route_interaction", tenant = %request.get_ref().tenant_id);
        answer!(
            span,
            self.place_request(&request, &request.get_ref().tenant_id)?,
            |local| local.route(request),
            RoutingClient,
            route_interaction,
            request
        )
    }

    type AgentSessionStream = SessionStream;

    async fn agent_session(
        &self,
        request: Request<Streaming<AgentSessionRequest>>,
    ) -> Result<Response<SessionStream>, Status> {
        let (metadata, _, mut inbound) = request.into_parts();
        let first = inbound.next().await.ok_or_else(|| {
            Status::invalid_argument("login: the session must start with a login")
        })??;
        let tenant = match &first.action {
            Some(Action::Login(login)) => login.tenant_id.clone(),
            _ => String::new(),
        };
        match self.place("login.tenant_id", &tenant, &metadata)? {
            Place::Here(local) => local.agent_session(first, inbound).await,
            Place::There(peer) => {
                // The session runs on the tenant's routing node; this one relays both ways.
                let rest = inbound
                    .take_while(|message| std::future::ready(message.is_ok()))
                    .filter_map(|message| std::future::ready(message.ok()));
                let outbound = futures::stream::once(async { first }).chain(rest);
                let request = Request::from_parts(metadata, Default::default(), outbound);
                forward_stream!(peer, RoutingClient, agent_session, request)
            }
        }
    }

    async fn get_queue_stats(
        &self,
        request: Request<GetQueueStatsRequest>,
    ) -> Result<Response<GetQueueStatsResponse>, Status> {
        let span = info_span!("get_queue_stats", tenant = %request.get_ref().tenant_id);
        // A contact whose end was acknowledged before the call is not counted.
        answer!(
            span,
            self.place_request(&request, &request.get_ref().tenant_id)?,
            |local| local.followed_up(request, Local::stats),
            RoutingClient,
            get_queue_stats,
            request
        )
    }

    type WatchQueuesStream = Watched<GetQueueStatsResponse>;

    async fn watch_queues(
        &self,
        request: Request<GetQueueStatsRequest>,
    ) -> Result<Response<Watched<GetQueueStatsResponse>>, Status> {
        match self.place_request(&request, &request.get_ref().tenant_id)? {
            Place::Here(local) => {
                let request = request.into_inner();
                let span = info_span!("watch_queues", tenant = %request.tenant_id);
                local.watch(span, move |local| local.stats(request.clone()))
            }
            Place::There(peer) => forward_stream!(peer, RoutingClient, watch_queues, request),
        }
    }

    async fn list_agents(
        &self,
        request: Request<ListAgentsRequest>,
    ) -> Result<Response<ListAgentsResponse>, Status> {
        let span = info_span!("list_agents", tenant = %request.get_ref().tenant_id);
        // As GetQueueStats: a contact that ended before the call is not held.
        answer!(
            span,
            self.place_request(&request, &request.get_ref().tenant_id)?,
            |local| local.followed_up(request, Local::agents),
            RoutingClient,
            list_agents,
            request
        )
    }

    type WatchAgentsStream = Watched<ListAgentsResponse>;

    async fn watch_agents(
        &self,
        request: Request<ListAgentsRequest>,
    ) -> Result<Response<Watched<ListAgentsResponse>>, Status> {
        match self.place_request(&request, &request.get_ref().tenant_id)? {
            Place::Here(local) => {
                let request = request.into_inner();
                let span = info_span!("watch_agents", tenant = %request.tenant_id);
                local.watch(span, move |local| local.agents(request.clone()))
            }
            Place::There(peer) => forward_stream!(peer, RoutingClient, watch_agents, request),
        }
    }

    async fn set_agent_presence(
        &self,
        request: Request<SetAgentPresenceRequest>,
    ) -> Result<Response<SetAgentPresenceResponse>, Status> {
        let span = info_span!("set_agent_presence", tenant = %request.get_ref().tenant_id);
        answer!(
            span,
            self.place_request(&request, &request.get_ref().tenant_id)?,
            |local| local.set_agent_presence(request.into_inner()),
            RoutingClient,
            set_agent_presence,
            request
        )
    }

    async fn withdraw_contact(
        &self,
        request: Request<WithdrawContactRequest>,
    ) -> Result<Response<WithdrawContactResponse>, Status> {
        let span = info_span!("withdraw_contact", tenant = %request.get_ref().tenant_id);
        answer!(
            span,
            self.place_request(&request, &request.get_ref().tenant_id)?,
            |local| local.withdraw(request.into_inner()),
            RoutingClient,
            withdraw_contact,
            request
        )
    }

    async fn explain_decision(
        &self,
        mut request: Request<ExplainDecisionRequest>,
    ) -> Result<Response<ExplainDecisionResponse>, Status> {
        let span = info_span!("explain_decision", tenant = %request.get_ref().tenant_id);
        // By interaction alone: its customer is found where routing logged its decisions.
        if request.get_ref().customer.is_none() {
            let tenant = request.get_ref().tenant_id.clone();
            match self.place_request(&request, &tenant)? {
                Place::Here(local) => {
                    let found = explain::customer_of(local.backbone(), &request);
                    let customer = found.instrument(span.clone()).await?;
                    request.get_mut().customer = Some(customer);
                }
                Place::There(peer) => {
                    return forward!(peer, RoutingClient, explain_decision, request);
                }
            }
        }
        // Read where the customer's events are, like a replay of the customer.
        let message = request.get_ref();
        let place = crate::journeys::place_customer(
            self.desks.topology(),
            &request,
            &message.tenant_id,
            message.customer.as_ref(),
        )?;
        answer!(
            span,
            place,
            |backbone| explain::explain(&backbone, request),
            RoutingClient,
            explain_decision,
            request
        )
    }

    async fn set_routing_config(
        &self,
        request: Request<SetRoutingConfigRequest>,
    ) -> Result<Response<SetRoutingConfigResponse>, Status> {
        let span = info_span!("set_routing_config", tenant = %request.get_ref().tenant_id);
        answer!(
            span,
            self.place_request(&request, &request.get_ref().tenant_id)?,
            |local| local.set_config(request.into_inner()),
            RoutingClient,
            set_routing_config,
            request
        )
    }
}
