//! `rezef.v1.Routing`: routing decisions for contacts, agent sessions receiving offers,
//! queue figures and the routing configuration. The decisions are the pure
//! `rezef_routing::Engine`'s; [`desk`] keeps one per tenant with its sessions and clock. On
//! Kafka each tenant's routing runs on the owner of its routing partition, the one writer of
//! it; calls reaching another node are forwarded there (docs/scale-out.md §5).

mod consult;
pub mod desk;
mod known;
mod profile;
mod recover;
mod supervisor;
mod transfer;
mod withdraw;

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, RwLock};

use futures::{Stream, StreamExt};
use rezef_events::event::{Presence, RoutingTarget};
use rezef_events::fold::customer_id_for;
use rezef_events::{AgentId, Channel, CustomerRef, InteractionId, Payload, TenantId};
use rezef_proto::v1::{
    self, AgentSessionEvent, AgentSessionRequest, GetQueueStatsRequest, GetQueueStatsResponse,
    ListAgentsRequest, ListAgentsResponse, RouteInteractionRequest, RouteInteractionResponse,
    RouteOutcome, SetAgentPresenceRequest, SetAgentPresenceResponse, SetRoutingConfigRequest,
    SetRoutingConfigResponse, WithdrawContactRequest, WithdrawContactResponse,
    agent_session_event as out, agent_session_request::Action, routing_client::RoutingClient,
    routing_server,
};
use rezef_routing::{ContactRequest, RoutingConfig, RoutingError, Target};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status, Streaming};
use tracing::{Instrument, debug, info, info_span};

use crate::backbone::Backbone;
use crate::cluster::{Peer, Place, Topology, forward};
use crate::convert::{Check, duration};
use crate::own_event::OwnEvent;
use crate::reader::Fresh;
use crate::{Error, Result};
use desk::{Desk, Effects, Outgoing};
use known::Known;

/// How far ahead a callback may be scheduled (`RouteInteractionRequest.callback_at`).
const MAX_CALLBACK_AHEAD: std::time::Duration = std::time::Duration::from_secs(30 * 86_400);

/// `rezef.v1.Routing`: a tenant's routing runs on one node (on Kafka, the owner of the
/// tenant's routing partition, docs/scale-out.md §5); other nodes forward calls and relay
/// agent sessions to it.
#[derive(Debug, Clone)]
pub struct RoutingService {
    desks: Arc<Desks>,
}

/// The routing desks of the partitions served here: a tenant's routing runs on the desk of
/// its routing partition, on the node that serves it (on the embedded log, the one desk).
/// `crate::node` adds and removes them with their partitions.
#[derive(Debug)]
pub struct Desks {
    topology: Topology,
    by_partition: RwLock<HashMap<u32, Arc<Desk>>>,
}

/// Where a tenant's routing runs.
enum DeskAt {
    Here(Arc<Desk>),
    There(Peer),
}

impl Desks {
    pub fn new(topology: Topology) -> Self {
        Self {
            topology,
            by_partition: RwLock::default(),
        }
    }

    pub fn set(&self, partition: u32, desk: Option<Arc<Desk>>) {
        let mut desks = self.by_partition.write().unwrap_or_else(|p| p.into_inner());
        match desk {
            Some(desk) => desks.insert(partition, desk),
            None => desks.remove(&partition),
        };
    }

    fn get(&self, partition: u32) -> Option<Arc<Desk>> {
        let desks = self.by_partition.read().unwrap_or_else(|p| p.into_inner());
        desks.get(&partition).cloned()
    }

    /// A desk of this node's, to validate a call whose tenant is not valid.
    fn any(&self) -> Option<Arc<Desk>> {
        let desks = self.by_partition.read().unwrap_or_else(|p| p.into_inner());
        desks.values().next().cloned()
    }

    /// The desk of `tenant`'s routing: on the owner of its routing partition, which alone
    /// writes it (docs/scale-out.md §5).
    fn place(&self, tenant: &TenantId, metadata: &MetadataMap) -> Result<DeskAt> {
        let partition = self.topology.partitioner().routing(tenant);
        Ok(match self.topology.place(partition, metadata)? {
            Place::Here(_) => match self.get(partition) {
                Some(desk) => DeskAt::Here(desk),
                None => return Err(self.topology.not_served_here(partition)),
            },
            Place::There(peer) => DeskAt::There(peer),
        })
    }
}

