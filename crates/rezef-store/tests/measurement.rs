//! The measurement projection at the store: fed by the projector in the same step as the
//! fold and checkpointed with it, so the figures after a restart (clean, or a crash after a
//! checkpoint) and after a rebuild equal those of one uninterrupted run.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::{Fixture, project};
use rezef_events::event::{AbandonPoint, Direction, EndReason, SCHEMA_VERSION};
use rezef_events::{
    AgentId, Channel, CustomerId, CustomerRef, Event, EventId, InteractionId, Payload, TenantId,
    Timestamp,
};
use rezef_log::Log;
use rezef_measure::{BucketKey, Figures, Grouping, Interval};
use rezef_store::{CachedStore, JourneyStore, Projector, rebuild};

/// 09:00 UTC, 2026-12-01.
const DAY_START_SECS: i64 = 1_796_115_600;

fn at(secs: i64) -> Timestamp {
    Timestamp::from_unix_nanos((DAY_START_SECS + secs) * 1_000_000_000)
}

fn agent() -> AgentId {
    AgentId::new("agent-1").expect("valid")
}

/// One contact's events, `(seconds after its start, payload)`.
fn contact(tenant: &str, n: usize, start: i64, steps: Vec<(i64, Payload)>) -> Vec<Event> {
    (steps.into_iter())
        .map(|(secs, payload)| Event {
            event_id: EventId::new(format!("{tenant}-{n}-{secs}")).expect("valid"),
            tenant_id: TenantId::new(tenant).expect("valid"),
            occurred_at: at(start + secs),
            source: "script".into(),
            schema_version: SCHEMA_VERSION,
            customer: Some(CustomerRef::Id(
                CustomerId::new(format!("c-{}", n % 7)).expect("valid"),
            )),
            conversation_id: None,
            interaction_id: Some(InteractionId::new(format!("{tenant}-i-{n}")).expect("valid")),
            channel: Some(Channel::Voice),
            forward: None,
            payload,
        })
        .collect()
}

/// A day of calls in two tenants: answered fast or late, abandoned in the IVR or the
/// queue, wrapped up resolved or not, with surveys.
fn day() -> Vec<Event> {
    let started = || Payload::InteractionStarted {
        direction: Direction::Inbound,
        identity: None,
        entry_point: "main".into(),
        language: None,
        continuation_token: None,
    };
    let queued = |queue: &str| Payload::ContactQueued {
        queue_id: queue.into(),
        priority: 1,
        required_skills: Vec::new(),
        language: None,
    };
    let assigned = || Payload::ContactAssigned {
        agent_id: agent(),
        queue_id: String::new(),
    };
    let ended = || Payload::InteractionEnded {
        reason: Some(EndReason::Completed),
    };
    let mut events = Vec::new();
    for n in 0..60 {
        let tenant = if n % 5 == 0 { "beta" } else { "acme" };
        let start = n as i64 * 400;
        let queue = if n % 2 == 0 { "sales" } else { "billing" };
        let steps = match n % 4 {
            0 => vec![
                (0, started()),
                (10, queued(queue)),
                (25, assigned()),
                (200, ended()),
            ],
            1 => vec![
                (0, started()),
                (60, queued(queue)),
                (70, assigned()),
                (300, ended()),
            ],
            2 => vec![
                (0, started()),
                (
                    40,
                    Payload::ContactAbandoned {
                        point: AbandonPoint::Ivr,
                    },
                ),
            ],
            _ => vec![
                (0, started()),
                (5, queued(queue)),
                (
                    90,
                    Payload::ContactAbandoned {
                        point: AbandonPoint::Queue,
                    },
                ),
            ],
        };
        events.extend(contact(tenant, n, start, steps));
        if n % 4 < 2 {
            let resolved = Payload::WrapUpRecorded {
                agent_id: Some(agent()),
                disposition: "done".into(),
                need_resolved: n % 3 != 0,
                notes: String::new(),
            };
            let survey = Payload::SurveyAnswered {
                csat: Some(4 + (n % 2) as u32),
                nps: Some(8),
                effort: Some(2),
                comment: String::new(),
            };
            events.extend(contact(
                tenant,
                n,
                start,
                vec![(330, resolved), (360, survey)],
            ));
        }
    }
    events.sort_by_key(|e| e.occurred_at);
    events
}

/// Every figure a tenant has, by quarter, queue, channel and intent.
fn figures(store: &CachedStore, tenant: &str) -> BTreeMap<BucketKey, Figures> {
    let tenant = TenantId::new(tenant).expect("valid");
    let grouping = Grouping {
        interval: Some(Interval::Quarter),
        queue: true,
        channel: true,
        intent: true,
    };
    (store.report(&tenant, at(-86_400)..at(2 * 86_400), grouping)).expect("report")
}

fn total(figures: &BTreeMap<BucketKey, Figures>) -> Figures {
    let mut total = Figures::default();
    figures.values().for_each(|f| total.merge(f));
    total
}

