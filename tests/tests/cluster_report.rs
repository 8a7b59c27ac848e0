//! A report on a two-node Kafka cluster is the tenant's whole (docs/measurement.md, "A
//! cluster's report"), against the broker `scripts/kafka-broker` starts (skipped without
//! `KAFKA_BROKERS`): contacts of customers on partitions of both nodes are counted by
//! `Insights/GetReport` through either node, the same rows; with one node killed, the other
//! answers `UNAVAILABLE` until it serves every partition itself, then the same rows again.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rezef_adapter::proto::{self, event::Payload};
use rezef_adapter::{Client, EventFactory};
use rezef_scenarios::kafka::KafkaTopic;
use rezef_scenarios::{RezefServer, answers_itself};
use tonic::Code;

const TENANT: &str = "report-test";
const CUSTOMERS: usize = 12;
const PARTITIONS: u32 = 6;
const DAY_S: i64 = 86_400;

fn call(customer: usize) -> EventFactory {
    EventFactory::new(TENANT, "pbx")
        .customer(format!("c-{customer}"))
        .on(proto::Channel::Voice, format!("call-{customer}"))
}

/// `event` at `at` (seconds since the epoch).
fn at(mut event: proto::Event, at: i64) -> proto::Event {
    event.occurred_at = Some(prost_types::Timestamp {
        seconds: at,
        nanos: 0,
    });
    event
}

/// A call queued in billing a second after it starts: an even customer's is answered 5 s
/// later (within the 20 s target), an odd one's caller hangs up after 30 s in the queue.
fn contact(customer: usize, start: i64) -> Vec<proto::Event> {
    let call = call(customer);
    let queued = Payload::ContactQueued(proto::ContactQueued {
        queue_id: "billing".into(),
        ..Default::default()
    });
    let mut events = vec![
        at(call.interaction_started(proto::Direction::Inbound), start),
        at(call.event(queued), start + 1),
    ];
    if customer.is_multiple_of(2) {
        let assigned = Payload::ContactAssigned(proto::ContactAssigned {
            agent_id: "agent-1".into(),
            queue_id: String::new(),
        });
        let ended = Payload::InteractionEnded(proto::InteractionEnded {
            reason: proto::EndReason::Completed as i32,
        });
        events.push(at(call.event(assigned), start + 6));
        events.push(at(call.event(ended), start + 60));
    } else {
        let abandoned = Payload::ContactAbandoned(proto::ContactAbandoned {
            point: proto::AbandonPoint::Queue as i32,
        });
        events.push(at(call.event(abandoned), start + 31));
    }
    events
}

/// The report of the day before `at` (seconds since the epoch) to the day after it (UTC)
/// by queue, one row per queue (fixed by `at`: the rows' start is the range's).
async fn report(client: &Client, at: i64) -> Result<Vec<proto::ReportRow>, tonic::Status> {
    let midnight = at / DAY_S * DAY_S;
    let day = |days: i64| prost_types::Timestamp {
        seconds: midnight + days * DAY_S,
        nanos: 0,
    };
    let asked = proto::GetReportRequest {
        tenant_id: TENANT.into(),
        from: Some(day(-1)),
        to: Some(day(2)),
        by_queue: true,
        ..Default::default()
    };
    let answer = client.insights().get_report(asked).await?;
    Ok(answer.into_inner().rows)
}

/// The rows once every contact is counted, through `node` (a partition catching up or
/// moving answers `UNAVAILABLE` meanwhile).
async fn counted(node: &RezefServer, at: i64) -> Vec<proto::ReportRow> {
    let client = node.client().await;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let rows = report(&client, at).await;
        if let Ok(rows) = &rows
            && rows.iter().map(|r| r.contacts).sum::<u64>() == CUSTOMERS as u64
        {
            return rows.clone();
        }
        if let Err(status) = &rows {
            assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        }
        assert!(Instant::now() < deadline, "not every contact: {rows:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// How many of the customers each node answers for itself, once the group has given both
/// nodes partitions.
async fn spread_over_both(nodes: &[RezefServer]) -> [usize; 2] {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let mut served = [0; 2];
        for (node, count) in nodes.iter().zip(&mut served) {
            let client = node.client().await;
            for customer in 0..CUSTOMERS {
                let reference = call(customer).customer_ref();
                *count += usize::from(answers_itself(&client, TENANT, reference).await);
            }
        }
        if served.iter().all(|n| *n > 0) && served.iter().sum::<usize>() == CUSTOMERS {
            return served;
        }
        assert!(Instant::now() < deadline, "not spread: {served:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn either_node_reports_every_partition_or_says_it_cannot() {
    let Some(topic) = KafkaTopic::fresh("report") else {
        eprintln!("skipped: no KAFKA_BROKERS (scripts/kafka-broker start)");
        return;
    };
    // Given two nodes sharing a topic of six partitions, each serving some customers
    let dirs = [(); 2].map(|()| tempfile::tempdir().expect("tempdir"));
    let mut nodes = Vec::new();
    for (node, dir) in dirs.iter().enumerate() {
        let mut flags = topic.flags(PARTITIONS);
        flags.extend(["--node-id".into(), format!("node-{node}")]);
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        nodes.push(RezefServer::start_with(dir.path(), &flags).await);
    }
    let served = spread_over_both(&nodes).await;

    // When twelve calls of the last hour are published, six answered, six abandoned
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970");
    let start = now.as_secs() as i64 - 3_600;
    let mut client = nodes[0].client().await;
    for customer in 0..CUSTOMERS {
        let events = contact(customer, start + customer as i64 * 10);
        // A rebalance may still move partitions: the same events again (ids make it safe).
        let deadline = Instant::now() + Duration::from_secs(60);
        while let Err(error) = client.publish(events.clone()).await {
            assert!(Instant::now() < deadline, "not published: {error:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    // Then either node reports all of them, the same rows
    let rows = counted(&nodes[0], start).await;
    assert_eq!(
        counted(&nodes[1], start).await,
        rows,
        "served as {served:?}"
    );
    let [billing] = rows.as_slice() else {
        panic!("one row, billing: {rows:?}")
    };
    assert_eq!(billing.queue_id.as_deref(), Some("billing"));
    assert_eq!(billing.contacts, 12);
    let level = |level: Option<proto::ServiceLevel>| {
        let level = level.expect("a service level");
        (level.in_target, level.counted, level.excluded)
    };
    assert_eq!(level(billing.classic), (6, 12, 0));
    assert_eq!(level(billing.journey_true), (6, 12, 0));
    let abandons: u64 = billing.abandons.iter().map(|a| a.contacts).sum();
    assert_eq!(abandons, 6);

    // When node 1 is killed, node 0 says the report cannot be whole while it owns partitions
    let killed = nodes.pop().expect("two nodes");
    killed.kill9();
    let status = report(&client, start)
        .await
        .expect_err("not every partition answers");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(status.message().contains("node-1"), "{status:?}");

    // Then, once node 0 serves every partition, it reports the same rows again
    assert_eq!(counted(&nodes[0], start).await, rows);
}