/// Where one call is answered.
enum At {
    Here(Local),
    There(Peer),
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
    fn place(&self, field: &str, tenant: &str, metadata: &MetadataMap) -> Result<At> {
        let tenant = match TenantId::new(tenant.to_owned()) {
            Ok(tenant) => tenant,
            Err(reason) => {
                return match self.desks.any() {
                    Some(desk) => Ok(At::Here(Local { desk })),
                    None => Err(Error::invalid(field, reason)),
                };
            }
        };
        Ok(match self.desks.place(&tenant, metadata)? {
            DeskAt::Here(desk) => At::Here(Local { desk }),
            DeskAt::There(peer) => At::There(peer),
        })
    }
}

impl RoutingService {
    /// `place` for a request whose tenant is its `tenant_id` field.
    fn place_request<T>(&self, request: &Request<T>, tenant: &str) -> Result<At> {
        self.place("tenant_id", tenant, request.metadata())
    }
}

impl Local {
    /// Waits, within the call's deadline, until routing has read everything logged before
    /// the call (see `Desk::followed_up`).
    async fn followed_up<T>(&self, request: &Request<T>) -> Result<()> {
        let wait = self.backbone().max_wait(request);
        self.desk.followed_up(wait).await
    }

    fn backbone(&self) -> &Backbone {
        self.desk.backbone()
    }

