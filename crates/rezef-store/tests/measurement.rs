//! The measurement projection at the store: fed by the projector in the same step as the
//! fold and checkpointed with it, so the figures after a restart (clean, or a crash after a
//! checkpoint) and after a rebuild equal those of one uninterrupted run. Old buckets leave
//! memory once written: reports read them back, late records add to them, and what stays in
//! memory is bounded however many days were measured.

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
use rezef_measure::record::Dims;
use rezef_measure::testing::Projection;
use rezef_measure::{BucketKey, Buckets, Figures, Grouping, Interval, MeasureConfig};
use rezef_store::{
    BUCKET_BYTES, CachedStore, JourneyStore, ProjectionConfig, Projector, StoredBucket, rebuild,
};

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
            erased: false,
            payload,
        })
        .collect()
}

fn started() -> Payload {
    Payload::InteractionStarted {
        direction: Direction::Inbound,
        identity: None,
        entry_point: "main".into(),
        language: None,
        continuation_token: None,
    }
}

fn queued(queue: &str) -> Payload {
    Payload::ContactQueued {
        queue_id: queue.into(),
        priority: 1,
        required_skills: Vec::new(),
        language: None,
    }
}

fn assigned() -> Payload {
    Payload::ContactAssigned {
        agent_id: agent(),
        queue_id: String::new(),
    }
}

fn ended() -> Payload {
    Payload::InteractionEnded {
        reason: Some(EndReason::Completed),
    }
}

fn wrapped_up(resolved: bool) -> Payload {
    Payload::WrapUpRecorded {
        agent_id: Some(agent()),
        disposition: "done".into(),
        need_resolved: resolved,
        notes: String::new(),
    }
}

/// A day of calls in two tenants: answered fast or late, abandoned in the IVR or the
/// queue, wrapped up resolved or not, with surveys.
fn day() -> Vec<Event> {
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
            let resolved = wrapped_up(n % 3 != 0);
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
    assert_eq!(stored(&resumed), stored(&reference));
    assert_eq!(resumed.measurer().ok(), reference.measurer().ok());
}

