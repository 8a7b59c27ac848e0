//! What the backbone knows of a customer when a contact of theirs is routed: the intent of
//! the conversation it continues, the language they prefer (`Journey.attributes`) or last
//! used, their tier, the agent it may go back to, whether it is a repeat contact, and how
//! long the customer has been known. It fills what the `RouteInteraction` request leaves out.
//!
//! Pure (a journey in, the facts out), so that each rule is tested on a journey folded from
//! events. Affinity is the rule with a trap: the conversation's last agent is not the one to
//! go back to when that agent handed the contact on (a transfer to another queue or agent):
//! sending it back would undo the transfer.

use rezef_events::event::EndReason;
use rezef_events::journey::{Conversation, Interaction, Stage};
use rezef_events::policy::ContinuityPolicy;
use rezef_events::resume::{Caller, resume};
use rezef_events::{AgentId, Channel, InteractionId, Journey, Timestamp};

/// What the journey says of a contact arriving now.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Known {
    pub intent: Option<String>,
    pub language: Option<String>,
    /// The agent the contact goes back to, if any (the engine's `preferred_agent`).
    pub affinity: Option<AgentId>,
    pub repeat: bool,
    pub customer_since: Option<Timestamp>,
    /// As recorded on the customer by `CustomerAttributesSet`.
    pub tier: Option<String>,
}

impl Known {
    /// What `journey` says of a contact arriving on `channel` at `now`.
    pub fn of(
        journey: &Journey,
        interaction: &InteractionId,
        channel: Channel,
        now: Timestamp,
        policy: &ContinuityPolicy,
    ) -> Self {
        let answer = resume(
            journey,
            Caller::Contact(interaction),
            channel,
            now,
            policy,
            None,
        );
        let conversation = answer.conversation.map(|(c, _)| c);
        Self {
            intent: conversation.and_then(|c| c.intent.as_ref().map(|i| i.intent.clone())),
            language: (journey.attributes.preferred_language.clone())
                .or_else(|| answer.language.map(str::to_owned)),
            affinity: conversation.and_then(affinity),
            repeat: conversation.is_some_and(|c| c.repeat_contacts > 0),
            customer_since: Some(journey.first_seen_at),
            tier: journey.attributes.tier.clone(),
        }
    }
}

/// Whether the journey says the interaction is over (the customer left, or it ended):
/// nothing to route any more.
pub fn has_ended(journey: &Journey, interaction: &InteractionId) -> bool {
    journey
        .conversations
        .iter()
        .flat_map(|c| &c.interactions)
        .any(|i| &i.id == interaction && matches!(i.stage, Stage::Abandoned | Stage::Ended))
}

/// The conversation's last agent, unless they handed the contact on.
fn affinity(conversation: &Conversation) -> Option<AgentId> {
    let agent = conversation.last_agent_id.as_ref()?;
    let theirs = conversation
        .interactions
        .iter()
        .rev()
        .find(|i| i.agent_id.as_ref() == Some(agent));
    match theirs {
        Some(interaction) if handed_on(interaction) => None,
        _ => Some(agent.clone()),
    }
}

/// Whether the interaction left its agent by a transfer: it ended as transferred out, or
/// went back to a queue (or was offered to someone else) after the agent had it.
fn handed_on(interaction: &Interaction) -> bool {
    if interaction.end_reason == Some(EndReason::TransferredOut) {
        return true;
    }
    let Some(connected) = interaction
        .stages
        .iter()
        .rposition(|visit| visit.stage == Stage::Connected)
    else {
        return false;
    };
    interaction.stages[connected..]
        .iter()
        .any(|visit| matches!(visit.stage, Stage::Queued | Stage::Offered))
}

#[cfg(test)]
mod tests {
    use rezef_events::event::Payload;
    use rezef_events::testing::EventBuilder;
    use rezef_events::{CustomerRef, Event};

    use super::*;

