//! The fold: how one event changes a customer's journey. Pure and deterministic: the same
//! events in the same order give the same journey, and an event at or below the journey's
//! last applied offset changes nothing, so replaying the log is always safe.
//!
//! Placement rules, in order: an event names its conversation → that one (created if new);
//! its interaction is already known → that interaction's conversation; the customer has an
//! open conversation → that one; otherwise a new conversation opens (wrap-ups and surveys
//! attach to the latest conversation instead, even a resolved one).

use crate::event::{Channel, Event, Payload};
use crate::identity::ChannelIdentity;
use crate::ids::{ConversationId, CustomerId, InteractionId, TenantId, stable_hash};
use crate::journey::{
    ContextEntry, Conversation, ConversationStatus, DetectedIntent, Interaction, Journey,
    LinkedIdentity, Stage, StageVisit, SurveyScores, TranscriptEntry, Verification,
};
use crate::time::Timestamp;

/// How many messages a conversation's transcript keeps; older ones stay in the log.
pub const TRANSCRIPT_LEN: usize = 50;

/// What applying an event did beyond the journey itself.
#[derive(Debug, Default, PartialEq)]
pub struct Applied {
    /// Whether the journey changed (false for an already-applied offset).
    pub changed: bool,
    /// Identities newly linked to this customer; the caller indexes them.
    pub linked: Vec<ChannelIdentity>,
}

/// The customer id a never-seen identity starts with: derived from the identity, so a
/// rebuild of the projection gives the same id.
pub fn customer_id_for(tenant: &TenantId, identity: &ChannelIdentity) -> CustomerId {
    let hash = stable_hash(&[tenant.as_str(), &identity.index_key()]);
    CustomerId::new(format!("cus-{}", &hash[..24])).expect("a hex id is always valid")
}

impl Journey {
    /// Applies the event recorded at `offset`. The event must concern this journey's
    /// customer; the caller resolves that.
    pub fn apply(&mut self, offset: u64, event: &Event) -> Applied {
        if self.last_event_offset.is_some_and(|last| offset <= last) {
            return Applied::default();
        }
        let at = event.occurred_at;
        self.last_event_offset = Some(offset);
        self.counters.events += 1;
        self.first_seen_at = self.first_seen_at.min(at);
        self.last_seen_at = self.last_seen_at.max(at);

        let mut applied = Applied {
            changed: true,
            linked: Vec::new(),
        };
        if let Some(crate::event::CustomerRef::Identity(identity)) = &event.customer {
            self.link(identity, at, &mut applied);
        }
        if let Payload::CustomerIdentified {
            method,
            assurance,
            identities,
            expires_at,
        } = &event.payload
        {
            let verification = Verification {
                method: *method,
                assurance: *assurance,
                verified_at: at,
                expires_at: *expires_at,
                channel: event.channel,
            };
            let proven = identities.iter().chain(match &event.customer {
                Some(crate::event::CustomerRef::Identity(identity)) => Some(identity),
                _ => None,
            });
            for identity in proven {
                self.link(identity, at, &mut applied);
                if let Some(linked) = self.identities.iter_mut().find(|l| &l.identity == identity) {
                    linked.verification = Some(verification.clone());
                }
            }
        }
        if let Payload::InteractionStarted {
            identity: Some(identity),
            ..
        } = &event.payload
        {
            self.link(identity, at, &mut applied);
        }

        let Some(index) = self.place(event) else {
            return applied;
        };
        let conversation = &mut self.conversations[index];
        conversation.last_activity_at = conversation.last_activity_at.max(at);
        if let Some(channel) = event.channel
            && !conversation.channels.contains(&channel)
        {
            conversation.channels.push(channel);
        }
        let agent = apply_to_conversation(conversation, &mut self.counters, event);
        if agent.is_some() {
            self.last_agent_id = agent;
        }
        applied
    }

    fn link(&mut self, identity: &ChannelIdentity, at: Timestamp, applied: &mut Applied) {
        if self.identity(identity).is_none() {
            self.identities.push(LinkedIdentity {
                identity: identity.clone(),
                first_seen_at: at,
                verification: None,
            });
            applied.linked.push(identity.clone());
        }
    }

