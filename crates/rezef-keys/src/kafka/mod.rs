//! [`KafkaKeyStore`]: the key store of a cluster on Kafka, one compacted topic every node
//! shares (feature `kafka`).
//!
//! On Kafka, a record sealed by one node is read by others (the partition's next owner, a
//! standby, a replay anywhere), so the keys must be where every node finds them: a topic of
//! one partition with `cleanup.policy=compact`, created if missing with the log's replication
//! (`<topic>.keys` beside the log's `<topic>`). Each key is a record whose key is the key id and
//! whose value is the subject's hash and the key (`record.rs`); destroying a key writes a
//! tombstone for its id.
//!
//! - **Durable before use.** `keys_for` writes the new keys with `rezef-log`'s producer
//!   (idempotent, `acks=all`) and returns once every one is acknowledged by the in-sync
//!   replicas: a record is sealed under a key only once the key is below the topic's high
//!   watermark. Calls that make keys take turns (so that concurrent calls agree on a subject's
//!   key); calls that find every key in memory do not wait for them.
//! - **Every node holds every key in memory.** Opening reads the topic from its beginning to
//!   its high watermark, and a thread goes on reading it (`follow.rs`), applying keys and
//!   tombstones (a destroyed key is dropped from memory and never taken back: ids are random
//!   and never reused).
//! - **A miss is not a destroyed key.** Another node's key may be below the high watermark and
//!   not read here yet. So `key` that misses asks the topic for its high watermark, waits (at
//!   most [`CATCH_UP_WAIT`]) until the thread has read that far, and looks again; only then is
//!   the key missing, and the id is remembered as gone (every key acknowledged before the
//!   record was sealed is below that watermark), as are ids seen destroyed: an erased record
//!   costs one look-up, not one per read. `find` catches up the same way first, so that
//!   forgetting destroys every key made before it. Both block the calling thread meanwhile
//!   (the projector's are blocking threads; a replay's or a journey as of a point are tokio
//!   worker threads, which a catch-up holds for its round trip).
//! - **When the topic cannot be read in time** (brokers unreachable), a missing key reads as
//!   missing: the record reads erased in that read and an error is logged. The projection is
//!   folded from the same cluster, so a projector that just read the record mostly reaches the
//!   keys too; should it not, a projection that folded the record erased needs a rebuild.
//! - **Two nodes making a subject's first key at once** both succeed: the subject has two live
//!   keys, records sealed under either open, `keys_for` hands out the one first in the topic
//!   (so the nodes converge on it once they have read both), and `find` names both, so that
//!   forgetting destroys both. A key made by another node after `find` caught up (for an event
//!   sealed while the person was being forgotten) is not destroyed.
//! - **Records that are not keys** (a wrong topic name, a newer format) make opening fail,
//!   naming the offset; read later, they are logged and passed over.
//!
//! Not covered by destroying: a tombstone removes the key from every node's memory at once,
//! but the key's record stays in the topic's log segments until the broker compacts them,
//! which it does not do for the active segment, nor before `min.compaction.lag.ms`, nor at a
//! set time (`log.cleaner.*`, the dirty ratio); the tombstone itself is kept
//! `delete.retention.ms` (a day by default). Until then, whoever can read the topic or the
//! brokers' disks can read the key; to bound that, set `segment.ms`, `max.compaction.lag.ms`
//! and `min.cleanable.dirty.ratio` on the topic. Copies outside the cluster (broker backups,
//! mirrors of the topic, snapshots of the brokers' disks) keep the key for as long as they are
//! kept. Subject hashes are unkeyed, as in the file store. The brokers' access control
//! (ACLs, TLS, SASL from the log's configuration) is what keeps the keys from other readers.

mod follow;
mod live;
mod produce;
mod record;

use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use rezef_log::kafka::{KafkaConfig, TopicSettings, ensure_topic};

use crate::group;
use crate::store::{self, Plan};
use crate::{DataKey, Error, KeyId, KeyStore, Result, Subject};
use follow::{Follower, Progress};
use live::{Live, Lookup};
use produce::Writer;

/// Longest a lookup that missed waits for the topic's keys made elsewhere.
pub const CATCH_UP_WAIT: Duration = Duration::from_secs(5);

/// What the store and its follower thread share.
#[derive(Debug, Default)]
struct Shared {
    live: RwLock<Live>,
    progress: Progress,
}

impl Shared {
    fn live(&self) -> RwLockReadGuard<'_, Live> {
        self.live.read().unwrap_or_else(|p| p.into_inner())
    }

    fn live_mut(&self) -> RwLockWriteGuard<'_, Live> {
        self.live.write().unwrap_or_else(|p| p.into_inner())
    }
}

/// A [`KeyStore`] in a compacted Kafka topic shared by every node; see the
/// [module docs](self) for how, and what destroying does not cover.
#[derive(Debug)]
pub struct KafkaKeyStore {
    topic: String,
    writer: Writer,
    /// Serialises the calls that write the topic.
    writing: Mutex<()>,
    /// `keys_for` calls waiting for `writing`, made by whoever holds it.
    queue: group::Queue,
    shared: Arc<Shared>,
    /// Stops the follower thread when the store is dropped.
    _follower: Follower,
}

