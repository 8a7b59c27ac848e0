//! A wall screen on one node of a two-node Kafka cluster sees the tenant's whole
//! (docs/measurement.md, "The current interval, live"), against the broker
//! `scripts/kafka-broker` starts (skipped without `KAFKA_BROKERS`): `Insights/WatchInterval`
//! opened on node 0 converges to every contact of the current quarter hour, those of
//! customers on node 1's partitions included; when node 1 is killed, the open stream ends
//! `UNAVAILABLE` naming the node or the partition it lacks, never showing a part as the whole.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rezef_adapter::proto;
use rezef_scenarios::kafka::KafkaTopic;
use rezef_scenarios::two_nodes::{
    CONTACT_SECONDS, CUSTOMERS, TENANT, TwoNodes, assert_whole, contacts, publish_contacts,
};
use tonic::Code;

/// The width of the screen's interval (the default, a quarter hour), in seconds.
const QUARTER_S: i64 = 900;
/// The least time left in the quarter hour for the contacts to reach the screen: a rollover
/// would start the screen afresh.
const ROOM_S: i64 = 45;

fn now_s() -> i64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH);
    now.expect("after 1970").as_secs() as i64
}

/// A time (seconds since the epoch) at which contacts that arrive then have ended by now,
/// in the current quarter hour, with [`ROOM_S`] left in it: waits for the next quarter hour
/// when this one has just begun or is ending.
async fn arrival_in_this_quarter() -> i64 {
    loop {
        let now = now_s();
        let start = now / QUARTER_S * QUARTER_S;
        let arrival = now - CONTACT_SECONDS;
        if arrival >= start && start + QUARTER_S - now >= ROOM_S {
            return arrival;
        }
        let wait = match arrival < start {
            true => arrival.abs_diff(start),
            false => (start + QUARTER_S + CONTACT_SECONDS - now) as u64,
        };
        eprintln!("waiting {wait} s for room in a quarter hour");
        tokio::time::sleep(Duration::from_secs(wait)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_screen_on_one_node_counts_every_partition_and_ends_when_a_node_is_lost() {
    let Some(topic) = KafkaTopic::fresh("watch") else {
        eprintln!("skipped: no KAFKA_BROKERS (scripts/kafka-broker start)");
        return;
    };
    // Given two nodes sharing a topic of six partitions, each serving some customers
    let mut cluster = TwoNodes::start(&topic).await;

    // And a screen on node 0 watching the current quarter hour by queue, nothing in it yet
    // (once every partition has an owner: until then a screen ends UNAVAILABLE at once)
    let mut client = cluster.nodes[0].client().await;
    let this_quarter = proto::WatchIntervalRequest {
        tenant_id: TENANT.into(),
        by_queue: true,
        ..Default::default()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match rezef_scenarios::watch_interval(&client, this_quarter.clone()).await {
            Err(status) if status.code() == Code::Unavailable && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            opened => break drop(opened.expect("watching")),
        }
    }
    let arrival = arrival_in_this_quarter().await;
    let watched = rezef_scenarios::watch_interval(&client, this_quarter).await;
    let (mut screen, first) = watched.expect("watching");
    let quarter = first.start.expect("a start").seconds;
    assert_eq!(quarter, arrival / QUARTER_S * QUARTER_S, "{first:?}");
    assert_eq!(first.rows, Vec::new(), "nothing measured yet");

    // When twelve calls that arrived in it are published through node 0, six answered within
    // the target, six abandoned in the queue
    publish_contacts(&mut client, |_| arrival).await;

    // Then the screen's rows converge to the whole: node 1's partitions are counted too
    let rows = loop {
        let update = tokio::time::timeout(Duration::from_secs(30), screen.message())
            .await
            .expect("an update within 30 s")
            .expect("ok")
            .expect("the stream goes on");
        assert!(!update.rolled_over, "the quarter hour ended: {update:?}");
        assert!(contacts(&update.rows) <= CUSTOMERS as u64, "{update:?}");
        if contacts(&update.rows) == CUSTOMERS as u64 {
            break update.rows;
        }
    };
    assert_whole(&rows);

    // When node 1 is killed
    let killed = cluster.nodes.pop().expect("two nodes");
    killed.kill9();

    // Then the open stream ends UNAVAILABLE, naming the node or a partition it lacks
    let ended = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match screen.message().await {
                Ok(Some(update)) => assert_eq!(update.rows, rows, "never a part"),
                Ok(None) => panic!("the stream ended with no status"),
                Err(status) => return status,
            }
        }
    });
    let status = ended.await.expect("the stream ends within 30 s");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    let names = |what: &str| status.message().contains(what);
    assert!(names("node-1") || names("partition"), "{status:?}");
}
