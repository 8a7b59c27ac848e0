//! A journey as it leaves its partition: moved by a handover in the durable log
//! ([`Handover::JourneyMoved`](crate::handover::Handover::JourneyMoved)) or read by another
//! node (`rezef.cluster.v1.Partitions/ReadJourney`).
//!
//! [`Journey`] is projection state with no compatibility promise: a store of another layout
//! is rebuilt. A log record, though, must decode forever, and nodes of two versions must
//! understand each other during an upgrade. So what travels is a [`JourneySnapshot`], a JSON
//! document with a version in its `"v"` field (reserved: no journey field may be named so).
//!
//! # Versions
//! - **1**: the serde layout of `Journey` at `STATE_FORMAT` 3. Records written before
//!   snapshots existed carry it without `"v"`, so a document without `"v"` is version 1.
//!   `tests/fixtures/journey_moved_v1.json`, a record written by that code, pins it.
//!   Fields added since, with defaults: `Journey.past`, `Conversation.earlier_interactions`,
//!   `Counters.conversations_forgotten` (journeys stay bounded, see `bound`),
//!   `IssuedToken.redeem_on` (tokens bound to channels).
//!
//! # The compatibility rule
//! Every snapshot ever written must decode. Version 1 is `Journey` itself as long as its
//! serde layout reads every version 1 document: a new field with `#[serde(default)]` or a
//! new enum variant keeps it. Any other change (renaming or removing a field or variant,
//! changing a type, a new field without a default) makes the fixture test fail, and then
//! the change adds a version: copy the journey types as they were into `snapshot/v1.rs` as
//! version 1's own layout, add `V2` holding the new `Journey`, and make
//! [`JourneySnapshot::into_journey`] upcast version 1. Writers write the newest version.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};
use crate::ids::CustomerId;
use crate::journey::Journey;

/// The snapshot version this code writes.
pub const SNAPSHOT_VERSION: u64 = 1;

/// A journey in a layout that stays decodable (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub enum JourneySnapshot {
    /// Version 1: `Journey`'s serde layout at `STATE_FORMAT` 3.
    V1(Box<Journey>),
}

impl JourneySnapshot {
    /// A snapshot of `journey` in the newest version.
    pub fn of(journey: &Journey) -> Self {
        Self::from(journey.clone())
    }

    /// The journey, upcast from the snapshot's version.
    pub fn into_journey(self) -> Journey {
        match self {
            Self::V1(journey) => *journey,
        }
    }

    /// The customer whose journey it is.
    pub fn customer_id(&self) -> &CustomerId {
        match self {
            Self::V1(journey) => &journey.customer_id,
        }
    }

    pub fn version(&self) -> u64 {
        match self {
            Self::V1(_) => 1,
        }
    }

    /// The encoding nodes send each other: the JSON document, as in a handover.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("journeys have string keys and finite numbers only")
    }

    /// [`Self::to_bytes`] as text (JSON is UTF-8): how a sealed record keeps it.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("journeys have string keys and finite numbers only")
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        serde_json::from_slice(bytes).map_err(Error::DecodeSnapshot)
    }
}

impl From<Journey> for JourneySnapshot {
    fn from(journey: Journey) -> Self {
        Self::V1(Box::new(journey))
    }
}

/// A version's layout with its number in front.
#[derive(Serialize)]
struct Versioned<'a, T> {
    v: u64,
    #[serde(flatten)]
    layout: &'a T,
}

impl Serialize for JourneySnapshot {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::V1(journey) => Versioned {
                v: 1,
                layout: journey.as_ref(),
            }
            .serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for JourneySnapshot {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut document = serde_json::Map::deserialize(deserializer)?;
        let version = match document.remove("v") {
            None => 1,
            Some(v) => v
                .as_u64()
                .ok_or_else(|| D::Error::custom(format!("snapshot version {v} is not a number")))?,
        };
        let document = serde_json::Value::Object(document);
        match version {
            1 => serde_json::from_value(document)
                .map(|journey| Self::V1(Box::new(journey)))
                .map_err(D::Error::custom),
            other => Err(D::Error::custom(format!(
                "journey snapshot version {other} is newer than this code (it reads up to \
                 {SNAPSHOT_VERSION})"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::rich_journey;

    #[test]
    fn a_journey_survives_its_snapshot() {
        let journey = rich_journey();
        let bytes = JourneySnapshot::of(&journey).to_bytes();
        assert!(bytes.starts_with(br#"{"v":1,"tenant_id":"acme""#));
        let back = JourneySnapshot::from_bytes(&bytes).expect("decodes");
        assert_eq!(back.version(), SNAPSHOT_VERSION);
        assert_eq!(back.customer_id(), &journey.customer_id);
        assert_eq!(back.into_journey(), journey);
        // Code from before snapshots reads version 1 as its journey, ignoring `"v"`.
        let before: Journey = serde_json::from_slice(&bytes).expect("decodes");
        assert_eq!(before, journey);
    }

    #[test]
    fn a_document_without_a_version_is_version_1() {
        let journey = rich_journey();
        let bare = serde_json::to_vec(&journey).expect("serializes");
        let snapshot = JourneySnapshot::from_bytes(&bare).expect("decodes");
        assert_eq!(snapshot, JourneySnapshot::V1(Box::new(journey)));
    }

    #[test]
    fn unknown_versions_and_garbage_are_errors_not_panics() {
        let newer = br#"{"v":2,"tenant_id":"acme"}"#;
        let error = JourneySnapshot::from_bytes(newer).expect_err("version 2 is unknown");
        assert!(error.to_string().contains("version 2"), "{error}");
        for garbage in [
            &b""[..],
            b"[]",
            b"{\"v\":\"one\"}",
            b"{\"v\":1}",
            b"\x00\x01",
        ] {
            assert!(JourneySnapshot::from_bytes(garbage).is_err());
        }
    }
}
