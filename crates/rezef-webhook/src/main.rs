//! `rezef-webhook`: any JSON webhook, mapped to Rezef events, as a service.

use anyhow::Context;
use clap::Parser;
use rezef_adapter::service;

/// JSON webhooks in, mapped by the routes of the settings file; Rezef events out
/// (docs/adapters.md, "The generic webhook adapter").
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    service: service::ServiceArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings: rezef_webhook::Settings = Args::parse()
        .service
        .settings("REZEF_WEBHOOK_")
        .context("settings")?;
    let listener = service::bind(settings.http.listen).await?;
    rezef_webhook::run(settings, listener, service::shutdown_signal()).await?;
    Ok(())
}
