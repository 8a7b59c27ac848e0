//! Properties of every simulated day, whatever its scale, roster, seed and cut-off: events
//! in time order and valid, every interaction started first and over once, no agent over
//! capacity, and the same configuration giving the same day.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use proptest::prelude::*;
use rezef_proto::v1::{Channel, event::Payload};
use rezef_simulate::{Config, Day, simulate};

fn day() -> impl Strategy<Value = Config> {
    (
        any::<u64>(),
        1u32..400,
        1u32..12,
        1u32..4,
        0.0..=1.0f64,
        proptest::option::of(0u64..24),
    )
        .prop_map(|(seed, contacts, agents, capacity, continuation, until)| {
            let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_601_600);
            let mut config = Config::new("acme", start, contacts, agents);
            config.seed = seed;
            config.agent_capacity = capacity;
            config.continuation = continuation;
            config.until = until.map(|hour| start + Duration::from_secs(hour * 3600));
            config
        })
}

/// Whether the event is the end of its interaction.
fn ends(payload: &Payload, callback_owed: bool) -> bool {
    match payload {
        Payload::ContactAbandoned(_) => true,
        Payload::CallbackCompleted(done) => !done.reached,
        Payload::InteractionEnded(_) => !callback_owed,
        _ => false,
    }
}

fn check_interactions(day: &Day) -> Result<(), TestCaseError> {
    #[derive(Default)]
    struct Seen {
        events: u32,
        callback_owed: bool,
        over: bool,
    }
    let mut seen: BTreeMap<&str, Seen> = BTreeMap::new();
    for event in day.events.iter().filter(|e| e.customer.is_some()) {
        let payload = event.payload.as_ref().expect("a payload");
        let it = seen.entry(&event.interaction_id).or_default();
        let first = it.events == 0;
        it.events += 1;
        prop_assert_eq!(
            first,
            matches!(payload, Payload::InteractionStarted(_)),
            "{} starts with its start",
            event.interaction_id
        );
        if it.over {
            prop_assert!(
                matches!(
                    payload,
                    Payload::WrapUpRecorded(_) | Payload::SurveyAnswered(_)
                ),
                "{} goes on after its end: {payload:?}",
                event.interaction_id
            );
        }
        match payload {
            Payload::CallbackRequested(_) => it.callback_owed = true,
            Payload::CallbackCompleted(_) => it.callback_owed = false,
            _ => {}
        }
        if ends(payload, it.callback_owed) {
            prop_assert!(!it.over, "{} ends twice", event.interaction_id);
            it.over = true;
        }
    }
    Ok(())
}

/// An agent's contacts at once, from the first event naming the agent on an interaction to
/// its wrap-up (or the callback that reached no one): a call counts the agent's whole
/// capacity.
fn check_capacity(day: &Day) -> Result<(), TestCaseError> {
    let capacity: BTreeMap<&str, u32> = (day.agents.iter())
        .map(|a| (a.id.as_str(), a.capacity))
        .collect();
    let mut load: BTreeMap<String, u32> = BTreeMap::new();
    let mut holding: BTreeMap<&str, (String, u32)> = BTreeMap::new();
    for event in &day.events {
        let payload = event.payload.as_ref().expect("a payload");
        let agent = match payload {
            Payload::ContactOffered(p) => &p.agent_id,
            Payload::ContactAssigned(p) => &p.agent_id,
            Payload::CallbackCompleted(p) => &p.agent_id,
            Payload::WrapUpRecorded(p) => &p.agent_id,
            _ => continue,
        };
        let cap = capacity[agent.as_str()];
        if !holding.contains_key(event.interaction_id.as_str()) {
            let cost = if event.channel == Channel::Voice as i32 {
                cap
            } else {
                1
            };
            let now = load.entry(agent.clone()).or_default();
            *now += cost;
            prop_assert!(*now <= cap, "{agent} holds {now} of {cap}");
            holding.insert(&event.interaction_id, (agent.clone(), cost));
        }
        let released = match payload {
            Payload::WrapUpRecorded(_) => true,
            Payload::CallbackCompleted(done) => !done.reached,
            _ => false,
        };
        if released {
            let (agent, cost) = holding.remove(event.interaction_id.as_str()).expect("held");
            *load.entry(agent).or_default() -= cost;
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn every_day_is_ordered_valid_and_keeps_its_agents_within_capacity(config in day()) {
        let day = simulate(&config).expect("a valid configuration");
        let times: Vec<_> = day.events.iter().map(|e| e.occurred_at.expect("timed")).collect();
        prop_assert!(times.windows(2).all(|w| (w[0].seconds, w[0].nanos) <= (w[1].seconds, w[1].nanos)));
        if let (Some(until), Some(last)) = (config.until, times.last()) {
            let until = prost_types::Timestamp::from(until);
            prop_assert!((last.seconds, last.nanos) < (until.seconds, until.nanos));
        }
        for event in &day.events {
            let checked = rezef_record::event_from_proto(event.clone());
            prop_assert!(checked.is_ok(), "{event:?}: {checked:?}");
        }
        check_interactions(&day)?;
        check_capacity(&day)?;
    }

    #[test]
    fn the_same_configuration_gives_the_same_day(config in day()) {
        let (first, again) = (simulate(&config).expect("valid"), simulate(&config).expect("valid"));
        prop_assert_eq!(&first.events, &again.events);
        prop_assert_eq!(first.summary, again.summary);
        let other = Config { seed: config.seed ^ 1, ..config };
        let other = simulate(&other).expect("valid");
        if first.events.len() > 20 {
            prop_assert_ne!(first.events, other.events);
        }
    }
}

#[test]
fn ids_are_unique_and_differ_from_another_day_s() {
    let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_601_600);
    let ids = |start| {
        let day = simulate(&Config::new("acme", start, 300, 5)).expect("valid");
        day.events
            .into_iter()
            .map(|e| e.event_id)
            .collect::<Vec<String>>()
    };
    let monday = ids(start);
    let unique: std::collections::BTreeSet<&String> = monday.iter().collect();
    assert_eq!(unique.len(), monday.len());
    let tuesday = ids(start + Duration::from_secs(86_400));
    assert!(tuesday.iter().all(|id| !unique.contains(id)));
}
