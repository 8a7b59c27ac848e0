//! Conversion between the public contract (`rezef.v1`) and the domain. Inbound conversion is
//! where a request's types and formats are checked: every problem becomes a [`Violation`]
//! naming the field by its protobuf path, and all of them are reported at once.

use rezef_events::event::Presence;

pub(crate) use rezef_record::check::{
    Check, ProtoEnum, duration, enum_or_unspecified, id_string, identity_to_proto, timestamp,
};
pub use rezef_record::{event_from_proto, event_to_proto, event_under};

pub(crate) fn presence_to_proto(presence: Presence) -> i32 {
    presence.to_proto()
}

pub mod insights;
mod journey;
pub mod routing;

pub use journey::{
    MASK, View, conversation_to_proto, journey_to_proto, linked_identity_to_proto, resume_to_proto,
};
