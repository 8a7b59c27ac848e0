//! The mapping core, pure (no I/O): a route's `[[routes.events]]` compiled once at start
//! (every mistake named by route, event and field), then a JSON body mapped to the events
//! whose `when` holds, or to an error naming the path the body lacks or has wrong.
//!
//! - `config.rs`: the routes as written; `read.rs`: a value read at a JSON Pointer;
//! - `envelope.rs`: tenant, customer, channel, interaction, time, id;
//! - `payload.rs`: any payload, through the contract's descriptors.

pub mod config;
mod envelope;
mod payload;
mod read;
#[cfg(test)]
mod tests;

use std::time::SystemTime;

use rezef_adapter::proto;
use serde_json::Value;

use config::{Condition, RouteConfig};
use envelope::EnvelopeMapping;
use payload::PayloadMapping;
pub use read::Fault;

/// A mistake in the mapping file, named by where it is (`routes[desk].events[opened]`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {reason}")]
pub struct ConfigError {
    pub at: String,
    pub reason: String,
}

/// Why a body does not map.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MapError {
    #[error("the body is not JSON: {0}")]
    NotJson(String),
    /// A required value is missing (or `null`) at `path`.
    #[error("event {event}: {field} needs a value at {path}")]
    Missing {
        event: String,
        field: String,
        path: String,
    },
    /// The value for `field` (read at `path`, if read) does not fit.
    #[error("event {event}: {field}{}: {reason}", at(.path))]
    Invalid {
        event: String,
        field: String,
        path: Option<String>,
        reason: String,
    },
}

fn at(path: &Option<String>) -> String {
    path.as_ref()
        .map(|p| format!(" at {p}"))
        .unwrap_or_default()
}

impl MapError {
    /// The JSON Pointer at fault, if any.
    pub fn path(&self) -> Option<&str> {
        match self {
            Self::NotJson(_) => None,
            Self::Missing { path, .. } => Some(path),
            Self::Invalid { path, .. } => path.as_deref(),
        }
    }

    fn at(event: &str, field: String, path: Option<String>, fault: Fault) -> Self {
        let event = event.to_owned();
        match (fault, path) {
            (Fault::Missing, Some(path)) => Self::Missing { event, field, path },
            (Fault::Missing, None) => Self::Invalid {
                event,
                field,
                path: None,
                reason: "no value".into(),
            },
            (Fault::Invalid(reason), path) => Self::Invalid {
                event,
                field,
                path,
                reason,
            },
        }
    }
}

/// A route's events, compiled.
#[derive(Debug, Clone)]
pub struct Mapping {
    route: String,
    events: Vec<EventMapping>,
}

#[derive(Debug, Clone)]
struct EventMapping {
    name: String,
    when: Vec<Condition>,
    envelope: EnvelopeMapping,
    payload: PayloadMapping,
}

impl Mapping {
    /// `route`'s events checked, with `source` as the events' source unless they name one.
    pub fn compile(route: &RouteConfig, source: &str) -> Result<Self, ConfigError> {
        let route_at = format!("routes[{}]", route.name);
        let fail = |at: &str, reason: String| ConfigError {
            at: at.to_owned(),
            reason,
        };
        if !is_name(&route.name) {
            return Err(fail(&route_at, "name: 1 to 40 of [A-Za-z0-9_-]".into()));
        }
        if route.events.is_empty() {
            return Err(fail(
                &route_at,
                "at least one [[routes.events]] is needed".into(),
            ));
        }
        let mut events: Vec<EventMapping> = Vec::new();
        for event in &route.events {
            let at = format!("{route_at}.events[{}]", event.name);
            if !is_name(&event.name) {
                return Err(fail(&at, "name: 1 to 40 of [A-Za-z0-9_-]".into()));
            }
            if events.iter().any(|e| e.name == event.name) {
                return Err(fail(&at, "the name is taken by another event".into()));
            }
            let customer_optional = event.kind == "agent_presence_changed";
            let envelope = EnvelopeMapping::compile(
                &route.envelope,
                &event.envelope,
                source,
                customer_optional,
            )
            .map_err(|reason| fail(&at, reason))?;
            let payload =
                PayloadMapping::compile(&event.kind, &event.fields).map_err(|r| fail(&at, r))?;
            let pointers = (event.when.iter().map(|c| c.path.as_str()))
                .chain(envelope.pointers())
                .chain(event.fields.values().filter_map(config::Spec::pointer));
            for pointer in pointers {
                if !read::is_pointer(pointer) {
                    let reason = format!("{pointer:?} is not a JSON Pointer (\"/a/b/0\")");
                    return Err(fail(&at, reason));
                }
            }
            for condition in &event.when {
                if condition.equals.is_some() == condition.exists.is_some() {
                    let reason = format!("when {}: one of equals or exists", condition.path);
                    return Err(fail(&at, reason));
                }
            }
            events.push(EventMapping {
                name: event.name.clone(),
                when: event.when.clone(),
                envelope,
                payload,
            });
        }
        Ok(Self {
            route: route.name.clone(),
            events,
        })
    }

    pub fn route(&self) -> &str {
        &self.route
    }

    /// The events `raw` becomes, received at `now`, in the mapping's order: none when no
    /// event's `when` holds.
    pub fn map(&self, raw: &[u8], now: SystemTime) -> Result<Vec<proto::Event>, MapError> {
        let body: Value =
            serde_json::from_slice(raw).map_err(|e| MapError::NotJson(e.to_string()))?;
        let mut events = Vec::new();
        for event in self.events.iter().filter(|e| holds(&e.when, &body)) {
            let payload = (event.payload.build(&body))
                .map_err(|l| MapError::at(&event.name, l.field, l.path, l.fault))?;
            let mapped = (event.envelope)
                .event(&self.route, &event.name, &body, raw, now, payload)
                .map_err(|(field, path, fault)| {
                    MapError::at(&event.name, format!("envelope.{field}"), path, fault)
                })?;
            events.push(mapped);
        }
        Ok(events)
    }
}

fn holds(when: &[Condition], body: &Value) -> bool {
    when.iter().all(|condition| {
        let found = body.pointer(&condition.path).filter(|v| !v.is_null());
        match (&condition.equals, condition.exists) {
            (Some(expected), _) => found == Some(expected),
            (None, Some(exists)) => found.is_some() == exists,
            (None, None) => true,
        }
    })
}

/// A route's or an event's name: in URLs and event ids.
fn is_name(name: &str) -> bool {
    (1..=40).contains(&name.len())
        && (name.bytes()).all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}
