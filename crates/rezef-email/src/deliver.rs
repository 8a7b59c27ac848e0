//! The pipe mode (`rezef-email deliver < message`): what a mail server's `pipe` transport
//! runs for each message. The exit code is the answer (sysexits.h): 0 once the events are
//! accepted (on disk in the spool), `EX_TEMPFAIL` when they cannot be now (the spool full or
//! held by another delivery past the wait, a disk error: the mail server keeps the message
//! and retries), `EX_DATAERR` for a malformed message (kept in `failed/`; the mail server
//! bounces it), `EX_CONFIG` for a configuration that does not load.
//!
//! Each delivery opens the publisher's spool for itself (one at a time: a second waits up to
//! [`LOCK_WAIT`] for it), sends what it can for [`Options::grace`] and leaves the rest in
//! the spool, for the next delivery or `rezef-email flush` to send.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rezef_adapter::Publisher;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::intake::Intake;

pub const EX_OK: u8 = 0;
pub const EX_DATAERR: u8 = 65;
pub const EX_TEMPFAIL: u8 = 75;
pub const EX_CONFIG: u8 = 78;

/// How long a delivery waits for another to release the spool.
pub const LOCK_WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// How long to wait for the server after the events are accepted.
    pub grace: Duration,
}

/// Takes `raw` and answers with the exit code for the mail server.
pub async fn deliver(config: &Config, raw: &[u8], options: Options) -> ExitCode {
    let code = match run(config, raw, options).await {
        Ok(()) => EX_OK,
        Err(Error::Malformed(_)) => EX_DATAERR,
        Err(Error::Config(_))
        | Err(Error::Publish(
            rezef_adapter::Error::Config(_)
            | rezef_adapter::Error::Token(_)
            | rezef_adapter::Error::Tls(_),
        )) => EX_CONFIG,
        Err(_) => EX_TEMPFAIL,
    };
    ExitCode::from(code)
}

async fn run(config: &Config, raw: &[u8], options: Options) -> Result<()> {
    let publisher = Arc::new(start_publisher(config).await?);
    let intake = Intake::open(config, publisher)?;
    match intake.take(raw, SystemTime::now()).await {
        Ok(taken) => {
            tracing::info!(interaction_id = %taken.interaction_id, "delivered");
            close(intake.into_publisher(), options.grace).await;
            Ok(())
        }
        Err(Error::Malformed(why)) => {
            let name = format!("{}.eml", blake3::hash(raw).to_hex());
            let kept = intake.keep_failed(&name, raw).await?;
            tracing::warn!(reason = %why, file = %kept.display(), "malformed message kept in failed/");
            close(intake.into_publisher(), options.grace).await;
            Err(Error::Malformed(why))
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot take the message now");
            close(intake.into_publisher(), options.grace).await;
            Err(e)
        }
    }
}

/// Starts the publisher, waiting up to [`LOCK_WAIT`] for another process to release the
/// spool.
pub async fn start_publisher(config: &Config) -> Result<Publisher> {
    let deadline = tokio::time::Instant::now() + LOCK_WAIT;
    loop {
        match Publisher::start(config.client()?, config.publisher()).await {
            Err(rezef_adapter::Error::SpoolLocked { .. })
                if tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => return Ok(other?),
        }
    }
}

/// Sends what the server takes within `grace`; the rest stays spooled.
pub async fn close(publisher: Arc<Publisher>, grace: Duration) {
    let Some(publisher) = Arc::into_inner(publisher) else {
        tracing::warn!("the publisher is still in use; not closed");
        return;
    };
    match publisher.close(grace).await {
        Ok(closed) if closed.unsent > 0 => {
            tracing::info!(unsent = closed.unsent, "events left in the spool for later")
        }
        Ok(_) => {}
        Err(e) => tracing::error!(error = %e, "the publisher closed with an error"),
    }
}
