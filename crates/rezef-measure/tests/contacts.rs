//! One contact at a time, given its events through the real fold, then its measured
//! records: the cases the scripted day does not show.

mod common;

use std::time::Duration;

use rezef_events::event::{EndReason, HandoffReason, StepOutcome};
use rezef_events::{Channel, Payload, Timestamp};
use rezef_measure::hours::WeeklySchedule;
use rezef_measure::record::{
    ConversationRecord, Ending, InteractionRecord, Reason, Station, Verdict,
};
use rezef_measure::{MeasureConfig, Measured};

use common::*;

/// Monday 2026-12-07 08:00 UTC.
fn monday(secs: i64) -> Timestamp {
    Timestamp::from_unix_millis((1_796_630_400 + secs) * 1000)
}

fn measured(script: Script) -> Vec<Measured> {
    let config = MeasureConfig {
        default_hours: Some(WeeklySchedule::weekdays(0, &["08:00-18:00"]).expect("valid")),
        ..MeasureConfig::default()
    };
    let mut projection = Projection::new(config);
    for event in script.events() {
        projection.feed(&event);
    }
    projection.records
}

fn interactions(records: &[Measured]) -> Vec<&InteractionRecord> {
    (records.iter())
        .filter_map(|r| match r {
            Measured::Interaction(r) => Some(r),
            _ => None,
        })
        .collect()
}

fn conversations(records: &[Measured]) -> Vec<&ConversationRecord> {
    (records.iter())
        .filter_map(|r| match r {
            Measured::Conversation(r) => Some(r),
            _ => None,
        })
        .collect()
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn given_a_web_form_answered_by_message_then_first_response_and_no_service_level() {
    let mut s = Script::default();
    s.contact("c1", "form-1", Channel::WebForm, monday(3600))
        .at(0, started())
        .at(1800, agent_message("a1"))
        .at(3600, assigned("a1"))
        .at(3700, ended(EndReason::Completed));
    let records = measured(s);
    let [form] = interactions(&records)[..] else {
        panic!("one interaction record")
    };
    assert_eq!(
        form.stations.get(&Station::FirstResponse),
        Some(&secs(1800))
    );
    assert_eq!(form.stations.get(&Station::JourneyWait), None);
    assert_eq!(
        (form.classic, form.journey),
        (Verdict::Excluded, Verdict::Excluded)
    );
}

#[test]
fn given_a_callback_published_as_its_own_interaction_then_measured_from_the_original_arrival() {
    let mut s = Script::default();
    s.contact("c1", "cb-1", Channel::Callback, monday(3600))
        .at(0, started())
        .at(1, callback_arrived_at("billing", monday(3000)))
        .at(30, callback_completed(true, Some("a1")))
        .at(330, ended(EndReason::Completed));
    let records = measured(s);
    let [callback] = interactions(&records)[..] else {
        panic!("one interaction record")
    };
    assert_eq!(callback.arrived_at, monday(3000));
    assert_eq!(
        callback.stations.get(&Station::CallbackWait),
        Some(&secs(630))
    );
    assert_eq!(
        callback.stations.get(&Station::JourneyWait),
        Some(&secs(630))
    );
    assert_eq!(callback.stations.get(&Station::Talk), Some(&secs(300)));
    assert_eq!(
        (callback.classic, callback.journey, callback.reason),
        (
            Verdict::InTarget,
            Verdict::Missed,
            Some(Reason::CallbackRealWait)
        )
    );
}

#[test]
fn given_a_call_contained_in_the_ivr_while_closed_then_in_neither_figure() {
    let mut s = Script::default();
    s.contact("c1", "ivr-1", Channel::Ivr, monday(-3600))
        .at(0, started())
        .at(
            40,
            Payload::SelfServiceStepCompleted {
                step_id: "balance".into(),
                prompt: String::new(),
                customer_input: "1".into(),
                outcome: Some(StepOutcome::Contained),
            },
        )
        .at(45, ended(EndReason::Completed));
    let records = measured(s);
    let [call] = interactions(&records)[..] else {
        panic!("one interaction record")
    };
    assert_eq!(
        (call.classic, call.journey, call.reason),
        (Verdict::Excluded, Verdict::Excluded, None)
    );
    assert_eq!(call.stations.get(&Station::SelfService), Some(&secs(45)));
}

#[test]
fn given_a_bot_handing_off_then_bot_time_explains_the_difference() {
    let mut s = Script::default();
    s.contact("c1", "bot-1", Channel::Bot, monday(600))
        .at(0, started())
        .at(
            50,
            Payload::HandoffRequested {
                bot_id: "helper".into(),
                reason: HandoffReason::CustomerAsked,
                target_queue_id: "billing".into(),
                summary: String::new(),
            },
        )
        .at(60, queued("billing"))
        .at(70, assigned("a1"))
        .at(370, ended(EndReason::Completed))
        .at(380, ended(EndReason::Completed));
    let records = measured(s);
    let [chat] = interactions(&records)[..] else {
        panic!("one interaction record, however many ends are published")
    };
    assert_eq!(chat.stations.get(&Station::SelfService), Some(&secs(60)));
    assert_eq!(chat.stations.get(&Station::JourneyWait), Some(&secs(70)));
    assert_eq!(
        (chat.classic, chat.journey, chat.reason),
        (Verdict::InTarget, Verdict::Missed, Some(Reason::BotTime))
    );
    assert_eq!(chat.ending, Ending::Ended(Some(EndReason::Completed)));
}

#[test]
fn given_a_need_resolved_after_a_callback_then_the_conversation_keeps_its_real_wait() {
    let mut s = Script::default();
    s.contact("c1", "call-1", Channel::Voice, monday(600))
        .at(0, started())
        .at(1, intent("billing"))
        .at(2, queued("billing"))
        .at(60, callback_requested("billing"))
        .at(61, ended(EndReason::CustomerLeft))
        .at(900, callback_completed(true, Some("a1")))
        .at(1200, ended(EndReason::Completed))
        .at(1230, wrapped_up("a1", true));
    let records = measured(s);
    let [need] = conversations(&records)[..] else {
        panic!("one conversation record")
    };
    assert_eq!((need.contacts, need.callbacks), (1, 1));
    assert_eq!(need.callback_wait, secs(900));
    assert_eq!(need.first_answer, Some(secs(900)));
    assert_eq!(need.closed_at.since(need.opened_at), secs(1230));
}

#[test]
fn given_a_wrap_up_that_does_not_resolve_then_no_conversation_record() {
    let mut s = Script::default();
    s.contact("c1", "chat-1", Channel::Webchat, monday(600))
        .at(0, started())
        .at(5, assigned("a1"))
        .at(100, ended(EndReason::Completed))
        .at(110, wrapped_up("a1", false));
    let records = measured(s);
    assert!(conversations(&records).is_empty());
    let wrap_ups: Vec<_> = (records.iter())
        .filter_map(|r| match r {
            Measured::WrapUp(w) => Some(w.duration),
            _ => None,
        })
        .collect();
    assert_eq!(wrap_ups, [secs(10)]);
}