    async fn route(
        &self,
        request: Request<RouteInteractionRequest>,
    ) -> Result<RouteInteractionResponse> {
        let wait = self.backbone().max_wait(&request);
        let request = request.into_inner();
        let mut check = self.backbone().check();
        let tenant = check.tenant("tenant_id", request.tenant_id);
        let customer = check.required_customer("customer", request.customer);
        let interaction = check.id(
            "interaction_id",
            request.interaction_id,
            true,
            InteractionId::new,
        );
        let channel = check.required::<Channel>("channel", request.channel);
        let arrived_at = check.time("arrived_at", request.arrived_at);
        // A callback in the past (or now) is routed at once; too far ahead is a mistake.
        let callback_at = check.time("callback_at", request.callback_at);
        if callback_at.is_some_and(|at| at > self.desk.now().plus(MAX_CALLBACK_AHEAD)) {
            check.fail("callback_at", "must be at most 30 days ahead");
        }
        let language = check.language("language", request.language);
        let (tenant, customer, interaction, channel) =
            check.finish(|| Some((tenant?, customer?, interaction?, channel?)))?;

        // Contacts held before routing started are back before this one joins them.
        self.desk.recovered(wait).await?;
        // What the backbone knows of the customer fills what the request leaves out: as of
        // every event logged before the request arrived (read-your-writes for the adapter
        // that just published the language and the intent).
        let fresh = Fresh {
            min_offset: request.min_offset,
            wait,
        };
        let journey = self
            .desk
            .reader()
            .journey(&tenant, &customer, Some(fresh))
            .await?;
        let customer_id = match (&journey, &customer) {
            (Some(journey), _) => journey.customer_id.clone(),
            (None, CustomerRef::Id(id)) => id.clone(),
            (None, CustomerRef::Identity(identity)) => customer_id_for(&tenant, identity),
        };
        if journey
            .as_ref()
            .is_some_and(|journey| known::has_ended(journey, &interaction))
        {
            return Err(withdraw::over(&interaction));
        }
        let now = self.desk.now();
        let known = journey
            .as_ref()
            .map(|journey| {
                Known::of(
                    journey,
                    &interaction,
                    channel,
                    now,
                    self.backbone().policy(&tenant),
                )
            })
            .unwrap_or_default();
        let text = |value: String| (!value.is_empty()).then_some(value);
        let contact = ContactRequest {
            id: Some(interaction.clone()),
            channel: Some(channel),
            arrived_at,
            intent: text(request.intent).or(known.intent),
            language: language.or(known.language),
            tier: text(request.tier).or(known.tier),
            customer_since: known.customer_since,
            repeat: known.repeat,
            preferred_agent: known.affinity,
            context: request.context.into_iter().collect(),
            human_requested: request.human_requested,
            bot_failures: request.bot_failures,
            not_before: callback_at,
        };

        let input = recover::input_of(&contact, now);
        let (decision, effects) = self.desk.with_tenant(&tenant, |t| {
            // Its end was logged after the journey was read, and routing has read it.
            if callback_at.is_none() && t.ended.contains(&interaction) {
                return Err(withdraw::over(&interaction));
            }
            t.remember_contact(interaction.clone(), customer_id.clone(), channel);
            let decision = match t.engine.route(contact, now) {
                Ok(decision) => decision,
                Err(error) => {
                    if !matches!(error, RoutingError::DuplicateContact(_)) {
                        t.forget_contact(&interaction);
                    }
                    return Err(error.into());
                }
            };
            let mut effects = Effects::default();
            let (target, bot_id, agent_id, estimated_wait, offer_callback) = match &decision.target
            {
                Target::Bot { bot_id } => (RoutingTarget::Bot, bot_id.clone(), None, None, false),
                Target::Offered(offer) => (
                    RoutingTarget::Agent,
                    String::new(),
                    Some(offer.agent.clone()),
                    None,
                    false,
                ),
                Target::Queued {
                    estimated_wait,
                    offer_callback,
                    ..
                } => (
                    RoutingTarget::Queue,
                    String::new(),
                    None,
                    *estimated_wait,
                    *offer_callback,
                ),
            };
            let decided = Payload::RoutingDecided {
                target,
                bot_id,
                queue_id: decision.queue.clone(),
                agent_id,
                rule: decision.rule.clone().unwrap_or_default(),
                step: u32::try_from(decision.step).unwrap_or(u32::MAX),
                priority: decision.priority,
                candidates: decision.candidates.clone(),
                estimated_wait_ms: estimated_wait
                    .map(|w| u64::try_from(w.as_millis()).unwrap_or(u64::MAX)),
                offer_callback,
                config_version: decision.config_version,
                // A bot's contact is not routing's to hold.
                input: (target != RoutingTarget::Bot).then(|| Box::new(input)),
            };
            effects
                .events
                .extend(t.contact_event(&tenant, &interaction, decided, now));
            match &decision.target {
                Target::Offered(offer) => {
                    t.offered(&tenant, vec![offer.clone()], now, &mut effects);
                }
                Target::Queued { .. } => {
                    let queued = Payload::ContactQueued {
                        queue_id: decision.queue.clone(),
                        priority: decision.priority.max(0.0).round() as u32,
                        required_skills: Vec::new(),
                        language: None,
                    };
                    effects
                        .events
                        .extend(t.contact_event(&tenant, &interaction, queued, now));
                }
                Target::Bot { .. } => t.forget_contact(&interaction),
            }
            // Offers the engine made to other contacts while routing (those waiting longer,
            // or whose escalation step fell due) come out of the dispatch.
            t.dispatch(&tenant, now, &mut effects);
            Ok((decision, effects))
        })?;
        let offset = self.desk.apply(&tenant, effects).await?.unwrap_or_default();
        let mut response = RouteInteractionResponse {
            queue_id: decision.queue,
            rule: decision.rule.unwrap_or_default(),
            step: u32::try_from(decision.step).unwrap_or(u32::MAX),
            priority: decision.priority,
            candidates: decision
                .candidates
                .iter()
                .map(ToString::to_string)
                .collect(),
            config_version: decision.config_version,
            offset,
            ..Default::default()
        };
        match decision.target {
            Target::Bot { bot_id } => {
                response.outcome = RouteOutcome::Bot as i32;
                response.bot_id = bot_id;
            }
            Target::Offered(offer) => {
                response.outcome = RouteOutcome::Offered as i32;
                response.agent_id = offer.agent.to_string();
                response.offer_id = offer.id.0;
            }
            Target::Queued {
                position,
                estimated_wait,
                offer_callback,
            } => {
                response.outcome = RouteOutcome::Queued as i32;
                response.position = u32::try_from(position).unwrap_or(u32::MAX);
                response.estimated_wait = estimated_wait.map(duration);
                response.offer_callback = offer_callback;
            }
        }
        Ok(response)
    }

