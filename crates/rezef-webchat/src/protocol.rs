//! The JSON the widget and the adapter exchange over the WebSocket, one object per text
//! frame, told apart by `type` (docs/adapters.md, "The web chat adapter"). Visitor to
//! adapter: [`Inbound`]; adapter to visitor: [`Outbound`]. Ids a visitor sends become part
//! of event ids, so they are checked here ([`Inbound::parse`]).

use rezef_adapter::proto;
use serde::{Deserialize, Serialize};

/// The longest client message id or chat id taken, in bytes (event ids hold both, within
/// Rezef's 128).
pub const MAX_ID: usize = 48;

/// A frame from the visitor.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Inbound {
    /// The first frame: who (the visitor id the widget keeps) and, to carry on a chat after
    /// a reconnect, the chat's id from an earlier `welcome`.
    Hello {
        visitor: String,
        #[serde(default)]
        chat: Option<String>,
        /// BCP 47, when the page knows it.
        #[serde(default)]
        language: Option<String>,
        /// The page the chat was opened on.
        #[serde(default)]
        page: Option<String>,
    },
    /// A message; `id` is the widget's, unique in the chat, the same when sent again.
    Message { id: String, text: String },
    /// The visitor closes the chat.
    End,
}

/// Why a frame was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("not a message of the protocol: {0}")]
    Malformed(String),
    #[error("{0} must be 1 to {MAX_ID} letters, digits, '-' or '_'")]
    BadId(&'static str),
    #[error("text must not be empty")]
    EmptyText,
}

impl Inbound {
    pub fn parse(frame: &str) -> Result<Self, ProtocolError> {
        let inbound: Self =
            serde_json::from_str(frame).map_err(|e| ProtocolError::Malformed(e.to_string()))?;
        match &inbound {
            Self::Hello { visitor, chat, .. } => {
                check_id(visitor, "visitor")?;
                if let Some(chat) = chat {
                    check_id(chat, "chat")?;
                }
            }
            Self::Message { id, text } => {
                check_id(id, "id")?;
                if text.trim().is_empty() {
                    return Err(ProtocolError::EmptyText);
                }
            }
            Self::End => {}
        }
        Ok(inbound)
    }
}

fn check_id(id: &str, field: &'static str) -> Result<(), ProtocolError> {
    let ok = (1..=MAX_ID).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then_some(()).ok_or(ProtocolError::BadId(field))
}

/// A frame to the visitor.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Outbound {
    /// The answer to `hello`: the chat's id (send it in the next `hello` to carry on),
    /// whether an earlier conversation is continued, and its messages so far, oldest first.
    Welcome {
        chat: String,
        resumed: bool,
        transcript: Vec<Entry>,
    },
    /// A message from the bot or an agent.
    Message(Entry),
    /// The message `id` is recorded (sent again, it is not recorded twice).
    Ack {
        id: String,
    },
    Status {
        status: Status,
    },
    /// `reason`: `bad_message`, `hello_first`, `too_large`, `unavailable`.
    Error {
        reason: String,
        detail: String,
    },
}

impl Outbound {
    pub fn to_json(&self) -> String {
        // Strings, booleans and numbers only: serialising cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Where the chat is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The bot answers.
    Bot,
    /// Handed off: waiting for an agent.
    Waiting,
    /// An agent has the chat.
    Agent,
    Ended,
}

impl Status {
    /// The status of a chat whose interaction is at `stage`.
    pub fn of_stage(stage: proto::Stage) -> Self {
        use proto::Stage as S;
        match stage {
            S::Unspecified | S::Started | S::SelfService => Self::Bot,
            S::HandoffRequested | S::Queued | S::Offered | S::CallbackPending => Self::Waiting,
            S::Connected | S::Consulting => Self::Agent,
            S::Abandoned | S::Ended => Self::Ended,
        }
    }

    /// The status once the journey shows `seen`, from `self`: it only moves on (an update
    /// projected before the handoff does not put a waiting chat back with the bot), except
    /// that an agent's transfer puts the chat back to waiting.
    pub fn advance(self, seen: Self) -> Self {
        let rank = |s: Self| match s {
            Self::Bot => 0,
            Self::Waiting => 1,
            Self::Agent => 2,
            Self::Ended => 3,
        };
        let transferred = self == Self::Agent && seen == Self::Waiting;
        if rank(seen) > rank(self) || transferred {
            seen
        } else {
            self
        }
    }
}

/// One message of the conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// `customer`, `bot`, `agent` or `system`.
    pub from: &'static str,
    /// The bot or agent id.
    pub sender: String,
    pub text: String,
    /// `webchat`, `voice`, `email`, … (the channel it was sent on).
    pub channel: String,
    /// When it was sent, in milliseconds since 1970; 0 when unknown.
    pub at: i64,
}

