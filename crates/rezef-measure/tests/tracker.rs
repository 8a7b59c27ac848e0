//! The customer tracker, given a customer's events through the real fold and measurer: the
//! stations of each contact from the journey, and a callback's original arrival from the
//! measurer (docs/measurement.md, "The customer tracker").

mod common;

use std::convert::Infallible;

use rezef_events::event::{AbandonPoint, EndReason};
use rezef_events::{Channel, CustomerId, InteractionId, TenantId, Timestamp};
use rezef_measure::record::Station;
use rezef_measure::tracker::{Tracker, track};
use rezef_measure::{MeasureConfig, Measurer};

use common::*;

/// Monday 2026-12-07 08:00 UTC.
fn monday(secs: i64) -> Timestamp {
    Timestamp::from_unix_millis((1_796_630_400 + secs) * 1000)
}

/// `c1`'s tracker once `script` is projected, with the callback arrivals its measurer kept.
fn tracked(script: Script) -> Tracker {
    let mut projection = Projection::new(MeasureConfig::default());
    for event in script.events() {
        projection.feed(&event);
    }
    let tenant = TenantId::new("acme").expect("valid");
    let journey = &projection.journeys[&CustomerId::new("c1").expect("valid")];
    let measurer: &Measurer = &projection.measurer;
    let arrival = |id: &InteractionId| Ok::<_, Infallible>(measurer.callback_arrival(&tenant, id));
    let Ok(Some(tracker)) = track(journey, arrival) else {
        panic!("an open conversation")
    };
    tracker
}

fn stations(tracker: &Tracker, contact: usize) -> Vec<(Station, Timestamp, Option<Timestamp>)> {
    (tracker.contacts[contact].visits.iter())
        .map(|v| (v.station, v.entered_at, v.until))
        .collect()
}

#[test]
fn given_a_call_waiting_for_its_callback_then_the_tracker_shows_its_arrival() {
    // Given a call queued at 5 s that asks for a callback at 30 s and hangs up at 35 s
    let mut s = Script::default();
    s.contact("c1", "call-1", Channel::Voice, monday(0))
        .at(0, started())
        .at(5, queued("billing"))
        .at(30, callback_requested("billing"))
        .at(35, ended(EndReason::Completed));

    // When it is tracked while the callback is owed
    let tracker = tracked(s);

    // Then the contact's arrival is the call's start, and it waits for the callback
    let [call] = tracker.contacts.as_slice() else {
        panic!("one contact: {tracker:?}")
    };
    assert_eq!(call.callback_arrival, Some(monday(0)));
    assert_eq!(
        stations(&tracker, 0),
        vec![
            (Station::Queue, monday(5), Some(monday(30))),
            (Station::CallbackWait, monday(30), Some(monday(35))),
        ]
    );
}

#[test]
fn given_a_callback_published_as_its_own_contact_then_the_original_arrival_is_shown_on_it() {
    // Given a call abandoned in the queue, then a callback of its own 10 minutes later that
    // keeps the call's arrival, answered at 30 s
    let mut s = Script::default();
    s.contact("c1", "call-1", Channel::Voice, monday(0))
        .at(0, started())
        .at(5, queued("billing"))
        .at(60, abandoned(AbandonPoint::Queue));
    s.contact("c1", "cb-1", Channel::Callback, monday(600))
        .at(0, started())
        .at(1, callback_arrived_at("billing", monday(0)))
        .at(30, callback_completed(true, Some("a1")))
        .at(330, ended(EndReason::Completed));

    // When the customer is tracked once the callback ended
    let tracker = tracked(s);

    // Then the callback shows the call's arrival, and the call that asked for none shows none
    let [call, callback] = tracker.contacts.as_slice() else {
        panic!("two contacts: {tracker:?}")
    };
    assert_eq!(call.callback_arrival, None);
    assert_eq!(callback.callback_arrival, Some(monday(0)));
    assert_eq!(callback.ended_at, Some(monday(930)));
}
