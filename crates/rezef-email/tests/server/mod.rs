//! A real `rezef serve` for the adapter's scenarios, and `rezef-email` runs against it.
//!
//! The server binary is `$REZEF_BIN`, else `rezef` beside this crate's binaries
//! (`target/<profile>/rezef`: `cargo build -p rezef` first). This is the scenario crate's
//! harness (`tests/src/lib.rs`) cut to what these tests need, so that they do not build the
//! whole server stack that crate links.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use rezef_adapter::{Client, proto};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn rezef_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("REZEF_BIN") {
        return PathBuf::from(path);
    }
    let bin = Path::new(env!("CARGO_BIN_EXE_rezef-email")).with_file_name("rezef");
    assert!(
        bin.exists(),
        "{} is missing: `cargo build -p rezef` first, or set REZEF_BIN",
        bin.display()
    );
    bin
}

/// A `rezef serve` process, killed when dropped.
#[derive(Debug)]
pub struct Server {
    child: Child,
    pub url: String,
}

impl Server {
    pub async fn start(data_dir: &Path) -> Self {
        Self::start_on(free_port(), data_dir).await
    }

    pub async fn start_on(port: u16, data_dir: &Path) -> Self {
        let child = Command::new(rezef_bin())
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(data_dir)
            .env("RUST_LOG", "warn")
            .env("REZEF_DASHBOARD__LISTEN", "127.0.0.1:0")
            .env_remove("REZEF_BIN")
            .stdin(Stdio::null())
            .spawn()
            .expect("rezef serve starts");
        let server = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(mut client) = Client::connect(server.url.clone()).await {
                let anyone = rezef_adapter::identity_ref(proto::IdentityKind::Email, "x@y.test");
                match client.journey("acme", anyone, None).await {
                    Err(rezef_adapter::Error::Status(s))
                        if s.code() == tonic::Code::Unavailable => {}
                    Err(rezef_adapter::Error::Connect { .. }) => {}
                    _ => return server,
                }
            }
            assert!(Instant::now() < deadline, "rezef serve did not come up");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn client(&self) -> Client {
        Client::connect(self.url.clone()).await.expect("connects")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An adapter's directories and configuration file.
#[derive(Debug)]
pub struct Adapter {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

impl Adapter {
    /// Configured for tenant `acme`, the company `@acme.test`, the server at `url`, and
    /// `extra` TOML lines.
    pub fn new(url: &str, extra: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("rezef-email.toml");
        let text = format!(
            "tenant = \"acme\"\ndata_dir = {data:?}\ncompany_addresses = [\"@acme.test\"]\n\
             {extra}\n[maildir]\npath = {maildir:?}\npoll_interval = \"100ms\"\n\
             [rezef]\naddress = {url:?}\n[http]\nlisten = \"127.0.0.1:0\"\n",
            data = dir.path().join("data"),
            maildir = dir.path().join("Maildir"),
        );
        std::fs::write(&config, text).expect("writes the config");
        Self { dir, config }
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn maildir(&self) -> PathBuf {
        self.dir.path().join("Maildir")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_rezef-email"));
        command
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .env("RUST_LOG", "warn");
        command
    }

    /// `rezef-email deliver` with `raw` on standard input.
    pub fn deliver(&self, raw: &[u8]) -> Output {
        let mut child = (self.command(&["deliver"]))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("rezef-email starts");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(raw).expect("writes the message");
        drop(stdin);
        child.wait_with_output().expect("rezef-email ends")
    }

    /// `rezef-email maildir`, running until stopped, with its HTTP side on `http_port`.
    pub fn maildir_service(&self, http_port: u16) -> Child {
        self.command(&["maildir"])
            .env("REZEF_EMAIL_HTTP__LISTEN", format!("127.0.0.1:{http_port}"))
            .spawn()
            .expect("rezef-email starts")
    }

    /// `rezef-email flush`.
    pub fn flush(&self) -> Output {
        self.command(&["flush", "--timeout", "20s"])
            .output()
            .expect("rezef-email runs")
    }

    /// `rezef-email maildir --once`.
    pub fn maildir_once(&self) -> Output {
        self.command(&["maildir", "--once"])
            .output()
            .expect("rezef-email runs")
    }
}

pub fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(path).expect("fixture")
}

/// `GET path` on a local port: the status code and the body (`None` while nothing listens).
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::Read;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split(' ').nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n")?.1.to_owned();
    Some((status, body))
}

/// SIGTERM to `child`, then its exit status.
pub fn terminate(mut child: Child) -> std::process::ExitStatus {
    let status = Command::new("kill")
        .arg(child.id().to_string())
        .status()
        .expect("kill runs");
    assert!(status.success());
    child.wait().expect("reaped")
}
