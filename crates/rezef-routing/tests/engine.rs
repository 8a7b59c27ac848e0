//! The routing engine given agents, contacts and a clock, then expecting decisions: skills
//! and language, priority with ageing and tenure, affinity with fallback, escalation at its
//! times, bot first, offers that time out, disconnects, estimated waits and callbacks,
//! scheduled callbacks held until their time, and each strategy.

use std::collections::BTreeMap;
use std::time::Duration;

use rezef_events::event::Presence;
use rezef_events::{AgentId, Channel, InteractionId, Timestamp};
use rezef_routing::{
    AgentProfile, ContactRequest, Engine, RoutingConfig, RoutingError, Target, TransferTarget,
    Withdrawn,
};

const CONFIG: &str = r#"
    version = 1
    default_queue = "general"

    [offers]
    timeout = "20s"
    max_declines = 2
    affinity_timeout = "60s"

    [priority]
    tiers = { vip = 20 }
    ageing_per_minute = 1.0

    [bot_first.webchat]
    bot_id = "helper-bot"

    [[queues]]
    id = "general"
    steps = [{ after = "0s" }]

    [[queues]]
    id = "billing"
    callback_above = "10m"
    steps = [
      { after = "0s", requirements = "skills.billing >= 4" },
      { after = "30s", requirements = "skills HAS 'billing'" },
      { after = "2m", requirements = "team == 'overflow'", drop_language = true },
    ]

    [[queues]]
    id = "sales"
    strategy = "highest_proficiency"
    skill = "sales"
    steps = [{ after = "0s", requirements = "skills HAS 'sales'" }]

    [[queues]]
    id = "support"
    strategy = "round_robin"
    steps = [{ after = "0s" }]

    [[rules]]
    name = "billing"
    when = "intent == 'billing'"
    queue = "billing"

    [[rules]]
    name = "sales"
    when = "intent == 'sales'"
    queue = "sales"

    [[rules]]
    name = "support"
    when = "intent == 'support'"
    queue = "support"
"#;

const T0: Timestamp = Timestamp::from_unix_millis(1_800_000_000_000);

fn at(seconds: u64) -> Timestamp {
    T0.plus(Duration::from_secs(seconds))
}

fn engine() -> Engine {
    Engine::new(RoutingConfig::from_toml(CONFIG).expect("the test configuration compiles"))
}

fn agent_id(id: &str) -> AgentId {
    AgentId::new(id).expect("valid")
}

fn contact_id(id: &str) -> InteractionId {
    InteractionId::new(id).expect("valid")
}

/// An available agent: skills as `name=level`, languages, capacity one voice call and
/// three chats.
fn agent(engine: &mut Engine, id: &str, skills: &[(&str, u8)], languages: &[&str], now: Timestamp) {
    engine.upsert_agent(
        AgentProfile {
            id: agent_id(id),
            skills: skills.iter().map(|(s, l)| ((*s).to_owned(), *l)).collect(),
            languages: languages.iter().map(|l| (*l).to_owned()).collect(),
            team: if id.starts_with("overflow") {
                "overflow".into()
            } else {
                "core".into()
            },
            site: "tlv".into(),
            capacity: BTreeMap::from([(Channel::Voice, 1), (Channel::Webchat, 3)]),
            max_load: 3,
        },
        now,
    );
    engine
        .set_presence(&agent_id(id), Presence::Available, now)
        .expect("known agent");
}

fn call(id: &str, intent: &str, language: &str) -> ContactRequest {
    ContactRequest {
        id: Some(contact_id(id)),
        channel: Some(Channel::Voice),
        intent: Some(intent.into()),
        language: Some(language.into()),
        ..ContactRequest::default()
    }
}

fn offered_to(target: &Target) -> Option<&str> {
    match target {
        Target::Offered(offer) => Some(offer.agent.as_str()),
        _ => None,
    }
}

#[test]
fn every_language_reaches_an_agent_who_speaks_it() {
    let mut engine = engine();
    for (agent_name, language) in [
        ("dana", "he"),
        ("omar", "ar"),
        ("olga", "ru"),
        ("john", "en"),
    ] {
        agent(&mut engine, agent_name, &[("billing", 5)], &[language], T0);
    }
    for (caller, language, expected) in [
        ("c-ru", "ru", "olga"),
        ("c-ar", "ar", "omar"),
        ("c-en", "en", "john"),
        ("c-he", "he", "dana"),
    ] {
        let decision = engine
            .route(call(caller, "billing", language), at(1))
            .expect("routed");
        assert_eq!(offered_to(&decision.target), Some(expected), "{language}");
        assert_eq!(decision.queue, "billing");
        assert_eq!(decision.rule.as_deref(), Some("billing"));
    }
    // Nobody speaks Amharic at this proficiency: the contact waits rather than reaching an
    // agent who cannot talk to them.
    let decision = engine
        .route(call("c-am", "billing", "am"), at(2))
        .expect("routed");
    assert!(
        matches!(decision.target, Target::Queued { .. }),
        "{decision:?}"
    );
}

#[test]
fn languages_match_across_tag_forms() {
    let mut engine = engine();
    for (name, language) in [
        ("dana", "he"),
        ("yossi", "HE-il"),
        ("george", "en-GB"),
        ("mei", "zh-Hant"),
    ] {
        agent(&mut engine, name, &[("billing", 5)], &[language], T0);
    }
    let decision = engine
        .route(call("c-hans", "billing", "zh-Hans"), at(1))
        .expect("routed");
    assert!(
        matches!(decision.target, Target::Queued { .. }),
        "a reader of traditional characters is not one of simplified: {decision:?}"
    );
    let mut offered = Vec::new();
    for (caller, language) in [
        ("c-1", "he-IL"),
        ("c-2", "iw"),
        ("c-3", "en-US"),
        ("c-4", "zh-Hant-TW"),
    ] {
        let decision = engine
            .route(call(caller, "billing", language), at(2))
            .expect("routed");
        offered.push(offered_to(&decision.target).map(str::to_owned));
    }
    assert_eq!(
        offered,
        [Some("dana"), Some("yossi"), Some("george"), Some("mei")].map(|a| a.map(str::to_owned))
    );
}

