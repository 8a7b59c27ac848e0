//! `rezef-webchat`: the web chat adapter as a service.

use anyhow::Context;
use clap::Parser;
use rezef_adapter::service;

/// A chat widget and its WebSocket in, Rezef events out (docs/adapters.md, "The web chat
/// adapter").
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    service: service::ServiceArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings: rezef_webchat::Settings = Args::parse()
        .service
        .settings("REZEF_WEBCHAT_")
        .context("settings")?;
    let listener = service::bind(settings.http.listen).await?;
    rezef_webchat::run(settings, listener, service::shutdown_signal()).await?;
    Ok(())
}
