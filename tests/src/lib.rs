//! Harness for end-to-end scenarios: runs the real `rezef` binary as a child process on a
//! free loopback port and waits until its gRPC health service says it is serving.
//!
//! The binary is found next to the test executable (`target/<profile>/rezef`), or at
//! `$REZEF_BIN`. `cargo test --workspace` builds it (the `rezef` crate has integration
//! tests); run alone, this crate needs `cargo build -p rezef` first.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use rezef_adapter::Client;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

/// The `rezef` binary under test.
pub fn rezef_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("REZEF_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the test knows its own path");
    // target/<profile>/deps/<test> → target/<profile>/rezef
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("tests run from target/<profile>/deps");
    let bin = profile_dir.join(format!("rezef{}", std::env::consts::EXE_SUFFIX));
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
    command.args(args).env_remove("RUST_LOG");
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

/// A `rezef serve` process.
#[derive(Debug)]
pub struct RezefServer {
    child: Child,
    pub port: u16,
    pub data_dir: PathBuf,
}

impl RezefServer {
    /// Starts `rezef serve` on a free port with `data_dir`, and waits until it serves.
    pub async fn start(data_dir: &Path) -> Self {
        Self::start_with(data_dir, &[]).await
    }

    /// As [`RezefServer::start`], with more flags (`--routing-config FILE`).
    pub async fn start_with(data_dir: &Path, flags: &[&str]) -> Self {
        let port = free_port();
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
            .stdin(Stdio::null())
            .stderr(server_log(data_dir))
            .spawn()
            .expect("rezef serve starts");
        let mut server = Self {
            child,
            port,
            data_dir: data_dir.to_path_buf(),
        };
        server.wait_until_serving().await;
        server
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub async fn client(&self) -> Client {
        Client::connect(self.url()).await.expect("connect")
    }

    async fn wait_until_serving(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("rezef serve exited early with {status}");
            }
            if let Ok(channel) = tonic::transport::Endpoint::from_shared(self.url())
                .expect("valid url")
                .connect()
                .await
            {
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
