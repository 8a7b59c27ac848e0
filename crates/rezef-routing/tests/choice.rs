//! The choice among agents as a pure function, given/when/then: each reason an agent is
//! passed over, the order of the eligible, and the re-run of a recorded decision.

use std::collections::BTreeMap;

use rezef_events::event::Presence;
use rezef_events::explained::{AgentSeen, Explanation, Verdict};
use rezef_events::{AgentId, Timestamp};
use rezef_routing::choice::{self, Recorded, Situation};
use rezef_routing::config::AGENT_ATTRIBUTES;
use rezef_routing::expr::{Expr, Value};
use rezef_routing::{ContactRequest, Strategy};

fn id(name: &str) -> AgentId {
    AgentId::new(name.to_owned()).expect("a valid id")
}

/// An available agent with room, speaking Hebrew, billing at 3, idle since `idle` seconds.
fn agent(name: &str, idle: i64) -> AgentSeen {
    AgentSeen {
        agent_id: id(name),
        skills: BTreeMap::from([("billing".to_owned(), 3)]),
        languages: vec!["he".to_owned()],
        team: "core".to_owned(),
        site: "north".to_owned(),
        presence: Presence::Available,
        capacity: 1,
        max_load: 2,
        on_channel: 0,
        load: 0,
        idle_since: Timestamp::from_unix_millis(1_800_000_000_000 + idle * 1_000),
        declined: false,
        missed: false,
        verdict: Verdict::Held,
    }
}

fn contact() -> BTreeMap<String, Value> {
    ContactRequest {
        intent: Some("billing".to_owned()),
        language: Some("he-IL".to_owned()),
        ..ContactRequest::default()
    }
    .attributes(Timestamp::from_unix_millis(1_800_000_100_000))
}

/// The queue step and contact, as the tests vary them.
struct Given {
    strategy: Strategy,
    language: Option<&'static str>,
    preferred: Option<AgentId>,
    last_served: Option<AgentId>,
    held: bool,
}

impl Default for Given {
    /// A longest-idle queue requiring Hebrew.
    fn default() -> Self {
        Self {
            strategy: Strategy::LongestIdle,
            language: Some("he-IL"),
            preferred: None,
            last_served: None,
            held: false,
        }
    }
}

/// The verdicts for `agents` in the queue `given` requiring `requirements`.
fn decide(agents: &[AgentSeen], requirements: &[&str], given: Given) -> Vec<Verdict> {
    let parsed: Vec<Expr> = requirements
        .iter()
        .map(|r| Expr::parse(r, AGENT_ATTRIBUTES).expect("parses"))
        .collect();
    let parsed: Vec<&Expr> = parsed.iter().collect();
    let contact = contact();
    let situation = Situation {
        strategy: given.strategy,
        skill: Some("billing"),
        requirements: &parsed,
        contact: &contact,
        language: given.language,
        preferred: given.preferred.as_ref(),
        last_served: given.last_served.as_ref(),
        held: given.held,
    };
    let attributes: Vec<_> = agents.iter().map(choice::attributes).collect();
    let attributes: Vec<_> = attributes.iter().collect();
    choice::verdicts(&situation, agents, &attributes)
}

#[test]
fn an_agent_missing_a_requirement_is_unqualified_by_that_requirement() {
    // Given an agent without the sales skill and one who has it
    let mut seller = agent("seller", 0);
    seller.skills.insert("sales".to_owned(), 4);
    let agents = [agent("plain", 0), seller];
    // When the step requires billing, then sales
    let verdicts = decide(
        &agents,
        &["skills HAS 'billing'", "skills.sales >= 2"],
        Given::default(),
    );
    // Then the first is passed over for the requirement it misses
    assert_eq!(
        verdicts,
        [
            Verdict::Unqualified("skills.sales >= 2".to_owned()),
            Verdict::Ranked(0)
        ]
    );
}

#[test]
fn a_requirement_on_the_contact_is_judged_with_the_contact() {
    let mut other = agent("other", 0);
    other.skills = BTreeMap::from([("sales".to_owned(), 3)]);
    let verdicts = decide(
        &[agent("biller", 0), other],
        &["skills HAS contact.intent"],
        Given::default(),
    );
    assert_eq!(
        verdicts,
        [
            Verdict::Ranked(0),
            Verdict::Unqualified("skills HAS contact.intent".to_owned())
        ]
    );
}

#[test]
fn an_agent_not_speaking_the_language_is_passed_over_unless_the_step_dropped_it() {
    let mut english = agent("english", 0);
    english.languages = vec!["en".to_owned()];
    let agents = [english, agent("hebrew", 10)];
    assert_eq!(
        decide(&agents, &[], Given::default()),
        [Verdict::NoLanguage, Verdict::Ranked(0)]
    );
    let dropped = decide(
        &agents,
        &[],
        Given {
            language: None,
            ..Given::default()
        },
    );
    assert_eq!(dropped, [Verdict::Ranked(0), Verdict::Ranked(1)]);
}

#[test]
fn an_agent_not_available_or_without_room_is_passed_over() {
    let mut away = agent("away", 0);
    away.presence = Presence::Away;
    let mut full = agent("full", 0);
    full.on_channel = 1;
    let mut loaded = agent("loaded", 0);
    loaded.load = 2;
    let verdicts = decide(
        &[away, full, loaded, agent("free", 9)],
        &[],
        Given::default(),
    );
    assert_eq!(
        verdicts,
        [
            Verdict::Unavailable,
            Verdict::AtCapacity,
            Verdict::AtCapacity,
            Verdict::Ranked(0)
        ]
    );
}