    async fn set_config(
        &self,
        request: SetRoutingConfigRequest,
    ) -> Result<SetRoutingConfigResponse> {
        let mut check = Check::default();
        let tenant = check.tenant("tenant_id", request.tenant_id);
        if request.config.is_empty() {
            check.fail("config", "is required");
        }
        let Ok(tenant) = check.finish(|| tenant) else {
            return Err(Error::invalid("config", "is required (and tenant_id)"));
        };
        let routing = RoutingConfig::from_toml(&request.config).map_err(|errors| {
            Error::InvalidArgument(
                errors
                    .into_iter()
                    .map(|e| rezef_events::Violation::new(format!("config.{}", e.path), e.message))
                    .collect(),
            )
        })?;
        let version = routing.version;
        let payload = Payload::RoutingConfigChanged {
            version,
            config: request.config,
        };
        let event = OwnEvent::new(&tenant, "rezef.routing", payload).build();
        let offset = self.backbone().append(&[event]).await?;
        self.desk.configure(&tenant, routing);
        info!(%tenant, version, offset, "routing configuration replaced");
        Ok(SetRoutingConfigResponse { version, offset })
    }

    fn stats(&self, request: GetQueueStatsRequest) -> Result<GetQueueStatsResponse> {
        let mut check = Check::default();
        let tenant = check.tenant("tenant_id", request.tenant_id);
        let tenant = check.finish(|| tenant)?;
        self.desk.with_tenant(&tenant, |t| {
            let now = self.desk.now();
            let queues = t
                .engine
                .stats(now)
                .into_iter()
                .map(|s| v1::QueueStats {
                    queue_id: s.queue,
                    waiting: u32::try_from(s.waiting).unwrap_or(u32::MAX),
                    scheduled: u32::try_from(s.scheduled).unwrap_or(u32::MAX),
                    longest_wait: Some(duration(s.longest_wait)),
                    available: s
                        .available
                        .into_iter()
                        .map(|(channel, n)| {
                            (channel.to_string(), u32::try_from(n).unwrap_or(u32::MAX))
                        })
                        .collect(),
                    estimated_wait: s.estimated_wait.map(duration),
                    average_wait: s.average_wait.map(duration),
                    average_handle_time: s.average_handle_time.map(duration),
                })
                .collect();
            Ok(GetQueueStatsResponse {
                queues,
                config_version: t.engine.routing().version,
            })
        })
    }

    /// A session whose login (`first`) is for a tenant routed here.
    async fn agent_session(
        &self,
        first: AgentSessionRequest,
        mut inbound: Streaming<AgentSessionRequest>,
    ) -> Result<Response<SessionStream>, Status> {
        let Some(Action::Login(login)) = first.action else {
            return Err(Error::invalid("login", "the session must start with a login").into());
        };
        let mut check = Check::default();
        let tenant = check.tenant("login.tenant_id", login.tenant_id);
        let profile = profile::from_proto(&mut check, "login.profile", login.profile);
        let presence = match login.presence {
            0 => Some(Presence::Available),
            value => check.required::<Presence>("login.presence", value),
        };
        let (tenant, profile, presence) =
            (check.finish(|| Some((tenant?, profile?, presence?)))).map_err(Error::from)?;
        let agent = profile.id.clone();
        let (sender, receiver) = mpsc::channel(64);
        // No first offer of a contact whose end was acknowledged before the login.
        self.desk.followed_up(self.desk.max_wait()).await?;
        let now = self.desk.now();
        let effects = self.desk.with_tenant(&tenant, |t| {
            t.engine.upsert_agent(profile, now);
            t.engine.set_presence(&agent, presence, now)?;
            // `logged_in` goes first, before any offer another request makes once the
            // session is known: queued while the lock is held, on a channel still empty.
            let logged_in = AgentSessionEvent {
                event: Some(out::Event::LoggedIn(out::LoggedIn {
                    config_version: t.engine.routing().version,
                })),
            };
            sender
                .try_send(Ok(logged_in))
                .map_err(|_| Error::Unavailable("the session closed at login".into()))?;
            t.connect(agent.clone(), sender.clone());
            let mut effects = Effects::default();
            effects.events.push(desk::Tenant::presence_event(
                &tenant,
                &agent,
                presence,
                "logged in",
                now,
            ));
            let offers = t.engine.dispatch(now);
            // A desk that logs in again before its old session is seen to end (a network
            // blip) gets the offers still outstanding: they went to the old session.
            t.resend_offers(&agent, &offers, &mut effects);
            t.offered(&tenant, offers, now, &mut effects);
            Ok(effects)
        })?;
        let session = Session {
            desk: self.desk.clone(),
            tenant: tenant.clone(),
            agent: agent.clone(),
            sender,
        };
        let span = info_span!("agent_session", %tenant, %agent);
        tokio::spawn(
            async move {
                if let Err(error) = session.desk.apply(&session.tenant, effects).await {
                    session.refuse(error).await;
                }
                loop {
                    let message = tokio::select! {
                        message = inbound.next() => message,
                        () = session.desk.backbone().closed() => None,
                    };
                    match message {
                        Some(Ok(AgentSessionRequest {
                            action: Some(action),
                        })) => {
                            if let Err(error) = session.handle(action).await {
                                session.refuse(error).await;
                            }
                        }
                        Some(Ok(_)) => {
                            session
                                .refuse(Error::invalid("action", "is required"))
                                .await
                        }
                        Some(Err(_)) | None => break,
                    }
                }
                session.end().await;
            }
            .instrument(span),
        );
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }

