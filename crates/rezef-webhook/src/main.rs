//! `rezef-webhook`: any JSON webhook, mapped to Rezef events, as a service.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use rezef_adapter::service;

/// JSON webhooks in, mapped by the routes of the settings file; Rezef events out
/// (docs/adapters.md, "The generic webhook adapter").
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The settings and mapping file (TOML); `REZEF_WEBHOOK_` variables override it.
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
    let settings: rezef_webhook::Settings =
        service::load(args.config.as_deref(), "REZEF_WEBHOOK_").context("settings")?;
    let listener = service::bind(settings.http.listen).await?;
    rezef_webhook::run(settings, listener, service::shutdown_signal()).await?;
    Ok(())
}
