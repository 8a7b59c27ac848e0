//! `rezef.v1.Journeys`: a customer's journey read or watched live, the answer a channel gets
//! when a contact arrives (`ResumeConversation`), one conversation watched live, and
//! continuation tokens.

use std::pin::Pin;

use futures::Stream;
use rezef_events::fold::TRANSCRIPT_LEN;
use rezef_events::partition::Partitioner;
use rezef_events::resume::{Caller, resume};
use rezef_events::{
    Channel, ConversationId, CustomerId, CustomerRef, Journey, TenantId, Timestamp,
    is_continuation_token,
};
use rezef_proto::v1::{
    self, ConversationUpdate, GetJourneyRequest, GetJourneyResponse, IssueContinuationTokenRequest,
    IssueContinuationTokenResponse, JourneyUpdate, ResumeConversationRequest,
    ResumeConversationResponse, WatchConversationRequest, WatchJourneyRequest,
    journeys_client::JourneysClient, journeys_server::Journeys,
};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use tracing::{Instrument, Span, debug, info_span};

use crate::backbone::Backbone;
use crate::cluster::{FORWARDED_HEADER, Place, Topology, forward, forward_stream};
use crate::convert::{Check, View, conversation_to_proto, journey_to_proto, resume_to_proto};
use crate::reveal::Revealed;
use crate::shutdown;
use crate::token_tries::{Trier, caller_of};
use crate::{Error, Result};

mod as_of;
mod tokens;

/// The service: places each call on the node serving its customer's partition.
#[derive(Debug, Clone)]
pub struct JourneysService {
    topology: Topology,
}

impl JourneysService {
    pub fn new(topology: Topology) -> Self {
        Self { topology }
    }
}

/// The calls answered here, on one partition's backbone.
#[derive(Debug, Clone)]
struct Local {
    backbone: Backbone,
    partitioner: Partitioner,
}

impl Local {
    async fn get(&self, request: Request<GetJourneyRequest>) -> Result<GetJourneyResponse> {
        let wait = self.backbone.max_wait(&request);
        let request = request.into_inner();
        let mut check = self.backbone.check();
        let tenant = check.tenant("tenant_id", request.tenant_id);
        let customer = check.required_customer("customer", request.customer);
        let asked = as_of::check(&mut check, request.as_of);
        let (tenant, customer) = check.finish(|| Some((tenant?, customer?)))?;
        if let Some(offset) = request.min_offset {
            self.backbone.wait_projected(offset, wait).await?;
        }
        let (journey, projected_offset) = match asked {
            Some(asked) => {
                let point = self.backbone.point(asked, wait).await?;
                let journey = self.backbone.journey_at(&tenant, &customer, point).await?;
                (
                    journey.ok_or_else(|| not_known_then(&customer, &tenant, point))?,
                    point.offset,
                )
            }
            None => {
                // Read the position first: the journey then reflects at least every record
                // below it.
                let projected_offset = self.backbone.projection.position();
                (self.backbone.journey(&tenant, &customer)?, projected_offset)
            }
        };
        Ok(GetJourneyResponse {
            journey: Some(journey_to_proto(&journey, &View::masked())),
            projected_offset,
        })
    }

