//! Which events a replay keeps besides its offsets and times: those of one conversation,
//! those on one channel (`ReplayHistoryRequest.conversation_id`, `.channel`).

use rezef_events::journey::Conversation;
use rezef_events::{Channel, ConversationId, Event, InteractionId};

/// What a replay keeps; the default keeps every event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Filter {
    pub conversation: Option<OfConversation>,
    pub channel: Option<Channel>,
}

/// A conversation as its events name it: its ids, and its contacts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OfConversation {
    ids: Vec<ConversationId>,
    interactions: Vec<InteractionId>,
}

impl OfConversation {
    /// The conversation as the journey keeps it: its id, the ids joined into it, the
    /// interactions it lists.
    pub fn of(conversation: &Conversation) -> Self {
        let ids = std::iter::once(&conversation.id).chain(&conversation.aliases);
        Self {
            ids: ids.cloned().collect(),
            interactions: (conversation.interactions.iter())
                .map(|interaction| interaction.id.clone())
                .collect(),
        }
    }

    fn holds(&self, event: &Event) -> bool {
        event
            .conversation_id
            .as_ref()
            .is_some_and(|id| self.ids.contains(id))
            || (event.interaction_id.as_ref()).is_some_and(|id| self.interactions.contains(id))
    }
}

impl Filter {
    pub fn admits(&self, event: &Event) -> bool {
        self.channel
            .is_none_or(|channel| event.channel == Some(channel))
            && (self.conversation.as_ref()).is_none_or(|conversation| conversation.holds(event))
    }
}

#[cfg(test)]
mod tests {
    use rezef_events::CustomerId;
    use rezef_events::journey::Journey;
    use rezef_events::testing::EventBuilder;

    use super::*;

    fn folded(events: &[Event]) -> Journey {
        let customer = CustomerId::new("cus-1").expect("valid");
        let first = &events[0];
        let mut journey = Journey::new(first.tenant_id.clone(), customer, first.occurred_at);
        for (offset, event) in events.iter().enumerate() {
            journey.apply(offset as u64, event);
        }
        journey
    }

    #[test]
    fn given_two_conversations_then_a_conversation_filter_keeps_the_one_and_its_contacts() {
        let mut chat = EventBuilder::visitor("acme", "v-1")
            .in_conversation("cnv-a")
            .on(Channel::Webchat, "chat-1");
        let mut call = EventBuilder::visitor("acme", "v-1")
            .in_conversation("cnv-b")
            .on(Channel::Voice, "call-1");
        let events = [
            chat.started(),
            call.started(),
            chat.intent("billing", 0.9),
            call.ended(),
        ];
        let journey = folded(&events);
        let cnv_a = ConversationId::new("cnv-a").expect("valid");
        let filter = Filter {
            conversation: journey.conversation(&cnv_a).map(OfConversation::of),
            channel: None,
        };
        let kept: Vec<bool> = events.iter().map(|e| filter.admits(e)).collect();
        assert_eq!(kept, [true, false, true, false]);
    }

    #[test]
    fn given_a_channel_then_only_its_events_are_kept_and_no_filter_keeps_all() {
        let mut chat = EventBuilder::visitor("acme", "v-1").on(Channel::Webchat, "chat-1");
        let mut call = EventBuilder::visitor("acme", "v-1").on(Channel::Voice, "call-1");
        let events = [chat.started(), call.started()];
        let voice = Filter {
            channel: Some(Channel::Voice),
            ..Filter::default()
        };
        assert_eq!(
            events.iter().map(|e| voice.admits(e)).collect::<Vec<_>>(),
            [false, true]
        );
        assert!(events.iter().all(|e| Filter::default().admits(e)));
    }
}
