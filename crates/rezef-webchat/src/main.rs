//! `rezef-webchat`: the web chat adapter as a service.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use rezef_adapter::service;

/// A chat widget and its WebSocket in, Rezef events out (docs/adapters.md, "The web chat
/// adapter").
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The settings file (TOML); `REZEF_WEBCHAT_` variables override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Logs as JSON lines.
    #[arg(long)]
    log_json: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    service::telemetry::init(args.log_json);
    let settings: rezef_webchat::Settings =
        service::load(args.config.as_deref(), "REZEF_WEBCHAT_").context("settings")?;
    let listener = service::bind(settings.http.listen).await?;
    rezef_webchat::run(settings, listener, service::shutdown_signal()).await?;
    Ok(())
}
