//! `rezef.v1.Insights` over real gRPC: a scripted day published through `Publish`, then
//! `GetReport` gives exactly the figures `rezef-measure` computes for the same events (and
//! the ones worked out by hand), names the field of a bad request, and refuses a role that
//! may not read reports; the customer tracker follows a call live.

mod common;

use std::collections::BTreeMap;
use std::ops::Range;

use rezef_adapter::proto;
use rezef_auth::{NewKey, Role, Scope};
use rezef_events::event::{AbandonPoint, Direction, EndReason, SCHEMA_VERSION};
use rezef_events::fold::Context;
use rezef_events::{
    AgentId, Channel, ChannelIdentity, CustomerId, CustomerRef, Event, EventId, InteractionId,
    Journey, Payload, TenantId, Timestamp,
};
use rezef_measure::{Buckets, Grouping, Interval, MeasureConfig, Measurer};
use rezef_server::convert::event_to_proto;
use rezef_server::convert::insights::row_to_proto;
use tonic::Code;

use common::{Running, fields};

const TENANT: &str = "acme";
/// 2026-12-01 00:00 UTC.
const MIDNIGHT_SECS: i64 = 1_796_083_200;
const DAY_SECS: i64 = 86_400;

fn at(secs: i64) -> Timestamp {
    Timestamp::from_unix_nanos(secs * 1_000_000_000)
}

fn agent() -> AgentId {
    AgentId::new("agent-1").expect("valid")
}

/// One contact's events at seconds after `start` (seconds into the day).
fn contact(n: u32, start: i64, steps: Vec<(i64, Payload)>) -> Vec<Event> {
    (steps.into_iter())
        .map(|(secs, payload)| Event {
            event_id: EventId::new(format!("e-{n}-{secs}")).expect("valid"),
            tenant_id: TenantId::new(TENANT).expect("valid"),
            occurred_at: at(MIDNIGHT_SECS + start + secs),
            source: "script".into(),
            schema_version: SCHEMA_VERSION,
            customer: Some(CustomerRef::Id(
                CustomerId::new(format!("c-{n}")).expect("valid"),
            )),
            conversation_id: None,
            interaction_id: Some(InteractionId::new(format!("call-{n}")).expect("valid")),
            channel: Some(Channel::Voice),
            forward: None,
            payload,
        })
        .collect()
}

/// Five calls in the morning: answered in 5 s, answered in 5 s after a minute in the IVR,
/// given up in the IVR, given up in the queue after 3 s, and a callback 40 minutes later.
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
    let hour = |h: i64| h * 3600;
    let mut events = Vec::new();
    let wrap_up = Payload::WrapUpRecorded {
        agent_id: Some(agent()),
        disposition: "done".into(),
        need_resolved: true,
        notes: String::new(),
    };
    let survey = Payload::SurveyAnswered {
        csat: Some(5),
        nps: Some(10),
        effort: Some(1),
        comment: String::new(),
    };
    events.extend(contact(
        1,
        hour(9),
        vec![
            (0, started()),
            (10, queued("sales")),
            (15, assigned()),
            (200, ended()),
            (230, wrap_up),
            (300, survey),
        ],
    ));
    events.extend(contact(
        2,
        hour(9) + 600,
        vec![
            (0, started()),
            (60, queued("sales")),
            (65, assigned()),
            (300, ended()),
        ],
    ));
    events.extend(contact(
        3,
        hour(10),
        vec![
            (0, started()),
            (
                40,
                Payload::ContactAbandoned {
                    point: AbandonPoint::Ivr,
                },
            ),
        ],
    ));
    events.extend(contact(
        4,
        hour(10) + 300,
        vec![
            (0, started()),
            (5, queued("billing")),
            (
                8,
                Payload::ContactAbandoned {
                    point: AbandonPoint::Queue,
                },
            ),
        ],
    ));
    events.extend(contact(
        5,
        hour(11),
        vec![
            (0, started()),
            (5, queued("billing")),
            (
                30,
                Payload::CallbackRequested {
                    callback_to: ChannelIdentity::phone("+972501234567").expect("valid"),
                    preferred_at: None,
                    queue_id: "billing".into(),
                    original_arrival_at: None,
                },
            ),
            (35, ended()),
            (
                2400,
                Payload::CallbackCompleted {
                    reached: true,
                    agent_id: Some(agent()),
                },
            ),
            (2700, ended()),
        ],
    ));
    events.sort_by_key(|e| e.occurred_at);
    events
}