    /// The journey of the events, in order.
    fn journey_of(events: &[Event]) -> Journey {
        let Some(CustomerRef::Identity(identity)) = &events[0].customer else {
            panic!("the first event names an identity");
        };
        let customer = rezef_events::fold::customer_id_for(&events[0].tenant_id, identity);
        let mut journey =
            Journey::new(events[0].tenant_id.clone(), customer, events[0].occurred_at);
        for (offset, event) in events.iter().enumerate() {
            journey.apply(offset as u64, event);
        }
        journey
    }

    /// What routing knows of the journey's latest interaction.
    fn known_of(journey: &Journey) -> Known {
        let open = journey.conversations.last().expect("a conversation");
        let interaction = &open.interactions.last().expect("an interaction").id;
        Known::of(
            journey,
            interaction,
            Channel::Voice,
            journey.last_seen_at,
            &ContinuityPolicy::default(),
        )
    }

    fn transferred(to_queue: &str) -> Payload {
        Payload::ContactTransferred {
            from_agent_id: AgentId::new("dana").ok(),
            to_agent_id: None,
            to_queue_id: to_queue.into(),
            reason: "billing question".into(),
        }
    }

    #[test]
    fn a_returning_contact_goes_back_to_the_agent_who_had_it() {
        // Given a call dana answered,
        let mut call = EventBuilder::phone("acme", "+972500000001");
        let events = [
            call.started(),
            call.intent("billing.dispute", 0.9),
            call.assigned("dana"),
        ];
        // when the customer comes back,
        let known = known_of(&journey_of(&events));
        // then dana is the affinity, with what the conversation says.
        assert_eq!(known.affinity.as_ref().map(AgentId::as_str), Some("dana"));
        assert_eq!(known.intent.as_deref(), Some("billing.dispute"));
    }

    #[test]
    fn the_agent_who_transferred_the_contact_out_is_not_its_affinity() {
        // Given a call dana answered and transferred to billing,
        let mut call = EventBuilder::phone("acme", "+972500000002");
        let events = [
            call.started(),
            call.assigned("dana"),
            call.event(transferred("billing")),
        ];
        // when it is routed,
        let known = known_of(&journey_of(&events));
        // then it does not go back to dana.
        assert_eq!(known.affinity, None);

        // Given the same, where the call then ended as transferred out,
        let mut call = EventBuilder::phone("acme", "+972500000003");
        let events = [
            call.started(),
            call.assigned("dana"),
            call.event(Payload::InteractionEnded {
                reason: Some(EndReason::TransferredOut),
            }),
        ];
        // then neither.
        assert_eq!(known_of(&journey_of(&events)).affinity, None);
    }

    #[test]
    fn an_interaction_the_customer_left_or_that_ended_has_ended() {
        let mut call = EventBuilder::phone("acme", "+972500000005");
        let id = InteractionId::new("call").ok();
        let mut events = vec![call.started(), call.intent("billing.dispute", 0.9)];
        let live = journey_of(&events);
        let interaction = live.conversations[0].interactions[0].id.clone();
        assert!(!has_ended(&live, &interaction));
        events.push(call.event(Payload::ContactAbandoned {
            point: rezef_events::event::AbandonPoint::Queue,
        }));
        assert!(has_ended(&journey_of(&events), &interaction));
        assert!(id.is_some_and(|other| !has_ended(&journey_of(&events), &other)));
    }

    #[test]
    fn the_agent_a_transfer_reached_is_the_affinity() {
        // Given a call dana transferred to omar, who answered it,
        let mut call = EventBuilder::phone("acme", "+972500000004");
        let events = [
            call.started(),
            call.assigned("dana"),
            call.event(Payload::ContactTransferred {
                from_agent_id: AgentId::new("dana").ok(),
                to_agent_id: AgentId::new("omar").ok(),
                to_queue_id: String::new(),
                reason: String::new(),
            }),
            call.assigned("omar"),
        ];
        // when the customer comes back, then omar is the affinity.
        let known = known_of(&journey_of(&events));
        assert_eq!(known.affinity.as_ref().map(AgentId::as_str), Some("omar"));
    }
}
