//! A scripted morning for the insights tests: five calls with given times, published
//! through `Publish`, and the report rows `rezef-measure` computes for the same events.

use std::ops::Range;

use rezef_adapter::proto;
use rezef_events::event::{AbandonPoint, Direction, EndReason, SCHEMA_VERSION};
use rezef_events::{
    AgentId, Channel, ChannelIdentity, CustomerId, CustomerRef, Event, EventId, InteractionId,
    Payload, TenantId, Timestamp,
};
use rezef_measure::testing::Projection;
use rezef_measure::{Grouping, Interval, MeasureConfig};
use rezef_server::convert::event_to_proto;
use rezef_server::convert::insights::row_to_proto;

use super::Running;

pub const TENANT: &str = "acme";
/// 2026-12-01 00:00 UTC.
pub const MIDNIGHT_SECS: i64 = 1_796_083_200;
pub const DAY_SECS: i64 = 86_400;

pub fn at(secs: i64) -> Timestamp {
    Timestamp::from_unix_nanos(secs * 1_000_000_000)
}

pub fn agent() -> AgentId {
    AgentId::new("agent-1").expect("valid")
}

/// One contact's events at seconds after `start` (seconds into the day).
pub fn contact(n: u32, start: i64, steps: Vec<(i64, Payload)>) -> Vec<Event> {
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
            erased: false,
            payload,
        })
        .collect()
}

/// Five calls in the morning: answered in 5 s, answered in 5 s after a minute in the IVR,
/// given up in the IVR, given up in the queue after 3 s, and a callback 40 minutes later.
pub fn day() -> Vec<Event> {
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
pub fn expected(
    events: &[Event],
    range: Range<Timestamp>,
    grouping: Grouping,
) -> Vec<proto::ReportRow> {
    let width = match grouping.interval {
        Some(Interval::Quarter | Interval::Hour) => Interval::Quarter,
        _ => Interval::Day,
    };
    let mut projection = Projection::at_width(MeasureConfig::default(), width);
    events.iter().for_each(|event| projection.feed(event));
    let buckets = projection.buckets;
    let report = buckets.report(range, grouping).expect("a valid report");
    report.iter().map(|(key, f)| row_to_proto(key, f)).collect()
}

pub async fn published(server: &Running, events: &[Event]) -> rezef_adapter::Client {
    published_as(server, events, "c-5").await
}

/// Publishes `events`, waiting until `customer`'s journey has every one of them projected.
pub async fn published_as(
    server: &Running,
    events: &[Event],
    customer: &str,
) -> rezef_adapter::Client {
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

pub fn request(from: i64, to: i64, interval: proto::ReportInterval) -> proto::GetReportRequest {
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