#[test]
fn rules_and_requirements_see_the_language_spoken() {
    let config = r#"
        version = 1
        default_queue = "general"

        [[queues]]
        id = "general"
        steps = [{ after = "0s" }]

        [[queues]]
        id = "hebrew"
        require_language = false
        steps = [{ after = "0s", requirements = "languages HAS contact.language" }]

        [[rules]]
        name = "hebrew"
        when = "language == 'he' AND language_tag == 'he-IL'"
        queue = "hebrew"
    "#;
    let mut engine =
        Engine::new(RoutingConfig::from_toml(config).expect("the test configuration compiles"));
    agent(&mut engine, "omar", &[], &["ar"], T0);
    agent(&mut engine, "dana", &[], &["iw-IL"], T0);
    let decision = engine
        .route(call("c-1", "billing", "he-IL"), at(1))
        .expect("routed");
    assert_eq!(decision.rule.as_deref(), Some("hebrew"));
    assert_eq!(offered_to(&decision.target), Some("dana"));
}

#[test]
fn escalation_widens_the_requirements_at_its_times() {
    let mut engine = engine();
    agent(&mut engine, "junior", &[("billing", 2)], &["he"], T0);
    agent(&mut engine, "overflow-1", &[], &["en"], T0);
    let decision = engine
        .route(call("c-1", "billing", "he"), at(0))
        .expect("routed");
    assert!(
        matches!(decision.target, Target::Queued { .. }),
        "only experts at first"
    );
    assert_eq!(engine.next_deadline(at(0)), Some(at(30)));
    assert!(engine.dispatch(at(29)).is_empty());
    let offers = engine.dispatch(at(30));
    assert_eq!(
        offers.iter().map(|o| o.agent.as_str()).collect::<Vec<_>>(),
        ["junior"]
    );

    // The junior declines; at two minutes the overflow team takes it, language aside.
    engine
        .decline(offers[0].id, &agent_id("junior"))
        .expect("declined");
    assert!(
        engine.dispatch(at(60)).is_empty(),
        "the junior is not offered it again"
    );
    let offers = engine.dispatch(at(120));
    assert_eq!(
        offers.iter().map(|o| o.agent.as_str()).collect::<Vec<_>>(),
        ["overflow-1"]
    );
}

#[test]
fn vip_first_but_waiting_raises_everyone_so_nobody_starves() {
    let mut engine = engine();
    let standard = call("standard", "support", "he");
    engine.route(standard, at(0)).expect("routed");
    let vip = ContactRequest {
        tier: Some("vip".into()),
        ..call("vip", "support", "he")
    };
    engine.route(vip, at(60)).expect("routed");
    agent(&mut engine, "a-1", &[], &["he"], at(61));
    let offers = engine.dispatch(at(61));
    assert_eq!(
        offers[0].contact.as_str(),
        "vip",
        "a VIP who just came goes first"
    );

    // A standard contact waiting 21 minutes outranks a VIP who just arrived (20 points).
    let mut engine = self::engine();
    engine
        .route(call("standard", "support", "he"), at(0))
        .expect("routed");
    let vip = ContactRequest {
        tier: Some("vip".into()),
        ..call("vip", "support", "he")
    };
    engine.route(vip, at(21 * 60)).expect("routed");
    agent(&mut engine, "a-1", &[], &["he"], at(21 * 60 + 1));
    let offers = engine.dispatch(at(21 * 60 + 1));
    assert_eq!(offers[0].contact.as_str(), "standard");
}

#[test]
fn long_standing_customers_are_not_served_after_new_ones() {
    let mut engine = engine();
    let new = ContactRequest {
        customer_since: Some(at(0)),
        ..call("new", "support", "he")
    };
    let loyal = ContactRequest {
        customer_since: Some(
            T0.plus(Duration::from_secs(0))
                .min(Timestamp::from_unix_millis(1_500_000_000_000)),
        ),
        ..call("loyal", "support", "he")
    };
    engine.route(new, at(0)).expect("routed");
    engine.route(loyal, at(1)).expect("routed");
    agent(&mut engine, "a-1", &[], &["he"], at(2));
    assert_eq!(engine.dispatch(at(2))[0].contact.as_str(), "loyal");
}

#[test]
fn the_last_agent_is_tried_first_then_anyone_after_the_affinity_wait() {
    let mut engine = engine();
    agent(&mut engine, "last", &[], &["he"], T0);
    agent(&mut engine, "other", &[], &["he"], T0);
    engine
        .set_presence(&agent_id("last"), Presence::AfterContactWork, T0)
        .expect("known");
    let returning = ContactRequest {
        preferred_agent: Some(agent_id("last")),
        ..call("c-1", "support", "he")
    };
    let decision = engine.route(returning, at(0)).expect("routed");
    assert!(
        matches!(decision.target, Target::Queued { .. }),
        "waits for the last agent"
    );
    engine
        .set_presence(&agent_id("last"), Presence::Available, at(10))
        .expect("known");
    assert_eq!(engine.dispatch(at(10))[0].agent.as_str(), "last");

    // A last agent who went offline is not waited for.
    let mut engine = self::engine();
    agent(&mut engine, "last", &[], &["he"], T0);
    agent(&mut engine, "other", &[], &["he"], T0);
    engine.disconnect(&agent_id("last"), T0).expect("known");
    let returning = ContactRequest {
        preferred_agent: Some(agent_id("last")),
        ..call("c-1", "support", "he")
    };
    let decision = engine.route(returning, at(0)).expect("routed");
    assert_eq!(offered_to(&decision.target), Some("other"));

    // A last agent busy for longer than the affinity wait: anyone takes it then.
    let mut engine = self::engine();
    agent(&mut engine, "last", &[], &["he"], T0);
    agent(&mut engine, "other", &[], &["he"], T0);
    engine
        .set_presence(&agent_id("last"), Presence::Busy, T0)
        .expect("known");
    let returning = ContactRequest {
        preferred_agent: Some(agent_id("last")),
        ..call("c-1", "support", "he")
    };
    engine.route(returning, at(0)).expect("routed");
    assert_eq!(engine.next_deadline(at(0)), Some(at(60)));
    assert!(engine.dispatch(at(59)).is_empty());
    assert_eq!(engine.dispatch(at(60))[0].agent.as_str(), "other");
}

