//! What every benchmark shares: a real server in a fresh temp directory on loopback, latency
//! histograms, disk and memory measurements, the targets from the issue, and the Markdown
//! report. Kept in one place so that every figure is taken the same way.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use hdrhistogram::Histogram;
use rezef_adapter::{Client, TlsOptions};
use rezef_server::{Server, ServerConfig};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A `rezef_server::Server` running in this process, on `127.0.0.1:0`, over a fresh temp
/// data directory that is deleted when this is dropped.
#[derive(Debug)]
pub struct BenchServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<rezef_server::Result<()>>>,
    dir: tempfile::TempDir,
    cache: rezef_store::JourneyCache,
    /// The API key its clients send, for a server with a key file.
    token: Option<String>,
    /// The CA its clients trust, for a server with a certificate (`[tls]`).
    ca_pem: Option<Vec<u8>>,
}

impl BenchServer {
    /// Opens a server on a new temp directory under `base` and starts serving.
    pub async fn start(base: &Path) -> Result<Self> {
        Self::open(temp_dir(base, "rezef-bench-")?).await
    }

    /// Opens a server on a data directory prepared beforehand (a journey store filled
    /// directly, say) and starts serving. The directory is deleted when this is dropped.
    pub async fn open(dir: tempfile::TempDir) -> Result<Self> {
        Self::open_with(dir, |_| {}).await
    }

