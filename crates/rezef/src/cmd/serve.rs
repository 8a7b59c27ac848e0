//! `rezef serve`: the backbone on the embedded log (or a Kafka topic), until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;

use rezef_server::Server;

use crate::config::{self, AuthOverrides, ClusterOverrides, ListenerOverrides, LogArgs, Overrides};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on [default: 127.0.0.1:50051].
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Directory for the log and the journey store [default: ./rezef-data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// A TOML configuration file.
    #[arg(long, env = "REZEF_CONFIG")]
    config: Option<PathBuf>,
    /// A routing configuration every tenant starts with (see deploy/routing.toml).
    #[arg(long)]
    routing_config: Option<PathBuf>,
    #[command(flatten)]
    log: LogArgs,
    /// This node's id among the nodes sharing a Kafka log [default: <hostname>-<port>].
    #[arg(long)]
    node_id: Option<String>,
    /// Where the other nodes reach this one, e.g. http://rezef-0.rezef-headless:50051
    /// [default: http:// and the listen address].
    #[arg(long)]
    advertise_url: Option<String>,
    /// How many other nodes keep a standby copy of each partition [default: 1].
    #[arg(long)]
    standby_replicas: Option<u32>,
    /// Serve without API keys on a non-loopback address: anyone who reaches it may read and
    /// change every tenant's data. Development only (docs/security.md).
    #[arg(long)]
    insecure: bool,
    /// Serve Prometheus's /metrics at this address, e.g. 127.0.0.1:9464 (turns `[metrics]`
    /// on; deploy/OPERATIONS.md, "Metrics").
    #[arg(long)]
    metrics_listen: Option<SocketAddr>,
    /// Serve the live web dashboard at this address [default: 127.0.0.1:8080; port 0 picks a
    /// free one] (turns `[dashboard]` on; docs/dashboard.md).
    #[arg(long)]
    dashboard_listen: Option<SocketAddr>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let overrides = Overrides {
        listen: args.listen,
        data_dir: args.data_dir,
        routing_config: args.routing_config,
        log: args.log.into(),
        cluster: ClusterOverrides {
            node_id: args.node_id,
            advertise_url: args.advertise_url,
            standby_replicas: args.standby_replicas,
        },
        auth: AuthOverrides {
            insecure: args.insecure.then_some(true),
        },
        metrics: ListenerOverrides::listen(args.metrics_listen),
        dashboard: ListenerOverrides::listen(args.dashboard_listen),
    };
    let config = config::load(args.config.as_deref(), overrides)?;
    let server = Server::open(config).await?;
    server.run(shutdown_signal()).await?;
    Ok(())
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for SIGTERM");
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}