    /// `read` now, then again whenever the tenant's routing changes (at most every 100 ms:
    /// figures, not a change feed), until the client cancels.
    fn watch<T: Send + 'static>(
        &self,
        span: tracing::Span,
        read: impl Fn(&Local) -> Result<T> + Send + 'static,
    ) -> Result<Response<Watched<T>>, Status> {
        let first = read(self)?;
        let (sender, receiver) = mpsc::channel(4);
        let service = self.clone();
        let mut changes = self.desk.changes();
        tokio::spawn(
            async move {
                let mut update = Ok(first);
                loop {
                    if sender.send(update.map_err(Status::from)).await.is_err() {
                        return;
                    }
                    tokio::select! {
                        changed = changes.changed() => if changed.is_err() { return },
                        () = sender.closed() => return,
                        () = service.backbone().closed() => return,
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    changes.borrow_and_update();
                    update = read(&service);
                }
            }
            .instrument(span),
        );
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }
}

/// One agent's session, after a valid login.
struct Session {
    desk: Arc<Desk>,
    tenant: TenantId,
    agent: AgentId,
    sender: mpsc::Sender<Result<AgentSessionEvent, Status>>,
}

impl Session {
    async fn refuse(&self, error: Error) {
        let status = Status::from(error);
        let refused = out::Refused {
            code: crate::error::code_name(status.code()).to_owned(),
            message: status.message().to_owned(),
        };
        let event = AgentSessionEvent {
            event: Some(out::Event::Refused(refused)),
        };
        let _ = self.sender.send(Ok(event)).await;
    }

