//! Events in and out: a published (or stored) `rezef.v1.Event` checked into a domain event,
//! and a domain event in its `rezef.v1` form.

use rezef_events::event::{Attachment, Channel, SCHEMA_VERSION, payload_names};
use std::sync::Arc;

use rezef_events::handover::Handover;
use rezef_events::policy::Policies;
use rezef_events::routed::RoutingInput;
use rezef_events::unidentified;
use rezef_events::{
    AgentId, ConversationId, CustomerId, CustomerRef, Event, EventId, InteractionId, Payload,
    Timestamp, Violation,
};
use rezef_proto::v1::{self, event::Payload as P};

use crate::check::{
    Check, ProtoEnum, enum_or_unspecified, id_string, identity_to_proto, timestamp,
};

/// The domain event of a published `rezef.v1.Event`, or every reason it is invalid (paths
/// relative to the event).
pub fn event_from_proto(event: v1::Event) -> Result<Event, Vec<Violation>> {
    checked(event, Check::default())
}

/// [`event_from_proto`] under the tenants' continuity rules: national phone numbers are read in
/// the region of the event's tenant and source, and identities that identify no one are set
/// aside (`rezef_events::unidentified`).
pub fn event_under(policies: Arc<Policies>, event: v1::Event) -> Result<Event, Vec<Violation>> {
    checked(event, Check::under(policies))
}

/// The domain event of a `rezef.v1.Event` read from a log record: its types and formats
/// checked like a published one's, identities taken as stored (see [`Check::stored`]), and
/// the rules beyond types (`Event::validate`) not applied again.
pub(crate) fn event_from_record(event: v1::Event) -> Result<Event, Vec<Violation>> {
    checked(event, Check::stored())
}

fn checked(event: v1::Event, mut check: Check) -> Result<Event, Vec<Violation>> {
    let stored = check.is_stored();
    let event_id = check.id("event_id", event.event_id, true, EventId::new);
    let tenant_id = check.tenant("tenant_id", event.tenant_id);
    check.source(&event.source);
    let occurred_at = check.time("occurred_at", event.occurred_at);
    if event.occurred_at.is_none() {
        check.fail("occurred_at", "is required");
    }
    let customer = event.customer.and_then(|c| check.customer("customer", c));
    let conversation_id = check.id(
        "conversation_id",
        event.conversation_id,
        false,
        ConversationId::new,
    );
    let interaction_id = check.id(
        "interaction_id",
        event.interaction_id,
        false,
        InteractionId::new,
    );
    let channel = check.optional::<Channel>("channel", event.channel);
    let payload = match event.payload {
        Some(payload) => payload_from_proto(&mut check, payload),
        None => {
            check.fail("payload", "is required: set one of the event payloads");
            None
        }
    };
    let (Some(event_id), Some(tenant_id), Some(occurred_at), Some(payload), true) =
        (event_id, tenant_id, occurred_at, payload, check.is_clean())
    else {
        return Err(check.into_violations());
    };
    let mut event = Event {
        event_id,
        tenant_id: tenant_id.clone(),
        occurred_at,
        source: event.source,
        schema_version: if event.schema_version == 0 {
            SCHEMA_VERSION
        } else {
            event.schema_version
        },
        customer,
        conversation_id,
        interaction_id,
        channel,
        forward: None,
        erased: false,
        payload,
    };
    if stored {
        // Valid when it was published; a rule added since must not make it unreadable.
        return Ok(event);
    }
    if let Some(policies) = check.policies() {
        let policy = policies.for_tenant(&tenant_id);
        unidentified::set_aside(&mut event, policy)?;
    }
    event.validate().map(|()| event)
}

fn agent(check: &mut Check, field: String, value: String, required: bool) -> Option<AgentId> {
    check.id(&field, value, required, AgentId::new)
}

fn routing_input(check: &mut Check, at: &str, p: v1::RoutingInput) -> Option<RoutingInput> {
    let at = |field: &str| format!("{at}.{field}");
    let text = |value: String| (!value.is_empty()).then_some(value);
    Some(RoutingInput {
        arrived_at: check.time(&at("arrived_at"), p.arrived_at),
        callback_at: check.time(&at("callback_at"), p.callback_at),
        intent: text(p.intent),
        language: check.language(&at("language"), p.language),
        tier: text(p.tier),
        customer_since: check.time(&at("customer_since"), p.customer_since),
        repeat: p.repeat,
        preferred_agent: agent(check, at("preferred_agent_id"), p.preferred_agent_id, false),
        context: p.context.into_iter().collect(),
        human_requested: p.human_requested,
        bot_failures: p.bot_failures,
    })
}

