//! The worked example of `docs/measurement.md`: a Monday of 20 contacts to the `billing`
//! queue (open 08:00–18:00 UTC, target 20 s, short abandons under 5 s, FCR window 7 days)
//! where IVR time, IVR and bot abandons, a 40-minute callback, an unreached callback and a
//! call while closed make the classic service level (11/13) look far better than the
//! journey-true one (6/19). Every figure is worked out by hand in the doc; here each is
//! asserted exactly.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use rezef_events::Channel;
use rezef_events::Timestamp;
use rezef_events::event::{AbandonPoint, EndReason};
use rezef_measure::hours::WeeklySchedule;
use rezef_measure::record::{Reason, Station};
use rezef_measure::{Figures, Grouping, MeasureConfig, Scorecard};

use common::*;

/// Monday 2026-12-07 08:00 UTC.
const MONDAY_0800: i64 = 1_796_630_400;
const DAY: i64 = 24 * 3600;

fn monday(secs: i64) -> Timestamp {
    Timestamp::from_unix_millis((MONDAY_0800 + secs) * 1000)
}

fn config() -> MeasureConfig {
    let hours = WeeklySchedule::weekdays(0, &["08:00-18:00"]).expect("valid");
    let mut config = MeasureConfig {
        short_abandon_seconds: 5,
        fcr_window_days: 7,
        default_hours: Some(hours.clone()),
        ..MeasureConfig::default()
    };
    config.business_hours.insert("billing".into(), hours);
    config.queue_target_seconds.insert("billing".into(), 20);
    config
}

/// An IVR call: menus for `ivr` s, queue for `wait` s, talk for `talk` s, wrap-up 30 s
/// later resolving the need.
fn answered_call(script: &mut Script, n: i64, ivr: i64, wait: i64, talk: i64) {
    let who = format!("c{n:02}");
    let answered = ivr + wait;
    script
        .contact(&who, &format!("{who}-1"), Channel::Ivr, monday(600 * n))
        .at(0, started())
        .at(1, intent("billing"))
        .at(ivr, queued("billing"))
        .at(answered, assigned("a1"))
        .at(answered + talk, ended(EndReason::Completed))
        .at(answered + talk + 30, wrapped_up("a1", true));
}

/// The Monday, contact by contact (`docs/measurement.md` has the table).
fn monday_script() -> Script {
    let mut s = Script::default();
    let billing = |s: &mut Script, n: i64, channel| {
        let who = format!("c{n:02}");
        s.contact(&who, &format!("{who}-1"), channel, monday(600 * n))
            .at(0, started())
            .at(1, intent("billing"))
            .at(5, queued("billing"));
    };
    // c01: rung for 2 s, 30 s on hold while the agent consults, a survey.
    s.contact("c01", "c01-1", Channel::Ivr, monday(600))
        .at(0, started())
        .at(1, intent("billing"))
        .at(5, queued("billing"))
        .at(13, offered("a1"))
        .at(15, assigned("a1"))
        .at(75, consult(true, "a1", "a2"))
        .at(105, consult(false, "a1", "a2"))
        .at(195, ended(EndReason::Completed))
        .at(225, wrapped_up("a1", true))
        .at(300, survey(5, 10, 2));
    // c02: transferred to a specialist after a minute, who answers in 5 s.
    s.contact("c02", "c02-1", Channel::Ivr, monday(1200))
        .at(0, started())
        .at(1, intent("billing"))
        .at(5, queued("billing"))
        .at(15, assigned("a2"))
        .at(75, transferred("a2", "a3"))
        .at(80, assigned("a3"))
        .at(140, ended(EndReason::Completed))
        .at(170, wrapped_up("a3", true))
        .at(200, survey(4, 8, 3));
    // c03..c06: 5 s of menus, 10 s in the queue. c07..c09: 45 s of menus. c10: 40 s queue.
    for n in 3..=6 {
        answered_call(&mut s, n, 5, 10, 120);
    }
    for n in 7..=9 {
        answered_call(&mut s, n, 45, 10, 120);
    }
    answered_call(&mut s, 10, 5, 40, 120);
    // c11..c13 give up in the IVR after a minute; c14 gives up on the bot after 90 s.
    for n in 11..=13 {
        let who = format!("c{n:02}");
        s.contact(&who, &format!("{who}-1"), Channel::Ivr, monday(600 * n))
            .at(0, started())
            .at(60, abandoned(AbandonPoint::Ivr));
    }
    s.contact("c14", "c14-1", Channel::Bot, monday(600 * 14))
        .at(0, started())
        .at(90, abandoned(AbandonPoint::Bot));
    // c15 hangs up after 3 s in the queue (a short abandon), c16 after 30 s.
    billing(&mut s, 15, Channel::Ivr);
    s.contact("c15", "c15-1", Channel::Ivr, monday(600 * 15))
        .at(8, abandoned(AbandonPoint::Queue));
    billing(&mut s, 16, Channel::Ivr);
    s.contact("c16", "c16-1", Channel::Ivr, monday(600 * 16))
        .at(35, abandoned(AbandonPoint::Queue));
    // c17 asks for a callback after 10 s in the queue; it comes 40 minutes after arrival.
    billing(&mut s, 17, Channel::Ivr);
    s.contact("c17", "c17-1", Channel::Ivr, monday(600 * 17))
        .at(15, callback_requested("billing"))
        .at(20, ended(EndReason::CustomerLeft))
        .at(2400, callback_completed(true, Some("a5")))
        .at(2700, ended(EndReason::Completed))
        .at(2730, wrapped_up("a5", true))
        .at(2800, survey(2, 3, 6));
    // c18 asks for a callback after 15 s; two hours later nobody answers it.
    billing(&mut s, 18, Channel::Ivr);
    s.contact("c18", "c18-1", Channel::Ivr, monday(600 * 18))
        .at(20, callback_requested("billing"))
        .at(25, ended(EndReason::CustomerLeft))
        .at(7200, callback_completed(false, None));
    // c19 calls at 07:30, hears that the centre is closed and hangs up.
    s.contact("c19", "c19-1", Channel::Ivr, monday(-1800))
        .at(0, started())
        .at(20, ended(EndReason::CustomerLeft));
    // c20 writes an email, answered by an agent two hours later.
    s.contact("c20", "c20-1", Channel::Email, monday(600 * 20))
        .at(0, started())
        .at(1, intent("refund"))
        .at(2, queued("email"))
        .at(7200, assigned("a9"))
        .at(7800, ended(EndReason::Completed))
        .at(7830, wrapped_up("a9", true));
    s
}