    /// As [`BenchServer::open`], with the configuration adjusted (a Kafka log, say).
    pub async fn open_with(
        dir: tempfile::TempDir,
        configure: impl FnOnce(&mut ServerConfig),
    ) -> Result<Self> {
        let mut config = ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: dir.path().to_path_buf(),
            ..ServerConfig::default()
        };
        // Benchmarks measure the backbone; nobody looks at the page.
        config.dashboard.enabled = false;
        configure(&mut config);
        let server = Server::open(config).await.context("opening the server")?;
        let addr = server.local_addr();
        let cache = server.journey_cache().clone();
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(server.run(async {
            let _ = stopped.await;
        }));
        Ok(Self {
            addr,
            stop: Some(stop),
            task: Some(task),
            dir,
            cache,
            token: None,
            ca_pem: None,
        })
    }

    /// Its clients send `token` (a server whose data directory holds a key file).
    #[must_use]
    pub fn with_token(mut self, token: String) -> Self {
        self.token = Some(token);
        self
    }

    /// It speaks TLS with a certificate `ca_pem` signed: its clients trust that, and its
    /// URLs are `https://`.
    #[must_use]
    pub fn with_ca(mut self, ca_pem: Vec<u8>) -> Self {
        self.ca_pem = Some(ca_pem);
        self
    }

    /// `https://` and its address when it speaks TLS, else `http://`.
    pub fn url(&self) -> String {
        let scheme = if self.ca_pem.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// Waits until the stores the server opened have warmed its cache (`[projection]
    /// warm_cache`), up to `limit`: how long that took, and the bytes cached then.
    pub async fn warmed(&self, limit: Duration) -> Result<(Duration, u64)> {
        let begun = std::time::Instant::now();
        while self.cache.warming() > 0 {
            if begun.elapsed() > limit {
                return Err(anyhow!("the cache was still warming after {limit:?}"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok((begun.elapsed(), self.cache.weight()))
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A new client: one HTTP/2 connection of its own.
    pub async fn client(&self) -> Result<Client> {
        let client = match &self.ca_pem {
            Some(ca) => {
                let tls = TlsOptions {
                    ca_pem: Some(ca.clone()),
                    ..TlsOptions::default()
                };
                Client::connect_tls(self.url(), tls).await
            }
            None => Client::connect(self.url()).await,
        };
        let client = client.context("connecting to the bench server")?;
        match &self.token {
            Some(token) => client.with_token(token.clone()).context("the API key"),
            None => Ok(client),
        }
    }

    /// `n` clients, each on its own connection.
    pub async fn clients(&self, n: usize) -> Result<Vec<Client>> {
        let mut clients = Vec::with_capacity(n);
        for _ in 0..n {
            clients.push(self.client().await?);
        }
        Ok(clients)
    }

    /// Shuts the server down cleanly (projector stopped, log closed) and hands back the data
    /// directory, which still exists until the returned value is dropped.
    pub async fn stop(mut self) -> Result<tempfile::TempDir> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .context("the server task panicked")?
                .context("the server stopped with an error")?;
        }
        Ok(self.dir)
    }
}

/// A new temp directory under `base`, deleted when the returned value is dropped.
pub fn temp_dir(base: &Path, prefix: &str) -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(base)
        .with_context(|| format!("creating a temp dir in {}", base.display()))
}

/// A latency histogram in nanoseconds (1 ns .. 10 min, 3 significant digits), so that
/// in-process lookups of a few µs and gRPC calls of many ms are both resolved.
#[derive(Debug, Clone)]
pub struct Latency(Histogram<u64>);

impl Latency {
    pub fn new() -> Result<Self> {
        Histogram::new_with_bounds(1, 600_000_000_000, 3)
            .map(Self)
            .map_err(|e| anyhow!("histogram: {e}"))
    }

    pub fn record(&mut self, elapsed: Duration) {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX).max(1);
        self.0.saturating_record(nanos);
    }

    pub fn merge(&mut self, other: &Latency) -> Result<()> {
        self.0
            .add(&other.0)
            .map_err(|e| anyhow!("merging histograms: {e}"))
    }

    pub fn count(&self) -> u64 {
        self.0.len()
    }

    /// The quantile `q` (0..=1) in milliseconds.
    pub fn ms(&self, q: f64) -> f64 {
        self.0.value_at_quantile(q) as f64 / 1e6
    }

    pub fn max_ms(&self) -> f64 {
        self.0.max() as f64 / 1e6
    }

    pub fn mean_ms(&self) -> f64 {
        self.0.mean() / 1e6
    }

    /// `p50 / p99 / max` in ms, for a report cell.
    pub fn summary(&self) -> String {
        if self.count() == 0 {
            return "no samples".into();
        }
        format!(
            "p50 {} / p99 {} / max {} ms",
            ms(self.ms(0.50)),
            ms(self.ms(0.99)),
            ms(self.max_ms())
        )
    }
}

/// A duration in ms with sensible precision.
pub fn ms(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else if value >= 0.1 {
        format!("{value:.2}")
    } else {
        format!("{value:.4}")
    }
}

/// A count with thousands separators: 1234567.8 -> "1,234,568".
pub fn thousands(value: f64) -> String {
    let rounded = value.round();
    if !rounded.is_finite() {
        return value.to_string();
    }
    let digits = format!("{}", rounded.abs() as u128);
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if rounded < 0.0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Bytes per second as MB/s (10^6 bytes).
pub fn mb_per_s(bytes: f64, elapsed: Duration) -> f64 {
    bytes / elapsed.as_secs_f64().max(1e-9) / 1e6
}

/// The size of every file below `path`: `(sum of file lengths, sum of allocated blocks)`.
pub fn dir_size(path: &Path) -> Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let mut logical = 0;
    let mut allocated = 0;
    let mut pending = vec![path.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))?
        {
            let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
            let meta = entry
                .metadata()
                .with_context(|| format!("stat {}", entry.path().display()))?;
            if meta.is_dir() {
                pending.push(entry.path());
            } else {
                logical += meta.len();
                allocated += meta.blocks() * 512;
            }
        }
    }
    Ok((logical, allocated))
}

/// The log's segment files (`*.log`) below `dir`: their total length.
pub fn segment_bytes(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        if entry.path().extension().is_some_and(|ext| ext == "log") {
            total += entry
                .metadata()
                .with_context(|| format!("stat {}", entry.path().display()))?
                .len();
        }
    }
    Ok(total)
}

/// A field of `/proc/self/status` in bytes (`VmHWM`, `VmRSS`), if the kernel reports it.
pub fn proc_status_bytes(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with(field))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Resets the process's peak RSS (`VmHWM`) to its current RSS, so that a benchmark inside
/// `all` reports its own peak. Linux only; returns whether it worked.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// CPU time used by this process and by the whole machine over an interval, from `/proc`.
/// The benchmarks share the machine with whatever else runs on it; this makes that visible.
#[derive(Debug, Clone, Copy)]
pub struct CpuSampler {
    started: std::time::Instant,
    own_ticks: u64,
    machine_busy_ticks: u64,
}

