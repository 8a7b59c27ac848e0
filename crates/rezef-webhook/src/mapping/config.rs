//! The mapping file's routes as written (`[[routes]]` in `deploy/rezef-webhook.toml`),
//! before `compile.rs` checks them. Values are [`Spec`]s: a literal (`channel = "email"`) or a
//! table that reads the body (`{ path = "/ticket/id" }`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `[[routes]]`: `POST /hooks/<name>`.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RouteConfig {
    /// The route's name, in its URL and in its events' ids: `[A-Za-z0-9_-]`, 1 to 40.
    pub name: String,
    pub auth: AuthConfig,
    /// What every event of the route carries, unless an event's own `envelope` says.
    pub envelope: Envelope,
    pub events: Vec<EventConfig>,
}

/// `[routes.auth]`: exactly one of `hmac`, `bearer`, or `none = true`.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    pub hmac: Option<HmacConfig>,
    pub bearer: Option<BearerConfig>,
    /// Takes requests with no credential at all (a test, or a trusted network).
    pub none: bool,
}

/// HMAC-SHA256 of the body, in a header.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HmacConfig {
    /// The header carrying the signature (`X-Hub-Signature-256`).
    pub header: String,
    /// The shared secret, or the environment variable holding it (`secret_env`).
    pub secret: Option<String>,
    pub secret_env: Option<String>,
    pub encoding: Encoding,
    /// Text before the signature in the header, removed (`sha256=`).
    pub prefix: String,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    #[default]
    Hex,
    Base64,
}

/// `Authorization: Bearer <token>`.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BearerConfig {
    pub token: Option<String>,
    pub token_env: Option<String>,
}

/// Who and where an event is about; every field a [`Spec`].
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Envelope {
    pub tenant: Option<Spec>,
    /// The `source` of the events; unset: `[webhook] source`.
    pub source: Option<Spec>,
    /// `phone`, `email`, `chat_visitor`, `social_handle`, `messaging_id`, `app_user`,
    /// `crm_id` (or `IDENTITY_KIND_…`).
    pub identity_kind: Option<Spec>,
    pub identity: Option<Spec>,
    /// A social identity's network (`twitter`).
    pub identity_network: Option<Spec>,
    /// `voice`, `email`, `webchat`, … (or `CHANNEL_…`).
    pub channel: Option<Spec>,
    pub interaction: Option<Spec>,
    pub conversation: Option<Spec>,
    /// The source system's delivery or message id: the event's id is made of it, the route
    /// and the event's name, so a POST sent again gives the same ids. Unset: a hash of the
    /// body.
    pub id: Option<Spec>,
    /// When it happened (`format`: `rfc3339`, `unix_seconds`, `unix_millis`); unset: when
    /// the POST arrived.
    pub occurred_at: Option<Spec>,
}

/// `[[routes.events]]`: one event a body may become.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventConfig {
    /// The mapping's name, in its events' ids: `[A-Za-z0-9_-]`, 1 to 40.
    pub name: String,
    /// Every condition must hold for the body to become this event; none: always.
    pub when: Vec<Condition>,
    /// The payload: its field name in `rezef.v1.Event` (`message_sent`, `intent_detected`).
    pub kind: String,
    /// The payload's fields by their names in the proto (`text`, `from`).
    pub fields: BTreeMap<String, Spec>,
    pub envelope: Envelope,
}

/// A JSON Pointer that must be present (`exists = true`), absent (`exists = false`) or
/// equal a value (`equals`).
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Condition {
    pub path: String,
    pub equals: Option<Value>,
    pub exists: Option<bool>,
}

/// Where a value comes from: the body at a JSON Pointer (RFC 6901), or a literal; mapped
/// through `map` when given. A table is always read as a spec, so a literal table is written
/// `{ value = { … } }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Value", into = "Value")]
pub struct Spec {
    pub source: Source,
    /// A missing path leaves the field unset instead of refusing the body.
    pub optional: bool,
    /// The value read (as text) to the value used: `{ web = "webchat" }`.
    pub map: Option<Map<String, Value>>,
    /// `occurred_at`'s format.
    pub format: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    Path(String),
    Value(Value),
}

impl Spec {
    pub fn literal(value: impl Into<Value>) -> Self {
        Self {
            source: Source::Value(value.into()),
            optional: false,
            map: None,
            format: None,
        }
    }

    pub fn path(path: &str) -> Self {
        Self {
            source: Source::Path(path.to_owned()),
            ..Self::literal(Value::Null)
        }
    }

    /// The JSON Pointer it reads, if it reads the body.
    pub fn pointer(&self) -> Option<&str> {
        match &self.source {
            Source::Path(path) => Some(path),
            Source::Value(_) => None,
        }
    }
}

const SPEC_KEYS: &str = "a value table takes path or value, and optional, map, format";

impl TryFrom<Value> for Spec {
    type Error = String;

    fn try_from(value: Value) -> Result<Self, String> {
        let Value::Object(mut table) = value else {
            return Ok(Self::literal(value));
        };
        let source = match (table.remove("path"), table.remove("value")) {
            (Some(Value::String(path)), None) => Source::Path(path),
            (Some(_), None) => return Err("path must be a string".into()),
            (None, Some(value)) => Source::Value(value),
            (Some(_), Some(_)) => return Err("path and value exclude each other".into()),
            (None, None) => return Err(format!("path or value is required ({SPEC_KEYS})")),
        };
        let optional = match table.remove("optional") {
            None => false,
            Some(Value::Bool(optional)) => optional,
            Some(_) => return Err("optional must be true or false".into()),
        };
        let map = match table.remove("map") {
            None => None,
            Some(Value::Object(map)) => Some(map),
            Some(_) => return Err("map must be a table".into()),
        };
        let format = match table.remove("format") {
            None => None,
            Some(Value::String(format)) => Some(format),
            Some(_) => return Err("format must be a string".into()),
        };
        if let Some(key) = table.keys().next() {
            return Err(format!("unknown key {key} ({SPEC_KEYS})"));
        }
        Ok(Self {
            source,
            optional,
            map,
            format,
        })
    }
}

impl From<Spec> for Value {
    fn from(spec: Spec) -> Self {
        let mut table = Map::new();
        match spec.source {
            Source::Path(path) => table.insert("path".into(), Value::String(path)),
            Source::Value(value) => table.insert("value".into(), value),
        };
        if spec.optional {
            table.insert("optional".into(), Value::Bool(true));
        }
        if let Some(map) = spec.map {
            table.insert("map".into(), Value::Object(map));
        }
        if let Some(format) = spec.format {
            table.insert("format".into(), Value::String(format));
        }
        Value::Object(table)
    }
}
