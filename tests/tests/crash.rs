//! Every acknowledged event survives `kill -9` and is projected exactly once.

use std::time::Duration;

use futures::StreamExt;

use rezef_adapter::proto;
use rezef_scenarios::RezefServer;
use rezef_scenarios::durability::{
    Acked, TENANT, acked_len, factory, publish_until_killed, verify,
};
use rezef_scenarios::kafka::KafkaTopic;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_survive_kill_9_and_are_projected_once() {
    survive_kill_9(&[]).await;
}

/// The same on a Kafka topic (`rezef serve --log kafka`), against the broker that
/// `scripts/kafka-broker` starts (`.ci/run` exports its address as `KAFKA_BROKERS`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_kafka_acknowledged_events_survive_kill_9_and_are_projected_once() {
    let Some(flags) = kafka_flags("crash") else {
        return eprintln!("skipped: KAFKA_BROKERS is not set");
    };
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    survive_kill_9(&flags).await;
}

/// `rezef` flags for a new topic on the broker in `KAFKA_BROKERS` (`None` without one).
fn kafka_flags(what: &str) -> Option<Vec<String>> {
    KafkaTopic::fresh(what).map(|topic| topic.flags(1))
}

/// Publishers run while the server is killed twice; then every acknowledged event is in the
/// log at its offset and every journey counts its events once.
async fn survive_kill_9(flags: &[&str]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let acked = Acked::default();

    // Two crashes in the middle of concurrent publishing.
    for _ in 0..2 {
        let server = RezefServer::start_with(dir.path(), flags).await;
        server
            .wait_ready(TENANT, &[factory(0).customer_ref()])
            .await;
        let publishing = tokio::spawn(publish_until_killed(server.url(), 4, acked.clone()));
        // Let some batches through, then kill without warning.
        let before = acked_len(&acked);
        while acked_len(&acked) < before + 400 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        server.kill9();
        publishing.await.expect("publishers end");
    }

    let server = RezefServer::start_with(dir.path(), flags).await;
    server
        .wait_ready(TENANT, &[factory(0).customer_ref()])
        .await;
    let mut client = server.client().await;
    let acked = acked.lock().expect("lock").clone();
    assert!(acked.len() >= 800);
    let verdict = verify(&mut client, &acked).await.expect("verified");
    assert!(verdict.is_clean(), "{verdict:?}");

    // A retry of an acknowledged event after the crash is recorded but not applied again.
    let (id, (_, customer)) = acked.iter().next().expect("one");
    let mut retry = factory(*customer).message(proto::Participant::Customer, "hi");
    retry.event_id = id.clone();
    let ack = client.publish(vec![retry]).await.expect("retry accepted");
    let journey = client
        .journey(
            TENANT,
            factory(*customer).customer_ref(),
            Some(ack.first_offset),
        )
        .await
        .expect("journey")
        .journey
        .expect("journey");
    assert_eq!(journey.counters.expect("counters").duplicates_ignored, 1);

    // Through both crashes (their torn tails cut at restart), the embedded log's hash chain
    // is whole: `rezef verify` vouches for it.
    if flags.is_empty() {
        assert!(server.terminate().success());
        let data_dir = dir.path().display().to_string();
        let verified = rezef_scenarios::rezef(&["verify", "--data-dir", &data_dir], None);
        let out = String::from_utf8_lossy(&verified.stdout);
        assert!(
            verified.status.success() && out.contains(": intact"),
            "{out}"
        );
    }
}

/// A customer forgotten while publishers run, the server killed at once: after the restart
/// every acknowledged event is there once, the forgotten customer's read erased (replay and
/// journey) and the other customers' whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_forgotten_just_before_kill_9_stays_forgotten() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acked = Acked::default();
    let server = RezefServer::start(dir.path()).await;
    server
        .wait_ready(TENANT, &[factory(0).customer_ref()])
        .await;
    let mut client = server.client().await;
    let dana = rezef_adapter::EventFactory::new(TENANT, "web-chat")
        .identity(proto::IdentityKind::ChatVisitor, "v-dana")
        .on(proto::Channel::Webchat, "chat-dana");
    let ack = (client.publish(vec![
        dana.interaction_started(proto::Direction::Inbound),
        dana.message(proto::Participant::Customer, "my card is 4580 1234"),
    ]))
    .await
    .expect("published");
    let journey = (client.journey(TENANT, dana.customer_ref(), Some(ack.first_offset + 1)))
        .await
        .expect("projected")
        .journey
        .expect("a journey");

    let publishing = tokio::spawn(publish_until_killed(server.url(), 4, acked.clone()));
    while acked_len(&acked) < 200 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let request = proto::ForgetCustomerRequest {
        tenant_id: TENANT.into(),
        customer_id: journey.customer_id.clone(),
        reason: "DSR-1".into(),
    };
    let forgotten = client.identities().forget_customer(request).await;
    let forgotten = forgotten.expect("forgotten").into_inner();
    server.kill9();
    publishing.await.expect("publishers end");

    let server = RezefServer::start(dir.path()).await;
    server
        .wait_ready(TENANT, &[factory(0).customer_ref()])
        .await;
    let mut client = server.client().await;
    let acked = acked.lock().expect("lock").clone();
    let verdict = verify(&mut client, &acked).await.expect("verified");
    assert!(verdict.is_clean(), "{verdict:?}");
    let by_id = |id: &str| proto::CustomerRef {
        r#ref: Some(proto::customer_ref::Ref::CustomerId(id.into())),
    };
    let journey = (client.journey(TENANT, by_id(&journey.customer_id), Some(forgotten.offset)))
        .await
        .expect("the journey")
        .journey
        .expect("a journey");
    let identity = journey.identities[0].identity.as_ref().expect("identity");
    assert!(identity.value.starts_with("erased:"), "{identity:?}");
    let replayed = |customer: proto::CustomerRef| {
        let mut client = client.clone();
        async move {
            let request = proto::ReplayHistoryRequest {
                tenant_id: TENANT.into(),
                customer: Some(customer),
                ..Default::default()
            };
            let stream = client.replay(request).await.expect("replayed");
            let replayed: Vec<_> = stream.collect().await;
            (replayed.into_iter())
                .filter_map(|r| r.expect("replayed").event)
                .collect::<Vec<_>>()
        }
    };
    let hers = replayed(by_id(&journey.customer_id)).await;
    assert!(
        hers.iter()
            .filter(|e| e.source == "web-chat")
            .all(|e| e.erased)
    );
    assert!(!hers.iter().any(|e| format!("{e:?}").contains("4580")));
    let theirs = replayed(factory(1).customer_ref()).await;
    assert!(!theirs.is_empty() && theirs.iter().all(|e| !e.erased));
}

