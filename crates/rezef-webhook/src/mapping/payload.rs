//! An event's payload from its fields, through the contract's descriptors and its proto3
//! JSON mapping: any payload an adapter may publish, each field checked by name against the
//! proto when the mapping is compiled. Values are eased into their field's type: a number
//! into a string field is written out (ticket ids are often numbers), and an enum takes its
//! short name (`customer` for `PARTICIPANT_CUSTOMER`).

use std::sync::LazyLock;

use prost_reflect::{DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor};
use rezef_adapter::proto;
use serde::de::IntoDeserializer;
use serde_json::{Map, Value};

use super::config::{Source, Spec};
use super::read::{self, Fault};

/// The contract's descriptors (rezef-proto keeps its own pool private).
static POOL: LazyLock<DescriptorPool> = LazyLock::new(|| {
    DescriptorPool::decode(rezef_proto::FILE_DESCRIPTOR_SET)
        .expect("the descriptor set is generated at build time and always decodes")
});

/// Payloads Rezef writes itself and refuses from adapters.
const NEVER_PUBLISHED: [&str; 3] = ["handover", "sensitive_revealed", "customer_forgotten"];

fn event_descriptor() -> MessageDescriptor {
    POOL.get_message_by_name("rezef.v1.Event")
        .expect("rezef.v1.Event is in the descriptor set")
}

/// A payload kind and how its fields are read.
#[derive(Debug, Clone)]
pub struct PayloadMapping {
    kind: String,
    fields: Vec<(FieldDescriptor, Spec)>,
}

impl PayloadMapping {
    /// `kind`'s payload with `fields`; an error names what is wrong (`fields.text: …`).
    pub fn compile<'a>(
        kind: &str,
        fields: impl IntoIterator<Item = (&'a String, &'a Spec)>,
    ) -> Result<Self, String> {
        let oneof_field = event_descriptor().get_field_by_name(kind).filter(|f| {
            f.containing_oneof().is_some_and(|o| o.name() == "payload")
                && !NEVER_PUBLISHED.contains(&kind)
        });
        let Some(Kind::Message(message)) = oneof_field.map(|f| f.kind()) else {
            return Err(format!(
                "kind: {kind:?} is not a payload adapters publish (rezef.v1.Event's payload \
                 names: message_sent, intent_detected, interaction_started, …)"
            ));
        };
        let mut compiled = Vec::new();
        for (name, spec) in fields {
            let field = field_of(&message, name).ok_or_else(|| {
                format!("fields.{name}: {} has no such field", message.full_name())
            })?;
            if let Source::Value(literal) = &spec.source {
                check_literal(kind, &field, literal).map_err(|e| format!("fields.{name}: {e}"))?;
            }
            for mapped in spec.map.iter().flat_map(|m| m.values()) {
                check_literal(kind, &field, mapped)
                    .map_err(|e| format!("fields.{name}.map: {e}"))?;
            }
            compiled.push((field, spec.clone()));
        }
        Ok(Self {
            kind: kind.to_owned(),
            fields: compiled,
        })
    }

    /// The payload for `body`; a fault names the field (`fields.text`) and its path.
    pub fn build(&self, body: &Value) -> Result<proto::event::Payload, Located> {
        let mut object = Map::new();
        for (field, spec) in &self.fields {
            let fault = |fault| Located::new(field, spec, fault);
            if let Some(value) = read::read(spec, body).map_err(fault)? {
                object.insert(field.name().to_owned(), ease(field, value.into_owned()));
            }
        }
        match decode(&self.kind, object.clone()) {
            Ok(payload) => Ok(payload),
            Err(whole) => {
                // Name the field at fault: the first that does not decode alone.
                for (field, spec) in &self.fields {
                    if let Some(value) = object.get(field.name()) {
                        let alone = Map::from_iter([(field.name().to_owned(), value.clone())]);
                        if let Err(error) = decode(&self.kind, alone) {
                            return Err(Located::new(field, spec, Fault::Invalid(error)));
                        }
                    }
                }
                Err(Located {
                    field: "fields".into(),
                    path: None,
                    fault: Fault::Invalid(whole),
                })
            }
        }
    }
}

/// A fault at a field (`fields.text`), with the path it was read at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub field: String,
    pub path: Option<String>,
    pub fault: Fault,
}

impl Located {
    pub fn new(field: &FieldDescriptor, spec: &Spec, fault: Fault) -> Self {
        Self {
            field: format!("fields.{}", field.name()),
            path: spec.pointer().map(str::to_owned),
            fault,
        }
    }
}

/// A field by its proto name (`entry_point`) or JSON name (`entryPoint`).
fn field_of(message: &MessageDescriptor, name: &str) -> Option<FieldDescriptor> {
    (message.get_field_by_name(name)).or_else(|| message.get_field_by_json_name(name))
}

/// Whether `literal` decodes as `field` of payload `kind`.
fn check_literal(kind: &str, field: &FieldDescriptor, literal: &Value) -> Result<(), String> {
    let alone = Map::from_iter([(field.name().to_owned(), ease(field, literal.clone()))]);
    decode(kind, alone).map(|_| ())
}

