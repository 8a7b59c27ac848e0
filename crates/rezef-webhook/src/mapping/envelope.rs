//! Who and where an event is about, from the route's envelope and the event's own (which
//! wins field by field): the tenant, the source, the customer's identity, the channel, the
//! interaction and conversation, when it happened, and the event's id.

use std::str::FromStr;
use std::time::SystemTime;

use prost_types::Timestamp;
use rezef_adapter::proto;
use ring::digest;
use serde_json::Value;

use super::config::{Envelope, Source, Spec};
use super::payload::enum_name;
use super::read::{self, Fault};

/// A fault at an envelope field, with the path it was read at.
pub type Faulted = (&'static str, Option<String>, Fault);

/// An envelope whose every spec is checked.
#[derive(Debug, Clone)]
pub struct EnvelopeMapping {
    tenant: Spec,
    source: Spec,
    identity_kind: Option<Spec>,
    identity: Option<Spec>,
    identity_network: Option<Spec>,
    channel: Option<Spec>,
    interaction: Option<Spec>,
    conversation: Option<Spec>,
    id: Option<Spec>,
    occurred_at: Option<(Spec, TimeFormat)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimeFormat {
    Rfc3339,
    UnixSeconds,
    UnixMillis,
}

impl EnvelopeMapping {
    /// `own` over `route`'s; `source` when neither names one; `identity` required unless
    /// `customer_optional`.
    pub fn compile(
        route: &Envelope,
        own: &Envelope,
        source: &str,
        customer_optional: bool,
    ) -> Result<Self, String> {
        let pick = |own: &Option<Spec>, route: &Option<Spec>| own.clone().or_else(|| route.clone());
        let tenant = pick(&own.tenant, &route.tenant).ok_or("envelope.tenant is required")?;
        let identity_kind = pick(&own.identity_kind, &route.identity_kind);
        let identity = pick(&own.identity, &route.identity);
        if identity_kind.is_some() != identity.is_some() {
            return Err("envelope.identity_kind and envelope.identity go together".into());
        }
        if identity.is_none() && !customer_optional {
            return Err("envelope.identity (and identity_kind) is required".into());
        }
        let occurred_at = match pick(&own.occurred_at, &route.occurred_at) {
            None => None,
            Some(spec) => {
                let format = match spec.format.as_deref() {
                    None | Some("rfc3339") => TimeFormat::Rfc3339,
                    Some("unix_seconds") => TimeFormat::UnixSeconds,
                    Some("unix_millis") => TimeFormat::UnixMillis,
                    Some(other) => {
                        return Err(format!(
                            "envelope.occurred_at.format: {other:?} is not rfc3339, \
                             unix_seconds or unix_millis"
                        ));
                    }
                };
                Some((spec, format))
            }
        };
        let mapping = Self {
            tenant,
            source: pick(&own.source, &route.source).unwrap_or_else(|| Spec::literal(source)),
            identity_kind,
            identity,
            identity_network: pick(&own.identity_network, &route.identity_network),
            channel: pick(&own.channel, &route.channel),
            interaction: pick(&own.interaction, &route.interaction),
            conversation: pick(&own.conversation, &route.conversation),
            id: pick(&own.id, &route.id),
            occurred_at,
        };
        mapping.check_specs()?;
        Ok(mapping)
    }

    /// Every field's spec, by name.
    fn specs(&self) -> [(&'static str, Option<&Spec>); 10] {
        [
            ("tenant", Some(&self.tenant)),
            ("source", Some(&self.source)),
            ("identity_kind", self.identity_kind.as_ref()),
            ("identity", self.identity.as_ref()),
            ("identity_network", self.identity_network.as_ref()),
            ("channel", self.channel.as_ref()),
            ("interaction", self.interaction.as_ref()),
            ("conversation", self.conversation.as_ref()),
            ("id", self.id.as_ref()),
            (
                "occurred_at",
                self.occurred_at.as_ref().map(|(spec, _)| spec),
            ),
        ]
    }

    /// `format` only on `occurred_at`, the literals of enums known.
    fn check_specs(&self) -> Result<(), String> {
        for (name, spec) in self.specs() {
            let Some(spec) = spec else { continue };
            if spec.format.is_some() && name != "occurred_at" {
                return Err(format!("envelope.{name}: format is for occurred_at only"));
            }
            let enumeration = match name {
                "identity_kind" => "IdentityKind",
                "channel" => "Channel",
                _ => continue,
            };
            let literals = match &spec.source {
                Source::Value(value) if spec.map.is_none() => vec![value],
                _ => spec.map.iter().flat_map(|m| m.values()).collect(),
            };
            for literal in literals {
                let known = read::text(literal)
                    .ok()
                    .and_then(|t| enum_name(enumeration, &t));
                if known.is_none() {
                    return Err(format!("envelope.{name}: {literal} is not a {enumeration}"));
                }
            }
        }
        Ok(())
    }

    /// The JSON Pointers the envelope reads (to check them).
    pub fn pointers(&self) -> impl Iterator<Item = &str> {
        (self.specs().into_iter()).filter_map(|(_, spec)| spec?.pointer())
    }

    /// The event `payload` becomes for `body` (of bytes `raw`, received at `now`), its id
    /// made of `route`, `name` and the source's id or the body's hash.
    pub fn event(
        &self,
        route: &str,
        name: &str,
        body: &Value,
        raw: &[u8],
        now: SystemTime,
        payload: proto::event::Payload,
    ) -> Result<proto::Event, Faulted> {
        let text = |field: &'static str, spec: &Spec| {
            read::read_text(spec, body).map_err(|f| (field, spec.pointer().map(str::to_owned), f))
        };
        let required = |field: &'static str, spec: &Spec| {
            text(field, spec)?.ok_or((field, spec.pointer().map(str::to_owned), Fault::Missing))
        };
        let optional = |field: &'static str, spec: &Option<Spec>| match spec {
            Some(spec) => text(field, spec).map(Option::unwrap_or_default),
            None => Ok(String::new()),
        };
        let customer = match (&self.identity_kind, &self.identity) {
            (Some(kind_spec), Some(value_spec)) => {
                let kind = required("identity_kind", kind_spec)?;
                let kind = enum_name("IdentityKind", &kind)
                    .and_then(|k| proto::IdentityKind::from_str_name(&k))
                    .ok_or_else(|| {
                        let why = Fault::Invalid(format!("{kind:?} is not an identity kind"));
                        ("identity_kind", kind_spec.pointer().map(str::to_owned), why)
                    })?;
                Some(proto::CustomerRef {
                    r#ref: Some(proto::customer_ref::Ref::Identity(proto::ChannelIdentity {
                        kind: kind as i32,
                        value: required("identity", value_spec)?,
                        network: optional("identity_network", &self.identity_network)?,
                    })),
                })
            }
            _ => None,
        };
        let channel = match &self.channel {
            Some(spec) => {
                let channel = required("channel", spec)?;
                enum_name("Channel", &channel)
                    .and_then(|c| proto::Channel::from_str_name(&c))
                    .ok_or_else(|| {
                        let why = Fault::Invalid(format!("{channel:?} is not a channel"));
                        ("channel", spec.pointer().map(str::to_owned), why)
                    })?
            }
            None => proto::Channel::Unspecified,
        };
        let occurred_at = match &self.occurred_at {
            Some((spec, format)) => {
                let at = |f| ("occurred_at", spec.pointer().map(str::to_owned), f);
                let value = read::read(spec, body).map_err(at)?;
                match value {
                    Some(value) => timestamp(&value, *format).map_err(at)?,
                    None => Timestamp::from(now),
                }
            }
            None => Timestamp::from(now),
        };
        let id = match &self.id {
            Some(spec) => (text("id", spec)?)
                .filter(|id| !id.is_empty())
                .map(|id| source_id(route, name, &id)),
            None => None,
        };
        Ok(proto::Event {
            event_id: id.unwrap_or_else(|| body_id(route, name, raw)),
            tenant_id: required("tenant", &self.tenant)?,
            occurred_at: Some(occurred_at),
            source: required("source", &self.source)?,
            schema_version: 1,
            customer,
            conversation_id: optional("conversation", &self.conversation)?,
            interaction_id: optional("interaction", &self.interaction)?,
            channel: channel as i32,
            payload: Some(payload),
            ..Default::default()
        })
    }
}

