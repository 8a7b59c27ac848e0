//! The publisher honours the server's `RetryInfo`: an `Ingest` that answers its first calls
//! `UNAVAILABLE` or `RESOURCE_EXHAUSTED` with a delay sees the next call no sooner, even when
//! the publisher's own backoff is far shorter. (What the real server does on a kill, an
//! outage or a refusal is in the scenarios, `tests/tests/adapter.rs`.)

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rezef_adapter::proto::{self, ingest_server};
use rezef_adapter::retry::Backoff;
use rezef_adapter::{Client, EventFactory, Publisher, PublisherConfig};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};

const RETRY_AFTER: Duration = Duration::from_millis(300);

/// Answers its first calls with `refusals` in turn, then acknowledges; records when each
/// call came.
struct Scripted {
    refusals: Mutex<Vec<tonic::Code>>,
    calls: Arc<Mutex<Vec<Instant>>>,
}

#[tonic::async_trait]
impl ingest_server::Ingest for Scripted {
    async fn publish(
        &self,
        request: Request<proto::PublishRequest>,
    ) -> Result<Response<proto::PublishResponse>, Status> {
        self.calls
            .lock()
            .expect("not poisoned")
            .push(Instant::now());
        let refusal = self.refusals.lock().expect("not poisoned").pop();
        if let Some(code) = refusal {
            let details = ErrorDetails::with_retry_info(Some(RETRY_AFTER));
            return Err(Status::with_error_details(code, "come back later", details));
        }
        let count = request.into_inner().events.len() as u32;
        Ok(Response::new(proto::PublishResponse {
            count,
            ..Default::default()
        }))
    }

    type PublishStreamStream = tokio_stream::Empty<Result<proto::PublishStreamResponse, Status>>;

    async fn publish_stream(
        &self,
        _: Request<tonic::Streaming<proto::PublishRequest>>,
    ) -> Result<Response<Self::PublishStreamStream>, Status> {
        Err(Status::unimplemented("not here"))
    }
}

#[tokio::test]
async fn given_retry_info_when_refused_then_the_publisher_waits_as_told() {
    // Given a server that asks twice to come back in 300 ms
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let addr = listener.local_addr().expect("bound");
    let calls = Arc::new(Mutex::new(Vec::new()));
    let refusals = vec![tonic::Code::ResourceExhausted, tonic::Code::Unavailable];
    let server = Scripted {
        refusals: Mutex::new(refusals),
        calls: calls.clone(),
    };
    let router =
        tonic::transport::Server::builder().add_service(ingest_server::IngestServer::new(server));
    tokio::spawn(router.serve_with_incoming(TcpListenerStream::new(listener)));

    // When a publisher whose own backoff is 1-5 ms publishes an event
    let spool = tempfile::tempdir().expect("tempdir");
    let config = PublisherConfig {
        backoff: Backoff {
            base: Duration::from_millis(1),
            max: Duration::from_millis(5),
        },
        ..PublisherConfig::new(spool.path())
    };
    let client = Client::connect_lazy(format!("http://{addr}"), None).expect("an address");
    let publisher = Publisher::start(client, config).await.expect("starts");
    let chat = EventFactory::new("acme", "web-chat").customer("c-1");
    publisher
        .publish(chat.message(proto::Participant::Customer, "hi"))
        .await
        .expect("accepted");
    tokio::time::timeout(Duration::from_secs(10), publisher.flush())
        .await
        .expect("flushed in time")
        .expect("acknowledged");

    // Then it came back three times, each no sooner than it was told
    let calls = calls.lock().expect("not poisoned").clone();
    assert_eq!(calls.len(), 3);
    for pair in calls.windows(2) {
        let waited = pair[1] - pair[0];
        assert!(waited >= RETRY_AFTER, "waited {waited:?}");
    }
    assert_eq!(publisher.unsent(), 0);
}
