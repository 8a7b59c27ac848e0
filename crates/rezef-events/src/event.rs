//! The event model: one fact that happened in a customer's interaction, in the past tense.
//!
//! These are the domain twins of `rezef.v1.Event`: the same facts, with every id validated,
//! every identity normalised and every enum closed. The gRPC edge converts into them; the
//! log stores them (see `codec`); the fold consumes them.

use serde::{Deserialize, Serialize};

use crate::handover::{Forward, Handover};
use crate::identity::ChannelIdentity;
use crate::ids::{AgentId, ConversationId, CustomerId, EventId, InteractionId, TenantId};
use crate::routed::RoutingInput;
use crate::time::Timestamp;

/// The current event schema version.
pub const SCHEMA_VERSION: u32 = 1;

/// One fact about a customer's interaction (or an agent's presence).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub event_id: EventId,
    pub tenant_id: TenantId,
    pub occurred_at: Timestamp,
    /// The adapter that published it.
    pub source: String,
    pub schema_version: u32,
    /// Whom it is about; `None` only for agent events.
    pub customer: Option<CustomerRef>,
    pub conversation_id: Option<ConversationId>,
    pub interaction_id: Option<InteractionId>,
    pub channel: Option<Channel>,
    /// Set when a partition moved the event on to the journey it belongs to (scale-out only;
    /// see `handover`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward: Option<Forward>,
    /// Its customer was forgotten: the personal values (`personal`) were sealed under a key
    /// that is destroyed, and read erased. Set when a record is read, never stored.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub erased: bool,
    pub payload: Payload,
}

impl Event {
    /// Every identity the event shows or proves: the reference it names the customer by,
    /// the one an interaction started with, the ones a verification proved.
    pub fn identities(&self) -> impl Iterator<Item = &ChannelIdentity> {
        let shown = match &self.customer {
            Some(CustomerRef::Identity(identity)) => Some(identity),
            _ => None,
        };
        let started_with = match &self.payload {
            Payload::InteractionStarted { identity, .. } => identity.as_ref(),
            _ => None,
        };
        let proven: &[ChannelIdentity] = match &self.payload {
            Payload::CustomerIdentified { identities, .. } => identities,
            _ => &[],
        };
        shown.into_iter().chain(started_with).chain(proven)
    }
}

/// Whom an event is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CustomerRef {
    Id(CustomerId),
    Identity(ChannelIdentity),
}

macro_rules! closed_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),* }

        /// The snake_case name, as in configuration and JSON.
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                match serde_json::to_value(self) {
                    Ok(serde_json::Value::String(name)) => f.write_str(&name),
                    _ => write!(f, "{self:?}"),
                }
            }
        }
    };
}

closed_enum!(
    /// The channels a customer reaches the company through.
    Channel { Voice, Ivr, Webchat, Video, Bot, Email, Sms, Whatsapp, Social, App, WebForm, Branch, Callback }
);
closed_enum!(Direction {
    Inbound,
    Outbound,
    Proactive
});
closed_enum!(StepOutcome {
    Continued,
    Contained,
    Failed,
    Escalated
});
closed_enum!(VerificationMethod {
    CallerId,
    Knowledge,
    OneTimeCode,
    Pin,
    AuthenticatedSession,
    VoiceBiometrics,
    Document
});
closed_enum!(
    /// Ordered: `Low < Substantial < High`.
    AssuranceLevel { Low, Substantial, High }
);
closed_enum!(Participant {
    Customer,
    Agent,
    Bot,
    System
});
closed_enum!(HandoffReason {
    CustomerAsked,
    BotFailed,
    BotCannotHelp,
    Policy
});
closed_enum!(AbandonPoint {
    Ivr,
    Bot,
    Queue,
    Callback
});
closed_enum!(EndReason {
    Completed,
    CustomerLeft,
    AgentEnded,
    TransferredOut,
    TimedOut,
    Failed
});
closed_enum!(RoutingTarget { Bot, Agent, Queue });
closed_enum!(Presence {
    Available,
    Away,
    Busy,
    AfterContactWork,
    Offline
});

impl Channel {
    /// The channel of a snake_case name (`"voice"`, `"web_form"`), as in configuration.
    pub fn from_name(name: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(name.to_owned())).ok()
    }

    /// Channels where the customer starts in self service (a menu or a bot).
    pub fn is_self_service(self) -> bool {
        matches!(self, Self::Ivr | Self::Bot)
    }
}

