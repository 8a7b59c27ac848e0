//! Properties on random logs: the figures computed live, through checkpoints and restarts,
//! equal the figures of a rebuild from the log; replaying what was already measured adds
//! nothing; and buckets merged in any grouping and order give the same totals.

mod common;

use proptest::prelude::*;

use rezef_events::event::{AbandonPoint, EndReason, StepOutcome};
use rezef_events::fold::Applied;
use rezef_events::{Channel, Event, Journey, Payload, Timestamp};
use rezef_measure::hours::WeeklySchedule;
use rezef_measure::testing::customer_of;
use rezef_measure::{Buckets, Grouping, Interval, MeasureConfig, Measured};

use common::*;

const CHANNELS: [Channel; 4] = [Channel::Ivr, Channel::Email, Channel::Bot, Channel::Voice];
const START: i64 = 1_796_630_400; // a Monday, 08:00 UTC

fn config() -> MeasureConfig {
    let mut config = MeasureConfig {
        fcr_window_days: 1,
        default_hours: Some(WeeklySchedule::weekdays(60, &["08:00-18:00"]).expect("valid")),
        ..MeasureConfig::default()
    };
    config.queue_target_seconds.insert("q1".into(), 30);
    config
}

fn payload(kind: u8, flag: bool, pick: usize) -> Payload {
    let agent = if flag { "a1" } else { "a2" };
    match kind {
        0 => started(),
        1 => intent(if flag { "billing" } else { "moving" }),
        2 => queued(if flag { "q1" } else { "q2" }),
        3 => offered(agent),
        4 => assigned(agent),
        5 => transferred("a1", agent),
        6 => consult(flag, "a1", "a3"),
        7 => callback_requested("q1"),
        8 => callback_completed(flag, flag.then_some("a4")),
        9 => abandoned(
            [
                AbandonPoint::Ivr,
                AbandonPoint::Bot,
                AbandonPoint::Queue,
                AbandonPoint::Callback,
            ][pick],
        ),
        10 => ended(EndReason::Completed),
        11 => wrapped_up(agent, flag),
        12 => survey(if flag { 5 } else { 2 }, if flag { 9 } else { 4 }, 3),
        13 => agent_message(agent),
        _ => Payload::SelfServiceStepCompleted {
            step_id: "menu".into(),
            prompt: String::new(),
            customer_input: "1".into(),
            outcome: Some(if flag {
                StepOutcome::Contained
            } else {
                StepOutcome::Continued
            }),
        },
    }
}

/// A random log: a few customers, a few interactions each, any payload in any order,
/// seconds to days apart.
fn log() -> impl Strategy<Value = Vec<Event>> {
    log_with_jumps(2 * 24 * 3600)
}

/// A random log whose events are 0 to 30 minutes apart, and `jump` seconds once in 20.
fn log_with_jumps(jump: i64) -> impl Strategy<Value = Vec<Event>> {
    let step = (
        (0..4usize, 0..4usize),
        (0..15u8, any::<bool>(), 0..4usize),
        (0..1800i64, 0..20u8),
    );
    prop::collection::vec(step, 1..150).prop_map(move |steps| {
        let mut script = Script::default();
        let mut at = START;
        for ((customer, interaction), (kind, flag, pick), (gap, lucky)) in steps {
            at += gap + if lucky == 0 { jump } else { 0 };
            let who = format!("c{customer}");
            let id = format!("{who}-i{interaction}");
            let start = Timestamp::from_unix_millis(at * 1000);
            script
                .contact(&who, &id, CHANNELS[interaction], start)
                .at(0, payload(kind, flag, pick));
        }
        script.events()
    })
}

fn rebuild(events: &[Event]) -> Projection {
    let mut projection = Projection::new(config());
    for event in events {
        projection.feed(event);
    }
    projection
}

