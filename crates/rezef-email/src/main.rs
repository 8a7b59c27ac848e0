//! `rezef-email`: the email channel adapter's binary (the library's documentation says
//! what each mode does).
//!
//! - `rezef-email deliver < message.eml`: one message from a mail server's pipe;
//! - `rezef-email maildir`: polls the configured maildir until stopped (SIGINT, SIGTERM);
//! - `rezef-email flush`: sends what the spool holds, for a pipe setup with no delivery for
//!   a while.

use std::io::Read;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use clap::{Parser, Subcommand};
use rezef_adapter::service::{self, Runtime};
use rezef_email::config::{self, Config};
use rezef_email::deliver::{self, EX_CONFIG, EX_TEMPFAIL};
use rezef_email::intake::Intake;
use rezef_email::maildir::Maildir;

#[derive(Debug, Parser)]
#[command(version, about = "Rezef's email channel adapter")]
struct Cli {
    #[command(flatten)]
    service: service::ServiceArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Takes one message from standard input; exit 0 accepted, 65 malformed, 75 try later.
    Deliver {
        /// How long to wait for the server once the message is accepted (the rest is sent
        /// later).
        #[arg(long, default_value = "5s", value_parser = humantime_duration)]
        grace: Duration,
    },
    /// Takes the messages of the maildir as they arrive, until stopped.
    Maildir {
        /// One pass over `new/`, then exit.
        #[arg(long)]
        once: bool,
    },
    /// Sends the spooled events, waiting up to `timeout` for the server.
    Flush {
        #[arg(long, default_value = "30s", value_parser = humantime_duration)]
        timeout: Duration,
    },
}

fn humantime_duration(s: &str) -> Result<Duration, String> {
    humantime_serde::re::humantime::parse_duration(s).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    service::telemetry::init(cli.service.log_json);
    let config = match config::load(cli.service.config.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("rezef-email: {e}");
            return ExitCode::from(EX_CONFIG);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("rezef-email: cannot start: {e}");
            return ExitCode::from(EX_TEMPFAIL);
        }
    };
    runtime.block_on(run(cli.command, config))
}

async fn run(command: Command, config: Config) -> ExitCode {
    match command {
        Command::Deliver { grace } => {
            let mut raw = Vec::new();
            if let Err(e) = std::io::stdin().read_to_end(&mut raw) {
                eprintln!("rezef-email: cannot read the message: {e}");
                return ExitCode::from(EX_TEMPFAIL);
            }
            deliver::deliver(&config, &raw, deliver::Options { grace }).await
        }
        Command::Maildir { once } => match maildir(&config, once).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("rezef-email: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Flush { timeout } => match deliver::start_publisher(&config).await {
            Ok(publisher) => {
                deliver::close(Arc::new(publisher), timeout).await;
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("rezef-email: {e}");
                ExitCode::from(EX_TEMPFAIL)
            }
        },
    }
}

async fn maildir(config: &Config, once: bool) -> anyhow::Result<()> {
    let path = (config.maildir.path.as_deref())
        .ok_or_else(|| anyhow::anyhow!("maildir.path is not configured"))?;
    let maildir = Maildir::open(path)?;
    if once {
        let publisher = Arc::new(deliver::start_publisher(config).await?);
        let intake = Intake::open(config, publisher)?;
        let pass = maildir.pass(&intake).await?;
        tracing::info!(
            accepted = pass.accepted,
            failed = pass.failed,
            "maildir pass"
        );
        deliver::close(intake.into_publisher(), Duration::from_secs(5)).await;
        return Ok(());
    }
    // Health, readiness and metrics by the adapters' shared runtime, which closes the
    // publisher once the maildir loop has stopped and let go of it.
    let runtime = Runtime::start(&config.rezef, &config.spool()).await?;
    let intake = Intake::open(config, runtime.publisher())?;
    let counters = intake.counters.clone();
    let routes = Router::new().route(
        "/metrics/email",
        get(move || std::future::ready(counters.render())),
    );
    let listener = service::bind(config.http.listen).await?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let interval = config.maildir.poll_interval;
    let polling = tokio::spawn(async move {
        let result = maildir.run(&intake, interval, stopped).await;
        drop(intake);
        result
    });
    let shutdown = async move {
        service::shutdown_signal().await;
        stop.send_replace(true);
        match polling.await {
            Ok(Err(e)) => tracing::error!(error = %e, "the maildir loop failed"),
            Err(e) => tracing::error!(error = %e, "the maildir loop panicked"),
            Ok(Ok(())) => {}
        }
    };
    runtime.serve(listener, routes, shutdown).await?;
    Ok(())
}
