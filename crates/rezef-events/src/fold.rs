//! The fold: how one event changes a customer's journey. Pure and deterministic: the same
//! events in the same order, under the same [`ContinuityPolicy`], give the same journey, and
//! an event at or below the journey's last applied offset changes nothing, so replaying the
//! log is always safe.
//!
//! Placement of an event in a conversation, in order:
//! 1. it names its conversation → that one (created if new);
//! 2. its interaction is already known → that interaction's conversation;
//! 3. it starts an interaction with a valid continuation token → the token's conversation;
//! 4. the open conversation, if the event is part of no new interaction, or if the new
//!    interaction comes within `continuation_window` of its last activity;
//! 5. wrap-ups and surveys → the latest conversation, even a closed one;
//! 6. otherwise a new conversation opens. When its intent is then detected and matches the
//!    open conversation's (`join_same_intent`), or a conversation closed less than
//!    `reopen_window` ago (which reopens: a repeat contact), the new one joins that one.
//!
//! Open conversations with no activity for `inactivity_timeout` close as inactive when the
//! customer's next event arrives. Every interaction records why it joined its conversation.
//!
//! An event cannot have happened after the log recorded it: the fold takes its time as
//! `occurred_at`, but no later than the record's time (the server's clock, [`Context`]), and
//! moves the expiries it carries (a verification's, a token's) back by as much. So an
//! adapter whose clock runs ahead, or a record dated 2100 from before the edge refused such
//! dates, neither closes a live conversation as inactive nor makes a verification or a
//! token hold longer than the server's time allows.
//!
//! After every event the journey is brought within its bounds ([`crate::bound`]): older
//! closed conversations become summaries, and an event naming one brings it back whole.

use std::sync::Arc;

use crate::event::{Channel, CustomerRef, Event, Payload};
use crate::identity::ChannelIdentity;
use crate::ids::{ConversationId, CustomerId, InteractionId, TenantId, stable_hash};
use crate::journey::{
    ContextEntry, Conversation, ConversationStatus, Counters, DetectedIntent, IdentityConflict,
    Interaction, IssuedToken, JoinReason, Journey, LinkedIdentity, MAX_CONFLICTS, Stage,
    StageVisit, TranscriptEntry, Verification,
};
use crate::policy::{ContinuityPolicy, MergeRefusal};
use crate::time::Timestamp;

/// How many messages a conversation's transcript keeps; older ones stay in the log.
pub const TRANSCRIPT_LEN: usize = 50;

/// What the fold needs beyond the journey and the event.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub policy: &'a ContinuityPolicy,
    /// The merged member the event's customer reference resolved to (`None`: the journey's
    /// own customer). What the event brings is attributed to it.
    pub origin: Option<&'a CustomerId>,
    /// Identities in the event that belong to other customers and may not be linked here,
    /// with their owner and why no merge happened. The caller decides: it sees the others.
    pub foreign: &'a [(ChannelIdentity, CustomerId, MergeRefusal)],
    /// When the log recorded the event, by the server's clock (log timestamps count whole
    /// milliseconds): the event is taken to have happened no later than the end of that
    /// millisecond. `None`: as dated (a test, a journey built outside the log).
    pub recorded_at: Option<Timestamp>,
}

/// The precision of a log record's time: the event may have happened until its end.
const RECORDED_PRECISION_NANOS: i64 = 999_999;

impl Context<'_> {
    /// When the event happened, for the fold (see [`time_of`]).
    pub fn time_of(&self, event: &Event) -> Timestamp {
        time_of(event, self.recorded_at)
    }
}

/// When an event recorded at `recorded_at` happened: its `occurred_at`, but no later than
/// the end of its record's millisecond.
pub fn time_of(event: &Event, recorded_at: Option<Timestamp>) -> Timestamp {
    let latest = recorded_at.map(|at| {
        Timestamp::from_unix_nanos(at.unix_nanos().saturating_add(RECORDED_PRECISION_NANOS))
    });
    latest.map_or(event.occurred_at, |latest| event.occurred_at.min(latest))
}

