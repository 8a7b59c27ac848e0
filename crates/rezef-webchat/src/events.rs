//! The events a chat becomes, with ids stable per chat and per the widget's message id
//! (`webchat:<chat>:msg:<id>`): a widget that sends a message again after a reconnect, or an
//! adapter that publishes again after a failure, gives the server copies it applies once.

use rezef_adapter::proto::{self, event::Payload};
use rezef_adapter::{EventFactory, identity_ref};

/// Events about one chat (one interaction) of one visitor.
#[derive(Debug, Clone)]
pub struct ChatEvents {
    factory: EventFactory,
    chat: String,
    visitor: String,
}

impl ChatEvents {
    pub fn new(tenant: &str, source: &str, visitor: &str, chat: &str) -> Self {
        let factory = EventFactory::new(tenant, source)
            .identity(proto::IdentityKind::ChatVisitor, visitor)
            .on(proto::Channel::Webchat, chat);
        Self {
            factory,
            chat: chat.to_owned(),
            visitor: visitor.to_owned(),
        }
    }

    pub fn chat(&self) -> &str {
        &self.chat
    }

    pub fn customer(&self) -> proto::CustomerRef {
        identity_ref(proto::IdentityKind::ChatVisitor, &self.visitor)
    }

    /// An event of `payload` whose id is the chat's and `kind`'s.
    pub fn event(&self, kind: &str, payload: Payload) -> proto::Event {
        let mut event = self.factory.event(payload);
        event.event_id = format!("webchat:{}:{kind}", self.chat);
        event
    }

    /// The chat started, on `page`, in `language`.
    pub fn started(&self, language: Option<&str>, page: Option<&str>) -> proto::Event {
        let started = proto::InteractionStarted {
            direction: proto::Direction::Inbound as i32,
            identity: Some(proto::ChannelIdentity {
                kind: proto::IdentityKind::ChatVisitor as i32,
                value: self.visitor.clone(),
                network: String::new(),
            }),
            entry_point: page.unwrap_or_default().to_owned(),
            language: language.unwrap_or_default().to_owned(),
            continuation_token: String::new(),
        };
        self.event("started", Payload::InteractionStarted(started))
    }

    /// The visitor's message `id`.
    pub fn visitor_message(&self, id: &str, text: &str) -> proto::Event {
        let message = proto::MessageSent {
            from: proto::Participant::Customer as i32,
            text: text.to_owned(),
            ..Default::default()
        };
        self.event(&format!("msg:{id}"), Payload::MessageSent(message))
    }

    /// What bot `bot` said, as event `kind` (`greeting`, `bot:<id>` for its reply to a
    /// message).
    pub fn bot_message(&self, kind: &str, bot: &str, text: &str) -> proto::Event {
        let message = proto::MessageSent {
            from: proto::Participant::Bot as i32,
            sender_id: bot.to_owned(),
            text: text.to_owned(),
            ..Default::default()
        };
        self.event(kind, Payload::MessageSent(message))
    }

    pub fn ended(&self, reason: proto::EndReason) -> proto::Event {
        let ended = proto::InteractionEnded {
            reason: reason as i32,
        };
        self.event("ended", Payload::InteractionEnded(ended))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_sent_again_has_the_same_id_and_fits_rezefs_ids() {
        let chat = ChatEvents::new("acme", "webchat", "v-1", &"c".repeat(48));
        let (first, again) = (
            chat.visitor_message(&"m".repeat(48), "hi"),
            chat.visitor_message(&"m".repeat(48), "hi"),
        );
        assert_eq!(first.event_id, again.event_id);
        assert!(first.event_id.len() <= 128, "{}", first.event_id.len());
        assert_ne!(first.event_id, chat.visitor_message("m-2", "hi").event_id);
        assert_eq!(first.interaction_id, "c".repeat(48));
        assert_eq!(first.channel, proto::Channel::Webchat as i32);
    }
}