/// `value` as a time in `format`.
fn timestamp(value: &Value, format: TimeFormat) -> Result<Timestamp, Fault> {
    let invalid = |what: &str| Fault::Invalid(format!("{value} is not {what}"));
    match format {
        TimeFormat::Rfc3339 => (value.as_str())
            .and_then(|t| Timestamp::from_str(t).ok())
            .ok_or_else(|| invalid("an RFC 3339 time")),
        TimeFormat::UnixSeconds | TimeFormat::UnixMillis => {
            let per_second: i64 = match format {
                TimeFormat::UnixMillis => 1000,
                _ => 1,
            };
            // Whole numbers exactly; fractions (`1700000000.5`) through f64.
            let whole = match value {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            };
            if let Some(units) = whole {
                let nanos = units.rem_euclid(per_second) * (1_000_000_000 / per_second);
                return Ok(Timestamp {
                    seconds: units.div_euclid(per_second),
                    nanos: nanos as i32,
                });
            }
            let number = match value {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            }
            .filter(|n: &f64| n.is_finite())
            .ok_or_else(|| invalid("a number"))?;
            let seconds = number / per_second as f64;
            Ok(Timestamp {
                seconds: seconds.floor() as i64,
                nanos: ((seconds - seconds.floor()) * 1e9)
                    .round()
                    .min(999_999_999.0) as i32,
            })
        }
    }
}

