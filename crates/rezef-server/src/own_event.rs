//! The events the server writes itself: a continuation token, an identity link, a merge, a
//! routing decision, an agent's presence. One builder makes them all, so that each says
//! exactly what it is about (a customer or none, a channel, a conversation, a contact) with
//! no placeholder to erase afterwards; `Backbone::append` validates them as an adapter's
//! events are validated before any reaches the log.

use rezef_events::event::SCHEMA_VERSION;
use rezef_events::{
    Channel, ConversationId, CustomerId, CustomerRef, Event, EventId, InteractionId, Payload,
    TenantId, Timestamp,
};

/// An event the server makes, happening now unless told [`OwnEvent::at`].
#[derive(Debug)]
pub struct OwnEvent(Event);

impl OwnEvent {
    /// An event of `tenant`, from `source` (the service that writes it, or the caller's
    /// system it names), about no customer yet.
    pub fn new(tenant: &TenantId, source: &str, payload: Payload) -> Self {
        let id = format!("rezef-{}", uuid::Uuid::now_v7());
        Self(Event {
            event_id: EventId::new(id).expect("a uuid is a valid id"),
            tenant_id: tenant.clone(),
            occurred_at: Timestamp::now(),
            source: source.to_owned(),
            schema_version: SCHEMA_VERSION,
            customer: None,
            conversation_id: None,
            interaction_id: None,
            channel: None,
            forward: None,
            erased: false,
            payload,
        })
    }

    /// About `customer`'s journey.
    #[must_use]
    pub fn about(mut self, customer: &CustomerId) -> Self {
        self.0.customer = Some(CustomerRef::Id(customer.clone()));
        self
    }

    /// On `channel`.
    #[must_use]
    pub fn on(mut self, channel: Channel) -> Self {
        self.0.channel = Some(channel);
        self
    }

    /// In `conversation`.
    #[must_use]
    pub fn in_conversation(mut self, conversation: ConversationId) -> Self {
        self.0.conversation_id = Some(conversation);
        self
    }

    /// About the contact (interaction) `contact`.
    #[must_use]
    pub fn of_contact(mut self, contact: InteractionId) -> Self {
        self.0.interaction_id = Some(contact);
        self
    }

    /// Happening at `at` (routing's clock, or the moment a token's expiry counts from).
    #[must_use]
    pub fn at(mut self, at: Timestamp) -> Self {
        self.0.occurred_at = at;
        self
    }

    pub fn build(self) -> Event {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant() -> TenantId {
        TenantId::new("acme".to_owned()).expect("tenant")
    }

    #[test]
    fn an_event_about_no_customer_has_none_and_validates() {
        let payload = Payload::RoutingConfigChanged {
            version: 1,
            config: String::new(),
        };
        let event = OwnEvent::new(&tenant(), "rezef.routing", payload).build();
        assert_eq!(event.customer, None);
        assert!(event.event_id.as_str().starts_with("rezef-"));
        assert_eq!(event.validate(), Ok(()));
    }

    #[test]
    fn an_event_says_what_it_is_about_and_when() {
        let customer = CustomerId::new("c-1").expect("customer");
        let contact = InteractionId::new("i-1").expect("contact");
        let at = Timestamp::from_unix_nanos(1_700_000_000_000_000_000);
        let payload = Payload::ContactWithdrawn {
            queue_id: "sales".into(),
        };
        let event = OwnEvent::new(&tenant(), "rezef.routing", payload)
            .about(&customer)
            .on(Channel::Voice)
            .of_contact(contact.clone())
            .at(at)
            .build();
        assert_eq!(event.customer, Some(CustomerRef::Id(customer)));
        assert_eq!(event.channel, Some(Channel::Voice));
        assert_eq!(event.interaction_id, Some(contact));
        assert_eq!(event.occurred_at, at);
    }
}
