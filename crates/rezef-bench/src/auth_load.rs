//! What API keys and TLS cost on the request path (issue 16: keys at most 10%). Three
//! servers run in this process over the same preload: one in plain text without keys, one in
//! plain text with a key file, whose every call carries a key and has its role, tenant and
//! sources checked before the handler, and one with the key file and TLS (a certificate made
//! at run time, what a production node serves). h2load (in its own process, as in
//! `grpc-load`; over `https://` it negotiates HTTP/2 by ALPN) loads GetJourney and Publish on
//! each in turn, over several rounds, with Health/Check on each as the baseline: client and
//! server share the machine's cores, so only ratios taken side by side mean something.

use std::path::Path;

use anyhow::{Context, Result};
use prost::Message;
use rezef_adapter::proto;
use rezef_auth::{KeyFile, Limits, NewKey, Role, Scope};

use crate::certificate;
use crate::get_journey::preload;
use crate::grpc_load::{self, GrpcLoadArgs, Loaded};
use crate::harness::{BenchServer, Report, Target, median, ms, temp_dir, thousands};
use crate::workload::{TENANT, Workload, customer_ref};

/// The aim: calls with keys at least this share of the same calls without.
const TARGET_SHARE: f64 = 0.9;

#[derive(Debug, Clone, clap::Args)]
pub struct AuthLoadArgs {
    #[command(flatten)]
    pub load: GrpcLoadArgs,
    /// Rounds of (without keys, with keys, with keys and TLS) per call.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub rounds: u32,
}

/// The servers compared, in the order each round loads them.
const SERVERS: [&str; 3] = ["plain, no key", "plain, key", "TLS, key"];
const OPEN: usize = 0;
const KEYED: usize = 1;
const TLS: usize = 2;

/// One call's figures on each server of [`SERVERS`], round by round.
struct Compared {
    call: &'static str,
    by_server: [Vec<Loaded>; 3],
}

impl Compared {
    /// Server `a`'s throughput over server `b`'s, round by round.
    fn ratios(&self, a: usize, b: usize) -> Vec<f64> {
        (self.by_server[a].iter().zip(&self.by_server[b]))
            .map(|(a, b)| a.per_s / b.per_s.max(1e-9))
            .collect()
    }

    /// Its throughput over `health`'s on the same server, round by round.
    fn share_of(&self, health: &Compared, server: usize) -> Vec<f64> {
        (self.by_server[server].iter().zip(&health.by_server[server]))
            .map(|(call, health)| call.per_s / health.per_s.max(1e-9))
            .collect()
    }
}