    /// Finds or opens the conversation the event belongs to.
    fn place(&mut self, event: &Event) -> Option<usize> {
        if !event.payload.is_customer_event() {
            return None;
        }
        if let Some(id) = &event.conversation_id {
            if let Some(index) = self.conversations.iter().position(|c| &c.id == id) {
                return Some(index);
            }
            return Some(self.open(id.clone(), event.occurred_at));
        }
        if let Some(interaction) = &event.interaction_id
            && let Some(index) = self
                .conversations
                .iter()
                .rposition(|c| c.interaction(interaction).is_some())
        {
            return Some(index);
        }
        if let Some(index) = self
            .conversations
            .iter()
            .rposition(|c| c.status == ConversationStatus::Open)
        {
            return Some(index);
        }
        match &event.payload {
            Payload::WrapUpRecorded { .. } | Payload::SurveyAnswered { .. } => {
                self.conversations.len().checked_sub(1)
            }
            Payload::CustomerIdentified { .. } if event.interaction_id.is_none() => None,
            _ => {
                let hash = stable_hash(&[event.tenant_id.as_str(), event.event_id.as_str()]);
                let id = ConversationId::new(format!("cnv-{}", &hash[..24]))
                    .expect("a hex id is always valid");
                Some(self.open(id, event.occurred_at))
            }
        }
    }

    fn open(&mut self, id: ConversationId, at: Timestamp) -> usize {
        self.counters.conversations += 1;
        self.conversations.push(Conversation {
            id,
            status: ConversationStatus::Open,
            opened_at: at,
            last_activity_at: at,
            closed_at: None,
            intent: None,
            context: Default::default(),
            channels: Vec::new(),
            interactions: Vec::new(),
            transcript: Default::default(),
            last_agent_id: None,
            transfer_count: 0,
            callback_pending: false,
            disposition: None,
            survey: SurveyScores::default(),
            handoff_summary: None,
        });
        self.conversations.len() - 1
    }
}

