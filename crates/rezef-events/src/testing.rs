//! A builder of well-formed events for tests (this crate's and others', behind the
//! `testing` feature). Each event gets the next id (`e-1`, `e-2`, ...) and a clock one
//! second later than the previous one, so sequences are realistic and deterministic.

use crate::event::{
    AbandonPoint, AssuranceLevel, Channel, CustomerRef, Direction, EndReason, Event, Participant,
    Payload, Presence, SCHEMA_VERSION, VerificationMethod,
};
use crate::identity::{ChannelIdentity, IdentityKind};
use crate::ids::{AgentId, ConversationId, CustomerId, EventId, InteractionId, TenantId};
use crate::time::Timestamp;

mod journeys;
pub use journeys::rich_journey;

/// Builds events for one customer on one channel at a time.
#[derive(Debug, Clone)]
pub struct EventBuilder {
    tenant: TenantId,
    customer: CustomerRef,
    channel: Channel,
    interaction: InteractionId,
    conversation: Option<ConversationId>,
    prefix: String,
    clock: Timestamp,
    seq: u64,
}

fn must<T>(value: Result<T, impl std::fmt::Debug>) -> T {
    value.expect("test inputs are valid")
}

impl EventBuilder {
    pub fn new(tenant: &str, customer: CustomerRef) -> Self {
        Self {
            tenant: must(TenantId::new(tenant)),
            customer,
            channel: Channel::Webchat,
            interaction: must(InteractionId::new("i-1")),
            conversation: None,
            prefix: "e".into(),
            clock: Timestamp::from_unix_millis(1_700_000_000_000),
            seq: 0,
        }
    }

    /// An anonymous web-chat visitor.
    pub fn visitor(tenant: &str, visitor_id: &str) -> Self {
        let identity = must(ChannelIdentity::new(
            IdentityKind::ChatVisitor,
            visitor_id,
            None,
        ));
        Self::new(tenant, CustomerRef::Identity(identity))
    }

    /// A caller known by phone number.
    pub fn phone(tenant: &str, number: &str) -> Self {
        let identity = must(ChannelIdentity::phone(number));
        Self::new(tenant, CustomerRef::Identity(identity)).on(Channel::Voice, "call-1")
    }

    /// A known customer id.
    pub fn customer(tenant: &str, customer_id: &str) -> Self {
        Self::new(tenant, CustomerRef::Id(must(CustomerId::new(customer_id))))
    }

    /// Moves to another channel and interaction.
    pub fn on(mut self, channel: Channel, interaction_id: &str) -> Self {
        self.channel = channel;
        self.interaction = must(InteractionId::new(interaction_id));
        self
    }

    /// Names the conversation explicitly.
    pub fn in_conversation(mut self, conversation_id: &str) -> Self {
        self.conversation = Some(must(ConversationId::new(conversation_id)));
        self
    }

    /// Event ids start with `prefix` (to keep several builders' ids apart).
    pub fn ids(mut self, prefix: &str) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The clock starts at `clock` (the next event happens a second later).
    pub fn starting_at(mut self, clock: Timestamp) -> Self {
        self.clock = clock;
        self
    }

    /// The builder's clock: when its latest event happened.
    pub fn clock(&self) -> Timestamp {
        self.clock
    }

    /// Moves the clock forward (the next event happens `duration` plus a second later).
    pub fn wait(&mut self, duration: std::time::Duration) {
        self.clock = self.clock.plus(duration);
    }

    /// The next event with this payload.
    pub fn event(&mut self, payload: Payload) -> Event {
        self.seq += 1;
        self.clock = Timestamp::from_unix_nanos(self.clock.unix_nanos() + 1_000_000_000);
        Event {
            event_id: must(EventId::new(format!("{}-{}", self.prefix, self.seq))),
            tenant_id: self.tenant.clone(),
            occurred_at: self.clock,
            source: "test".into(),
            schema_version: SCHEMA_VERSION,
            customer: Some(self.customer.clone()),
            conversation_id: self.conversation.clone(),
            interaction_id: Some(self.interaction.clone()),
            channel: Some(self.channel),
            forward: None,
            erased: false,
            payload,
        }
    }

    /// Alias of [`event`](Self::event) for one-off events.
    pub fn with_payload(&mut self, payload: Payload) -> Event {
        self.event(payload)
    }

    pub fn started(&mut self) -> Event {
        self.event(Payload::InteractionStarted {
            direction: Direction::Inbound,
            identity: None,
            entry_point: String::new(),
            language: None,
            continuation_token: None,
        })
    }

    /// Starts the interaction with a continuation token another channel gave.
    pub fn started_with_token(&mut self, token: &str) -> Event {
        self.event(Payload::InteractionStarted {
            direction: Direction::Inbound,
            identity: None,
            entry_point: String::new(),
            language: None,
            continuation_token: Some(token.into()),
        })
    }

    /// Wrap-up: the agent says whether the need was resolved.
    pub fn wrapped_up(&mut self, resolved: bool) -> Event {
        self.event(Payload::WrapUpRecorded {
            agent_id: None,
            disposition: "done".into(),
            need_resolved: resolved,
            notes: String::new(),
        })
    }

    pub fn intent(&mut self, intent: &str, confidence: f32) -> Event {
        self.event(Payload::IntentDetected {
            intent: intent.into(),
            confidence,
            detected_by: "bot".into(),
        })
    }

    pub fn context(&mut self, key: &str, value: &str) -> Event {
        self.event(Payload::ContextSet {
            key: key.into(),
            value: value.into(),
            sensitive: false,
        })
    }

    pub fn message(&mut self, from: Participant, text: &str) -> Event {
        self.event(Payload::MessageSent {
            from,
            sender_id: String::new(),
            text: text.into(),
            attachments: Vec::new(),
            sensitive: false,
        })
    }

    /// The customer proves, by a one-time code, that `identities` are theirs.
    pub fn identified(&mut self, identities: Vec<ChannelIdentity>) -> Event {
        self.event(Payload::CustomerIdentified {
            method: VerificationMethod::OneTimeCode,
            assurance: AssuranceLevel::Substantial,
            identities,
            expires_at: None,
        })
    }

    pub fn queued(&mut self, queue: &str) -> Event {
        self.event(Payload::ContactQueued {
            queue_id: queue.into(),
            priority: 1,
            required_skills: Vec::new(),
            language: None,
        })
    }

    pub fn abandoned(&mut self, point: AbandonPoint) -> Event {
        self.event(Payload::ContactAbandoned { point })
    }

    /// The interaction ended as completed.
    pub fn ended(&mut self) -> Event {
        self.event(Payload::InteractionEnded {
            reason: Some(EndReason::Completed),
        })
    }

    pub fn assigned(&mut self, agent: &str) -> Event {
        self.event(Payload::ContactAssigned {
            agent_id: must(AgentId::new(agent)),
            queue_id: String::new(),
        })
    }

    /// An agent event (no customer).
    pub fn presence(&mut self, agent: &str) -> Event {
        let mut event = self.event(Payload::AgentPresenceChanged {
            agent_id: must(AgentId::new(agent)),
            presence: Presence::Available,
            custom_status: String::new(),
        });
        event.customer = None;
        event.interaction_id = None;
        event
    }
}