pub async fn run(base: &Path, args: &AuthLoadArgs) -> Result<Report> {
    let version = grpc_load::h2load_version(&args.load.h2load)?;
    let open = BenchServer::start(base).await?;
    let dir = temp_dir(base, "rezef-bench-keyed-")?;
    let key = NewKey {
        name: "bench".into(),
        // Out of the way: this measures the checks, not the limits.
        limits: Some(Limits {
            calls_per_second: u32::MAX,
            burst: u32::MAX,
            streams: u32::MAX,
        }),
        ..NewKey::new(Scope::Tenant(TENANT.into()), [Role::Adapter, Role::Channel])
    };
    let (_, token) = (KeyFile::new(dir.path().join("keys.json")))
        .create(key, 0)
        .context("making the API key")?;
    let token = token.to_string();
    let (tls_dir, files_dir) = (temp_dir(base, "rezef-bench-tls-")?, tempfile::tempdir()?);
    std::fs::copy(
        dir.path().join("keys.json"),
        tls_dir.path().join("keys.json"),
    )
    .context("copying the key file")?;
    let (settings, ca) = certificate::loopback(files_dir.path())?;
    let keyed = BenchServer::open(dir).await?.with_token(token.clone());
    let tls = (BenchServer::open_with(tls_dir, |config| config.tls = settings).await?)
        .with_token(token.clone())
        .with_ca(ca);
    let servers = [&open, &keyed, &tls];

    let get = proto::GetJourneyRequest {
        tenant_id: TENANT.into(),
        customer: Some(customer_ref(0)),
        ..Default::default()
    };
    let publish = proto::PublishRequest {
        events: vec![Workload::new(1, 0xa07).next_for(0)],
        sequence: 0,
    };
    for server in servers {
        let last = preload(server, args.load.customers, 10).await?;
        let mut client = server.client().await?;
        client
            .journey(TENANT, customer_ref(0), Some(last))
            .await
            .context("waiting for the projection of the preload")?;
        // Both bodies must be answered OK before they are loaded.
        (client.journeys().get_journey(get.clone()).await).context("GetJourney")?;
        (client.ingest().publish(publish.clone()).await).context("Publish")?;
    }

    let files = tempfile::tempdir().context("a temp dir for h2load's files")?;
    let calls: [(&'static str, Vec<u8>); 3] = [
        ("grpc.health.v1.Health/Check", Vec::new()),
        ("rezef.v1.Journeys/GetJourney", get.encode_to_vec()),
        ("rezef.v1.Ingest/Publish", publish.encode_to_vec()),
    ];
    let with_key = [format!("authorization: Bearer {token}")];
    let mut compared: Vec<Compared> = (calls.iter())
        .map(|(call, _)| Compared {
            call,
            by_server: Default::default(),
        })
        .collect();
    let h2load = args.load.h2load();
    for _ in 0..args.rounds {
        for ((call, body), figures) in calls.iter().zip(&mut compared) {
            for (at, server) in servers.iter().enumerate() {
                let url = format!("{}/{call}", server.url());
                let headers: &[String] = if at == OPEN { &[] } else { &with_key };
                let loaded = grpc_load::load(&h2load, files.path(), &url, body, headers);
                let loaded = loaded
                    .await
                    .with_context(|| format!("h2load on {call}, {}", SERVERS[at]))?;
                figures.by_server[at].push(loaded);
            }
        }
    }
    open.stop().await?;
    keyed.stop().await?;
    tls.stop().await?;
    Ok(report(args, version, &compared))
}

fn report(args: &AuthLoadArgs, version: String, compared: &[Compared]) -> Report {
    let load = &args.load;
    let mut report = Report::new(format!(
        "auth-load: plain without keys, plain with keys, TLS with keys; h2load {} connections × \
         {} streams, {} s per call, {} rounds",
        load.connections, load.streams, load.seconds, args.rounds
    ));
    report.row("load generator", version);
    let negotiated = (compared.iter())
        .flat_map(|figures| &figures.by_server[TLS])
        .find_map(|loaded| loaded.tls.clone());
    report.row(
        "TLS (as h2load negotiated it)",
        negotiated.unwrap_or_default(),
    );
    let listed = |values: Vec<String>| values.join(" / ");
    let fixed = |values: Vec<f64>| listed(values.iter().map(|r| format!("{r:.2}")).collect());
    let health = &compared[0];
    for figures in compared {
        for (at, server) in SERVERS.iter().enumerate() {
            let all = &figures.by_server[at];
            let failed: u64 = all.iter().map(|l| l.failed).sum();
            report.row(
                format!("**{}**, {server}", figures.call),
                format!(
                    "{} req/s ({} × Health/Check); p50 {} ms; p99 {} ms; {failed} failed",
                    listed(all.iter().map(|l| thousands(l.per_s)).collect()),
                    fixed(figures.share_of(health, at)),
                    listed(all.iter().map(|l| ms(l.p50_ms)).collect()),
                    listed(all.iter().map(|l| ms(l.p99_ms)).collect()),
                ),
            );
        }
        report.row(
            format!("**{}** ratios", figures.call),
            format!(
                "key ÷ no key **{}**; TLS+key ÷ key **{}**; TLS+key ÷ no key **{}**",
                fixed(figures.ratios(KEYED, OPEN)),
                fixed(figures.ratios(TLS, KEYED)),
                fixed(figures.ratios(TLS, OPEN)),
            ),
        );
    }
    for figures in &compared[1..] {
        report.target(Target::at_least(
            format!("{} with a key ÷ without (median of rounds)", figures.call),
            median(&figures.ratios(KEYED, OPEN)),
            TARGET_SHARE,
            "×",
        ));
    }
    report.note(
        "Each round loads every call on the plain server without keys, then on the plain one \
         with, then on the TLS one with, one body sent over and over (the journey stays in \
         memory; Publish appends the same event, which the projection recognises as a retry). \
         Health/Check is open on every server: its ratios show the drift between them with no \
         key involved, and over TLS what the transport alone costs. h2load's own TLS work \
         (OpenSSL) runs on the same cores as the server's.",
    );
    report
}
