//! GetJourney and ResumeConversation under load from a separate process, beside
//! `grpc.health.v1.Health/Check` on the same server under the same load.
//!
//! Why h2load (Debian's `nghttp2-client`): an in-process client shares the runtime and the
//! cores with the server and pays for its own encoding, so it measures both sides at once.
//! h2load is a lean HTTP/2 load generator in C; it sends gRPC as a POST of a framed request
//! body (a 5-byte length prefix, then the protobuf) with `content-type: application/grpc`.
//! Client and server still share the machine's 2 cores, so only the ratios to Health/Check
//! in one run mean something: Health/Check is the cheapest call the same server answers, the
//! transport's own ceiling. Every body is first sent through the real client and must
//! succeed; h2load sees only HTTP statuses, not gRPC ones.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use prost::Message;
use rezef_adapter::proto;

use crate::get_journey::preload;
use crate::harness::{BenchServer, Report, Target, ms, thousands};
use crate::workload::{TENANT, customer_ref};

/// The goal: each read at least this share of Health/Check's throughput.
pub const TARGET_SHARE_OF_HEALTH: f64 = 0.7;

#[derive(Debug, Clone, clap::Args)]
pub struct GrpcLoadArgs {
    /// Customers preloaded (through Publish, projected by the server).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub customers: u64,
    /// HTTP/2 connections h2load opens.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub connections: u32,
    /// Streams in flight per connection (connections × streams calls in flight).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub streams: u32,
    /// Seconds each call is loaded for (after 1 s of warm-up).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub seconds: u64,
    /// The h2load binary (`apt-get install nghttp2-client`; `scripts/bench` installs it).
    #[arg(long, default_value = "h2load")]
    pub h2load: PathBuf,
}

impl GrpcLoadArgs {
    /// How h2load loads each call.
    pub fn h2load(&self) -> H2load {
        H2load {
            binary: self.h2load.clone(),
            connections: self.connections,
            streams: self.streams,
            seconds: self.seconds,
        }
    }
}

/// How h2load loads one call: its binary, its HTTP/2 connections, streams in flight on each,
/// and seconds (after 1 s of warm-up).
#[derive(Debug, Clone)]
pub struct H2load {
    pub binary: PathBuf,
    pub connections: u32,
    pub streams: u32,
    pub seconds: u64,
}

/// One call's figures under h2load.
#[derive(Debug)]
pub struct Loaded {
    pub per_s: f64,
    pub requests: u64,
    pub failed: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Over TLS, what h2load says was negotiated: version, cipher, key exchange, ALPN.
    pub tls: Option<String>,
}

/// h2load's version, or why it cannot run.
pub fn h2load_version(binary: &Path) -> Result<String> {
    let version = Command::new(binary).arg("--version").output();
    match version {
        Ok(out) if out.status.success() => {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        }
        _ => bail!(
            "{} not found: apt-get install nghttp2-client (scripts/bench does)",
            binary.display()
        ),
    }
}