/// An expiry the event carries, moved back as far as the event's time was (see
/// [`Context::time_of`]): what was valid for an hour after the adapter's time is valid for an
/// hour after the server's.
fn moved_back(expiry: Timestamp, event: &Event, at: Timestamp) -> Timestamp {
    let ahead = event
        .occurred_at
        .unix_nanos()
        .saturating_sub(at.unix_nanos());
    Timestamp::from_unix_nanos(expiry.unix_nanos().saturating_sub(ahead))
}

impl Context<'static> {
    /// The default policy, no merges, no foreign identities.
    pub fn standalone() -> Self {
        static DEFAULT: std::sync::OnceLock<ContinuityPolicy> = std::sync::OnceLock::new();
        Self {
            policy: DEFAULT.get_or_init(ContinuityPolicy::default),
            origin: None,
            foreign: &[],
            recorded_at: None,
        }
    }
}

/// What applying an event did beyond the journey itself: what the caller indexes.
#[derive(Debug, Default, PartialEq)]
pub struct Applied {
    /// Whether the journey changed (false for an already-applied offset).
    pub changed: bool,
    /// Identities newly linked to this customer (owned by the context's origin).
    pub linked: Vec<ChannelIdentity>,
    /// Conversations opened.
    pub opened: Vec<ConversationId>,
    /// Conversations closed as inactive, unresolved: idle past the inactivity timeout when
    /// this event came (`closed_at` is when the timeout passed).
    pub closed: Vec<ConversationId>,
    /// Continuation tokens issued.
    pub tokens_issued: Vec<IssuedToken>,
    /// Continuation tokens used up (tokens are single use).
    pub tokens_used: Vec<String>,
}

/// The customer id a never-seen identity starts with: derived from the identity, so a
/// rebuild of the projection gives the same id, also once the identity is erased.
pub fn customer_id_for(tenant: &TenantId, identity: &ChannelIdentity) -> CustomerId {
    let id = match identity.erased_pseudonym() {
        Some(pseudonym) => format!("cus-{pseudonym}"),
        None => format!("cus-{}", identity.pseudonym(tenant)),
    };
    CustomerId::new(id).expect("a hex id is always valid")
}

/// The continuation token an interaction-start event carries, if any.
pub fn continuation_token(event: &Event) -> Option<&str> {
    match &event.payload {
        Payload::InteractionStarted {
            continuation_token, ..
        } => continuation_token.as_deref(),
        _ => None,
    }
}

impl Journey {
    /// Applies the event recorded at `offset` under the default policy, as for a customer
    /// who was never merged.
    pub fn apply(&mut self, offset: u64, event: &Event) -> Applied {
        self.apply_with(offset, event, &Context::standalone())
    }

    /// Applies the event recorded at `offset`. The event must concern this journey's
    /// customer (or a member merged into it); the caller resolves that.
    pub fn apply_with(&mut self, offset: u64, event: &Event, cx: &Context<'_>) -> Applied {
        if self.last_event_offset.is_some_and(|last| offset <= last) {
            return Applied::default();
        }
        let at = cx.time_of(event);
        self.last_event_offset = Some(offset);
        let mut applied = Applied {
            changed: true,
            ..Applied::default()
        };
        // Merges change who the customer is (the caller did them: `absorb`, `split`); a
        // reveal is the auditor's doing, not the customer's.
        if event.payload.is_about_the_record() {
            return applied;
        }
        let mut delta = Counters {
            events: 1,
            ..Counters::default()
        };
        self.first_seen_at = self.first_seen_at.min(at);
        self.last_seen_at = self.last_seen_at.max(at);
        self.link_identities(offset, event, at, cx, &mut applied);
        self.expire(at, cx.policy, &mut applied);

        let mut handled_by = None;
        if let Some((index, reason)) = self.place(event, at, cx, &mut applied) {
            let conversation = Arc::make_mut(&mut self.conversations[index]);
            conversation.last_activity_at = conversation.last_activity_at.max(at);
            if let Some(channel) = event.channel
                && !conversation.channels.contains(&channel)
            {
                conversation.channels.push(channel);
            }
            let had_intent = conversation.intent.is_some();
            handled_by = apply_to_conversation(
                conversation,
                &mut delta,
                event,
                at,
                reason,
                cx.policy,
                &mut applied,
            );
            if let Some(agent) = &handled_by {
                self.last_agent_id = Some(agent.clone());
            }
            if !had_intent && matches!(event.payload, Payload::IntentDetected { .. }) {
                self.join_same_intent(index, at, cx.policy, &mut delta);
            }
        }
        self.counters += &delta;
        if let Payload::CustomerAttributesSet {
            tier,
            preferred_language,
        } = &event.payload
        {
            let (tier, language) = (tier.as_deref(), preferred_language.as_deref());
            self.attributes.set(tier, language);
            if let Some(share) = self.share_mut(cx.origin) {
                share.attributes.set(tier, language);
            }
        }
        if let Some(share) = self.share_mut(cx.origin) {
            share.counters += &delta;
            share.first_seen_at = share.first_seen_at.min(at);
            share.last_seen_at = share.last_seen_at.max(at);
            share.last_event_offset = Some(offset);
            if handled_by.is_some() {
                share.last_agent_id = handled_by;
            }
        }
        self.keep_bounded();
        applied
    }

