//! Journey state: what the fold makes of a customer's events. It is a projection, always
//! rebuildable from the log, so its stored form (`postcard`) carries no compatibility promise:
//! a change of these types bumps `STATE_FORMAT` and the store is rebuilt.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::event::{
    AbandonPoint, AssuranceLevel, Channel, Direction, EndReason, Participant, VerificationMethod,
};
use crate::identity::ChannelIdentity;
use crate::ids::{AgentId, ConversationId, CustomerId, InteractionId, TenantId};
use crate::time::Timestamp;

/// The version of the stored projection's layout (these types and the store's keys). Bump
/// it when either changes: stores of another version refuse to open until rebuilt.
pub const STATE_FORMAT: u32 = 2;

/// Everything known about one customer's journey across channels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Journey {
    pub tenant_id: TenantId,
    pub customer_id: CustomerId,
    pub identities: Vec<LinkedIdentity>,
    /// Oldest first.
    pub conversations: Vec<Conversation>,
    pub last_agent_id: Option<AgentId>,
    pub counters: Counters,
    pub first_seen_at: Timestamp,
    pub last_seen_at: Timestamp,
    /// The log offset of the last event applied; events at or below it are not applied again.
    pub last_event_offset: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkedIdentity {
    pub identity: ChannelIdentity,
    pub first_seen_at: Timestamp,
    pub verification: Option<Verification>,
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
    Resolved,
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
    pub interactions: Vec<Interaction>,
    /// The latest `TRANSCRIPT_LEN` messages, oldest first.
    pub transcript: VecDeque<TranscriptEntry>,
    pub last_agent_id: Option<AgentId>,
    pub transfer_count: u32,
    pub callback_pending: bool,
    pub disposition: Option<String>,
    pub survey: SurveyScores,
    pub handoff_summary: Option<String>,
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
}

impl Journey {
    /// A journey with nothing in it yet.
    pub fn new(tenant_id: TenantId, customer_id: CustomerId, at: Timestamp) -> Self {
        Self {
            tenant_id,
            customer_id,
            identities: Vec::new(),
            conversations: Vec::new(),
            last_agent_id: None,
            counters: Counters::default(),
            first_seen_at: at,
            last_seen_at: at,
            last_event_offset: None,
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
    }

    pub fn conversation(&self, id: &ConversationId) -> Option<&Conversation> {
        self.conversations.iter().find(|c| &c.id == id)
    }

    pub fn identity(&self, identity: &ChannelIdentity) -> Option<&LinkedIdentity> {
        self.identities.iter().find(|l| &l.identity == identity)
    }
}

impl Conversation {
    pub fn interaction(&self, id: &InteractionId) -> Option<&Interaction> {
        self.interactions.iter().find(|i| &i.id == id)
    }
}
