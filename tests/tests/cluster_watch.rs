//! A wall screen on one node of a two-node Kafka cluster sees the tenant's whole
//! (docs/measurement.md, "The current interval, live"), against the broker
//! `scripts/kafka-broker` starts (skipped without `KAFKA_BROKERS`): `Insights/WatchInterval`
//! opened on node 0 converges to every contact of the current quarter hour, those of
//! customers on node 1's partitions included; when node 1 is killed, the open stream ends
//! `UNAVAILABLE` naming the node or the partition it lacks, never showing a part as the whole.
//! A screen opened on a node that served every partition goes on when a node joins and takes
//! some: the contacts then published on the joiner's partitions alone reach it within seconds.

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rezef_adapter::{Client, proto};
use rezef_events::partition::Partitioner;
use rezef_events::{CustomerId, TenantId};
use rezef_scenarios::answers_itself;
use rezef_scenarios::kafka::KafkaTopic;
use rezef_scenarios::two_nodes::{
    CONTACT_SECONDS, CUSTOMERS, PARTITIONS, TENANT, TwoNodes, assert_whole, call, contact,
    contacts, publish, publish_contacts, start_node,
};
use tonic::Code;

/// The width of the screen's interval (the default, a quarter hour), in seconds.
const QUARTER_S: i64 = 900;
/// The least time left in the quarter hour for the contacts to reach the screen: a rollover
/// would start the screen afresh.
const ROOM_S: i64 = 45;
/// The same when a node joins first (it starts, the group rebalances).
const ROOM_TO_JOIN_S: i64 = 180;

fn now_s() -> i64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH);
    now.expect("after 1970").as_secs() as i64
}

