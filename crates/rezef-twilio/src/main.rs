//! `rezef-twilio`: the Twilio voice and SMS adapter as a service.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use rezef_adapter::service;

/// Twilio's voice and SMS webhooks in, Rezef events out (docs/adapters.md, "Twilio").
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The settings file (TOML); `REZEF_TWILIO_` variables override it.
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
    let settings: rezef_twilio::Settings =
        service::load(args.config.as_deref(), "REZEF_TWILIO_").context("settings")?;
    let listener = service::bind(settings.http.listen).await?;
    rezef_twilio::run(settings, listener, service::shutdown_signal()).await?;
    Ok(())
}
