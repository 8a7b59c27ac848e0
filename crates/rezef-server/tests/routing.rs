//! Routing over real gRPC on loopback: configuration, decisions recorded in the journey,
//! agent sessions that get offers with the conversation's context, accept, time out and
//! disconnect; queue figures; and every refusal's status code. Escalation and affinity run
//! on a manual clock, and a stress test drives many sessions at once against the invariants.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use rezef_adapter::{AgentSession, Client, EventFactory, proto};
use rezef_server::Clock;
use tonic::Code;

use common::{Running, arabic_billing_chat, chat, fields};
use proto::agent_session_event::Event as Received;

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
    assert_eq!(configure_with(client, CONFIG).await, 3);
}

/// Sets the tenant's routing; its version.
async fn configure_with(client: &Client, config: &str) -> u64 {
    client
        .routing()
        .set_routing_config(proto::SetRoutingConfigRequest {
            tenant_id: TENANT.into(),
            config: config.into(),
        })
        .await
        .expect("configured")
        .into_inner()
        .version
}

/// An agent's profile: skills with their proficiency, languages, capacity per channel.
fn profile(
    agent: &str,
    skills: &[(&str, u32)],
    languages: &[&str],
    voice: u32,
    webchat: u32,
) -> proto::AgentProfile {
    proto::AgentProfile {
        agent_id: agent.into(),
        skills: skills.iter().map(|(s, l)| ((*s).to_owned(), *l)).collect(),
        languages: languages.iter().map(|l| (*l).to_owned()).collect(),
        capacity: [("voice".to_owned(), voice), ("webchat".to_owned(), webchat)].into(),
        max_load: voice.max(webchat),
        ..Default::default()
    }
}

/// An agent desktop, logged in.
struct Desk(AgentSession);

impl Desk {
    async fn login(client: &Client, agent: &str, skills: &[&str], languages: &[&str]) -> Self {
        let skills: Vec<(&str, u32)> = skills.iter().map(|s| (*s, 4)).collect();
        Self::login_as(client, profile(agent, &skills, languages, 1, 2)).await
    }