fn routing_input_to_proto(input: RoutingInput) -> v1::RoutingInput {
    let time = |t: &Option<Timestamp>| t.map(timestamp);
    v1::RoutingInput {
        arrived_at: time(&input.arrived_at),
        callback_at: time(&input.callback_at),
        intent: input.intent.unwrap_or_default(),
        language: input.language.unwrap_or_default(),
        tier: input.tier.unwrap_or_default(),
        customer_since: time(&input.customer_since),
        repeat: input.repeat,
        preferred_agent_id: id_string(&input.preferred_agent),
        context: input.context.into_iter().collect(),
        human_requested: input.human_requested,
        bot_failures: input.bot_failures,
    }
}

fn payload_from_proto(check: &mut Check, payload: P) -> Option<Payload> {
    let name = payload_name(&payload);
    let at = |field: &str| format!("{name}.{field}");
    let text = |value: String| (!value.is_empty()).then_some(value);
    Some(match payload {
        P::InteractionStarted(p) => Payload::InteractionStarted {
            direction: check.required(&at("direction"), p.direction)?,
            identity: match p.identity {
                Some(identity) => Some(check.identity(&at("identity"), identity)?),
                None => None,
            },
            entry_point: p.entry_point,
            language: check.language(&at("language"), p.language),
            continuation_token: text(p.continuation_token),
        },
        P::SelfServiceStepCompleted(p) => Payload::SelfServiceStepCompleted {
            step_id: p.step_id,
            prompt: p.prompt,
            customer_input: p.customer_input,
            outcome: check.optional(&at("outcome"), p.outcome),
        },
        P::IntentDetected(p) => Payload::IntentDetected {
            intent: p.intent,
            confidence: p.confidence,
            detected_by: p.detected_by,
        },
        P::CustomerIdentified(p) => {
            let method = check.required(&at("method"), p.method);
            let assurance = check.required(&at("assurance"), p.assurance);
            let identities: Vec<_> = p
                .identities
                .into_iter()
                .enumerate()
                .map(|(i, identity)| check.identity(&at(&format!("identities[{i}]")), identity))
                .collect();
            let expires_at = check.time(&at("expires_at"), p.expires_at);
            Payload::CustomerIdentified {
                method: method?,
                assurance: assurance?,
                identities: identities.into_iter().collect::<Option<_>>()?,
                expires_at,
            }
        }
        P::MessageSent(p) => Payload::MessageSent {
            from: check.required(&at("from"), p.from)?,
            sender_id: p.sender_id,
            text: p.text,
            attachments: p
                .attachments
                .into_iter()
                .map(|a| Attachment {
                    uri: a.uri,
                    content_type: a.content_type,
                    name: a.name,
                    size_bytes: a.size_bytes,
                })
                .collect(),
            sensitive: p.sensitive,
        },
        P::ContextSet(p) => Payload::ContextSet {
            key: p.key,
            value: p.value,
            sensitive: p.sensitive,
        },
        P::ContactQueued(p) => Payload::ContactQueued {
            queue_id: p.queue_id,
            priority: p.priority,
            required_skills: p.required_skills,
            language: check.language(&at("language"), p.language),
        },
        P::ContactOffered(p) => Payload::ContactOffered {
            agent_id: agent(check, at("agent_id"), p.agent_id, true)?,
            queue_id: p.queue_id,
        },
        P::ContactAssigned(p) => Payload::ContactAssigned {
            agent_id: agent(check, at("agent_id"), p.agent_id, true)?,
            queue_id: p.queue_id,
        },
        P::ContactTransferred(p) => Payload::ContactTransferred {
            from_agent_id: agent(check, at("from_agent_id"), p.from_agent_id, false),
            to_agent_id: agent(check, at("to_agent_id"), p.to_agent_id, false),
            to_queue_id: p.to_queue_id,
            reason: p.reason,
        },
        P::HandoffRequested(p) => Payload::HandoffRequested {
            bot_id: p.bot_id,
            reason: check.required(&at("reason"), p.reason)?,
            target_queue_id: p.target_queue_id,
            summary: p.summary,
        },
        P::CallbackRequested(p) => {
            let callback_to = match p.callback_to {
                Some(identity) => check.identity(&at("callback_to"), identity),
                None => {
                    check.fail(at("callback_to"), "is required");
                    None
                }
            };
            Payload::CallbackRequested {
                callback_to: callback_to?,
                preferred_at: check.time(&at("preferred_at"), p.preferred_at),
                queue_id: p.queue_id,
                original_arrival_at: check.time(&at("original_arrival_at"), p.original_arrival_at),
            }
        }
        P::CallbackCompleted(p) => Payload::CallbackCompleted {
            reached: p.reached,
            agent_id: agent(check, at("agent_id"), p.agent_id, false),
        },
        P::ContactAbandoned(p) => Payload::ContactAbandoned {
            point: check.required(&at("point"), p.point)?,
        },
        P::InteractionEnded(p) => Payload::InteractionEnded {
            reason: check.optional(&at("reason"), p.reason),
        },
        P::WrapUpRecorded(p) => Payload::WrapUpRecorded {
            agent_id: agent(check, at("agent_id"), p.agent_id, false),
            disposition: p.disposition,
            need_resolved: p.need_resolved,
            notes: p.notes,
        },
        P::SurveyAnswered(p) => Payload::SurveyAnswered {
            csat: p.csat,
            nps: p.nps,
            effort: p.effort,
            comment: p.comment,
        },
        P::CustomersMerged(p) => Payload::CustomersMerged {
            absorbed: check.id(
                &at("absorbed_customer_id"),
                p.absorbed_customer_id,
                true,
                CustomerId::new,
            )?,
            reason: p.reason,
            requested_by: p.requested_by,
        },
        P::Handover(_) => {
            check.fail(name, "is written by Rezef's projectors, never published");
            return None;
        }
        P::CustomersUnmerged(p) => Payload::CustomersUnmerged {
            absorbed: check.id(
                &at("absorbed_customer_id"),
                p.absorbed_customer_id,
                true,
                CustomerId::new,
            )?,
            reason: p.reason,
            requested_by: p.requested_by,
        },
        P::ContinuationTokenIssued(p) => {
            if p.expires_at.is_none() {
                check.fail(at("expires_at"), "is required");
            }
            let redeem_on = (p.redeem_on.iter().enumerate())
                .filter_map(|(i, channel)| {
                    check.required::<Channel>(&at(&format!("redeem_on[{i}]")), *channel)
                })
                .collect();
            Payload::ContinuationTokenIssued {
                token: p.token,
                expires_at: check.time(&at("expires_at"), p.expires_at)?,
                redeem_on,
            }
        }
        P::RoutingDecided(p) => {
            let target = check.required(&at("target"), p.target);
            let agent_id = agent(check, at("agent_id"), p.agent_id, false);
            let candidates: Vec<_> = p
                .candidates
                .into_iter()
                .enumerate()
                .map(|(i, c)| agent(check, at(&format!("candidates[{i}]")), c, true))
                .collect();
            let estimated_wait_ms = match p.estimated_wait.map(std::time::Duration::try_from) {
                None => None,
                Some(Ok(wait)) => Some(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX)),
                Some(Err(_)) => {
                    check.fail(at("estimated_wait"), "must not be negative");
                    None
                }
            };
            Payload::RoutingDecided {
                target: target?,
                bot_id: p.bot_id,
                queue_id: p.queue_id,
                agent_id,
                rule: p.rule,
                step: p.step,
                priority: p.priority,
                candidates: candidates.into_iter().collect::<Option<_>>()?,
                estimated_wait_ms,
                offer_callback: p.offer_callback,
                config_version: p.config_version,
                input: match p.input {
                    Some(input) => Some(Box::new(routing_input(check, &at("input"), input)?)),
                    None => None,
                },
                explanation: match p.explanation {
                    Some(explanation) => Some(Box::new(crate::explained::from_proto(
                        check,
                        &at("explanation"),
                        explanation,
                    )?)),
                    None => None,
                },
            }
        }
        P::ContactWithdrawn(p) => Payload::ContactWithdrawn {
            queue_id: p.queue_id,
        },
        P::SensitiveRevealed(_) if !check.is_stored() => {
            check.fail(
                name,
                "is written by Rezef when values are revealed, never published",
            );
            return None;
        }
        P::SensitiveRevealed(p) => Payload::SensitiveRevealed {
            key_id: p.key_id,
            method: p.method,
            from_offset: p.from_offset,
            to_offset: p.to_offset,
        },
        P::CustomerForgotten(_) if !check.is_stored() => {
            check.fail(
                name,
                "is written by Rezef when a customer is forgotten, never published",
            );
            return None;
        }
        P::CustomerForgotten(p) => Payload::CustomerForgotten {
            key_ids: p.key_ids,
            requested_by: p.requested_by,
            reason: p.reason,
        },
        P::RoutingConfigChanged(p) => Payload::RoutingConfigChanged {
            version: p.version,
            config: p.config,
        },
        P::CustomerAttributesSet(p) => Payload::CustomerAttributesSet {
            tier: p.tier,
            // Empty clears the language: only a tag is canonicalised.
            preferred_language: p.preferred_language.map(|tag| {
                check
                    .language(&at("preferred_language"), tag)
                    .unwrap_or_default()
            }),
        },
        P::ConsultStarted(p) => Payload::ConsultStarted {
            agent_id: agent(check, at("agent_id"), p.agent_id, true)?,
            consulted_agent_id: agent(check, at("consulted_agent_id"), p.consulted_agent_id, true)?,
        },
        P::ConsultEnded(p) => Payload::ConsultEnded {
            agent_id: agent(check, at("agent_id"), p.agent_id, true)?,
            consulted_agent_id: agent(check, at("consulted_agent_id"), p.consulted_agent_id, true)?,
        },
        P::AgentPresenceChanged(p) => {
            let agent_id = agent(check, at("agent_id"), p.agent_id, true);
            Payload::AgentPresenceChanged {
                presence: check.required(&at("presence"), p.presence)?,
                agent_id: agent_id?,
                custom_status: p.custom_status,
            }
        }
    })
}