    /// Carries out one request of the session.
    async fn handle(&self, action: Action) -> Result<()> {
        if matches!(action, Action::Accept(_)) {
            // A contact whose end was acknowledged before the accept is not the agent's.
            self.desk.followed_up(self.desk.max_wait()).await?;
        }
        let now = self.desk.now();
        let tenant = &self.tenant;
        let agent = &self.agent;
        let effects = self.desk.with_tenant(tenant, |t| {
            let mut effects = Effects::default();
            match action {
                Action::Login(_) => {
                    return Err(Error::FailedPrecondition("already logged in".into()));
                }
                Action::Presence(p) => {
                    let mut check = Check::default();
                    let presence = check.required::<Presence>("presence.presence", p.presence);
                    let presence = check.finish(|| presence)?;
                    t.engine.set_presence(agent, presence, now)?;
                    effects.events.push(desk::Tenant::presence_event(
                        tenant,
                        agent,
                        presence,
                        &p.custom_status,
                        now,
                    ));
                }
                Action::Accept(accept) => {
                    let offer =
                        t.engine
                            .accept(rezef_routing::OfferId(accept.offer_id), agent, now)?;
                    if t.accepted(tenant, &offer, now, &mut effects) {
                        t.assigned(tenant, offer, now, &mut effects);
                    }
                }
                Action::Decline(decline) => {
                    t.engine
                        .decline(rezef_routing::OfferId(decline.offer_id), agent)?;
                    if let Some(presence) = t
                        .engine
                        .presence(agent)
                        .filter(|p| *p != Presence::Available)
                    {
                        effects.events.push(desk::Tenant::presence_event(
                            tenant,
                            agent,
                            presence,
                            "declined offers",
                            now,
                        ));
                        effects.messages.push((
                            agent.clone(),
                            Outgoing::Presence(presence, "too many declined offers"),
                        ));
                    }
                }
                Action::Transfer(transfer) => {
                    t.transfer(tenant, agent, transfer, now, &mut effects)?;
                }
                Action::Consult(consult) => {
                    t.consult(agent, consult, now)?;
                }
                Action::EndConsult(end) => {
                    t.end_consult(tenant, agent, end, now, &mut effects)?;
                }
                Action::UpdateProfile(update) => {
                    let profile = profile::update(agent, update)?;
                    t.engine.upsert_agent(profile, now);
                    effects
                        .messages
                        .push((agent.clone(), Outgoing::ProfileUpdated));
                }
                Action::Complete(complete) => {
                    let contact = InteractionId::new(complete.interaction_id)
                        .map_err(|reason| Error::invalid("complete.interaction_id", reason))?;
                    if t.engine.assigned_to(&contact) != Some(agent) {
                        return Err(Error::FailedPrecondition(format!(
                            "contact {contact} is not assigned to {agent}"
                        )));
                    }
                    t.engine.complete(&contact, now)?;
                    t.forget_contact(&contact);
                }
            }
            t.dispatch(tenant, now, &mut effects);
            Ok(effects)
        })?;
        self.desk.apply(tenant, effects).await?;
        Ok(())
    }

    /// The agent left: offers go back to the queues, the agent is offline. At shutdown
    /// every session ends at once, and a dispatch each (thousands of them, under the lock,
    /// for offers nobody would see) could take tens of seconds: the agent just goes offline.
    async fn end(&self) {
        let closing = self.desk.backbone().is_closing();
        let now = self.desk.now();
        let effects = self.desk.with_tenant(&self.tenant, |t| {
            if !t.disconnect(&self.agent, &self.sender) {
                return Ok(Effects::default());
            }
            t.engine.disconnect(&self.agent, now)?;
            let mut effects = Effects::default();
            effects.events.push(desk::Tenant::presence_event(
                &self.tenant,
                &self.agent,
                Presence::Offline,
                "session ended",
                now,
            ));
            if !closing {
                t.dispatch(&self.tenant, now, &mut effects);
            }
            Ok(effects)
        });
        if let Ok(effects) = effects {
            let _ = self.desk.apply(&self.tenant, effects).await;
        }
        debug!("agent session ended");
    }
}

type SessionStream = Pin<Box<dyn Stream<Item = Result<AgentSessionEvent, Status>> + Send>>;

