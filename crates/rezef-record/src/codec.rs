//! The bytes of one log record, and back.
//!
//! A record's first byte names its format:
//! - `0x01`: protobuf. The event as a `rezef.v1.Event` (the public contract's message, with
//!   `recorded_at` unset: the record's log timestamp carries it). Compact, fast to read, and
//!   evolved by protobuf's rules; a consumer of the Kafka topic reads it with the published
//!   `.proto` after skipping the format byte. Every event an adapter or the server publishes
//!   is written so.
//! - `{`: JSON, the format of version 1 (`rezef_events::codec`). Records written before the
//!   protobuf format stay readable forever; projectors still write their own messages to
//!   each other (handovers, forwarded copies, on partitioned logs only) in it, because the
//!   public message does not describe them and must not grow projector internals.
//!
//! Reading a protobuf record checks its types and formats like a published event's, but
//! takes identities as stored (normalised at publish time) and does not apply the rules
//! beyond types again (they held at publish time), so a later change to normalisation or
//! validation never changes or refuses what an old record says.

use prost::Message;
use rezef_events::event::SCHEMA_VERSION;
use rezef_events::{Event, Payload};
use rezef_proto::v1;

use crate::error::{Error, Result};
use crate::event::{event_from_record, event_to_proto};

/// The format byte of a protobuf record.
pub const PROTOBUF: u8 = 0x01;

/// Encodes an event for the log.
pub fn encode(event: &Event) -> Vec<u8> {
    let mut bytes = Vec::new();
    encode_into(event, &mut bytes);
    bytes
}

/// [`encode`], appended to `bytes` (a sealed record ends with its skeleton's).
pub(crate) fn encode_into(event: &Event, bytes: &mut Vec<u8>) {
    if event.forward.is_some() || matches!(event.payload, Payload::Handover(_)) {
        return bytes.extend_from_slice(&rezef_events::codec::encode(event));
    }
    let message = event_to_proto(event, None);
    bytes.reserve(1 + message.encoded_len());
    bytes.push(PROTOBUF);
    message
        .encode(bytes)
        .expect("a Vec grows to any encoded length");
}

/// Decodes a log record's payload, in any format this build reads; of a sealed record
/// (`sealed`), the skeleton: its personal values as erased.
pub fn decode(bytes: &[u8]) -> Result<Event> {
    let bytes = crate::sealed::skeleton(bytes)?;
    match bytes.split_first() {
        Some((&PROTOBUF, message)) => {
            let message = v1::Event::decode(message)?;
            event_from_record(message).map_err(Error::Invalid)
        }
        Some((b'{', _)) => {
            let mut event = rezef_events::codec::decode(bytes).map_err(Error::Json)?;
            // As in protobuf, where 0 is unset: no version of Rezef wrote 0, and an event
            // read must read the same once stored again.
            if event.schema_version == 0 {
                event.schema_version = SCHEMA_VERSION;
            }
            Ok(event)
        }
        Some((other, _)) => Err(Error::UnknownFormat(*other)),
        None => Err(Error::UnknownFormat(0)),
    }
}

/// `rezef.v1.Event` payload fields that may end a contact: `self_service_step_completed`
/// (21), `contact_abandoned` (33), `interaction_ended` (34), `handover` (43).
const MAY_END_CONTACT: [u32; 4] = [21, 33, 34, 43];