    async fn resume(
        &self,
        request: Request<ResumeConversationRequest>,
    ) -> Result<ResumeConversationResponse> {
        let wait = self.backbone.max_wait(&request);
        let reveal = (self.backbone).may_reveal(&request, request.get_ref().reveal_sensitive)?;
        let caller = caller_of(&request);
        let request = request.into_inner();
        let mut check = self.backbone.check();
        let tenant = check.tenant("tenant_id", request.tenant_id);
        let customer = check.required_customer("customer", request.customer);
        let channel = check.required::<Channel>("channel", request.channel);
        let token = Some(request.continuation_token).filter(|t| !t.is_empty());
        if token.as_deref().is_some_and(|t| !is_continuation_token(t)) {
            check.fail(
                "continuation_token",
                "must be 4 to 64 ASCII letters, digits or '-'",
            );
        }
        if token.is_some() && request.as_of.is_some() {
            check.fail(
                "continuation_token",
                "cannot be used with as_of: a token is used once, now",
            );
        }
        let asked = as_of::check(&mut check, request.as_of);
        if request
            .transcript_limit
            .is_some_and(|limit| limit as usize > TRANSCRIPT_LEN)
        {
            check.fail(
                "transcript_limit",
                format!("must be at most {TRANSCRIPT_LEN}"),
            );
        }
        let (tenant, customer, channel) = check.finish(|| Some((tenant?, customer?, channel?)))?;
        if let Some(offset) = request.min_offset {
            self.backbone.wait_projected(offset, wait).await?;
        }
        let point = match asked {
            Some(asked) => Some(self.backbone.point(asked, wait).await?),
            None => None,
        };
        let projected_offset =
            point.map_or_else(|| self.backbone.projection.position(), |p| p.offset);
        // A valid token names its customer even when the channel shows an identity nobody
        // owns.
        let now = point.map_or_else(Timestamp::now, |p| p.time);
        let holder = match &token {
            Some(token) => {
                let trier = Trier::new(&caller, &tenant, &customer);
                (self.backbone).tried_token(&trier, &tenant, token, Some(channel), now)?
            }
            None => None,
        };
        let by_token = match holder {
            Some(customer) => self.backbone.journey_of(&tenant, &customer)?,
            None => None,
        };
        let found = match (by_token, point) {
            (Some(journey), _) => Some(journey),
            (None, Some(point)) => self.backbone.journey_at(&tenant, &customer, point).await?,
            (None, None) => self.backbone.find_journey(&tenant, &customer)?,
        };
        let Some(journey) = found else {
            return Ok(ResumeConversationResponse {
                known: false,
                projected_offset,
                ..Default::default()
            });
        };
        if let Some(revealer) = &reveal {
            let revealed = Revealed {
                tenant: &tenant,
                customer: Some(&journey.customer_id),
                method: "/rezef.v1.Journeys/ResumeConversation",
                offsets: None,
            };
            self.backbone.record_reveal(revealer, revealed).await?;
        }
        let policy = self.backbone.policy(&tenant);
        let caller = Caller::Shown(&customer);
        let answer = resume(&journey, caller, channel, now, policy, token.as_deref());
        let view = View {
            reveal: reveal.is_some(),
            transcript: request
                .transcript_limit
                .map_or(policy.transcript_excerpt, |limit| limit as usize)
                .min(TRANSCRIPT_LEN),
            now,
        };
        Ok(resume_to_proto(&journey, &answer, &view, projected_offset))
    }
}

pub(crate) type WatchStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// Streams `render(journey, position)` for the journey holding `customer` now (unless it
/// has not changed since `from_offset`) and after every change, following merges, until
/// the client hangs up or the server shuts down. `Ok(None)` from `render` sends nothing; an
/// error ends the stream with its status.
pub(crate) fn watch<T: Send + 'static>(
    backbone: Backbone,
    tenant: TenantId,
    customer: CustomerId,
    from_offset: Option<u64>,
    span: Span,
    render: impl Fn(&Journey, u64) -> Result<Option<T>> + Send + 'static,
) -> WatchStream<T> {
    // Subscribe before reading, so no change falls between the read and the feed.
    let mut changes = backbone.projection.subscribe();
    let (sender, receiver) = mpsc::channel(16);
    tokio::spawn(
        async move {
            let mut root = customer.clone();
            let mut first = true;
            loop {
                let position = backbone.projection.position();
                let update = match backbone.journey_of(&tenant, &customer) {
                    Ok(Some(journey)) => {
                        root = journey.customer_id.clone();
                        // A commit may land between the two reads: the journey then already
                        // holds records past `position`, and steps commit whole, so it holds
                        // every record of its own below its last one.
                        let position =
                            position.max(journey.last_event_offset.map_or(0, |last| last + 1));
                        let unchanged = first
                            && from_offset.is_some_and(|from| {
                                journey.last_event_offset.is_none_or(|last| last < from)
                            });
                        match unchanged {
                            true => None,
                            false => render(&journey, position).transpose(),
                        }
                    }
                    Ok(None) => Some(Err(Error::NotFound(format!(
                        "customer {customer} is no longer known in tenant {tenant}"
                    )))),
                    Err(error) => Some(Err(error)),
                };
                first = false;
                if let Some(update) = update {
                    let failed = update.is_err();
                    if sender.send(update.map_err(Status::from)).await.is_err() || failed {
                        break;
                    }
                }
                // Wait for a change of this journey (or of the customer, merged or not).
                loop {
                    let changed = tokio::select! {
                        change = changes.recv() => change,
                        () = sender.closed() => return,
                        () = backbone.closed() => return shutdown::end(&sender).await,
                    };
                    match changed {
                        Ok(change)
                            if change.tenant == tenant
                                && (change.customer == root || change.customer == customer) =>
                        {
                            break;
                        }
                        Ok(_) => {}
                        // We fell behind the feed: the current state says everything.
                        Err(broadcast::error::RecvError::Lagged(_)) => break,
                        Err(broadcast::error::RecvError::Closed) => return,
                    }
                }
            }
            debug!("watch ended");
        }
        .instrument(span),
    );
    Box::pin(ReceiverStream::new(receiver))
}