/// A file sent with a message, by reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub uri: String,
    pub content_type: String,
    pub name: String,
    pub size_bytes: u64,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Payload {
    InteractionStarted {
        direction: Direction,
        identity: Option<ChannelIdentity>,
        entry_point: String,
        language: Option<String>,
        /// A token another channel gave the customer (see `ContinuationTokenIssued`): the
        /// interaction continues that token's conversation.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        continuation_token: Option<String>,
    },
    SelfServiceStepCompleted {
        step_id: String,
        prompt: String,
        customer_input: String,
        outcome: Option<StepOutcome>,
    },
    IntentDetected {
        intent: String,
        confidence: f32,
        detected_by: String,
    },
    CustomerIdentified {
        method: VerificationMethod,
        assurance: AssuranceLevel,
        identities: Vec<ChannelIdentity>,
        expires_at: Option<Timestamp>,
    },
    MessageSent {
        from: Participant,
        sender_id: String,
        text: String,
        attachments: Vec<Attachment>,
        /// The adapter marked it sensitive (a code, a password): it is served masked
        /// (see `mask`). Absent in records written before it existed: false.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        sensitive: bool,
    },
    ContextSet {
        key: String,
        value: String,
        sensitive: bool,
    },
    ContactQueued {
        queue_id: String,
        priority: u32,
        required_skills: Vec<String>,
        language: Option<String>,
    },
    ContactOffered {
        agent_id: AgentId,
        queue_id: String,
    },
    ContactAssigned {
        agent_id: AgentId,
        queue_id: String,
    },
    ContactTransferred {
        from_agent_id: Option<AgentId>,
        to_agent_id: Option<AgentId>,
        to_queue_id: String,
        reason: String,
    },
    HandoffRequested {
        bot_id: String,
        reason: HandoffReason,
        target_queue_id: String,
        summary: String,
    },
    CallbackRequested {
        callback_to: ChannelIdentity,
        preferred_at: Option<Timestamp>,
        queue_id: String,
        original_arrival_at: Option<Timestamp>,
    },
    CallbackCompleted {
        reached: bool,
        agent_id: Option<AgentId>,
    },
    ContactAbandoned {
        point: AbandonPoint,
    },
    InteractionEnded {
        reason: Option<EndReason>,
    },
    WrapUpRecorded {
        agent_id: Option<AgentId>,
        disposition: String,
        need_resolved: bool,
        notes: String,
    },
    SurveyAnswered {
        csat: Option<u32>,
        nps: Option<u32>,
        effort: Option<u32>,
        comment: String,
    },
    AgentPresenceChanged {
        agent_id: AgentId,
        presence: Presence,
        custom_status: String,
    },
    /// Someone decided that `absorbed` is the same person as the event's customer (who
    /// survives). Automatic merges come from `CustomerIdentified` instead.
    CustomersMerged {
        absorbed: CustomerId,
        reason: String,
        requested_by: String,
    },
    /// Undoes a merge: `absorbed` becomes a customer of its own again, with what it brought.
    CustomersUnmerged {
        absorbed: CustomerId,
        reason: String,
        requested_by: String,
    },
    /// A token the customer can give another channel to continue the event's conversation.
    ContinuationTokenIssued {
        token: String,
        expires_at: Timestamp,
        /// The channels it may be used on; empty: any.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        redeem_on: Vec<Channel>,
    },
    /// Routing decided who takes the contact, and why.
    RoutingDecided {
        target: RoutingTarget,
        bot_id: String,
        queue_id: String,
        agent_id: Option<AgentId>,
        rule: String,
        step: u32,
        priority: f64,
        candidates: Vec<AgentId>,
        estimated_wait_ms: Option<u64>,
        offer_callback: bool,
        config_version: u64,
        /// What the contact was routed on, so that routing starting again routes it as it
        /// was (`crate::routed`); `None` in decisions logged before it was recorded.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        input: Option<Box<RoutingInput>>,
        /// What the engine saw when it chose among agents (`crate::explained`); `None` for a
        /// bot and in decisions logged before it was recorded.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        explanation: Option<Box<crate::explained::Explanation>>,
    },
    /// Routing withdrew the contact by request (`WithdrawContact`): it left its queue, and
    /// an agent's offer of it.
    ContactWithdrawn {
        queue_id: String,
    },
    /// A tenant's routing configuration was replaced (no customer).
    RoutingConfigChanged {
        version: u64,
        config: String,
    },
    /// A message between partitions of a partitioned log, written by projectors only.
    Handover(Handover),
    /// What routing uses of the customer: their tier and preferred language (`None`:
    /// unchanged, empty: cleared).
    CustomerAttributesSet {
        tier: Option<String>,
        preferred_language: Option<String>,
    },
    /// An agent holding the contact brought another in to consult, the customer on hold.
    ConsultStarted {
        agent_id: AgentId,
        consulted_agent_id: AgentId,
    },
    /// The consult ended (the contact stays with `agent_id`, unless a transfer follows).
    ConsultEnded {
        agent_id: AgentId,
        consulted_agent_id: AgentId,
    },
    /// An auditor was served the customer's sensitive values (or, with no customer, a
    /// partition's): who, through which call, and for a replay which offsets. Written by the
    /// server, never published.
    SensitiveRevealed {
        key_id: String,
        method: String,
        from_offset: Option<u64>,
        to_offset: Option<u64>,
    },
    /// The customer was forgotten: the keys their personal values were sealed under
    /// (`personal`) are destroyed. Written by the server, never published.
    CustomerForgotten {
        /// The keys' ids, 32 lower-case hex digits each.
        key_ids: Vec<String>,
        requested_by: String,
        reason: String,
    },
}