/// Every bucket of every tenant at both widths, as the store reads them.
fn stored(store: &CachedStore) -> Vec<StoredBucket> {
    let all = Timestamp::from_unix_nanos(i64::MIN)..Timestamp::MAX;
    let widths = [Interval::Quarter, Interval::Day];
    let buckets = widths.map(|width| store.buckets(None, width, all.clone()));
    (buckets.into_iter().flatten())
        .collect::<Result<_, _>>()
        .expect("buckets")
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
        (fixture.log(), Default::default()),
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

/// Midnight UTC, 40 days before [`DAY_START_SECS`]: days of history, all in the past.
fn history_start() -> i64 {
    Interval::Day.floor(at(0)).unix_millis() / 1000 - DAY_START_SECS - 40 * 86_400
}

/// `days` days of one tenant's calls, one an hour in four queues: answered and wrapped up
/// resolved (first-contact resolution decided a week later, in a bucket long left), or
/// abandoned in the queue.
fn days(days: i64) -> Vec<Event> {
    let mut events = Vec::new();
    for n in 0..days * 24 {
        let start = history_start() + n * 3600 + 60;
        let queue = format!("q{}", n % 4);
        let steps = match n % 3 {
            0 => vec![
                (0, started()),
                (5, queued(&queue)),
                (
                    90,
                    Payload::ContactAbandoned {
                        point: AbandonPoint::Queue,
                    },
                ),
            ],
            _ => vec![
                (0, started()),
                (10, queued(&queue)),
                (30, assigned()),
                (200, ended()),
                (230, wrapped_up(true)),
            ],
        };
        events.extend(contact("acme", n as usize, start, steps));
    }
    events
}

/// The buckets of `width` the pure fold and measurer compute from `events`, all in memory.
fn computed(events: &[Event], width: Interval) -> Buckets {
    let mut projection = Projection::at_width(MeasureConfig::default(), width);
    events.iter().for_each(|event| projection.feed(event));
    projection.buckets
}

/// Projects the log up to `stop` and writes a checkpoint (old buckets leave memory).
async fn project_to(fixture: &Fixture, store: &Arc<CachedStore>, stop: u64) {
    let mut projector = Projector::new(fixture.log(), store.clone()).expect("projector");
    projector.catch_up(stop, |_| {}).await.expect("catch up");
    store.checkpoint().expect("checkpoint");
}

#[tokio::test]
async fn reports_across_buckets_left_in_the_store_equal_those_of_everything_in_memory() {
    let fixture = Fixture::new();
    let events = days(12);
    fixture.publish(&events).await;
    let end = fixture.log.end_offset();
    let store = fixture.store("store");
    // A day at a time, each checkpoint letting go of the buckets past.
    for stop in (1..=12).map(|day| end * day / 12) {
        project_to(&fixture, &store, stop).await;
    }
    let tenant = TenantId::new("acme").expect("valid");
    let first = Timestamp::from_unix_nanos((DAY_START_SECS + history_start()) * 1_000_000_000);
    let after =
        |days: i64| Timestamp::from_unix_nanos(first.unix_nanos() + days * 86_400 * 1_000_000_000);
    let (quarters, day_buckets) = (
        computed(&events, Interval::Quarter),
        computed(&events, Interval::Day),
    );
    let by_day_and_queue = Grouping {
        interval: Some(Interval::Day),
        queue: true,
        ..Grouping::default()
    };
    let report = store.report(&tenant, first..after(14), by_day_and_queue);
    let expected = day_buckets.report(first..after(14), by_day_and_queue);
    assert_eq!(report.expect("report"), expected.expect("report"));
    // By quarter over the last two days: most quarters read back, the latest in memory.
    let by_quarter = Grouping {
        interval: Some(Interval::Quarter),
        channel: true,
        ..Grouping::default()
    };
    let report = store.report(&tenant, after(10)..after(13), by_quarter);
    let expected = quarters.report(after(10)..after(13), by_quarter);
    assert_eq!(report.expect("report"), expected.expect("report"));

    let kept = stored(&store).len();
    assert!(
        store.resident_buckets().expect("counted") * 10 < kept,
        "{} of {kept} in memory",
        store.resident_buckets().expect("counted")
    );
    // The first days' first-contact resolutions were decided a week later, into buckets
    // read back from the store: added to them, not written over them.
    let first_day = store.report(&tenant, first..after(1), Grouping::default());
    let first_day = first_day
        .expect("report")
        .into_values()
        .next()
        .expect("a row");
    assert_eq!(first_day.contacts, 24);
    assert_eq!(first_day.fcr_achieved + first_day.fcr_not_achieved, 16);
}

#[tokio::test]
async fn a_late_record_adds_to_its_bucket_in_the_store() {
    let fixture = Fixture::new();
    let start = history_start() + 8 * 3600;
    // Two calls on day 0; the second ends three days later (counted at its arrival).
    let mut early = contact(
        "acme",
        1,
        start,
        vec![
            (0, started()),
            (10, queued("q")),
            (20, assigned()),
            (100, ended()),
        ],
    );
    early.extend(contact(
        "acme",
        2,
        start + 60,
        vec![(0, started()), (10, queued("q")), (20, assigned())],
    ));
    fixture.publish(&early).await;
    let later = contact(
        "acme",
        3,
        start + 3 * 86_400,
        vec![(0, started()), (10, queued("q"))],
    );
    fixture.publish(&later).await;
    let store = fixture.store("store");
    project_to(&fixture, &store, fixture.log.end_offset()).await;
    let tenant = TenantId::new("acme").expect("valid");
    let day0 = Interval::Day.floor(at(start));
    let day1 = Timestamp::from_unix_nanos(day0.unix_nanos() + 86_400 * 1_000_000_000);
    let day0_figures = |store: &CachedStore| {
        let rows = store.report(&tenant, day0..day1, Grouping::default());
        rows.expect("report")
            .into_values()
            .next()
            .unwrap_or_default()
    };
    assert_eq!(day0_figures(&store).contacts, 1);
    assert_eq!(
        store.resident_buckets().expect("counted"),
        0,
        "day 0 left memory"
    );
    let dims = Dims {
        queue: Some("q".into()),
        channel: Some(Channel::Voice),
        intent: None,
    };
    let day_bucket = (
        tenant.clone(),
        Interval::Day,
        BucketKey { start: day0, dims },
    );
    let stored_day = store.bucket(&day_bucket).expect("bucket").expect("stored");
    assert_eq!(stored_day.contacts, 1);

    let ends = contact("acme", 2, start + 60, vec![(3 * 86_400 + 600, ended())]);
    fixture.publish(&ends).await;
    project_to(&fixture, &store, fixture.log.end_offset()).await;
    let figures = day0_figures(&store);
    assert_eq!(figures.contacts, 2, "added to the stored bucket");
    assert_eq!(figures.classic.counted, 2);
    assert_eq!(
        store.resident_buckets().expect("counted"),
        0,
        "let go of again once written"
    );
    drop(store);
    let reopened = fixture.store("store");
    assert_eq!(day0_figures(&reopened).contacts, 2);
}

#[tokio::test]
async fn a_stored_bucket_that_cannot_be_read_back_stops_the_checkpoint_and_loses_nothing() {
    // Given day 0's figures written and let go of, then the day bucket damaged on disk
    let fixture = Fixture::new();
    let start = history_start() + 8 * 3600;
    let answered = vec![
        (0, started()),
        (10, queued("q")),
        (20, assigned()),
        (100, ended()),
    ];
    let mut early = contact("acme", 1, start, answered);
    early.extend(contact(
        "acme",
        2,
        start + 60,
        vec![(0, started()), (10, queued("q"))],
    ));
    early.extend(contact("acme", 3, start + 3 * 86_400, vec![(0, started())]));
    fixture.publish(&early).await;
    let store = fixture.store("store");
    project_to(&fixture, &store, fixture.log.end_offset()).await;
    let written = store.projected_offset().expect("offset");
    assert_eq!(
        store.resident_buckets().expect("counted"),
        0,
        "day 0 left memory"
    );
    drop(store);
    let day0 = Interval::Day.floor(at(start));
    let day0_key = ((day0.unix_nanos() as u64) ^ (1 << 63)).to_be_bytes();
    damage_stored_buckets(&fixture.path("store"), |key| {
        key.windows(9).any(|w| w[0] == b'd' && w[1..] == day0_key)
    });

    // When a late end of call 2 must add to that bucket
    let ends = contact("acme", 2, start + 60, vec![(3 * 86_400 + 600, ended())]);
    fixture.publish(&ends).await;
    let store = fixture.store("store");
    let mut projector = Projector::new(fixture.log(), store.clone()).expect("projector");
    let folded = projector.catch_up(fixture.log.end_offset(), |_| {}).await;
    let checkpoint = folded.and_then(|_| store.checkpoint());

    // Then counting fails and says why, no checkpoint is written, and the event stays in the
    // log for the next start
    let error = checkpoint.expect_err("the counter could not read the bucket back");
    let said = error.to_string();
    assert!(said.contains("counting the measurement failed"), "{said}");
    assert!(said.contains("corrupt record"), "{said}");
    drop((projector, store));
    let reopened = fixture.store("store");
    assert_eq!(reopened.projected_offset().expect("offset"), written);
}

/// Overwrites the stored buckets whose key `damaged` picks with bytes no bucket decodes from
/// (sled opened directly, as a disk fault would leave it).
fn damage_stored_buckets(path: &std::path::Path, damaged: impl Fn(&[u8]) -> bool) {
    let mut attempts = 0;
    let db = loop {
        match sled::open(path) {
            Ok(db) => break db,
            Err(_) if attempts < 100 => {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(error) => panic!("sled: {error}"),
        }
    };
    let keys: Vec<_> = (db.scan_prefix(b"f").keys())
        .map(|key| key.expect("key"))
        .filter(|key| damaged(key))
        .collect();
    assert!(!keys.is_empty(), "a bucket to damage");
    for key in keys {
        db.insert(key, &[0xff, 0xff, 0xff][..]).expect("insert");
    }
    db.flush().expect("flush");
}

#[tokio::test]
async fn buckets_in_memory_stay_bounded_however_many_days_are_measured() {
    let fixture = Fixture::new();
    fixture.publish(&days(20)).await;
    let end = fixture.log.end_offset();
    let store = fixture.store("store");
    let mut resident = Vec::new();
    for stop in (1..=20).map(|day| end * day / 20) {
        project_to(&fixture, &store, stop).await;
        resident.push(store.resident_buckets().expect("counted"));
    }
    // Four queues, each with an hour's quarters and a day or two in memory.
    let bound = 4 * (6 + 2) + 8;
    assert!(resident.iter().all(|n| *n <= bound), "{resident:?}");
    assert!(
        stored(&store).len() > 10 * bound,
        "the history stays in the store"
    );
    drop(store);
    let reopened = fixture.store("store");
    assert!(
        reopened.resident_buckets().expect("counted") <= bound,
        "opening reads only the recent buckets"
    );
}

#[tokio::test]
async fn a_catch_up_over_many_days_checkpoints_for_its_changed_buckets() {
    let fixture = Fixture::new();
    fixture.publish(&days(20)).await;
    // Journeys alone would never make a checkpoint due here; the changed buckets do.
    let config = ProjectionConfig {
        checkpoint_dirty_bytes: 20 * BUCKET_BYTES,
        ..ProjectionConfig::default()
    };
    let store = fixture.cached("store", config);
    let mut projector = Projector::new(fixture.log(), store.clone()).expect("projector");
    (projector.catch_up(fixture.log.end_offset(), |_| {}))
        .await
        .expect("catch up");
    let resident = store.resident_buckets().expect("counted");
    assert!(
        resident <= 4 * (6 + 2) + 8 + 40,
        "{resident} buckets in memory"
    );
    assert!(stored(&store).len() > 10 * resident);
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
        store.measurer().expect("measurer"),
        Default::default(),
        "nothing measured"
    );
    let all = Timestamp::from_unix_nanos(i64::MIN)..Timestamp::MAX;
    for width in [Interval::Quarter, Interval::Day] {
        let stored = store.buckets(None, width, all.clone()).count();
        assert_eq!(stored, 0, "nothing stored at {width:?}");
    }
    drop(store);

    // Turned on: what was folded while off stays unmeasured until a rebuild.
    let on = fixture.store("off");
    assert_eq!(total(&figures(&on, "acme")).contacts, 0);
    rebuild(
        (fixture.log(), Default::default()),
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