/// `value` eased into `field`'s type (see the module's documentation).
fn ease(field: &FieldDescriptor, value: Value) -> Value {
    match (field.kind(), value) {
        (kind, Value::Array(items)) if field.is_list() => Value::Array(
            items
                .into_iter()
                .map(|item| ease_scalar(&kind, item))
                .collect(),
        ),
        (kind, value) => ease_scalar(&kind, value),
    }
}

fn ease_scalar(kind: &Kind, value: Value) -> Value {
    match (kind, value) {
        (Kind::String, value @ (Value::Number(_) | Value::Bool(_))) => {
            Value::String(read::text(&value).unwrap_or_default())
        }
        (Kind::Enum(enumeration), Value::String(name)) => {
            if enumeration.get_value_by_name(&name).is_some() {
                return Value::String(name);
            }
            let prefix = (enumeration.get_value(0))
                .map(|zero| zero.name().trim_end_matches("UNSPECIFIED").to_owned())
                .unwrap_or_default();
            let long = format!("{prefix}{}", name.to_uppercase().replace(['-', '.'], "_"));
            match enumeration.get_value_by_name(&long) {
                Some(_) => Value::String(long),
                None => Value::String(name),
            }
        }
        (_, value) => value,
    }
}

/// An enum value's full name from its short one or its full one, as [`ease`] reads it.
pub fn enum_name(enum_name: &str, value: &str) -> Option<String> {
    let enumeration = POOL.get_enum_by_name(&format!("rezef.v1.{enum_name}"))?;
    match ease_scalar(
        &Kind::Enum(enumeration.clone()),
        Value::String(value.into()),
    ) {
        Value::String(name) => enumeration.get_value_by_name(&name).map(|_| name),
        _ => None,
    }
}

/// `{kind: object}` as an event's payload, through the proto3 JSON mapping.
fn decode(kind: &str, object: Map<String, Value>) -> Result<proto::event::Payload, String> {
    let event = Value::Object(Map::from_iter([(kind.to_owned(), Value::Object(object))]));
    let dynamic = DynamicMessage::deserialize(event_descriptor(), event.into_deserializer())
        .map_err(|e| e.to_string())?;
    let event: proto::Event = dynamic.transcode_to().map_err(|e| e.to_string())?;
    event
        .payload
        .ok_or_else(|| format!("{kind} is not a payload"))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;

    fn fields(pairs: &[(&str, Spec)]) -> BTreeMap<String, Spec> {
        (pairs.iter())
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    #[test]
    fn a_message_is_built_with_short_enum_names_and_numbers_as_text() {
        let fields = fields(&[
            ("from", Spec::literal("customer")),
            ("text", Spec::path("/body")),
            ("sender_id", Spec::path("/author")),
        ]);
        let mapping = PayloadMapping::compile("message_sent", &fields).expect("compiles");
        let payload = mapping
            .build(&json!({"body": "hello", "author": 7}))
            .expect("builds");
        let proto::event::Payload::MessageSent(message) = payload else {
            panic!("a message: {payload:?}")
        };
        assert_eq!(message.from(), proto::Participant::Customer);
        assert_eq!(
            (message.text.as_str(), message.sender_id.as_str()),
            ("hello", "7")
        );
    }

    #[test]
    fn unknown_kinds_fields_and_literals_are_refused_at_compile() {
        let none = BTreeMap::new();
        assert!(PayloadMapping::compile("message", &none).is_err());
        assert!(PayloadMapping::compile("handover", &none).is_err());
        assert!(PayloadMapping::compile("channel", &none).is_err());
        let typo = fields(&[("txt", Spec::path("/x"))]);
        let error = PayloadMapping::compile("message_sent", &typo).expect_err("no txt");
        assert!(error.starts_with("fields.txt"), "{error}");
        let bad = fields(&[("from", Spec::literal("martian"))]);
        let error = PayloadMapping::compile("message_sent", &bad).expect_err("no martian");
        assert!(error.starts_with("fields.from"), "{error}");
    }

    #[test]
    fn a_value_of_the_wrong_type_names_its_field() {
        let fields = fields(&[
            ("confidence", Spec::path("/score")),
            ("intent", Spec::literal("billing")),
        ]);
        let mapping = PayloadMapping::compile("intent_detected", &fields).expect("compiles");
        let located = mapping
            .build(&json!({"score": {"deep": 1}}))
            .expect_err("an object is no confidence");
        assert_eq!(located.field, "fields.confidence");
        assert_eq!(located.path.as_deref(), Some("/score"));
        assert!(matches!(located.fault, Fault::Invalid(_)));
    }

    #[test]
    fn enum_names_read_short_and_full() {
        assert_eq!(
            enum_name("Channel", "email").as_deref(),
            Some("CHANNEL_EMAIL")
        );
        assert_eq!(
            enum_name("Channel", "CHANNEL_SMS").as_deref(),
            Some("CHANNEL_SMS")
        );
        assert_eq!(
            enum_name("IdentityKind", "chat-visitor").as_deref(),
            Some("IDENTITY_KIND_CHAT_VISITOR")
        );
        assert_eq!(enum_name("Channel", "fax"), None);
    }
}