/// c03 calls again on Tuesday at 10:00 about the same intent.
fn tuesday_script() -> Script {
    let mut s = Script::default();
    s.contact("c03", "c03-2", Channel::Ivr, monday(DAY + 7200))
        .at(0, started())
        .at(1, intent("billing"))
        .at(5, queued("billing"))
        .at(15, assigned("a1"))
        .at(135, ended(EndReason::Completed));
    s
}

fn day_of(projection: &Projection, day: i64) -> Figures {
    let start = monday(day * DAY - 8 * 3600);
    let end = monday((day + 1) * DAY - 8 * 3600);
    let report = (projection.buckets)
        .report(start..end, Grouping::default())
        .expect("a valid range");
    assert!(report.len() <= 1);
    report.into_values().next().unwrap_or_default()
}

fn spread(figures: &Figures, station: Station) -> (u64, [u64; 4]) {
    let p = figures.percentiles(station).expect("recorded");
    let s = |d: Duration| d.as_secs();
    (p.count, [s(p.p50), s(p.p90), s(p.p99), s(p.max)])
}

#[test]
fn given_the_scripted_day_then_every_figure_is_as_worked_out_by_hand() {
    let mut projection = Projection::new(config());
    for event in monday_script().events() {
        projection.feed(&event);
    }

    // Service level: classic 11 / 13, journey-true 6 / 19.
    let day = day_of(&projection, 0);
    assert_eq!(day.contacts, 20);
    assert_eq!(
        (
            day.classic.in_target,
            day.classic.counted,
            day.classic.excluded
        ),
        (11, 13, 7)
    );
    assert_eq!(
        (
            day.journey.in_target,
            day.journey.counted,
            day.journey.excluded
        ),
        (6, 19, 1)
    );
    assert_eq!(day.classic.ratio(), Some(11.0 / 13.0));
    assert_eq!(day.journey.ratio(), Some(6.0 / 19.0));
    let reasons = BTreeMap::from([
        (Reason::CallbackRealWait, 1),
        (Reason::CallbackAbandon, 1),
        (Reason::IvrAbandon, 3),
        (Reason::BotAbandon, 1),
        (Reason::ClosedHours, 1),
        (Reason::ShortAbandonExcluded, 1),
        (Reason::IvrTime, 3),
    ]);
    assert_eq!(day.reasons, reasons);

    // Where they gave up.
    let abandons = BTreeMap::from([
        (AbandonPoint::Ivr, 3),
        (AbandonPoint::Bot, 1),
        (AbandonPoint::Queue, 2),
    ]);
    assert_eq!(day.abandons, abandons);
    assert_eq!(day.callbacks_unreached, 1);
    assert_eq!(day.abandon_rate(), Some(7.0 / 19.0));

    // Stations: (count, [p50, p90, p99, max]) in seconds.
    assert_eq!(spread(&day, Station::SelfService), (19, [5, 60, 90, 90]));
    assert_eq!(spread(&day, Station::Queue), (15, [10, 40, 7168, 7168]));
    assert_eq!(spread(&day, Station::Offer), (2, [2, 5, 5, 5]));
    assert_eq!(spread(&day, Station::Talk), (12, [120, 300, 600, 600]));
    assert_eq!(spread(&day, Station::Hold), (1, [30, 30, 30, 30]));
    assert_eq!(
        spread(&day, Station::CallbackWait),
        (2, [2400, 7200, 7200, 7200])
    );
    assert_eq!(
        spread(&day, Station::JourneyWait),
        (11, [15, 55, 2400, 2400])
    );
    assert_eq!(
        spread(&day, Station::FirstResponse),
        (1, [7200, 7200, 7200, 7200])
    );
    assert_eq!(spread(&day, Station::WrapUp), (12, [30, 30, 30, 30]));
    assert_eq!(
        spread(&day, Station::FirstAnswer),
        (12, [15, 2400, 7200, 7200])
    );
    assert_eq!(
        spread(&day, Station::Resolution),
        (12, [195, 2720, 7808, 7808])
    );

    // Resolution: 12 needs resolved at one contact each, one transfer; FCR pending.
    assert_eq!(
        (day.resolved, day.resolved_contacts, day.resolved_transfers),
        (12, 12, 1)
    );
    assert_eq!(day.transfers_per_resolved(), Some(1.0 / 12.0));
    assert_eq!((day.fcr_achieved, day.fcr_not_achieved), (0, 0));
    assert_eq!(day.fcr_pending(), 12);
    assert_eq!(day.fcr_rate(), None);
    assert_eq!(projection.measurer.pending_fcr(), 12);

    // Surveys: CSAT 5, 4, 2; NPS 10, 8, 3; effort 2, 3, 6.
    let surveys = day.surveys;
    assert_eq!(
        (surveys.csat_sum, surveys.csat_count, surveys.csat_satisfied),
        (11, 3, 2)
    );
    assert_eq!(
        (
            surveys.nps_promoters,
            surveys.nps_passives,
            surveys.nps_detractors
        ),
        (1, 1, 1)
    );
    assert_eq!(surveys.nps(), Some(0.0));
    assert_eq!(surveys.effort(), Some(11.0 / 3.0));
    assert_eq!(day.repeat_contacts, 0);
}