#[tokio::test]
async fn figures_after_restarts_and_a_crash_equal_one_uninterrupted_run() {
    let fixture = Fixture::new();
    let events = day();
    fixture.publish(&events).await;
    let end = fixture.log.end_offset();

    let reference = fixture.store("reference");
    project(&fixture, &reference).await;
    let (acme, beta) = (figures(&reference, "acme"), figures(&reference, "beta"));
    assert_eq!(total(&acme).contacts, 48, "every acme contact measured");
    assert_eq!(total(&beta).contacts, 12, "beta's apart");
    assert!(total(&acme).journey.counted > total(&acme).classic.counted);

    // Stopped at uneven points, reopened from disk each time; at one of them folding went
    // on past the checkpoint and the store was dropped without one (a crash).
    let mut stop = 0;
    for (step, crash) in [(1, false), (17, true), (23, false), (5, true), (90, false)] {
        stop = (stop + step).min(end);
        let store = fixture.store("interrupted");
        let mut projector = Projector::new(fixture.log(), store.clone()).expect("projector");
        projector.catch_up(stop, |_| {}).await.expect("catch up");
        store.flush().expect("flush");
        if crash {
            let further = (stop + 11).min(end);
            projector.catch_up(further, |_| {}).await.expect("catch up");
        }
    }
    let resumed = fixture.store("interrupted");
    project(&fixture, &resumed).await;
    assert_eq!(figures(&resumed, "acme"), acme);
    assert_eq!(figures(&resumed, "beta"), beta);
    let stored = resumed.measurement().expect("measurement");
    assert_eq!(stored, reference.measurement().expect("measurement"));
}

#[tokio::test]
async fn a_rebuild_gives_the_figures_computed_live() {
    let fixture = Fixture::new();
    let events = day();
    let (first, rest) = events.split_at(events.len() / 2);
    let live = fixture.store("live");
    // Live: the projector follows the log as it grows, checkpointing as it goes.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let projector = Projector::new(fixture.log(), live.clone()).expect("projector");
    let watch = projector.watch();
    let running = tokio::spawn(projector.run(async {
        let _ = stopped.await;
    }));
    fixture.publish(first).await;
    fixture.publish(rest).await;
    assert!(watch.wait_past(fixture.log.end_offset() - 1).await);
    let _ = stop.send(());
    running.await.expect("joined").expect("projector");
    let (acme, beta) = (figures(&live, "acme"), figures(&live, "beta"));
    drop(live);

    let store = fixture.store("live");
    assert_eq!(figures(&store, "acme"), acme, "as checkpointed");
    let stats = rebuild(
        fixture.log(),
        store.clone(),
        Arc::default(),
        None,
        1000,
        |_| {},
    )
    .await
    .expect("rebuild");
    assert_eq!(stats.applied, events.len() as u64);
    assert_eq!(figures(&store, "acme"), acme);
    assert_eq!(figures(&store, "beta"), beta);
    drop(store);
    let reopened = fixture.store("live");
    assert_eq!(figures(&reopened, "acme"), acme, "the rebuild is stored");
}

#[tokio::test]
async fn a_day_report_comes_from_the_day_buckets_and_equals_the_quarters_summed() {
    let fixture = Fixture::new();
    fixture.publish(&day()).await;
    let store = fixture.store("store");
    project(&fixture, &store).await;
    let tenant = TenantId::new("acme").expect("valid");
    let midnight = Interval::Day.floor(at(0));
    let next = Interval::Day.floor(at(86_400));
    let by_day = Grouping {
        interval: Some(Interval::Day),
        ..Grouping::default()
    };
    let days = store
        .report(&tenant, midnight..next, by_day)
        .expect("report");
    assert_eq!(days.len(), 1);
    assert_eq!(total(&days), total(&figures(&store, "acme")));
    let later = Timestamp::from_unix_nanos(midnight.unix_nanos() + 3_600_000_000_000);
    let by_quarter = Grouping {
        interval: Some(Interval::Quarter),
        ..Grouping::default()
    };
    assert!(store.report(&tenant, later..midnight, by_quarter).is_err());
}

#[tokio::test]
async fn measurement_off_records_nothing_refuses_reports_and_a_rebuild_catches_up() {
    let fixture = Fixture::new();
    fixture.publish(&day()).await;
    let reference = fixture.store("reference");
    project(&fixture, &reference).await;

    let off = rezef_store::ProjectionConfig {
        measure: rezef_measure::MeasureRules {
            enabled: false,
            ..Default::default()
        },
        ..Default::default()
    };
    let store = fixture.cached("off", off);
    project(&fixture, &store).await;
    let tenant = TenantId::new("acme").expect("valid");
    let refused = store.report(&tenant, at(0)..at(3_600), Grouping::default());
    assert!(
        matches!(refused, Err(rezef_store::Error::MeasurementOff)),
        "{refused:?}"
    );
    let customer = CustomerId::new("c-1").expect("valid");
    assert!(store.journey(&tenant, &customer).expect("read").is_some());
    store.flush().expect("flush");
    assert_eq!(
        store.measurement().expect("measurement"),
        Default::default(),
        "nothing measured, nothing stored"
    );
    drop(store);

    // Turned on: what was folded while off stays unmeasured until a rebuild.
    let on = fixture.store("off");
    assert_eq!(total(&figures(&on, "acme")).contacts, 0);
    rebuild(
        fixture.log(),
        on.clone(),
        Arc::default(),
        None,
        1000,
        |_| {},
    )
    .await
    .expect("rebuild");
    assert_eq!(figures(&on, "acme"), figures(&reference, "acme"));
}