/// Every payload's name as in the protobuf `oneof`, once: [`Payload::name`] gives them, and
/// the record crate names a protobuf payload with them before it is a domain one.
pub mod payload_names {
    pub const INTERACTION_STARTED: &str = "interaction_started";
    pub const SELF_SERVICE_STEP_COMPLETED: &str = "self_service_step_completed";
    pub const INTENT_DETECTED: &str = "intent_detected";
    pub const CUSTOMER_IDENTIFIED: &str = "customer_identified";
    pub const MESSAGE_SENT: &str = "message_sent";
    pub const CONTEXT_SET: &str = "context_set";
    pub const CONTACT_QUEUED: &str = "contact_queued";
    pub const CONTACT_OFFERED: &str = "contact_offered";
    pub const CONTACT_ASSIGNED: &str = "contact_assigned";
    pub const CONTACT_TRANSFERRED: &str = "contact_transferred";
    pub const HANDOFF_REQUESTED: &str = "handoff_requested";
    pub const CALLBACK_REQUESTED: &str = "callback_requested";
    pub const CALLBACK_COMPLETED: &str = "callback_completed";
    pub const CONTACT_ABANDONED: &str = "contact_abandoned";
    pub const INTERACTION_ENDED: &str = "interaction_ended";
    pub const WRAP_UP_RECORDED: &str = "wrap_up_recorded";
    pub const SURVEY_ANSWERED: &str = "survey_answered";
    pub const AGENT_PRESENCE_CHANGED: &str = "agent_presence_changed";
    pub const CUSTOMERS_MERGED: &str = "customers_merged";
    pub const CUSTOMERS_UNMERGED: &str = "customers_unmerged";
    pub const CONTINUATION_TOKEN_ISSUED: &str = "continuation_token_issued";
    pub const ROUTING_DECIDED: &str = "routing_decided";
    pub const CONTACT_WITHDRAWN: &str = "contact_withdrawn";
    pub const ROUTING_CONFIG_CHANGED: &str = "routing_config_changed";
    pub const HANDOVER: &str = "handover";
    pub const CUSTOMER_ATTRIBUTES_SET: &str = "customer_attributes_set";
    pub const CONSULT_STARTED: &str = "consult_started";
    pub const CONSULT_ENDED: &str = "consult_ended";
    pub const SENSITIVE_REVEALED: &str = "sensitive_revealed";
    pub const CUSTOMER_FORGOTTEN: &str = "customer_forgotten";
}