pub async fn run(base: &Path, args: &GrpcLoadArgs) -> Result<Report> {
    let version = h2load_version(&args.h2load)?;
    let server = BenchServer::start(base).await?;
    let preload_started = Instant::now();
    let last = preload(&server, args.customers, 10).await?;
    let mut client = server.client().await?;
    client
        .journey(TENANT, customer_ref(0), Some(last))
        .await
        .context("waiting for the projection of the preload")?;
    let preload_elapsed = preload_started.elapsed();

    let get = proto::GetJourneyRequest {
        tenant_id: TENANT.into(),
        customer: Some(customer_ref(0)),
        ..Default::default()
    };
    let resume = proto::ResumeConversationRequest {
        tenant_id: TENANT.into(),
        customer: Some(customer_ref(0)),
        channel: proto::Channel::Voice as i32,
        ..Default::default()
    };
    // The bodies must be answered OK before they are loaded.
    client
        .journeys()
        .get_journey(get.clone())
        .await
        .context("GetJourney with the loaded body")?;
    client
        .journeys()
        .resume_conversation(resume.clone())
        .await
        .context("ResumeConversation with the loaded body")?;

    let dir = tempfile::tempdir().context("a temp dir for h2load's files")?;
    let url = |path: &str| format!("http://{}/{path}", server.addr());
    let calls = [
        ("grpc.health.v1.Health/Check", Vec::new()),
        ("rezef.v1.Journeys/GetJourney", get.encode_to_vec()),
        (
            "rezef.v1.Journeys/ResumeConversation",
            resume.encode_to_vec(),
        ),
    ];
    let mut results = Vec::new();
    for (path, body) in calls {
        let figures = load(&args.h2load(), dir.path(), &url(path), &body, &[])
            .await
            .with_context(|| format!("h2load on {path}"))?;
        results.push((path, figures));
    }
    server.stop().await?;

    let mut report = Report::new(format!(
        "grpc-load: h2load, {} connections × {} streams, {} s per call, {} customers",
        args.connections,
        args.streams,
        args.seconds,
        thousands(args.customers as f64)
    ));
    report.row("load generator", version);
    report.row(
        "preload (Publish, then wait for projection)",
        format!(
            "{} events in {:.1} s",
            thousands((args.customers * 10) as f64),
            preload_elapsed.as_secs_f64()
        ),
    );
    let health = results[0].1.per_s;
    for (path, figures) in &results {
        report.row(
            format!("**{path}**"),
            format!(
                "**{} req/s** ({:.2} × Health/Check); p50 {} / p99 {} ms; {} requests, {} failed",
                thousands(figures.per_s),
                figures.per_s / health.max(1e-9),
                ms(figures.p50_ms),
                ms(figures.p99_ms),
                thousands(figures.requests as f64),
                figures.failed
            ),
        );
    }
    let (get, resume) = (&results[1].1, &results[2].1);
    report.headline(
        format!(
            "GetJourney {:.2}×, ResumeConversation {:.2}× Health/Check ({} req/s)",
            get.per_s / health.max(1e-9),
            resume.per_s / health.max(1e-9),
            thousands(health)
        ),
        format!(
            "p99: Health {} / GetJourney {} / Resume {} ms",
            ms(results[0].1.p99_ms),
            ms(get.p99_ms),
            ms(resume.p99_ms)
        ),
    );
    for (what, figures) in [("GetJourney", get), ("ResumeConversation", resume)] {
        report.target(Target::at_least(
            format!("{what} ÷ Health/Check (h2load)"),
            figures.per_s / health.max(1e-9),
            TARGET_SHARE_OF_HEALTH,
            "×",
        ));
    }
    report.note(
        "One customer's request body is sent over and over (h2load sends one body), so the \
         journey is always in memory: this measures the request path, not store misses. The \
         server runs in the bench process; h2load runs in its own (one thread). Latency \
         percentiles come from h2load's per-request log.",
    );
    Ok(report)
}

