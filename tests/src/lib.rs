//! Harness for end-to-end scenarios: runs the real `rezef` binary as a child process on a
//! free loopback port and waits until its gRPC health service says it is serving.
//!
//! The binary is found next to the test executable (`target/<profile>/rezef`), or next to
//! a binary of this crate (`rezef-soak`, [`durability`]), or at
//! `$REZEF_BIN`. `cargo test --workspace` builds it (the `rezef` crate has integration
//! tests); run alone, this crate needs `cargo build -p rezef` first.
//!
//! A server started with [`ClientTls`] speaks TLS: the harness checks its health, and hands
//! out clients, over `https://` trusting the test's CA ([`certs`]).

pub mod browser;
pub mod certs;
pub mod durability;
pub mod kafka;
pub mod two_nodes;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use rezef_adapter::{Client, TlsOptions};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

/// Every `rezef` a scenario starts puts its dashboard (on by default at a fixed port) on a
/// free port, so that servers run side by side; a `--dashboard-listen` flag overrides it.
pub const DASHBOARD: (&str, &str) = ("REZEF_DASHBOARD__LISTEN", "127.0.0.1:0");

/// Names the binary under test; removed from the environment of the `rezef` it starts,
/// which would take it as a setting (every `REZEF_` variable is one) and refuse it.
const BIN_VARIABLE: &str = "REZEF_BIN";

/// The `rezef` binary under test.
pub fn rezef_bin() -> PathBuf {
    if let Some(path) = std::env::var_os(BIN_VARIABLE) {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the test knows its own path");
    // target/<profile>/deps/<test> → target/<profile>/rezef; a binary of this crate
    // (`rezef-soak`) sits in target/<profile> itself.
    let name = format!("rezef{}", std::env::consts::EXE_SUFFIX);
    let own_dir = exe.parent().expect("an executable is in a directory");
    if own_dir.join(&name).exists() {
        return own_dir.join(name);
    }
    let profile_dir = own_dir
        .parent()
        .expect("tests run from target/<profile>/deps");
    let bin = profile_dir.join(name);
    assert!(
        bin.exists(),
        "{} is missing: run `cargo test --workspace`, or `cargo build -p rezef` first",
        bin.display()
    );
    bin
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free loopback port")
}

/// Runs `rezef ARGS…` to completion.
pub fn rezef(args: &[&str], data_dir: Option<&Path>) -> Output {
    let mut command = Command::new(rezef_bin());
    command
        .args(args)
        .env(DASHBOARD.0, DASHBOARD.1)
        .env_remove("RUST_LOG")
        .env_remove(BIN_VARIABLE);
    if let Some(dir) = data_dir {
        command.current_dir(dir);
    }
    command.output().expect("rezef runs")
}

/// Where a server's log goes: the test's standard error, or with `SCENARIO_LOG_DIR` a file
/// of its own there, named after its data directory (to tell the nodes of a cluster apart;
/// `SCENARIO_LOG` sets their `RUST_LOG`, `warn` by default). Not `REZEF_` variables: `rezef`
/// takes those as configuration.
fn server_log(data_dir: &Path) -> Stdio {
    let Ok(dir) = std::env::var("SCENARIO_LOG_DIR") else {
        return Stdio::inherit();
    };
    let name = data_dir.file_name().unwrap_or(data_dir.as_os_str());
    let path = Path::new(&dir).join(name).with_extension("log");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    Stdio::from(file)
}

/// How the harness reaches a server that speaks TLS: the CA that signed its certificate,
/// and for mTLS the client certificate and key it shows (PEM).
#[derive(Debug, Clone)]
pub struct ClientTls {
    pub ca_pem: String,
    pub identity: Option<certs::Leaf>,
}

impl ClientTls {
    fn options(&self) -> TlsOptions {
        TlsOptions {
            ca_pem: Some(self.ca_pem.clone().into_bytes()),
            identity_pem: (self.identity.as_ref())
                .map(|leaf| (leaf.cert_pem.clone().into(), leaf.key_pem.clone().into())),
            domain: None,
        }
    }

    fn config(&self) -> ClientTlsConfig {
        let config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&self.ca_pem));
        match &self.identity {
            Some(leaf) => config.identity(Identity::from_pem(&leaf.cert_pem, &leaf.key_pem)),
            None => config,
        }
    }
}