    /// Links the identities the event shows or proves, and records the verification.
    fn link_identities(
        &mut self,
        offset: u64,
        event: &Event,
        at: Timestamp,
        cx: &Context<'_>,
        applied: &mut Applied,
    ) {
        for identity in event.identities() {
            if let Some((_, owner, refusal)) = cx.foreign.iter().find(|(f, _, _)| f == identity) {
                if !self
                    .conflicts
                    .iter()
                    .any(|c| c.offset == offset && &c.identity == identity)
                {
                    if self.conflicts.len() == MAX_CONFLICTS {
                        self.conflicts.remove(0);
                    }
                    self.conflicts.push(IdentityConflict {
                        identity: identity.clone(),
                        owner: owner.clone(),
                        at,
                        offset,
                        refusal: *refusal,
                    });
                }
                continue;
            }
            if self.identity(identity).is_none() {
                self.identities.push(LinkedIdentity {
                    identity: identity.clone(),
                    first_seen_at: at,
                    verification: None,
                    owner: cx.origin.filter(|o| **o != self.customer_id).cloned(),
                });
                applied.linked.push(identity.clone());
            }
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
                expires_at: expires_at.map(|expiry| moved_back(expiry, event, at)),
                channel: event.channel,
            };
            let shown = match &event.customer {
                Some(CustomerRef::Identity(identity)) => Some(identity),
                _ => None,
            };
            for identity in identities.iter().chain(shown) {
                if let Some(linked) = self.identities.iter_mut().find(|l| &l.identity == identity) {
                    linked.verification = Some(verification.clone());
                }
            }
        }
    }

    /// Closes open conversations idle for longer than the inactivity timeout.
    fn expire(&mut self, at: Timestamp, policy: &ContinuityPolicy, applied: &mut Applied) {
        for conversation in &mut self.conversations {
            let deadline = conversation
                .last_activity_at
                .plus(policy.inactivity_timeout);
            if conversation.status == ConversationStatus::Open && deadline < at {
                let conversation = Arc::make_mut(conversation);
                conversation.status = ConversationStatus::Inactive;
                conversation.closed_at = Some(deadline);
                applied.closed.push(conversation.id.clone());
            }
        }
    }

    /// Finds or opens the conversation the event belongs to, and why a new interaction
    /// would join it.
    fn place(
        &mut self,
        event: &Event,
        at: Timestamp,
        cx: &Context<'_>,
        applied: &mut Applied,
    ) -> Option<(usize, JoinReason)> {
        // What is known of the customer is not something they did in a conversation.
        if !event.payload.is_customer_event()
            || matches!(event.payload, Payload::CustomerAttributesSet { .. })
        {
            return None;
        }
        if let Some(id) = &event.conversation_id {
            // A compacted conversation comes back whole rather than opening a second of its
            // id (see `bound`).
            let index = (self.conversations.iter().position(|c| c.answers_to(id)))
                .or_else(|| self.revive(id))
                .unwrap_or_else(|| self.open(id.clone(), at, cx, applied));
            return Some((index, JoinReason::Named));
        }
        if let Some(interaction) = &event.interaction_id
            && let Some(index) = self
                .conversations
                .iter()
                .rposition(|c| c.interaction(interaction).is_some())
        {
            return Some((index, JoinReason::WithinWindow));
        }
        if let Some(token) = continuation_token(event)
            && let Some(index) = self.conversations.iter().rposition(|c| {
                c.tokens
                    .iter()
                    .any(|t| t.token == token && t.admits(event.channel, at))
            })
        {
            Arc::make_mut(&mut self.conversations[index])
                .tokens
                .retain(|t| t.token != token);
            applied.tokens_used.push(token.to_owned());
            return Some((index, JoinReason::Token));
        }
        if let Some(index) = self
            .conversations
            .iter()
            .rposition(|c| c.status == ConversationStatus::Open)
        {
            let within = at
                <= self.conversations[index]
                    .last_activity_at
                    .plus(cx.policy.continuation_window);
            if event.interaction_id.is_none() || within {
                return Some((index, JoinReason::WithinWindow));
            }
        }
        match &event.payload {
            Payload::WrapUpRecorded { .. } | Payload::SurveyAnswered { .. } => self
                .conversations
                .len()
                .checked_sub(1)
                .map(|index| (index, JoinReason::WithinWindow)),
            Payload::CustomerIdentified { .. } if event.interaction_id.is_none() => None,
            _ => {
                let hash = stable_hash(&[event.tenant_id.as_str(), event.event_id.as_str()]);
                let id = ConversationId::new(format!("cnv-{}", &hash[..24]))
                    .expect("a hex id is always valid");
                Some((self.open(id, at, cx, applied), JoinReason::Opened))
            }
        }
    }

    fn open(
        &mut self,
        id: ConversationId,
        at: Timestamp,
        cx: &Context<'_>,
        applied: &mut Applied,
    ) -> usize {
        self.counters.conversations += 1;
        if let Some(share) = self.share_mut(cx.origin) {
            share.counters.conversations += 1;
        }
        applied.opened.push(id.clone());
        let owner = cx.origin.filter(|o| **o != self.customer_id).cloned();
        self.conversations
            .push(Arc::new(Conversation::new(id, at, owner)));
        self.conversations.len() - 1
    }

    /// After the first intent of the conversation at `index` is detected: when the fold
    /// opened it for a new contact and another conversation has the same intent (open, or
    /// closed within the reopen window), the new one joins that one.
    fn join_same_intent(
        &mut self,
        index: usize,
        at: Timestamp,
        policy: &ContinuityPolicy,
        delta: &mut Counters,
    ) {
        let conversation = &self.conversations[index];
        let opened_by_fold = conversation
            .interactions
            .first()
            .is_some_and(|i| i.joined == JoinReason::Opened);
        let Some(intent) = conversation.intent.as_ref().map(|i| i.intent.clone()) else {
            return;
        };
        if !policy.join_same_intent || !opened_by_fold {
            return;
        }
        let target = self.conversations.iter().enumerate().rposition(|(i, c)| {
            i != index
                && c.intent.as_ref().is_some_and(|i| i.intent == intent)
                && match c.closed_at {
                    None => c.status == ConversationStatus::Open,
                    Some(closed) => at <= closed.plus(policy.reopen_window),
                }
        });
        let Some(target) = target else { return };
        let joined = self.conversations.remove(index);
        let target = if target > index { target - 1 } else { target };
        self.counters.conversations = self.counters.conversations.saturating_sub(1);
        let owner = joined.owner.clone();
        if let Some(share) = self.share_mut(owner.as_ref()) {
            share.counters.conversations = share.counters.conversations.saturating_sub(1);
        }
        let into = Arc::make_mut(&mut self.conversations[target]);
        let reason = if into.is_closed() {
            into.status = ConversationStatus::Open;
            into.closed_at = None;
            into.repeat_contacts += 1;
            delta.repeat_contacts += 1;
            JoinReason::Reopened
        } else {
            JoinReason::SameIntent
        };
        into.join(Arc::unwrap_or_clone(joined), reason);
    }

    /// The share of the merged member `origin` (or the journey's own), if merged at all.
    pub(crate) fn share_mut(&mut self, origin: Option<&CustomerId>) -> Option<&mut Share> {
        let wanted = origin.unwrap_or(&self.customer_id);
        let index = self
            .shares
            .iter()
            .position(|s| &s.customer_id == wanted)
            .unwrap_or(0);
        self.shares.get_mut(index)
    }
}

