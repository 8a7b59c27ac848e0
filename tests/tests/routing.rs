//! Routing end to end: the real `rezef serve --routing-config`, agents on `AgentSession`
//! streams, contacts routed with `RouteInteraction`. Each test is one story of issue 4.

use std::time::Duration;

use rezef_adapter::{AgentSession, Client, EventFactory, proto};
use rezef_scenarios::RezefServer;

use proto::agent_session_event::Event as Received;

const TENANT: &str = "acme";

const ROUTING: &str = r#"
version = 1
default_queue = "general"

[offers]
timeout = "2s"
affinity_timeout = "30s"

[priority]
tiers = { vip = 20 }

[bot_first.webchat]
bot_id = "helper-bot"

[[queues]]
id = "general"
callback_above = "4m"
steps = [{ after = "0s" }]

[[queues]]
id = "billing"
steps = [{ after = "0s", requirements = "skills.billing >= 4" }]

[[rules]]
name = "billing"
when = "intent == 'billing.dispute'"
queue = "billing"
"#;

/// The server with the routing above, its data directory, and a client.
async fn backbone() -> (Client, RezefServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("routing.toml");
    std::fs::write(&config, ROUTING).expect("write the routing file");
    let data = dir.path().join("data");
    let flags = ["--routing-config", config.to_str().expect("utf-8 path")];
    let server = RezefServer::start_with(&data, &flags).await;
    (server.client().await, server, dir)
}

/// An agent desktop, logged in.
struct Agent(AgentSession);