/// Runs h2load on one call, with `headers` besides gRPC's, and reads its summary and
/// per-request log.
pub async fn load(
    args: &H2load,
    dir: &Path,
    url: &str,
    message: &[u8],
    headers: &[String],
) -> Result<Loaded> {
    let body = dir.join("body");
    std::fs::write(&body, framed(message)?).context("writing the body")?;
    let log = fresh_log(dir)?;
    let mut command = Command::new(&args.binary);
    command
        .args(["-D", &args.seconds.to_string(), "--warm-up-time", "1"])
        .args(["-c", &args.connections.to_string()])
        .args(["-m", &args.streams.to_string()])
        .args(["-H", "content-type: application/grpc", "-H", "te: trailers"])
        .args(headers.iter().flat_map(|header| ["-H", header.as_str()]))
        .arg("-d")
        .arg(&body)
        .arg(format!("--log-file={}", log.display()))
        .arg(url);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .context("h2load's thread panicked")?
        .context("running h2load")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "h2load failed: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let per_s = stdout
        .lines()
        .find(|l| l.starts_with("finished in"))
        .and_then(|l| l.split(", ").nth(1))
        .and_then(|rate| rate.trim_end_matches(" req/s").parse::<f64>().ok())
        .ok_or_else(|| anyhow!("no rate in h2load's output: {stdout}"))?;
    let counts = stdout
        .lines()
        .find(|l| l.starts_with("requests:"))
        .ok_or_else(|| anyhow!("no request counts in h2load's output: {stdout}"))?;
    let count = |what: &str| -> u64 {
        counts
            .split(", ")
            .find_map(|part| part.trim_start_matches("requests: ").strip_suffix(what))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    };
    let mut latencies: Vec<u64> = std::fs::read_to_string(&log)
        .context("reading h2load's log")?
        .lines()
        .filter_map(|line| {
            let mut columns = line.split('\t');
            let status = columns.nth(1)?;
            (status == "200").then_some(())?;
            columns.next()?.parse().ok()
        })
        .collect();
    latencies.sort_unstable();
    let quantile = |q: f64| -> f64 {
        let index = ((latencies.len() as f64 - 1.0) * q).round() as usize;
        latencies
            .get(index)
            .map_or(0.0, |micros| *micros as f64 / 1000.0)
    };
    let tls = [
        "TLS Protocol:",
        "Cipher:",
        "Server Temp Key:",
        "Application protocol:",
    ]
    .iter()
    .filter_map(|label| stdout.lines().find_map(|l| l.strip_prefix(label)))
    .map(str::trim)
    .collect::<Vec<_>>();
    Ok(Loaded {
        tls: (!tls.is_empty()).then(|| tls.join("; ")),
        per_s,
        requests: count(" done"),
        failed: count(" failed") + count(" errored"),
        p50_ms: quantile(0.5),
        p99_ms: quantile(0.99),
    })
}

/// Where h2load logs each request of the next run: `dir/requests.tsv`, removed first. h2load
/// opens its log with `O_APPEND`, so a log left by an earlier call would mix that call's
/// latencies into this one's.
pub fn fresh_log(dir: &Path) -> Result<PathBuf> {
    let log = dir.join("requests.tsv");
    match std::fs::remove_file(&log) {
        Ok(()) => Ok(log),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(log),
        Err(e) => Err(e).with_context(|| format!("removing {}", log.display())),
    }
}

/// A gRPC request body: one uncompressed message behind its 5-byte prefix (a zero
/// compression flag, then the length, big-endian), as h2load sends it.
pub fn framed(message: &[u8]) -> Result<Vec<u8>> {
    let length = u32::try_from(message.len()).context("a message over 4 GiB")?;
    let mut framed = Vec::with_capacity(message.len() + 5);
    framed.push(0);
    framed.extend_from_slice(&length.to_be_bytes());
    framed.extend_from_slice(message);
    Ok(framed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_framed_body_is_the_prefix_then_the_message_that_decodes_again() {
        let request = proto::GetReportRequest {
            tenant_id: "acme".into(),
            by_queue: true,
            ..Default::default()
        };
        let message = request.encode_to_vec();
        let body = framed(&message).expect("framed");
        // Uncompressed, then the length big-endian, then the message itself.
        assert_eq!(body[0], 0);
        let length = u32::from_be_bytes(body[1..5].try_into().expect("four bytes"));
        assert_eq!(length as usize, message.len());
        let decoded = proto::GetReportRequest::decode(&body[5..]).expect("decodes");
        assert_eq!(decoded, request);
        // An empty message (Health/Check's) is the prefix alone.
        assert_eq!(framed(&[]).expect("framed"), vec![0, 0, 0, 0, 0]);
        // A length over 255 is spread over the bytes, most significant first.
        let long = framed(&[7; 0x0102]).expect("framed");
        assert_eq!(&long[..5], &[0, 0, 0, 1, 2]);
        assert_eq!(long.len(), 5 + 0x0102);
    }

    #[test]
    fn each_run_gets_an_empty_log() {
        let dir = tempfile::tempdir().expect("dir");
        let first = fresh_log(dir.path()).expect("first");
        assert!(!first.exists());
        std::fs::write(&first, "1\t200\t5000\n").expect("an earlier run's log");
        // The next run's log is the same file, gone until h2load makes it again.
        let next = fresh_log(dir.path()).expect("next");
        assert_eq!(next, first);
        assert!(!next.exists(), "the earlier run's requests are left in");
    }
}
