//! What the store's integration tests share: a real embedded log in a temp dir, real sled
//! stores beside it (behind the projection in memory, as the server opens them), and
//! projecting up to the log's end.

#![allow(dead_code)] // each test file uses its own part

pub mod identity_log;

use std::sync::Arc;

use bytes::Bytes;
use rezef_events::Event;
use rezef_log::{EmbeddedLog, EmbeddedLogConfig, Log};
use rezef_store::{CachedStore, JourneyStore, ProjectionConfig, Projector, SledStore};
use tempfile::TempDir;

pub struct Fixture {
    dir: TempDir,
    pub log: Arc<EmbeddedLog>,
}

impl Fixture {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = EmbeddedLog::open(EmbeddedLogConfig::new(dir.path().join("log"))).expect("log");
        Self { dir, log }
    }

    /// Opens (or reopens) a store as the server does: sled behind the projection in memory,
    /// with the default configuration.
    pub fn store(&self, name: &str) -> Arc<CachedStore> {
        self.cached(name, ProjectionConfig::default())
    }

    /// A store behind the projection in memory configured so.
    pub fn cached(&self, name: &str, config: ProjectionConfig) -> Arc<CachedStore> {
        Arc::new(CachedStore::new(self.sled(name), config).expect("cached store"))
    }

    /// Opens (or reopens) a sled store in the fixture's directory ([`open_sled`]).
    pub fn sled(&self, name: &str) -> Arc<dyn JourneyStore> {
        Arc::new(open_sled(&self.path(name)))
    }

    /// Where the store `name` is kept.
    pub fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    pub fn log(&self) -> Arc<dyn Log> {
        self.log.clone()
    }

    pub async fn publish(&self, events: &[Event]) {
        self.publish_as(events, rezef_record::encode).await;
    }

    /// Publishes in the record format `encode` writes (e.g. the JSON of earlier versions).
    pub async fn publish_as(&self, events: &[Event], encode: fn(&Event) -> Vec<u8>) {
        for chunk in events.chunks(7) {
            let payloads = chunk.iter().map(|e| Bytes::from(encode(e))).collect();
            self.log.append(payloads).await.expect("append");
        }
    }
}

/// Opens (or reopens) a sled store. sled releases its file lock when its background
/// flusher exits, shortly after the last handle is dropped, so a reopen retries.
pub fn open_sled(path: &std::path::Path) -> SledStore {
    let mut attempts = 0;
    loop {
        match SledStore::open(path) {
            Ok(store) => return store,
            Err(error) if attempts < 100 && error.to_string().contains("lock") => {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(error) => panic!("store: {error}"),
        }
    }
}

/// Projects the whole log into `store` under the default policy.
pub async fn project(fixture: &Fixture, store: &Arc<CachedStore>) {
    Projector::new(fixture.log(), store.clone())
        .expect("projector")
        .catch_up(fixture.log.end_offset(), |_| {})
        .await
        .expect("catch up");
}