/// A `rezef serve` process.
#[derive(Debug)]
pub struct RezefServer {
    child: Child,
    pub port: u16,
    pub data_dir: PathBuf,
    /// Set: the server speaks TLS, and this is how the harness reaches it.
    tls: Option<ClientTls>,
    /// The API key [`RezefServer::client`]'s clients send.
    token: Option<String>,
}

impl RezefServer {
    /// Starts `rezef serve` on a free port with `data_dir`, and waits until it serves.
    pub async fn start(data_dir: &Path) -> Self {
        Self::start_with(data_dir, &[]).await
    }

    /// As [`RezefServer::start`], with more flags (`--routing-config FILE`).
    pub async fn start_with(data_dir: &Path, flags: &[&str]) -> Self {
        Self::start_on(free_port(), data_dir, flags, None).await
    }

    /// As [`RezefServer::start_with`], on `port` (known beforehand, for an `--advertise-url`),
    /// and with `tls` for a server configured with a certificate (`[tls]`, in a `--config`
    /// file among `flags`).
    pub async fn start_on(
        port: u16,
        data_dir: &Path,
        flags: &[&str],
        tls: Option<ClientTls>,
    ) -> Self {
        let child = Command::new(rezef_bin())
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(data_dir)
            .args(flags)
            .env(
                "RUST_LOG",
                std::env::var("SCENARIO_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .env(DASHBOARD.0, DASHBOARD.1)
            .env_remove(BIN_VARIABLE)
            .stdin(Stdio::null())
            .stderr(server_log(data_dir))
            .spawn()
            .expect("rezef serve starts");
        let mut server = Self {
            child,
            port,
            data_dir: data_dir.to_path_buf(),
            tls,
            token: None,
        };
        server.wait_until_serving().await;
        server
    }

    /// The clients [`RezefServer::client`] hands out send `token` (a server with keys).
    #[must_use]
    pub fn with_token(mut self, token: &str) -> Self {
        self.token = Some(token.to_owned());
        self
    }

    /// `https://` for a server that speaks TLS, else `http://`.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// A client on a connection of its own, over TLS to a TLS server, with the key of
    /// [`RezefServer::with_token`] if any.
    pub async fn client(&self) -> Client {
        let client = match &self.tls {
            Some(tls) => Client::connect_tls(self.url(), tls.options()).await,
            None => Client::connect(self.url()).await,
        };
        let client = client.expect("connect");
        match &self.token {
            Some(token) => client.with_token(token.clone()).expect("a valid key"),
            None => client,
        }
    }

    /// The server's process id (to read its `/proc/<pid>/status`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGHUP: a TLS server reads its certificate files again.
    pub fn hangup(&self) {
        let status = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -HUP failed");
    }

    async fn wait_until_serving(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("rezef serve exited early with {status}");
            }
            let endpoint = Endpoint::from_shared(self.url()).expect("valid url");
            let endpoint = match &self.tls {
                Some(tls) => endpoint.tls_config(tls.config()).expect("TLS settings"),
                None => endpoint,
            };
            if let Ok(channel) = endpoint.connect().await {
                let reply = HealthClient::new(channel)
                    .check(HealthCheckRequest {
                        service: "rezef.v1.Ingest".into(),
                    })
                    .await;
                if reply.is_ok_and(|r| r.into_inner().status == ServingStatus::Serving as i32) {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "rezef serve did not start serving"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until calls about these customers are answered (not `UNAVAILABLE`): on a
    /// Kafka log, until their partitions have an owner that caught up.
    pub async fn wait_ready(&self, tenant: &str, customers: &[rezef_adapter::proto::CustomerRef]) {
        let mut client = self.client().await;
        let deadline = Instant::now() + Duration::from_secs(90);
        for customer in customers {
            loop {
                match client.journey(tenant, customer.clone(), None).await {
                    Err(rezef_adapter::Error::Status(status))
                        if status.code() == tonic::Code::Unavailable =>
                    {
                        assert!(Instant::now() < deadline, "not ready: {status:?}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    _ => break,
                }
            }
        }
    }

    /// `kill -9`: no chance to flush or clean up.
    pub fn kill9(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }

    /// SIGTERM, then wait for the exit status.
    pub fn terminate(mut self) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "rezef did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RezefServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `GetJourney` that asks a node on a Kafka log for the owner's address instead of a
/// forward (`x-rezef-route: self`).
pub fn route_self(
    tenant: &str,
    customer: rezef_adapter::proto::CustomerRef,
) -> tonic::Request<rezef_adapter::proto::GetJourneyRequest> {
    let mut request = tonic::Request::new(rezef_adapter::proto::GetJourneyRequest {
        tenant_id: tenant.into(),
        customer: Some(customer),
        ..Default::default()
    });
    request
        .metadata_mut()
        .insert("x-rezef-route", "self".parse().expect("ascii"));
    request
}

/// Whether `client`'s node answers for `customer` itself: found, or not known yet
/// (`NOT_FOUND`), rather than `UNAVAILABLE` naming the partition's owner.
pub async fn answers_itself(
    client: &Client,
    tenant: &str,
    customer: rezef_adapter::proto::CustomerRef,
) -> bool {
    let request = route_self(tenant, customer);
    match client.journeys().get_journey(request).await {
        Err(status) => status.code() != tonic::Code::Unavailable,
        Ok(_) => true,
    }
}

/// Opens `Insights/WatchInterval` for `request`: the stream, and the first message it sent
/// (the current interval's rows when the stream opened), or the status it ended with.
pub async fn watch_interval(
    client: &Client,
    request: rezef_adapter::proto::WatchIntervalRequest,
) -> Result<
    (
        tonic::Streaming<rezef_adapter::proto::IntervalUpdate>,
        rezef_adapter::proto::IntervalUpdate,
    ),
    tonic::Status,
> {
    let mut screen = client
        .insights()
        .watch_interval(request)
        .await?
        .into_inner();
    match screen.message().await? {
        Some(first) => Ok((screen, first)),
        None => Err(tonic::Status::internal(
            "the stream ended before its first message",
        )),
    }
}

/// Makes a key with `rezef keys create ARGS…`; the token it printed.
pub fn create_key(args: &[&str]) -> String {
    let mut all = vec!["keys", "create"];
    all.extend(args);
    let output = rezef(&all, None);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// `customer`'s journey in `tenant` once `ready` holds, asked every 100 ms for at most 20 s:
/// for what an adapter published through its spool, whose offsets the test does not know.
pub async fn journey_when(
    client: &mut Client,
    tenant: &str,
    customer: rezef_adapter::proto::CustomerRef,
    ready: impl Fn(&rezef_adapter::proto::Journey) -> bool,
) -> rezef_adapter::proto::Journey {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(answer) = client.journey(tenant, customer.clone(), None).await
            && let Some(journey) = answer.journey
            && ready(&journey)
        {
            return journey;
        }
        assert!(Instant::now() < deadline, "the journey never got there");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `GET /metrics` on `port` (`rezef serve --metrics-listen`): each sample's value by its
/// line's series (`name{labels}`).
pub async fn scrape_metrics(port: u16) -> std::collections::BTreeMap<String, f64> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("the metrics port listens");
    let request = "GET /metrics HTTP/1.1\r\nHost: rezef\r\nConnection: close\r\n\r\n";
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    let (head, body) = response.split_once("\r\n\r\n").expect("a response");
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    (body.lines())
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("a value");
            (series.to_owned(), value.parse().expect("a number"))
        })
        .collect()
}
