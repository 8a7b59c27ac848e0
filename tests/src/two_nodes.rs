//! Two `rezef serve` nodes sharing a Kafka topic of six partitions, and the calls the
//! scenarios on a cluster's measurement publish through them (`tests/tests/cluster_report.rs`,
//! `tests/tests/cluster_watch.rs`): twelve customers on partitions of both nodes, half
//! answered within the target, half abandoned in the queue, whose exact whole a node's figures
//! must show (docs/measurement.md, "A cluster's report").

use std::path::Path;
use std::time::{Duration, Instant};

use rezef_adapter::proto::{self, event::Payload};
use rezef_adapter::{Client, EventFactory};
use tempfile::TempDir;

use crate::kafka::KafkaTopic;
use crate::{RezefServer, answers_itself};

pub const TENANT: &str = "billing-test";
pub const CUSTOMERS: usize = 12;
pub const PARTITIONS: u32 = 6;
/// The latest event of a [`contact`], in seconds after its arrival.
pub const CONTACT_SECONDS: i64 = 12;

/// Two nodes, `node-0` and `node-1`, each serving some of the customers.
#[derive(Debug)]
pub struct TwoNodes {
    pub nodes: Vec<RezefServer>,
    /// How many of the customers each node answers for itself.
    pub served: [usize; 2],
    // After `nodes`: dropped once they are stopped.
    _dirs: [TempDir; 2],
}

impl TwoNodes {
    /// Starts both nodes on `topic` and waits until the group has given both partitions.
    pub async fn start(topic: &KafkaTopic) -> Self {
        let dirs = [(); 2].map(|()| tempfile::tempdir().expect("tempdir"));
        let mut nodes = Vec::new();
        for (node, dir) in dirs.iter().enumerate() {
            nodes.push(start_node(topic, dir.path(), node).await);
        }
        let served = spread_over_both(&nodes).await;
        Self {
            nodes,
            served,
            _dirs: dirs,
        }
    }
}

/// Starts `node-{node}` on `topic` (of [`PARTITIONS`]), its data in `dir`.
pub async fn start_node(topic: &KafkaTopic, dir: &Path, node: usize) -> RezefServer {
    let mut flags = topic.flags(PARTITIONS);
    flags.extend(["--node-id".into(), format!("node-{node}")]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    RezefServer::start_with(dir, &flags).await
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
                let reference = call(TENANT, customer).customer_ref();
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

/// The voice call of `customer` of `tenant`.
pub fn call(tenant: &str, customer: usize) -> EventFactory {
    EventFactory::new(tenant, "pbx")
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

/// A call that arrives at `arrival` (seconds since the epoch) and is queued in billing a
/// second later: an even customer's is answered 5 s later (within the 20 s target) and ends
/// at 10 s, an odd one's caller hangs up after 11 s in the queue (past the 5 s of a short
/// abandon). Its latest event is [`CONTACT_SECONDS`] after `arrival`.
pub fn contact(tenant: &str, customer: usize, arrival: i64) -> Vec<proto::Event> {
    let call = call(tenant, customer);
    let queued = Payload::ContactQueued(proto::ContactQueued {
        queue_id: "billing".into(),
        ..Default::default()
    });
    let mut events = vec![
        at(call.interaction_started(proto::Direction::Inbound), arrival),
        at(call.event(queued), arrival + 1),
    ];
    if customer.is_multiple_of(2) {
        let assigned = Payload::ContactAssigned(proto::ContactAssigned {
            agent_id: "agent-1".into(),
            queue_id: String::new(),
        });
        let ended = Payload::InteractionEnded(proto::InteractionEnded {
            reason: proto::EndReason::Completed as i32,
        });
        events.push(at(call.event(assigned), arrival + 6));
        events.push(at(call.event(ended), arrival + 10));
    } else {
        let abandoned = Payload::ContactAbandoned(proto::ContactAbandoned {
            point: proto::AbandonPoint::Queue as i32,
        });
        events.push(at(call.event(abandoned), arrival + CONTACT_SECONDS));
    }
    events
}

/// Publishes every customer's [`contact`], arriving at `arrival(customer)`, through `client`.
pub async fn publish_contacts(client: &mut Client, arrival: impl Fn(usize) -> i64) {
    for customer in 0..CUSTOMERS {
        publish(client, contact(TENANT, customer, arrival(customer))).await;
    }
}

/// Publishes `events` through `client`, again while a rebalance may still move partitions
/// (the same events: ids make it safe), for up to a minute.
pub async fn publish(client: &mut Client, events: Vec<proto::Event>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Err(error) = client.publish(events.clone()).await {
        assert!(Instant::now() < deadline, "not published: {error:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// How many contacts `rows` count.
pub fn contacts(rows: &[proto::ReportRow]) -> u64 {
    rows.iter().map(|r| r.contacts).sum()
}

/// Asserts that `rows` (by queue) are the whole of the published contacts: one row, billing,
/// every contact, six of twelve in target both ways, six abandons.
pub fn assert_whole(rows: &[proto::ReportRow]) {
    let [billing] = rows else {
        panic!("one row, billing: {rows:?}")
    };
    assert_eq!(billing.queue_id.as_deref(), Some("billing"));
    assert_eq!(billing.contacts, CUSTOMERS as u64);
    let level = |level: Option<proto::ServiceLevel>| {
        let level = level.expect("a service level");
        (level.in_target, level.counted, level.excluded)
    };
    assert_eq!(level(billing.classic), (6, 12, 0));
    assert_eq!(level(billing.journey_true), (6, 12, 0));
    let abandons: u64 = billing.abandons.iter().map(|a| a.contacts).sum();
    assert_eq!(abandons, 6);
}
