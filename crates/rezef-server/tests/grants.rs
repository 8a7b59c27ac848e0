//! What a key may assert beyond its roles: a verification above low assurance only under the
//! `verify` grant for its method, and an agent key only as its own agent. Given such keys,
//! when a call asserts more, then it is refused with `PERMISSION_DENIED` saying why, and
//! nothing of it is written.

mod common;

use common::Running;
use futures::StreamExt;
use rezef_adapter::proto::{self, AssuranceLevel, VerificationMethod};
use rezef_adapter::{EventFactory, identity_ref};
use rezef_auth::{NewKey, Role, Scope};
use tonic::Code;

fn acme(roles: &[Role]) -> NewKey {
    NewKey::new(Scope::Tenant("acme".into()), roles.iter().copied())
}

fn phone(number: &str) -> proto::ChannelIdentity {
    proto::ChannelIdentity {
        kind: proto::IdentityKind::Phone as i32,
        value: number.into(),
        network: String::new(),
    }
}

/// An IVR call of `customer` in which the caller proved `phone` by `method`.
fn verified_call(
    customer: &str,
    number: &str,
    method: VerificationMethod,
    assurance: AssuranceLevel,
) -> Vec<proto::Event> {
    let call = EventFactory::new("acme", "ivr")
        .customer(customer)
        .on(proto::Channel::Ivr, format!("call-{customer}"));
    vec![
        call.interaction_started(proto::Direction::Inbound),
        call.identified(method, assurance, vec![phone(number)]),
    ]
}

#[tokio::test]
async fn only_a_key_granted_verify_asserts_a_verification_above_low_assurance() {
    let granted_pin = NewKey {
        verify: vec!["pin".into()],
        ..acme(&[Role::Adapter])
    };
    let keys = vec![acme(&[Role::Adapter]), granted_pin, acme(&[Role::Channel])];
    let (server, tokens) = Running::with_keys(keys).await;
    let mut plain = server.client_with(&tokens[0]).await;
    let mut pin = server.client_with(&tokens[1]).await;
    let (low, substantial) = (AssuranceLevel::Low, AssuranceLevel::Substantial);

    plain
        .publish(verified_call(
            "c-1",
            "+972501111111",
            VerificationMethod::CallerId,
            low,
        ))
        .await
        .expect("low assurance needs no grant");
    let refused = plain
        .publish(verified_call(
            "c-2",
            "+972502222222",
            VerificationMethod::Pin,
            substantial,
        ))
        .await;
    let status = common::status_of(refused);
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(status.message().contains("--verify pin"), "{status:?}");

    pin.publish(verified_call(
        "c-2",
        "+972502222222",
        VerificationMethod::Pin,
        substantial,
    ))
    .await
    .expect("granted pin");
    let document = pin
        .publish(verified_call(
            "c-3",
            "+972503333333",
            VerificationMethod::Document,
            AssuranceLevel::High,
        ))
        .await;
    let status = common::status_of(document);
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(status.message().contains("`document`"), "{status:?}");

    // The refused batch was refused whole: its phone links to nobody.
    let mut channel = server.client_with(&tokens[2]).await;
    let unknown = channel
        .journey(
            "acme",
            identity_ref(proto::IdentityKind::Phone, "+972503333333"),
            None,
        )
        .await;
    assert_eq!(common::status_of(unknown).code(), Code::NotFound);

    // A link is a verification too: a channel key without the grant links at low only.
    let link = |assurance: AssuranceLevel| proto::LinkIdentityRequest {
        tenant_id: "acme".into(),
        customer_id: "c-1".into(),
        identity: Some(phone("+972504444444")),
        method: VerificationMethod::OneTimeCode as i32,
        assurance: assurance as i32,
        expires_at: None,
        channel: proto::Channel::Sms as i32,
        source: "sms".into(),
    };
    let refused = channel
        .identities()
        .link_identity(link(AssuranceLevel::High))
        .await
        .expect_err("no grant");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    channel
        .identities()
        .link_identity(link(low))
        .await
        .expect("low assurance needs no grant");
    server.stop().await;
}

#[tokio::test]
async fn an_agent_key_acts_as_its_own_agent_only() {
    let desk = NewKey {
        agent: Some("a-17".into()),
        ..acme(&[Role::Agent])
    };
    let (server, tokens) = Running::with_keys(vec![desk, acme(&[Role::Supervisor])]).await;
    let desk = server.client_with(&tokens[0]).await;
    let presence = |agent: &str| proto::SetAgentPresenceRequest {
        tenant_id: "acme".into(),
        agent_id: agent.into(),
        presence: proto::Presence::Away as i32,
        reason: String::new(),
    };
    let other = desk
        .routing()
        .set_agent_presence(presence("a-18"))
        .await
        .expect_err("another agent");
    assert_eq!(other.code(), Code::PermissionDenied, "{other:?}");
    assert!(other.message().contains("agent `a-17`'s"), "{other:?}");
    // Not logged in, so not found; but let in.
    past_the_guard(desk.routing().set_agent_presence(presence("a-17")).await);

    let login = |agent: &str| proto::AgentSessionRequest {
        action: Some(proto::agent_session_request::Action::Login(
            proto::agent_session_request::Login {
                tenant_id: "acme".into(),
                profile: Some(proto::AgentProfile {
                    agent_id: agent.into(),
                    languages: vec!["en".into()],
                    max_load: 1,
                    ..Default::default()
                }),
                presence: proto::Presence::Available as i32,
            },
        )),
    };
    let session = |agent: &str| {
        let requests = futures::stream::iter([login(agent)]).chain(futures::stream::pending());
        let mut routing = desk.routing();
        async move {
            let mut events = routing.agent_session(requests).await?.into_inner();
            events.message().await.map(|first| first.is_some())
        }
    };
    let refused = session("a-18").await.expect_err("another agent's session");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    // Its own session gets past the guard (to routing, which has no configuration here).
    past_the_guard(session("a-17").await);

    // A supervisor sets any agent's presence.
    let supervisor = server.client_with(&tokens[1]).await;
    past_the_guard(
        supervisor
            .routing()
            .set_agent_presence(presence("a-18"))
            .await,
    );
    server.stop().await;
}

/// A call the guard let through (whatever the method then answered).
fn past_the_guard<T: std::fmt::Debug>(result: Result<T, tonic::Status>) {
    let refused = matches!(&result, Err(s) if s.code() == Code::PermissionDenied);
    assert!(!refused, "{result:?}");
}
