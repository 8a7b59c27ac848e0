//! Journey state: what the fold makes of a customer's events. It is a projection, always
//! rebuildable from the log, so its stored form (`postcard`) carries no compatibility promise:
//! a change of these types bumps `STATE_FORMAT` and the store is rebuilt. Their serde layout
//! is another matter: it is version 1 of a [`JourneySnapshot`](crate::JourneySnapshot), in
//! which log records carry moved journeys. Read the rule in `snapshot` before changing it.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::event::{
    AbandonPoint, AssuranceLevel, Channel, Direction, EndReason, Participant, VerificationMethod,
};
use crate::identity::ChannelIdentity;
use crate::ids::{AgentId, ConversationId, CustomerId, InteractionId, TenantId};
use crate::policy::MergeRefusal;
use crate::time::Timestamp;

/// The version of the stored projection's layout (these types and the store's keys). Bump
/// it when either changes: stores of another version refuse to open until rebuilt.
pub const STATE_FORMAT: u32 = 6;

/// Everything known about one customer's journey across channels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Journey {
    pub tenant_id: TenantId,
    pub customer_id: CustomerId,
    pub identities: Vec<LinkedIdentity>,
    /// The most recent conversations whole, oldest first: at most
    /// [`MAX_CONVERSATIONS`](crate::bound::MAX_CONVERSATIONS), plus any open ones beyond
    /// (open conversations are never compacted). See [`bound`](crate::bound).
    pub conversations: Vec<Arc<Conversation>>,
    /// Older closed conversations, compacted into summaries, least recently active first (at
    /// most [`MAX_SUMMARIES`](crate::bound::MAX_SUMMARIES); older ones are only counted, in
    /// `counters.conversations_forgotten`). Their events stay in the log.
    #[serde(default)]
    pub past: Vec<ConversationSummary>,
    pub last_agent_id: Option<AgentId>,
    pub counters: Counters,
    pub first_seen_at: Timestamp,
    pub last_seen_at: Timestamp,
    /// The log offset of the last event applied; events at or below it are not applied again.
    pub last_event_offset: Option<u64>,
    /// Set when this customer was merged into another: the record keeps only this pointer,
    /// and reads follow it (the old id keeps resolving).
    pub merged_into: Option<CustomerId>,
    /// Empty unless customers were merged into this one: then each member's own part (this
    /// customer's first), so that an unmerge gives every member back what it brought.
    pub shares: Vec<Share>,
    /// Links refused because the identity belongs to someone else and the evidence was too
    /// weak to merge, newest last (at most `MAX_CONFLICTS`), for a person to review.
    pub conflicts: Vec<IdentityConflict>,
    /// What routing uses of the customer (`CustomerAttributesSet`). Merged: each field as the
    /// latest event about any member set it, else as the survivor had it, else as a member did.
    #[serde(default)]
    pub attributes: CustomerAttributes,
}

/// The customer's tier and preferred language, as recorded by `CustomerAttributesSet`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerAttributes {
    pub tier: Option<String>,
    pub preferred_language: Option<String>,
}

impl CustomerAttributes {
    /// Applies an update: `None` leaves a field, an empty value clears it.
    pub fn set(&mut self, tier: Option<&str>, preferred_language: Option<&str>) {
        let update = |field: &mut Option<String>, value: Option<&str>| {
            if let Some(value) = value {
                *field = (!value.is_empty()).then(|| value.to_owned());
            }
        };
        update(&mut self.tier, tier);
        update(&mut self.preferred_language, preferred_language);
    }

    /// These attributes, with what they lack taken from `other`.
    pub fn or(&self, other: &Self) -> Self {
        Self {
            tier: self.tier.clone().or_else(|| other.tier.clone()),
            preferred_language: (self.preferred_language.clone())
                .or_else(|| other.preferred_language.clone()),
        }
    }
}

/// How many refused links a journey keeps.
pub const MAX_CONFLICTS: usize = 16;

/// One merged member's own part of a journey.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Share {
    pub customer_id: CustomerId,
    /// The customer it was merged into (`None` for the journey's own customer).
    pub parent: Option<CustomerId>,
    pub merge: Option<MergeRecord>,
    pub counters: Counters,
    pub first_seen_at: Timestamp,
    pub last_seen_at: Timestamp,
    pub last_agent_id: Option<AgentId>,
    pub last_event_offset: Option<u64>,
    /// The member's own attributes, given back by an unmerge.
    #[serde(default)]
    pub attributes: CustomerAttributes,
}

