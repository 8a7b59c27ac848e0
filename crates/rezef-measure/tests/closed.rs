//! Conversations that close as inactive, unresolved: the fold closes a conversation idle
//! for the inactivity timeout (7 days by default) when the customer's next event comes, and
//! the measurer records it unresolved at the moment the timeout passed, beside the
//! resolved ones, giving a resolution rate.

mod common;

use std::time::Duration;

use rezef_events::event::EndReason;
use rezef_events::{Channel, Timestamp};
use rezef_measure::record::ConversationRecord;
use rezef_measure::{MeasureConfig, Measured};

use common::*;

const DAY: i64 = 24 * 3600;
const WEEK: Duration = Duration::from_secs(7 * 24 * 3600);

/// Monday 2026-12-07 08:00 UTC.
fn monday(secs: i64) -> Timestamp {
    Timestamp::from_unix_millis((1_796_630_400 + secs) * 1000)
}

/// A call about `need` answered by agent a1 after 30 s, wrapped up at 330 s.
fn call(s: &mut Script, customer: &str, id: &str, start: Timestamp, need: &str, resolved: bool) {
    s.contact(customer, id, Channel::Voice, start)
        .at(0, started())
        .at(5, intent(need))
        .at(10, queued("billing"))
        .at(30, assigned("a1"))
        .at(300, ended(EndReason::Completed))
        .at(330, wrapped_up("a1", resolved));
}

fn measured(script: Script) -> Projection {
    let mut projection = Projection::new(MeasureConfig::default());
    for event in script.events() {
        projection.feed(&event);
    }
    projection
}

fn unresolved(records: &[Measured]) -> Vec<&ConversationRecord> {
    (records.iter())
        .filter_map(|r| match r {
            Measured::Unresolved(r) => Some(r),
            _ => None,
        })
        .collect()
}

#[test]
fn given_a_need_left_unresolved_when_the_customer_comes_back_a_week_later_then_unresolved() {
    let mut s = Script::default();
    call(&mut s, "c1", "call-1", monday(0), "billing.dispute", false);
    call(&mut s, "c2", "call-2", monday(600), "orders.late", true);
    s.contact("c1", "call-3", Channel::Voice, monday(8 * DAY))
        .at(0, started());
    let projection = measured(s);

    let [closed] = unresolved(&projection.records)[..] else {
        panic!("one unresolved: {:?}", projection.records)
    };
    assert_eq!(
        closed.closed_at,
        monday(330).plus(WEEK),
        "when the timeout passed"
    );
    assert_eq!(closed.opened_at, monday(0));
    assert_eq!(closed.first_answer, Some(Duration::from_secs(30)));
    assert_eq!((closed.contacts, closed.transfers), (1, 0));
    assert_eq!(closed.dims.queue.as_deref(), Some("billing"));
    assert_eq!(closed.dims.intent.as_deref(), Some("billing.dispute"));
    let total = projection.buckets.total();
    assert_eq!((total.resolved, total.unresolved), (1, 1));
    assert_eq!(total.resolution_rate(), Some(0.5));
}

#[test]
fn given_an_open_conversation_when_no_event_comes_then_nothing_is_closed_yet() {
    let mut s = Script::default();
    call(&mut s, "c1", "call-1", monday(0), "billing.dispute", false);
    // Another customer's event a month later does not close c1's conversation: the fold
    // closes it with c1's next event.
    call(
        &mut s,
        "c2",
        "call-2",
        monday(30 * DAY),
        "orders.late",
        true,
    );
    let projection = measured(s);
    assert!(unresolved(&projection.records).is_empty());
    assert_eq!(projection.buckets.total().resolution_rate(), Some(1.0));
}

#[test]
fn given_an_unresolved_need_reopened_and_resolved_then_each_closure_counts_once() {
    let mut s = Script::default();
    call(&mut s, "c1", "call-1", monday(0), "billing.dispute", false);
    // Back about the same need a day after it closed: the closed conversation reopens.
    call(
        &mut s,
        "c1",
        "call-2",
        monday(8 * DAY),
        "billing.dispute",
        true,
    );
    let projection = measured(s);

    assert_eq!(unresolved(&projection.records).len(), 1);
    let total = projection.buckets.total();
    assert_eq!((total.unresolved, total.resolved), (1, 1));
    assert_eq!((total.repeat_contacts, total.resolved_contacts), (1, 2));
}
