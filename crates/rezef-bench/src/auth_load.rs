//! What API keys cost on the request path (issue 16: at most 10%). Two servers run in this
//! process over the same preload: one without keys, one with a key file, whose every call
//! carries a key and has its role, tenant and sources checked before the handler. h2load (in
//! its own process, as in `grpc-load`) loads GetJourney and Publish on each in turn, over
//! several rounds, with Health/Check on both as the baseline: client and server share the
//! machine's cores, so only ratios taken side by side mean something.

use std::path::Path;

use anyhow::{Context, Result};
use prost::Message;
use rezef_adapter::proto;
use rezef_auth::{KeyFile, Limits, NewKey, Role, Scope};

use crate::get_journey::preload;
use crate::grpc_load::{self, GrpcLoadArgs, Loaded};
use crate::harness::{BenchServer, Report, Target, ms, temp_dir, thousands};
use crate::workload::{TENANT, Workload, customer_ref};

/// The aim: calls with keys at least this share of the same calls without.
const TARGET_SHARE: f64 = 0.9;

#[derive(Debug, Clone, clap::Args)]
pub struct AuthLoadArgs {
    #[command(flatten)]
    pub load: GrpcLoadArgs,
    /// Rounds of (without keys, with keys) per call.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub rounds: u32,
}

/// One call's figures on both servers, round by round.
struct Compared {
    call: &'static str,
    open: Vec<Loaded>,
    keyed: Vec<Loaded>,
}

impl Compared {
    fn ratios(&self) -> Vec<f64> {
        (self.open.iter().zip(&self.keyed))
            .map(|(open, keyed)| keyed.per_s / open.per_s.max(1e-9))
            .collect()
    }
}

pub async fn run(base: &Path, args: &AuthLoadArgs) -> Result<Report> {
    let version = grpc_load::h2load_version(&args.load)?;
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
    let keyed = BenchServer::open(dir).await?.with_token(token.clone());

    let get = proto::GetJourneyRequest {
        tenant_id: TENANT.into(),
        customer: Some(customer_ref(0)),
        ..Default::default()
    };
    let publish = proto::PublishRequest {
        events: vec![Workload::new(1, 0xa07).next_for(0)],
        sequence: 0,
    };
    for server in [&open, &keyed] {
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
            open: Vec::new(),
            keyed: Vec::new(),
        })
        .collect();
    for _ in 0..args.rounds {
        for ((call, body), figures) in calls.iter().zip(&mut compared) {
            let url = |server: &BenchServer| format!("http://{}/{call}", server.addr());
            let path = files.path();
            let without = grpc_load::load(&args.load, path, &url(&open), body, &[]).await;
            figures
                .open
                .push(without.with_context(|| format!("h2load on {call}"))?);
            let with = grpc_load::load(&args.load, path, &url(&keyed), body, &with_key).await;
            figures
                .keyed
                .push(with.with_context(|| format!("h2load on {call} with a key"))?);
        }
    }
    open.stop().await?;
    keyed.stop().await?;
    Ok(report(args, version, &compared))
}

fn report(args: &AuthLoadArgs, version: String, compared: &[Compared]) -> Report {
    let load = &args.load;
    let mut report = Report::new(format!(
        "auth-load: with and without API keys, h2load {} connections × {} streams, {} s per \
         call, {} rounds",
        load.connections, load.streams, load.seconds, args.rounds
    ));
    report.row("load generator", version);
    let listed = |values: Vec<String>| values.join(" / ");
    for figures in compared {
        let rates = |all: &[Loaded]| listed(all.iter().map(|l| thousands(l.per_s)).collect());
        let p99 = |all: &[Loaded]| listed(all.iter().map(|l| ms(l.p99_ms)).collect());
        let failed: u64 = (figures.open.iter().chain(&figures.keyed))
            .map(|l| l.failed)
            .sum();
        report.row(
            format!("**{}**", figures.call),
            format!(
                "without keys {} req/s (p99 {} ms); with a key {} req/s (p99 {} ms); with ÷ \
                 without **{}**; {failed} failed",
                rates(&figures.open),
                p99(&figures.open),
                rates(&figures.keyed),
                p99(&figures.keyed),
                listed(figures.ratios().iter().map(|r| format!("{r:.2}")).collect()),
            ),
        );
    }
    for figures in &compared[1..] {
        let ratios = figures.ratios();
        let median = median(&ratios);
        report.target(Target::at_least(
            format!("{} with a key ÷ without (median of rounds)", figures.call),
            median,
            TARGET_SHARE,
            "×",
        ));
    }
    report.note(
        "Each round loads every call on the server without keys and then on the one with, one \
         body sent over and over (the journey stays in memory; Publish appends the same event, \
         which the projection recognises as a retry). Health/Check is open on both servers: its \
         ratio shows the drift between the two, with no key involved.",
    );
    report
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(0.0)
}
