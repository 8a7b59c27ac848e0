//! Routing over real gRPC on loopback: configuration, decisions recorded in the journey,
//! agent sessions that get offers with the conversation's context, accept, time out and
//! disconnect; queue figures; and every refusal's status code.

mod common;

use std::time::Duration;

use futures::StreamExt;
use rezef_adapter::{AgentSession, Client, proto};
use tonic::Code;

use common::{Running, chat, fields};

const TENANT: &str = "acme";

const CONFIG: &str = r#"
version = 3
default_queue = "general"

[offers]
timeout = "1s"
max_declines = 5

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

async fn configure(client: &Client) {
    let response = client
        .routing()
        .set_routing_config(proto::SetRoutingConfigRequest {
            tenant_id: TENANT.into(),
            config: CONFIG.into(),
        })
        .await
        .expect("configured")
        .into_inner();
    assert_eq!(response.version, 3);
}

/// An agent desktop, logged in.
struct Desk(AgentSession);

impl Desk {
    async fn login(client: &Client, agent: &str, skills: &[&str], languages: &[&str]) -> Self {
        let profile = proto::AgentProfile {
            agent_id: agent.into(),
            skills: skills.iter().map(|s| ((*s).to_owned(), 4)).collect(),
            languages: languages.iter().map(|l| (*l).to_owned()).collect(),
            capacity: [("voice".to_owned(), 1), ("webchat".to_owned(), 2)].into(),
            max_load: 2,
            ..Default::default()
        };
        Self(
            AgentSession::login(client, TENANT, profile, None)
                .await
                .expect("logged in"),
        )
    }

    async fn next(&mut self) -> proto::agent_session_event::Event {
        tokio::time::timeout(Duration::from_secs(10), self.0.next())
            .await
            .expect("an event in time")
            .expect("ok")
            .expect("the session is open")
    }
}

fn route_request(
    customer: proto::CustomerRef,
    interaction: &str,
) -> proto::RouteInteractionRequest {
    proto::RouteInteractionRequest {
        tenant_id: TENANT.into(),
        customer: Some(customer),
        interaction_id: interaction.into(),
        channel: proto::Channel::Voice as i32,
        ..Default::default()
    }
}

