//! The SDK's publisher against the real binary: every event it accepted arrives once and in
//! order per customer, through a `kill -9` of the server, an outage, a full spool and a
//! restart of the adapter; an event the server refuses is reported and not retried.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use rezef_adapter::retry::Backoff;
use rezef_adapter::spool::SpoolLimits;
use rezef_adapter::{Client, Error, EventFactory, Publisher, PublisherConfig, proto};
use rezef_scenarios::{RezefServer, free_port, scrape_metrics};

const TENANT: &str = "acme";

/// Customer `customer`'s web chat.
fn chat(customer: usize) -> EventFactory {
    EventFactory::new(TENANT, "sdk-test")
        .customer(format!("c-{customer}"))
        .on(proto::Channel::Webchat, format!("chat-{customer}"))
}

/// Quick to retry, so that a test does not wait for the backoff's ceiling.
fn config(spool: &Path) -> PublisherConfig {
    PublisherConfig {
        linger: Duration::from_millis(2),
        backoff: Backoff {
            base: Duration::from_millis(20),
            max: Duration::from_millis(500),
        },
        ..PublisherConfig::new(spool)
    }
}

async fn publisher(url: &str, config: PublisherConfig) -> Publisher {
    let client = Client::connect_lazy(url, None).expect("a valid address");
    Publisher::start(client, config).await.expect("starts")
}

async fn flushed(publisher: &Publisher) -> Result<(), Error> {
    (tokio::time::timeout(Duration::from_secs(60), publisher.flush()))
        .await
        .expect("flushed within a minute")
}

/// The tenant's log: each customer's event ids in log order, and how many copies in all.
async fn logged(server: &RezefServer) -> (BTreeMap<String, Vec<String>>, usize) {
    let mut client = server.client().await;
    let request = proto::ReplayHistoryRequest {
        tenant_id: TENANT.into(),
        ..Default::default()
    };
    let mut replay = std::pin::pin!(client.replay(request).await.expect("replay"));
    let mut by_customer: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut copies = 0;
    while let Some(replayed) = replay.next().await {
        let Some(event) = replayed.expect("replayed").event else {
            continue;
        };
        copies += 1;
        if let Some(proto::customer_ref::Ref::CustomerId(id)) = event.customer.and_then(|c| c.r#ref)
        {
            by_customer.entry(id).or_default().push(event.event_id);
        }
    }
    (by_customer, copies)
}

/// `ids` without the copies after each id's first.
fn first_copies(ids: &[String]) -> Vec<String> {
    let mut seen = HashSet::new();
    (ids.iter())
        .filter(|id| seen.insert(*id))
        .cloned()
        .collect()
}

/// Each customer's accepted events are in the log in the order accepted (a copy sent again
/// after a crash is later than its first), and their journeys count each once.
async fn assert_arrived_once_in_order(server: &RezefServer, accepted: &[Vec<String>]) {
    let (logged, _) = logged(server).await;
    let mut client = server.client().await;
    for (customer, ids) in accepted.iter().enumerate() {
        let key = format!("c-{customer}");
        let in_log = logged.get(&key).map(|ids| first_copies(ids));
        assert_eq!(in_log.as_ref(), Some(ids), "customer {key}");
        let journey = client.journey(TENANT, chat(customer).customer_ref(), None);
        let journey = journey.await.expect("journey").journey.expect("a journey");
        let counters = journey.counters.expect("counters");
        assert_eq!(counters.messages as usize, ids.len(), "customer {key}");
    }
}

/// `kill -9` of the server while four tasks publish, a restart on the same data directory a
/// moment later: every event the publisher accepted (while the server was up, down, and back)
/// is in the log, in order per customer, applied once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_accepted_event_arrives_once_in_order_through_a_kill_9() {
    const CUSTOMERS: usize = 8;
    const ROUNDS: usize = 150;
    let (data, spool) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let port = free_port();
    let server = RezefServer::start_on(port, data.path(), &[], None).await;
    let publisher = Arc::new(publisher(&server.url(), config(spool.path())).await);
    let accepted = Arc::new(Mutex::new(vec![Vec::new(); CUSTOMERS]));

    let tasks: Vec<_> = (0..4)
        .map(|task| {
            let (publisher, accepted) = (publisher.clone(), accepted.clone());
            tokio::spawn(async move {
                for round in 0..ROUNDS {
                    for customer in (task..CUSTOMERS).step_by(4) {
                        let event = chat(customer)
                            .message(proto::Participant::Customer, &format!("message {round}"));
                        let id = publisher.publish(event).await.expect("accepted");
                        let mut accepted = accepted.lock().unwrap_or_else(PoisonError::into_inner);
                        accepted[customer].push(id);
                    }
                }
            })
        })
        .collect();
    let count = || -> usize {
        let accepted = accepted.lock().unwrap_or_else(PoisonError::into_inner);
        accepted.iter().map(Vec::len).sum()
    };
    while count() < 300 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill9();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Accepted while the server is down: on disk, waiting.
    assert!(publisher.unsent() > 0);
    let server = RezefServer::start_on(port, data.path(), &[], None).await;
    for task in tasks {
        task.await.expect("publishes");
    }
    flushed(&publisher).await.expect("nothing refused");
    let publisher = Arc::into_inner(publisher).expect("the last handle");
    let closed = publisher
        .close(Duration::from_secs(5))
        .await
        .expect("closed");
    assert_eq!(closed.unsent, 0);

    let accepted = accepted
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    assert_eq!(
        accepted.iter().map(Vec::len).sum::<usize>(),
        CUSTOMERS * ROUNDS
    );
    assert_arrived_once_in_order(&server, &accepted).await;
}

