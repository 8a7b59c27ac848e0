//! Finding every tenant, source, agent and verification a request names, in its protobuf
//! bytes, before it is decoded: a request is checked against its key before any handler sees
//! it, and the check follows the service descriptors, so a method or message added later is
//! covered with no code for it. A request names a tenant in every `tenant_id` string field,
//! the adapter it speaks as in every `source` string field and an agent in every `agent_id`
//! string field, at any depth (`Publish`: in each event; `AgentSession`: in its `login`); and
//! it asserts a verification in every message with a `VerificationMethod` and an
//! `AssuranceLevel` field (`CustomerIdentified`, `LinkIdentityRequest`).

use std::collections::HashMap;

use bytes::Buf;
use prost::encoding::{DecodeContext, WireType, decode_key, decode_varint, skip_field};
use prost_reflect::{DescriptorPool, Kind, MessageDescriptor};

const METHOD_ENUM: &str = "rezef.v1.VerificationMethod";
const ASSURANCE_ENUM: &str = "rezef.v1.AssuranceLevel";

/// Where tenants, sources, agents and verifications are in one message type: its own
/// fields, and the fields of message types that hold some.
#[derive(Debug, Default, Clone)]
struct Plan {
    tenant: Vec<u32>,
    source: Vec<u32>,
    agent: Vec<u32>,
    /// Its verification method and assurance fields, when it has both.
    verification: Option<(u32, u32)>,
    nested: Vec<(u32, String)>,
}

impl Plan {
    fn names_any(&self) -> bool {
        let own = [&self.tenant, &self.source, &self.agent];
        own.iter().any(|fields| !fields.is_empty())
            || self.verification.is_some()
            || !self.nested.is_empty()
    }
}

/// What one request names.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Named {
    pub tenants: Vec<String>,
    pub sources: Vec<String>,
    pub agents: Vec<String>,
    pub verifications: Vec<Verification>,
}

/// A verification a request asserts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// The method as a `verify` grant names it (`pin`, `one_time_code`, ...).
    pub method: String,
    /// Whether the assurance is above low (what needs the grant).
    pub above_low: bool,
}

/// The plans of every message type that can name a tenant, and each method's request type.
#[derive(Debug, Default)]
pub struct NamedFields {
    plans: HashMap<String, Plan>,
    requests: HashMap<String, String>,
    /// Methods whose requests or responses are streams.
    streaming: std::collections::HashSet<String>,
    /// Verification methods by number, as grants name them.
    methods: HashMap<i32, String>,
}

/// A request whose bytes are not a protobuf message.
#[derive(Debug)]
pub struct Malformed;

impl NamedFields {
    /// Reads the services of `descriptors` (an encoded `FileDescriptorSet`).
    pub fn from_descriptors(descriptors: &[u8]) -> Result<Self, prost_reflect::DescriptorError> {
        let pool = DescriptorPool::decode(descriptors)?;
        let mut fields = NamedFields::default();
        if let Some(methods) = pool.get_enum_by_name(METHOD_ENUM) {
            let prefix = "VERIFICATION_METHOD_";
            for value in methods.values() {
                let name = value.name().strip_prefix(prefix).unwrap_or(value.name());
                (fields.methods).insert(value.number(), name.to_ascii_lowercase());
            }
        }
        for service in pool.services() {
            for method in service.methods() {
                let input = method.input();
                let path = format!("/{}/{}", service.full_name(), method.name());
                fields.plan(&input, &mut Vec::new());
                if method.is_client_streaming() || method.is_server_streaming() {
                    fields.streaming.insert(path.clone());
                }
                fields.requests.insert(path, input.full_name().to_owned());
            }
        }
        Ok(fields)
    }

    /// Whether `method` streams requests or responses.
    pub fn is_streaming(&self, method: &str) -> bool {
        self.streaming.contains(method)
    }

    /// Whether requests of `method` name a tenant or source anywhere.
    pub fn names_any(&self, method: &str) -> bool {
        (self.requests.get(method)).is_some_and(|message| self.plans.contains_key(message))
    }

    /// What one encoded request of `method` names, each kind in order.
    pub fn named(&self, method: &str, message: &[u8]) -> Result<Named, Malformed> {
        let mut found = Named::default();
        if let Some(name) = self.requests.get(method) {
            self.walk(name, message, &mut found)?;
        }
        Ok(found)
    }

