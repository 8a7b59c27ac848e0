//! The JSON form of an event: the log record format of Rezef's first versions, and the one
//! projectors still use for their messages to each other (handovers, forwarded copies).
//!
//! Log records are written and read by `rezef-record`, which stores published events as
//! protobuf and reads this form wherever a record starts with `{`. JSON is self-describing,
//! so fields can be added without breaking old records (missing optional fields read as
//! `None`). The record's log timestamp, not the payload, carries `recorded_at`.

use crate::error::{Error, Result};
use crate::event::Event;

/// Encodes an event for the log.
pub fn encode(event: &Event) -> Vec<u8> {
    serde_json::to_vec(event).expect("events have string keys and finite numbers only")
}

/// Decodes a log record's payload.
pub fn decode(bytes: &[u8]) -> Result<Event> {
    match bytes.first() {
        Some(b'{') => serde_json::from_slice(bytes).map_err(Error::Decode),
        Some(other) => Err(Error::UnsupportedFormat(*other)),
        None => Err(Error::UnsupportedFormat(0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::EventBuilder;

    #[test]
    fn events_round_trip() {
        let mut chat = EventBuilder::visitor("acme", "v-1");
        for event in [
            chat.started(),
            chat.intent("billing", 0.5),
            chat.context("order", "A-1"),
        ] {
            assert_eq!(decode(&encode(&event)).expect("decodes"), event);
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode(b"").is_err());
        assert!(decode(b"\x00\x01").is_err());
        assert!(decode(b"{\"event_id\":").is_err());
    }

    /// A record written by version 1 must decode forever: this is the stored format.
    #[test]
    fn a_version_1_record_still_decodes() {
        let stored = br#"{"event_id":"e-1","tenant_id":"acme","occurred_at":1700000000000000000,"source":"web-chat","schema_version":1,"customer":{"identity":{"kind":"chat_visitor","value":"v-1","network":null}},"conversation_id":null,"interaction_id":"chat-1","channel":"webchat","payload":{"intent_detected":{"intent":"billing","confidence":0.5,"detected_by":"bot"}}}"#;
        let event = decode(stored).expect("the v1 format decodes");
        assert_eq!(event.event_id.as_str(), "e-1");
        assert_eq!(event.payload.name(), "intent_detected");
    }
}
