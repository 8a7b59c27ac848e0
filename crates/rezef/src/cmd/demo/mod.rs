//! `rezef demo`: the main job, end to end, on the embedded default.
//!
//! A real server starts on a free loopback port with a temporary data directory. A web-chat
//! adapter publishes a customer's talk with a bot; the customer then calls and the voice
//! adapter resumes the conversation over gRPC: the customer repeats nothing
//! ([`continuity`]). Routing offers the call to the billing agent who speaks the customer's
//! language, with the story on the offer; she resolves it and confirms by email in the same
//! conversation ([`agent`]). Then a morning of calls is measured both ways ([`day`]), a whole
//! day at scale is simulated ([`scale`]), and the demo ends with the addresses of the
//! dashboard showing them (kept open with `--keep-serving`).

mod agent;
mod continuity;
mod day;
mod scale;

use anyhow::Context;
use rezef_adapter::Client;
use rezef_server::{Server, ServerConfig};

const TENANT: &str = "demo-bank";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Keep the server and its dashboard up after the demo, until Ctrl-C.
    #[arg(long)]
    keep_serving: bool,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut config = ServerConfig {
        listen: "127.0.0.1:0".parse()?,
        data_dir: dir.path().to_path_buf(),
        ..ServerConfig::default()
    };
    // A free port: the demo runs beside a `rezef serve` on the default one.
    config.dashboard.listen.set_port(0);
    let server = Server::open(config).await?;
    let addr = format!("http://{}", server.local_addr());
    let dashboard = (server.dashboard_addr())
        .map(|at| format!("http://{at}/?tenant={TENANT}"))
        .context("the demo's server has no dashboard")?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    println!(
        "Rezef backbone serving on {addr} (data in {})\n",
        dir.path().display()
    );

    let mut client = Client::connect(addr).await?;
    let last_offset = continuity::web_chat(&mut client).await?;
    let call = continuity::voice_call(&mut client, last_offset).await?;
    println!();
    agent::resolve(&mut client, &call).await?;
    println!();
    day::morning(&mut client).await?;
    println!();
    let busy_day = scale::day_at_scale(&client).await?;

    println!("\n   The dashboard shows these figures live: {dashboard}");
    println!("   and the simulated day: {dashboard}&day={busy_day}");
    if args.keep_serving {
        println!("   Serving until Ctrl-C.");
        super::serve::shutdown_signal().await;
    } else {
        println!("   (`rezef demo --keep-serving` keeps it open.)");
    }
    let _ = stop.send(());
    serving.await.context("server task")??;
    Ok(())
}

/// `CHANNEL_WEBCHAT` → `webchat`: an enum value as a person reads it.
fn label<E>(name: Result<&str, E>, prefix: &str) -> String {
    name.map_or_else(
        |_| "?".to_owned(),
        |name| {
            name.trim_start_matches(prefix)
                .replace('_', " ")
                .to_lowercase()
        },
    )
}
