//! `RouteInteraction`: a contact arrives and routing decides a bot, an agent free now or a
//! queue, from the request and what the backbone knows of the customer (read as of every
//! event logged before the request), logs the decision and answers.

use rezef_events::event::RoutingTarget;
use rezef_events::fold::customer_id_for;
use rezef_events::{Channel, CustomerRef, InteractionId, Payload};
use rezef_proto::v1::{RouteInteractionRequest, RouteInteractionResponse};
use rezef_routing::{ContactRequest, RoutingError, Target};
use tonic::Request;

use super::desk::Effects;
use super::known::{self, Known};
use super::{Local, recover, withdraw};
use crate::Result;
use crate::convert::routing as convert;
use crate::reader::Fresh;

/// How far ahead a callback may be scheduled (`RouteInteractionRequest.callback_at`).
const MAX_CALLBACK_AHEAD: std::time::Duration = std::time::Duration::from_secs(30 * 86_400);

impl Local {
    pub(super) async fn route(
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
                explanation: decision.explanation.clone(),
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
        Ok(convert::route_response(decision, offset))
    }
}