impl CpuSampler {
    /// Clock ticks per second of `/proc` (USER_HZ, 100 on Linux).
    const TICKS_PER_S: f64 = 100.0;

    pub fn start() -> Option<Self> {
        Some(Self {
            started: std::time::Instant::now(),
            own_ticks: own_cpu_ticks()?,
            machine_busy_ticks: machine_busy_ticks()?,
        })
    }

    /// `(cores used by this process, cores used by other processes)`, averaged.
    pub fn finish(&self) -> Option<(f64, f64)> {
        let seconds = self.started.elapsed().as_secs_f64().max(1e-3);
        let own = own_cpu_ticks()?.saturating_sub(self.own_ticks) as f64 / Self::TICKS_PER_S;
        let all = machine_busy_ticks()?.saturating_sub(self.machine_busy_ticks) as f64
            / Self::TICKS_PER_S;
        Some((own / seconds, (all - own).max(0.0) / seconds))
    }

    /// A report cell: "1.85 cores by the benchmark, 0.02 by other processes (of 2)".
    pub fn describe(&self) -> String {
        let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
        match self.finish() {
            Some((own, others)) => format!(
                "{own:.2} cores by this process, {others:.2} by other processes (machine has {cores})"
            ),
            None => "not available".into(),
        }
    }
}

/// CPU time this process used so far, every thread's, user and system (`/proc/self/stat`'s
/// utime + stime, as getrusage's `RUSAGE_SELF` counts it): its resolution is a clock tick,
/// 10 ms, so it is only read over seconds.
pub fn process_cpu() -> Option<Duration> {
    let ticks = own_cpu_ticks()?;
    Some(Duration::from_secs_f64(
        ticks as f64 / CpuSampler::TICKS_PER_S,
    ))
}

/// utime + stime of this process, in clock ticks.
fn own_cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start at field 3 (state).
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Busy (non-idle, non-iowait) clock ticks of the whole machine.
fn machine_busy_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?;
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|v| v.parse().ok())
        .collect::<Option<_>>()?;
    let total: u64 = values.iter().sum();
    let idle = values.get(3)? + values.get(4)?;
    Some(total - idle)
}

pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// The benchmarks' seeded randomness: reproducible spread, not cryptographic quality; the
/// traffic simulator's (SplitMix64).
pub use rezef_simulate::Rng;

/// A goal from the issue, judged against a measured value.
#[derive(Debug, Clone)]
pub struct Target {
    pub what: String,
    pub measured: f64,
    pub goal: f64,
    pub unit: &'static str,
    /// `true`: measured must be >= goal (throughput); `false`: <= goal (latency).
    pub at_least: bool,
}

impl Target {
    pub fn at_least(what: impl Into<String>, measured: f64, goal: f64, unit: &'static str) -> Self {
        Self {
            what: what.into(),
            measured,
            goal,
            unit,
            at_least: true,
        }
    }

    pub fn at_most(what: impl Into<String>, measured: f64, goal: f64, unit: &'static str) -> Self {
        Self {
            what: what.into(),
            measured,
            goal,
            unit,
            at_least: false,
        }
    }

    pub fn passed(&self) -> bool {
        if self.at_least {
            self.measured >= self.goal
        } else {
            self.measured <= self.goal
        }
    }

    /// How far from the goal: measured/goal for throughput, goal/measured for latency, so
    /// that >= 1.0 always means "met".
    pub fn ratio(&self) -> f64 {
        if self.at_least {
            self.measured / self.goal
        } else {
            self.goal / self.measured.max(1e-9)
        }
    }

    fn value(&self, value: f64) -> String {
        if self.unit == "ms" {
            format!("{} ms", ms(value))
        } else if self.unit == "×" {
            format!("{} ×", ratio(value))
        } else {
            format!("{} {}", thousands(value), self.unit)
        }
    }

