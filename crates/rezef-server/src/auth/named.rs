//! Finding every tenant and source a request names, in its protobuf bytes, before it is
//! decoded: a request is checked against its key before any handler sees it, and the check
//! follows the service descriptors, so a method or message added later is covered with no
//! code for it. A request names a tenant in every `tenant_id` string field and the adapter
//! it speaks as in every `source` string field, at any depth (`Publish`: in each event;
//! `AgentSession`: in its `login`); all of them must be the key's.

use std::collections::HashMap;

use bytes::Buf;
use prost::encoding::{DecodeContext, WireType, decode_key, decode_varint, skip_field};
use prost_reflect::{DescriptorPool, Kind, MessageDescriptor};

/// Where tenants and sources are in one message type: its own `tenant_id` and `source`
/// fields, and the fields of message types that hold some.
#[derive(Debug, Default, Clone)]
struct Plan {
    tenant: Vec<u32>,
    source: Vec<u32>,
    nested: Vec<(u32, String)>,
}

/// What one request names.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Named {
    pub tenants: Vec<String>,
    pub sources: Vec<String>,
}

/// The plans of every message type that can name a tenant, and each method's request type.
#[derive(Debug, Default)]
pub struct NamedFields {
    plans: HashMap<String, Plan>,
    requests: HashMap<String, String>,
    /// Methods whose requests or responses are streams.
    streaming: std::collections::HashSet<String>,
}

/// A request whose bytes are not a protobuf message.
#[derive(Debug)]
pub struct Malformed;

impl NamedFields {
    /// Reads the services of `descriptors` (an encoded `FileDescriptorSet`).
    pub fn from_descriptors(descriptors: &[u8]) -> Result<Self, prost_reflect::DescriptorError> {
        let pool = DescriptorPool::decode(descriptors)?;
        let mut fields = NamedFields::default();
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

    /// The tenants and sources one encoded request of `method` names, in order.
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
        for field in message.fields() {
            match field.kind() {
                Kind::String if field.name() == "tenant_id" => plan.tenant.push(field.number()),
                Kind::String if field.name() == "source" => plan.source.push(field.number()),
                Kind::Message(inner) if self.plan(&inner, path) => {
                    plan.nested
                        .push((field.number(), inner.full_name().to_owned()));
                }
                _ => {}
            }
        }
        path.pop();
        let names = !plan.tenant.is_empty() || !plan.source.is_empty() || !plan.nested.is_empty();
        if names {
            self.plans.insert(name, plan);
        }
        names
    }

    fn walk(&self, name: &str, mut bytes: &[u8], found: &mut Named) -> Result<(), Malformed> {
        let Some(plan) = self.plans.get(name) else {
            return Ok(());
        };
        while bytes.has_remaining() {
            let (number, wire_type) = decode_key(&mut bytes).map_err(|_| Malformed)?;
            let nested = plan.nested.iter().find(|(n, _)| *n == number);
            let (tenant, source) = (plan.tenant.contains(&number), plan.source.contains(&number));
            let wanted = tenant || source || nested.is_some();
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
            let text = || String::from_utf8_lossy(value).into_owned();
            match nested {
                Some((_, inner)) => self.walk(inner, value, found)?,
                None if tenant => found.tenants.push(text()),
                None => found.sources.push(text()),
            }
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
    fn a_request_that_is_not_protobuf_is_malformed() {
        let found = fields().named("/rezef.v1.Journeys/GetJourney", &[0x0a, 0x09, b'a']);
        assert!(found.is_err());
    }

    #[test]
    fn health_checks_name_no_tenant() {
        assert!(!fields().names_any("/grpc.health.v1.Health/Check"));
    }
}