    /// Plans `message` and what it holds; whether it can name a tenant. `path` guards
    /// against recursive types.
    fn plan(&mut self, message: &MessageDescriptor, path: &mut Vec<String>) -> bool {
        let name = message.full_name().to_owned();
        if self.plans.contains_key(&name) {
            return true;
        }
        if path.contains(&name) {
            return false;
        }
        path.push(name.clone());
        let mut plan = Plan::default();
        let (mut method, mut assurance) = (None, None);
        for field in message.fields() {
            let number = field.number();
            match field.kind() {
                Kind::String if field.name() == "tenant_id" => plan.tenant.push(number),
                Kind::String if field.name() == "source" => plan.source.push(number),
                Kind::String if field.name() == "agent_id" => plan.agent.push(number),
                Kind::Enum(e) if e.full_name() == METHOD_ENUM => method = Some(number),
                Kind::Enum(e) if e.full_name() == ASSURANCE_ENUM => assurance = Some(number),
                Kind::Message(inner) if self.plan(&inner, path) => {
                    plan.nested.push((number, inner.full_name().to_owned()));
                }
                _ => {}
            }
        }
        plan.verification = method.zip(assurance);
        path.pop();
        let names = plan.names_any();
        if names {
            self.plans.insert(name, plan);
        }
        names
    }

