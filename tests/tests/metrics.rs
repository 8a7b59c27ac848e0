//! `rezef serve --metrics-listen`: the real binary serves Prometheus's `/metrics` there, and
//! what a client publishes shows in it (that a node without it does not listen is
//! `crates/rezef-server/tests/metrics.rs`).

use rezef_adapter::{EventFactory, proto};
use rezef_scenarios::{RezefServer, free_port, scrape_metrics as scrape};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_metrics_listen_exposes_what_was_published() {
    // Given `rezef serve --metrics-listen` on a free port
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let server = RezefServer::start_with(dir.path(), &["--metrics-listen", &listen]).await;
    let before = scrape(port).await;
    assert_eq!(before.get("rezef_ingest_events_appended_total"), Some(&0.0));

    // When a batch of two events is published
    let chat = EventFactory::new("acme", "web-chat")
        .identity(proto::IdentityKind::ChatVisitor, "visitor-1")
        .on(proto::Channel::Webchat, "chat-1");
    let mut client = server.client().await;
    client
        .publish(vec![
            chat.interaction_started(proto::Direction::Inbound),
            chat.intent_detected("billing.dispute", 0.9, "bot"),
        ])
        .await
        .expect("published");

    // Then /metrics counts the events, the batch and the call
    let after = scrape(port).await;
    assert_eq!(after.get("rezef_ingest_events_appended_total"), Some(&2.0));
    assert_eq!(
        after.get("rezef_ingest_batches_total{result=\"OK\"}"),
        Some(&1.0)
    );
    let publish =
        "rezef_grpc_requests_total{service=\"rezef.v1.Ingest\",method=\"Publish\",code=\"OK\"}";
    assert_eq!(after.get(publish), Some(&1.0));
    assert_eq!(
        after.get("rezef_partition_owned{partition=\"0\"}"),
        Some(&1.0)
    );
}