#[test]
fn an_agent_who_declined_the_contact_is_not_offered_it_again() {
    let mut declined = agent("declined", 0);
    declined.declined = true;
    let verdicts = decide(&[declined, agent("other", 5)], &[], Given::default());
    assert_eq!(verdicts, [Verdict::Declined, Verdict::Ranked(0)]);
}

#[test]
fn while_affinity_holds_the_contact_waits_for_its_preferred_agent_alone() {
    // Given the preferred agent busy, another free
    let mut last = agent("last", 0);
    last.presence = Presence::Busy;
    let agents = [last.clone(), agent("other", 0)];
    let preferred = || Given {
        preferred: Some(id("last")),
        ..Given::default()
    };
    // Then the contact waits for them: nobody is ranked
    let verdicts = decide(&agents, &[], preferred());
    assert_eq!(verdicts, [Verdict::Unavailable, Verdict::WaitsForPreferred]);
    // And once they are away, affinity no longer holds: the other is ranked
    last.presence = Presence::Away;
    let verdicts = decide(&[last, agent("other", 0)], &[], preferred());
    assert_eq!(verdicts, [Verdict::Unavailable, Verdict::Ranked(0)]);
}

#[test]
fn a_preferred_agent_who_does_not_meet_the_step_holds_no_affinity() {
    let mut last = agent("last", 0);
    last.skills.clear();
    let preferred = Given {
        preferred: Some(id("last")),
        ..Given::default()
    };
    let verdicts = decide(
        &[last, agent("other", 0)],
        &["skills HAS 'billing'"],
        preferred,
    );
    assert_eq!(
        verdicts,
        [
            Verdict::Unqualified("skills HAS 'billing'".to_owned()),
            Verdict::Ranked(0)
        ]
    );
}

#[test]
fn a_callback_not_yet_due_is_offered_to_nobody() {
    let verdicts = decide(
        &[agent("a", 0)],
        &[],
        Given {
            held: true,
            ..Given::default()
        },
    );
    assert_eq!(verdicts, [Verdict::Held]);
}

#[test]
fn the_eligible_are_ranked_by_the_strategy_and_those_who_missed_it_come_last() {
    let mut expert = agent("expert", 30);
    expert.skills.insert("billing".to_owned(), 5);
    let mut busy = agent("busy", 0);
    busy.capacity = 2;
    busy.on_channel = 1;
    busy.load = 1;
    let mut missed = agent("missed", -100);
    missed.missed = true;
    let agents = [expert, busy, missed, agent("idle", 10)];
    let rank = |strategy| {
        let verdicts = decide(
            &agents,
            &[],
            Given {
                strategy,
                ..Given::default()
            },
        );
        verdicts
            .iter()
            .map(|v| match v {
                Verdict::Ranked(rank) => *rank,
                other => panic!("{other:?}"),
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(rank(Strategy::LongestIdle), [2, 0, 3, 1]);
    assert_eq!(rank(Strategy::LeastOccupied), [1, 2, 3, 0]);
    assert_eq!(rank(Strategy::HighestProficiency), [0, 1, 3, 2]);
    // Round robin goes on after the last served, by id: idle, then busy, expert
    let round_robin = Given {
        strategy: Strategy::RoundRobin,
        last_served: Some(id("expert")),
        ..Given::default()
    };
    let verdicts = decide(&agents, &[], round_robin);
    assert_eq!(
        verdicts,
        [
            Verdict::Ranked(2),
            Verdict::Ranked(1),
            Verdict::Ranked(3),
            Verdict::Ranked(0)
        ]
    );
}

#[test]
fn strategy_names_are_the_configuration_names() {
    for strategy in [
        Strategy::LongestIdle,
        Strategy::LeastOccupied,
        Strategy::HighestProficiency,
        Strategy::RoundRobin,
    ] {
        let parsed: BTreeMap<String, Strategy> =
            toml::from_str(&format!("s = '{}'", strategy.name())).expect("a configuration name");
        assert_eq!(parsed["s"], strategy);
        assert_eq!(Strategy::from_name(strategy.name()), Some(strategy));
    }
}

/// A recorded explanation of a choice between `first` (ranked 0) and `second` (1).
fn recorded() -> Explanation {
    let mut first = agent("first", 0);
    first.verdict = Verdict::Ranked(0);
    let mut second = agent("second", 10);
    second.verdict = Verdict::Ranked(1);
    Explanation {
        strategy: "longest_idle".to_owned(),
        requirements: vec!["skills HAS contact.intent".to_owned()],
        language: Some("he-IL".to_owned()),
        agents: vec![first, second],
        ..Explanation::default()
    }
}

#[test]
fn a_recorded_decision_run_again_reproduces_or_says_what_differs() {
    let contact = contact();
    let candidates = [id("first"), id("second")];
    let explanation = recorded();
    let check = |explanation: &Explanation, offered: Option<&AgentId>| {
        choice::rerun(&Recorded {
            explanation,
            contact: &contact,
            candidates: &candidates,
            offered,
        })
    };
    assert!(check(&explanation, Some(&id("first"))).is_empty());

    // The first taken by a contact ahead: the second is the choice
    let mut taken = explanation.clone();
    taken.taken_ahead = vec![id("first")];
    assert!(check(&taken, Some(&id("second"))).is_empty());
    assert_eq!(check(&taken, Some(&id("first"))).len(), 1);

    // A record edited afterwards (the first made away) no longer reproduces
    let mut edited = explanation.clone();
    edited.agents[0].presence = Presence::Away;
    let differences = check(&edited, Some(&id("first")));
    assert!(
        differences
            .iter()
            .any(|d| d.starts_with("first: recorded Ranked(0)")),
        "{differences:?}"
    );

    let mut unknown = explanation;
    unknown.strategy = "fastest".to_owned();
    assert_eq!(check(&unknown, None), ["strategy `fastest` is not known"]);
}