/// The report rows `rezef-measure` computes for `events` (the pure fold and measurer).
fn expected(
    events: &[Event],
    range: Range<Timestamp>,
    grouping: Grouping,
) -> Vec<proto::ReportRow> {
    let width = match grouping.interval {
        Some(Interval::Quarter | Interval::Hour) => Interval::Quarter,
        _ => Interval::Day,
    };
    let (config, mut measurer, mut buckets) = (
        MeasureConfig::default(),
        Measurer::new(),
        Buckets::new(width),
    );
    let mut journeys: BTreeMap<CustomerId, Journey> = BTreeMap::new();
    for (offset, event) in events.iter().enumerate() {
        let Some(CustomerRef::Id(customer)) = &event.customer else {
            unreachable!("the script names customers by id")
        };
        let journey = (journeys.entry(customer.clone())).or_insert_with(|| {
            Journey::new(event.tenant_id.clone(), customer.clone(), event.occurred_at)
        });
        let applied = journey.apply_with(offset as u64, event, &Context::standalone());
        for record in measurer.observe(&config, offset as u64, event, None, (journey, &applied)) {
            buckets.add(&record);
        }
    }
    let report = buckets.report(range, grouping).expect("a valid report");
    report.iter().map(|(key, f)| row_to_proto(key, f)).collect()
}

async fn published(server: &Running, events: &[Event]) -> rezef_adapter::Client {
    published_as(server, events, "c-5").await
}

/// Publishes `events`, waiting until `customer`'s journey has every one of them projected.
async fn published_as(server: &Running, events: &[Event], customer: &str) -> rezef_adapter::Client {
    let mut client = server.client().await;
    let batch = events.iter().map(|e| event_to_proto(e, None)).collect();
    let response = client.publish(batch).await.expect("published");
    let last = response.first_offset + u64::from(response.count) - 1;
    let customer = proto::CustomerRef {
        r#ref: Some(proto::customer_ref::Ref::CustomerId(customer.into())),
    };
    (client.journey(TENANT, customer, Some(last)).await).expect("projected");
    client
}

fn request(from: i64, to: i64, interval: proto::ReportInterval) -> proto::GetReportRequest {
    let time = |secs| prost_types::Timestamp {
        seconds: secs,
        nanos: 0,
    };
    proto::GetReportRequest {
        tenant_id: TENANT.into(),
        from: Some(time(from)),
        to: Some(time(to)),
        interval: interval as i32,
        ..Default::default()
    }
}

#[tokio::test]
async fn the_report_is_what_rezef_measure_computes_and_what_was_worked_out_by_hand() {
    let server = Running::start_with(rezef_server::ServerConfig::default()).await;
    let events = day();
    let client = published(&server, &events).await;
    let (from, to) = (MIDNIGHT_SECS, MIDNIGHT_SECS + DAY_SECS);

    let whole = request(from, to, proto::ReportInterval::Unspecified);
    let rows = client
        .insights()
        .get_report(whole)
        .await
        .expect("report")
        .into_inner()
        .rows;
    let range = at(from)..at(to);
    assert_eq!(rows, expected(&events, range.clone(), Grouping::default()));
    let [day] = rows.as_slice() else {
        panic!("one row for the day: {rows:?}")
    };
    // By hand (docs/measurement.md): classic counts calls 1, 2 and the callback in target
    // and leaves out the IVR abandon and the 3 s queue abandon; journey-true counts all five
    // and only call 1 answered within 20 s of arrival.
    assert_eq!(day.contacts, 5);
    let classic = day.classic.expect("classic");
    assert_eq!(
        (classic.in_target, classic.counted, classic.excluded),
        (3, 3, 2)
    );
    let journey = day.journey_true.expect("journey-true");
    assert_eq!((journey.in_target, journey.counted), (1, 5));
    let reasons: BTreeMap<i32, u64> = (day.differences.iter())
        .map(|d| (d.reason, d.contacts))
        .collect();
    use proto::DifferenceReason as R;
    let by_hand = [
        R::CallbackRealWait,
        R::IvrAbandon,
        R::ShortAbandonExcluded,
        R::IvrTime,
    ];
    assert_eq!(
        reasons,
        by_hand.map(|r| (r as i32, 1)).into_iter().collect()
    );
    assert_eq!((day.resolved, day.fcr.expect("fcr").pending), (1, 1));
    assert_eq!(day.surveys.expect("surveys").nps, Some(100.0));

    let by_queue = proto::GetReportRequest {
        by_queue: true,
        ..request(from, to, proto::ReportInterval::Hour)
    };
    let rows = client
        .insights()
        .get_report(by_queue)
        .await
        .expect("report")
        .into_inner()
        .rows;
    let grouping = Grouping {
        interval: Some(Interval::Hour),
        queue: true,
        ..Grouping::default()
    };
    assert_eq!(rows, expected(&events, range, grouping));
    assert!(rows.len() >= 4, "hours and queues apart: {rows:?}");
    server.stop().await;
}