fn payload_name(payload: &P) -> &'static str {
    match payload {
        P::InteractionStarted(_) => payload_names::INTERACTION_STARTED,
        P::SelfServiceStepCompleted(_) => payload_names::SELF_SERVICE_STEP_COMPLETED,
        P::IntentDetected(_) => payload_names::INTENT_DETECTED,
        P::CustomerIdentified(_) => payload_names::CUSTOMER_IDENTIFIED,
        P::MessageSent(_) => payload_names::MESSAGE_SENT,
        P::ContextSet(_) => payload_names::CONTEXT_SET,
        P::ContactQueued(_) => payload_names::CONTACT_QUEUED,
        P::ContactOffered(_) => payload_names::CONTACT_OFFERED,
        P::ContactAssigned(_) => payload_names::CONTACT_ASSIGNED,
        P::ContactTransferred(_) => payload_names::CONTACT_TRANSFERRED,
        P::HandoffRequested(_) => payload_names::HANDOFF_REQUESTED,
        P::CallbackRequested(_) => payload_names::CALLBACK_REQUESTED,
        P::CallbackCompleted(_) => payload_names::CALLBACK_COMPLETED,
        P::ContactAbandoned(_) => payload_names::CONTACT_ABANDONED,
        P::InteractionEnded(_) => payload_names::INTERACTION_ENDED,
        P::WrapUpRecorded(_) => payload_names::WRAP_UP_RECORDED,
        P::SurveyAnswered(_) => payload_names::SURVEY_ANSWERED,
        P::AgentPresenceChanged(_) => payload_names::AGENT_PRESENCE_CHANGED,
        P::CustomersMerged(_) => payload_names::CUSTOMERS_MERGED,
        P::CustomersUnmerged(_) => payload_names::CUSTOMERS_UNMERGED,
        P::ContinuationTokenIssued(_) => payload_names::CONTINUATION_TOKEN_ISSUED,
        P::RoutingDecided(_) => payload_names::ROUTING_DECIDED,
        P::ContactWithdrawn(_) => payload_names::CONTACT_WITHDRAWN,
        P::SensitiveRevealed(_) => payload_names::SENSITIVE_REVEALED,
        P::CustomerForgotten(_) => payload_names::CUSTOMER_FORGOTTEN,
        P::RoutingConfigChanged(_) => payload_names::ROUTING_CONFIG_CHANGED,
        P::Handover(_) => payload_names::HANDOVER,
        P::CustomerAttributesSet(_) => payload_names::CUSTOMER_ATTRIBUTES_SET,
        P::ConsultStarted(_) => payload_names::CONSULT_STARTED,
        P::ConsultEnded(_) => payload_names::CONSULT_ENDED,
    }
}

