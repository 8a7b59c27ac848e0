//! Building well-formed events: an adapter states once who and where (tenant, source,
//! customer, channel, interaction) and then only what happened.

use std::time::SystemTime;

use rezef_proto::v1::{self, event::Payload};

/// A fresh event id: a UUIDv7, unique and ordered by time.
pub fn new_event_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

fn now() -> prost_types::Timestamp {
    prost_types::Timestamp::from(SystemTime::now())
}

/// Stamps events with the adapter's context. Cheap to clone per interaction.
#[derive(Debug, Clone)]
pub struct EventFactory {
    tenant: String,
    source: String,
    customer: v1::CustomerRef,
    channel: v1::Channel,
    interaction: String,
    conversation: String,
}

impl EventFactory {
    pub fn new(tenant: impl Into<String>, source: impl Into<String>) -> Self {
        Self {
            tenant: tenant.into(),
            source: source.into(),
            customer: v1::CustomerRef { r#ref: None },
            channel: v1::Channel::Unspecified,
            interaction: String::new(),
            conversation: String::new(),
        }
    }

    /// The customer, by a channel identity. A phone number goes as telephony or the CRM
    /// delivered it (`050-1234567`, `tel:+972-50-123-4567`, `anonymous`): the server reads it
    /// by libphonenumber's rules in the tenant's (or this source's) region, the same rules on
    /// every call, and stores it in E.164 (docs/continuity.md).
    pub fn identity(mut self, kind: v1::IdentityKind, value: impl Into<String>) -> Self {
        self.customer = identity_ref(kind, value);
        self
    }

    /// The customer, by Rezef customer id.
    pub fn customer(mut self, customer_id: impl Into<String>) -> Self {
        self.customer = v1::CustomerRef {
            r#ref: Some(v1::customer_ref::Ref::CustomerId(customer_id.into())),
        };
        self
    }

    /// The channel and the interaction (the call id, the chat session id).
    pub fn on(mut self, channel: v1::Channel, interaction_id: impl Into<String>) -> Self {
        self.channel = channel;
        self.interaction = interaction_id.into();
        self
    }

    /// Places events in a known conversation (e.g. from a continuation link).
    pub fn conversation(mut self, conversation_id: impl Into<String>) -> Self {
        self.conversation = conversation_id.into();
        self
    }

    pub fn customer_ref(&self) -> v1::CustomerRef {
        self.customer.clone()
    }

    /// An event with this payload, a fresh id and the current time.
    pub fn event(&self, payload: Payload) -> v1::Event {
        v1::Event {
            event_id: new_event_id(),
            tenant_id: self.tenant.clone(),
            occurred_at: Some(now()),
            recorded_at: None,
            source: self.source.clone(),
            schema_version: 1,
            customer: Some(self.customer.clone()),
            conversation_id: self.conversation.clone(),
            interaction_id: self.interaction.clone(),
            channel: self.channel as i32,
            forwarded_to_customer_id: String::new(),
            erased: false,
            payload: Some(payload),
        }
    }

    pub fn interaction_started(&self, direction: v1::Direction) -> v1::Event {
        self.event(Payload::InteractionStarted(v1::InteractionStarted {
            direction: direction as i32,
            ..Default::default()
        }))
    }

    pub fn intent_detected(&self, intent: &str, confidence: f32, by: &str) -> v1::Event {
        self.event(Payload::IntentDetected(v1::IntentDetected {
            intent: intent.into(),
            confidence,
            detected_by: by.into(),
        }))
    }

    pub fn message(&self, from: v1::Participant, text: &str) -> v1::Event {
        self.event(Payload::MessageSent(v1::MessageSent {
            from: from as i32,
            text: text.into(),
            ..Default::default()
        }))
    }

    pub fn context(&self, key: &str, value: &str, sensitive: bool) -> v1::Event {
        self.event(Payload::ContextSet(v1::ContextSet {
            key: key.into(),
            value: value.into(),
            sensitive,
        }))
    }

    pub fn identified(
        &self,
        method: v1::VerificationMethod,
        assurance: v1::AssuranceLevel,
        identities: Vec<v1::ChannelIdentity>,
    ) -> v1::Event {
        self.event(Payload::CustomerIdentified(v1::CustomerIdentified {
            method: method as i32,
            assurance: assurance as i32,
            identities,
            expires_at: None,
        }))
    }
}

/// A customer reference by channel identity.
pub fn identity_ref(kind: v1::IdentityKind, value: impl Into<String>) -> v1::CustomerRef {
    v1::CustomerRef {
        r#ref: Some(v1::customer_ref::Ref::Identity(v1::ChannelIdentity {
            kind: kind as i32,
            value: value.into(),
            network: String::new(),
        })),
    }
}