impl Local {
    fn watch_journey(&self, request: WatchJourneyRequest) -> Result<WatchStream<JourneyUpdate>> {
        let (tenant, customer) =
            Backbone::parse_customer(self.backbone.check(), request.tenant_id, request.customer)?;
        let customer_id = self.backbone.journey(&tenant, &customer)?.customer_id;
        let span = info_span!("watch_journey", %tenant, customer = %customer_id);
        Ok(watch(
            self.backbone.clone(),
            tenant,
            customer_id,
            request.from_offset,
            span,
            |journey, projected_offset| {
                Ok(Some(JourneyUpdate {
                    journey: Some(journey_to_proto(journey, &View::masked())),
                    projected_offset,
                }))
            },
        ))
    }

    /// The conversation's customer, if this partition knows the conversation.
    fn conversation_owner(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
    ) -> Result<Option<CustomerId>> {
        Ok(self
            .backbone
            .store
            .conversation_owner(tenant, conversation)?)
    }

    fn watch_conversation(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        owner: CustomerId,
        from_offset: Option<u64>,
    ) -> WatchStream<ConversationUpdate> {
        let span = info_span!("watch_conversation", %tenant, %conversation);
        watch(
            self.backbone.clone(),
            tenant,
            owner,
            from_offset,
            span,
            move |journey, projected_offset| {
                let Some(found) = journey.conversation(&conversation) else {
                    return Ok(None);
                };
                Ok(Some(ConversationUpdate {
                    customer_id: journey.customer_id.to_string(),
                    conversation: Some(conversation_to_proto(found, &View::masked())),
                    projected_offset,
                }))
            },
        )
    }
}

impl JourneysService {
    fn local(&self, backbone: Backbone) -> Local {
        Local {
            backbone,
            partitioner: self.topology.partitioner(),
        }
    }

    /// Where a call about the customer a request names is answered.
    fn place<T>(
        &self,
        request: &Request<T>,
        tenant: &str,
        customer: Option<&v1::CustomerRef>,
    ) -> Result<Place> {
        place_customer(&self.topology, request, tenant, customer)
    }

    /// A conversation is found by asking every partition served here, then (unless this
    /// call was forwarded) every other node.
    async fn watch_conversation(
        &self,
        request: Request<WatchConversationRequest>,
    ) -> Result<WatchStream<ConversationUpdate>, Status> {
        let message = request.get_ref();
        let mut check = Check::default();
        let tenant = check.tenant("tenant_id", message.tenant_id.clone());
        let conversation = check.id(
            "conversation_id",
            message.conversation_id.clone(),
            true,
            ConversationId::new,
        );
        let (tenant, conversation) =
            (check.finish(|| Some((tenant?, conversation?)))).map_err(Error::from)?;
        for (_, backbone) in self.topology.local() {
            let local = self.local(backbone);
            if let Some(owner) = local.conversation_owner(&tenant, &conversation)? {
                let from = message.from_offset;
                return Ok(local.watch_conversation(tenant, conversation, owner, from));
            }
        }
        let not_found = || {
            Status::from(Error::NotFound(format!(
                "conversation {conversation} is not known in tenant {tenant}"
            )))
        };
        if request.metadata().contains_key(FORWARDED_HEADER) {
            return Err(not_found());
        }
        for peer in self.topology.peers() {
            let forwarded = Request::from_parts(
                request.metadata().clone(),
                tonic::Extensions::default(),
                request.get_ref().clone(),
            );
            match forward!(peer, JourneysClient, watch_conversation, forwarded) {
                Ok(response) => return Ok(Box::pin(response.into_inner())),
                Err(status) if status.code() == tonic::Code::NotFound => {}
                Err(status) => return Err(status),
            }
        }
        Err(not_found())
    }
}

/// Answers a call naming a customer like `answer!` (in `$span`), and when the journey turns
/// out to be kept on another partition ([`Error::Moved`]: the customer was merged into one
/// there, or the identity's owner lives there), asks that partition for the customer it
/// names.
macro_rules! answer_moved {
    ($service:expr, $span:expr, $place:expr, |$backbone:ident, $request:ident| $local:expr, $method:ident) => {{
        let place = $place;
        let resend = ($request.metadata().clone(), $request.get_ref().clone());
        let answered = async {
            match place {
                Place::Here($backbone) => match $local.await {
                    Err(Error::Moved {
                        customer,
                        partition,
                    }) => {
                        let (mut metadata, mut message) = resend;
                        message.customer = Some(customer_ref(&customer));
                        // A hop towards the journey, not a bounce: the next node reads by id.
                        metadata.remove(FORWARDED_HEADER);
                        let $request = Request::from_parts(metadata, Default::default(), message);
                        match $service.topology.place(partition, $request.metadata())? {
                            Place::Here($backbone) => Ok(Response::new($local.await?)),
                            Place::There(peer) => forward!(peer, JourneysClient, $method, $request),
                        }
                    }
                    answered => Ok(Response::new(answered?)),
                },
                Place::There(peer) => forward!(peer, JourneysClient, $method, $request),
            }
        };
        answered.instrument($span).await
    }};
}