    pub fn row(&self) -> String {
        let relation = if self.at_least { "≥" } else { "≤" };
        // A ceiling met with nothing (a cost of zero or below) has no meaningful ratio.
        let how_far = if self.at_least || self.measured > 0.0 {
            format!("{}× of goal", ratio(self.ratio()))
        } else {
            "none measured".to_owned()
        };
        format!(
            "| {} | {} {} | {} | **{}** ({how_far}) |",
            self.what,
            relation,
            self.value(self.goal),
            self.value(self.measured),
            if self.passed() { "PASS" } else { "MISS" },
        )
    }
}

/// A ratio with two significant digits below 0.1 (0.00031 rather than 0.00), two decimals
/// otherwise.
pub fn ratio(value: f64) -> String {
    if value > 0.0 && value < 0.1 {
        let decimals = (-value.log10()).ceil() as usize + 1;
        format!("{value:.decimals$}")
    } else {
        format!("{value:.2}")
    }
}

/// The median of `values` (the upper one of an even count; 0 for none): of rounds, say.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(0.0)
}

/// The outcome of one benchmark: figures, targets and notes, printed as Markdown.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub title: String,
    /// The one-line figures for the summary table of `all`: (throughput, latency).
    pub headline: Option<(String, String)>,
    /// Cores used by this process and by other processes during the benchmark.
    pub cpu: Option<(f64, f64)>,
    pub rows: Vec<(String, String)>,
    pub targets: Vec<Target>,
    pub notes: Vec<String>,
}

impl Report {
    pub fn new(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            ..Self::default()
        }
    }

    pub fn row(&mut self, metric: impl Into<String>, value: impl Into<String>) {
        self.rows.push((metric.into(), value.into()));
    }

    pub fn headline(&mut self, throughput: impl Into<String>, latency: impl Into<String>) {
        self.headline = Some((throughput.into(), latency.into()));
    }

    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    pub fn target(&mut self, target: Target) {
        self.targets.push(target);
    }

    /// Takes in the rows, targets and notes of a part measured on its own.
    pub fn absorb(&mut self, part: Report) {
        self.rows.extend(part.rows);
        self.targets.extend(part.targets);
        self.notes.extend(part.notes);
    }

    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "### {}\n", self.title);
        let _ = writeln!(out, "| metric | value |\n|---|---|");
        for (metric, value) in &self.rows {
            let _ = writeln!(out, "| {metric} | {value} |");
        }
        if !self.targets.is_empty() {
            let _ = writeln!(out);
            out.push_str(&targets_table(&self.targets));
        }
        if !self.notes.is_empty() {
            let _ = writeln!(out);
            for note in &self.notes {
                let _ = writeln!(out, "- {note}");
            }
        }
        out
    }
}

/// The targets as a Markdown table.
pub fn targets_table(targets: &[Target]) -> String {
    let mut out = String::from("| target | goal | measured | verdict |\n|---|---|---|---|\n");
    for target in targets {
        let _ = writeln!(out, "{}", target.row());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ratio_target_shows_its_decimals() {
        let row = Target::at_least("GetJourney ÷ Health/Check", 0.59, 0.7, "×").row();
        assert!(row.contains("| ≥ 0.70 × | 0.59 × | **MISS**"), "{row}");
    }

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(thousands(1_234_567.8), "1,234,568");
        assert_eq!(thousands(-12_345.0), "-12,345");
    }

    #[test]
    fn targets_judge_both_directions() {
        assert!(Target::at_least("x", 120.0, 100.0, "ev/s").passed());
        assert!(!Target::at_least("x", 80.0, 100.0, "ev/s").passed());
        assert!(Target::at_most("x", 4.0, 5.0, "ms").passed());
        assert_eq!(ratio(0.5), "0.50");
        assert_eq!(ratio(0.0123), "0.012");
        assert_eq!(ratio(0.00031), "0.00031");
        let slow = Target::at_most("x", 10.0, 5.0, "ms");
        assert!(!slow.passed());
        assert!((slow.ratio() - 0.5).abs() < 1e-9);
        let free = Target::at_most("x", -3.0, 10.0, "%");
        assert!(free.passed() && free.row().contains("(none measured)"));
    }
}
