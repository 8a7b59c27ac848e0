//! A log of identity changes for 4 customers (links, verifications proving others' CRM ids
//! with random evidence, merges and unmerges on request), shared by the property tests that
//! fold it.

use proptest::prelude::*;
use rezef_events::event::{AssuranceLevel, Participant, Payload, VerificationMethod};
use rezef_events::fold::customer_id_for;
use rezef_events::testing::EventBuilder;
use rezef_events::{Channel, ChannelIdentity, Event, IdentityKind, TenantId};

pub fn acme() -> TenantId {
    TenantId::new("acme").expect("valid")
}

pub fn crm(id: &str) -> ChannelIdentity {
    ChannelIdentity::new(IdentityKind::CrmId, id, None).expect("valid")
}

pub fn verified(
    b: &mut EventBuilder,
    method: VerificationMethod,
    assurance: AssuranceLevel,
    identity: ChannelIdentity,
) -> Event {
    b.event(Payload::CustomerIdentified {
        method,
        assurance,
        identities: vec![identity],
        expires_at: None,
    })
}

/// Events for 4 customers, each showing its own identity, some proving others' CRM ids with
/// random evidence, some merging or unmerging on request.
pub fn arb_identity_events() -> impl Strategy<Value = Vec<(usize, u8, usize)>> {
    prop::collection::vec((0usize..4, 0u8..8, 0usize..4), 1..40)
}

pub fn identity_events(specs: &[(usize, u8, usize)]) -> Vec<Event> {
    let methods = [
        (VerificationMethod::Knowledge, AssuranceLevel::High),
        (VerificationMethod::CallerId, AssuranceLevel::High),
        (VerificationMethod::OneTimeCode, AssuranceLevel::Low),
    ];
    specs
        .iter()
        .enumerate()
        .map(|(n, &(who, kind, other))| {
            let mut b = EventBuilder::visitor("acme", &format!("v-{who}"))
                .on(Channel::Webchat, &format!("chat-{who}"))
                .ids(&format!("x{n}"));
            b.wait(std::time::Duration::from_secs(n as u64 * 600));
            match kind {
                0 => b.started(),
                1 => b.identified(vec![crm(&format!("C-{who}"))]),
                2..=4 => {
                    let (method, assurance) = methods[usize::from(kind) - 2];
                    verified(&mut b, method, assurance, crm(&format!("C-{other}")))
                }
                5..=6 => {
                    let visitor = ChannelIdentity::new(
                        IdentityKind::ChatVisitor,
                        &format!("v-{other}"),
                        None,
                    )
                    .expect("valid");
                    let absorbed = customer_id_for(&acme(), &visitor);
                    let mut event = b.event(if kind == 5 {
                        Payload::CustomersMerged {
                            absorbed,
                            reason: String::new(),
                            requested_by: "agent".into(),
                        }
                    } else {
                        Payload::CustomersUnmerged {
                            absorbed,
                            reason: String::new(),
                            requested_by: "agent".into(),
                        }
                    });
                    let me =
                        ChannelIdentity::new(IdentityKind::ChatVisitor, &format!("v-{who}"), None)
                            .expect("valid");
                    event.customer =
                        Some(rezef_events::CustomerRef::Id(customer_id_for(&acme(), &me)));
                    event
                }
                _ => b.message(Participant::Customer, "hi"),
            }
        })
        .collect()
}
