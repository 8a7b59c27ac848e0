//! The proto3 JSON mapping of Rezef messages (what `rezef publish` reads and `rezef replay`
//! writes as JSON Lines, and what the dashboard speaks over HTTP), driven by the descriptor
//! set so it follows the `.proto` files exactly: lowerCamelCase field names, enum names as
//! strings, RFC 3339 timestamps.

use std::sync::LazyLock;

use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, SerializeOptions};

use crate::FILE_DESCRIPTOR_SET;

/// Why a JSON document is not a valid message.
#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    #[error("invalid JSON for {message}: {source}")]
    Syntax {
        message: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot convert {message}: {source}")]
    Transcode {
        message: &'static str,
        #[source]
        source: prost::DecodeError,
    },
}

/// A message that has a proto3 JSON form.
pub trait JsonMessage: prost::Message + Default {
    /// The fully qualified protobuf name, e.g. `rezef.v1.Event`.
    const FULL_NAME: &'static str;
}

macro_rules! json_messages {
    ($($ty:ident),* $(,)?) => {
        $(impl JsonMessage for crate::v1::$ty {
            const FULL_NAME: &'static str = concat!("rezef.v1.", stringify!($ty));
        })*
    };
}

json_messages!(
    Event,
    ReplayedEvent,
    Journey,
    GetJourneyResponse,
    JourneyUpdate,
    PublishResponse,
    ResumeConversationResponse,
    ConversationUpdate,
    ResolveCustomerResponse,
    // The dashboard's calls (rezef-server `dashboard`).
    GetReportRequest,
    GetReportResponse,
    TrackCustomerRequest,
    CustomerTracker,
    ReplayHistoryRequest,
    GetQueueStatsRequest,
    GetQueueStatsResponse,
    ListAgentsRequest,
    ListAgentsResponse,
);

static POOL: LazyLock<DescriptorPool> = LazyLock::new(|| {
    DescriptorPool::decode(FILE_DESCRIPTOR_SET)
        .expect("the descriptor set is generated at build time and always decodes")
});

fn descriptor<M: JsonMessage>() -> MessageDescriptor {
    POOL.get_message_by_name(M::FULL_NAME)
        .expect("every JsonMessage is declared in the descriptor set")
}

/// Parses one message from its proto3 JSON form. Unknown fields are an error, so typos in
/// hand-written event files are caught instead of silently dropped.
pub fn from_json<M: JsonMessage>(json: &str) -> Result<M, JsonError> {
    let mut deserializer = serde_json::Deserializer::from_str(json);
    let dynamic = DynamicMessage::deserialize(descriptor::<M>(), &mut deserializer)
        .and_then(|message| deserializer.end().map(|()| message))
        .map_err(|source| JsonError::Syntax {
            message: M::FULL_NAME,
            source,
        })?;
    dynamic
        .transcode_to()
        .map_err(|source| JsonError::Transcode {
            message: M::FULL_NAME,
            source,
        })
}

/// Writes one message in its proto3 JSON form, on one line.
pub fn to_json<M: JsonMessage>(message: &M) -> String {
    let mut dynamic = DynamicMessage::new(descriptor::<M>());
    dynamic
        .transcode_from(message)
        .expect("a generated message always transcodes to its own descriptor");
    let mut serializer = serde_json::Serializer::new(Vec::new());
    dynamic
        .serialize_with_options(&mut serializer, &SerializeOptions::new())
        .expect("serializing to memory cannot fail");
    String::from_utf8(serializer.into_inner()).expect("serde_json writes UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::{self, customer_ref, event};

    #[test]
    fn event_round_trips_through_proto3_json() {
        let json = r#"{"eventId":"e-1","tenantId":"acme","occurredAt":"2026-11-23T10:00:00Z",
            "source":"web-chat","customer":{"identity":{"kind":"IDENTITY_KIND_CHAT_VISITOR","value":"v-1"}},
            "interactionId":"chat-1","channel":"CHANNEL_WEBCHAT",
            "intentDetected":{"intent":"billing.dispute","confidence":0.75,"detectedBy":"bot"}}"#;
        let event: v1::Event = from_json(json).expect("valid event");
        assert_eq!(event.event_id, "e-1");
        assert_eq!(event.channel(), v1::Channel::Webchat);
        let Some(event::Payload::IntentDetected(intent)) = &event.payload else {
            panic!("payload is intent_detected: {:?}", event.payload)
        };
        assert_eq!(intent.confidence, 0.75);
        let Some(customer_ref::Ref::Identity(identity)) =
            event.customer.as_ref().and_then(|c| c.r#ref.clone())
        else {
            panic!("customer is an identity")
        };
        assert_eq!(identity.value, "v-1");

        let back: v1::Event = from_json(&to_json(&event)).expect("own output parses");
        assert_eq!(back, event);
        assert!(to_json(&event).contains(r#""channel":"CHANNEL_WEBCHAT""#));
    }

    #[test]
    fn unknown_fields_and_bad_enums_are_rejected() {
        assert!(from_json::<v1::Event>(r#"{"eventID":"x"}"#).is_err());
        assert!(from_json::<v1::Event>(r#"{"channel":"CHANNEL_FAX"}"#).is_err());
        assert!(from_json::<v1::Event>(r#"{"eventId":"x"} trailing"#).is_err());
    }
}
