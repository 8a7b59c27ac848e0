//! The maildir mode: messages a mail server (or `fetchmail`, `getmail`) delivered into
//! `new/` are taken in name order (delivery time first, by maildir's naming) and moved to
//! `cur/` with the seen flag (`:2,S`) once the publisher accepted their events; malformed
//! ones move to `failed/`. A message that cannot be taken now (the spool full, a disk
//! error) stays in `new/`, and the pass stops there so that later messages do not overtake
//! it; the next pass tries again.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use crate::error::{Error, Result};
use crate::intake::Intake;

/// What one pass over `new/` did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    pub accepted: usize,
    pub failed: usize,
    /// Set: a message stayed in `new/` for later, and the pass stopped at it.
    pub deferred: bool,
}

#[derive(Debug, Clone)]
pub struct Maildir {
    new: PathBuf,
    cur: PathBuf,
}

impl Maildir {
    /// The maildir at `path`; `new/`, `cur/` and `tmp/` are created if missing.
    pub fn open(path: &Path) -> Result<Self> {
        for sub in ["new", "cur", "tmp"] {
            let dir = path.join(sub);
            std::fs::create_dir_all(&dir).map_err(Error::io(&dir))?;
        }
        Ok(Self {
            new: path.join("new"),
            cur: path.join("cur"),
        })
    }

    /// Takes every message in `new/`.
    pub async fn pass(&self, intake: &Intake) -> Result<Pass> {
        let mut names = Vec::new();
        let mut entries = tokio::fs::read_dir(&self.new)
            .await
            .map_err(Error::io(&self.new))?;
        while let Some(entry) = entries.next_entry().await.map_err(Error::io(&self.new))? {
            if entry.file_type().await.is_ok_and(|t| t.is_file()) {
                names.push(entry.file_name());
            }
        }
        names.sort();
        let mut pass = Pass::default();
        for name in names {
            let path = self.new.join(&name);
            let raw = tokio::fs::read(&path).await.map_err(Error::io(&path))?;
            let received_at = (tokio::fs::metadata(&path).await.and_then(|m| m.modified()))
                .unwrap_or_else(|_| SystemTime::now());
            match intake.take(&raw, received_at).await {
                Ok(_) => {
                    let seen = self.cur.join(format!("{}:2,S", name.to_string_lossy()));
                    tokio::fs::rename(&path, &seen)
                        .await
                        .map_err(Error::io(&seen))?;
                    pass.accepted += 1;
                }
                Err(Error::Malformed(why)) => {
                    let kept = intake.move_failed(&path).await?;
                    tracing::warn!(reason = %why, file = %kept.display(), "malformed message moved to failed/");
                    pass.failed += 1;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "a message stays in new/ for the next pass");
                    pass.deferred = true;
                    break;
                }
            }
        }
        Ok(pass)
    }

    /// Passes over `new/` every `interval` until `stop` turns true.
    pub async fn run(
        &self,
        intake: &Intake,
        interval: Duration,
        mut stop: watch::Receiver<bool>,
    ) -> Result<()> {
        loop {
            match self.pass(intake).await {
                Ok(pass) if pass.accepted + pass.failed > 0 => {
                    tracing::info!(
                        accepted = pass.accepted,
                        failed = pass.failed,
                        "maildir pass"
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "maildir pass failed"),
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = stop.wait_for(|stop| *stop) => return Ok(()),
            }
        }
    }
}
