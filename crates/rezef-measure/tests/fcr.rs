//! When a customer's coming back decides a first-contact resolution: a contact is matched
//! when it starts and when its intent is detected, and a contact logged before the wrap-up
//! (a late event) though it started after the resolution is found in the journey when the
//! resolution is measured.

mod common;

use rezef_events::event::EndReason;
use rezef_events::{Channel, Event, Payload, Timestamp};
use rezef_measure::record::FcrDecision;
use rezef_measure::{MeasureConfig, Measured};

use common::*;

/// Monday 2026-12-07 08:00 UTC.
fn monday(secs: i64) -> Timestamp {
    Timestamp::from_unix_millis((1_796_630_400 + secs) * 1000)
}

/// c1's call about billing, answered and resolved at its wrap-up (330 s).
fn resolved_call(s: &mut Script) {
    s.contact("c1", "call-1", Channel::Voice, monday(0))
        .at(0, started())
        .at(5, intent("billing"))
        .at(10, queued("billing"))
        .at(30, assigned("a1"))
        .at(300, ended(EndReason::Completed))
        .at(330, wrapped_up("a1", true));
}

fn decisions(records: &[Measured]) -> Vec<&FcrDecision> {
    (records.iter())
        .filter_map(|r| match r {
            Measured::Fcr(d) => Some(d),
            _ => None,
        })
        .collect()
}

fn measured(events: &[Event]) -> Projection {
    let mut projection = Projection::new(MeasureConfig::default());
    for event in events {
        projection.feed(event);
    }
    projection
}

#[test]
fn given_a_resolution_when_the_customer_calls_again_and_the_intent_is_detected_last_then_not_achieved()
 {
    // Given c1's resolved call
    let mut s = Script::default();
    resolved_call(&mut s);
    // When c1 calls again an hour later and the IVR detects the same intent as its last event
    s.contact("c1", "call-2", Channel::Voice, monday(3600))
        .at(0, started())
        .at(40, intent("billing"));
    let projection = measured(&s.events());
    // Then the resolution is decided at that event: not resolved at first contact
    let decided = decisions(&projection.records);
    assert_eq!(decided.len(), 1);
    assert!(!decided[0].achieved);
    assert_eq!(decided[0].resolved_at, monday(330));
    assert_eq!(projection.measurer.pending_fcr(), 0);
}

#[test]
fn given_a_repeat_contact_logged_before_the_wrap_up_then_the_resolution_is_decided_at_once() {
    // Given c1's call, and a second call about the same need that started after the wrap-up's
    // time but reached the log before the wrap-up (the agent's desktop sent it late)
    let mut s = Script::default();
    resolved_call(&mut s);
    s.contact("c1", "call-2", Channel::Email, monday(400))
        .at(0, started())
        .at(2, intent("billing"));
    let mut events = s.events();
    let wrap_up = (events.iter())
        .position(|e| matches!(e.payload, Payload::WrapUpRecorded { .. }))
        .expect("a wrap-up");
    let late = events.remove(wrap_up);
    events.push(late);
    // When the wrap-up is measured, with no event after it
    let projection = measured(&events);
    // Then the journey already shows the customer came back: not resolved at first contact
    let decided = decisions(&projection.records);
    assert_eq!(decided.len(), 1);
    assert!(!decided[0].achieved);
    assert_eq!(projection.measurer.pending_fcr(), 0);
}

#[test]
fn given_a_resolution_when_the_customer_comes_back_about_another_need_then_still_pending() {
    // Given c1's resolved call
    let mut s = Script::default();
    resolved_call(&mut s);
    // When c1 comes back the next hour about moving house
    s.contact("c1", "call-2", Channel::Voice, monday(3600))
        .at(0, started())
        .at(20, intent("moving"))
        .at(60, ended(EndReason::Completed));
    let projection = measured(&s.events());
    // Then nothing is decided: the resolution waits for its window
    assert!(decisions(&projection.records).is_empty());
    assert_eq!(projection.measurer.pending_fcr(), 1);
}
