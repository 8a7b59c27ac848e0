//! [`Intake`]: one message taken whole, in the order that makes a crash harmless: parse and
//! translate (pure), store the attachments, hand the events to the publisher (accepted:
//! fsynced in its spool), then remember the thread. Only then may the caller let go of the
//! message (move it to `cur/`, exit 0 to the mail server). A crash before that takes the
//! message again with the same event ids, which Rezef applies once. Disk work (attachments,
//! the index's fsync, `failed/`) runs on the blocking pool, as the publisher's does.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
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
    index: Arc<Mutex<ThreadIndex>>,
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
            index: Arc::new(Mutex::new(ThreadIndex::open(&config.thread_index())?)),
            store: AttachmentStore::open(&config.attachment_dir())?,
            publisher,
            failed_dir: config.failed_dir(),
            counters: Arc::default(),
        })
    }

    /// Takes the message `raw`, received at `received_at`.
    #[tracing::instrument(skip_all, fields(interaction_id))]
    pub async fn take(&self, raw: &[u8], received_at: SystemTime) -> Result<Taken> {
        let result = self.translate_and_publish(raw, received_at).await;
        self.counters.count(match &result {
            Ok(_) => "accepted",
            Err(e) if e.is_temporary() => "deferred",
            Err(_) => "failed",
        });
        result
    }

    async fn translate_and_publish(&self, raw: &[u8], received_at: SystemTime) -> Result<Taken> {
        let mail = mail::parse(raw)?;
        let mut translation = {
            let index = self.index.lock().unwrap_or_else(PoisonError::into_inner);
            translate(&mail, received_at.into(), &self.settings, &*index)?
        };
        tracing::Span::current().record("interaction_id", &translation.thread.interaction_id);
        let (store, blobs) = (self.store.clone(), std::mem::take(&mut translation.blobs));
        blocking(move || blobs.iter().try_for_each(|blob| store.store(blob))).await?;
        let events = translation.events.len();
        let started = events > 1;
        self.publisher.publish_all(translation.events).await?;
        let index = self.index.clone();
        let (message_id, thread) = (translation.message_id, translation.thread.clone());
        blocking(move || {
            let mut index = index.lock().unwrap_or_else(PoisonError::into_inner);
            index.record(&message_id, &thread)
        })
        .await?;
        tracing::info!(events, started, "message taken");
        Ok(Taken {
            interaction_id: translation.thread.interaction_id,
            events,
            started,
        })
    }

    /// Keeps a malformed message's bytes in `failed/` under `name`.
    pub async fn keep_failed(&self, name: &str, raw: &[u8]) -> Result<PathBuf> {
        let path = self.failed_path(name).await?;
        tokio::fs::write(&path, raw)
            .await
            .map_err(Error::io(&path))?;
        Ok(path)
    }

    /// Moves a malformed message's file into `failed/`.
    pub async fn move_failed(&self, file: &Path) -> Result<PathBuf> {
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
        let path = self
            .failed_path(&name.unwrap_or_else(|| "message".into()))
            .await?;
        if tokio::fs::rename(file, &path).await.is_err() {
            // Another file system: copy, then remove.
            tokio::fs::copy(file, &path)
                .await
                .map_err(Error::io(&path))?;
            tokio::fs::remove_file(file)
                .await
                .map_err(Error::io(file))?;
        }
        Ok(path)
    }

    async fn failed_path(&self, name: &str) -> Result<PathBuf> {
        let dir = &self.failed_dir;
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(Error::io(dir))?;
        Ok(dir.join(name))
    }

    /// The publisher, to close it.
    pub fn into_publisher(self) -> Arc<Publisher> {
        self.publisher
    }
}

/// Runs `work` on the blocking pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::Task(e.to_string()))?
}