#[test]
fn given_the_day_when_one_customer_comes_back_and_the_window_passes_then_fcr_is_final() {
    let mut projection = Projection::new(config());
    for event in monday_script().events() {
        projection.feed(&event);
    }
    for event in tuesday_script().events() {
        projection.feed(&event);
    }
    // c03's resolution is decided at once: not resolved at first contact; 11 still pending.
    let day = day_of(&projection, 0);
    assert_eq!((day.fcr_achieved, day.fcr_not_achieved), (0, 1));
    assert_eq!(day.fcr_pending(), 11);
    let tuesday = day_of(&projection, 1);
    assert_eq!(tuesday.contacts, 1);
    assert_eq!(tuesday.repeat_contacts, 1);
    assert_eq!((tuesday.journey.in_target, tuesday.journey.counted), (1, 1));

    // At the end of c20's window (its resolution at 11:20 + 7830 s, plus 7 days) the
    // others' windows have passed and c20's has not; a day later none is pending.
    projection.advance(monday(7 * DAY + 600 * 20 + 7830));
    let day = day_of(&projection, 0);
    assert_eq!((day.fcr_achieved, day.fcr_pending()), (10, 1));
    projection.advance(monday(8 * DAY));
    let day = day_of(&projection, 0);
    assert_eq!((day.fcr_achieved, day.fcr_not_achieved), (11, 1));
    assert_eq!(day.fcr_pending(), 0);
    assert_eq!(day.fcr_rate(), Some(11.0 / 12.0));
    assert_eq!(projection.measurer.pending_fcr(), 0);
    assert_eq!(projection.measurer.tracked_interactions(), 0);

    let card = Scorecard::of(&day);
    assert_eq!(card.service_level.classic, Some(11.0 / 13.0));
    assert_eq!(card.service_level.journey_true, Some(6.0 / 19.0));
    let wait = card.service_level.journey_wait.expect("answered contacts");
    assert_eq!(wait.p90, Duration::from_secs(55));
    assert_eq!(card.resolution.fcr_rate, Some(11.0 / 12.0));
    assert_eq!(card.resolution.transfers_per_resolved, Some(1.0 / 12.0));
    assert_eq!(card.quality.csat, Some(11.0 / 3.0));
    assert_eq!(card.quality.abandon_rate, Some(7.0 / 19.0));
    assert_eq!(card.experience.nps, Some(0.0));
}

#[test]
fn given_the_day_grouped_by_queue_then_the_difference_sits_where_it_happened() {
    let mut projection = Projection::new(config());
    for event in monday_script().events() {
        projection.feed(&event);
    }
    let grouping = Grouping {
        queue: true,
        ..Grouping::default()
    };
    let report = (projection.buckets)
        .report(monday(-8 * 3600)..monday(16 * 3600), grouping)
        .expect("a valid range");
    let by_queue: BTreeMap<_, _> = (report.iter())
        .map(|(key, f)| {
            let sl = |s: rezef_measure::figures::ServiceLevel| (s.in_target, s.counted);
            (key.dims.queue.clone(), (sl(f.classic), sl(f.journey)))
        })
        .collect();
    // No queue: c11..c14 gave up before one, c19 came while closed; the classic figure
    // never saw them.
    assert_eq!(by_queue[&None], ((0, 0), (0, 5)));
    assert_eq!(by_queue[&Some("billing".into())], ((11, 13), (6, 14)));
    assert_eq!(by_queue[&Some("email".into())], ((0, 0), (0, 0)));
}