impl Agent {
    async fn login(client: &Client, id: &str, languages: &[&str], billing: u32) -> Self {
        let profile = proto::AgentProfile {
            agent_id: id.into(),
            skills: [("billing".to_owned(), billing)].into(),
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

    async fn next(&mut self) -> Received {
        tokio::time::timeout(Duration::from_secs(10), self.0.next())
            .await
            .expect("an event in time")
            .expect("ok")
            .expect("the session is open")
    }

    async fn offer(&mut self) -> proto::agent_session_event::Offer {
        match self.next().await {
            Received::Offer(offer) => offer,
            other => panic!("expected an offer, got {other:?}"),
        }
    }
}

fn caller(number: &str) -> EventFactory {
    EventFactory::new(TENANT, "voice")
        .identity(proto::IdentityKind::Phone, number)
        .on(proto::Channel::Voice, format!("call-{number}"))
}

/// The tenant's queue figures.
async fn queue_stats(client: &Client) -> proto::GetQueueStatsResponse {
    client
        .routing()
        .get_queue_stats(proto::GetQueueStatsRequest {
            tenant_id: TENANT.into(),
        })
        .await
        .expect("stats")
        .into_inner()
}

async fn route(
    client: &Client,
    who: &EventFactory,
    interaction: &str,
    tune: impl FnOnce(&mut proto::RouteInteractionRequest),
) -> proto::RouteInteractionResponse {
    let mut request = proto::RouteInteractionRequest {
        tenant_id: TENANT.into(),
        customer: Some(who.customer_ref()),
        interaction_id: interaction.into(),
        channel: proto::Channel::Voice as i32,
        ..Default::default()
    };
    tune(&mut request);
    client
        .routing()
        .route_interaction(request)
        .await
        .expect("routed")
        .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_language_reaches_an_agent_who_speaks_it() {
    let (client, server, _dir) = backbone().await;
    let mut agents = Vec::new();
    for (id, language) in [
        ("dana", "he"),
        ("omar", "ar"),
        ("olga", "ru"),
        ("john", "en"),
    ] {
        agents.push((id, Agent::login(&client, id, &[language], 5).await));
    }
    for (n, (language, expected)) in [
        ("ar", "omar"),
        ("ru", "olga"),
        ("en", "john"),
        ("he", "dana"),
    ]
    .into_iter()
    .enumerate()
    {
        let who = caller(&format!("+97250000000{n}"));
        let decided = route(&client, &who, &format!("call-{n}"), |r| {
            r.language = language.into();
            r.intent = "billing.dispute".into();
        })
        .await;
        assert_eq!(
            (decided.agent_id.as_str(), decided.queue_id.as_str()),
            (expected, "billing"),
            "{language}"
        );
        let (_, agent) = agents
            .iter_mut()
            .find(|(id, _)| *id == expected)
            .expect("the agent");
        assert_eq!(agent.offer().await.interaction_id, format!("call-{n}"));
    }
    // `rezef explain` by interaction alone says why the Arabic speaker's call went to omar.
    let url = server.url();
    let args = ["explain", "call-0", "--tenant", TENANT, "--server", &url];
    let explained = rezef_scenarios::rezef(&args, None);
    let out = String::from_utf8_lossy(&explained.stdout);
    assert!(explained.status.success(), "{out}");
    assert!(out.contains("offered to omar"), "{out}");
    assert!(out.contains("does not speak ar"), "{out}");
    assert!(out.contains("re-run on the record: same decision"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vip_is_served_first_and_a_long_wait_offers_a_callback() {
    let (client, _server, _dir) = backbone().await;
    let standard = route(&client, &caller("+972500000010"), "standard", |_| {}).await;
    assert_eq!(standard.outcome, proto::RouteOutcome::Queued as i32);
    assert_eq!(standard.estimated_wait, None, "nobody is staffed yet");
    assert!(standard.offer_callback, "an unknown wait is a long one");
    let vip = route(&client, &caller("+972500000011"), "vip", |r| {
        r.tier = "vip".into()
    })
    .await;
    assert_eq!(vip.position, 0, "the VIP is next");
    assert_eq!(standard.position, 0);

    let mut agent = Agent::login(&client, "a-1", &["he"], 1).await;
    let offer = agent.offer().await;
    assert_eq!(offer.interaction_id, "vip");
    agent.0.accept(offer.offer_id).await.expect("sent");
    assert!(matches!(agent.next().await, Received::Assigned(_)));
    // One agent busy on a call, five minutes a call by default: above the 4 minute mark.
    let third = route(&client, &caller("+972500000012"), "third", |_| {}).await;
    assert_eq!(third.position, 1);
    assert_eq!(third.estimated_wait.map(|d| d.seconds), Some(600));
    assert!(third.offer_callback);

    // The callback comes back with its original arrival: its priority keeps the wait.
    let arrived = std::time::SystemTime::now() - Duration::from_secs(15 * 60);
    let callback = route(&client, &caller("+972500000013"), "callback", |r| {
        r.arrived_at = Some(arrived.into());
    })
    .await;
    assert!(callback.priority >= 14.9, "{}", callback.priority);
    assert_eq!(callback.position, 0, "it waited longest of all");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_returning_customer_gets_their_last_agent_or_anyone_if_they_left() {
    let (mut client, _server, _dir) = backbone().await;
    let who = caller("+972500000020");
    let last = who.event(proto::event::Payload::ContactAssigned(
        proto::ContactAssigned {
            agent_id: "last".into(),
            queue_id: "general".into(),
        },
    ));
    let ack = client
        .publish(vec![
            who.interaction_started(proto::Direction::Inbound),
            last,
        ])
        .await
        .expect("published");
    client
        .journey(TENANT, who.customer_ref(), Some(ack.first_offset + 1))
        .await
        .expect("projected");

    let mut other = Agent::login(&client, "other", &["he"], 1).await;
    let mut last = Agent::login(&client, "last", &["he"], 1).await;
    let decided = route(&client, &who, "again-1", |_| {}).await;
    assert_eq!(
        decided.agent_id, "last",
        "the last agent first, though not the longest idle"
    );
    let offer = last.offer().await;
    last.0
        .decline(offer.offer_id, "on a break")
        .await
        .expect("sent");
    assert_eq!(
        other.offer().await.interaction_id,
        "again-1",
        "declined: anyone may take it"
    );

    // The last agent logs off: a new call does not wait for them.
    drop(last);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut third = Agent::login(&client, "third", &["he"], 1).await;
    let decided = route(&client, &who, "again-2", |_| {}).await;
    assert_eq!(decided.agent_id, "third");
    assert_eq!(third.offer().await.interaction_id, "again-2");
}

/// Publishes the caller's history and waits until it is projected.
async fn history(client: &mut Client, who: &EventFactory, events: Vec<proto::Event>) {
    let last = events.len() as u64 - 1;
    let ack = client.publish(events).await.expect("published");
    client
        .journey(TENANT, who.customer_ref(), Some(ack.first_offset + last))
        .await
        .expect("projected");
}

fn assigned(who: &EventFactory, agent: &str) -> proto::Event {
    who.event(proto::event::Payload::ContactAssigned(
        proto::ContactAssigned {
            agent_id: agent.into(),
            queue_id: "general".into(),
        },
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_billing_dispute_goes_to_an_expert_not_back_to_a_last_agent_who_lacks_the_skill_or_transferred_it()
 {
    let (mut client, _server, _dir) = backbone().await;
    // The customer's last agent has billing 1; the billing queue needs 4.
    let who = caller("+972500000050");
    let events = vec![
        who.interaction_started(proto::Direction::Inbound),
        who.intent_detected("billing.dispute", 0.9, "bot"),
        assigned(&who, "last"),
    ];
    history(&mut client, &who, events).await;
    let _last = Agent::login(&client, "last", &["he"], 1).await;
    let mut expert = Agent::login(&client, "expert", &["he"], 5).await;
    let decided = route(&client, &who, "dispute-1", |_| {}).await;
    assert_eq!(
        (decided.agent_id.as_str(), decided.queue_id.as_str()),
        ("expert", "billing")
    );
    assert_eq!(expert.offer().await.interaction_id, "dispute-1");

    // dana transferred another customer's dispute to billing: it goes to the longest idle
    // expert, not back to her.
    let who = caller("+972500000051");
    let events = vec![
        who.interaction_started(proto::Direction::Inbound),
        who.intent_detected("billing.dispute", 0.9, "bot"),
        assigned(&who, "dana"),
        who.event(proto::event::Payload::ContactTransferred(
            proto::ContactTransferred {
                from_agent_id: "dana".into(),
                to_queue_id: "billing".into(),
                ..Default::default()
            },
        )),
    ];
    history(&mut client, &who, events).await;
    let mut other = Agent::login(&client, "other", &["he"], 5).await;
    let _dana = Agent::login(&client, "dana", &["he"], 5).await;
    let decided = route(&client, &who, "dispute-2", |_| {}).await;
    assert_eq!(decided.agent_id, "other");
    assert_eq!(other.offer().await.interaction_id, "dispute-2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adapter_routes_right_after_publishing_and_a_caller_who_hangs_up_leaves_the_queue() {
    let (mut client, _server, _dir) = backbone().await;
    let mut english = Agent::login(&client, "english", &["en"], 1).await;
    // The IVR publishes the caller's language and need, and routes as soon as it has the ack,
    // without repeating them.
    let hebrew_caller = caller("+972500000060");
    let mut started = hebrew_caller.interaction_started(proto::Direction::Inbound);
    if let Some(proto::event::Payload::InteractionStarted(s)) = &mut started.payload {
        s.language = "he".into();
    }
    let intent = hebrew_caller.intent_detected("billing.dispute", 0.9, "ivr");
    client
        .publish(vec![started, intent])
        .await
        .expect("published");
    // The call is routed as the interaction its events name.
    let decided = route(&client, &hebrew_caller, "call-+972500000060", |_| {}).await;
    assert_eq!(
        (
            decided.queue_id.as_str(),
            decided.rule.as_str(),
            decided.outcome
        ),
        ("billing", "billing", proto::RouteOutcome::Queued as i32),
        "not offered to the English-only agent in general"
    );

    // The caller hangs up while queued: the queue no longer counts them, and the next
    // Hebrew billing agent is not offered the dead call.
    let hung_up = |kind| hebrew_caller.event(kind);
    client
        .publish(vec![
            hung_up(proto::event::Payload::ContactAbandoned(
                proto::ContactAbandoned {
                    point: proto::AbandonPoint::Queue as i32,
                },
            )),
            hung_up(proto::event::Payload::InteractionEnded(
                proto::InteractionEnded {
                    reason: proto::EndReason::CustomerLeft as i32,
                },
            )),
        ])
        .await
        .expect("published");
    let stats = queue_stats(&client).await;
    let billing = stats
        .queues
        .iter()
        .find(|q| q.queue_id == "billing")
        .expect("billing");
    assert_eq!(billing.waiting, 0);
    let mut expert = Agent::login(&client, "expert", &["he"], 5).await;
    let next = route(&client, &caller("+972500000061"), "next-1", |r| {
        r.language = "he".into();
        r.intent = "billing.dispute".into();
    })
    .await;
    assert_eq!(next.agent_id, "expert");
    assert_eq!(
        expert.offer().await.interaction_id,
        "next-1",
        "the first offer is the live call"
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(300), english.0.next())
            .await
            .is_err(),
        "nothing for the English-only agent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_transfers_a_call_to_billing_with_its_context_and_the_journey_counts_it() {
    let (mut client, _server, _dir) = backbone().await;
    let who = caller("+972500000070");
    let events = vec![
        who.interaction_started(proto::Direction::Inbound),
        who.intent_detected("plan.change", 0.9, "ivr"),
    ];
    history(&mut client, &who, events).await;
    let mut front = Agent::login(&client, "front", &["he"], 1).await;
    let mut expert = Agent::login(&client, "expert", &["he"], 5).await;
    let call = "call-+972500000070";
    let decided = route(&client, &who, call, |_| {}).await;
    assert_eq!(decided.agent_id, "front", "the longest idle");
    let offer = front.offer().await;
    front.0.accept(offer.offer_id).await.expect("sent");
    assert!(matches!(front.next().await, Received::Assigned(_)));

    // It turns out to be a billing matter: front sends it to the billing queue.
    let transfer = proto::agent_session_request::Transfer {
        interaction_id: call.into(),
        to_queue_id: "billing".into(),
        reason: "billing dispute".into(),
        ..Default::default()
    };
    front.0.transfer(transfer).await.expect("sent");
    match front.next().await {
        Received::TransferEnded(ended) => assert!(ended.transferred),
        other => panic!("expected the transfer's end, got {other:?}"),
    }
    let offer = expert.offer().await;
    assert_eq!(offer.queue_id, "billing");
    let conversation = offer
        .context
        .and_then(|c| c.conversation)
        .expect("the context");
    assert_eq!(
        conversation.intent.map(|i| i.intent).as_deref(),
        Some("plan.change")
    );
    assert_eq!(conversation.transfer_count, 1);
    expert.0.accept(offer.offer_id).await.expect("sent");
    assert!(matches!(expert.next().await, Received::Assigned(_)));

    // The journey shows the transfer, and the expert as the last agent.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let journey = client
            .journey(TENANT, who.customer_ref(), None)
            .await
            .expect("journey")
            .journey
            .expect("journey");
        let conversation = &journey.conversations[0];
        if conversation.transfer_count == 1 && conversation.last_agent_id == "expert" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{conversation:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_goes_to_the_bot_until_the_customer_asks_for_a_human() {
    let (client, _server, _dir) = backbone().await;
    let mut agent = Agent::login(&client, "a-1", &["he"], 1).await;
    let visitor = EventFactory::new(TENANT, "chat")
        .identity(proto::IdentityKind::ChatVisitor, "v-1")
        .on(proto::Channel::Webchat, "chat-1");
    let chat = |human: bool| {
        move |r: &mut proto::RouteInteractionRequest| {
            r.channel = proto::Channel::Webchat as i32;
            r.human_requested = human;
        }
    };
    let bot = route(&client, &visitor, "chat-1", chat(false)).await;
    assert_eq!(
        (bot.outcome, bot.bot_id.as_str()),
        (proto::RouteOutcome::Bot as i32, "helper-bot")
    );
    let human = route(&client, &visitor, "chat-1", chat(true)).await;
    assert_eq!(human.outcome, proto::RouteOutcome::Offered as i32);
    assert_eq!(agent.offer().await.interaction_id, "chat-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_offer_moves_on_and_a_crashed_desk_gives_its_offers_back() {
    let (client, _server, _dir) = backbone().await;
    let mut silent = Agent::login(&client, "silent", &["he"], 1).await;
    let decided = route(&client, &caller("+972500000030"), "call-30", |_| {}).await;
    assert_eq!(decided.agent_id, "silent");
    silent.offer().await;
    let mut awake = Agent::login(&client, "awake", &["he"], 1).await;
    assert!(
        matches!(silent.next().await, Received::Withdrawn(_)),
        "after the 2 s timeout"
    );
    assert_eq!(awake.offer().await.interaction_id, "call-30");
    drop(awake);
    assert_eq!(
        silent.offer().await.interaction_id,
        "call-30",
        "back from the crashed desk"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_routing_configuration_set_through_the_api_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = RezefServer::start(&data).await;
    let client = server.client().await;
    let stats = || proto::GetQueueStatsRequest {
        tenant_id: TENANT.into(),
    };
    let unset = client.routing().get_queue_stats(stats()).await;
    assert_eq!(
        unset.expect_err("no configuration yet").code(),
        tonic::Code::FailedPrecondition
    );
    let config = proto::SetRoutingConfigRequest {
        tenant_id: TENANT.into(),
        config: ROUTING.into(),
    };
    client
        .routing()
        .set_routing_config(config)
        .await
        .expect("configured");
    assert!(server.terminate().success());

    // No routing file: what the log recorded is what routing starts with again.
    let server = RezefServer::start(&data).await;
    let client = server.client().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let stats = loop {
        match client.routing().get_queue_stats(stats()).await {
            Ok(stats) => break stats.into_inner(),
            Err(status) if std::time::Instant::now() < deadline => {
                assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(status) => panic!("the configuration was not restored: {status:?}"),
        }
    };
    assert_eq!(stats.config_version, 1);
    let queues: Vec<&str> = stats.queues.iter().map(|q| q.queue_id.as_str()).collect();
    assert!(queues.contains(&"billing"), "{queues:?}");
}

/// Callers waiting when the server is killed (`kill -9`) wait again when it is back, in the
/// queues they were routed to and in the order they came, and a scheduled callback is still
/// held; an agent who logs in then is offered them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_waiting_when_the_server_is_killed_wait_again_when_it_is_back() {
    let (client, server, dir) = backbone().await;
    let (dispute, question, later) = (
        caller("+972501110001"),
        caller("+972501110002"),
        caller("+972501110003"),
    );
    let billing = route(&client, &dispute, "call-dispute", |r| {
        r.intent = "billing.dispute".into();
    })
    .await;
    assert_eq!(
        (billing.outcome, billing.queue_id.as_str()),
        (proto::RouteOutcome::Queued as i32, "billing")
    );
    let general = route(&client, &question, "call-question", |_| {}).await;
    assert_eq!(general.outcome, proto::RouteOutcome::Queued as i32);
    let tomorrow = std::time::SystemTime::now() + Duration::from_secs(86_400);
    route(&client, &later, "call-later", |r| {
        r.callback_at = Some(prost_types::Timestamp::from(tomorrow));
    })
    .await;
    server.kill9();

    let config = dir.path().join("routing.toml");
    let flags = ["--routing-config", config.to_str().expect("utf-8 path")];
    let server = RezefServer::start_with(&dir.path().join("data"), &flags).await;
    let client = server.client().await;
    let stats = queue_stats(&client).await;
    let figures: Vec<(&str, u32, u32)> = (stats.queues.iter())
        .map(|q| (q.queue_id.as_str(), q.waiting, q.scheduled))
        .collect();
    assert_eq!(figures, [("general", 1, 1), ("billing", 1, 0)]);
    let mut expert = Agent::login(&client, "noa", &["en"], 5).await;
    let first = expert.offer().await;
    assert_eq!(
        first.interaction_id, "call-dispute",
        "the one waiting longest"
    );
}

/// A CRM records once that a customer is a VIP; their call is routed with the VIP priority
/// though the voice channel says nothing of their tier.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vip_recorded_by_the_crm_is_routed_as_one() {
    let (mut client, _server, _dir) = backbone().await;
    let vip =
        EventFactory::new(TENANT, "crm").identity(proto::IdentityKind::Phone, "+972507770001");
    let mut attributes = vip.event(proto::event::Payload::CustomerAttributesSet(
        proto::CustomerAttributesSet {
            tier: Some("vip".into()),
            preferred_language: None,
        },
    ));
    attributes.channel = proto::Channel::Unspecified as i32;
    let ack = client.publish(vec![attributes]).await.expect("recorded");
    client
        .journey(TENANT, vip.customer_ref(), Some(ack.first_offset))
        .await
        .expect("projected");
    let regular =
        EventFactory::new(TENANT, "voice").identity(proto::IdentityKind::Phone, "+972507770002");
    let route = |who: &EventFactory, interaction: &str| proto::RouteInteractionRequest {
        tenant_id: TENANT.into(),
        customer: Some(who.customer_ref()),
        interaction_id: interaction.into(),
        channel: proto::Channel::Voice as i32,
        ..Default::default()
    };
    let as_vip = client
        .routing()
        .route_interaction(route(&vip, "call-vip"))
        .await
        .expect("routed")
        .into_inner();
    let as_regular = client
        .routing()
        .route_interaction(route(&regular, "call-regular"))
        .await
        .expect("routed")
        .into_inner();
    assert!(
        as_vip.priority >= as_regular.priority + 20.0,
        "vip {} regular {}",
        as_vip.priority,
        as_regular.priority
    );
}