/// A watch's updates.
type Watched<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl routing_server::Routing for RoutingService {
    async fn route_interaction(
        &self,
        request: Request<RouteInteractionRequest>,
    ) -> Result<Response<RouteInteractionResponse>, Status> {
        let span = info_span!("route_interaction", tenant = %request.get_ref().tenant_id);
        match self.place_request(&request, &request.get_ref().tenant_id)? {
            At::Here(local) => {
                let response = local.route(request).instrument(span).await?;
                Ok(Response::new(response))
            }
            At::There(peer) => forward!(peer, RoutingClient, route_interaction, request),
        }
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
            At::Here(local) => local.agent_session(first, inbound).await,
            At::There(peer) => {
                // The session runs on the tenant's routing node; this one relays both ways.
                let rest = inbound
                    .take_while(|message| std::future::ready(message.is_ok()))
                    .filter_map(|message| std::future::ready(message.ok()));
                let outbound = futures::stream::once(async { first }).chain(rest);
                let request = Request::from_parts(metadata, Default::default(), outbound);
                let response = forward!(peer, RoutingClient, agent_session, request)?;
                Ok(Response::new(Box::pin(response.into_inner())))
            }
        }
    }

    async fn get_queue_stats(
        &self,
        request: Request<GetQueueStatsRequest>,
    ) -> Result<Response<GetQueueStatsResponse>, Status> {
        let span = info_span!("get_queue_stats", tenant = %request.get_ref().tenant_id);
        match self.place_request(&request, &request.get_ref().tenant_id)? {
            At::Here(local) => {
                // A contact whose end was acknowledged before the call is not counted.
                local.followed_up(&request).instrument(span.clone()).await?;
                let _entered = span.enter();
                Ok(Response::new(local.stats(request.into_inner())?))
            }
            At::There(peer) => forward!(peer, RoutingClient, get_queue_stats, request),
        }
    }

    type WatchQueuesStream = Watched<GetQueueStatsResponse>;

    async fn watch_queues(
        &self,
        request: Request<GetQueueStatsRequest>,
    ) -> Result<Response<Watched<GetQueueStatsResponse>>, Status> {
        match self.place_request(&request, &request.get_ref().tenant_id)? {
            At::Here(local) => {
                let request = request.into_inner();
                let span = info_span!("watch_queues", tenant = %request.tenant_id);
                local.watch(span, move |local| local.stats(request.clone()))
            }
            At::There(peer) => {
                let response = forward!(peer, RoutingClient, watch_queues, request)?;
                Ok(Response::new(Box::pin(response.into_inner())))
            }
        }
    }

    async fn list_agents(
        &self,
        request: Request<ListAgentsRequest>,
    ) -> Result<Response<ListAgentsResponse>, Status> {
        let span = info_span!("list_agents", tenant = %request.get_ref().tenant_id);
        match self.place_request(&request, &request.get_ref().tenant_id)? {
            At::Here(local) => {
                // As GetQueueStats: a contact that ended before the call is not held.
                local.followed_up(&request).instrument(span.clone()).await?;
                let _entered = span.enter();
                Ok(Response::new(local.agents(request.into_inner())?))
            }
            At::There(peer) => forward!(peer, RoutingClient, list_agents, request),
        }
    }

    type WatchAgentsStream = Watched<ListAgentsResponse>;

    async fn watch_agents(
        &self,
        request: Request<ListAgentsRequest>,
    ) -> Result<Response<Watched<ListAgentsResponse>>, Status> {
        match self.place_request(&request, &request.get_ref().tenant_id)? {
            At::Here(local) => {
                let request = request.into_inner();
                let span = info_span!("watch_agents", tenant = %request.tenant_id);
                local.watch(span, move |local| local.agents(request.clone()))
            }
            At::There(peer) => {
                let response = forward!(peer, RoutingClient, watch_agents, request)?;
                Ok(Response::new(Box::pin(response.into_inner())))
            }
        }
    }

    async fn set_agent_presence(
        &self,
        request: Request<SetAgentPresenceRequest>,
    ) -> Result<Response<SetAgentPresenceResponse>, Status> {
        let span = info_span!("set_agent_presence", tenant = %request.get_ref().tenant_id);
        match self.place_request(&request, &request.get_ref().tenant_id)? {
            At::Here(local) => {
                let response = local
                    .set_agent_presence(request.into_inner())
                    .instrument(span)
                    .await?;
                Ok(Response::new(response))
            }
            At::There(peer) => forward!(peer, RoutingClient, set_agent_presence, request),
        }
    }

    async fn withdraw_contact(
        &self,
        request: Request<WithdrawContactRequest>,
    ) -> Result<Response<WithdrawContactResponse>, Status> {
        let span = info_span!("withdraw_contact", tenant = %request.get_ref().tenant_id);
        match self.place_request(&request, &request.get_ref().tenant_id)? {
            At::Here(local) => {
                let response = local
                    .withdraw(request.into_inner())
                    .instrument(span)
                    .await?;
                Ok(Response::new(response))
            }
            At::There(peer) => forward!(peer, RoutingClient, withdraw_contact, request),
        }
    }

    async fn set_routing_config(
        &self,
        request: Request<SetRoutingConfigRequest>,
    ) -> Result<Response<SetRoutingConfigResponse>, Status> {
        let span = info_span!("set_routing_config", tenant = %request.get_ref().tenant_id);
        match self.place_request(&request, &request.get_ref().tenant_id)? {
            At::Here(local) => {
                let response = local
                    .set_config(request.into_inner())
                    .instrument(span)
                    .await?;
                Ok(Response::new(response))
            }
            At::There(peer) => forward!(peer, RoutingClient, set_routing_config, request),
        }
    }
}