use crate::journey::Share;

impl Conversation {
    /// Takes in a conversation that turned out to be about the same need.
    fn join(&mut self, other: Conversation, reason: JoinReason) {
        self.last_activity_at = self.last_activity_at.max(other.last_activity_at);
        for channel in other.channels {
            if !self.channels.contains(&channel) {
                self.channels.push(channel);
            }
        }
        for (n, mut interaction) in other.interactions.into_iter().enumerate() {
            if n == 0 {
                interaction.joined = reason;
            }
            self.interactions.push(interaction);
        }
        self.earlier_interactions = self
            .earlier_interactions
            .saturating_add(other.earlier_interactions);
        self.trim_interactions();
        for entry in other.transcript {
            if self.transcript.len() == TRANSCRIPT_LEN {
                self.transcript.pop_front();
            }
            self.transcript.push_back(entry);
        }
        self.context.extend(other.context);
        if other.intent.is_some() {
            self.intent = other.intent;
        }
        if other.last_agent_id.is_some() {
            self.last_agent_id = other.last_agent_id;
        }
        if other.handoff_summary.is_some() {
            self.handoff_summary = other.handoff_summary;
        }
        self.transfer_count += other.transfer_count;
        self.callback_pending |= other.callback_pending;
        self.tokens.extend(other.tokens);
        self.aliases.push(other.id);
        self.aliases.extend(other.aliases);
    }
}