/// `webhook:<route>:<event>:<id>`, or with the id's hash (`h…`) when it would not make a
/// valid event id (printable ASCII, 128 characters at most).
fn source_id(route: &str, name: &str, id: &str) -> String {
    let plain = format!("webhook:{route}:{name}:{id}");
    if plain.len() <= 128 && plain.bytes().all(|b| b.is_ascii_graphic()) {
        return plain;
    }
    format!("webhook:{route}:{name}:h{}", hex32(id.as_bytes()))
}

/// `webhook:<route>:<event>:b…`, the body's hash: the same bytes sent again, the same id.
fn body_id(route: &str, name: &str, raw: &[u8]) -> String {
    format!("webhook:{route}:{name}:b{}", hex32(raw))
}

/// 32 hex digits of SHA-256.
fn hex32(bytes: &[u8]) -> String {
    let hash = digest::digest(&digest::SHA256, bytes);
    hash.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn times_read_in_each_format() {
        let at = |v: Value, f| timestamp(&v, f);
        let expected = Timestamp {
            seconds: 1_700_000_000,
            nanos: 500_000_000,
        };
        assert_eq!(
            at(json!("2023-11-14T22:13:20.5Z"), TimeFormat::Rfc3339),
            Ok(expected)
        );
        assert_eq!(
            at(json!(1_700_000_000.5), TimeFormat::UnixSeconds),
            Ok(expected)
        );
        assert_eq!(
            at(json!("1700000000500"), TimeFormat::UnixMillis),
            Ok(expected)
        );
        let before_1970 = Timestamp {
            seconds: -2,
            nanos: 750_000_000,
        };
        assert_eq!(at(json!(-1250), TimeFormat::UnixMillis), Ok(before_1970));
        assert!(at(json!("yesterday"), TimeFormat::Rfc3339).is_err());
        assert!(at(json!(true), TimeFormat::UnixSeconds).is_err());
    }

    #[test]
    fn ids_are_readable_when_they_can_be_and_hashed_when_not() {
        assert_eq!(source_id("desk", "opened", "42"), "webhook:desk:opened:42");
        let spaced = source_id("desk", "opened", "a b");
        assert!(spaced.starts_with("webhook:desk:opened:h"), "{spaced}");
        assert_eq!(spaced.len(), "webhook:desk:opened:h".len() + 32);
        assert_ne!(body_id("desk", "a", b"{}"), body_id("desk", "b", b"{}"));
    }
}
