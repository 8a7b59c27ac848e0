//! `/metrics` of a real server: what publishing, reading and routing do to the figures, read
//! over HTTP and parsed (not grepped), a disabled endpoint that does not listen, and a
//! listen address the server refuses saying which setting it is.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use rezef_adapter::{AgentSession, Client, proto};
use rezef_server::{MetricsSettings, ProjectionSettings, Server, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;

use common::{Running, chat, status_of};

const TENANT: &str = "acme";

const ROUTING: &str = r#"
version = 1
default_queue = "general"

[[queues]]
id = "general"
steps = [{ after = "0s" }]
"#;

/// One sample: the metric's name and its labels.
type Series = (String, BTreeMap<String, String>);

/// A scrape, parsed: every sample's value by name and labels.
#[derive(Debug)]
struct Scraped(BTreeMap<Series, f64>);

impl Scraped {
    /// The value of `name` with exactly `labels`, if exposed.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let labels = (labels.iter())
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.0.get(&(name.to_owned(), labels)).copied()
    }

    /// As [`Scraped::get`], 0 when absent (a counter not counted yet).
    fn count(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels).unwrap_or(0.0)
    }
}

/// `GET /metrics` over a plain TCP connection: the status line, the content type, the body.
async fn get(addr: SocketAddr, path: &str) -> (String, String, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: rezef\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    let (head, body) = response.split_once("\r\n\r\n").expect("a response");
    let status = head.lines().next().unwrap_or_default().to_owned();
    let content_type = (head.lines())
        .find_map(|line| line.strip_prefix("content-type: "))
        .unwrap_or_default()
        .to_owned();
    (status, content_type, body.to_owned())
}

async fn scrape(addr: SocketAddr) -> Scraped {
    let (status, content_type, body) = get(addr, "/metrics").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    Scraped(parse(&body))
}

/// Prometheus's text format: `name{label="value",...} value` lines, `#` comments.
fn parse(text: &str) -> BTreeMap<Series, f64> {
    let mut samples = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (series, value) = line.rsplit_once(' ').expect("a value");
        let value: f64 = value.parse().expect("a number");
        let (name, labels) = match series.split_once('{') {
            Some((name, labels)) => (name, labels.strip_suffix('}').expect("closed labels")),
            None => (series, ""),
        };
        let labels = (labels.split(',').filter(|l| !l.is_empty()))
            .map(|label| {
                let (key, value) = label.split_once('=').expect("key=value");
                let value = value.trim_matches('"');
                (key.to_owned(), value.to_owned())
            })
            .collect();
        let previous = samples.insert((name.to_owned(), labels), value);
        assert!(previous.is_none(), "{line} twice");
    }
    samples
}

fn with_metrics() -> ServerConfig {
    ServerConfig {
        metrics: MetricsSettings {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        },
        projection: ProjectionSettings {
            checkpoint_interval_ms: 50,
            ..ProjectionSettings::default()
        },
        ..ServerConfig::default()
    }
}

const PUBLISH: [(&str, &str); 2] = [("service", "rezef.v1.Ingest"), ("method", "Publish")];
const GET_JOURNEY: [(&str, &str); 2] = [("service", "rezef.v1.Journeys"), ("method", "GetJourney")];

fn with_code<'a>(method: [(&'a str, &'a str); 2], code: &'a str) -> [(&'a str, &'a str); 3] {
    [method[0], method[1], ("code", code)]
}