/// The `rezef.v1` form of an event: served with the time the log recorded it, stored without.
pub fn event_to_proto(event: &Event, recorded_at: Option<Timestamp>) -> v1::Event {
    v1::Event {
        event_id: event.event_id.to_string(),
        tenant_id: event.tenant_id.to_string(),
        occurred_at: Some(timestamp(event.occurred_at)),
        recorded_at: recorded_at.map(timestamp),
        source: event.source.clone(),
        schema_version: event.schema_version,
        customer: event.customer.as_ref().map(|customer| v1::CustomerRef {
            r#ref: Some(match customer {
                CustomerRef::Id(id) => v1::customer_ref::Ref::CustomerId(id.to_string()),
                CustomerRef::Identity(identity) => {
                    v1::customer_ref::Ref::Identity(identity_to_proto(identity))
                }
            }),
        }),
        conversation_id: id_string(&event.conversation_id),
        interaction_id: id_string(&event.interaction_id),
        channel: enum_or_unspecified(event.channel),
        forwarded_to_customer_id: event
            .forward
            .as_ref()
            .map(|f| f.journey.to_string())
            .unwrap_or_default(),
        erased: event.erased,
        payload: Some(payload_to_proto(&event.payload)),
    }
}

fn handover_to_proto(handover: &Handover) -> v1::Handover {
    let (customer, other, identity) = match handover {
        Handover::IdentityClaimed {
            identity,
            claimant,
            owner,
            ..
        } => (owner.as_ref(), Some(claimant), Some(identity)),
        Handover::ClaimRefused {
            identity,
            claimant,
            owner,
            ..
        } => (Some(claimant), Some(owner), Some(identity)),
        Handover::MergeRequested {
            absorbed, survivor, ..
        } => (Some(absorbed), Some(survivor), None),
        Handover::JourneyMoved { journey, into } => (
            Some(journey.customer_id()),
            into.as_ref().map(|(survivor, _)| survivor),
            None,
        ),
        Handover::ContactEnded { .. } => (None, None, None),
    };
    let id = |c: Option<&CustomerId>| c.map(ToString::to_string).unwrap_or_default();
    v1::Handover {
        kind: handover.kind().to_owned(),
        customer_id: id(customer),
        other_customer_id: id(other),
        identity: identity.map(identity_to_proto),
    }
}

