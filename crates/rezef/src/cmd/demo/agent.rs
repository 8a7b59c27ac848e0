//! The demo's third part: the call reaches an agent. Routing sends it to the billing queue
//! (the intent the bot detected) and offers it to the billing agent who speaks Hebrew, the
//! language the customer chatted in, with the whole story on the offer. She reverses the
//! charge, confirms by email in the same conversation and wraps up: the need is resolved
//! across three channels, and the journey shows it.

use std::time::Duration;

use anyhow::Context;
use rezef_adapter::proto::{self, agent_session_event::Event as Received, event::Payload};
use rezef_adapter::{AgentSession, Client, EventFactory};

use super::continuity::{CALL, Call};
use super::{TENANT, label};

/// Billing needs a billing skill, and the customer's language (queues need it by default).
const ROUTING: &str = r#"
version = 1
default_queue = "general"

[[queues]]
id = "general"
steps = [{ after = "0s" }]

[[queues]]
id = "billing"
steps = [{ after = "0s", requirements = "skills.billing >= 3" }]

[[rules]]
name = "billing disputes"
when = "intent == 'billing.double_charge'"
queue = "billing"
"#;

/// Two billing agents; only one speaks the customer's Hebrew.
const AGENTS: [(&str, &str); 2] = [("omar", "ar"), ("yael", "he")];

/// The call routed, answered, resolved and confirmed by email.
pub(super) async fn resolve(client: &mut Client, call: &Call) -> anyhow::Result<()> {
    println!("── 3. The agent ─ routing offers the call, the agent resolves it");
    let config = proto::SetRoutingConfigRequest {
        tenant_id: TENANT.into(),
        config: ROUTING.into(),
    };
    client.routing().set_routing_config(config).await?;
    let mut desks = Vec::new();
    for (agent, language) in AGENTS {
        let profile = proto::AgentProfile {
            agent_id: agent.into(),
            skills: [("billing".to_owned(), 5)].into(),
            languages: vec![language.into()],
            capacity: [("voice".to_owned(), 1), ("email".to_owned(), 5)].into(),
            max_load: 5,
            ..Default::default()
        };
        desks.push(AgentSession::login(client, TENANT, profile, None).await?);
        println!("   {agent:<6} logs in: billing skill 5, speaks {language}");
    }

    let route = proto::RouteInteractionRequest {
        tenant_id: TENANT.into(),
        customer: Some(call.factory.customer_ref()),
        interaction_id: CALL.into(),
        channel: proto::Channel::Voice as i32,
        min_offset: Some(call.offset),
        ..Default::default()
    };
    let routed = client
        .routing()
        .route_interaction(route)
        .await?
        .into_inner();
    println!(
        "   RouteInteraction: {} to {} in queue {} (rule {:?}), candidates {}",
        label(
            proto::RouteOutcome::try_from(routed.outcome).map(|o| o.as_str_name()),
            "ROUTE_OUTCOME_"
        ),
        routed.agent_id,
        routed.queue_id,
        routed.rule,
        routed.candidates.join(", ")
    );
    let at = AGENTS
        .iter()
        .position(|(agent, _)| *agent == routed.agent_id)
        .context("the call was offered to no agent of the demo")?;
    let desk = &mut desks[at];
    let offer = loop {
        match next(desk).await? {
            Received::Offer(offer) => break offer,
            _ => continue,
        }
    };
    let context = offer.context.context("the offer carries no context")?;
    let conversation = context.conversation.unwrap_or_default();
    println!(
        "   {}'s desk shows the offer: intent {}, {} context values, {} messages of the chat",
        routed.agent_id,
        conversation.intent.map_or_else(String::new, |i| i.intent),
        conversation.context.len(),
        conversation.transcript.len()
    );
    desk.accept(offer.offer_id).await?;
    while !matches!(next(desk).await?, Received::Assigned(_)) {}
    println!(
        "   {} accepts: the customer explains nothing",
        routed.agent_id
    );

    let agent = routed.agent_id.as_str();
    let email = EventFactory::new(TENANT, "email-connector")
        .customer(context.customer_id.clone())
        .on(proto::Channel::Email, "email-30417")
        .conversation(conversation.conversation_id.clone());
    let mut confirmation = email.message(
        proto::Participant::Agent,
        "We reversed the duplicate charge of ₪1,249.00 on your March statement.",
    );
    if let Some(Payload::MessageSent(message)) = &mut confirmation.payload {
        message.sender_id = agent.into();
    }
    let events = vec![
        call.factory
            .event(Payload::InteractionEnded(proto::InteractionEnded {
                reason: proto::EndReason::Completed as i32,
            })),
        email.interaction_started(proto::Direction::Outbound),
        confirmation,
        email.event(Payload::InteractionEnded(proto::InteractionEnded {
            reason: proto::EndReason::Completed as i32,
        })),
        call.factory
            .event(Payload::WrapUpRecorded(proto::WrapUpRecorded {
                agent_id: agent.into(),
                disposition: "double-charge-reversed".into(),
                need_resolved: true,
                notes: String::new(),
            })),
    ];
    let ack = client.publish(events).await?;
    desk.complete(CALL).await?;
    println!("   {agent} reverses the charge, confirms it by email and wraps up: resolved\n");

    let journey = client
        .journey(
            TENANT,
            call.factory.customer_ref(),
            Some(ack.first_offset + u64::from(ack.count) - 1),
        )
        .await?
        .journey
        .context("the backbone returned no journey")?;
    let resolved =
        (journey.conversations.iter()).find(|c| c.conversation_id == conversation.conversation_id);
    print_journey(&journey, resolved, &conversation.conversation_id);
    Ok(())
}

/// The agent's next event, within a bound: the demo must not hang on a lost offer.
async fn next(desk: &mut AgentSession) -> anyhow::Result<Received> {
    tokio::time::timeout(Duration::from_secs(10), desk.next())
        .await
        .context("no event for the agent within 10 s")??
        .context("the agent's session closed")
}

fn print_journey(journey: &proto::Journey, conversation: Option<&proto::Conversation>, id: &str) {
    println!("   GetJourney: customer {}", journey.customer_id);
    let Some(conversation) = conversation else {
        println!("   conversation {id} is no longer among the open ones");
        return;
    };
    let channels: Vec<_> = (conversation.channels.iter())
        .map(|c| {
            label(
                proto::Channel::try_from(*c).map(|c| c.as_str_name()),
                "CHANNEL_",
            )
        })
        .collect();
    println!(
        "   conversation      {} ({})",
        conversation.conversation_id,
        label(
            proto::ConversationStatus::try_from(conversation.status).map(|s| s.as_str_name()),
            "CONVERSATION_STATUS_"
        )
    );
    println!("   channels          {}", channels.join(" → "));
    println!(
        "   contacts          {}, last agent {}, disposition {}",
        conversation.interactions.len(),
        conversation.last_agent_id,
        conversation.disposition
    );
}
