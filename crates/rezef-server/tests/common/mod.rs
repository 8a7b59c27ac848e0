//! What the gRPC tests share: a real server on loopback over a temp data directory.

#![allow(dead_code)] // each test file uses its own part

pub mod ca;
pub mod morning;
pub mod raw;

use std::net::SocketAddr;
use std::sync::Arc;

use rezef_adapter::{Client, EventFactory, proto};
use rezef_server::{Clock, Limits, ManualClock, Server, ServerConfig, SystemClock};

pub struct Running {
    pub addr: SocketAddr,
    /// Where `/metrics` is served, when the config enables it.
    pub metrics: Option<SocketAddr>,
    /// Where the dashboard is served (on by default, on a free port in tests).
    pub dashboard: Option<SocketAddr>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<rezef_server::Result<()>>>,
    dir: tempfile::TempDir,
    /// The server's cache of journeys.
    pub cache: rezef_store::JourneyCache,
}

impl Running {
    pub async fn start(limits: Limits) -> Self {
        Self::start_with(ServerConfig {
            limits,
            ..ServerConfig::default()
        })
        .await
    }

    /// A server with `config`, listening on a free loopback port, with data in a temp dir.
    pub async fn start_with(config: ServerConfig) -> Self {
        Self::start_with_clock(config, Arc::new(SystemClock)).await
    }

    /// As [`Running::start_with`], with routing on a [`ManualClock`] that starts at the real
    /// time and moves only when the test advances it.
    pub async fn start_manual(config: ServerConfig) -> (Self, ManualClock) {
        let clock = ManualClock::new(rezef_events::Timestamp::now());
        let server = Self::start_with_clock(config, Arc::new(clock.clone())).await;
        (server, clock)
    }

    /// As [`Running::start_with`], with routing on `clock`.
    pub async fn start_with_clock(config: ServerConfig, clock: Arc<dyn Clock>) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        Self::start_in(config, clock, dir).await
    }

    /// A server with `config` over the data directory `dir` (one a stopped server kept).
    pub async fn start_in(
        config: ServerConfig,
        clock: Arc<dyn Clock>,
        dir: tempfile::TempDir,
    ) -> Self {
        let mut config = ServerConfig {
            listen: "127.0.0.1:0".parse().expect("addr"),
            data_dir: dir.path().to_path_buf(),
            ..config
        };
        config.dashboard.listen.set_port(0);
        let server = Server::open(config).await.expect("open").with_clock(clock);
        let addr = server.local_addr();
        let metrics = server.metrics_addr();
        let dashboard = server.dashboard_addr();
        let cache = server.journey_cache().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(server.run(async {
            let _ = stopped.await;
        }));
        Self {
            addr,
            metrics,
            dashboard,
            stop: Some(stop),
            task: Some(task),
            dir,
            cache,
        }
    }

    /// A server over a key file holding `keys`; their tokens, in order.
    pub async fn with_keys(keys: Vec<rezef_auth::NewKey>) -> (Self, Vec<String>) {
        let dir = tempfile::tempdir().expect("dir");
        let file = rezef_auth::KeyFile::new(dir.path().join("keys.json"));
        let tokens = (keys.into_iter())
            .map(|key| file.create(key, 1).expect("key").1.to_string())
            .collect();
        let server = Self::start_in(ServerConfig::default(), Arc::new(SystemClock), dir).await;
        (server, tokens)
    }

    /// A client sending `token`.
    pub async fn client_with(&self, token: &str) -> Client {
        (self.client().await)
            .with_token(token.to_owned())
            .expect("a token")
    }

    pub async fn client(&self) -> Client {
        Client::connect(format!("http://{}", self.addr))
            .await
            .expect("connect")
    }

    pub async fn stop(self) {
        self.stop_keeping().await;
    }

    /// Stops cleanly and gives back the data directory, to start again over it.
    pub async fn stop_keeping(mut self) -> tempfile::TempDir {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("joins").expect("clean shutdown");
        }
        self.dir
    }
}

pub fn chat(tenant: &str, visitor: &str) -> EventFactory {
    EventFactory::new(tenant, "web-chat")
        .identity(proto::IdentityKind::ChatVisitor, visitor)
        .on(proto::Channel::Webchat, format!("chat-{visitor}"))
}

/// Given a customer who chatted in Arabic about a disputed bill (intent `billing.dispute`),
/// projected: their chat.
pub async fn arabic_billing_chat(client: &mut Client, tenant: &str, visitor: &str) -> EventFactory {
    let chat = chat(tenant, visitor);
    let mut started = chat.interaction_started(proto::Direction::Inbound);
    if let Some(proto::event::Payload::InteractionStarted(s)) = &mut started.payload {
        s.language = "ar".into();
    }
    let ack = client
        .publish(vec![
            started,
            chat.intent_detected("billing.dispute", 0.9, "bot"),
        ])
        .await
        .expect("published");
    client
        .journey(tenant, chat.customer_ref(), Some(ack.first_offset + 1))
        .await
        .expect("projected");
    chat
}

/// The status a call failed with.
pub fn status_of<T: std::fmt::Debug>(result: Result<T, rezef_adapter::Error>) -> tonic::Status {
    match result {
        Err(rezef_adapter::Error::Status(status)) => status,
        other => panic!("expected a status, got {other:?}"),
    }
}

/// The fields an `INVALID_ARGUMENT` names in its `BadRequest` details.
pub fn fields(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status
        .get_details_bad_request()
        .map(|details| {
            details
                .field_violations
                .into_iter()
                .map(|v| v.field)
                .collect()
        })
        .unwrap_or_default()
}