/// Whether the record may hold an event that ends a contact (`Payload::contact_end`, or a
/// handover): `false` only when it surely does not. Routing reads the log for those and
/// decodes only them: most records (its own decisions among them) are passed over with a
/// look at their field keys.
pub fn may_end_contact(bytes: &[u8]) -> bool {
    let Ok(bytes) = crate::sealed::skeleton(bytes) else {
        return true;
    };
    let Some((&PROTOBUF, mut message)) = bytes.split_first() else {
        return true;
    };
    while !message.is_empty() {
        let Ok((field, wire_type)) = prost::encoding::decode_key(&mut message) else {
            return true;
        };
        if MAY_END_CONTACT.contains(&field) {
            return true;
        }
        let context = prost::encoding::DecodeContext::default();
        if prost::encoding::skip_field(wire_type, field, &mut message, context).is_err() {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rezef_events::event::Participant;
    use rezef_events::handover::Handover;
    use rezef_events::testing::EventBuilder;
    use rezef_events::{ChannelIdentity, CustomerId, IdentityKind};

    use super::*;
    use crate::event::tests::every_payload;

    /// Records written by the first protobuf version: per line, a record in hex, a space, and
    /// the event it holds in JSON. They must decode to those events forever.
    const WRITTEN_BY_V1: &str = include_str!("../tests/fixtures/protobuf_v1.txt");

    #[test]
    fn only_records_that_may_end_a_contact_are_said_to() {
        let mut ending = 0;
        for event in every_payload() {
            let ends = event.payload.contact_end().is_some();
            ending += usize::from(ends);
            // A self-service step ends the contact only when CONTAINED: decoded to see.
            let maybe = ends || matches!(event.payload, Payload::SelfServiceStepCompleted { .. });
            assert_eq!(
                may_end_contact(&encode(&event)),
                maybe,
                "{}",
                event.payload.name()
            );
        }
        assert!(ending >= 2, "an abandon and an end are among them");
        let handover =
            EventBuilder::visitor("acme", "v-1").event(Payload::Handover(Handover::ContactEnded {
                end: rezef_events::event::ContactEnd::Abandoned,
            }));
        assert!(may_end_contact(&encode(&handover)), "JSON: decoded to see");
        assert!(
            may_end_contact(&[PROTOBUF, 0xff]),
            "garbage: decoded to see"
        );
    }

    #[test]
    fn every_published_payload_is_stored_as_protobuf_and_reads_back_equal() {
        for event in every_payload() {
            let record = encode(&event);
            assert_eq!(record[0], PROTOBUF, "{}", event.payload.name());
            assert_eq!(decode(&record).expect("decodes"), event);
            let json = rezef_events::codec::encode(&event);
            assert!(record.len() < json.len(), "{}", event.payload.name());
        }
    }

    #[test]
    fn json_records_of_earlier_versions_still_read() {
        for event in every_payload() {
            let old = rezef_events::codec::encode(&event);
            assert_eq!(decode(&old).expect("decodes"), event);
        }
    }

    #[test]
    fn records_written_by_protobuf_version_1_still_read() {
        let mut payloads = std::collections::BTreeSet::new();
        for line in WRITTEN_BY_V1.lines() {
            let (record, json) = line.split_once(' ').expect("record and event");
            let expected = rezef_events::codec::decode(json.as_bytes()).expect("the event");
            assert_eq!(decode(&hex(record)).expect("decodes"), expected);
            payloads.insert(expected.payload.name());
        }
        let published: std::collections::BTreeSet<_> =
            every_payload().iter().map(|e| e.payload.name()).collect();
        assert_eq!(payloads, published, "a record of every published payload");
    }

    #[test]
    fn projector_messages_stay_json_and_read_back_equal() {
        let mut chat = EventBuilder::visitor("acme", "v-1");
        let cause = chat.started();
        let claimant = CustomerId::new("c-1").expect("valid");
        let handover = Handover::MergeRequested {
            absorbed: claimant.clone(),
            survivor: CustomerId::new("c-2").expect("valid"),
            record: rezef_events::journey::MergeRecord {
                at: cause.occurred_at,
                offset: 7,
                cause: rezef_events::journey::MergeCause::Requested {
                    reason: "same person".into(),
                    requested_by: "agent-1".into(),
                },
            },
        }
        .event(&cause);
        let forwarded = cause
            .forwarded(claimant, CustomerId::new("c-3").expect("valid"))
            .expect("first hop");
        for event in [handover, forwarded] {
            let record = encode(&event);
            assert_eq!(record[0], b'{');
            assert_eq!(decode(&record).expect("decodes"), event);
        }
    }

    #[test]
    fn identities_are_read_as_stored_not_normalised_again() {
        let mut event = EventBuilder::visitor("acme", "v-1").started();
        let stored = ChannelIdentity::stored(IdentityKind::Phone, "050 123".into(), None);
        event.customer = Some(rezef_events::CustomerRef::Identity(stored));
        assert_eq!(decode(&encode(&event)).expect("decodes"), event);
    }

    /// Found by fuzzing (`fuzz/`, target `record_decode`): a JSON record of schema version 0
    /// read as version 0, and once stored again as protobuf (where 0 is unset) as version 1.
    #[test]
    fn a_json_record_of_schema_version_0_reads_as_stored_again() {
        let record = br#"{"event_id":"e-5","tenant_id":"acme","occurred_at":1700000005000000000,"source":"test","schema_version":0,"customer":{"identity":{"kind":"chat_visitor","value":"v-1","tnweork":null}},"interaction_id":"i-1","channel":"webchat","payload":{"contact_offered":{"agent_id":"agent-1","queue_id":"billing"}}}"#;
        let event = decode(record).expect("decodes");
        assert_eq!(event.schema_version, SCHEMA_VERSION);
        assert_eq!(decode(&encode(&event)).expect("decodes"), event);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(matches!(decode(b""), Err(Error::UnknownFormat(0))));
        assert!(matches!(decode(b"\x07abc"), Err(Error::UnknownFormat(7))));
        assert!(matches!(decode(b"{\"event_id\":"), Err(Error::Json(_))));
        let record = encode(&EventBuilder::visitor("acme", "v-1").started());
        assert!(matches!(
            decode(&record[..record.len() / 2]),
            Err(Error::Protobuf(_))
        ));
        let empty = [PROTOBUF];
        let Err(Error::Invalid(violations)) = decode(&empty) else {
            panic!("an empty event is invalid");
        };
        assert!(violations.iter().any(|v| v.field == "event_id"));
    }

    proptest! {
        #[test]
        fn any_valid_text_reads_back_as_written(
            text in "(?s).{1,300}",
            key in "[a-z][a-z0-9_.]{0,20}",
            millis in 0i64..4_000_000_000_000,
        ) {
            let mut chat = EventBuilder::visitor("acme", "v-1");
            for mut event in [chat.message(Participant::Customer, &text), chat.context(&key, &text)] {
                event.occurred_at = rezef_events::Timestamp::from_unix_millis(millis);
                prop_assume!(event.validate().is_ok());
                prop_assert_eq!(decode(&encode(&event)).expect("decodes"), event);
            }
        }
    }

    fn hex(line: &str) -> Vec<u8> {
        (0..line.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&line[i..i + 2], 16).expect("hex"))
            .collect()
    }

    /// Writes the fixture (run once, by hand, for a new format version):
    /// `cargo test -p rezef-record -- --ignored write_fixture`.
    #[test]
    #[ignore = "writes the fixture of a new format version"]
    fn write_fixture() {
        let lines: Vec<String> = every_payload()
            .iter()
            .map(|event| {
                let record: String = encode(event).iter().map(|b| format!("{b:02x}")).collect();
                let json = rezef_events::codec::encode(event);
                format!("{record} {}", String::from_utf8_lossy(&json))
            })
            .collect();
        std::fs::write("tests/fixtures/protobuf_v1.txt", lines.join("\n") + "\n")
            .expect("fixture written");
    }
}