impl Payload {
    /// The payload's name as in the protobuf `oneof` (`interaction_started`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Self::InteractionStarted { .. } => payload_names::INTERACTION_STARTED,
            Self::SelfServiceStepCompleted { .. } => payload_names::SELF_SERVICE_STEP_COMPLETED,
            Self::IntentDetected { .. } => payload_names::INTENT_DETECTED,
            Self::CustomerIdentified { .. } => payload_names::CUSTOMER_IDENTIFIED,
            Self::MessageSent { .. } => payload_names::MESSAGE_SENT,
            Self::ContextSet { .. } => payload_names::CONTEXT_SET,
            Self::ContactQueued { .. } => payload_names::CONTACT_QUEUED,
            Self::ContactOffered { .. } => payload_names::CONTACT_OFFERED,
            Self::ContactAssigned { .. } => payload_names::CONTACT_ASSIGNED,
            Self::ContactTransferred { .. } => payload_names::CONTACT_TRANSFERRED,
            Self::HandoffRequested { .. } => payload_names::HANDOFF_REQUESTED,
            Self::CallbackRequested { .. } => payload_names::CALLBACK_REQUESTED,
            Self::CallbackCompleted { .. } => payload_names::CALLBACK_COMPLETED,
            Self::ContactAbandoned { .. } => payload_names::CONTACT_ABANDONED,
            Self::InteractionEnded { .. } => payload_names::INTERACTION_ENDED,
            Self::WrapUpRecorded { .. } => payload_names::WRAP_UP_RECORDED,
            Self::SurveyAnswered { .. } => payload_names::SURVEY_ANSWERED,
            Self::AgentPresenceChanged { .. } => payload_names::AGENT_PRESENCE_CHANGED,
            Self::CustomersMerged { .. } => payload_names::CUSTOMERS_MERGED,
            Self::CustomersUnmerged { .. } => payload_names::CUSTOMERS_UNMERGED,
            Self::ContinuationTokenIssued { .. } => payload_names::CONTINUATION_TOKEN_ISSUED,
            Self::RoutingDecided { .. } => payload_names::ROUTING_DECIDED,
            Self::ContactWithdrawn { .. } => payload_names::CONTACT_WITHDRAWN,
            Self::RoutingConfigChanged { .. } => payload_names::ROUTING_CONFIG_CHANGED,
            Self::Handover(_) => payload_names::HANDOVER,
            Self::CustomerAttributesSet { .. } => payload_names::CUSTOMER_ATTRIBUTES_SET,
            Self::ConsultStarted { .. } => payload_names::CONSULT_STARTED,
            Self::ConsultEnded { .. } => payload_names::CONSULT_ENDED,
            Self::SensitiveRevealed { .. } => payload_names::SENSITIVE_REVEALED,
            Self::CustomerForgotten { .. } => payload_names::CUSTOMER_FORGOTTEN,
        }
    }

    /// Whether the event means its contact no longer needs an agent, and how: routing
    /// withdraws such a contact from its queue and from an agent's offer.
    pub fn contact_end(&self) -> Option<ContactEnd> {
        match self {
            Self::ContactAbandoned { .. } => Some(ContactEnd::Abandoned),
            Self::InteractionEnded { .. } => Some(ContactEnd::Ended),
            Self::SelfServiceStepCompleted {
                outcome: Some(StepOutcome::Contained),
                ..
            } => Some(ContactEnd::Contained),
            _ => None,
        }
    }

    /// Whether the payload concerns a customer (all but agent presence).
    pub fn is_customer_event(&self) -> bool {
        !matches!(
            self,
            Self::AgentPresenceChanged { .. } | Self::RoutingConfigChanged { .. }
        )
    }

    /// Whether the event needs a channel: a customer event, unless it changes who the customer
    /// is or what is known of them rather than telling what happened on a channel.
    pub fn needs_channel(&self) -> bool {
        self.is_customer_event()
            && !self.is_about_the_record()
            && !matches!(self, Self::CustomerAttributesSet { .. })
    }

    /// Whether the payload concerns the customer's record rather than anything the customer
    /// did: a change of who they are, or an auditor seeing it. The journey's story (counters,
    /// when the customer was last seen, conversations) stays as it was.
    pub fn is_about_the_record(&self) -> bool {
        self.is_identity_change()
            || matches!(
                self,
                Self::SensitiveRevealed { .. } | Self::CustomerForgotten { .. }
            )
    }

    /// Whether the payload changes who the customer is rather than what they did.
    pub fn is_identity_change(&self) -> bool {
        matches!(
            self,
            Self::CustomersMerged { .. } | Self::CustomersUnmerged { .. } | Self::Handover(_)
        )
    }

    /// Whether the payload describes one interaction and so needs `interaction_id`.
    pub fn needs_interaction(&self) -> bool {
        matches!(
            self,
            Self::InteractionStarted { .. }
                | Self::SelfServiceStepCompleted { .. }
                | Self::ContactQueued { .. }
                | Self::ContactOffered { .. }
                | Self::ContactAssigned { .. }
                | Self::ContactTransferred { .. }
                | Self::ConsultStarted { .. }
                | Self::ConsultEnded { .. }
                | Self::HandoffRequested { .. }
                | Self::CallbackRequested { .. }
                | Self::CallbackCompleted { .. }
                | Self::ContactAbandoned { .. }
                | Self::InteractionEnded { .. }
                | Self::RoutingDecided { .. }
                | Self::ContactWithdrawn { .. }
        )
    }
}

/// How a contact came to need no agent any more ([`Payload::contact_end`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactEnd {
    /// The customer hung up or left (`ContactAbandoned`).
    Abandoned,
    /// The interaction ended, for any reason (`InteractionEnded`).
    Ended,
    /// Self service resolved the need (`SelfServiceStepCompleted`, `CONTAINED`).
    Contained,
}

impl ContactEnd {
    /// What an agent whose offer is withdrawn is told.
    pub fn why(self) -> &'static str {
        match self {
            Self::Abandoned => "the customer left",
            Self::Ended => "the interaction ended",
            Self::Contained => "self service resolved the need",
        }
    }
}
