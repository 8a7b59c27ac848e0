//! Streams the server ends by shutting down end `UNAVAILABLE`, never as if complete. Given
//! an open replay whose reader paused and an open watch, when the server shuts down, then
//! the replay serves what it had sent and ends `UNAVAILABLE`, and so does the watch.

mod common;

use common::{Running, chat};
use futures::StreamExt;
use rezef_adapter::proto;
use rezef_server::Limits;
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_and_a_watch_cut_by_shutdown_end_unavailable() {
    let server = Running::start(Limits::default()).await;
    let mut client = server.client().await;
    let visitor = chat("acme", "v-1");
    // More than the server buffers for one stream: the replay waits on its reader.
    for batch in 0..20 {
        let events = (0..200)
            .map(|i| visitor.message(proto::Participant::Customer, &format!("line {batch}-{i}")))
            .collect();
        client.publish(events).await.expect("published");
    }
    let request = proto::ReplayHistoryRequest {
        tenant_id: "acme".into(),
        ..Default::default()
    };
    let mut replay = client.replay(request).await.expect("replay");
    replay.next().await.expect("a first event").expect("ok");
    let mut watch = client
        .journeys()
        .watch_journey(proto::WatchJourneyRequest {
            from_offset: None,
            tenant_id: "acme".into(),
            customer: Some(visitor.customer_ref()),
        })
        .await
        .expect("watch")
        .into_inner();
    watch.next().await.expect("the journey").expect("ok");

    let stopped = tokio::spawn(server.stop());
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mut served = 1;
    let ended = loop {
        match replay.next().await {
            Some(Ok(_)) => served += 1,
            Some(Err(error)) => break Some(error),
            None => break None,
        }
    };
    assert!(served < 4_000, "the replay was cut short");
    let status = match ended.expect("the replay ends with an error, not as if complete") {
        rezef_adapter::Error::Status(status) => status,
        other => panic!("a status, not {other:?}"),
    };
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(status.message().contains("shutting down"), "{status:?}");
    // After the updates it had queued (the projection was still catching up).
    let watched = loop {
        match watch.next().await.expect("the watch ends with a status") {
            Ok(_) => continue,
            Err(status) => break status,
        }
    };
    assert_eq!(watched.code(), Code::Unavailable, "{watched:?}");
    stopped.await.expect("stopped");
}