#[tokio::test]
async fn publishing_and_reading_move_the_counters_by_what_was_done() {
    // Given a server with metrics, scraped once before anything is done
    let server = Running::start_with(with_metrics()).await;
    let addr = server.metrics.expect("metrics are served");
    let mut client = server.client().await;
    let before = scrape(addr).await;
    assert_eq!(before.count("rezef_ingest_events_appended_total", &[]), 0.0);

    // When two batches (3 and 2 events) are published, one is refused, and journeys are read
    let first = chat(TENANT, "v-1");
    let second = chat(TENANT, "v-2");
    client
        .publish(vec![
            first.interaction_started(proto::Direction::Inbound),
            first.intent_detected("billing.dispute", 0.9, "bot"),
            first.context("invoice", "INV-7", false),
        ])
        .await
        .expect("published");
    let ack = client
        .publish(vec![
            second.interaction_started(proto::Direction::Inbound),
            second.intent_detected("billing.dispute", 0.9, "bot"),
        ])
        .await
        .expect("published");
    let refused = status_of(client.publish(Vec::new()).await);
    assert_eq!(refused.code(), Code::InvalidArgument);
    let last = ack.first_offset + 1;
    client
        .journey(TENANT, second.customer_ref(), Some(last))
        .await
        .expect("a journey");
    let unknown = chat(TENANT, "nobody");
    let missing = status_of(client.journey(TENANT, unknown.customer_ref(), None).await);
    assert_eq!(missing.code(), Code::NotFound);
    let after = scrape(addr).await;

    // Then the ingest figures moved by exactly that
    let moved = |name: &str, labels: &[(&str, &str)]| {
        after.count(name, labels) - before.count(name, labels)
    };
    assert_eq!(moved("rezef_ingest_events_appended_total", &[]), 5.0);
    assert_eq!(
        moved("rezef_ingest_batches_total", &[("result", "OK")]),
        2.0
    );
    let invalid = [("result", "INVALID_ARGUMENT")];
    assert_eq!(moved("rezef_ingest_batches_total", &invalid), 1.0);
    assert_eq!(moved("rezef_ingest_append_seconds_count", &[]), 2.0);
    let inf = [("le", "+Inf")];
    assert_eq!(moved("rezef_ingest_append_seconds_bucket", &inf), 2.0);
    assert!(after.count("rezef_ingest_append_seconds_sum", &[]) > 0.0);
    // ...and every call is counted by method and code, and timed
    assert_eq!(
        moved("rezef_grpc_requests_total", &with_code(PUBLISH, "OK")),
        2.0
    );
    let refused = with_code(PUBLISH, "INVALID_ARGUMENT");
    assert_eq!(moved("rezef_grpc_requests_total", &refused), 1.0);
    let read = with_code(GET_JOURNEY, "OK");
    assert_eq!(moved("rezef_grpc_requests_total", &read), 1.0);
    let not_found = with_code(GET_JOURNEY, "NOT_FOUND");
    assert_eq!(moved("rezef_grpc_requests_total", &not_found), 1.0);
    assert_eq!(moved("rezef_grpc_request_seconds_count", &GET_JOURNEY), 2.0);
    assert_eq!(moved("rezef_grpc_request_seconds_count", &PUBLISH), 3.0);
    // ...and the scraped figures say where the node stands
    let partition = [("partition", "0")];
    assert_eq!(after.get("rezef_partition_owned", &partition), Some(1.0));
    assert_eq!(
        after.get("rezef_projector_lag_records", &partition),
        Some(0.0)
    );
    assert_eq!(
        after.get("rezef_projector_lag_seconds", &partition),
        Some(0.0)
    );
    assert!(after.count("rezef_log_disk_bytes", &[]) > 0.0);
    assert!(after.get("rezef_store_disk_bytes", &[]).is_some());
    let journeys = [("share", "journeys")];
    assert!(
        after
            .get("rezef_journey_cache_hits_total", &journeys)
            .is_some()
    );
    assert!(
        after
            .get("rezef_journey_cache_misses_total", &journeys)
            .is_some()
    );
    server.stop().await;
}