/// A time (seconds since the epoch) at which contacts that arrive then have ended by now,
/// in the current quarter hour, with `room_s` left in it: waits for the next quarter hour
/// when this one has just begun or is ending.
async fn arrival_in_this_quarter(room_s: i64) -> i64 {
    loop {
        let now = now_s();
        let start = now / QUARTER_S * QUARTER_S;
        let arrival = now - CONTACT_SECONDS;
        if arrival >= start && start + QUARTER_S - now >= room_s {
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
    let arrival = arrival_in_this_quarter(ROOM_S).await;
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

/// The partition of customer `c-{customer}` of `tenant` (`two_nodes::call`).
fn partition_of(tenant: &str, customer: usize) -> u32 {
    let tenant = TenantId::new(tenant).expect("a tenant");
    let customer = CustomerId::new(format!("c-{customer}")).expect("a customer");
    partitioner().customer(&tenant, &customer)
}

fn partitioner() -> Partitioner {
    Partitioner::new(PARTITIONS.try_into().expect("partitions"))
}

/// A tenant whose routing is on each partition, by partition: the events that end a contact
/// are told to the tenant's routing partition (docs/scale-out.md §5), so a screen whose
/// tenant's routing is on the joiner sees no event on the other node's partitions.
fn tenants_routed_on_every_partition() -> Vec<String> {
    let mut tenants: Vec<Option<String>> = vec![None; PARTITIONS as usize];
    for n in 0.. {
        let tenant = format!("screen-{n}");
        let routing = partitioner().routing(&TenantId::new(tenant.as_str()).expect("a tenant"));
        tenants[routing as usize].get_or_insert(tenant);
        if tenants.iter().all(Option::is_some) {
            break;
        }
    }
    tenants.into_iter().flatten().collect()
}

/// The partitions `client`'s node serves and has caught up on.
async fn served_by(client: &Client) -> BTreeSet<u32> {
    let mut served = BTreeSet::new();
    for partition in 0..PARTITIONS {
        let customer = (0..).find(|&c| partition_of(TENANT, c) == partition);
        let customer = customer.expect("a customer on every partition");
        let reference = call(TENANT, customer).customer_ref();
        if answers_itself(client, TENANT, reference).await {
            served.insert(partition);
        }
    }
    served
}

/// The partitions each node serves once both serve some and every one has its owner caught
/// up, within 90 s.
async fn shared(nodes: [&Client; 2]) -> [BTreeSet<u32>; 2] {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let served = [served_by(nodes[0]).await, served_by(nodes[1]).await];
        let every = served[0].union(&served[1]).count() == PARTITIONS as usize;
        let once = served[0].is_disjoint(&served[1]);
        if every && once && !served[1].is_empty() {
            return served;
        }
        assert!(Instant::now() < deadline, "not shared: {served:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_screen_on_a_node_that_lost_partitions_to_a_joiner_sees_the_joiner_s_contacts() {
    let Some(topic) = KafkaTopic::fresh("watch-join") else {
        eprintln!("skipped: no KAFKA_BROKERS (scripts/kafka-broker start)");
        return;
    };
    let dirs = [(); 2].map(|()| tempfile::tempdir().expect("tempdir"));
    // Given node 0 alone, serving every partition, caught up on each
    let node0 = start_node(&topic, dirs[0].path(), 0).await;
    let client0 = node0.client().await;
    let deadline = Instant::now() + Duration::from_secs(90);
    while served_by(&client0).await.len() < PARTITIONS as usize {
        assert!(
            Instant::now() < deadline,
            "node 0 does not serve every partition"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // And on it a screen per tenant, one with its routing on each partition, each with its
    // first rows (none) read while node 0 was the only one
    let arrival = arrival_in_this_quarter(ROOM_TO_JOIN_S).await;
    let tenants = tenants_routed_on_every_partition();
    let mut screens = Vec::new();
    for tenant in &tenants {
        let this_quarter = proto::WatchIntervalRequest {
            tenant_id: tenant.clone(),
            by_queue: true,
            ..Default::default()
        };
        let watched = rezef_scenarios::watch_interval(&client0, this_quarter).await;
        let (screen, first) = watched.expect("watching");
        assert_eq!(first.rows, Vec::new(), "nothing measured yet");
        screens.push(screen);
    }

    // When node 1 starts and takes some of the partitions
    let node1 = start_node(&topic, dirs[1].path(), 1).await;
    let mut client1 = node1.client().await;
    let joined = Instant::now();
    let [_, theirs] = shared([&client0, &client1]).await;
    eprintln!("node 1 serves {theirs:?} after {:?}", joined.elapsed());

    // And contacts of customers on node 1's partitions are published through node 1, for the
    // tenant routed there: nothing is appended to a partition node 0 serves
    let routing =
        |tenant: &String| partitioner().routing(&TenantId::new(tenant.as_str()).expect("a tenant"));
    let chosen = tenants.iter().position(|t| theirs.contains(&routing(t)));
    let chosen = chosen.expect("a tenant routed on every partition");
    let tenant = tenants[chosen].as_str();
    let customers: Vec<usize> = (0..CUSTOMERS)
        .filter(|&c| theirs.contains(&partition_of(tenant, c)))
        .collect();
    assert!(
        !customers.is_empty(),
        "no customer of {tenant} on {theirs:?}"
    );
    for &customer in &customers {
        publish(&mut client1, contact(tenant, customer, arrival)).await;
    }
    let published = Instant::now();

    // Then node 0's screen of that tenant counts every one of them within seconds
    let screen = &mut screens[chosen];
    let rows = loop {
        let update = tokio::time::timeout(Duration::from_secs(10), screen.message())
            .await
            .expect("an update within 10 s")
            .expect("the stream goes on through the rebalance")
            .expect("a message");
        assert!(!update.rolled_over, "the quarter hour ended: {update:?}");
        assert!(
            contacts(&update.rows) <= customers.len() as u64,
            "{update:?}"
        );
        if contacts(&update.rows) == customers.len() as u64 {
            break update.rows;
        }
    };
    let shown = published.elapsed();
    eprintln!(
        "{} contacts of {tenant} on node 1 shown on node 0 {shown:?} after they were published",
        customers.len()
    );
    assert!(shown < Duration::from_secs(5), "shown after {shown:?}");
    let [billing] = rows.as_slice() else {
        panic!("one row, billing: {rows:?}")
    };
    let abandoned = customers.iter().filter(|c| *c % 2 == 1).count() as u64;
    let abandons: u64 = billing.abandons.iter().map(|a| a.contacts).sum();
    assert_eq!(abandons, abandoned, "{billing:?}");
}
