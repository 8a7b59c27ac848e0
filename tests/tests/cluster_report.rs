//! A report on a two-node Kafka cluster is the tenant's whole (docs/measurement.md, "A
//! cluster's report"), against the broker `scripts/kafka-broker` starts (skipped without
//! `KAFKA_BROKERS`): contacts of customers on partitions of both nodes are counted by
//! `Insights/GetReport` through either node, the same rows; with one node killed, the other
//! answers `UNAVAILABLE` until it serves every partition itself, then the same rows again.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rezef_adapter::{Client, proto};
use rezef_scenarios::RezefServer;
use rezef_scenarios::kafka::KafkaTopic;
use rezef_scenarios::two_nodes::{
    CUSTOMERS, TENANT, TwoNodes, assert_whole, contacts, publish_contacts,
};
use tonic::Code;

const DAY_S: i64 = 86_400;

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
            && contacts(rows) == CUSTOMERS as u64
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn either_node_reports_every_partition_or_says_it_cannot() {
    let Some(topic) = KafkaTopic::fresh("report") else {
        eprintln!("skipped: no KAFKA_BROKERS (scripts/kafka-broker start)");
        return;
    };
    // Given two nodes sharing a topic of six partitions, each serving some customers
    let mut cluster = TwoNodes::start(&topic).await;
    let nodes = &mut cluster.nodes;

    // When twelve calls of the last hour are published, six answered, six abandoned
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970");
    let start = now.as_secs() as i64 - 3_600;
    let mut client = nodes[0].client().await;
    publish_contacts(&mut client, |customer| start + customer as i64 * 10).await;

    // Then either node reports all of them, the same rows
    let rows = counted(&nodes[0], start).await;
    assert_eq!(
        counted(&nodes[1], start).await,
        rows,
        "served as {:?}",
        cluster.served
    );
    assert_whole(&rows);

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