#[test]
fn affinity_chooses_among_the_agents_who_meet_the_step_never_outside_them() {
    // Given the customer's last agent, free but with billing 1, and an expert free too,
    let mut engine = engine();
    agent(&mut engine, "last", &[("billing", 1)], &["he"], T0);
    agent(&mut engine, "expert", &[("billing", 5)], &["he"], T0);
    // when a billing call of theirs comes (the step requires billing >= 4),
    let returning = ContactRequest {
        preferred_agent: Some(agent_id("last")),
        ..call("c-1", "billing", "he")
    };
    let decision = engine.route(returning, at(0)).expect("routed");
    // then the expert takes it, and the last agent is no candidate.
    assert_eq!(offered_to(&decision.target), Some("expert"));
    assert_eq!(decision.candidates, [agent_id("expert")]);

    // Given an English-only last agent and a Hebrew speaker, both free,
    let mut engine = self::engine();
    agent(&mut engine, "last", &[], &["en"], T0);
    agent(&mut engine, "hebrew", &[], &["he"], T0);
    // when a Hebrew call of theirs comes,
    let returning = ContactRequest {
        preferred_agent: Some(agent_id("last")),
        ..call("c-1", "support", "he")
    };
    let decision = engine.route(returning, at(0)).expect("routed");
    // then the Hebrew speaker takes it.
    assert_eq!(offered_to(&decision.target), Some("hebrew"));

    // Given a busy last agent who does not meet the step, and nobody else yet,
    let mut engine = self::engine();
    agent(&mut engine, "last", &[("billing", 1)], &["he"], T0);
    engine
        .set_presence(&agent_id("last"), Presence::Busy, T0)
        .expect("known");
    let returning = ContactRequest {
        preferred_agent: Some(agent_id("last")),
        ..call("c-1", "billing", "he")
    };
    engine.route(returning, at(0)).expect("routed");
    // when an expert logs in within the affinity wait,
    agent(&mut engine, "expert", &[("billing", 5)], &["he"], at(5));
    // then the call does not wait for the last agent: the expert gets it at once.
    let offers = engine.dispatch(at(5));
    assert_eq!(offers.len(), 1);
    assert_eq!(offers[0].agent.as_str(), "expert");

    // Given a last agent who qualifies and is busy, the call still waits for them alone.
    let mut engine = self::engine();
    agent(&mut engine, "last", &[("billing", 4)], &["he"], T0);
    agent(&mut engine, "expert", &[("billing", 5)], &["he"], T0);
    engine
        .set_presence(&agent_id("last"), Presence::Busy, T0)
        .expect("known");
    let returning = ContactRequest {
        preferred_agent: Some(agent_id("last")),
        ..call("c-1", "billing", "he")
    };
    let decision = engine.route(returning, at(0)).expect("routed");
    assert!(matches!(decision.target, Target::Queued { .. }));
}

#[test]
fn a_contact_whose_customer_left_is_withdrawn_from_its_queue_and_its_offer() {
    // Given two calls waiting in general, nobody staffed,
    let mut engine = engine();
    engine
        .route(call("gone", "support-x", "he"), at(0))
        .expect("routed");
    engine
        .route(call("stays", "support-x", "he"), at(1))
        .expect("routed");
    // when the first caller hangs up,
    let withdrawn = engine
        .withdraw(&contact_id("gone"), at(5))
        .expect("waiting");
    // then it no longer waits, and the next agent gets the other call.
    assert_eq!(
        withdrawn,
        Withdrawn::Waiting {
            queue: "general".into()
        }
    );
    let general = &engine.stats(at(5))[0];
    assert_eq!((general.queue.as_str(), general.waiting), ("general", 1));
    agent(&mut engine, "a-1", &[], &["he"], at(6));
    let offers = engine.dispatch(at(6));
    assert_eq!(offers.len(), 1);
    assert_eq!(offers[0].contact.as_str(), "stays");

    // Given a call offered to a-1 and another waiting behind it,
    engine
        .route(call("next", "support-x", "he"), at(7))
        .expect("routed");
    // when the offered caller hangs up,
    let withdrawn = engine
        .withdraw(&contact_id("stays"), at(8))
        .expect("offered");
    // then the offer is withdrawn and a-1 is offered the next call.
    assert!(matches!(&withdrawn, Withdrawn::Offered(o) if o.id == offers[0].id));
    assert_eq!(engine.offers().count(), 0);
    let offers = engine.dispatch(at(8));
    assert_eq!(offers.len(), 1);
    assert_eq!(offers[0].contact.as_str(), "next");
    assert!(
        engine
            .accept(withdrawn_offer(&withdrawn), &agent_id("a-1"), at(9))
            .is_err()
    );

    // An assigned contact stays the agent's; an unknown one is refused.
    engine
        .accept(offers[0].id, &agent_id("a-1"), at(9))
        .expect("accepted");
    assert!(matches!(
        engine.withdraw(&contact_id("next"), at(10)),
        Err(RoutingError::Assigned { .. })
    ));
    assert_eq!(
        engine.assigned_to(&contact_id("next")),
        Some(&agent_id("a-1"))
    );
    assert!(matches!(
        engine.withdraw(&contact_id("gone"), at(10)),
        Err(RoutingError::UnknownContact(_))
    ));
}

