//! `rezef-twilio`: the Twilio voice and SMS adapter as a service.

use anyhow::Context;
use clap::Parser;
use rezef_adapter::service;

/// Twilio's voice and SMS webhooks in, Rezef events out (docs/adapters.md, "Twilio").
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    service: service::ServiceArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings: rezef_twilio::Settings = Args::parse()
        .service
        .settings("REZEF_TWILIO_")
        .context("settings")?;
    let listener = service::bind(settings.http.listen).await?;
    rezef_twilio::run(settings, listener, service::shutdown_signal()).await?;
    Ok(())
}