impl KafkaKeyStore {
    /// Opens the key store in `config.topic` (its `partition` is not used: the topic has one),
    /// creating the topic if missing (one partition, `replication` replicas, compacted), and
    /// reads it to its end. Connects with `config`'s brokers, timeout and `extra` (TLS, SASL).
    ///
    /// Errors: [`Error::Kafka`] when the brokers refuse or cannot be reached within
    /// `config.request_timeout`, an existing topic cannot be read, or it holds a record that
    /// is not a key.
    pub async fn open(config: KafkaConfig, replication: i32) -> Result<KafkaKeyStore> {
        let mut settings = TopicSettings::new(1, replication);
        settings.compacted = true;
        ensure_topic(&config, &settings)
            .await
            .map_err(|e| Error::Kafka(format!("create the key topic {}: {e}", config.topic)))?;
        let writer = Writer::new(&config)?;
        let timeout = config.request_timeout;
        let (writer, end) = tokio::task::spawn_blocking(move || {
            let end = writer.high_watermark(timeout);
            (writer, end)
        })
        .await
        .map_err(|e| Error::Kafka(format!("opening the key topic stopped: {e}")))?;
        let end = end?;
        let shared = Arc::new(Shared::default());
        let (follower, loaded) = Follower::start(&config, shared.clone(), end)?;
        let read = loaded.await.map_err(|_| {
            Error::Kafka(format!(
                "the reader of {} stopped while opening",
                config.topic
            ))
        });
        read.and_then(|read| read)?;
        tracing::info!(topic = %config.topic, end, "opened the key store on Kafka");
        Ok(KafkaKeyStore {
            topic: config.topic,
            writer,
            writing: Mutex::new(()),
            queue: group::Queue::default(),
            shared,
            _follower: follower,
        })
    }

    fn writing(&self) -> MutexGuard<'_, ()> {
        self.writing.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits (at most [`CATCH_UP_WAIT`]) until every key acknowledged before now is in
    /// memory; whether it is.
    fn catch_up(&self) -> bool {
        let deadline = Instant::now() + CATCH_UP_WAIT;
        match self.writer.high_watermark(CATCH_UP_WAIT) {
            Ok(end) => self.shared.progress.wait_for(end, deadline),
            Err(error) => {
                tracing::error!(%error, "cannot catch up with the key topic");
                false
            }
        }
    }

    /// Each subject's key from memory, with the keys to make for those that have none.
    fn plan(&self, subjects: &[Subject]) -> Result<Plan> {
        let live = self.shared.live();
        store::plan(subjects, |hash| live.first(hash))
    }

    /// Each subject's key, the new ones acknowledged by the brokers before they are live (the
    /// caller holds `writing`: a call before may have made some of them).
    fn make(&self, subjects: &[Subject]) -> Result<Vec<(KeyId, DataKey)>> {
        let (keys, made) = self.plan(subjects)?;
        if made.is_empty() {
            return Ok(keys);
        }
        let values: Vec<_> = (made.iter())
            .map(|m| record::value(&m.subject, &m.key))
            .collect();
        let records: Vec<(KeyId, Option<&[u8]>)> = (made.iter().zip(&values))
            .map(|(m, value)| (m.id, Some(&value[..])))
            .collect();
        let offsets = self.writer.write(&records)?;
        let mut live = self.shared.live_mut();
        for (m, offset) in made.into_iter().zip(offsets) {
            live.made(offset, m.id, m.subject, m.key);
        }
        Ok(keys)
    }
}

impl KeyStore for KafkaKeyStore {
    fn keys_for(&self, subjects: &[Subject]) -> Result<Vec<(KeyId, DataKey)>> {
        let (keys, made) = self.plan(subjects)?;
        if made.is_empty() {
            return Ok(keys);
        }
        group::keys_for(
            &self.queue,
            subjects,
            || self.writing(),
            |_writing, subjects| self.make(subjects),
        )
    }

    fn key(&self, id: &KeyId) -> Option<DataKey> {
        match self.shared.live().lookup(id) {
            Lookup::Live(key) => return Some(key),
            Lookup::Gone => return None,
            Lookup::Unknown => {}
        }
        let caught_up = self.catch_up();
        let mut live = self.shared.live_mut();
        match live.lookup(id) {
            Lookup::Live(key) => Some(key),
            Lookup::Gone => None,
            Lookup::Unknown if caught_up => {
                live.absent(*id);
                None
            }
            Lookup::Unknown => {
                tracing::error!(topic = %self.topic, key_id = %id, "a key not found in memory, and the key topic not read in time: the record reads erased");
                None
            }
        }
    }

    fn find(&self, subject: &Subject) -> Vec<KeyId> {
        if !self.catch_up() {
            tracing::error!(topic = %self.topic, "finding a subject's keys without the key topic read to its end: keys other nodes made just now may be missed");
        }
        self.shared.live().ids(&subject.hash())
    }

    fn destroy(&self, ids: &[KeyId]) -> Result<()> {
        let _writing = self.writing();
        let mut ids: Vec<KeyId> = {
            let live = self.shared.live();
            ids.iter().filter(|id| !live.is_gone(id)).copied().collect()
        };
        ids.sort_unstable();
        ids.dedup();
        if ids.is_empty() {
            return Ok(());
        }
        let tombstones: Vec<(KeyId, Option<&[u8]>)> = ids.iter().map(|&id| (id, None)).collect();
        self.writer.write(&tombstones)?;
        let mut live = self.shared.live_mut();
        for id in ids {
            live.destroyed(id);
        }
        Ok(())
    }
}
