//! `rezef-email`: the email channel adapter's binary (the library's documentation says
//! what each mode does).
//!
//! - `rezef-email deliver < message.eml`: one message from a mail server's pipe;
//! - `rezef-email maildir`: polls the configured maildir until stopped (SIGINT, SIGTERM);
//! - `rezef-email flush`: sends what the spool holds, for a pipe setup with no delivery for
//!   a while.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use rezef_email::config::{self, Config};
use rezef_email::deliver::{self, EX_CONFIG, EX_TEMPFAIL};
use rezef_email::intake::Intake;
use rezef_email::maildir::Maildir;

#[derive(Debug, Parser)]
#[command(version, about = "Rezef's email channel adapter")]
struct Cli {
    /// The TOML configuration.
    #[arg(long, short, env = "REZEF_EMAIL_CONFIG")]
    config: Option<PathBuf>,
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
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    let config = match config::load(cli.config.as_deref()) {
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
                deliver::close(publisher, timeout).await;
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
    let publisher = deliver::start_publisher(config).await?;
    let mut intake = Intake::open(config, publisher)?;
    if once {
        let pass = maildir.pass(&mut intake).await?;
        tracing::info!(
            accepted = pass.accepted,
            failed = pass.failed,
            "maildir pass"
        );
    } else {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown_signal().await;
            stop.send_replace(true);
        });
        maildir
            .run(&mut intake, config.maildir.poll_interval, stopped)
            .await?;
    }
    deliver::close(intake.into_publisher(), Duration::from_secs(5)).await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => return ctrl_c.await.unwrap_or_default(),
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await.unwrap_or_default();
}