/// `rezef rebuild --log kafka` folds the topic again into a fresh store: the journeys come back
/// the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_kafka_rebuild_folds_the_topic_again() {
    let Some(flags) = kafka_flags("rebuild") else {
        return eprintln!("skipped: KAFKA_BROKERS is not set");
    };
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let journeys = |server: &RezefServer, last: u64| {
        let url = server.url();
        async move {
            let mut client = rezef_adapter::Client::connect(url).await.expect("connect");
            let mut counted = Vec::new();
            for customer in 0..3 {
                let journey = client
                    .journey(
                        TENANT,
                        proto::CustomerRef {
                            r#ref: Some(proto::customer_ref::Ref::CustomerId(format!(
                                "c-{customer}"
                            ))),
                        },
                        Some(last),
                    )
                    .await
                    .expect("journey")
                    .journey
                    .expect("journey");
                counted.push(journey.counters.expect("counters").events);
            }
            counted
        }
    };

    let server = RezefServer::start_with(dir.path(), &flags).await;
    server
        .wait_ready(TENANT, &[factory(0).customer_ref()])
        .await;
    let mut client = server.client().await;
    let events: Vec<_> = (0..30)
        .map(|i| factory(i % 3).message(proto::Participant::Customer, "hi"))
        .collect();
    let ack = client.publish(events).await.expect("published");
    let last = ack.first_offset + 29;
    let before = journeys(&server, last).await;
    assert_eq!(before, [10, 10, 10]);
    assert!(server.terminate().success());

    let mut args = vec!["rebuild", "--data-dir"];
    let data_dir = dir.path().to_str().expect("utf-8 path");
    args.push(data_dir);
    args.extend(&flags);
    let rebuilt = rezef_scenarios::rezef(&args, None);
    let stderr = String::from_utf8_lossy(&rebuilt.stderr);
    assert!(rebuilt.status.success(), "{stderr}");
    assert!(stderr.contains("from 30 records"), "{stderr}");

    let server = RezefServer::start_with(dir.path(), &flags).await;
    server
        .wait_ready(TENANT, &[factory(0).customer_ref()])
        .await;
    assert_eq!(journeys(&server, last).await, before);
    assert!(server.terminate().success());
}

/// A store that has folded more than the log holds (the log was restored from an older
/// backup, or lost segments) makes `rezef serve` refuse to start, naming both offsets and
/// the fix; after `rezef rebuild` it serves again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_ahead_of_its_log_refuses_to_start_until_rebuilt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = RezefServer::start(dir.path()).await;
    let mut client = server.client().await;
    let events: Vec<_> = (0..30)
        .map(|i| factory(i % 3).message(proto::Participant::Customer, "hi"))
        .collect();
    let ack = client.publish(events).await.expect("published");
    server
        .wait_ready(TENANT, &[factory(0).customer_ref()])
        .await;
    let _ = client
        .journey(
            TENANT,
            factory(0).customer_ref(),
            Some(ack.first_offset + 29),
        )
        .await
        .expect("projected");
    assert!(server.terminate().success());

    // The log goes back to nothing; the store still says 30.
    std::fs::remove_dir_all(dir.path().join("log")).expect("log removed");
    let data_dir = dir.path().to_str().expect("utf-8 path");
    let refused = rezef_scenarios::rezef(
        &["serve", "--listen", "127.0.0.1:0", "--data-dir", data_dir],
        None,
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(
        stderr.contains("offset 30") && stderr.contains("ends at 0"),
        "{stderr}"
    );
    assert!(stderr.contains("rezef rebuild"), "{stderr}");

    let rebuilt = rezef_scenarios::rezef(&["rebuild", "--data-dir", data_dir], None);
    assert!(
        rebuilt.status.success(),
        "{}",
        String::from_utf8_lossy(&rebuilt.stderr)
    );
    let server = RezefServer::start(dir.path()).await;
    assert!(server.terminate().success());
}
