//! `Routing/ExplainDecision` over real gRPC: a decision's recorded explanation (each agent's
//! verdict) read back from the log and run again, and the refusals.

mod common;

use rezef_adapter::{AgentSession, Client, proto};
use tonic::Code;

use common::{Running, arabic_billing_chat, chat};

const TENANT: &str = "acme";

const CONFIG: &str = r#"
version = 3
default_queue = "general"

[[queues]]
id = "general"
steps = [{ after = "0s" }]

[[queues]]
id = "billing"
steps = [{ after = "0s", requirements = "skills HAS 'billing'" }]

[[rules]]
name = "billing"
when = "intent == 'billing.dispute'"
queue = "billing"
"#;

async fn login(client: &Client, agent: &str, skill: &str, language: &str) -> AgentSession {
    let profile = proto::AgentProfile {
        agent_id: agent.into(),
        skills: [(skill.to_owned(), 4)].into(),
        languages: vec![language.into()],
        capacity: [("voice".to_owned(), 1)].into(),
        max_load: 1,
        ..Default::default()
    };
    AgentSession::login(client, TENANT, profile, None)
        .await
        .expect("logged in")
}

fn explain_request(
    customer: Option<proto::CustomerRef>,
    interaction: &str,
) -> proto::ExplainDecisionRequest {
    proto::ExplainDecisionRequest {
        tenant_id: TENANT.into(),
        customer,
        interaction_id: interaction.into(),
    }
}

#[tokio::test]
async fn a_decision_is_explained_agent_by_agent_and_reproduced() {
    let server = Running::start(Default::default()).await;
    let mut client = server.client().await;
    client
        .routing()
        .set_routing_config(proto::SetRoutingConfigRequest {
            tenant_id: TENANT.into(),
            config: CONFIG.into(),
        })
        .await
        .expect("configured");
    // Given a customer who chatted in Arabic about a disputed bill
    let chat = arabic_billing_chat(&mut client, TENANT, "v-1").await;
    // And three agents: Hebrew billing, Arabic billing, Arabic sales
    let _dana = login(&client, "dana", "billing", "he").await;
    let _omar = login(&client, "omar", "billing", "ar").await;
    let _sami = login(&client, "sami", "sales", "ar").await;
    // When the call is routed
    let decided = client
        .routing()
        .route_interaction(proto::RouteInteractionRequest {
            tenant_id: TENANT.into(),
            customer: Some(chat.customer_ref()),
            interaction_id: "call-1".into(),
            channel: proto::Channel::Voice as i32,
            ..Default::default()
        })
        .await
        .expect("routed")
        .into_inner();
    assert_eq!(decided.agent_id, "omar");

    // Then the explanation says why each agent was or was not chosen, and replays
    let explained = client
        .routing()
        .explain_decision(explain_request(Some(chat.customer_ref()), "call-1"))
        .await
        .expect("explained")
        .into_inner();
    let [decision] = explained.decisions.as_slice() else {
        panic!("one decision: {explained:?}");
    };
    assert!(decision.reproduced, "{:?}", decision.differences);
    assert_eq!(decision.offset, decided.offset);
    // Asked by interaction alone, the same: its customer is the one routing decided it for.
    let by_interaction = client
        .routing()
        .explain_decision(explain_request(None, "call-1"))
        .await
        .expect("explained by interaction")
        .into_inner();
    assert_eq!(by_interaction, explained);
    let recorded = decision.decision.as_ref().expect("the decision");
    assert_eq!(recorded.agent_id, "omar");
    let explanation = recorded.explanation.as_ref().expect("an explanation");
    assert_eq!(explanation.requirements, ["skills HAS 'billing'"]);
    assert_eq!(explanation.language, "ar");
    let verdicts: Vec<(&str, i32, u32, &str)> = explanation
        .agents
        .iter()
        .map(|a| {
            (
                a.agent_id.as_str(),
                a.verdict,
                a.rank,
                a.requirement.as_str(),
            )
        })
        .collect();
    assert_eq!(
        verdicts,
        [
            ("omar", proto::Verdict::Ranked as i32, 0, ""),
            ("dana", proto::Verdict::NoLanguage as i32, 0, ""),
            (
                "sami",
                proto::Verdict::Unqualified as i32,
                0,
                "skills HAS 'billing'"
            ),
        ]
    );

    // Refusals: a missing field is named; no decision for the interaction; an unknown customer
    let routing = || client.routing();
    let invalid = routing()
        .explain_decision(explain_request(Some(chat.customer_ref()), ""))
        .await
        .expect_err("no interaction");
    assert_eq!(invalid.code(), Code::InvalidArgument);
    assert!(invalid.message().contains("interaction_id"), "{invalid:?}");
    let missing = routing()
        .explain_decision(explain_request(None, "call-2"))
        .await
        .expect_err("never routed, by interaction alone");
    assert_eq!(missing.code(), Code::NotFound);
    assert!(missing.message().contains("call-2"), "{missing:?}");
    let missing = routing()
        .explain_decision(explain_request(Some(chat.customer_ref()), "call-2"))
        .await
        .expect_err("never routed");
    assert_eq!(missing.code(), Code::NotFound);
    let stranger = chat_customer("v-404");
    let missing = routing()
        .explain_decision(explain_request(Some(stranger), "call-1"))
        .await
        .expect_err("unknown customer");
    assert_eq!(missing.code(), Code::NotFound);
}

fn chat_customer(visitor: &str) -> proto::CustomerRef {
    chat(TENANT, visitor).customer_ref()
}