    async fn login_as(client: &Client, profile: proto::AgentProfile) -> Self {
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

    /// Asserts that nothing arrives for a while.
    async fn quiet(&mut self, why: &str) {
        if let Ok(event) = tokio::time::timeout(Duration::from_millis(200), self.0.next()).await {
            panic!("{why}: got {event:?}");
        }
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

async fn route(
    client: &Client,
    request: proto::RouteInteractionRequest,
) -> proto::RouteInteractionResponse {
    client
        .routing()
        .route_interaction(request)
        .await
        .expect("routed")
        .into_inner()
}

/// The live figures of one queue.
async fn queue_stats(client: &Client, queue: &str) -> proto::QueueStats {
    client
        .routing()
        .get_queue_stats(proto::GetQueueStatsRequest {
            tenant_id: TENANT.into(),
        })
        .await
        .expect("stats")
        .into_inner()
        .queues
        .into_iter()
        .find(|q| q.queue_id == queue)
        .expect("the queue")
}

#[tokio::test]
async fn a_call_reaches_an_agent_who_speaks_the_language_with_the_chat_in_hand() {
    let server = Running::start(Default::default()).await;
    let mut client = server.client().await;
    configure(&client).await;
    // The customer chatted in Arabic about a disputed bill.
    let chat = arabic_billing_chat(&mut client, TENANT, "v-1").await;

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

    let offer = arabic.offer().await;
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
    assert!(matches!(arabic.next().await, Received::Assigned(_)));

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
async fn a_decision_sees_every_event_acknowledged_before_the_call() {
    let server = Running::start(Default::default()).await;
    let mut client = server.client().await;
    configure(&client).await;
    let mut english = profile("english", &[], &["en"], 20, 0);
    english.max_load = 20;
    let mut hebrew = profile("hebrew", &[("billing", 4)], &["he"], 20, 0);
    hebrew.max_load = 20;
    // english is the longest idle: the general queue would give it every call.
    let _english = Desk::login_as(&client, english).await;
    let _hebrew = Desk::login_as(&client, hebrew).await;
    for n in 0..20 {
        // The adapter publishes the language and the intent, then routes at once without
        // repeating them.
        let caller = EventFactory::new(TENANT, "voice")
            .identity(proto::IdentityKind::Phone, format!("+9725000001{n:02}"))
            .on(proto::Channel::Voice, format!("call-ryw-{n}"));
        let mut started = caller.interaction_started(proto::Direction::Inbound);
        if let Some(proto::event::Payload::InteractionStarted(s)) = &mut started.payload {
            s.language = "he".into();
        }
        let intent = caller.intent_detected("billing.dispute", 0.9, "ivr");
        client
            .publish(vec![started, intent])
            .await
            .expect("published");
        let decided = route(
            &client,
            route_request(caller.customer_ref(), &format!("call-ryw-{n}")),
        )
        .await;
        assert_eq!(
            (
                decided.agent_id.as_str(),
                decided.queue_id.as_str(),
                decided.rule.as_str()
            ),
            ("hebrew", "billing", "billing"),
            "try {n}"
        );
    }

    // An explicit offset beyond the log's end is refused, as GetJourney refuses it.
    let mut request = route_request(chat(TENANT, "v-ryw").customer_ref(), "call-ryw-far");
    request.min_offset = Some(1_000_000);
    let status = client
        .routing()
        .route_interaction(request)
        .await
        .expect_err("beyond the log");
    assert_eq!(status.code(), Code::OutOfRange);
    server.stop().await;
}

/// A caller on voice, their call `interaction`.
fn phone_caller(number: &str, interaction: &str) -> EventFactory {
    EventFactory::new(TENANT, "voice")
        .identity(proto::IdentityKind::Phone, number)
        .on(proto::Channel::Voice, interaction)
}

/// The caller hangs up while queued.
fn hung_up(caller: &EventFactory) -> Vec<proto::Event> {
    vec![
        caller.event(proto::event::Payload::ContactAbandoned(
            proto::ContactAbandoned {
                point: proto::AbandonPoint::Queue as i32,
            },
        )),
        caller.event(proto::event::Payload::InteractionEnded(
            proto::InteractionEnded {
                reason: proto::EndReason::CustomerLeft as i32,
            },
        )),
    ]
}

#[tokio::test]
async fn a_caller_who_hangs_up_leaves_the_queue_and_the_offer() {
    let server = Running::start(Default::default()).await;
    let mut client = server.client().await;
    configure(&client).await;
    // Two callers wait, nobody is staffed.
    let gone = phone_caller("+972500000060", "call-60");
    let stays = phone_caller("+972500000061", "call-61");
    for caller in [&gone, &stays] {
        client
            .publish(vec![caller.interaction_started(proto::Direction::Inbound)])
            .await
            .expect("published");
    }
    route(&client, route_request(gone.customer_ref(), "call-60")).await;
    route(&client, route_request(stays.customer_ref(), "call-61")).await;
    assert_eq!(queue_stats(&client, "general").await.waiting, 2);

    // The first hangs up: acknowledged, it is no longer counted nor offered.
    client.publish(hung_up(&gone)).await.expect("published");
    assert_eq!(queue_stats(&client, "general").await.waiting, 1);
    let mut first = Desk::login(&client, "a-1", &[], &["he"]).await;
    let offer = first.offer().await;
    assert_eq!(offer.interaction_id, "call-61");
    first.0.accept(offer.offer_id).await.expect("sent");
    assert!(matches!(first.next().await, Received::Assigned(_)));
    first.quiet("nothing else waits").await;
    // Routing it again is refused: the call is over.
    let status = client
        .routing()
        .route_interaction(route_request(gone.customer_ref(), "call-60"))
        .await
        .expect_err("over");
    assert_eq!(status.code(), Code::FailedPrecondition);

    // A caller hangs up while their call is offered: the offer is withdrawn and cannot be
    // accepted.
    let mut second = Desk::login(&client, "a-2", &[], &["he"]).await;
    let ringing = phone_caller("+972500000062", "call-62");
    client
        .publish(vec![ringing.interaction_started(proto::Direction::Inbound)])
        .await
        .expect("published");
    let decided = route(&client, route_request(ringing.customer_ref(), "call-62")).await;
    assert_eq!(decided.agent_id, "a-2");
    let offer = second.offer().await;
    client.publish(hung_up(&ringing)).await.expect("published");
    second.0.accept(offer.offer_id).await.expect("sent");
    match second.next().await {
        Received::Withdrawn(withdrawn) => {
            assert_eq!(withdrawn.offer_id, offer.offer_id);
            assert_eq!(withdrawn.reason, "the customer left");
        }
        other => panic!("expected the offer withdrawn, got {other:?}"),
    }
    match second.next().await {
        Received::Refused(refused) => assert_eq!(refused.code, "FAILED_PRECONDITION"),
        other => panic!("expected the accept refused, got {other:?}"),
    }
    assert_eq!(queue_stats(&client, "general").await.waiting, 0);
    server.stop().await;
}

/// A hang-up logged after a route read the journey, and read by routing before the route
/// queues the contact, is not lost: routing remembers the ends of contacts it does not hold,
/// and refuses to queue them. (Here the hang-up is logged under another customer, so that
/// the caller's journey does not show it, as in the race; the contact is the interaction.)
#[tokio::test]
async fn a_hang_up_routing_reads_before_the_route_queues_the_contact_is_not_lost() {
    let server = Running::start(Default::default()).await;
    let mut client = server.client().await;
    configure(&client).await;
    let caller = phone_caller("+972500000063", "call-63");
    client
        .publish(vec![caller.interaction_started(proto::Direction::Inbound)])
        .await
        .expect("published");
    let elsewhere = phone_caller("+972500000064", "call-63");
    client
        .publish(hung_up(&elsewhere))
        .await
        .expect("published");
    // Queue figures wait until routing has read everything logged before them.
    assert_eq!(queue_stats(&client, "general").await.waiting, 0);

    let status = client
        .routing()
        .route_interaction(route_request(caller.customer_ref(), "call-63"))
        .await
        .expect_err("over");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(status.message().contains("call-63 is over"), "{status:?}");
    assert_eq!(queue_stats(&client, "general").await.waiting, 0);

    // A callback for it is routed all the same: callbacks follow a contact that ended.
    let mut callback = route_request(caller.customer_ref(), "call-63");
    callback.callback_at = Some(proto_time(rezef_events::Timestamp::now()));
    let decided = route(&client, callback).await;
    assert_eq!(decided.outcome, proto::RouteOutcome::Queued as i32);
    server.stop().await;
}

#[tokio::test]
async fn withdraw_contact_takes_a_routed_contact_out_and_refuses_what_it_cannot() {
    let server = Running::start(Default::default()).await;
    let client = server.client().await;
    configure(&client).await;
    let mut routing = client.routing();
    let withdraw = |tenant: &str, interaction: &str| proto::WithdrawContactRequest {
        tenant_id: tenant.into(),
        interaction_id: interaction.into(),
    };

    let status = routing
        .withdraw_contact(withdraw("", ""))
        .await
        .expect_err("empty");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(fields(&status), ["tenant_id", "interaction_id"]);
    let status = routing
        .withdraw_contact(withdraw(TENANT, "call-never"))
        .await
        .expect_err("unknown");
    assert_eq!(status.code(), Code::NotFound);

    // A waiting contact leaves its queue.
    route(
        &client,
        route_request(chat(TENANT, "v-70").customer_ref(), "call-70"),
    )
    .await;
    let withdrawn = routing
        .withdraw_contact(withdraw(TENANT, "call-70"))
        .await
        .expect("withdrawn")
        .into_inner();
    assert_eq!(
        (withdrawn.queue_id.as_str(), withdrawn.agent_id.as_str()),
        ("general", "")
    );
    assert_eq!(queue_stats(&client, "general").await.waiting, 0);
    let status = routing
        .withdraw_contact(withdraw(TENANT, "call-70"))
        .await
        .expect_err("gone already");
    assert_eq!(status.code(), Code::NotFound);

    // An offered one: the agent's offer is withdrawn and they get the next contact.
    let mut desk = Desk::login(&client, "a-1", &[], &["he"]).await;
    route(
        &client,
        route_request(chat(TENANT, "v-71").customer_ref(), "call-71"),
    )
    .await;
    route(
        &client,
        route_request(chat(TENANT, "v-72").customer_ref(), "call-72"),
    )
    .await;
    let offer = desk.offer().await;
    assert_eq!(offer.interaction_id, "call-71");
    let withdrawn = routing
        .withdraw_contact(withdraw(TENANT, "call-71"))
        .await
        .expect("withdrawn")
        .into_inner();
    assert_eq!(
        (withdrawn.agent_id.as_str(), withdrawn.offer_id),
        ("a-1", offer.offer_id)
    );
    assert!(matches!(desk.next().await, Received::Withdrawn(_)));
    let next = desk.offer().await;
    assert_eq!(next.interaction_id, "call-72");

    // An assigned one stays the agent's.
    desk.0.accept(next.offer_id).await.expect("sent");
    assert!(matches!(desk.next().await, Received::Assigned(_)));
    let status = routing
        .withdraw_contact(withdraw(TENANT, "call-72"))
        .await
        .expect_err("assigned");
    assert_eq!(status.code(), Code::FailedPrecondition);
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
    assert!(matches!(first.next().await, Received::Offer(_)));
    let mut second = Desk::login(&client, "a-second", &[], &["he"]).await;
    // a-first does not answer within the 1 s timeout.
    assert!(matches!(first.next().await, Received::Withdrawn(_)));
    assert_eq!(second.offer().await.interaction_id, "call-2", "re-offered");

    // a-second's desk crashes: the contact goes back, and a-first gets it again.
    drop(second);
    assert_eq!(
        first.offer().await.interaction_id,
        "call-2",
        "offered again after the disconnect"
    );
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
async fn a_refused_session_request_names_its_grpc_code_as_the_contract_spells_it() {
    let server = Running::start(Default::default()).await;
    let client = server.client().await;
    configure(&client).await;
    let mut desk = Desk::login(&client, "a-1", &[], &["he"]).await;
    desk.0.complete("call-nobody-has").await.expect("sent");
    match desk.next().await {
        Received::Refused(refused) => assert_eq!(refused.code, "FAILED_PRECONDITION"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    desk.0.accept(424_242).await.expect("sent");
    match desk.next().await {
        Received::Refused(refused) => assert_eq!(refused.code, "FAILED_PRECONDITION"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    server.stop().await;
}

#[tokio::test]
async fn an_agent_gains_a_skill_and_a_language_without_logging_out() {
    let server = Running::start(Default::default()).await;
    let client = server.client().await;
    configure(&client).await;
    // A Hebrew billing dispute waits: nobody has billing.
    let mut request = route_request(chat(TENANT, "v-80").customer_ref(), "call-80");
    request.intent = "billing.dispute".into();
    request.language = "he".into();
    let decided = route(&client, request).await;
    assert_eq!(
        (decided.outcome, decided.queue_id.as_str()),
        (proto::RouteOutcome::Queued as i32, "billing")
    );
    let mut desk = Desk::login(&client, "a-1", &[], &["en"]).await;
    desk.quiet("no billing skill, no Hebrew").await;

    // Mistakes are refused, named by their field; the session goes on.
    let mut wrong = profile("someone-else", &[("billing", 9)], &["he"], 1, 1);
    wrong.max_load = 0;
    desk.0.update_profile(wrong).await.expect("sent");
    match desk.next().await {
        Received::Refused(refused) => {
            assert_eq!(refused.code, "INVALID_ARGUMENT");
            for field in [
                "update_profile.profile.agent_id",
                "update_profile.profile.skills[billing]",
                "update_profile.profile.max_load",
            ] {
                assert!(refused.message.contains(field), "{field}: {refused:?}");
            }
        }
        other => panic!("expected a refusal, got {other:?}"),
    }

    // The agent learns billing and Hebrew: the waiting call is theirs at once.
    let mut learned = profile("", &[("billing", 4)], &["en", "he"], 1, 1);
    learned.agent_id = String::new();
    desk.0.update_profile(learned).await.expect("sent");
    assert!(matches!(desk.next().await, Received::ProfileUpdated(_)));
    let offer = desk.offer().await;
    assert_eq!(
        (offer.interaction_id.as_str(), offer.queue_id.as_str()),
        ("call-80", "billing")
    );
    assert_eq!(queue_stats(&client, "billing").await.waiting, 0);
    server.stop().await;
}

/// The tenant's agents, as a supervisor sees them.
async fn list_agents(client: &Client) -> Vec<proto::AgentStatus> {
    client
        .routing()
        .list_agents(proto::ListAgentsRequest {
            tenant_id: TENANT.into(),
        })
        .await
        .expect("agents")
        .into_inner()
        .agents
}

/// An agent's id, presence, contacts held (id, assigned) and voice capacity in use.
type Board = (String, i32, Vec<(String, bool)>, Option<u32>);

/// Each agent's [`Board`].
fn board(agents: &[proto::AgentStatus]) -> Vec<Board> {
    agents
        .iter()
        .map(|a| {
            let id = a
                .profile
                .as_ref()
                .map(|p| p.agent_id.clone())
                .unwrap_or_default();
            let held = a
                .contacts
                .iter()
                .map(|c| (c.interaction_id.clone(), c.assigned))
                .collect();
            (id, a.presence, held, a.in_use.get("voice").copied())
        })
        .collect()
}

#[tokio::test]
async fn a_supervisor_sees_who_holds_what_and_sends_an_agent_away() {
    let server = Running::start(Default::default()).await;
    let mut client = server.client().await;
    configure(&client).await;
    let mut routing = client.routing();
    let mut watch = routing
        .watch_agents(proto::ListAgentsRequest {
            tenant_id: TENANT.into(),
        })
        .await
        .expect("watch")
        .into_inner();
    let first = watch.next().await.expect("an update").expect("ok");
    assert!(first.agents.is_empty(), "nobody logged in yet");

    let mut one = Desk::login(&client, "a-1", &[], &["he"]).await;
    let mut two = Desk::login(&client, "a-2", &[], &["he"]).await;
    route(
        &client,
        route_request(chat(TENANT, "v-90").customer_ref(), "call-90"),
    )
    .await;
    let offer = one.offer().await;
    one.0.accept(offer.offer_id).await.expect("sent");
    assert!(matches!(one.next().await, Received::Assigned(_)));
    route(
        &client,
        route_request(chat(TENANT, "v-91").customer_ref(), "call-91"),
    )
    .await;
    let ringing = two.offer().await;
    let available = proto::Presence::Available as i32;
    assert_eq!(
        board(&list_agents(&client).await),
        [
            (
                "a-1".into(),
                available,
                vec![("call-90".into(), true)],
                Some(1)
            ),
            (
                "a-2".into(),
                available,
                vec![("call-91".into(), false)],
                Some(1)
            ),
        ]
    );
    let agents = list_agents(&client).await;
    assert!(agents.iter().all(|a| a.connected));
    assert_eq!(agents[0].contacts[0].queue_id, "general");
    assert_eq!(agents[0].contacts[0].channel, proto::Channel::Voice as i32);
    let changed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let update = watch.next().await.expect("an update").expect("ok");
            if board(&update.agents).len() == 2 && update.agents[1].contacts.len() == 1 {
                break update;
            }
        }
    })
    .await
    .expect("the watch shows the change");
    assert_eq!(changed.agents[0].contacts[0].interaction_id, "call-90");

    // The supervisor sends a-2 away: the ringing call is withdrawn from a-2 and waits.
    let set = |agent: &str, presence: proto::Presence| proto::SetAgentPresenceRequest {
        tenant_id: TENANT.into(),
        agent_id: agent.into(),
        presence: presence as i32,
        reason: "sent home".into(),
    };
    routing
        .set_agent_presence(set("a-2", proto::Presence::Away))
        .await
        .expect("set");
    match two.next().await {
        Received::Withdrawn(withdrawn) => assert_eq!(withdrawn.offer_id, ringing.offer_id),
        other => panic!("expected the offer withdrawn, got {other:?}"),
    }
    match two.next().await {
        Received::Presence(presence) => {
            assert_eq!(presence.presence, proto::Presence::Away as i32);
            assert_eq!(presence.reason, "set by a supervisor");
        }
        other => panic!("expected the presence, got {other:?}"),
    }
    let away = proto::Presence::Away as i32;
    assert_eq!(
        board(&list_agents(&client).await)[1],
        ("a-2".into(), away, vec![], None)
    );
    assert_eq!(queue_stats(&client, "general").await.waiting, 1);

    // Refusals: fields named, an unknown agent.
    let status = routing
        .set_agent_presence(proto::SetAgentPresenceRequest::default())
        .await
        .expect_err("empty");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(fields(&status), ["tenant_id", "agent_id", "presence"]);
    let status = routing
        .set_agent_presence(set("nobody", proto::Presence::Offline))
        .await
        .expect_err("unknown");
    assert_eq!(status.code(), Code::NotFound);
    let status = routing
        .list_agents(proto::ListAgentsRequest::default())
        .await
        .expect_err("empty");
    assert_eq!(fields(&status), ["tenant_id"]);

    // The log records the supervisor's reason.
    let reasons = loop {
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
                found.push(p.custom_status);
            }
        }
        if found.len() >= 3 {
            break found;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(reasons, ["logged in", "logged in", "sent home"]);
    server.stop().await;
}

/// A transfer request.
fn transfer_of(
    interaction: &str,
    to_agent: &str,
    to_queue: &str,
    warm: bool,
) -> proto::agent_session_request::Transfer {
    proto::agent_session_request::Transfer {
        interaction_id: interaction.into(),
        to_agent_id: to_agent.into(),
        to_queue_id: to_queue.into(),
        warm,
        reason: "billing question".into(),
    }
}

/// The next event must be a transfer's end.
async fn transfer_ended(desk: &mut Desk) -> proto::agent_session_event::TransferEnded {
    match desk.next().await {
        Received::TransferEnded(ended) => ended,
        other => panic!("expected the transfer's end, got {other:?}"),
    }
}

#[tokio::test]
async fn agents_transfer_blind_to_a_queue_and_warm_to_an_agent_with_the_context() {
    let server = Running::start(Default::default()).await;
    let mut client = server.client().await;
    configure(&client).await;
    let caller = phone_caller("+972500000100", "call-100");
    client
        .publish(vec![
            caller.interaction_started(proto::Direction::Inbound),
            caller.intent_detected("plan.change", 0.9, "ivr"),
        ])
        .await
        .expect("published");
    let mut first = Desk::login(&client, "a-1", &[], &["he"]).await;
    let mut biller = Desk::login(&client, "b-1", &["billing"], &["he"]).await;
    let decided = route(&client, route_request(caller.customer_ref(), "call-100")).await;
    assert_eq!(decided.agent_id, "a-1", "the longest idle");
    let offer = first.offer().await;
    first.0.accept(offer.offer_id).await.expect("sent");
    assert!(matches!(first.next().await, Received::Assigned(_)));

    // Mistakes are refused, named by their field.
    first
        .0
        .transfer(transfer_of("call-100", "b-1", "billing", true))
        .await
        .expect("sent");
    match first.next().await {
        Received::Refused(refused) => {
            assert_eq!(refused.code, "INVALID_ARGUMENT");
            assert!(
                refused.message.contains("transfer.to_queue_id"),
                "{refused:?}"
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    first
        .0
        .transfer(transfer_of("call-100", "", "nowhere", false))
        .await
        .expect("sent");
    match first.next().await {
        Received::Refused(refused) => assert_eq!(refused.code, "NOT_FOUND"),
        other => panic!("expected a refusal, got {other:?}"),
    }

    // Blind to billing: a-1 lets go at once, b-1 gets it with the context and the transfer.
    first
        .0
        .transfer(transfer_of("call-100", "", "billing", false))
        .await
        .expect("sent");
    let ended = transfer_ended(&mut first).await;
    assert!(ended.transferred);
    assert_eq!(
        (ended.interaction_id.as_str(), ended.to_queue_id.as_str()),
        ("call-100", "billing")
    );
    let offer = biller.offer().await;
    assert_eq!(
        (offer.interaction_id.as_str(), offer.queue_id.as_str()),
        ("call-100", "billing")
    );
    let conversation = offer
        .context
        .and_then(|c| c.conversation)
        .expect("the context");
    assert_eq!(
        conversation.intent.map(|i| i.intent).as_deref(),
        Some("plan.change")
    );
    assert_eq!(conversation.transfer_count, 1);
    biller.0.accept(offer.offer_id).await.expect("sent");
    assert!(matches!(biller.next().await, Received::Assigned(_)));

    // Warm back to a-1: b-1 keeps the call while a-1 decides; a decline leaves it with b-1.
    biller
        .0
        .transfer(transfer_of("call-100", "a-1", "", true))
        .await
        .expect("sent");
    let warm = first.offer().await;
    assert_eq!(warm.interaction_id, "call-100");
    first.0.decline(warm.offer_id, "busy").await.expect("sent");
    let ended = transfer_ended(&mut biller).await;
    assert!(!ended.transferred, "declined: b-1 keeps it");
    biller.0.complete("call-100-nope").await.expect("sent");
    assert!(matches!(biller.next().await, Received::Refused(_)));
    // Asked again, a-1 accepts: the call is a-1's, and b-1 is told.
    biller
        .0
        .transfer(transfer_of("call-100", "a-1", "", true))
        .await
        .expect("sent");
    let warm = first.offer().await;
    first.0.accept(warm.offer_id).await.expect("sent");
    assert!(matches!(first.next().await, Received::Assigned(_)));
    let ended = transfer_ended(&mut biller).await;
    assert!(ended.transferred);
    assert_eq!(ended.to_agent_id, "a-1");

    // The journey counts both transfers; the call is with a-1.
    let agents = list_agents(&client).await;
    assert_eq!(
        board(&agents),
        [
            (
                "a-1".into(),
                proto::Presence::Available as i32,
                vec![("call-100".into(), true)],
                Some(1)
            ),
            (
                "b-1".into(),
                proto::Presence::Available as i32,
                vec![],
                None
            ),
        ]
    );
    let conversation = loop {
        let journey = client
            .journey(TENANT, caller.customer_ref(), None)
            .await
            .expect("journey")
            .journey
            .expect("journey");
        let conversation = journey.conversations[0].clone();
        if conversation.transfer_count == 2 && conversation.last_agent_id == "a-1" {
            break conversation;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        conversation.interactions[0].stage,
        proto::Stage::Connected as i32
    );
    server.stop().await;
}

#[tokio::test]
async fn a_caller_who_hangs_up_during_a_warm_transfer_is_not_offered_on() {
    let server = Running::start(Default::default()).await;
    let mut client = server.client().await;
    configure(&client).await;
    let caller = phone_caller("+972500000110", "call-110");
    client
        .publish(vec![caller.interaction_started(proto::Direction::Inbound)])
        .await
        .expect("published");
    let mut first = Desk::login(&client, "a-1", &[], &["he"]).await;
    let mut second = Desk::login(&client, "b-1", &[], &["he"]).await;
    route(&client, route_request(caller.customer_ref(), "call-110")).await;
    let offer = first.offer().await;
    first.0.accept(offer.offer_id).await.expect("sent");
    assert!(matches!(first.next().await, Received::Assigned(_)));
    first
        .0
        .transfer(transfer_of("call-110", "b-1", "", true))
        .await
        .expect("sent");
    let warm = second.offer().await;

    // The caller hangs up: b-1's offer is withdrawn, a-1 keeps the (ended) call to wrap up.
    client.publish(hung_up(&caller)).await.expect("published");
    match second.next().await {
        Received::Withdrawn(withdrawn) => {
            assert_eq!(
                (withdrawn.offer_id, withdrawn.reason.as_str()),
                (warm.offer_id, "the customer left")
            );
        }
        other => panic!("expected the offer withdrawn, got {other:?}"),
    }
    assert!(!transfer_ended(&mut first).await.transferred);
    second.0.accept(warm.offer_id).await.expect("sent");
    assert!(matches!(second.next().await, Received::Refused(_)));
    first.0.complete("call-110").await.expect("sent");
    first.quiet("completed").await;
    server.stop().await;
}

/// Waits until the journey shows the caller's interaction at `stage`.
async fn stage_becomes(client: &Client, caller: &EventFactory, stage: proto::Stage) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let journey = client
            .clone()
            .journey(TENANT, caller.customer_ref(), None)
            .await;
        let journey = journey.expect("journey").journey.expect("journey");
        let now = journey.conversations[0].interactions[0].stage;
        if now == stage as i32 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "stage {now}, not {stage:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The next event must be a consult's start or end, with `with`.
async fn consult_changed(desk: &mut Desk, with: &str) -> bool {
    match desk.next().await {
        Received::Consult(changed) => {
            assert_eq!(changed.with_agent_id, with);
            changed.active
        }
        other => panic!("expected a consult, got {other:?}"),
    }
}

#[tokio::test]
async fn an_agent_consults_another_while_holding_the_customer_then_hands_the_call_over() {
    let server = Running::start(Default::default()).await;
    let mut client = server.client().await;
    configure(&client).await;
    let caller = phone_caller("+972500000120", "call-120");
    client
        .publish(vec![
            caller.interaction_started(proto::Direction::Inbound),
            caller.intent_detected("plan.change", 0.9, "ivr"),
        ])
        .await
        .expect("published");
    let mut first = Desk::login(&client, "a-1", &[], &["he"]).await;
    let mut expert = Desk::login(&client, "b-1", &[], &["he"]).await;
    route(&client, route_request(caller.customer_ref(), "call-120")).await;
    let offer = first.offer().await;
    first.0.accept(offer.offer_id).await.expect("sent");
    assert!(matches!(first.next().await, Received::Assigned(_)));

    // a-1 asks b-1 to consult: b-1 is offered it as a consult, with the context.
    first.0.consult("call-120", "b-1").await.expect("sent");
    let asked = expert.offer().await;
    assert!(asked.consult);
    let intent = asked
        .context
        .and_then(|c| c.conversation)
        .and_then(|c| c.intent);
    assert_eq!(intent.map(|i| i.intent).as_deref(), Some("plan.change"));
    expert.0.accept(asked.offer_id).await.expect("sent");
    assert!(consult_changed(&mut first, "b-1").await);
    assert!(consult_changed(&mut expert, "a-1").await);
    // The journey shows the customer on hold while a-1 consults.
    stage_becomes(&client, &caller, proto::Stage::Consulting).await;
    // The customer stays a-1's; b-1's line is taken by the consult.
    let agents = list_agents(&client).await;
    assert_eq!(
        board(&agents),
        [
            (
                "a-1".into(),
                proto::Presence::Available as i32,
                vec![("call-120".into(), true)],
                Some(1)
            ),
            (
                "b-1".into(),
                proto::Presence::Available as i32,
                vec![("call-120".into(), false)],
                Some(1)
            ),
        ]
    );
    let aside: Vec<bool> = agents.iter().map(|a| a.contacts[0].aside).collect();
    assert_eq!(
        aside,
        [false, true],
        "b-1 is drawn in, the call stays a-1's"
    );
    first.0.complete("call-120").await.expect("sent");
    match first.next().await {
        Received::Refused(refused) => assert_eq!(refused.code, "FAILED_PRECONDITION"),
        other => panic!("expected a refusal, got {other:?}"),
    }

    // a-1 ends it: both are told, b-1 is free, the customer is with a-1 again.
    first.0.end_consult("call-120").await.expect("sent");
    assert!(!consult_changed(&mut first, "b-1").await);
    assert!(!consult_changed(&mut expert, "a-1").await);
    stage_becomes(&client, &caller, proto::Stage::Connected).await;

    // Again, and this time a-1 hands the call to b-1: it is b-1's at once.
    first.0.consult("call-120", "b-1").await.expect("sent");
    let asked = expert.offer().await;
    expert.0.accept(asked.offer_id).await.expect("sent");
    assert!(consult_changed(&mut first, "b-1").await);
    assert!(consult_changed(&mut expert, "a-1").await);
    first
        .0
        .transfer(transfer_of("call-120", "b-1", "", false))
        .await
        .expect("sent");
    assert!(transfer_ended(&mut first).await.transferred);
    assert!(!consult_changed(&mut first, "b-1").await);
    assert!(!consult_changed(&mut expert, "a-1").await);
    assert!(matches!(expert.next().await, Received::Assigned(_)));
    let conversation = loop {
        let journey = client
            .journey(TENANT, caller.customer_ref(), None)
            .await
            .expect("journey")
            .journey
            .expect("journey");
        let conversation = journey.conversations[0].clone();
        if conversation.last_agent_id == "b-1" {
            break conversation;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(conversation.transfer_count, 1);
    // The log holds both consults, each started and ended, then the transfer.
    let mut events = client
        .replay(proto::ReplayHistoryRequest {
            tenant_id: TENANT.into(),
            customer: Some(caller.customer_ref()),
            ..Default::default()
        })
        .await
        .expect("replay");
    let mut consults = Vec::new();
    while let Some(replayed) = events.next().await {
        match replayed.expect("ok").event.and_then(|e| e.payload) {
            Some(proto::event::Payload::ConsultStarted(c)) => {
                consults.push(("started", c.agent_id, c.consulted_agent_id));
            }
            Some(proto::event::Payload::ConsultEnded(c)) => {
                consults.push(("ended", c.agent_id, c.consulted_agent_id));
            }
            Some(proto::event::Payload::ContactTransferred(t)) => {
                consults.push(("transferred", t.from_agent_id, t.to_agent_id));
            }
            _ => {}
        }
    }
    let step = |what: &'static str| (what, "a-1".to_owned(), "b-1".to_owned());
    assert_eq!(
        consults,
        [
            step("started"),
            step("ended"),
            step("started"),
            step("ended"),
            step("transferred")
        ]
    );

    // Refusals: a consult with nobody, with oneself.
    expert.0.consult("call-120", "").await.expect("sent");
    match expert.next().await {
        Received::Refused(refused) => {
            assert_eq!(refused.code, "INVALID_ARGUMENT");
            assert!(
                refused.message.contains("consult.to_agent_id"),
                "{refused:?}"
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    expert.0.end_consult("call-120").await.expect("sent");
    match expert.next().await {
        Received::Refused(refused) => assert_eq!(refused.code, "FAILED_PRECONDITION"),
        other => panic!("expected a refusal, got {other:?}"),
    }
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

/// Billing contacts go to experts first, then to anyone with the skill, then to anyone
/// with the skill whatever their language.
const ESCALATION: &str = r#"
version = 4
default_queue = "billing"

[offers]
timeout = "10m"

[[queues]]
id = "billing"
steps = [
  { after = "0s", requirements = "skills.billing >= 4" },
  { after = "30s", requirements = "skills HAS 'billing'" },
  { after = "60s", requirements = "skills HAS 'billing'", drop_language = true },
]
"#;

/// A Hebrew billing call, routed now.
async fn route_hebrew(client: &Client, interaction: &str) -> proto::RouteInteractionResponse {
    let mut request = route_request(chat(TENANT, interaction).customer_ref(), interaction);
    request.language = "he".into();
    let decided = route(client, request).await;
    assert_eq!(
        (decided.outcome, decided.step),
        (proto::RouteOutcome::Queued as i32, 0)
    );
    assert!(decided.candidates.is_empty(), "nobody has billing >= 4");
    decided
}

#[tokio::test]
async fn a_waiting_contact_escalates_to_lower_proficiency_at_30_s_by_the_server_clock() {
    let (server, clock) = Running::start_manual(Default::default()).await;
    let start = clock.now();
    let client = server.client().await;
    configure_with(&client, ESCALATION).await;
    let mut dana = Desk::login_as(&client, profile("dana", &[("billing", 2)], &["he"], 1, 1)).await;
    let mut omar = Desk::login_as(&client, profile("omar", &[("billing", 2)], &["ar"], 1, 1)).await;
    route_hebrew(&client, "call-10").await;

    clock.advance(Duration::from_secs(29));
    let billing = queue_stats(&client, "billing").await;
    assert_eq!(billing.waiting, 1);
    assert_eq!(
        billing.longest_wait.map(|d| (d.seconds, d.nanos)),
        Some((29, 0))
    );
    assert_eq!(billing.available.get("voice"), Some(&2));
    dana.quiet("at 29 s only experts may take it").await;
    omar.quiet("at 29 s only experts may take it").await;

    clock.advance(Duration::from_secs(1));
    let offer = dana.offer().await;
    assert_eq!(
        (offer.interaction_id.as_str(), offer.queue_id.as_str()),
        ("call-10", "billing")
    );
    let expires = start.plus(Duration::from_secs(30 + 600)).to_parts();
    let expires_at = offer.expires_at.map(|t| (t.seconds, t.nanos));
    assert_eq!(
        expires_at,
        Some(expires),
        "offered at 30 s on the server's clock"
    );
    omar.quiet("omar does not speak Hebrew").await;
    let billing = queue_stats(&client, "billing").await;
    assert_eq!(billing.waiting, 0);
    assert_eq!(
        billing.available.get("voice"),
        Some(&1),
        "dana holds the offer"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_waiting_contact_goes_to_another_language_only_at_60_s() {
    let (server, clock) = Running::start_manual(Default::default()).await;
    let client = server.client().await;
    configure_with(&client, ESCALATION).await;
    let mut omar = Desk::login_as(&client, profile("omar", &[("billing", 2)], &["ar"], 1, 1)).await;
    let mut lior = Desk::login_as(&client, profile("lior", &[], &["he"], 1, 1)).await;
    route_hebrew(&client, "call-11").await;

    clock.advance(Duration::from_secs(30));
    omar.quiet("at 30 s the language still counts").await;
    clock.advance(Duration::from_secs(29));
    omar.quiet("at 59 s the language still counts").await;
    let billing = queue_stats(&client, "billing").await;
    assert_eq!(billing.waiting, 1);
    assert_eq!(billing.longest_wait.map(|d| d.seconds), Some(59));

    clock.advance(Duration::from_secs(1));
    assert_eq!(omar.offer().await.interaction_id, "call-11");
    lior.quiet("lior has no billing skill").await;
    assert_eq!(queue_stats(&client, "billing").await.waiting, 0);
    server.stop().await;
}

#[tokio::test]
async fn a_returning_contact_waits_for_its_busy_last_agent_until_the_affinity_timeout() {
    const AFFINITY: &str = r#"
version = 5
default_queue = "general"

[offers]
timeout = "10m"
affinity_timeout = "45s"

[[queues]]
id = "general"
steps = [{ after = "0s" }]
"#;
    let (server, clock) = Running::start_manual(Default::default()).await;
    let mut client = server.client().await;
    configure_with(&client, AFFINITY).await;
    let caller = EventFactory::new(TENANT, "voice")
        .identity(proto::IdentityKind::Phone, "+972500000020")
        .on(proto::Channel::Voice, "call-20");
    let ack = client
        .publish(vec![caller.interaction_started(proto::Direction::Inbound)])
        .await
        .expect("published");
    client
        .journey(TENANT, caller.customer_ref(), Some(ack.first_offset))
        .await
        .expect("projected");

    // The first call goes to `last`, who is on it (one call at a time).
    let mut last = Desk::login_as(&client, profile("last", &[], &["he"], 1, 1)).await;
    let first = route(&client, route_request(caller.customer_ref(), "call-20")).await;
    assert_eq!(first.agent_id, "last");
    let offer = last.offer().await;
    last.0.accept(offer.offer_id).await.expect("sent");
    assert!(matches!(last.next().await, Received::Assigned(_)));
    loop {
        let journey = client
            .journey(TENANT, caller.customer_ref(), None)
            .await
            .expect("journey")
            .journey
            .expect("journey");
        if journey
            .conversations
            .iter()
            .any(|c| c.last_agent_id == "last")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The customer calls again: the call waits for `last`, though `other` is free.
    let mut other = Desk::login_as(&client, profile("other", &[], &["he"], 1, 1)).await;
    let again = route(&client, route_request(caller.customer_ref(), "call-21")).await;
    assert_eq!(again.outcome, proto::RouteOutcome::Queued as i32);
    assert!(again.candidates.is_empty(), "{:?}", again.candidates);
    clock.advance(Duration::from_secs(44));
    other
        .quiet("at 44 s the call still waits for its last agent")
        .await;
    let general = queue_stats(&client, "general").await;
    assert_eq!(general.waiting, 1);
    assert_eq!(general.available.get("voice"), Some(&1), "other is free");

    clock.advance(Duration::from_secs(1));
    assert_eq!(other.offer().await.interaction_id, "call-21");
    last.quiet("last is still on the first call").await;
    server.stop().await;
}

/// Billing disputes need `billing >= 4`; a returning contact waits a minute for its last
/// agent.
const REQUIREMENTS: &str = r#"
version = 6
default_queue = "general"

[offers]
timeout = "10m"
affinity_timeout = "60s"

[[queues]]
id = "general"
steps = [{ after = "0s" }]

[[queues]]
id = "billing"
steps = [{ after = "0s", requirements = "skills.billing >= 4" }]

[[rules]]
name = "billing"
when = "intent == 'billing.dispute'"
queue = "billing"
"#;

/// A server where `history` is the caller's journey and `agents` log in in that order (the
/// first is the longest idle); the decision for the caller's new call, tuned by `tune`.
async fn route_returning(
    history: impl FnOnce(&EventFactory) -> Vec<proto::Event>,
    agents: Vec<proto::AgentProfile>,
    tune: impl FnOnce(&mut proto::RouteInteractionRequest),
) -> proto::RouteInteractionResponse {
    let server = Running::start(Default::default()).await;
    let mut client = server.client().await;
    configure_with(&client, REQUIREMENTS).await;
    let caller = EventFactory::new(TENANT, "voice")
        .identity(proto::IdentityKind::Phone, "+972500000040")
        .on(proto::Channel::Voice, "call-40");
    let events = history(&caller);
    let last = events.len() as u64 - 1;
    let ack = client.publish(events).await.expect("published");
    client
        .journey(TENANT, caller.customer_ref(), Some(ack.first_offset + last))
        .await
        .expect("projected");
    let mut desks = Vec::new();
    for agent in agents {
        desks.push(Desk::login_as(&client, agent).await);
    }
    let mut request = route_request(caller.customer_ref(), "call-41");
    tune(&mut request);
    let decided = route(&client, request).await;
    drop(desks);
    server.stop().await;
    decided
}

fn assigned_to(caller: &EventFactory, agent: &str) -> proto::Event {
    caller.event(proto::event::Payload::ContactAssigned(
        proto::ContactAssigned {
            agent_id: agent.into(),
            queue_id: "general".into(),
        },
    ))
}

#[tokio::test]
async fn affinity_never_overrides_the_step_s_requirements_nor_undoes_a_transfer() {
    // The last agent has billing 1; the step needs 4 and an expert is free.
    let decided = route_returning(
        |caller| {
            vec![
                caller.interaction_started(proto::Direction::Inbound),
                caller.intent_detected("billing.dispute", 0.9, "bot"),
                assigned_to(caller, "last"),
            ]
        },
        vec![
            profile("last", &[("billing", 1)], &["he"], 1, 1),
            profile("expert", &[("billing", 5)], &["he"], 1, 1),
        ],
        |_| {},
    )
    .await;
    assert_eq!(
        (decided.agent_id.as_str(), decided.queue_id.as_str()),
        ("expert", "billing")
    );
    assert_eq!(decided.candidates, ["expert"]);

    // The last agent speaks English only; the call is in Hebrew and a Hebrew speaker is free.
    let decided = route_returning(
        |caller| {
            vec![
                caller.interaction_started(proto::Direction::Inbound),
                assigned_to(caller, "english"),
            ]
        },
        vec![
            profile("english", &[], &["en"], 1, 1),
            profile("hebrew", &[], &["he"], 1, 1),
        ],
        |request| request.language = "he".into(),
    )
    .await;
    assert_eq!(decided.agent_id, "hebrew");

    // dana transferred the call to billing: it does not come back to her, though she is an
    // expert (other, logged in first, is the longest idle).
    let decided = route_returning(
        |caller| {
            vec![
                caller.interaction_started(proto::Direction::Inbound),
                caller.intent_detected("billing.dispute", 0.9, "bot"),
                assigned_to(caller, "dana"),
                caller.event(proto::event::Payload::ContactTransferred(
                    proto::ContactTransferred {
                        from_agent_id: "dana".into(),
                        to_queue_id: "billing".into(),
                        ..Default::default()
                    },
                )),
            ]
        },
        vec![
            profile("other", &[("billing", 5)], &["he"], 1, 1),
            profile("dana", &[("billing", 5)], &["he"], 1, 1),
        ],
        |_| {},
    )
    .await;
    assert_eq!(decided.agent_id, "other");
    assert_eq!(decided.candidates, ["other", "dana"]);
}

const STRESS: &str = r#"
version = 9
default_queue = "general"

[offers]
timeout = "10m"
max_declines = 3

[[queues]]
id = "general"
steps = [{ after = "0s" }]
"#;

/// Dice for the stress test (SplitMix64): seeded, so each agent's choices repeat.
struct Dice(u64);

impl Dice {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// What the sessions saw, checked against the invariants as it happens.
#[derive(Debug, Default)]
struct Seen {
    /// Each routed contact's channel.
    channels: HashMap<String, &'static str>,
    /// Who each contact was assigned to.
    assigned: HashMap<String, String>,
    completed: HashSet<String>,
    violations: Vec<String>,
}

/// How a driver answers an offer.
#[derive(Debug, Clone, Copy)]
enum Answer {
    AtRandom,
    Accept,
    Later,
}

/// One agent desktop of the stress test: answers offers at random, completes work, goes
/// away and comes back, loses its connection; once draining, takes and completes
/// everything.
struct Driver {
    client: Client,
    profile: proto::AgentProfile,
    desk: Desk,
    dice: Dice,
    seen: Arc<Mutex<Seen>>,
    /// Offers received and not yet answered.
    offers: HashSet<u64>,
    /// Contacts assigned and not completed, with their channel.
    held: HashMap<String, &'static str>,
    away: bool,
    barriers: u64,
}

impl Driver {
    fn agent(&self) -> &str {
        &self.profile.agent_id
    }

    /// Plays until every routed contact is completed (`drain` gives their number).
    async fn run(mut self, mut drain: tokio::sync::watch::Receiver<Option<usize>>) -> Self {
        loop {
            let draining = *drain.borrow_and_update();
            if let Some(total) = draining {
                if self.away {
                    self.set_presence(proto::Presence::Available).await;
                }
                for offer in std::mem::take(&mut self.offers) {
                    self.desk.0.accept(offer).await.expect("sent");
                }
                self.complete_all().await;
                if self.seen.lock().expect("seen").completed.len() >= total {
                    // Every completion sent is carried out before the figures are read (and
                    // an agent set away by earlier declines comes back first).
                    self.barrier().await;
                    if !self.away {
                        return self;
                    }
                    continue;
                }
            }
            let pause = Duration::from_millis(10 + self.dice.below(40));
            tokio::select! {
                event = self.desk.0.next() => {
                    let event = event.expect("ok").expect("the session is open");
                    let answer = if draining.is_some() { Answer::Accept } else { Answer::AtRandom };
                    self.on(event, answer).await;
                }
                () = tokio::time::sleep(pause) => if draining.is_none() {
                    self.act().await;
                },
                _ = drain.changed(), if draining.is_none() => {}
            }
        }
    }

    /// Takes in what the backbone sent, answering offers as `answer` says.
    async fn on(&mut self, event: Received, answer: Answer) {
        match event {
            Received::Offer(offer) => {
                let accept = match answer {
                    Answer::Later => None,
                    Answer::Accept => Some(true),
                    // Most are taken, some declined, some left for later.
                    Answer::AtRandom => match self.dice.below(10) {
                        0..7 => Some(true),
                        7..9 => Some(false),
                        _ => None,
                    },
                };
                match accept {
                    Some(true) => self.desk.0.accept(offer.offer_id).await.expect("sent"),
                    Some(false) => {
                        let declined = self.desk.0.decline(offer.offer_id, "busy").await;
                        declined.expect("sent");
                    }
                    None => {
                        self.offers.insert(offer.offer_id);
                    }
                }
            }
            Received::Assigned(assigned) => self.assigned(assigned.interaction_id),
            Received::Withdrawn(withdrawn) => {
                self.offers.remove(&withdrawn.offer_id);
            }
            Received::Presence(presence) => {
                // Set away after declining too often: the offers were withdrawn.
                if presence.presence != proto::Presence::Available as i32 {
                    self.away = true;
                    self.offers.clear();
                }
            }
            Received::Refused(_) => {} // an answer to an offer withdrawn meanwhile
            Received::LoggedIn(_) => self.violation("a second login message".into()),
            Received::ProfileUpdated(_) => self.violation("a profile nobody changed".into()),
            Received::TransferEnded(_) | Received::Consult(_) => {
                self.violation("a transfer or consult nobody asked for".into())
            }
        }
    }

    fn assigned(&mut self, contact: String) {
        let mut seen = self.seen.lock().expect("seen");
        let agent = self.agent().to_owned();
        if let Some(before) = seen.assigned.insert(contact.clone(), agent.clone()) {
            seen.violations.push(format!(
                "{contact} assigned to {before} and then to {agent}"
            ));
        }
        let channel = seen.channels.get(&contact).copied().unwrap_or("unknown");
        self.held.insert(contact, channel);
        let on_channel = self.held.values().filter(|c| **c == channel).count();
        let capacity = self.profile.capacity.get(channel).copied().unwrap_or(0);
        if on_channel > capacity as usize || self.held.len() > self.profile.max_load as usize {
            seen.violations.push(format!(
                "{agent} holds {:?}, above its capacity {:?} (load {})",
                self.held, self.profile.capacity, self.profile.max_load
            ));
        }
    }

    fn violation(&self, what: String) {
        self.seen.lock().expect("seen").violations.push(what);
    }

    /// One thing an agent does of their own accord.
    async fn act(&mut self) {
        match self.dice.below(100) {
            0..40 => {
                let done = self.held.keys().next().cloned();
                if let Some(contact) = done {
                    self.complete(contact).await;
                }
            }
            40..50 => {
                let kept = self.offers.iter().next().copied();
                if let Some(offer) = kept {
                    self.offers.remove(&offer);
                    self.desk.0.accept(offer).await.expect("sent");
                }
            }
            50..55 => {
                let presence = if self.away {
                    proto::Presence::Available
                } else {
                    proto::Presence::Away
                };
                self.set_presence(presence).await;
            }
            55..58 => self.reconnect().await,
            _ => {}
        }
    }

    async fn set_presence(&mut self, presence: proto::Presence) {
        self.desk
            .0
            .set_presence(presence, "stress")
            .await
            .expect("sent");
        self.away = presence != proto::Presence::Available;
        if self.away {
            self.offers.clear(); // withdrawn by the backbone
        }
    }

    async fn complete(&mut self, contact: String) {
        self.desk.0.complete(&contact).await.expect("sent");
        self.held.remove(&contact);
        self.seen.lock().expect("seen").completed.insert(contact);
    }

    async fn complete_all(&mut self) {
        let held: Vec<String> = self.held.keys().cloned().collect();
        for contact in held {
            self.complete(contact).await;
        }
    }

    /// Waits until the backbone has answered every request sent so far: a completion of a
    /// contact nobody has is refused, after everything before it.
    async fn barrier(&mut self) {
        self.barriers += 1;
        let token = format!("barrier-{}-{}", self.agent(), self.barriers);
        self.desk.0.complete(&token).await.expect("sent");
        loop {
            match self.desk.next().await {
                Received::Refused(refused) if refused.message.contains(&token) => return,
                event => self.on(event, Answer::Later).await,
            }
        }
    }

    /// The connection drops (after every accept has its answer, so no assignment is lost
    /// with it) and the desk logs in again.
    async fn reconnect(&mut self) {
        self.barrier().await;
        self.offers.clear(); // withdrawn, or sent again to the new session
        self.desk = Desk::login_as(&self.client, self.profile.clone()).await;
        self.away = false;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_sessions_at_once_never_exceed_capacity_nor_assign_a_contact_twice() {
    const AGENTS: u64 = 40;
    const ROUTERS: usize = 4;
    const CONTACTS_EACH: usize = 75;
    // Offers never expire on the manual clock, so nothing happens by timing.
    let (server, _clock) = Running::start_manual(Default::default()).await;
    let mut client = server.client().await;
    configure_with(&client, STRESS).await;
    let seen = Arc::new(Mutex::new(Seen::default()));
    let (drain, draining) = tokio::sync::watch::channel(None);

    let mut drivers = Vec::new();
    for n in 0..AGENTS {
        let mut dice = Dice(n);
        let voice = 1 + dice.below(2) as u32;
        let webchat = 1 + dice.below(3) as u32;
        let mut profile = profile(&format!("agent-{n}"), &[], &["he"], voice, webchat);
        profile.max_load = voice.max(webchat) + dice.below(2) as u32;
        let driver = Driver {
            client: client.clone(),
            desk: Desk::login_as(&client, profile.clone()).await,
            profile,
            dice,
            seen: seen.clone(),
            offers: HashSet::new(),
            held: HashMap::new(),
            away: false,
            barriers: 0,
        };
        drivers.push(tokio::spawn(driver.run(draining.clone())));
    }

    let mut routers = Vec::new();
    for r in 0..ROUTERS {
        let client = client.clone();
        let seen = seen.clone();
        routers.push(tokio::spawn(async move {
            let mut dice = Dice(1_000 + r as u64);
            for n in 0..CONTACTS_EACH {
                let contact = format!("c-{r}-{n}");
                let (channel, name) = if dice.chance(50) {
                    (proto::Channel::Voice, "voice")
                } else {
                    (proto::Channel::Webchat, "webchat")
                };
                seen.lock()
                    .expect("seen")
                    .channels
                    .insert(contact.clone(), name);
                let mut request = route_request(chat(TENANT, &contact).customer_ref(), &contact);
                request.channel = channel as i32;
                let decided = route(&client, request).await;
                assert!(
                    [proto::RouteOutcome::Offered, proto::RouteOutcome::Queued]
                        .map(|o| o as i32)
                        .contains(&decided.outcome),
                    "{decided:?}"
                );
                tokio::time::sleep(Duration::from_millis(dice.below(20))).await;
            }
        }));
    }
    for router in routers {
        router.await.expect("routed");
    }
    let total = ROUTERS * CONTACTS_EACH;
    drain.send_replace(Some(total));
    let drained =
        tokio::time::timeout(Duration::from_secs(30), futures::future::join_all(drivers)).await;
    let Ok(drivers) = drained else {
        let waiting = queue_stats(&client, "general").await;
        let seen = seen.lock().expect("seen");
        panic!(
            "not drained: {} of {total} completed, {waiting:?}",
            seen.completed.len()
        );
    };
    let drivers: Vec<Driver> = drivers
        .into_iter()
        .map(|d| d.expect("the driver ran"))
        .collect();

    let seen = std::mem::take(&mut *seen.lock().expect("seen"));
    assert!(seen.violations.is_empty(), "{:#?}", seen.violations);
    assert_eq!(seen.assigned.len(), total, "every contact was assigned");
    assert_eq!(seen.completed.len(), total);
    // Everyone is free again: every agent available on every channel, nobody waiting.
    let general = queue_stats(&client, "general").await;
    assert_eq!(general.waiting, 0);
    let agents = drivers.len() as u32;
    assert_eq!(general.available.get("voice"), Some(&agents));
    assert_eq!(general.available.get("webchat"), Some(&agents));

    // The log agrees: one decision and one assignment per contact, to the agent who got it.
    let mut events = client
        .replay(proto::ReplayHistoryRequest {
            tenant_id: TENANT.into(),
            ..Default::default()
        })
        .await
        .expect("replay");
    let mut decided: HashMap<String, usize> = HashMap::new();
    let mut offered: HashSet<String> = HashSet::new();
    let mut assigned: HashMap<String, Vec<String>> = HashMap::new();
    while let Some(replayed) = events.next().await {
        let Some(event) = replayed.expect("ok").event else {
            continue;
        };
        let contact = event.interaction_id.clone();
        match event.payload {
            Some(proto::event::Payload::RoutingDecided(_)) => {
                *decided.entry(contact).or_default() += 1;
            }
            Some(proto::event::Payload::ContactOffered(_)) => {
                offered.insert(contact);
            }
            Some(proto::event::Payload::ContactAssigned(a)) => {
                assigned.entry(contact).or_default().push(a.agent_id);
            }
            _ => {}
        }
    }
    assert_eq!(decided.len(), total);
    assert!(
        decided.values().all(|n| *n == 1),
        "one decision per contact"
    );
    assert_eq!(offered.len(), total, "every contact was offered");
    assert_eq!(assigned.len(), total);
    for (contact, agents) in &assigned {
        assert_eq!(
            agents,
            &[seen.assigned[contact].clone()],
            "{contact}: the log's assignments"
        );
    }
    drop(drivers);
    server.stop().await;
}

fn proto_time(at: rezef_events::Timestamp) -> prost_types::Timestamp {
    let (seconds, nanos) = at.to_parts();
    prost_types::Timestamp { seconds, nanos }
}

#[tokio::test]
async fn a_scheduled_callback_is_offered_at_its_time_by_the_server_clock() {
    let (server, clock) = Running::start_manual(Default::default()).await;
    let start = clock.now();
    let client = server.client().await;
    configure(&client).await;
    let mut dana = Desk::login(&client, "dana", &[], &["he"]).await;

    // Too far ahead: refused, naming the field.
    let mut request = route_request(chat(TENANT, "cb-far").customer_ref(), "cb-far");
    request.callback_at = Some(proto_time(start.plus(Duration::from_secs(31 * 86_400))));
    let status = client
        .routing()
        .route_interaction(request)
        .await
        .expect_err("31 days ahead");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(fields(&status), ["callback_at"]);

    // A callback first arrived a minute ago, for five minutes from now.
    let mut request = route_request(chat(TENANT, "cb-1").customer_ref(), "cb-1");
    request.arrived_at = Some(proto_time(start));
    request.callback_at = Some(proto_time(start.plus(Duration::from_secs(300))));
    clock.advance(Duration::from_secs(60));
    let decided = route(&client, request).await;
    assert_eq!(decided.outcome, proto::RouteOutcome::Queued as i32);
    assert!(!decided.offer_callback, "it is a callback already");
    let general = queue_stats(&client, "general").await;
    assert_eq!((general.waiting, general.scheduled), (0, 1));
    dana.quiet("held although dana is free").await;

    clock.advance(Duration::from_secs(239));
    dana.quiet("not at T - 1 s").await;
    let general = queue_stats(&client, "general").await;
    assert_eq!((general.waiting, general.scheduled), (0, 1));

    clock.advance(Duration::from_secs(1));
    let offer = dana.offer().await;
    assert_eq!(offer.interaction_id, "cb-1");
    assert_eq!(
        offer.expires_at.map(|t| (t.seconds, t.nanos)),
        Some(start.plus(Duration::from_secs(301)).to_parts()),
        "offered at 300 s on the server's clock"
    );
    let general = queue_stats(&client, "general").await;
    assert_eq!((general.waiting, general.scheduled), (0, 0));
    server.stop().await;
}

/// Routing started again over the same data (a restart; on Kafka, its partition moved) holds
/// every contact it held that no agent took, from the log: waiting ones back in their queue
/// with their original arrival, a callback held until its time; not the one an agent took,
/// the one that hung up, nor the one withdrawn.
#[tokio::test]
async fn routing_started_again_holds_every_contact_no_agent_took() {
    let (server, clock) = Running::start_manual(Default::default()).await;
    let start = clock.now();
    let mut client = server.client().await;
    configure(&client).await;
    let caller = |n: u32, interaction: &str| phone_caller(&format!("+97250000{n:04}"), interaction);
    let routed = |interaction: &str, n: u32| {
        route_request(caller(n, interaction).customer_ref(), interaction)
    };

    // dana takes one call (one voice call at a time): the others wait.
    let mut dana = Desk::login(&client, "dana", &[], &[]).await;
    let taken = route(&client, routed("taken", 101)).await;
    assert_eq!(taken.outcome, proto::RouteOutcome::Offered as i32);
    let offer = dana.offer().await;
    dana.0.accept(offer.offer_id).await.expect("sent");
    assert!(matches!(dana.next().await, Received::Assigned(_)));
    let mut billing = routed("billing-call", 102);
    billing.intent = "billing.dispute".into();
    billing.language = "he".into();
    assert_eq!(route(&client, billing).await.queue_id, "billing");
    route(&client, routed("general-call", 103)).await;
    let mut callback = routed("callback", 104);
    callback.callback_at = Some(proto_time(start.plus(Duration::from_secs(600))));
    route(&client, callback).await;
    route(&client, routed("withdrawn", 105)).await;
    client
        .routing()
        .withdraw_contact(proto::WithdrawContactRequest {
            tenant_id: TENANT.into(),
            interaction_id: "withdrawn".into(),
        })
        .await
        .expect("withdrawn");
    route(&client, routed("hung-up", 106)).await;
    client
        .publish(hung_up(&caller(106, "hung-up")))
        .await
        .expect("published");
    let before = queue_stats(&client, "general").await;
    assert_eq!((before.waiting, before.scheduled), (1, 1));
    drop(dana);

    let dir = server.stop_keeping().await;
    let clock = rezef_server::ManualClock::new(start.plus(Duration::from_secs(60)));
    let server = Running::start_in(Default::default(), Arc::new(clock.clone()), dir).await;
    client = server.client().await;
    let general = queue_stats(&client, "general").await;
    assert_eq!((general.waiting, general.scheduled), (1, 1), "{general:?}");
    assert!(
        general.longest_wait.is_some_and(|w| w.seconds >= 60),
        "waiting since it first arrived: {general:?}"
    );
    assert_eq!(queue_stats(&client, "billing").await.waiting, 1);
    for gone in ["taken", "withdrawn", "hung-up"] {
        let status = client
            .routing()
            .withdraw_contact(proto::WithdrawContactRequest {
                tenant_id: TENANT.into(),
                interaction_id: gone.into(),
            })
            .await
            .expect_err("not held");
        assert_eq!(status.code(), Code::NotFound, "{gone}: {status:?}");
    }

    // An agent who qualifies is offered both waiting calls, as they were routed (the billing
    // call needs the skill and Hebrew), then the callback at its time and not before.
    let mut omar = Desk::login_as(&client, profile("omar", &[("billing", 4)], &["he"], 3, 3)).await;
    let offers = [omar.offer().await, omar.offer().await];
    let mut offered = HashSet::new();
    for offer in offers {
        omar.0.accept(offer.offer_id).await.expect("sent");
        assert!(matches!(omar.next().await, Received::Assigned(_)));
        offered.insert(offer.interaction_id);
    }
    assert_eq!(
        offered,
        HashSet::from(["billing-call".to_owned(), "general-call".to_owned()])
    );
    clock.advance(Duration::from_secs(539));
    omar.quiet("the callback is not due").await;
    clock.advance(Duration::from_secs(1));
    assert_eq!(omar.offer().await.interaction_id, "callback");
    server.stop().await;
}