/// Through JSON, as a checkpoint would store it.
fn checkpoint<T: serde::Serialize + serde::de::DeserializeOwned>(value: &T) -> T {
    let json = serde_json::to_string(value).expect("serialises");
    serde_json::from_str(&json).expect("reads back")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn live_figures_through_checkpoints_equal_a_rebuild(
        // With week-long idle gaps too: conversations close as inactive, unresolved.
        events in prop_oneof![log(), log_with_jumps(8 * 24 * 3600)],
        every in 1..20usize,
    ) {
        let rebuilt = rebuild(&events);
        let mut live = Projection::new(config());
        for (n, event) in events.iter().enumerate() {
            live.feed(event);
            if n % every == 0 {
                // A restart from the checkpoint: state read back from its stored forms.
                live.measurer = checkpoint(&live.measurer);
                live.buckets = checkpoint(&live.buckets);
                for journey in live.journeys.values_mut() {
                    *journey = Journey::from_bytes(&journey.to_bytes()).expect("reads back");
                }
            }
        }
        prop_assert_eq!(&live.records, &rebuilt.records);
        prop_assert_eq!(&live.buckets, &rebuilt.buckets);
        prop_assert_eq!(&live.measurer, &rebuilt.measurer);
    }

    #[test]
    fn replaying_measured_offsets_adds_nothing(events in log()) {
        let mut projection = rebuild(&events);
        let config = projection.config.clone();
        let before = projection.measurer.clone();
        for (offset, event) in events.iter().enumerate() {
            let journey = &projection.journeys[&customer_of(event)];
            let again = projection
                .measurer
                .observe(&config, offset as u64, event, None, (journey, &Applied::default()));
            prop_assert!(again.is_empty());
        }
        prop_assert_eq!(projection.measurer, before);
    }

    #[test]
    fn buckets_merged_in_any_grouping_and_order_equal_one_set(
        events in log(),
        parts in prop::collection::vec(0..5usize, 150),
        order in Just((0..5usize).collect::<Vec<_>>()).prop_shuffle(),
    ) {
        let mut projection = rebuild(&events);
        projection.advance(Timestamp::from_unix_millis((START + 400 * 24 * 3600) * 1000));
        let records: &[Measured] = &projection.records;
        let mut split = vec![Buckets::default(); 5];
        for (n, record) in records.iter().enumerate() {
            split[parts[n % parts.len()]].add(record);
        }
        let mut merged = Buckets::default();
        for part in order {
            merged.merge(&split[part]);
        }
        prop_assert_eq!(&merged, &projection.buckets);
        prop_assert_eq!(merged.total(), projection.buckets.total());

        // Quarters rolled up into hours equal hours counted directly; a report by day over
        // everything equals the total.
        let mut hours = Buckets::new(Interval::Hour);
        hours.merge(&projection.buckets);
        let mut direct = Buckets::new(Interval::Hour);
        for record in records {
            direct.add(record);
        }
        prop_assert_eq!(&hours, &direct);
        let all = Timestamp::from_unix_millis(0)..Timestamp::MAX;
        let whole = projection.buckets.report(all, Grouping::default()).expect("valid");
        let total = whole.into_values().next().unwrap_or_default();
        prop_assert_eq!(total, projection.buckets.total());
        // Every resolution is decided once the windows passed.
        prop_assert_eq!(projection.buckets.total().fcr_pending(), 0);
        prop_assert_eq!(projection.measurer.pending_fcr(), 0);
    }
}

#[test]
fn given_a_measurer_when_nothing_happens_for_a_week_then_it_forgets_what_never_ended() {
    let mut script = Script::default();
    script
        .contact(
            "c1",
            "c1-i0",
            Channel::Ivr,
            Timestamp::from_unix_millis(START * 1000),
        )
        .at(0, started())
        .at(5, callback_requested("q1"))
        .at(6, agent_message("a1"));
    let mut projection = rebuild(&script.events());
    assert_eq!(projection.measurer.tracked_interactions(), 1);
    let later = START + rezef_measure::FORGET_AFTER.as_secs() as i64;
    projection.advance(Timestamp::from_unix_millis(later * 1000));
    assert_eq!(
        projection.measurer.tracked_interactions(),
        1,
        "a week is not past yet"
    );
    // Idle entries are looked for once an hour.
    projection.advance(Timestamp::from_unix_millis((later + 7) * 1000));
    assert_eq!(projection.measurer.tracked_interactions(), 1);
    projection.advance(Timestamp::from_unix_millis((later + 3600) * 1000));
    assert_eq!(projection.measurer.tracked_interactions(), 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    // Without jumps (150 events at most 30 minutes apart: never a week): an interaction
    // idle for a week is forgotten, and events about it after that are measured as if new.
    fn figures_are_consistent_and_each_interaction_is_measured_once(
        events in log_with_jumps(0),
    ) {
        let mut projection = rebuild(&events);
        projection.advance(Timestamp::from_unix_millis((START + 400 * 24 * 3600) * 1000));
        let total = projection.buckets.total();
        for sl in [total.classic, total.journey] {
            prop_assert_eq!(sl.counted + sl.excluded, total.contacts);
            prop_assert!(sl.in_target <= sl.counted);
        }
        prop_assert!(total.reasons.values().sum::<u64>() <= total.contacts);
        prop_assert_eq!(total.fcr_achieved + total.fcr_not_achieved, total.resolved);
        let mut measured: Vec<_> = (projection.records.iter())
            .filter_map(|r| match r {
                Measured::Interaction(r) => Some(r.interaction_id.clone()),
                _ => None,
            })
            .collect();
        let all = measured.len();
        measured.sort();
        measured.dedup();
        prop_assert_eq!(measured.len(), all, "an interaction measured twice");
        // And none that was abandoned is missed.
        for event in &events {
            if let (Payload::ContactAbandoned { .. }, Some(id)) = (&event.payload, &event.interaction_id) {
                prop_assert!(measured.binary_search(id).is_ok(), "{} abandoned, not measured", id);
            }
        }
    }
}