fn payload_to_proto(payload: &Payload) -> P {
    let time = |t: &Option<Timestamp>| t.map(timestamp);
    match payload.clone() {
        Payload::InteractionStarted {
            direction,
            identity,
            entry_point,
            language,
            continuation_token,
        } => P::InteractionStarted(v1::InteractionStarted {
            direction: direction.to_proto(),
            identity: identity.as_ref().map(identity_to_proto),
            entry_point,
            language: language.unwrap_or_default(),
            continuation_token: continuation_token.unwrap_or_default(),
        }),
        Payload::SelfServiceStepCompleted {
            step_id,
            prompt,
            customer_input,
            outcome,
        } => P::SelfServiceStepCompleted(v1::SelfServiceStepCompleted {
            step_id,
            prompt,
            customer_input,
            outcome: enum_or_unspecified(outcome),
        }),
        Payload::IntentDetected {
            intent,
            confidence,
            detected_by,
        } => P::IntentDetected(v1::IntentDetected {
            intent,
            confidence,
            detected_by,
        }),
        Payload::CustomerIdentified {
            method,
            assurance,
            identities,
            expires_at,
        } => P::CustomerIdentified(v1::CustomerIdentified {
            method: method.to_proto(),
            assurance: assurance.to_proto(),
            identities: identities.iter().map(identity_to_proto).collect(),
            expires_at: time(&expires_at),
        }),
        Payload::MessageSent {
            from,
            sender_id,
            text,
            attachments,
            sensitive,
        } => P::MessageSent(v1::MessageSent {
            from: from.to_proto(),
            sender_id,
            text,
            attachments: attachments
                .into_iter()
                .map(|a| v1::Attachment {
                    uri: a.uri,
                    content_type: a.content_type,
                    name: a.name,
                    size_bytes: a.size_bytes,
                })
                .collect(),
            sensitive,
        }),
        Payload::ContextSet {
            key,
            value,
            sensitive,
        } => P::ContextSet(v1::ContextSet {
            key,
            value,
            sensitive,
        }),
        Payload::ContactQueued {
            queue_id,
            priority,
            required_skills,
            language,
        } => P::ContactQueued(v1::ContactQueued {
            queue_id,
            priority,
            required_skills,
            language: language.unwrap_or_default(),
        }),
        Payload::ContactOffered { agent_id, queue_id } => P::ContactOffered(v1::ContactOffered {
            agent_id: agent_id.to_string(),
            queue_id,
        }),
        Payload::ContactAssigned { agent_id, queue_id } => {
            P::ContactAssigned(v1::ContactAssigned {
                agent_id: agent_id.to_string(),
                queue_id,
            })
        }
        Payload::ContactTransferred {
            from_agent_id,
            to_agent_id,
            to_queue_id,
            reason,
        } => P::ContactTransferred(v1::ContactTransferred {
            from_agent_id: id_string(&from_agent_id),
            to_agent_id: id_string(&to_agent_id),
            to_queue_id,
            reason,
        }),
        Payload::HandoffRequested {
            bot_id,
            reason,
            target_queue_id,
            summary,
        } => P::HandoffRequested(v1::HandoffRequested {
            bot_id,
            reason: reason.to_proto(),
            target_queue_id,
            summary,
        }),
        Payload::CallbackRequested {
            callback_to,
            preferred_at,
            queue_id,
            original_arrival_at,
        } => P::CallbackRequested(v1::CallbackRequested {
            callback_to: Some(identity_to_proto(&callback_to)),
            preferred_at: time(&preferred_at),
            queue_id,
            original_arrival_at: time(&original_arrival_at),
        }),
        Payload::CallbackCompleted { reached, agent_id } => {
            P::CallbackCompleted(v1::CallbackCompleted {
                reached,
                agent_id: id_string(&agent_id),
            })
        }
        Payload::ContactAbandoned { point } => P::ContactAbandoned(v1::ContactAbandoned {
            point: point.to_proto(),
        }),
        Payload::InteractionEnded { reason } => P::InteractionEnded(v1::InteractionEnded {
            reason: enum_or_unspecified(reason),
        }),
        Payload::WrapUpRecorded {
            agent_id,
            disposition,
            need_resolved,
            notes,
        } => P::WrapUpRecorded(v1::WrapUpRecorded {
            agent_id: id_string(&agent_id),
            disposition,
            need_resolved,
            notes,
        }),
        Payload::SurveyAnswered {
            csat,
            nps,
            effort,
            comment,
        } => P::SurveyAnswered(v1::SurveyAnswered {
            csat,
            nps,
            effort,
            comment,
        }),
        Payload::AgentPresenceChanged {
            agent_id,
            presence,
            custom_status,
        } => P::AgentPresenceChanged(v1::AgentPresenceChanged {
            agent_id: agent_id.to_string(),
            presence: presence.to_proto(),
            custom_status,
        }),
        Payload::CustomersMerged {
            absorbed,
            reason,
            requested_by,
        } => P::CustomersMerged(v1::CustomersMerged {
            absorbed_customer_id: absorbed.to_string(),
            reason,
            requested_by,
        }),
        Payload::CustomersUnmerged {
            absorbed,
            reason,
            requested_by,
        } => P::CustomersUnmerged(v1::CustomersUnmerged {
            absorbed_customer_id: absorbed.to_string(),
            reason,
            requested_by,
        }),
        Payload::Handover(handover) => P::Handover(handover_to_proto(&handover)),
        Payload::CustomerAttributesSet {
            tier,
            preferred_language,
        } => P::CustomerAttributesSet(v1::CustomerAttributesSet {
            tier,
            preferred_language,
        }),
        Payload::ConsultStarted {
            agent_id,
            consulted_agent_id,
        } => P::ConsultStarted(v1::ConsultStarted {
            agent_id: agent_id.to_string(),
            consulted_agent_id: consulted_agent_id.to_string(),
        }),
        Payload::ConsultEnded {
            agent_id,
            consulted_agent_id,
        } => P::ConsultEnded(v1::ConsultEnded {
            agent_id: agent_id.to_string(),
            consulted_agent_id: consulted_agent_id.to_string(),
        }),
        Payload::RoutingDecided {
            target,
            bot_id,
            queue_id,
            agent_id,
            rule,
            step,
            priority,
            candidates,
            estimated_wait_ms,
            offer_callback,
            config_version,
            input,
            explanation,
        } => P::RoutingDecided(v1::RoutingDecided {
            target: target.to_proto(),
            bot_id,
            queue_id,
            agent_id: id_string(&agent_id),
            rule,
            step,
            priority,
            candidates: candidates.iter().map(ToString::to_string).collect(),
            estimated_wait: estimated_wait_ms
                .map(|ms| crate::check::duration(std::time::Duration::from_millis(ms))),
            offer_callback,
            config_version,
            input: input.map(|input| routing_input_to_proto(*input)),
            explanation: explanation.map(|e| crate::explained::to_proto(*e)),
        }),
        Payload::ContactWithdrawn { queue_id } => {
            P::ContactWithdrawn(v1::ContactWithdrawn { queue_id })
        }
        Payload::SensitiveRevealed {
            key_id,
            method,
            from_offset,
            to_offset,
        } => P::SensitiveRevealed(v1::SensitiveRevealed {
            key_id,
            method,
            from_offset,
            to_offset,
        }),
        Payload::CustomerForgotten {
            key_ids,
            requested_by,
            reason,
        } => P::CustomerForgotten(v1::CustomerForgotten {
            key_ids,
            requested_by,
            reason,
        }),
        Payload::RoutingConfigChanged { version, config } => {
            P::RoutingConfigChanged(v1::RoutingConfigChanged { version, config })
        }
        Payload::ContinuationTokenIssued {
            token,
            expires_at,
            redeem_on,
        } => P::ContinuationTokenIssued(v1::ContinuationTokenIssued {
            token,
            expires_at: Some(timestamp(expires_at)),
            redeem_on: redeem_on.into_iter().map(ProtoEnum::to_proto).collect(),
        }),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rezef_events::ChannelIdentity;
    use rezef_events::event::{
        AbandonPoint, AssuranceLevel, Direction, EndReason, HandoffReason, Participant,
        StepOutcome, VerificationMethod,
    };
    use rezef_events::testing::EventBuilder;

    fn round_trip(event: &Event) -> Event {
        let recorded = Timestamp::from_unix_millis(1_800_000_000_000);
        let proto = event_to_proto(event, Some(recorded));
        assert_eq!(proto.recorded_at, Some(timestamp(recorded)));
        event_from_proto(proto).expect("a served event is valid input")
    }

    #[test]
    fn every_payload_round_trips() {
        for event in every_payload() {
            assert_eq!(round_trip(&event), event);
        }
    }

    /// An event of every payload a client or the server publishes, with most fields set.
    pub(crate) fn every_payload() -> Vec<Event> {
        let mut events = Vec::new();
        let mut b = EventBuilder::visitor("acme", "v-1");
        let phone = ChannelIdentity::phone("+972501234567").expect("valid");
        let agent = AgentId::new("agent-1").expect("valid");
        let payloads = vec![
            Payload::InteractionStarted {
                direction: Direction::Inbound,
                identity: Some(phone.clone()),
                entry_point: "+97231234567".into(),
                language: Some("he".into()),
                continuation_token: Some("482913".into()),
            },
            Payload::SelfServiceStepCompleted {
                step_id: "main-menu".into(),
                prompt: "press 1".into(),
                customer_input: "1".into(),
                outcome: Some(StepOutcome::Continued),
            },
            Payload::IntentDetected {
                intent: "billing".into(),
                confidence: 0.25,
                detected_by: "nlu".into(),
            },
            Payload::CustomerIdentified {
                method: VerificationMethod::Pin,
                assurance: AssuranceLevel::High,
                identities: vec![phone.clone()],
                expires_at: Some(Timestamp::from_unix_millis(1_900_000_000_123)),
            },
            Payload::MessageSent {
                from: Participant::Agent,
                sender_id: "agent-1".into(),
                text: "שלום".into(),
                attachments: vec![Attachment {
                    uri: "s3://bucket/a.pdf".into(),
                    content_type: "application/pdf".into(),
                    name: "a.pdf".into(),
                    size_bytes: 12,
                }],
                sensitive: true,
            },
            Payload::ContextSet {
                key: "card".into(),
                value: "4111".into(),
                sensitive: true,
            },
            Payload::ContactQueued {
                queue_id: "billing".into(),
                priority: 3,
                required_skills: vec!["billing".into()],
                language: Some("ar".into()),
            },
            Payload::ContactOffered {
                agent_id: agent.clone(),
                queue_id: "billing".into(),
            },
            Payload::ContactAssigned {
                agent_id: agent.clone(),
                queue_id: String::new(),
            },
            Payload::ContactTransferred {
                from_agent_id: Some(agent.clone()),
                to_agent_id: None,
                to_queue_id: "retention".into(),
                reason: "wants to cancel".into(),
            },
            Payload::HandoffRequested {
                bot_id: "bot-1".into(),
                reason: HandoffReason::CustomerAsked,
                target_queue_id: "billing".into(),
                summary: "disputes invoice".into(),
            },
            Payload::CallbackRequested {
                callback_to: phone.clone(),
                preferred_at: None,
                queue_id: "billing".into(),
                original_arrival_at: Some(Timestamp::from_unix_millis(1_700_000_000_000)),
            },
            Payload::CallbackCompleted {
                reached: true,
                agent_id: Some(agent.clone()),
            },
            Payload::CustomerAttributesSet {
                tier: Some("vip".into()),
                preferred_language: Some(String::new()),
            },
            Payload::ConsultStarted {
                agent_id: agent.clone(),
                consulted_agent_id: AgentId::new("agent-2").expect("valid"),
            },
            Payload::ConsultEnded {
                agent_id: agent.clone(),
                consulted_agent_id: AgentId::new("agent-2").expect("valid"),
            },
            Payload::ContactAbandoned {
                point: AbandonPoint::Ivr,
            },
            Payload::InteractionEnded {
                reason: Some(EndReason::Completed),
            },
            Payload::WrapUpRecorded {
                agent_id: Some(agent.clone()),
                disposition: "refund".into(),
                need_resolved: true,
                notes: String::new(),
            },
            Payload::SurveyAnswered {
                csat: Some(5),
                nps: Some(0),
                effort: None,
                comment: "fast".into(),
            },
        ];
        events.extend(payloads.into_iter().map(|payload| b.event(payload)));
        let mut by_id = EventBuilder::customer("acme", "c-1").in_conversation("cnv-1");
        let absorbed = CustomerId::new("c-2").expect("valid");
        for payload in [
            Payload::CustomersMerged {
                absorbed: absorbed.clone(),
                reason: "same person".into(),
                requested_by: "agent-1".into(),
            },
            Payload::CustomersUnmerged {
                absorbed,
                reason: "wrong merge".into(),
                requested_by: "agent-1".into(),
            },
            Payload::ContinuationTokenIssued {
                token: "482913".into(),
                expires_at: Timestamp::from_unix_millis(1_900_000_000_000),
                redeem_on: vec![Channel::Voice, Channel::Ivr],
            },
            Payload::RoutingDecided {
                target: rezef_events::event::RoutingTarget::Queue,
                bot_id: String::new(),
                queue_id: "billing".into(),
                agent_id: None,
                rule: "billing".into(),
                step: 1,
                priority: 12.5,
                candidates: vec![AgentId::new("agent-1").expect("valid")],
                estimated_wait_ms: Some(90_000),
                offer_callback: true,
                config_version: 7,
                input: Some(Box::new(rezef_events::routed::RoutingInput {
                    arrived_at: Some(Timestamp::from_unix_millis(1_700_000_000_000)),
                    callback_at: Some(Timestamp::from_unix_millis(1_700_000_900_000)),
                    intent: Some("billing.dispute".into()),
                    language: Some("he".into()),
                    tier: Some("gold".into()),
                    customer_since: Some(Timestamp::from_unix_millis(1_600_000_000_000)),
                    repeat: true,
                    preferred_agent: Some(AgentId::new("agent-1").expect("valid")),
                    context: [("account".to_owned(), "business".to_owned())].into(),
                    human_requested: true,
                    bot_failures: 2,
                })),
                explanation: Some(Box::new(explanation())),
            },
            Payload::ContactWithdrawn {
                queue_id: "billing".into(),
            },
        ] {
            events.push(by_id.event(payload));
        }
        events.push(b.presence("agent-1"));
        let mut changed = b.presence("agent-1");
        changed.payload = Payload::RoutingConfigChanged {
            version: 3,
            config: "version = 3".into(),
        };
        events.push(changed);
        events
    }

    #[test]
    fn a_reveal_is_read_back_from_the_log_but_never_published() {
        let mut reveal = EventBuilder::customer("acme", "c-1").event(Payload::SensitiveRevealed {
            key_id: "0a1b2c3d4e5f".into(),
            method: "/rezef.v1.Audit/ReplayHistory".into(),
            from_offset: Some(3),
            to_offset: Some(90),
        });
        reveal.channel = None;
        reveal.conversation_id = None;
        assert_eq!(reveal.validate(), Ok(()));
        let decoded = crate::decode(&crate::encode(&reveal)).expect("a stored reveal reads back");
        assert_eq!(decoded, reveal);
        let published = event_to_proto(&reveal, None);
        assert_eq!(violations(published), ["sensitive_revealed"]);
    }

    #[test]
    fn a_forgetting_is_read_back_from_the_log_but_never_published() {
        let mut forgotten =
            EventBuilder::customer("acme", "c-1").event(Payload::CustomerForgotten {
                key_ids: vec!["00112233445566778899aabbccddeeff".into()],
                requested_by: "key-1".into(),
                reason: "DSR-17".into(),
            });
        forgotten.channel = None;
        forgotten.conversation_id = None;
        assert_eq!(forgotten.validate(), Ok(()));
        let decoded = crate::decode(&crate::encode(&forgotten)).expect("reads back");
        assert_eq!(decoded, forgotten);
        let published = event_to_proto(&forgotten, None);
        assert_eq!(violations(published), ["customer_forgotten"]);
    }

    fn violations(event: v1::Event) -> Vec<String> {
        event_from_proto(event)
            .expect_err("invalid")
            .into_iter()
            .map(|v| v.field)
            .collect()
    }

    #[test]
    fn an_empty_event_names_every_missing_field() {
        assert_eq!(
            violations(v1::Event::default()),
            ["event_id", "tenant_id", "occurred_at", "payload"]
        );
    }

    #[test]
    fn malformed_identities_and_enums_are_named_by_path() {
        let mut b = EventBuilder::visitor("acme", "v-1");
        let mut event = event_to_proto(&b.started(), None);
        event.customer = Some(v1::CustomerRef {
            r#ref: Some(v1::customer_ref::Ref::Identity(v1::ChannelIdentity {
                kind: v1::IdentityKind::Phone as i32,
                value: "050-123".into(),
                network: String::new(),
            })),
        });
        event.channel = 99;
        assert_eq!(violations(event), ["customer.identity.value", "channel"]);
    }

    /// An explanation with an agent of each kind of verdict that carries data.
    fn explanation() -> rezef_events::explained::Explanation {
        use rezef_events::explained::{AgentSeen, Explanation, Verdict};
        let seen = |name: &str, verdict| AgentSeen {
            agent_id: AgentId::new(name).expect("valid"),
            skills: [("billing".to_owned(), 4)].into(),
            languages: vec!["he".into()],
            team: "core".into(),
            site: "north".into(),
            presence: rezef_events::event::Presence::Available,
            capacity: 2,
            max_load: 3,
            on_channel: 1,
            load: 1,
            idle_since: Timestamp::from_unix_millis(1_700_000_000_000),
            declined: false,
            missed: true,
            verdict,
        };
        Explanation {
            strategy: "highest_proficiency".into(),
            skill: Some("billing".into()),
            requirements: vec!["skills HAS contact.intent".into()],
            language: Some("he".into()),
            preferred_agent: Some(AgentId::new("agent-2").expect("valid")),
            last_served: None,
            held_until: Some(Timestamp::from_unix_millis(1_700_000_900_000)),
            agents: vec![
                seen("agent-1", Verdict::Ranked(3)),
                seen("agent-2", Verdict::Unqualified("team == 'x'".into())),
                seen("agent-3", Verdict::WaitsForPreferred),
            ],
            unlisted_qualified: 4,
            unlisted_unqualified: 5,
            offline: 6,
            taken_ahead: vec![AgentId::new("agent-4").expect("valid")],
            contacts_ahead: Some(2),
            base_priority: 10.0,
            ageing_per_minute: 0.5,
        }
    }
}