/// Applies the payload to its conversation; returns the agent who handled it, if any.
fn apply_to_conversation(
    conversation: &mut Conversation,
    counters: &mut Counters,
    event: &Event,
    at: Timestamp,
    reason: JoinReason,
    policy: &ContinuityPolicy,
    applied: &mut Applied,
) -> Option<crate::ids::AgentId> {
    let interaction = event
        .interaction_id
        .as_ref()
        .map(|id| interaction_mut(conversation, counters, id, event.channel, at, reason));
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
            let reopened = conversation.is_closed();
            if reopened {
                conversation.status = ConversationStatus::Open;
                conversation.closed_at = None;
                conversation.repeat_contacts += 1;
                counters.repeat_contacts += 1;
            }
            let interaction = &mut conversation.interactions[index];
            if reopened {
                interaction.joined = JoinReason::Reopened;
            }
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
                sensitive,
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
                // Transcripts reach every channel and agent: they never hold a code.
                text: crate::mask::message(*from, text, *sensitive, policy).into_owned(),
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
        // A consult puts the customer on hold while their agent is connected, and back.
        (Payload::ConsultStarted { .. }, Some(index)) => {
            let interaction = &mut conversation.interactions[index];
            if interaction.stage == Stage::Connected {
                enter(interaction, Stage::Consulting, at);
            }
        }
        (Payload::ConsultEnded { .. }, Some(index)) => {
            let interaction = &mut conversation.interactions[index];
            if interaction.stage == Stage::Consulting {
                enter(interaction, Stage::Connected, at);
            }
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
        (
            Payload::ContinuationTokenIssued {
                token,
                expires_at,
                redeem_on,
            },
            _,
        ) => {
            conversation
                .tokens
                .retain(|t| at < t.expires_at && &t.token != token);
            let issued = IssuedToken {
                token: token.clone(),
                issued_at: at,
                expires_at: moved_back(*expires_at, event, at),
                redeem_on: redeem_on.clone(),
            };
            conversation.tokens.push(issued.clone());
            applied.tokens_issued.push(issued);
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
    counters: &mut Counters,
    id: &InteractionId,
    channel: Option<Channel>,
    at: Timestamp,
    joined: JoinReason,
) -> usize {
    if let Some(index) = conversation.interactions.iter().position(|i| &i.id == id) {
        return index;
    }
    counters.interactions += 1;
    conversation.push_interaction(Interaction {
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
        joined,
    })
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
