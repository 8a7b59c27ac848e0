//! [`Intake`]: one message taken whole, in the order that makes a crash harmless: parse and
//! translate (pure), store the attachments, hand the events to the publisher (accepted:
//! fsynced in its spool), then remember the thread. Only then may the caller let go of the
//! message (move it to `cur/`, exit 0 to the mail server). A crash before that takes the
//! message again with the same event ids, which Rezef applies once.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use rezef_adapter::Publisher;

use crate::attachments::AttachmentStore;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::mail;
use crate::metrics::Counters;
use crate::threads::ThreadIndex;
use crate::translate::{Settings, translate};

/// What was taken of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    pub interaction_id: String,
    pub events: usize,
    /// Whether it started a new interaction (else it continued a known thread).
    pub started: bool,
}

#[derive(Debug)]
pub struct Intake {
    settings: Settings,
    index: ThreadIndex,
    store: AttachmentStore,
    publisher: Arc<Publisher>,
    failed_dir: PathBuf,
    pub counters: Arc<Counters>,
}

impl Intake {
    /// Opens the thread index and the attachment store of `config`, publishing through
    /// `publisher`.
    pub fn open(config: &Config, publisher: Arc<Publisher>) -> Result<Self> {
        std::fs::create_dir_all(&config.data_dir).map_err(Error::io(&config.data_dir))?;
        Ok(Self {
            settings: config.settings()?,
            index: ThreadIndex::open(&config.thread_index())?,
            store: AttachmentStore::open(&config.attachment_dir())?,
            publisher,
            failed_dir: config.failed_dir(),
            counters: Arc::default(),
        })
    }

    /// Takes the message `raw`, received at `received_at`.
    #[tracing::instrument(skip_all, fields(interaction_id))]
    pub async fn take(&mut self, raw: &[u8], received_at: SystemTime) -> Result<Taken> {
        let result = self.translate_and_publish(raw, received_at).await;
        self.counters.count(match &result {
            Ok(_) => "accepted",
            Err(e) if e.is_temporary() => "deferred",
            Err(_) => "failed",
        });
        result
    }

    async fn translate_and_publish(
        &mut self,
        raw: &[u8],
        received_at: SystemTime,
    ) -> Result<Taken> {
        let mail = mail::parse(raw)?;
        let translation = translate(&mail, received_at.into(), &self.settings, &self.index)?;
        tracing::Span::current().record("interaction_id", &translation.thread.interaction_id);
        for blob in &translation.blobs {
            self.store.store(blob)?;
        }
        let events = translation.events.len();
        let started = events > 1;
        self.publisher.publish_all(translation.events).await?;
        self.index
            .record(&translation.message_id, &translation.thread)?;
        tracing::info!(events, started, "message taken");
        Ok(Taken {
            interaction_id: translation.thread.interaction_id,
            events,
            started,
        })
    }

    /// Keeps a malformed message's bytes in `failed/` under `name`.
    pub fn keep_failed(&self, name: &str, raw: &[u8]) -> Result<PathBuf> {
        let path = self.failed_path(name)?;
        std::fs::write(&path, raw).map_err(Error::io(&path))?;
        Ok(path)
    }

    /// Moves a malformed message's file into `failed/`.
    pub fn move_failed(&self, file: &Path) -> Result<PathBuf> {
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
        let path = self.failed_path(&name.unwrap_or_else(|| "message".into()))?;
        if std::fs::rename(file, &path).is_err() {
            // Another file system: copy, then remove.
            std::fs::copy(file, &path).map_err(Error::io(&path))?;
            std::fs::remove_file(file).map_err(Error::io(file))?;
        }
        Ok(path)
    }

    fn failed_path(&self, name: &str) -> Result<PathBuf> {
        std::fs::create_dir_all(&self.failed_dir).map_err(Error::io(&self.failed_dir))?;
        Ok(self.failed_dir.join(name))
    }

    /// The publisher, to close it.
    pub fn into_publisher(self) -> Arc<Publisher> {
        self.publisher
    }
}
