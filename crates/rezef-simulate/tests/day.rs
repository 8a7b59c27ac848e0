//! A simulated day, read as the server and the measurement read it: every event valid, the
//! summary equal to the measurement's figures, a customer who came back on another channel
//! in one conversation, and the arrivals following the profile.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use rezef_measure::testing::Projection;
use rezef_measure::{Figures, MeasureConfig};
use rezef_proto::v1::{self, event::Payload};
use rezef_simulate::{Config, simulate};

/// 2026-12-07, a Monday, at midnight UTC.
fn monday() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_601_600)
}

#[test]
fn a_day_is_valid_and_measures_as_its_summary_says() {
    // Given a day of 3,000 new needs served by 25 agents
    let mut config = Config::new("acme", monday(), 3_000, 25);
    config.seed = 11;
    // When it is simulated and every event goes through the server's checks, the journey
    // fold and the measurement
    let day = simulate(&config).expect("a valid configuration");
    let mut projection = Projection::new(MeasureConfig::default());
    for event in &day.events {
        let checked = rezef_record::event_from_proto(event.clone())
            .unwrap_or_else(|violations| panic!("{event:?}: {violations:?}"));
        if checked.customer.is_some() {
            projection.feed(&checked);
        }
    }
    let mut figures = Figures::default();
    for record in &projection.records {
        figures.add(record);
    }
    // Then the measurement counts what the summary says
    let summary = &day.summary;
    assert_eq!(figures.contacts, summary.contacts);
    let abandons = |point| figures.abandons.get(&point).copied().unwrap_or(0);
    use rezef_events::event::AbandonPoint;
    assert_eq!(abandons(AbandonPoint::Ivr), summary.abandoned_ivr);
    assert_eq!(abandons(AbandonPoint::Bot), summary.abandoned_bot);
    assert_eq!(abandons(AbandonPoint::Queue), summary.abandoned_queue);
    assert_eq!(figures.callbacks_unreached, summary.callbacks_unreached);
    assert_eq!(figures.journey.in_target, summary.answered_in_target);
    assert_eq!(figures.surveys.csat_count, summary.surveys);
    // and the day has every kind of contact, in realistic proportions
    assert!(summary.contacts > 2_500, "{summary}");
    assert!(summary.abandoned_ivr > 0 && summary.abandoned_bot > 0 && summary.abandoned_queue > 0);
    assert!(
        summary.callbacks > 0 && summary.contained > 0 && summary.while_closed > 0,
        "{summary}"
    );
    assert!(summary.resolved > summary.wrap_ups / 2, "{summary}");
    assert!(figures.repeat_contacts > 0, "some resolved needs come back");
    assert!(figures.journey.counted > figures.classic.counted);

    // And every customer who came back on another channel has one conversation on both
    let crossed: Vec<_> = (projection.journeys.values())
        .filter(|journey| {
            let channels: std::collections::BTreeSet<_> = (journey.conversations.iter())
                .flat_map(|c| c.channels.iter())
                .collect();
            channels.len() > 1
        })
        .collect();
    assert_eq!(crossed.len() as u64, summary.cross_channel_customers);
    assert!(crossed.len() > 50, "{summary}");
    for journey in crossed {
        assert_eq!(journey.conversations.len(), 1, "{journey:?}");
    }
}

#[test]
fn arrivals_per_hour_follow_the_profile() {
    // Given a large day with no returns
    let mut config = Config::new("acme", monday(), 40_000, 400);
    (config.continuation, config.repeat) = (0.0, 0.0);
    // When it is simulated
    let day = simulate(&config).expect("valid");
    // Then the contacts started in each hour are within 5 standard deviations of the
    // hour's Poisson rate
    let mut by_hour: BTreeMap<i64, f64> = BTreeMap::new();
    let start = v1_seconds(monday());
    for event in &day.events {
        if let Some(Payload::InteractionStarted(_)) = event.payload {
            let at = event.occurred_at.expect("timed").seconds;
            *by_hour.entry((at - start) / 3600).or_default() += 1.0;
        }
    }
    let total: u32 = config.profile.iter().sum();
    for (hour, rate) in (0i64..).zip(config.profile) {
        let expected = 40_000.0 * f64::from(rate) / f64::from(total);
        let seen = by_hour.get(&hour).copied().unwrap_or(0.0);
        assert!(
            (seen - expected).abs() <= 5.0 * expected.sqrt().max(1.0),
            "hour {hour}: {seen} started, {expected:.0} expected"
        );
    }
}

#[test]
fn a_day_cut_at_until_has_nothing_after_it_and_is_the_full_day_s_beginning() {
    // Given the same day whole and cut at 11:00
    let config = Config::new("acme", monday(), 500, 10);
    let eleven = monday() + Duration::from_secs(11 * 3600);
    let cut = Config {
        until: Some(eleven),
        ..config.clone()
    };
    // When both are simulated
    let (whole, cut) = (
        simulate(&config).expect("valid"),
        simulate(&cut).expect("valid"),
    );
    // Then the cut day is the whole day's events before 11:00, ids included
    let before: Vec<&v1::Event> = (whole.events.iter())
        .filter(|e| e.occurred_at.expect("timed").seconds < v1_seconds(eleven))
        .collect();
    assert_eq!(cut.events.iter().collect::<Vec<_>>(), before);
    assert!(cut.summary.open > 0 || cut.summary.contacts < whole.summary.contacts);
}

fn v1_seconds(at: SystemTime) -> i64 {
    prost_types::Timestamp::from(at).seconds
}