/// An agent's id, presence and contacts held (id, assigned).
type Board<'a> = (&'a str, Presence, Vec<(&'a str, bool)>);

#[test]
fn a_supervisor_sees_each_agent_s_presence_and_the_contacts_they_hold() {
    // Given a-1 on an accepted call (idle as long as a-2, first by id), a-2 with a call
    // offered, a-3 away,
    let mut engine = engine();
    agent(&mut engine, "a-2", &[], &["he"], T0);
    agent(&mut engine, "a-1", &[], &["he"], T0);
    agent(&mut engine, "a-3", &[], &["he"], T0);
    engine
        .set_presence(&agent_id("a-3"), Presence::Away, T0)
        .expect("known");
    let first = engine.route(call("c-1", "x", "he"), at(1)).expect("routed");
    let Target::Offered(first) = first.target else {
        panic!("offered");
    };
    engine
        .accept(first.id, &first.agent, at(2))
        .expect("accepted");
    engine.route(call("c-2", "x", "he"), at(3)).expect("routed");
    // when the supervisor looks,
    let agents = engine.agents();
    // then each agent shows, by id, with what they hold.
    let seen: Vec<Board> = agents
        .iter()
        .map(|a| {
            let holds = a
                .holds
                .iter()
                .map(|h| (h.contact.as_str(), h.assigned))
                .collect();
            (a.profile.id.as_str(), a.presence, holds)
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("a-1", Presence::Available, vec![("c-1", true)]),
            ("a-2", Presence::Available, vec![("c-2", false)]),
            ("a-3", Presence::Away, vec![]),
        ]
    );
    assert_eq!(agents[0].holds[0].queue, "general");
    assert_eq!(agents[0].holds[0].channel, Channel::Voice);
}

/// An engine where `holder` has accepted the support call `c-1`; `others` are free.
fn holding(holder: &str, others: &[(&str, &[(&str, u8)])]) -> Engine {
    let mut engine = engine();
    agent(&mut engine, holder, &[("billing", 5)], &["he"], T0);
    let decision = engine.route(call("c-1", "x", "he"), at(1)).expect("routed");
    let Target::Offered(offer) = decision.target else {
        panic!("offered to {holder}");
    };
    engine
        .accept(offer.id, &agent_id(holder), at(2))
        .expect("accepted");
    for (id, skills) in others {
        agent(&mut engine, id, skills, &["he"], at(3));
    }
    engine
}

#[test]
fn a_blind_transfer_to_a_queue_goes_to_its_agents_never_back_to_the_sender() {
    // Given a-1 (billing 5) on a call and b-1 (billing 4) free,
    let mut engine = holding("a-1", &[("b-1", &[("billing", 4)])]);
    // when a-1 transfers it to billing,
    let target = TransferTarget::Queue("billing".into());
    engine
        .transfer(&contact_id("c-1"), &agent_id("a-1"), target, at(10))
        .expect("transferred");
    // then b-1 is offered it, though a-1 is free and the better expert, and a-1 holds nothing.
    let offers = engine.dispatch(at(10));
    assert_eq!(offers.len(), 1);
    assert_eq!(
        (offers[0].agent.as_str(), offers[0].queue.as_str()),
        ("b-1", "billing")
    );
    engine
        .accept(offers[0].id, &agent_id("b-1"), at(11))
        .expect("accepted");
    assert_eq!(
        engine.assigned_to(&contact_id("c-1")),
        Some(&agent_id("b-1"))
    );
    let a1 = engine
        .agents()
        .into_iter()
        .find(|a| a.profile.id.as_str() == "a-1");
    assert!(a1.is_some_and(|a| a.holds.is_empty()));
}

#[test]
fn a_blind_transfer_to_an_agent_offers_it_to_them_and_a_decline_sends_it_to_the_queue() {
    let mut engine = holding("a-1", &[("b-1", &[])]);
    let target = TransferTarget::Agent {
        agent: agent_id("b-1"),
        warm: false,
    };
    engine
        .transfer(&contact_id("c-1"), &agent_id("a-1"), target, at(10))
        .expect("transferred");
    let offers = engine.dispatch(at(10));
    assert_eq!(offers[0].agent.as_str(), "b-1");
    assert_eq!(engine.assigned_to(&contact_id("c-1")), None);
    // b-1 declines: it waits in its queue, and is not offered back to a-1.
    engine
        .decline(offers[0].id, &agent_id("b-1"))
        .expect("declined");
    assert!(engine.dispatch(at(11)).is_empty());
    assert_eq!(engine.stats(at(11))[0].waiting, 1);
}

#[test]
fn a_warm_transfer_keeps_the_contact_with_its_agent_until_the_other_accepts() {
    // Given a-1 on a call and b-1 free,
    let mut engine = holding("a-1", &[("b-1", &[])]);
    let warm = |agent: &str| TransferTarget::Agent {
        agent: agent_id(agent),
        warm: true,
    };
    // when a-1 transfers it warm to b-1,
    engine
        .transfer(&contact_id("c-1"), &agent_id("a-1"), warm("b-1"), at(10))
        .expect("transferred");
    let offers = engine.dispatch(at(10));
    // then b-1 is offered it while a-1 still holds it, and a-1 cannot complete it meanwhile;
    assert_eq!(offers[0].agent.as_str(), "b-1");
    assert_eq!(
        engine.assigned_to(&contact_id("c-1")),
        Some(&agent_id("a-1"))
    );
    assert_eq!(
        engine.complete(&contact_id("c-1"), at(11)),
        Err(RoutingError::TransferPending(contact_id("c-1")))
    );
    // a declined warm transfer leaves it with a-1,
    engine
        .decline(offers[0].id, &agent_id("b-1"))
        .expect("declined");
    assert_eq!(
        engine.assigned_to(&contact_id("c-1")),
        Some(&agent_id("a-1"))
    );
    assert!(engine.dispatch(at(12)).is_empty());
    // and an accepted one moves it to b-1, a-1's capacity free again.
    engine
        .transfer(&contact_id("c-1"), &agent_id("a-1"), warm("b-1"), at(13))
        .expect("transferred");
    let offers = engine.dispatch(at(13));
    engine
        .accept(offers[0].id, &agent_id("b-1"), at(14))
        .expect("accepted");
    assert_eq!(
        engine.assigned_to(&contact_id("c-1")),
        Some(&agent_id("b-1"))
    );
    engine
        .route(call("c-2", "x", "he"), at(15))
        .expect("routed");
    let offers = engine.dispatch(at(15));
    assert_eq!(offers.len(), 0, "the decision offered it already");
    assert_eq!(
        engine.offers().next().map(|o| o.agent.as_str()),
        Some("a-1")
    );
}

#[test]
fn a_warm_transfer_of_a_call_that_ended_is_withdrawn_and_the_call_stays() {
    let mut engine = holding("a-1", &[("b-1", &[])]);
    let warm = TransferTarget::Agent {
        agent: agent_id("b-1"),
        warm: true,
    };
    let offer = engine
        .transfer(&contact_id("c-1"), &agent_id("a-1"), warm, at(10))
        .expect("transferred")
        .expect("a warm offer");
    let cancelled = engine.cancel_transfer(&contact_id("c-1")).expect("pending");
    assert_eq!(cancelled.id, offer);
    assert_eq!(engine.offers().count(), 0);
    assert_eq!(
        engine.assigned_to(&contact_id("c-1")),
        Some(&agent_id("a-1"))
    );
    assert_eq!(engine.cancel_transfer(&contact_id("c-1")), None);
    engine
        .complete(&contact_id("c-1"), at(11))
        .expect("completed");
}

#[test]
fn an_agent_consults_another_while_holding_the_customer_then_hands_the_call_over() {
    // Given a-1 on a call and b-1 free,
    let mut engine = holding("a-1", &[("b-1", &[])]);
    let (c1, a1, b1) = (contact_id("c-1"), agent_id("a-1"), agent_id("b-1"));
    // when a-1 asks b-1 to consult and b-1 accepts,
    let offer = engine.consult(&c1, &a1, &b1, at(10)).expect("asked");
    assert_eq!(engine.dispatch(at(10))[0].id, offer);
    engine.accept(offer, &b1, at(11)).expect("accepted");
    // then a-1 keeps the customer, b-1 is with them (their line busy), nobody can complete it;
    assert_eq!(engine.assigned_to(&c1), Some(&a1));
    assert_eq!(engine.consulting(&c1), Some(&b1));
    engine
        .route(call("c-2", "x", "he"), at(12))
        .expect("routed");
    assert!(engine.dispatch(at(12)).is_empty(), "b-1's line is taken");
    assert_eq!(
        engine.complete(&c1, at(12)),
        Err(RoutingError::TransferPending(c1.clone()))
    );
    // ending the consult frees b-1, who gets the waiting call;
    assert_eq!(engine.end_consult(&c1, &a1, at(13)), Ok(b1.clone()));
    assert_eq!(engine.consulting(&c1), None);
    let offers = engine.dispatch(at(13));
    assert_eq!(
        (offers[0].agent.as_str(), offers[0].contact.as_str()),
        ("b-1", "c-2")
    );
    engine.decline(offers[0].id, &b1).expect("declined");

    // and a consult that turns into a transfer hands the call to b-1 at once.
    let offer = engine.consult(&c1, &a1, &b1, at(20)).expect("asked");
    engine.dispatch(at(20));
    engine.accept(offer, &b1, at(21)).expect("accepted");
    let to_b1 = TransferTarget::Agent {
        agent: b1.clone(),
        warm: true,
    };
    assert_eq!(engine.transfer(&c1, &a1, to_b1, at(22)), Ok(None));
    assert_eq!(engine.assigned_to(&c1), Some(&b1));
    assert_eq!(engine.consulting(&c1), None);
    assert_eq!(
        engine
            .dispatch(at(22))
            .first()
            .map(|o| (o.agent.as_str(), o.contact.as_str())),
        Some(("a-1", "c-2")),
        "a-1 is free for the waiting call"
    );
}

#[test]
fn a_consult_ends_when_the_agent_consulted_leaves_and_only_its_agents_end_it() {
    let mut engine = holding("a-1", &[("b-1", &[]), ("c-9", &[])]);
    let (c1, a1, b1) = (contact_id("c-1"), agent_id("a-1"), agent_id("b-1"));
    let offer = engine.consult(&c1, &a1, &b1, at(10)).expect("asked");
    engine.dispatch(at(10));
    engine.accept(offer, &b1, at(11)).expect("accepted");
    assert_eq!(
        engine.end_consult(&c1, &agent_id("c-9"), at(12)),
        Err(RoutingError::NoConsult(c1.clone()))
    );
    engine.disconnect(&b1, at(12)).expect("known");
    assert_eq!(engine.consulting(&c1), None);
    assert_eq!(engine.assigned_to(&c1), Some(&a1));
    engine.complete(&c1, at(13)).expect("completed");
}

#[test]
fn a_transfer_is_refused_when_it_cannot_happen() {
    let mut engine = holding("a-1", &[("b-1", &[])]);
    let to = |agent: &str| TransferTarget::Agent {
        agent: agent_id(agent),
        warm: false,
    };
    let c1 = contact_id("c-1");
    let refused = |engine: &mut Engine, from: &str, target| {
        engine
            .transfer(&c1, &agent_id(from), target, at(10))
            .expect_err("refused")
    };
    assert!(matches!(
        refused(&mut engine, "b-1", to("a-1")),
        RoutingError::NotAssigned { .. }
    ));
    assert!(matches!(
        refused(&mut engine, "a-1", TransferTarget::Queue("nowhere".into())),
        RoutingError::UnknownQueue(_)
    ));
    assert!(matches!(
        refused(&mut engine, "a-1", to("a-1")),
        RoutingError::AgentUnavailable(_)
    ));
    engine
        .set_presence(&agent_id("b-1"), Presence::Away, at(10))
        .expect("known");
    assert!(matches!(
        refused(&mut engine, "a-1", to("b-1")),
        RoutingError::AgentUnavailable(_)
    ));
    assert!(matches!(
        refused(&mut engine, "a-1", to("nobody")),
        RoutingError::UnknownAgent(_)
    ));
    // Nothing changed: a-1 still holds it.
    assert_eq!(engine.assigned_to(&c1), Some(&agent_id("a-1")));
}

fn withdrawn_offer(withdrawn: &Withdrawn) -> rezef_routing::OfferId {
    match withdrawn {
        Withdrawn::Offered(offer) => offer.id,
        Withdrawn::Waiting { .. } => panic!("no offer"),
    }
}

#[test]
fn chat_starts_with_the_bot_and_a_human_comes_when_asked_or_after_failures() {
    let mut engine = engine();
    agent(&mut engine, "a-1", &[], &["he"], T0);
    let chat = |id: &str| ContactRequest {
        channel: Some(Channel::Webchat),
        ..call(id, "support", "he")
    };
    let decision = engine.route(chat("c-1"), at(0)).expect("routed");
    assert_eq!(
        decision.target,
        Target::Bot {
            bot_id: "helper-bot".into()
        }
    );
    let asked = ContactRequest {
        human_requested: true,
        ..chat("c-2")
    };
    assert_eq!(
        offered_to(&engine.route(asked, at(1)).expect("routed").target),
        Some("a-1")
    );
    let failed = ContactRequest {
        bot_failures: 2,
        ..chat("c-3")
    };
    assert!(!matches!(
        engine.route(failed, at(2)).expect("routed").target,
        Target::Bot { .. }
    ));
}

#[test]
fn an_unanswered_offer_moves_on_and_a_repeatedly_silent_agent_is_set_away() {
    let mut engine = engine();
    agent(&mut engine, "silent", &[], &["he"], T0);
    agent(&mut engine, "awake", &[], &["he"], at(5));
    let decision = engine
        .route(call("c-1", "other", "he"), at(10))
        .expect("routed");
    assert_eq!(
        offered_to(&decision.target),
        Some("silent"),
        "idle the longest"
    );
    assert_eq!(engine.next_deadline(at(10)), Some(at(30)));
    let expired = engine.expire_offers(at(30));
    assert_eq!(expired.len(), 1);
    assert_eq!(engine.dispatch(at(30))[0].agent.as_str(), "awake");

    engine
        .route(call("c-2", "other", "he"), at(31))
        .expect("routed");
    let offer = engine
        .offers()
        .find(|o| o.contact.as_str() == "c-2")
        .expect("offered")
        .clone();
    assert_eq!(offer.agent.as_str(), "silent");
    engine.expire_offers(at(51));
    assert_eq!(
        engine.presence(&agent_id("silent")),
        Some(Presence::Away),
        "two misses in a row"
    );
    let late = engine.accept(offer.id, &agent_id("silent"), at(52));
    assert!(late.is_err(), "an expired offer cannot be accepted");
}

#[test]
fn a_disconnected_agent_loses_their_offers_to_the_queue() {
    let mut engine = engine();
    agent(&mut engine, "a-1", &[], &["he"], T0);
    let decision = engine
        .route(call("c-1", "support", "he"), at(1))
        .expect("routed");
    assert!(offered_to(&decision.target).is_some());
    engine.disconnect(&agent_id("a-1"), at(2)).expect("known");
    assert_eq!(engine.offers().count(), 0);
    assert_eq!(
        engine
            .waiting()
            .map(|(c, _)| c.as_str())
            .collect::<Vec<_>>(),
        ["c-1"]
    );
    agent(&mut engine, "a-2", &[], &["he"], at(3));
    assert_eq!(engine.dispatch(at(3))[0].agent.as_str(), "a-2");
}

#[test]
fn capacity_per_channel_and_load_limit_hold() {
    let mut engine = engine();
    agent(&mut engine, "a-1", &[], &["he"], T0);
    let first = engine
        .route(call("v-1", "support", "he"), at(1))
        .expect("routed");
    let Target::Offered(offer) = first.target else {
        panic!("offered");
    };
    engine
        .accept(offer.id, &agent_id("a-1"), at(2))
        .expect("accepted");
    let second = engine
        .route(call("v-2", "support", "he"), at(3))
        .expect("routed");
    assert!(
        matches!(second.target, Target::Queued { .. }),
        "one call at a time"
    );
    for n in 0..3 {
        let chat = ContactRequest {
            channel: Some(Channel::Webchat),
            human_requested: true,
            ..call(&format!("chat-{n}"), "support", "he")
        };
        let decision = engine.route(chat, at(4 + n)).expect("routed");
        assert_eq!(
            offered_to(&decision.target).is_some(),
            n < 2,
            "load limit of 3, chat {n}"
        );
    }
    engine.complete(&contact_id("v-1"), at(10)).expect("done");
    let offers = engine.dispatch(at(10));
    assert_eq!(offers.len(), 1, "the freed slot takes one contact");
}

#[test]
fn a_long_estimated_wait_offers_a_callback_that_keeps_the_original_arrival() {
    let mut engine = engine();
    agent(&mut engine, "expert", &[("billing", 5)], &["he"], T0);
    let first = engine
        .route(call("c-0", "billing", "he"), at(0))
        .expect("routed");
    let Target::Offered(offer) = first.target else {
        panic!("offered");
    };
    engine
        .accept(offer.id, &agent_id("expert"), at(1))
        .expect("accepted");
    for n in 1..=2 {
        let decision = engine
            .route(call(&format!("c-{n}"), "billing", "he"), at(2))
            .expect("routed");
        let Target::Queued {
            position,
            estimated_wait,
            offer_callback,
        } = decision.target
        else {
            panic!("queued");
        };
        assert_eq!(position, n - 1);
        // Five minutes a call (no history yet) per contact ahead, one agent.
        assert_eq!(estimated_wait, Some(Duration::from_secs(300 * n as u64)));
        assert_eq!(offer_callback, n > 2, "above ten minutes only");
    }
    let third = engine
        .route(call("c-3", "billing", "he"), at(2))
        .expect("routed");
    assert!(matches!(
        third.target,
        Target::Queued {
            offer_callback: true,
            ..
        }
    ));

    // The callback comes back later with its original arrival: it is not a newcomer.
    engine
        .complete(&contact_id("c-3"), at(3))
        .expect("left the queue for a callback");
    let callback = ContactRequest {
        id: Some(contact_id("cb-3")),
        arrived_at: Some(at(2)),
        ..call("cb-3", "billing", "he")
    };
    let decision = engine.route(callback, at(600)).expect("routed");
    assert!(
        decision.priority >= 9.9,
        "ten minutes of ageing kept: {}",
        decision.priority
    );
}

#[test]
fn each_strategy_picks_its_agent() {
    let mut engine = engine();
    agent(&mut engine, "s-2", &[("sales", 2)], &["he"], at(0));
    agent(&mut engine, "s-5", &[("sales", 5)], &["he"], at(1));
    let decision = engine
        .route(call("c-1", "sales", "he"), at(2))
        .expect("routed");
    assert_eq!(
        offered_to(&decision.target),
        Some("s-5"),
        "highest proficiency"
    );
    assert_eq!(
        decision
            .candidates
            .iter()
            .map(AgentId::as_str)
            .collect::<Vec<_>>(),
        ["s-5", "s-2"]
    );

    let mut engine = self::engine();
    for name in ["r-1", "r-2", "r-3"] {
        agent(&mut engine, name, &[], &["he"], T0);
    }
    let mut picked = Vec::new();
    for n in 0..4 {
        let decision = engine
            .route(call(&format!("c-{n}"), "support", "he"), at(n + 1))
            .expect("routed");
        let Target::Offered(offer) = decision.target else {
            panic!("offered");
        };
        picked.push(offer.agent.to_string());
        engine
            .accept(offer.id, &offer.agent, at(n + 1))
            .expect("accepted");
        engine.complete(&offer.contact, at(n + 1)).expect("done");
    }
    assert_eq!(picked, ["r-1", "r-2", "r-3", "r-1"], "in turn");
}

#[test]
fn queue_stats_count_waiting_and_available() {
    let mut engine = engine();
    agent(&mut engine, "a-1", &[], &["he"], T0);
    engine
        .route(call("c-1", "billing", "he"), at(0))
        .expect("routed");
    let stats = engine.stats(at(45));
    let billing = stats
        .iter()
        .find(|s| s.queue == "billing")
        .expect("billing");
    assert_eq!(
        (billing.waiting, billing.longest_wait),
        (1, Duration::from_secs(45))
    );
    assert_eq!(
        billing.available.get(&Channel::Voice),
        None,
        "a-1 has no billing skill, so is not staffed for billing"
    );
    let general = stats
        .iter()
        .find(|s| s.queue == "general")
        .expect("general");
    assert_eq!(general.available.get(&Channel::Voice), Some(&1));
}

/// A billing callback the customer asked for at `due`, first arrived at `arrived`.
fn scheduled(id: &str, arrived: Timestamp, due: Timestamp) -> ContactRequest {
    ContactRequest {
        arrived_at: Some(arrived),
        not_before: Some(due),
        ..call(id, "billing", "he")
    }
}

#[test]
fn a_scheduled_callback_is_offered_at_its_time_not_a_second_before() {
    // Given an agent who may take billing, available all along
    let mut engine = engine();
    agent(&mut engine, "b-5", &[("billing", 5)], &["he"], T0);

    // When a callback first arrived at 2 s is scheduled for 600 s
    let decision = engine
        .route(scheduled("cb-1", at(2), at(600)), at(10))
        .expect("routed");

    // Then it is held: not offered, not suggested a callback, not waiting, but scheduled
    assert!(
        matches!(
            decision.target,
            Target::Queued {
                offer_callback: false,
                ..
            }
        ),
        "{decision:?}"
    );
    assert!(decision.candidates.is_empty(), "{decision:?}");
    assert_eq!(engine.next_deadline(at(10)), Some(at(600)));
    assert!(engine.dispatch(at(599)).is_empty(), "not at T - 1 s");
    let stats = engine.stats(at(599));
    let billing = stats
        .iter()
        .find(|s| s.queue == "billing")
        .expect("billing");
    assert_eq!(
        (billing.waiting, billing.scheduled, billing.longest_wait),
        (0, 1, Duration::ZERO)
    );

    // And at its time it is offered to the agent
    let offers = engine.dispatch(at(600));
    assert_eq!(offers.len(), 1, "{offers:?}");
    assert_eq!(
        (offers[0].contact.as_str(), offers[0].agent.as_str()),
        ("cb-1", "b-5")
    );
    let stats = engine.stats(at(600));
    let billing = stats
        .iter()
        .find(|s| s.queue == "billing")
        .expect("billing");
    assert_eq!((billing.waiting, billing.scheduled), (0, 0));

    // And its wait counts from its original arrival
    engine
        .accept(offers[0].id, &offers[0].agent, at(600))
        .expect("accepted");
    let stats = engine.stats(at(600));
    let billing = stats
        .iter()
        .find(|s| s.queue == "billing")
        .expect("billing");
    assert_eq!(billing.average_wait, Some(Duration::from_secs(598)));
}

#[test]
fn a_due_callback_waits_in_line_with_its_original_arrival() {
    // Given a callback scheduled for 600 s that first arrived at 0 s, and nobody to take it
    let mut engine = engine();
    engine
        .route(scheduled("cb-1", at(0), at(600)), at(1))
        .expect("routed");
    // And a contact arriving at 300 s, now waiting
    engine
        .route(call("c-2", "billing", "he"), at(300))
        .expect("routed");
    let stats = engine.stats(at(599));
    let billing = stats
        .iter()
        .find(|s| s.queue == "billing")
        .expect("billing");
    assert_eq!((billing.waiting, billing.scheduled), (1, 1));

    // When its time comes
    assert!(engine.dispatch(at(600)).is_empty(), "nobody to take it");

    // Then it waits, counted from its original arrival, and goes first
    let stats = engine.stats(at(600));
    let billing = stats
        .iter()
        .find(|s| s.queue == "billing")
        .expect("billing");
    assert_eq!(
        (billing.waiting, billing.scheduled, billing.longest_wait),
        (2, 0, Duration::from_secs(600))
    );
    agent(&mut engine, "b-5", &[("billing", 5)], &["he"], at(601));
    let offers = engine.dispatch(at(601));
    assert_eq!(
        offers
            .iter()
            .map(|o| o.contact.as_str())
            .collect::<Vec<_>>(),
        ["cb-1"],
        "the longer wait first"
    );
}

#[test]
fn a_scheduled_callback_starts_its_escalation_steps_at_its_time() {
    // Given only an agent of the second billing step (from 30 s in the queue)
    let mut engine = engine();
    agent(&mut engine, "b-2", &[("billing", 2)], &["he"], T0);
    // When a callback is scheduled for 600 s, routed at 0 s
    engine
        .route(scheduled("cb-1", at(0), at(600)), at(0))
        .expect("routed");
    // Then it is not offered at its time (first step), nor until 30 s after it
    assert!(engine.dispatch(at(600)).is_empty());
    assert_eq!(engine.next_deadline(at(600)), Some(at(630)));
    assert!(engine.dispatch(at(629)).is_empty());
    let offers = engine.dispatch(at(630));
    assert_eq!(
        offers.iter().map(|o| o.agent.as_str()).collect::<Vec<_>>(),
        ["b-2"]
    );
}

#[test]
fn a_callback_due_already_or_withdrawn_while_held() {
    // Given an agent who may take billing
    let mut engine = engine();
    agent(&mut engine, "b-5", &[("billing", 5)], &["he"], T0);
    // When a callback's time has come already, it is offered at once
    let decision = engine
        .route(scheduled("cb-1", at(0), at(5)), at(10))
        .expect("routed");
    assert_eq!(offered_to(&decision.target), Some("b-5"));

    // When a held callback is withdrawn (the customer called in meanwhile)
    engine
        .route(scheduled("cb-2", at(0), at(600)), at(10))
        .expect("routed");
    assert_eq!(
        engine.withdraw(&contact_id("cb-2"), at(20)),
        Ok(Withdrawn::Waiting {
            queue: "billing".into()
        })
    );
    // Then nothing is held for it any more
    let offer_expiry = engine.offers().map(|o| o.expires_at).min();
    assert_eq!(engine.next_deadline(at(20)), offer_expiry);
    assert!(
        engine
            .dispatch(at(600))
            .iter()
            .all(|o| o.contact.as_str() != "cb-2")
    );
    let stats = engine.stats(at(600));
    let billing = stats
        .iter()
        .find(|s| s.queue == "billing")
        .expect("billing");
    assert_eq!((billing.waiting, billing.scheduled), (0, 0));
}

#[test]
fn an_offer_withdrawn_before_it_was_taken_keeps_the_agent_s_idle_time() {
    // Given r-1 idle since T0 and r-2 since 1 s later, for general (longest idle first),
    let mut engine = engine();
    agent(&mut engine, "r-1", &[], &["he"], T0);
    agent(&mut engine, "r-2", &[], &["he"], at(1));
    let first = engine.route(call("c-1", "x", "he"), at(2)).expect("routed");
    assert_eq!(offered_to(&first.target), Some("r-1"));
    // when the caller hangs up before r-1 answers,
    engine.withdraw(&contact_id("c-1"), at(3)).expect("offered");
    // then r-1, who did no work, has still waited longest and is offered the next call.
    let next = engine.route(call("c-2", "x", "he"), at(4)).expect("routed");
    assert_eq!(offered_to(&next.target), Some("r-1"));
}

#[test]
fn a_contact_transferred_blind_counts_only_its_new_wait_in_the_new_queue() {
    // Given c-1, which waited 1 s in general and was taken by a-1,
    let mut engine = holding("a-1", &[("b-1", &[("billing", 4)])]);
    assert_eq!(
        engine.stats(at(2))[0].average_wait,
        Some(Duration::from_secs(1))
    );
    // when a-1 transfers it to billing after 8 s of handling and b-1 takes it 1 s later,
    let target = TransferTarget::Queue("billing".into());
    engine
        .transfer(&contact_id("c-1"), &agent_id("a-1"), target, at(10))
        .expect("transferred");
    let offers = engine.dispatch(at(10));
    engine
        .accept(offers[0].id, &agent_id("b-1"), at(11))
        .expect("accepted");
    // then billing's average wait is that 1 s, not the 10 s since the customer arrived.
    let billing = engine.stats(at(11));
    let billing = billing
        .iter()
        .find(|q| q.queue == "billing")
        .expect("billing");
    assert_eq!(billing.average_wait, Some(Duration::from_secs(1)));
}