#[tokio::test]
async fn a_call_reaches_an_agent_who_speaks_the_language_with_the_chat_in_hand() {
    let server = Running::start(Default::default()).await;
    let mut client = server.client().await;
    configure(&client).await;
    // The customer chatted in Arabic about a disputed bill.
    let chat = chat(TENANT, "v-1");
    let mut started = chat.interaction_started(proto::Direction::Inbound);
    if let Some(proto::event::Payload::InteractionStarted(s)) = &mut started.payload {
        s.language = "ar".into();
    }
    let ack = client
        .publish(vec![
            started,
            chat.intent_detected("billing.dispute", 0.9, "bot"),
        ])
        .await
        .expect("published");
    client
        .journey(TENANT, chat.customer_ref(), Some(ack.first_offset + 1))
        .await
        .expect("projected");

    let hebrew = Desk::login(&client, "dana", &["billing"], &["he"]).await;
    let mut arabic = Desk::login(&client, "omar", &["billing"], &["ar"]).await;
    let decided = client
        .routing()
        .route_interaction(route_request(chat.customer_ref(), "call-1"))
        .await
        .expect("routed")
        .into_inner();
    assert_eq!(decided.outcome, proto::RouteOutcome::Offered as i32);
    assert_eq!(
        (
            decided.agent_id.as_str(),
            decided.queue_id.as_str(),
            decided.rule.as_str()
        ),
        ("omar", "billing", "billing")
    );
    assert_eq!(decided.candidates, ["omar"], "dana does not speak Arabic");

    let proto::agent_session_event::Event::Offer(offer) = arabic.next().await else {
        panic!("an offer");
    };
    let context = offer
        .context
        .expect("the conversation comes with the offer");
    let intent = context
        .conversation
        .and_then(|c| c.intent)
        .map(|i| i.intent);
    assert_eq!(intent.as_deref(), Some("billing.dispute"));
    assert_eq!(context.language, "ar");
    arabic.0.accept(offer.offer_id).await.expect("sent");
    assert!(matches!(
        arabic.next().await,
        proto::agent_session_event::Event::Assigned(_)
    ));

    // The journey shows the decision's stations: offered, then connected to omar.
    let journey = loop {
        let journey = client
            .journey(TENANT, chat.customer_ref(), None)
            .await
            .expect("journey")
            .journey
            .expect("journey");
        let call = journey
            .conversations
            .iter()
            .flat_map(|c| &c.interactions)
            .find(|i| i.interaction_id == "call-1");
        if call.is_some_and(|i| i.stage == proto::Stage::Connected as i32) {
            break journey;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(journey.last_agent_id, "omar");
    drop(hebrew);
    server.stop().await;
}

#[tokio::test]
async fn an_unanswered_offer_goes_to_the_next_agent_and_a_lost_session_gives_its_offers_back() {
    let server = Running::start(Default::default()).await;
    let client = server.client().await;
    configure(&client).await;
    let mut first = Desk::login(&client, "a-first", &[], &["he"]).await;
    let decided = client
        .routing()
        .route_interaction(route_request(chat(TENANT, "v-2").customer_ref(), "call-2"))
        .await
        .expect("routed")
        .into_inner();
    assert_eq!(decided.agent_id, "a-first");
    assert!(matches!(
        first.next().await,
        proto::agent_session_event::Event::Offer(_)
    ));
    let mut second = Desk::login(&client, "a-second", &[], &["he"]).await;
    // a-first does not answer within the 1 s timeout.
    assert!(matches!(
        first.next().await,
        proto::agent_session_event::Event::Withdrawn(_)
    ));
    let proto::agent_session_event::Event::Offer(offer) = second.next().await else {
        panic!("re-offered");
    };
    assert_eq!(offer.interaction_id, "call-2");

    // a-second's desk crashes: the contact goes back, and a-first gets it again.
    drop(second);
    let proto::agent_session_event::Event::Offer(again) = first.next().await else {
        panic!("offered again after the disconnect");
    };
    assert_eq!(again.interaction_id, "call-2");
    server.stop().await;
}

#[tokio::test]
async fn queue_figures_and_refusals() {
    let server = Running::start(Default::default()).await;
    let client = server.client().await;
    let mut routing = client.routing();
    let customer = chat(TENANT, "v-3").customer_ref();

    let status = routing
        .route_interaction(route_request(customer.clone(), "call-3"))
        .await
        .expect_err("no configuration yet");
    assert_eq!(status.code(), Code::FailedPrecondition);

    let broken = CONFIG
        .replace("intent == 'billing.dispute'", "intnt == 'billing'")
        .replace("queue = \"billing\"\n\"#", "");
    let status = routing
        .set_routing_config(proto::SetRoutingConfigRequest {
            tenant_id: TENANT.into(),
            config: broken,
        })
        .await
        .expect_err("invalid");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(fields(&status), ["config.rules[0].when"]);
    configure(&client).await;

    let decided = routing
        .route_interaction(route_request(customer.clone(), "call-3"))
        .await
        .expect("queued")
        .into_inner();
    assert_eq!(decided.outcome, proto::RouteOutcome::Queued as i32);
    assert_eq!(decided.estimated_wait, None, "nobody is staffed");
    let status = routing
        .route_interaction(route_request(customer.clone(), "call-3"))
        .await
        .expect_err("twice");
    assert_eq!(status.code(), Code::AlreadyExists);
    let status = routing
        .route_interaction(proto::RouteInteractionRequest::default())
        .await
        .expect_err("empty");
    assert_eq!(
        fields(&status),
        ["tenant_id", "customer", "interaction_id", "channel"]
    );

    let stats = routing
        .get_queue_stats(proto::GetQueueStatsRequest {
            tenant_id: TENANT.into(),
        })
        .await
        .expect("stats")
        .into_inner();
    let general = stats
        .queues
        .iter()
        .find(|q| q.queue_id == "general")
        .expect("general");
    assert_eq!(general.waiting, 1);
    assert_eq!(stats.config_version, 3);
    server.stop().await;
}

#[tokio::test]
async fn queue_figures_stream_and_presence_is_recorded() {
    let server = Running::start(Default::default()).await;
    let mut client = server.client().await;
    configure(&client).await;
    let mut watch = client
        .routing()
        .watch_queues(proto::GetQueueStatsRequest {
            tenant_id: TENANT.into(),
        })
        .await
        .expect("watch")
        .into_inner();
    let waiting = |update: &proto::GetQueueStatsResponse| {
        update.queues.iter().map(|q| q.waiting).sum::<u32>()
    };
    let first = watch.next().await.expect("an update").expect("ok");
    assert_eq!(waiting(&first), 0);
    client
        .routing()
        .route_interaction(route_request(chat(TENANT, "v-4").customer_ref(), "call-4"))
        .await
        .expect("routed");
    let next = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .expect("an update in time")
        .expect("an update")
        .expect("ok");
    assert_eq!(waiting(&next), 1);

    // A login and a presence change are agent events in the log.
    let desk = Desk::login(&client, "a-1", &[], &["he"]).await;
    desk.0
        .set_presence(proto::Presence::Away, "lunch")
        .await
        .expect("sent");
    let presences = loop {
        let mut events = client
            .replay(proto::ReplayHistoryRequest {
                tenant_id: TENANT.into(),
                ..Default::default()
            })
            .await
            .expect("replay");
        let mut found = Vec::new();
        while let Some(replayed) = events.next().await {
            if let Some(proto::event::Payload::AgentPresenceChanged(p)) =
                replayed.expect("ok").event.and_then(|e| e.payload)
            {
                found.push((p.presence, p.custom_status));
            }
        }
        if found.len() >= 2 {
            break found;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        presences,
        [
            (proto::Presence::Available as i32, "logged in".to_owned()),
            (proto::Presence::Away as i32, "lunch".to_owned())
        ]
    );
    server.stop().await;
}