    fn walk(&self, name: &str, mut bytes: &[u8], found: &mut Named) -> Result<(), Malformed> {
        let Some(plan) = self.plans.get(name) else {
            return Ok(());
        };
        let (mut method, mut assurance) = (0, 0);
        while bytes.has_remaining() {
            let (number, wire_type) = decode_key(&mut bytes).map_err(|_| Malformed)?;
            if let Some((method_field, assurance_field)) = plan.verification
                && (number == method_field || number == assurance_field)
                && wire_type == WireType::Varint
            {
                // An enum is an int32: a larger varint is truncated, as protobuf does.
                let value = decode_varint(&mut bytes).map_err(|_| Malformed)? as i32;
                match number == method_field {
                    true => method = value,
                    false => assurance = value,
                }
                continue;
            }
            let nested = plan.nested.iter().find(|(n, _)| *n == number);
            let list = if plan.tenant.contains(&number) {
                Some(&mut found.tenants)
            } else if plan.source.contains(&number) {
                Some(&mut found.sources)
            } else if plan.agent.contains(&number) {
                Some(&mut found.agents)
            } else {
                None
            };
            let wanted = list.is_some() || nested.is_some();
            if !wanted || wire_type != WireType::LengthDelimited {
                skip_field(wire_type, number, &mut bytes, DecodeContext::default())
                    .map_err(|_| Malformed)?;
                continue;
            }
            let len = usize::try_from(decode_varint(&mut bytes).map_err(|_| Malformed)?)
                .map_err(|_| Malformed)?;
            if len > bytes.len() {
                return Err(Malformed);
            }
            let (value, rest) = bytes.split_at(len);
            bytes = rest;
            match (nested, list) {
                (Some((_, inner)), _) => self.walk(inner, value, found)?,
                (None, Some(list)) => list.push(String::from_utf8_lossy(value).into_owned()),
                (None, None) => {}
            }
        }
        if plan.verification.is_some() {
            let method = (self.methods.get(&method).cloned()).unwrap_or_else(|| method.to_string());
            let above_low = assurance > rezef_proto::v1::AssuranceLevel::Low as i32;
            found.verifications.push(Verification { method, above_low });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;
    use rezef_proto::v1;

    use super::*;

    fn fields() -> NamedFields {
        NamedFields::from_descriptors(rezef_proto::FILE_DESCRIPTOR_SET).expect("descriptors")
    }

    #[test]
    fn every_tenant_and_source_of_a_publish_is_found_in_its_events() {
        let event = |tenant: &str, source: &str| v1::Event {
            tenant_id: tenant.into(),
            source: source.into(),
            ..Default::default()
        };
        let request = v1::PublishRequest {
            events: vec![
                event("acme", "ivr"),
                event("globex", "ivr"),
                event("acme", "chat"),
            ],
            sequence: 9,
        };
        let found = fields().named("/rezef.v1.Ingest/Publish", &request.encode_to_vec());
        let found = found.expect("well formed");
        assert_eq!(found.tenants, ["acme", "globex", "acme"]);
        assert_eq!(found.sources, ["ivr", "ivr", "chat"]);
    }

    #[test]
    fn an_agent_session_names_its_tenant_in_the_login() {
        let login = v1::AgentSessionRequest {
            action: Some(v1::agent_session_request::Action::Login(
                v1::agent_session_request::Login {
                    tenant_id: "acme".into(),
                    ..Default::default()
                },
            )),
        };
        let fields = fields();
        let method = "/rezef.v1.Routing/AgentSession";
        assert!(fields.names_any(method));
        let found = fields
            .named(method, &login.encode_to_vec())
            .expect("well formed");
        assert_eq!(found.tenants, ["acme"]);
    }

    #[test]
    fn a_verification_is_found_in_a_published_event_and_in_a_link() {
        use v1::event::Payload;
        let identified =
            |method: v1::VerificationMethod, assurance: v1::AssuranceLevel| v1::Event {
                tenant_id: "acme".into(),
                payload: Some(Payload::CustomerIdentified(v1::CustomerIdentified {
                    method: method as i32,
                    assurance: assurance as i32,
                    ..Default::default()
                })),
                ..Default::default()
            };
        let request = v1::PublishRequest {
            events: vec![
                identified(v1::VerificationMethod::Pin, v1::AssuranceLevel::Substantial),
                identified(v1::VerificationMethod::CallerId, v1::AssuranceLevel::Low),
            ],
            sequence: 1,
        };
        let found = (fields().named("/rezef.v1.Ingest/Publish", &request.encode_to_vec()))
            .expect("well formed");
        let verification = |method: &str, above_low| Verification {
            method: method.into(),
            above_low,
        };
        assert_eq!(
            found.verifications,
            [verification("pin", true), verification("caller_id", false)]
        );
        let link = v1::LinkIdentityRequest {
            tenant_id: "acme".into(),
            method: v1::VerificationMethod::Document as i32,
            assurance: v1::AssuranceLevel::High as i32,
            ..Default::default()
        };
        let found = (fields().named("/rezef.v1.Identities/LinkIdentity", &link.encode_to_vec()))
            .expect("well formed");
        assert_eq!(found.verifications, [verification("document", true)]);
    }

    #[test]
    fn every_verification_method_is_one_a_grant_can_name() {
        let fields = fields();
        let mut methods: Vec<&str> = (fields.methods.iter())
            .filter(|(number, _)| **number != 0)
            .map(|(_, name)| name.as_str())
            .collect();
        methods.sort_unstable();
        let mut grantable = rezef_auth::VERIFY_METHODS.to_vec();
        grantable.sort_unstable();
        assert_eq!(methods, grantable);
    }

    #[test]
    fn the_agent_of_a_login_and_of_a_presence_change_is_found() {
        let login = v1::AgentSessionRequest {
            action: Some(v1::agent_session_request::Action::Login(
                v1::agent_session_request::Login {
                    tenant_id: "acme".into(),
                    profile: Some(v1::AgentProfile {
                        agent_id: "a-17".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            )),
        };
        let fields = fields();
        let found = (fields.named("/rezef.v1.Routing/AgentSession", &login.encode_to_vec()))
            .expect("well formed");
        assert_eq!(found.agents, ["a-17"]);
        let presence = v1::SetAgentPresenceRequest {
            tenant_id: "acme".into(),
            agent_id: "a-18".into(),
            ..Default::default()
        };
        let method = "/rezef.v1.Routing/SetAgentPresence";
        let found = (fields.named(method, &presence.encode_to_vec())).expect("well formed");
        assert_eq!(found.agents, ["a-18"]);
    }

    #[test]
    fn a_request_that_is_not_protobuf_is_malformed() {
        let found = fields().named("/rezef.v1.Journeys/GetJourney", &[0x0a, 0x09, b'a']);
        assert!(found.is_err());
    }

    #[test]
    fn health_checks_name_no_tenant() {
        assert!(!fields().names_any("/grpc.health.v1.Health/Check"));
    }
}
