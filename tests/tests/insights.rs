//! `rezef serve` streams the current interval live (`rezef.v1.Insights/WatchInterval`): a
//! wall screen watching today by queue sees a call published now, with exactly the figures
//! `GetReport` gives for the same day.

use rezef_adapter::proto::{self, event::Payload};
use rezef_adapter::{Client, EventFactory};
use rezef_scenarios::RezefServer;

/// GetReport's rows by queue for the day an update covers.
async fn report(client: &Client, update: &proto::IntervalUpdate) -> Vec<proto::ReportRow> {
    let asked = proto::GetReportRequest {
        tenant_id: "acme".into(),
        from: update.start,
        to: update.end,
        interval: proto::ReportInterval::Day as i32,
        by_queue: true,
        ..Default::default()
    };
    let answer = client.insights().get_report(asked).await.expect("report");
    answer.into_inner().rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wall_screen_sees_a_call_published_now_as_the_report_counts_it() {
    // Given `rezef serve` and a screen watching today, by queue
    let dir = tempfile::tempdir().expect("tempdir");
    let server = RezefServer::start(dir.path()).await;
    let mut client = server.client().await;
    let today = proto::WatchIntervalRequest {
        tenant_id: "acme".into(),
        interval: proto::ReportInterval::Day as i32,
        by_queue: true,
        ..Default::default()
    };
    let (mut screen, first) =
        (rezef_scenarios::watch_interval(&client, today).await).expect("watching");
    assert_eq!(first.rows, Vec::new(), "nothing measured yet");

    // When a call is queued in billing, answered at once and ends
    let call = EventFactory::new("acme", "pbx")
        .customer("c-1")
        .on(proto::Channel::Voice, "call-1");
    let queued = Payload::ContactQueued(proto::ContactQueued {
        queue_id: "billing".into(),
        ..Default::default()
    });
    let assigned = Payload::ContactAssigned(proto::ContactAssigned {
        agent_id: "agent-1".into(),
        queue_id: String::new(),
    });
    let ended = Payload::InteractionEnded(proto::InteractionEnded {
        reason: proto::EndReason::Completed as i32,
    });
    let mut events = vec![call.interaction_started(proto::Direction::Inbound)];
    events.extend([queued, assigned, ended].map(|payload| call.event(payload)));
    client.publish(events).await.expect("published");

    // Then the screen shows it, as GetReport counts it for the same day
    let update = loop {
        let update = screen.message().await.expect("ok").expect("an update");
        if !update.rows.is_empty() {
            break update;
        }
    };
    assert_eq!(update.rows, report(&client, &update).await);
    let [billing] = update.rows.as_slice() else {
        panic!("one row, billing: {:?}", update.rows)
    };
    assert_eq!(billing.queue_id.as_deref(), Some("billing"));
    assert_eq!(billing.contacts, 1);
    let answered = |level: Option<proto::ServiceLevel>| {
        let level = level.expect("a service level");
        (level.in_target, level.counted)
    };
    assert_eq!(answered(billing.classic), (1, 1));
    assert_eq!(answered(billing.journey_true), (1, 1));
}