#[tokio::test]
async fn queues_agents_and_open_streams_are_read_when_scraped() {
    // Given a tenant's routing with one queue, an agent logged in but away, and a contact
    // of a known customer routed while no one is free
    let server = Running::start_with(with_metrics()).await;
    let addr = server.metrics.expect("metrics are served");
    let client = server.client().await;
    configure(&client).await;
    let customer = chat(TENANT, "v-1");
    let mut publisher = client.clone();
    let ack = publisher
        .publish(vec![
            customer.interaction_started(proto::Direction::Inbound),
        ])
        .await
        .expect("published");
    publisher
        .journey(TENANT, customer.customer_ref(), Some(ack.first_offset))
        .await
        .expect("projected");
    let profile = proto::AgentProfile {
        agent_id: "dana".into(),
        capacity: [("voice".to_owned(), 1)].into(),
        max_load: 1,
        ..Default::default()
    };
    let session = AgentSession::login(&client, TENANT, profile, Some(proto::Presence::Away))
        .await
        .expect("logged in");
    let routed = (client.routing())
        .route_interaction(proto::RouteInteractionRequest {
            tenant_id: TENANT.into(),
            customer: Some(customer.customer_ref()),
            interaction_id: "call-1".into(),
            channel: proto::Channel::Voice as i32,
            ..Default::default()
        })
        .await
        .expect("routed")
        .into_inner();
    assert_eq!(routed.outcome, proto::RouteOutcome::Queued as i32);
    tokio::time::sleep(Duration::from_millis(20)).await;

    // When scraped
    let scraped = scrape(addr).await;

    // Then the queue shows its waiting contact, the agent its presence, the session its stream
    let queue = [("tenant", TENANT), ("queue", "general")];
    assert_eq!(
        scraped.get("rezef_routing_queue_waiting", &queue),
        Some(1.0)
    );
    let oldest = scraped.get("rezef_routing_queue_oldest_wait_seconds", &queue);
    assert!(oldest.is_some_and(|wait| wait > 0.0), "{oldest:?}");
    let away = [("tenant", TENANT), ("presence", "away")];
    assert_eq!(scraped.get("rezef_routing_agents", &away), Some(1.0));
    let sessions = [("service", "rezef.v1.Routing"), ("method", "AgentSession")];
    assert_eq!(scraped.get("rezef_grpc_open_streams", &sessions), Some(1.0));
    let watches = [("service", "rezef.v1.Journeys"), ("method", "WatchJourney")];
    assert_eq!(scraped.get("rezef_grpc_open_streams", &watches), Some(0.0));

    // ...and once the session ends its stream is counted closed
    drop(session);
    let closed = async {
        loop {
            let scraped = scrape(addr).await;
            if scraped.get("rezef_grpc_open_streams", &sessions) == Some(0.0) {
                return scraped;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let scraped = tokio::time::timeout(Duration::from_secs(10), closed)
        .await
        .expect("the stream closes");
    let ended: f64 = ["OK", "CANCELLED"]
        .iter()
        .map(|code| scraped.count("rezef_grpc_requests_total", &with_code(sessions, code)))
        .sum();
    assert_eq!(ended, 1.0);
    server.stop().await;
}

async fn configure(client: &Client) {
    (client.routing())
        .set_routing_config(proto::SetRoutingConfigRequest {
            tenant_id: TENANT.into(),
            config: ROUTING.into(),
        })
        .await
        .expect("configured");
}

#[tokio::test]
async fn only_metrics_is_served_there() {
    let server = Running::start_with(with_metrics()).await;
    let addr = server.metrics.expect("metrics are served");
    let (status, _, _) = get(addr, "/").await;
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    server.stop().await;
}

#[tokio::test]
async fn a_disabled_endpoint_does_not_listen() {
    // Given a free port, named as the metrics' address of a server with metrics off
    let free = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let port = free.local_addr().expect("addr");
    drop(free);
    let config = ServerConfig {
        metrics: MetricsSettings {
            enabled: false,
            listen: port,
        },
        ..ServerConfig::default()
    };

    // When the server runs
    let server = Running::start_with(config).await;

    // Then nothing listens there
    assert_eq!(server.metrics, None);
    let connected = tokio::net::TcpStream::connect(port).await;
    assert!(connected.is_err(), "something listens on {port}");
    server.stop().await;
}

#[tokio::test]
async fn a_metrics_address_the_server_cannot_use_is_refused_naming_the_setting() {
    let dir = tempfile::tempdir().expect("dir");
    let data_dir = dir.path().to_owned();

    // The gRPC port itself
    let same = ServerConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 50_999)),
        data_dir: data_dir.clone(),
        metrics: MetricsSettings {
            enabled: true,
            listen: SocketAddr::from(([0, 0, 0, 0], 50_999)),
        },
        ..ServerConfig::default()
    };
    let said = Server::open(same).await.expect_err("refused").to_string();
    assert!(
        said.contains("metrics.listen must be another port than listen"),
        "{said}"
    );

    // A port already taken
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let busy = taken.local_addr().expect("addr");
    let config = ServerConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir,
        metrics: MetricsSettings {
            enabled: true,
            listen: busy,
        },
        ..ServerConfig::default()
    };
    let said = Server::open(config).await.expect_err("refused").to_string();
    assert!(
        said.contains(&format!("metrics endpoint (metrics.listen) {busy}")),
        "{said}"
    );
}
