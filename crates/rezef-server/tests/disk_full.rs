//! A server whose disk fills up and is freed again, with its data directory on a real tmpfs
//! of 16 MiB (`rezef_log::small_disk`; skipped, saying why, where mounting is not permitted).
//!
//! While the disk is full, publishing is refused `RESOURCE_EXHAUSTED` with the reason, health
//! says NOT_SERVING for the server and Ingest, and journeys are still read. Once space is
//! free, health turns SERVING again by itself, publishing works, and every acknowledged event
//! is in the log exactly once at its offset, and projected.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Running, chat, status_of};
use rezef_adapter::proto;
use rezef_log::small_disk::SmallDisk;
use rezef_server::{ServerConfig, SystemClock};
use tokio_stream::StreamExt;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const TENANT: &str = "acme";

async fn health(server: &Running, service: &str) -> ServingStatus {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", server.addr))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let request = HealthCheckRequest {
        service: service.into(),
    };
    let answer = HealthClient::new(channel).check(request).await;
    let status = answer.expect("health answers").into_inner().status;
    ServingStatus::try_from(status).expect("a known status")
}

async fn wait_health(server: &Running, service: &str, want: ServingStatus, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let now = health(server, service).await;
        if now == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "health of {service:?} is {now:?}, not {want:?}, after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_publishes_says_not_serving_and_recovers_once_freed() {
    let Some(disk) = SmallDisk::mount_or_skip(16 * 1024 * 1024) else {
        return;
    };
    // Given a server with its data on a small disk, and a customer's first event
    let dir = tempfile::TempDir::new_in(disk.path()).expect("data dir");
    let server = Running::start_in(ServerConfig::default(), Arc::new(SystemClock), dir).await;
    let mut client = server.client().await;
    let customer = chat(TENANT, "v-1");
    let mut acked: HashMap<u64, String> = HashMap::new();
    let first = customer.interaction_started(proto::Direction::Inbound);
    let ack = client.publish(vec![first.clone()]).await.expect("publish");
    acked.insert(ack.first_offset, first.event_id);
    wait_health(&server, "", ServingStatus::Serving, Duration::from_secs(2)).await;

    // When the disk fills up while events are published
    disk.fill_leaving(256 * 1024);
    let note = "x".repeat(120);
    let mut refused = None;
    for _ in 0..2000 {
        let events: Vec<_> = (0..50)
            .map(|_| customer.intent_detected(&note, 0.5, "bot"))
            .collect();
        match client.publish(events.clone()).await {
            Ok(ack) => {
                for (offset, event) in (ack.first_offset..).zip(events) {
                    acked.insert(offset, event.event_id);
                }
            }
            Err(error) => {
                refused = Some(status_of::<()>(Err(error)));
                break;
            }
        }
    }

    // Then publishing is refused as a full disk, health says so, and journeys are still read
    let refused = refused.expect("the disk filled up");
    assert_eq!(
        refused.code(),
        tonic::Code::ResourceExhausted,
        "{refused:?}"
    );
    assert!(
        refused.message().starts_with("the log's disk is full"),
        "{refused:?}"
    );
    assert!(
        !refused
            .message()
            .contains(disk.path().to_str().expect("utf-8"))
    );
    wait_health(
        &server,
        "",
        ServingStatus::NotServing,
        Duration::from_secs(3),
    )
    .await;
    let ingest = health(&server, "rezef.v1.Ingest").await;
    assert_eq!(ingest, ServingStatus::NotServing);
    let journeys = health(&server, "rezef.v1.Journeys").await;
    assert_eq!(journeys, ServingStatus::Serving);
    let journey = client.journey(TENANT, customer.customer_ref(), None).await;
    assert!(journey.expect("read while full").journey.is_some());

    // When the space is freed
    disk.free();

    // Then health says SERVING again within seconds, and publishing works
    wait_health(&server, "", ServingStatus::Serving, Duration::from_secs(10)).await;
    assert_eq!(
        health(&server, "rezef.v1.Ingest").await,
        ServingStatus::Serving
    );
    let mut last = 0;
    for _ in 0..5 {
        let event = customer.intent_detected("after", 0.5, "bot");
        let ack = client.publish(vec![event.clone()]).await.expect("publish");
        acked.insert(ack.first_offset, event.event_id);
        last = ack.first_offset;
    }

    // And every acknowledged event is in the log exactly once, at its offset, and projected
    let read = client
        .journey(TENANT, customer.customer_ref(), Some(last))
        .await;
    let read = read.expect("read your writes");
    assert!(read.projected_offset > last);
    let request = proto::ReplayHistoryRequest {
        tenant_id: TENANT.into(),
        ..Default::default()
    };
    let replayed: Vec<_> = client
        .replay(request)
        .await
        .expect("replay")
        .collect::<Result<_, _>>()
        .await
        .expect("replayed");
    let mut seen: HashMap<String, u64> = HashMap::new();
    for item in &replayed {
        let id = item.event.as_ref().expect("event").event_id.clone();
        assert!(seen.insert(id.clone(), item.offset).is_none(), "{id} twice");
    }
    for (offset, id) in &acked {
        assert_eq!(seen.get(id), Some(offset), "acknowledged {id} at {offset}");
    }
    let counters = read.journey.expect("journey").counters.expect("counters");
    assert!(counters.events as usize == acked.len(), "{counters:?}");
    server.stop().await;
}