/// Applies the payload to its conversation; returns the agent who handled it, if any.
fn apply_to_conversation(
    conversation: &mut Conversation,
    counters: &mut crate::journey::Counters,
    event: &Event,
) -> Option<crate::ids::AgentId> {
    let at = event.occurred_at;
    let interaction = event
        .interaction_id
        .as_ref()
        .map(|id| interaction_mut(conversation, counters, id, event.channel, at));
    let mut handled_by = None;
    // Each arm updates the interaction (when there is one) and the conversation.
    match (&event.payload, interaction) {
        (
            Payload::InteractionStarted {
                direction,
                language,
                ..
            },
            Some(index),
        ) => {
            if conversation.status == ConversationStatus::Resolved {
                conversation.status = ConversationStatus::Open;
                conversation.closed_at = None;
            }
            let interaction = &mut conversation.interactions[index];
            interaction.direction = Some(*direction);
            interaction.language.clone_from(language);
            interaction.started_at = at;
            if event.channel.is_some_and(Channel::is_self_service) {
                enter(interaction, Stage::SelfService, at);
            }
        }
        (Payload::SelfServiceStepCompleted { .. }, Some(index)) => {
            let interaction = &mut conversation.interactions[index];
            interaction.self_service_steps += 1;
            enter(interaction, Stage::SelfService, at);
        }
        (
            Payload::IntentDetected {
                intent,
                confidence,
                detected_by,
            },
            _,
        ) => {
            conversation.intent = Some(DetectedIntent {
                intent: intent.clone(),
                confidence: *confidence,
                detected_by: detected_by.clone(),
                detected_at: at,
            });
        }
        (
            Payload::MessageSent {
                from,
                sender_id,
                text,
                attachments,
            },
            _,
        ) => {
            counters.messages += 1;
            if conversation.transcript.len() == TRANSCRIPT_LEN {
                conversation.transcript.pop_front();
            }
            conversation.transcript.push_back(TranscriptEntry {
                from: *from,
                sender_id: sender_id.clone(),
                text: text.clone(),
                attachment_count: u32::try_from(attachments.len()).unwrap_or(u32::MAX),
                channel: event.channel,
                sent_at: at,
            });
        }
        (
            Payload::ContextSet {
                key,
                value,
                sensitive,
            },
            _,
        ) => {
            conversation.context.insert(
                key.clone(),
                ContextEntry {
                    value: value.clone(),
                    sensitive: *sensitive,
                    set_at: at,
                    channel: event.channel,
                },
            );
        }
        (
            Payload::ContactQueued {
                queue_id, language, ..
            },
            Some(index),
        ) => {
            let interaction = &mut conversation.interactions[index];
            interaction.queue_id = Some(queue_id.clone());
            if language.is_some() {
                interaction.language.clone_from(language);
            }
            enter(interaction, Stage::Queued, at);
        }
        (Payload::ContactOffered { queue_id, .. }, Some(index)) => {
            let interaction = &mut conversation.interactions[index];
            if !queue_id.is_empty() {
                interaction.queue_id = Some(queue_id.clone());
            }
            enter(interaction, Stage::Offered, at);
        }
        (Payload::ContactAssigned { agent_id, queue_id }, Some(index)) => {
            let interaction = &mut conversation.interactions[index];
            if !queue_id.is_empty() {
                interaction.queue_id = Some(queue_id.clone());
            }
            interaction.agent_id = Some(agent_id.clone());
            enter(interaction, Stage::Connected, at);
            handled_by = Some(agent_id.clone());
        }
        (
            Payload::ContactTransferred {
                to_agent_id,
                to_queue_id,
                ..
            },
            Some(index),
        ) => {
            counters.transfers += 1;
            conversation.transfer_count += 1;
            let interaction = &mut conversation.interactions[index];
            interaction.transfers += 1;
            if !to_queue_id.is_empty() {
                interaction.queue_id = Some(to_queue_id.clone());
            }
            let stage = if to_agent_id.is_some() {
                Stage::Offered
            } else {
                Stage::Queued
            };
            enter(interaction, stage, at);
        }
        (
            Payload::HandoffRequested {
                summary,
                target_queue_id,
                ..
            },
            Some(index),
        ) => {
            if !summary.is_empty() {
                conversation.handoff_summary = Some(summary.clone());
            }
            let interaction = &mut conversation.interactions[index];
            if !target_queue_id.is_empty() {
                interaction.queue_id = Some(target_queue_id.clone());
            }
            enter(interaction, Stage::HandoffRequested, at);
        }
        (Payload::CallbackRequested { queue_id, .. }, Some(index)) => {
            counters.callbacks_requested += 1;
            conversation.callback_pending = true;
            let interaction = &mut conversation.interactions[index];
            if !queue_id.is_empty() {
                interaction.queue_id = Some(queue_id.clone());
            }
            enter(interaction, Stage::CallbackPending, at);
        }
        (Payload::CallbackCompleted { reached, agent_id }, Some(index)) => {
            conversation.callback_pending = false;
            let interaction = &mut conversation.interactions[index];
            if let Some(agent) = agent_id {
                interaction.agent_id = Some(agent.clone());
                handled_by = Some(agent.clone());
            }
            let stage = if *reached {
                Stage::Connected
            } else {
                Stage::Ended
            };
            enter(interaction, stage, at);
        }
        (Payload::ContactAbandoned { point }, Some(index)) => {
            counters.abandons += 1;
            let interaction = &mut conversation.interactions[index];
            interaction.abandoned_at = Some(*point);
            interaction.ended_at = Some(at);
            enter(interaction, Stage::Abandoned, at);
        }
        (Payload::InteractionEnded { reason }, Some(index)) => {
            let interaction = &mut conversation.interactions[index];
            interaction.end_reason = *reason;
            if interaction.stage != Stage::Abandoned {
                interaction.ended_at = Some(at);
                enter(interaction, Stage::Ended, at);
            }
        }
        (
            Payload::WrapUpRecorded {
                agent_id,
                disposition,
                need_resolved,
                ..
            },
            _,
        ) => {
            conversation.disposition = Some(disposition.clone());
            if *need_resolved {
                conversation.status = ConversationStatus::Resolved;
                conversation.closed_at = Some(at);
            }
            handled_by.clone_from(agent_id);
        }
        (
            Payload::SurveyAnswered {
                csat, nps, effort, ..
            },
            _,
        ) => {
            let survey = &mut conversation.survey;
            survey.csat = csat.or(survey.csat);
            survey.nps = nps.or(survey.nps);
            survey.effort = effort.or(survey.effort);
        }
        // Identity payloads were handled on the journey; interaction payloads without an
        // interaction were refused by validation.
        _ => {}
    }
    if let Some(agent) = &handled_by {
        conversation.last_agent_id = Some(agent.clone());
    }
    handled_by
}

/// The interaction's index in the conversation, created on first sight (adapters may miss
/// the start event).
fn interaction_mut(
    conversation: &mut Conversation,
    counters: &mut crate::journey::Counters,
    id: &InteractionId,
    channel: Option<Channel>,
    at: Timestamp,
) -> usize {
    if let Some(index) = conversation.interactions.iter().position(|i| &i.id == id) {
        return index;
    }
    counters.interactions += 1;
    conversation.interactions.push(Interaction {
        id: id.clone(),
        channel,
        direction: None,
        started_at: at,
        ended_at: None,
        stage: Stage::Started,
        stages: vec![StageVisit {
            stage: Stage::Started,
            entered_at: at,
        }],
        queue_id: None,
        agent_id: None,
        self_service_steps: 0,
        transfers: 0,
        abandoned_at: None,
        end_reason: None,
        language: None,
    });
    conversation.interactions.len() - 1
}

fn enter(interaction: &mut Interaction, stage: Stage, at: Timestamp) {
    if interaction.stage != stage {
        interaction.stage = stage;
        interaction.stages.push(StageVisit {
            stage,
            entered_at: at,
        });
    }
}