/// When and why a customer was merged into another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergeRecord {
    pub at: Timestamp,
    pub offset: u64,
    pub cause: MergeCause,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MergeCause {
    /// A verification proved an identity the absorbed customer owned.
    Verified {
        method: VerificationMethod,
        assurance: AssuranceLevel,
        identity: ChannelIdentity,
    },
    /// Someone asked for it (`CustomersMerged`).
    Requested {
        reason: String,
        requested_by: String,
    },
}

/// A link that was refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdentityConflict {
    pub identity: ChannelIdentity,
    /// Who owns the identity.
    pub owner: CustomerId,
    pub at: Timestamp,
    pub offset: u64,
    pub refusal: MergeRefusal,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkedIdentity {
    pub identity: ChannelIdentity,
    pub first_seen_at: Timestamp,
    pub verification: Option<Verification>,
    /// The merged member it came with (`None`: the journey's own customer).
    pub owner: Option<CustomerId>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verification {
    pub method: VerificationMethod,
    pub assurance: AssuranceLevel,
    pub verified_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub channel: Option<Channel>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConversationStatus {
    Open,
    /// Wrap-up said the need was resolved.
    Resolved,
    /// Closed after `inactivity_timeout` without activity.
    Inactive,
}

/// Why an interaction is in its conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JoinReason {
    /// It opened the conversation.
    Opened,
    /// The adapter named the conversation.
    Named,
    /// The customer gave a continuation token.
    Token,
    /// It came within the continuation window of the last activity.
    WithinWindow,
    /// Its intent matched the open conversation's.
    SameIntent,
    /// Its intent matched a recently closed conversation, which reopened (a repeat contact).
    Reopened,
}

/// A continuation token a channel gave the customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedToken {
    pub token: String,
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
    /// The channels it may be used on; empty: any.
    #[serde(default)]
    pub redeem_on: Vec<Channel>,
}

impl IssuedToken {
    /// Whether a contact on `channel` may use it at `at`.
    pub fn admits(&self, channel: Option<Channel>, at: Timestamp) -> bool {
        at < self.expires_at && redeemable_on(&self.redeem_on, channel)
    }
}

/// Whether a token limited to `redeem_on` (empty: any channel) may be used on `channel`.
pub fn redeemable_on(redeem_on: &[Channel], channel: Option<Channel>) -> bool {
    redeem_on.is_empty() || channel.is_some_and(|channel| redeem_on.contains(&channel))
}

/// One customer need across channels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    pub id: ConversationId,
    pub status: ConversationStatus,
    pub opened_at: Timestamp,
    pub last_activity_at: Timestamp,
    pub closed_at: Option<Timestamp>,
    pub intent: Option<DetectedIntent>,
    pub context: BTreeMap<String, ContextEntry>,
    /// In the order first used.
    pub channels: Vec<Channel>,
    /// The latest [`MAX_INTERACTIONS`](crate::bound::MAX_INTERACTIONS) interactions, in the
    /// order first seen.
    pub interactions: Vec<Interaction>,
    /// Interactions older than those kept, counted only (their events stay in the log).
    #[serde(default)]
    pub earlier_interactions: u32,
    /// The latest `TRANSCRIPT_LEN` messages, oldest first.
    pub transcript: VecDeque<TranscriptEntry>,
    pub last_agent_id: Option<AgentId>,
    pub transfer_count: u32,
    pub callback_pending: bool,
    pub disposition: Option<String>,
    pub survey: SurveyScores,
    pub handoff_summary: Option<String>,
    /// Contacts that reopened it after a close.
    pub repeat_contacts: u32,
    /// Ids of conversations that turned out to be this one (joined on the same intent).
    pub aliases: Vec<ConversationId>,
    /// Unused, unexpired continuation tokens.
    pub tokens: Vec<IssuedToken>,
    /// The merged member it came with (`None`: the journey's own customer).
    pub owner: Option<CustomerId>,
}