/// With the server down, the spool takes events up to its bound and then refuses with
/// `SpoolFull` naming it; the adapter stops with them on disk, starts again once the server
/// is up, and sends them first: each arrives once, in order, and the refused one never.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_spool_refuses_and_a_restarted_adapter_sends_what_it_holds() {
    let (data, spool) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let limits = SpoolLimits {
        max_bytes: 16 * 1024,
        segment_bytes: 4 * 1024,
    };
    let bounded = || PublisherConfig {
        spool: limits,
        ..config(spool.path())
    };

    // Given no server, a publisher fills its spool
    let publisher = publisher(&url, bounded()).await;
    let mut accepted = Vec::new();
    let refused = loop {
        let event = chat(0).message(proto::Participant::Customer, "while down");
        match publisher.publish(event).await {
            Ok(id) => accepted.push(id),
            Err(error) => break error,
        }
        assert!(accepted.len() < 10_000, "the spool never filled");
    };
    assert!(
        matches!(refused, Error::SpoolFull { limit } if limit == limits.max_bytes),
        "{refused:?}"
    );
    assert!(refused.to_string().contains("16384 bytes"), "{refused}");
    // When the adapter stops with its events unsent
    let closed = publisher.close(Duration::ZERO).await.expect("closed");
    assert_eq!(closed.unsent, accepted.len() as u64);

    // Then a new publisher on the spool, the server up, sends them first
    let server = RezefServer::start_on(port, data.path(), &[], None).await;
    let publisher = self::publisher(&url, bounded()).await;
    flushed(&publisher).await.expect("nothing refused");
    // And the spool has room again, for events after them
    let later = chat(0).message(proto::Participant::Customer, "after the restart");
    accepted.push(publisher.publish(later).await.expect("room again"));
    flushed(&publisher).await.expect("nothing refused");
    assert_eq!(
        publisher
            .close(Duration::ZERO)
            .await
            .expect("closed")
            .unsent,
        0
    );
    let (_, copies) = logged(&server).await;
    assert_eq!(copies, accepted.len(), "no copy sent twice without a crash");
    assert_arrived_once_in_order(&server, &[accepted]).await;
}

/// An event the server refuses (`INVALID_ARGUMENT`) comes back from `flush` by its id and is
/// sent no more: in its batch, then alone, never again; its batch-mates arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_event_is_reported_by_id_and_not_retried() {
    let (data, spool) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let metrics = free_port();
    let listen = format!("127.0.0.1:{metrics}");
    let server = RezefServer::start_with(data.path(), &["--metrics-listen", &listen]).await;
    let publisher = publisher(&server.url(), config(spool.path())).await;

    // Given a batch with an event without its time, between two good ones
    let good = || chat(0).message(proto::Participant::Customer, "fine");
    let mut bad = chat(0).message(proto::Participant::Customer, "no time");
    bad.occurred_at = None;
    let ids = publisher
        .publish_all(vec![good(), bad, good()])
        .await
        .expect("accepted: the spool does not judge events");

    // When flushed, then the bad one is named, with the server's answer
    let Err(Error::Rejected(refused)) = flushed(&publisher).await else {
        panic!("expected the event refused");
    };
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].event_id, ids[1]);
    assert_eq!(refused[0].status.code(), tonic::Code::InvalidArgument);
    assert!(refused[0].status.message().contains("occurred_at"));
    assert_eq!(publisher.unsent(), 0, "no longer spooled");

    // And it was sent twice in all (its batch, then alone), not retried after
    tokio::time::sleep(Duration::from_millis(500)).await;
    let calls = scrape_metrics(metrics).await;
    let publish = |code: &str| {
        let series = format!(
            "rezef_grpc_requests_total{{service=\"rezef.v1.Ingest\",method=\"Publish\",code=\"{code}\"}}"
        );
        calls.get(&series).copied().unwrap_or_default()
    };
    assert_eq!(publish("INVALID_ARGUMENT"), 2.0);
    assert_eq!(publish("OK"), 2.0, "each good event alone");
    assert!(flushed(&publisher).await.is_ok(), "reported once");
    assert_arrived_once_in_order(&server, &[vec![ids[0].clone(), ids[2].clone()]]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conformance_check_tells_safe_retries_from_unsafe_ones() {
    use rezef_adapter::conformance::{self, Rule};
    let data = tempfile::tempdir().expect("dir");
    let server = RezefServer::start(data.path()).await;
    let mut client = server.client().await;

    // Given an adapter that derives its events' ids from its input
    let stable = || {
        let mut events = vec![
            chat(7).interaction_started(proto::Direction::Inbound),
            chat(7).message(proto::Participant::Customer, "my bill is wrong"),
        ];
        for (n, event) in events.iter_mut().enumerate() {
            event.event_id = format!("sdk-test:chat-7:{n}");
        }
        events
    };
    // When the same input is delivered again, then the journey does not change
    let report = conformance::retries_are_safe(&mut client, stable)
        .await
        .expect("the server answers");
    report.assert_conforms();

    // Given one that gives its events new ids each time (EventFactory's fresh ids)
    let fresh = || vec![chat(8).message(proto::Participant::Customer, "my bill is wrong")];
    // When the input comes again, then the message is applied twice, and the check says so
    let report = conformance::retries_are_safe(&mut client, fresh)
        .await
        .expect("the server answers");
    let details: Vec<&str> = report.findings.iter().map(|f| f.detail.as_str()).collect();
    assert_eq!(report.findings.len(), 2, "{details:?}");
    assert!(report.findings.iter().all(|f| f.rule == Rule::SafeRetry));
    assert!(details[0].contains("1 events sent again, 0 counted as duplicates"));
    assert!(details[1].contains("the journey changed"));
}