#[tokio::test]
async fn bad_requests_name_the_field() {
    let server = Running::start_with(rezef_server::ServerConfig::default()).await;
    let client = server.client().await;
    let (from, to) = (MIDNIGHT_SECS, MIDNIGHT_SECS + DAY_SECS);
    let cases = [
        (request(to, from, proto::ReportInterval::Day), "to"),
        (
            request(from, from + 401 * DAY_SECS, proto::ReportInterval::Day),
            "to",
        ),
        (
            request(
                from,
                from + 8 * DAY_SECS,
                proto::ReportInterval::QuarterHour,
            ),
            "interval",
        ),
        (
            request(from + 60, to, proto::ReportInterval::Unspecified),
            "from",
        ),
        (
            proto::GetReportRequest {
                tenant_id: String::new(),
                ..request(from, to, proto::ReportInterval::Day)
            },
            "tenant_id",
        ),
    ];
    for (asked, field) in cases {
        let status = client
            .insights()
            .get_report(asked)
            .await
            .expect_err("refused");
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert_eq!(fields(&status), vec![field.to_owned()], "{status:?}");
    }
    server.stop().await;
}

#[tokio::test]
async fn supervisors_admins_and_auditors_read_reports_and_agents_may_not() {
    let acme = || Scope::Tenant(TENANT.into());
    let roles = [Role::Supervisor, Role::Admin, Role::Auditor, Role::Channel];
    let keys = roles.map(|role| NewKey::new(acme(), [role])).to_vec();
    let (server, tokens) = Running::with_keys(keys).await;
    let (from, to) = (MIDNIGHT_SECS, MIDNIGHT_SECS + DAY_SECS);
    for (role, token) in roles.iter().zip(&tokens) {
        let client = server.client_with(token).await;
        let asked = request(from, to, proto::ReportInterval::Day);
        let answer = client.insights().get_report(asked).await;
        match role {
            Role::Channel => {
                let status = answer.expect_err("refused");
                assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
            }
            _ => assert!(answer.is_ok(), "{role:?}: {answer:?}"),
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn the_tracker_follows_the_customer_live_station_by_station() {
    let server = Running::start_with(rezef_server::ServerConfig::default()).await;
    let events = day();
    // Call 1 up to its queue, then the rest of it once the tracker watches.
    let (first, rest): (Vec<Event>, Vec<Event>) = (events.into_iter())
        .filter(|e| {
            e.interaction_id
                .as_ref()
                .is_some_and(|i| i.as_str() == "call-1")
        })
        .partition(|e| {
            matches!(
                e.payload,
                Payload::InteractionStarted { .. } | Payload::ContactQueued { .. }
            )
        });
    let client = published_as(&server, &first, "c-1").await;
    let customer = proto::CustomerRef {
        r#ref: Some(proto::customer_ref::Ref::CustomerId("c-1".into())),
    };
    let track = proto::TrackCustomerRequest {
        tenant_id: TENANT.into(),
        customer: Some(customer),
    };
    let mut stream = (client.insights().track_customer(track.clone()).await)
        .expect("tracking")
        .into_inner();
    let stations = |tracker: &proto::CustomerTracker| -> Vec<(i32, bool)> {
        let conversation = tracker.conversation.as_ref().expect("open");
        (conversation.contacts[0].stations.iter())
            .map(|s| (s.station, s.until.is_some()))
            .collect()
    };
    let now = stream.message().await.expect("a tracker").expect("sent");
    assert_eq!(now.customer_id, "c-1");
    assert_eq!(stations(&now), vec![(proto::Station::Queue as i32, false)]);

    let mut publisher = server.client().await;
    let assigned = rest
        .iter()
        .find(|e| matches!(e.payload, Payload::ContactAssigned { .. }));
    let assigned = event_to_proto(assigned.expect("assigned"), None);
    publisher.publish(vec![assigned]).await.expect("published");
    let next = stream.message().await.expect("a tracker").expect("sent");
    let talking = vec![
        (proto::Station::Queue as i32, true),
        (proto::Station::Talk as i32, false),
    ];
    assert_eq!(stations(&next), talking);

    let stranger = proto::TrackCustomerRequest {
        customer: Some(proto::CustomerRef {
            r#ref: Some(proto::customer_ref::Ref::CustomerId("nobody".into())),
        }),
        ..track
    };
    let status = client
        .insights()
        .track_customer(stranger)
        .await
        .expect_err("unknown");
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    server.stop().await;
}

#[tokio::test]
async fn a_node_that_does_not_measure_refuses_reports_naming_why() {
    let config = rezef_server::ServerConfig {
        measure: rezef_measure::MeasureRules {
            enabled: false,
            ..Default::default()
        },
        ..rezef_server::ServerConfig::default()
    };
    let server = Running::start_with(config).await;
    let client = published(&server, &day()).await;
    let whole = request(
        MIDNIGHT_SECS,
        MIDNIGHT_SECS + DAY_SECS,
        proto::ReportInterval::Unspecified,
    );
    let refused = (client.insights().get_report(whole).await).expect_err("not measured");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(
        refused.message().contains("[measure] enabled = false"),
        "{refused:?}"
    );
}
