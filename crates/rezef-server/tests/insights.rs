//! `rezef.v1.Insights` over real gRPC: a scripted day published through `Publish`, then
//! `GetReport` gives exactly the figures `rezef-measure` computes for the same events (and
//! the ones worked out by hand), names the field of a bad request, and refuses a role that
//! may not read reports; the customer tracker follows a call live, and shows a callback's
//! original arrival, which the measurer keeps.

mod common;

use std::collections::BTreeMap;

use rezef_adapter::proto;
use rezef_auth::{NewKey, Role, Scope};
use rezef_events::{Event, Payload};
use rezef_measure::{Grouping, Interval};
use rezef_server::convert::event_to_proto;
use tonic::Code;

use common::morning::{
    DAY_SECS, MIDNIGHT_SECS, TENANT, at, day, expected, published, published_as, request,
};
use common::{Running, fields};

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
async fn the_tracker_shows_where_a_callbacks_real_wait_starts() {
    // Given a call queued, and a tracker following its customer
    let server = Running::start_with(rezef_server::ServerConfig::default()).await;
    let (queued, rest): (Vec<Event>, Vec<Event>) = (day().into_iter())
        .filter(|e| {
            e.interaction_id
                .as_ref()
                .is_some_and(|i| i.as_str() == "call-5")
        })
        .partition(|e| {
            matches!(
                e.payload,
                Payload::InteractionStarted { .. } | Payload::ContactQueued { .. }
            )
        });
    let client = published_as(&server, &queued, "c-5").await;
    let track = proto::TrackCustomerRequest {
        tenant_id: TENANT.into(),
        customer: Some(proto::CustomerRef {
            r#ref: Some(proto::customer_ref::Ref::CustomerId("c-5".into())),
        }),
    };
    let mut stream = (client.insights().track_customer(track).await)
        .expect("tracking")
        .into_inner();
    let call = |tracker: proto::CustomerTracker| {
        let conversation = tracker.conversation.expect("open");
        conversation.contacts.into_iter().next().expect("the call")
    };
    let now = call(stream.message().await.expect("a tracker").expect("sent"));
    assert_eq!(now.callback_arrival_at, None, "no callback yet");

    // When the caller asks for a callback, hangs up, and is called back
    let mut publisher = server.client().await;
    let rest = rest.iter().map(|e| event_to_proto(e, None)).collect();
    let ack = publisher.publish(rest).await.expect("published");
    let last = ack.first_offset + u64::from(ack.count) - 1;

    // Then the call shows the customer's arrival (its start: no earlier one was given), not
    // the request's time, and keeps showing it once the callback ended
    let called_back = loop {
        let next = stream.message().await.expect("a tracker").expect("sent");
        if next.projected_offset > last {
            break call(next);
        }
    };
    assert_eq!(called_back.callback_arrival_at, called_back.started_at);
    let waited = (called_back.stations.iter())
        .find(|s| s.station == proto::Station::CallbackWait as i32)
        .expect("a callback wait");
    let seconds = |at: Option<prost_types::Timestamp>| at.expect("a time").seconds;
    assert!(
        seconds(waited.entered_at) > seconds(called_back.callback_arrival_at),
        "{called_back:?}"
    );
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
