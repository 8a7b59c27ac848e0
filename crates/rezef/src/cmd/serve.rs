//! `rezef serve`: the backbone on the embedded log (or a Kafka topic), until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;

use rezef_server::Server;

use rezef_server::LogBackend;

use crate::config::{self, KafkaOverrides, LogOverrides, Overrides};

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
    /// Where events are kept: `embedded` (under the data directory) or `kafka`.
    #[arg(long, value_parser = ["embedded", "kafka"])]
    log: Option<String>,
    /// Kafka bootstrap brokers, `host:port[,host:port...]` (with `--log kafka`).
    #[arg(long)]
    kafka_brokers: Option<String>,
    /// The Kafka topic [default: rezef.events].
    #[arg(long)]
    kafka_topic: Option<String>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let backend = args.log.map(|name| match name.as_str() {
        "kafka" => LogBackend::Kafka,
        _ => LogBackend::Embedded,
    });
    let overrides = Overrides {
        listen: args.listen,
        data_dir: args.data_dir,
        routing_config: args.routing_config,
        log: LogOverrides {
            backend,
            kafka: KafkaOverrides {
                brokers: args.kafka_brokers,
                topic: args.kafka_topic,
            },
        },
    };
    let config = config::load(args.config.as_deref(), overrides)?;
    let server = Server::open(config).await?;
    server.run(shutdown_signal()).await?;
    Ok(())
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
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