/// Where a call about the customer a request names is answered (the node serving the
/// customer's partition).
pub(crate) fn place_customer<T>(
    topology: &Topology,
    request: &Request<T>,
    tenant: &str,
    customer: Option<&v1::CustomerRef>,
) -> Result<Place> {
    match Backbone::parse_customer(topology.check(), tenant.to_owned(), customer.cloned()) {
        Ok((tenant, customer)) => {
            let partition = topology.partitioner().reference(&tenant, &customer);
            topology.place(partition, request.metadata())
        }
        Err(invalid) => topology.place_invalid(request.metadata(), invalid),
    }
}

/// A reference to a customer by id.
fn customer_ref(customer: &CustomerId) -> v1::CustomerRef {
    v1::CustomerRef {
        r#ref: Some(v1::customer_ref::Ref::CustomerId(customer.to_string())),
    }
}

#[tonic::async_trait]
impl Journeys for JourneysService {
    async fn get_journey(
        &self,
        request: Request<GetJourneyRequest>,
    ) -> Result<Response<GetJourneyResponse>, Status> {
        let span = info_span!("get_journey", tenant = %request.get_ref().tenant_id);
        let message = request.get_ref();
        answer_moved!(
            self,
            span,
            self.place(&request, &message.tenant_id, message.customer.as_ref())?,
            |backbone, request| self.local(backbone).get(request),
            get_journey
        )
    }

    type WatchJourneyStream = WatchStream<JourneyUpdate>;

    async fn watch_journey(
        &self,
        request: Request<WatchJourneyRequest>,
    ) -> Result<Response<Self::WatchJourneyStream>, Status> {
        let message = request.get_ref();
        match self.place(&request, &message.tenant_id, message.customer.as_ref())? {
            Place::Here(backbone) => {
                let stream = self.local(backbone).watch_journey(request.into_inner())?;
                Ok(Response::new(stream))
            }
            Place::There(peer) => forward_stream!(peer, JourneysClient, watch_journey, request),
        }
    }

    async fn resume_conversation(
        &self,
        request: Request<ResumeConversationRequest>,
    ) -> Result<Response<ResumeConversationResponse>, Status> {
        let span = info_span!("resume_conversation", tenant = %request.get_ref().tenant_id);
        let message = request.get_ref();
        // A token is issued on its customer's partition: it leads there even from a new
        // identity.
        let token = Some(message.continuation_token.as_str())
            .filter(|t| is_continuation_token(t) && self.topology.is_partitioned());
        let place = match (token, TenantId::new(message.tenant_id.clone())) {
            (Some(token), Ok(tenant)) => {
                let partition = self.topology.partitioner().token(&tenant, token);
                self.topology.place(partition, request.metadata())?
            }
            _ => self.place(&request, &message.tenant_id, message.customer.as_ref())?,
        };
        answer_moved!(
            self,
            span,
            place,
            |backbone, request| self.local(backbone).resume(request),
            resume_conversation
        )
    }

    type WatchConversationStream = WatchStream<ConversationUpdate>;

    async fn watch_conversation(
        &self,
        request: Request<WatchConversationRequest>,
    ) -> Result<Response<Self::WatchConversationStream>, Status> {
        Ok(Response::new(
            JourneysService::watch_conversation(self, request).await?,
        ))
    }

    async fn issue_continuation_token(
        &self,
        request: Request<IssueContinuationTokenRequest>,
    ) -> Result<Response<IssueContinuationTokenResponse>, Status> {
        let span = info_span!("issue_continuation_token", tenant = %request.get_ref().tenant_id);
        let message = request.get_ref();
        answer_moved!(
            self,
            span,
            self.place(&request, &message.tenant_id, message.customer.as_ref())?,
            |backbone, request| self.local(backbone).issue_token(request),
            issue_continuation_token
        )
    }
}

/// `NOT_FOUND` for a customer the tenant did not know at `point`.
fn not_known_then(customer: &CustomerRef, tenant: &TenantId, point: as_of::Point) -> Error {
    let name = match customer {
        CustomerRef::Id(id) => format!("customer {id}"),
        CustomerRef::Identity(identity) => format!("identity {identity}"),
    };
    Error::NotFound(format!(
        "{name} was not known in tenant {tenant} as of offset {}",
        point.offset
    ))
}