/// What is kept of a closed conversation once it is no longer among the journey's recent
/// ones: enough for the customer's history (what it was about, where, how it ended), none
/// of the detail (interactions, transcript, context, tokens).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationSummary {
    pub id: ConversationId,
    /// Ids of conversations that turned out to be this one.
    pub aliases: Vec<ConversationId>,
    /// Never `Open`.
    pub status: ConversationStatus,
    pub opened_at: Timestamp,
    pub last_activity_at: Timestamp,
    pub closed_at: Option<Timestamp>,
    pub intent: Option<DetectedIntent>,
    /// In the order first used.
    pub channels: Vec<Channel>,
    /// All its interactions, counted.
    pub interactions: u32,
    pub transfer_count: u32,
    pub repeat_contacts: u32,
    pub last_agent_id: Option<AgentId>,
    pub disposition: Option<String>,
    pub survey: SurveyScores,
    /// The merged member it came with (`None`: the journey's own customer).
    pub owner: Option<CustomerId>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectedIntent {
    pub intent: String,
    pub confidence: f32,
    pub detected_by: String,
    pub detected_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContextEntry {
    pub value: String,
    pub sensitive: bool,
    pub set_at: Timestamp,
    pub channel: Option<Channel>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TranscriptEntry {
    pub from: Participant,
    pub sender_id: String,
    pub text: String,
    pub attachment_count: u32,
    pub channel: Option<Channel>,
    pub sent_at: Timestamp,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SurveyScores {
    pub csat: Option<u32>,
    pub nps: Option<u32>,
    pub effort: Option<u32>,
}

/// The stations of an interaction (the "pizza tracker").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stage {
    Started,
    SelfService,
    HandoffRequested,
    Queued,
    Offered,
    Connected,
    CallbackPending,
    Abandoned,
    Ended,
    /// With an agent who consults another, the customer on hold.
    Consulting,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageVisit {
    pub stage: Stage,
    pub entered_at: Timestamp,
}

/// One contact on one channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interaction {
    pub id: InteractionId,
    pub channel: Option<Channel>,
    pub direction: Option<Direction>,
    pub started_at: Timestamp,
    pub ended_at: Option<Timestamp>,
    pub stage: Stage,
    pub stages: Vec<StageVisit>,
    pub queue_id: Option<String>,
    pub agent_id: Option<AgentId>,
    pub self_service_steps: u32,
    pub transfers: u32,
    pub abandoned_at: Option<AbandonPoint>,
    pub end_reason: Option<EndReason>,
    pub language: Option<String>,
    pub joined: JoinReason,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub events: u64,
    pub conversations: u32,
    pub interactions: u32,
    pub messages: u32,
    pub transfers: u32,
    pub abandons: u32,
    pub callbacks_requested: u32,
    pub duplicates_ignored: u64,
    /// Contacts that reopened a closed conversation about the same need.
    pub repeat_contacts: u32,
    /// Conversations whose summary was dropped past `MAX_SUMMARIES`: counted in
    /// `conversations`, kept nowhere in the journey (their events stay in the log).
    #[serde(default)]
    pub conversations_forgotten: u32,
}

impl std::ops::AddAssign<&Counters> for Counters {
    fn add_assign(&mut self, other: &Counters) {
        self.events += other.events;
        self.conversations += other.conversations;
        self.interactions += other.interactions;
        self.messages += other.messages;
        self.transfers += other.transfers;
        self.abandons += other.abandons;
        self.callbacks_requested += other.callbacks_requested;
        self.duplicates_ignored += other.duplicates_ignored;
        self.repeat_contacts += other.repeat_contacts;
        self.conversations_forgotten += other.conversations_forgotten;
    }
}

impl std::ops::SubAssign<&Counters> for Counters {
    fn sub_assign(&mut self, other: &Counters) {
        self.events = self.events.saturating_sub(other.events);
        self.conversations = self.conversations.saturating_sub(other.conversations);
        self.interactions = self.interactions.saturating_sub(other.interactions);
        self.messages = self.messages.saturating_sub(other.messages);
        self.transfers = self.transfers.saturating_sub(other.transfers);
        self.abandons = self.abandons.saturating_sub(other.abandons);
        self.callbacks_requested = self
            .callbacks_requested
            .saturating_sub(other.callbacks_requested);
        self.duplicates_ignored = self
            .duplicates_ignored
            .saturating_sub(other.duplicates_ignored);
        self.repeat_contacts = self.repeat_contacts.saturating_sub(other.repeat_contacts);
        self.conversations_forgotten = self
            .conversations_forgotten
            .saturating_sub(other.conversations_forgotten);
    }
}

impl Journey {
    /// A journey with nothing in it yet.
    pub fn new(tenant_id: TenantId, customer_id: CustomerId, at: Timestamp) -> Self {
        Self {
            tenant_id,
            customer_id,
            identities: Vec::new(),
            conversations: Vec::new(),
            past: Vec::new(),
            last_agent_id: None,
            counters: Counters::default(),
            first_seen_at: at,
            last_seen_at: at,
            last_event_offset: None,
            merged_into: None,
            shares: Vec::new(),
            conflicts: Vec::new(),
            attributes: CustomerAttributes::default(),
        }
    }

    /// The stored form.
    pub fn to_bytes(&self) -> Vec<u8> {
        postcard::to_stdvec(self).expect("journey state has only serializable fields")
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        postcard::from_bytes(bytes).map_err(Error::DecodeState)
    }

    /// The customer's open conversation, the most recent if several are open.
    pub fn open_conversation(&self) -> Option<&Conversation> {
        self.conversations
            .iter()
            .rev()
            .find(|c| c.status == ConversationStatus::Open)
            .map(AsRef::as_ref)
    }

    /// The conversation with this id, or the one it was joined into, if kept whole.
    pub fn conversation(&self, id: &ConversationId) -> Option<&Conversation> {
        self.conversations
            .iter()
            .find(|c| c.answers_to(id))
            .map(AsRef::as_ref)
    }

    /// The summary of the compacted conversation with this id (or the one it was joined
    /// into).
    pub fn past_conversation(&self, id: &ConversationId) -> Option<&ConversationSummary> {
        self.past.iter().find(|s| s.answers_to(id))
    }

    /// The id of the conversation `id` names (itself or the one it was joined into), whole
    /// or compacted; `None` if the journey keeps no such conversation.
    pub fn conversation_id(&self, id: &ConversationId) -> Option<&ConversationId> {
        self.conversation(id)
            .map(|c| &c.id)
            .or_else(|| self.past_conversation(id).map(|s| &s.id))
    }

    /// Every customer id merged into this journey, the journey's own excepted.
    pub fn merged_customers(&self) -> impl Iterator<Item = &CustomerId> {
        self.shares.iter().skip(1).map(|share| &share.customer_id)
    }

    pub fn identity(&self, identity: &ChannelIdentity) -> Option<&LinkedIdentity> {
        self.identities.iter().find(|l| &l.identity == identity)
    }
}

impl ConversationSummary {
    /// Whether `id` is this conversation's id or one of its aliases.
    pub fn answers_to(&self, id: &ConversationId) -> bool {
        &self.id == id || self.aliases.contains(id)
    }
}

impl Interaction {
    /// Time spent in any of `stages` up to `now` (a stage lasts until the next one, the end
    /// of the interaction, or `now`).
    pub fn time_in(&self, stages: &[Stage], now: Timestamp) -> std::time::Duration {
        let end = self.ended_at.unwrap_or(now);
        self.stages
            .iter()
            .enumerate()
            .filter(|(_, visit)| stages.contains(&visit.stage))
            .map(|(i, visit)| {
                let until = self.stages.get(i + 1).map_or(end, |next| next.entered_at);
                until.since(visit.entered_at)
            })
            .sum()
    }
}

impl Conversation {
    /// A conversation opened at `at`, with nothing in it yet.
    pub fn new(id: ConversationId, at: Timestamp, owner: Option<CustomerId>) -> Self {
        Self {
            id,
            status: ConversationStatus::Open,
            opened_at: at,
            last_activity_at: at,
            closed_at: None,
            intent: None,
            context: BTreeMap::new(),
            channels: Vec::new(),
            interactions: Vec::new(),
            earlier_interactions: 0,
            transcript: VecDeque::new(),
            last_agent_id: None,
            transfer_count: 0,
            callback_pending: false,
            disposition: None,
            survey: SurveyScores::default(),
            handoff_summary: None,
            repeat_contacts: 0,
            aliases: Vec::new(),
            tokens: Vec::new(),
            owner,
        }
    }

    /// Whether `id` is this conversation's id or one of its aliases.
    pub fn answers_to(&self, id: &ConversationId) -> bool {
        &self.id == id || self.aliases.contains(id)
    }

    /// All its interactions, counted: those kept and the earlier ones.
    pub fn interaction_count(&self) -> u32 {
        let kept = u32::try_from(self.interactions.len()).unwrap_or(u32::MAX);
        self.earlier_interactions.saturating_add(kept)
    }

    /// Whether the conversation is closed (resolved or inactive).
    pub fn is_closed(&self) -> bool {
        self.status != ConversationStatus::Open
    }

    /// The interaction most recently started.
    pub fn latest_interaction(&self) -> Option<&Interaction> {
        self.interactions.iter().max_by_key(|i| i.started_at)
    }

    pub fn interaction(&self, id: &InteractionId) -> Option<&Interaction> {
        self.interactions.iter().find(|i| &i.id == id)
    }
}