impl Entry {
    pub fn from_transcript(entry: &proto::TranscriptEntry) -> Self {
        let from = proto::Participant::try_from(entry.from).unwrap_or_default();
        let channel = proto::Channel::try_from(entry.channel).unwrap_or_default();
        let at = (entry.sent_at.as_ref())
            .map_or(0, |t| t.seconds * 1000 + i64::from(t.nanos) / 1_000_000);
        Self {
            from: participant(from),
            sender: entry.sender_id.clone(),
            text: entry.text.clone(),
            channel: channel_name(channel),
            at,
        }
    }
}

fn participant(from: proto::Participant) -> &'static str {
    match from {
        proto::Participant::Customer => "customer",
        proto::Participant::Bot => "bot",
        proto::Participant::Agent => "agent",
        proto::Participant::System | proto::Participant::Unspecified => "system",
    }
}

/// `CHANNEL_WEB_FORM` is `web_form`.
fn channel_name(channel: proto::Channel) -> String {
    let name = channel.as_str_name();
    name.strip_prefix("CHANNEL_")
        .unwrap_or(name)
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_hello_and_a_message_are_read() {
        let hello = Inbound::parse(r#"{"type":"hello","visitor":"v-1","language":"he"}"#);
        assert_eq!(
            hello,
            Ok(Inbound::Hello {
                visitor: "v-1".into(),
                chat: None,
                language: Some("he".into()),
                page: None
            })
        );
        let message = Inbound::parse(r#"{"type":"message","id":"m_1","text":"hi"}"#);
        assert_eq!(
            message,
            Ok(Inbound::Message {
                id: "m_1".into(),
                text: "hi".into()
            })
        );
        assert_eq!(Inbound::parse(r#"{"type":"end"}"#), Ok(Inbound::End));
    }

    #[test]
    fn ids_that_would_not_fit_an_event_id_are_refused() {
        let long = "x".repeat(MAX_ID + 1);
        for frame in [
            format!(r#"{{"type":"hello","visitor":"{long}"}}"#),
            r#"{"type":"hello","visitor":"a b"}"#.to_owned(),
            r#"{"type":"hello","visitor":"v","chat":"c:1"}"#.to_owned(),
            r#"{"type":"message","id":"","text":"hi"}"#.to_owned(),
        ] {
            assert!(
                matches!(Inbound::parse(&frame), Err(ProtocolError::BadId(_))),
                "{frame}"
            );
        }
    }

    #[test]
    fn unknown_types_fields_and_empty_text_are_refused() {
        for frame in [
            r#"{"type":"shout","text":"hi"}"#,
            r#"{"type":"message","id":"m","text":"hi","extra":1}"#,
            r#"not json"#,
        ] {
            assert!(matches!(
                Inbound::parse(frame),
                Err(ProtocolError::Malformed(_))
            ));
        }
        let blank = Inbound::parse(r#"{"type":"message","id":"m","text":"  "}"#);
        assert_eq!(blank, Err(ProtocolError::EmptyText));
    }

    #[test]
    fn frames_to_the_visitor_are_tagged_by_type() {
        let status = Outbound::Status {
            status: Status::Waiting,
        };
        assert_eq!(status.to_json(), r#"{"type":"status","status":"waiting"}"#);
        let entry = Entry::from_transcript(&proto::TranscriptEntry {
            from: proto::Participant::Agent as i32,
            sender_id: "yael".into(),
            text: "Hi".into(),
            channel: proto::Channel::Webchat as i32,
            sent_at: Some(prost_types::Timestamp {
                seconds: 2,
                nanos: 5_000_000,
            }),
            ..Default::default()
        });
        assert_eq!(
            Outbound::Message(entry).to_json(),
            r#"{"type":"message","from":"agent","sender":"yael","text":"Hi","channel":"webchat","at":2005}"#
        );
    }

    #[test]
    fn a_stage_is_a_status() {
        assert_eq!(Status::of_stage(proto::Stage::SelfService), Status::Bot);
        assert_eq!(Status::of_stage(proto::Stage::Queued), Status::Waiting);
        assert_eq!(Status::of_stage(proto::Stage::Connected), Status::Agent);
        assert_eq!(Status::of_stage(proto::Stage::Abandoned), Status::Ended);
    }

    #[test]
    fn a_status_moves_on_but_for_a_transfer() {
        use Status::*;
        assert_eq!(Waiting.advance(Bot), Waiting);
        assert_eq!(Bot.advance(Agent), Agent);
        assert_eq!(Agent.advance(Waiting), Waiting);
        assert_eq!(Ended.advance(Agent), Ended);
        assert_eq!(Agent.advance(Bot), Agent);
    }

    proptest! {
        /// Any text goes through as sent, or is refused: never a panic.
        #[test]
        fn any_frame_is_parsed_or_refused(frame in ".{0,200}", text in ".{1,100}") {
            let _ = Inbound::parse(&frame);
            let json = serde_json::json!({"type": "message", "id": "m-1", "text": text});
            match Inbound::parse(&json.to_string()) {
                Ok(Inbound::Message { text: read, .. }) => prop_assert_eq!(read, text),
                Ok(other) => prop_assert!(false, "{:?}", other),
                Err(error) => prop_assert_eq!(error, ProtocolError::EmptyText),
            }
        }
    }
}
