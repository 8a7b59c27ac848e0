//! The embedded journey store on sled. One tree, keys prefixed by kind and tenant, so that
//! a projection step is a single atomic `apply_batch` (state, indexes and offset together).
//!
//! | key                                   | value                     |
//! |---------------------------------------|---------------------------|
//! | `meta/offset`                         | next offset, u64 BE       |
//! | `meta/format`                         | state format, u32 BE      |
//! | `j` tenant `\0` customer              | journey (postcard)        |
//! | `i` tenant `\0` identity key          | customer id               |
//! | `x` tenant `\0` attribute entry       | customer id (also the entry's end) |
//! | `d` generation first-offset            | digests of applied event ids (16 bytes each) |
//! | `c` tenant `\0` customer `\0` first   | the customer's offsets of one step, from `first` (u64 BE), as LEB128 deltas |
//! | `a` tenant `\0` agent                 | agent state (postcard)    |
//! | `v` tenant `\0` conversation          | customer id               |
//! | `t` tenant `\0` continuation token    | expiry (i64 BE ns), customer id, then `\0` and the channels it may be used on, comma-separated, if limited |
//! | `r` tenant                            | routing version (u64 BE), its TOML |
//! | `w` tenant `\0` interaction           | a contact routing holds (postcard) |
//! | `meta/measure-format`                 | measurement format, u32 BE ([`MEASURE_FORMAT`]) |
//! | `m`                                   | the partition's measurer (postcard, `rezef_measure::Measurer`) |
//! | `f` tenant `\0` width start dims       | a bucket's figures (postcard, `rezef_measure::Figures`); width `q` (15 min) or `d` (day), start the interval's (ns, i64 with the sign bit flipped, BE: keys sort by time), dims its queue, channel and intent (postcard) |
//!
//! The measurement (`m`, `f`; `crate::measurement`) goes in the same checkpoint as the
//! journeys and the offset.
//!
//! A large checkpoint is written in pieces through a redo journal beside sled's files
//! (`checkpoint.journal`), to bound sled's memory (see `pieces`).
//!
//! sled stops writing for good after its first I/O error (a full disk): every later write
//! fails with that error, while reads still answer. So [`JourneyStore::recover`] reopens it,
//! once a probe shows the disk takes writes again: the checkpoint that failed is held in
//! memory above and written again, and sled's recovery (with the journal's) leaves the
//! store at its last whole checkpoint, as after a crash.
//!
//! Ids never contain NUL (they are validated printable text), so `\0` separates safely.

use std::ops::{Bound, Range};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use rezef_events::agent::AgentState;
use rezef_events::journey::STATE_FORMAT;
use rezef_events::routed::RoutedContact;
use rezef_events::{
    AgentId, Channel, ChannelIdentity, ConversationId, CustomerId, InteractionId, Journey,
    TenantId, Timestamp,
};

use rezef_measure::{Figures, Interval, Measurer};

use crate::dedup::AppliedIds;
use crate::measurement::{StoredBucket, StoredKey};
use crate::store::{Index, JourneyStore, ProjectionBatch, RoutingConfigRecord, TokenGrant};
use crate::{Error, Result};
use rezef_events::by_tenant::HashMap;

mod measured;
mod pieces;

use pieces::Writes;

/// sled's page cache per store unless configured (`[projection] store_cache_mib`). Journeys
/// are read from the projection's own cache first ([`crate::JourneyCache`]); sled's caches
/// its pages, which its writes and the misses of that cache go through.
pub const DEFAULT_STORE_CACHE_BYTES: u64 = 512 << 20;

/// sled lets go of its directory lock from a background thread after the last handle to a
/// store drops (spacejam/sled#1234), so a store closed and opened again in one process (a
/// node reopening a partition, a test) may find the lock still taken for a moment. Opening
/// waits up to this long for it; a store another live process holds is refused after it.
const LOCK_WAIT: Duration = Duration::from_secs(2);

/// Opens sled with `config`, retrying while its directory lock is taken, up to [`LOCK_WAIT`].
fn open_waiting_for_lock(config: &sled::Config) -> sled::Result<sled::Db> {
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        match config.open() {
            // sled reports a taken lock only in its message.
            Err(sled::Error::Io(e))
                if e.to_string().starts_with("could not acquire lock")
                    && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            opened => return opened,
        }
    }
}

/// Opens sled in `path` and finishes a checkpoint a crash cut short.
fn open_sled(path: &Path, cache_bytes: u64) -> Result<sled::Db> {
    let config = sled::Config::new()
        .path(path)
        .cache_capacity(cache_bytes)
        .flush_every_ms(Some(1000));
    let db = open_waiting_for_lock(&config).map_err(|source| match &source {
        sled::Error::Io(e) if e.kind() == std::io::ErrorKind::StorageFull => Error::NoSpace {
            path: path.to_path_buf(),
            source,
        },
        _ => Error::Open {
            path: path.to_path_buf(),
            source,
        },
    })?;
    pieces::recover(&db, path)?;
    Ok(db)
}

/// Marks an empty store with this build's formats: both in one batch, flushed, so that a
/// crash cannot leave one without the other (a new store that read as pre-measurement).
fn stamp_formats(db: &sled::Db) -> Result<()> {
    let mut batch = sled::Batch::default();
    batch.insert(FORMAT_KEY, &STATE_FORMAT.to_be_bytes());
    batch.insert(MEASURE_FORMAT_KEY, &MEASURE_FORMAT.to_be_bytes());
    db.apply_batch(batch)?;
    db.flush()?;
    Ok(())
}

/// Bytes a probe writes to learn whether the store's disk takes writes again.
const PROBE_BYTES: usize = 1024 * 1024;

/// Writes [`PROBE_BYTES`] beside sled's files, syncs and removes them.
fn probe_disk(dir: &Path) -> Result<()> {
    use std::io::Write;
    let path = dir.join("space.probe");
    let written = std::fs::File::create(&path).and_then(|mut file| {
        file.write_all(&vec![0; PROBE_BYTES])?;
        file.sync_data()
    });
    let removed = std::fs::remove_file(&path);
    written
        .and(removed)
        .map_err(|source| Error::Journal { path, source })
}

/// A customer id stored as a value.
fn customer_id(value: &[u8]) -> Option<CustomerId> {
    CustomerId::new(std::str::from_utf8(value).ok()?).ok()
}

/// An entry this build cannot read.
fn corrupt(key: &[u8]) -> Error {
    Error::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        source: rezef_events::Error::UnsupportedFormat(0),
    }
}

const OFFSET_KEY: &[u8] = b"meta/offset";
const FORMAT_KEY: &[u8] = b"meta/format";
const MEASURE_FORMAT_KEY: &[u8] = b"meta/measure-format";

/// The layout of the measurement (`m`, `f`): a change of `rezef_measure`'s stored types
/// or of the keys bumps it, and a store of another (or none, written before measurement) is
/// rebuilt. 2: bucket keys sort by start time, figures count unresolved conversations,
/// spreads are sparse.
pub const MEASURE_FORMAT: u32 = 2;

/// The sled-backed journey store.
#[derive(Debug, Clone)]
pub struct SledStore {
    /// `None` only while a reopen failed; the next [`JourneyStore::recover`] tries again.
    db: Arc<RwLock<Option<sled::Db>>>,
    path: PathBuf,
    cache_bytes: u64,
    /// One commit (or clear) at a time: a large one goes through the store's one journal,
    /// and a journal applied again after a crash must not overwrite a later commit.
    writing: Arc<Mutex<()>>,
}

fn key(kind: u8, tenant: &TenantId, rest: &[&[u8]]) -> Vec<u8> {
    let mut key = Vec::with_capacity(64);
    key.push(kind);
    key.extend_from_slice(tenant.as_str().as_bytes());
    for part in rest {
        key.push(0);
        key.extend_from_slice(part);
    }
    key
}

/// The key prefix of one generation of applied ids (`crate::dedup`).
fn applied_key(generation: u64) -> Vec<u8> {
    let mut key = vec![b'd'];
    key.extend_from_slice(&generation.to_be_bytes());
    key
}

fn be_u64(bytes: &[u8]) -> Option<u64> {
    bytes.try_into().ok().map(u64::from_be_bytes)
}

/// Ascending offsets as LEB128 deltas after the first (which is in the key).
fn encode_offsets(offsets: &[u64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(offsets.len() * 2);
    let mut previous = offsets[0];
    for &offset in &offsets[1..] {
        let mut delta = offset - previous;
        previous = offset;
        loop {
            let byte = (delta & 0x7f) as u8;
            delta >>= 7;
            if delta == 0 {
                out.push(byte);
                break;
            }
            out.push(byte | 0x80);
        }
    }
    out
}

fn decode_offsets(first: u64, bytes: &[u8]) -> Option<Vec<u64>> {
    let mut offsets = vec![first];
    let (mut current, mut delta, mut shift) = (first, 0u64, 0u32);
    for &byte in bytes {
        delta |= u64::from(byte & 0x7f).checked_shl(shift)?;
        if byte & 0x80 == 0 {
            current = current.checked_add(delta)?;
            offsets.push(current);
            (delta, shift) = (0, 0);
        } else {
            shift += 7;
        }
    }
    (shift == 0).then_some(offsets)
}

impl SledStore {
    fn lock_writing(&self) -> MutexGuard<'_, ()> {
        self.writing.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens (or creates) the store in `path` with sled's default page cache here
    /// ([`DEFAULT_STORE_CACHE_BYTES`]).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with_cache(path, DEFAULT_STORE_CACHE_BYTES)
    }

    /// Opens (or creates) the store in `path`, sled keeping up to `cache_bytes` of its pages
    /// in memory. A store written by a build with another state format is refused with
    /// [`Error::FormatMismatch`]; `rezef rebuild` fixes that. A store another process has
    /// open is refused with [`Error::Open`] after a short wait.
    pub fn open_with_cache(path: impl AsRef<Path>, cache_bytes: u64) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let db = open_sled(&path, cache_bytes)?;
        let store = Self {
            db: Arc::new(RwLock::new(Some(db.clone()))),
            path,
            cache_bytes,
            writing: Arc::default(),
        };
        match db.get(FORMAT_KEY)? {
            Some(found) => {
                let found = found
                    .as_ref()
                    .try_into()
                    .map(u32::from_be_bytes)
                    .unwrap_or(0);
                if found != STATE_FORMAT {
                    return Err(Error::FormatMismatch {
                        found,
                        expected: STATE_FORMAT,
                    });
                }
            }
            None => stamp_formats(&db)?,
        }
        let found = (db.get(MEASURE_FORMAT_KEY)?)
            .and_then(|found| found.as_ref().try_into().ok().map(u32::from_be_bytes))
            .unwrap_or(0);
        if found != MEASURE_FORMAT {
            return Err(Error::MeasureFormatMismatch {
                found,
                expected: MEASURE_FORMAT,
            });
        }
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// sled, unless a reopen failed.
    fn db(&self) -> Result<sled::Db> {
        let db = self.db.read().unwrap_or_else(|e| e.into_inner());
        db.clone().ok_or_else(|| Error::Reopening {
            path: self.path.clone(),
        })
    }

    /// Bytes the store occupies on disk.
    pub fn size_on_disk(&self) -> Result<u64> {
        Ok(self.db()?.size_on_disk()?)
    }

    /// A customer id stored as the value of `key`.
    fn customer_at(&self, key: Vec<u8>) -> Result<Option<CustomerId>> {
        Ok(self.db()?.get(&key)?.and_then(|value| customer_id(&value)))
    }

    /// The entries of one kind across tenants, from after the key `after` (its first for
    /// `None`), at most `limit`.
    fn kind_after(
        &self,
        kind: u8,
        after: Option<Vec<u8>>,
        limit: usize,
    ) -> impl Iterator<Item = Result<(sled::IVec, sled::IVec)>> {
        let from = after.map_or(Bound::Included(vec![kind]), Bound::Excluded);
        let until = Bound::Excluded(vec![kind + 1]);
        let (db, failed) = match self.db() {
            Ok(db) => (Some(db), None),
            Err(error) => (None, Some(Err(error))),
        };
        let entries = db.into_iter().flat_map(move |db| {
            (db.range((from.clone(), until.clone())))
                .take(limit)
                .map(|entry| entry.map_err(Error::from))
        });
        failed.into_iter().chain(entries)
    }

    fn decode_journey(key: &[u8], value: &[u8]) -> Result<Journey> {
        Journey::from_bytes(value).map_err(|source| Error::Corrupt {
            key: String::from_utf8_lossy(key).into_owned(),
            source,
        })
    }
}

impl JourneyStore for SledStore {
    fn projected_offset(&self) -> Result<u64> {
        Ok(self
            .db()?
            .get(OFFSET_KEY)?
            .and_then(|v| be_u64(&v))
            .unwrap_or(0))
    }

    fn commit(&self, batch: ProjectionBatch) -> Result<()> {
        let mut writes = Writes::default();
        let encoded = pieces::on_threads(&batch.journeys, |part| {
            let encode = |j: &Arc<Journey>| {
                let customer = j.customer_id.as_str().as_bytes();
                (key(b'j', &j.tenant_id, &[customer]), j.to_bytes())
            };
            part.iter().map(encode).collect::<Vec<_>>()
        });
        encoded.into_iter().for_each(|part| writes.extend(part));
        for (tenant, customer) in &batch.removed {
            writes.remove(key(b'j', tenant, &[customer.as_str().as_bytes()]));
        }
        for (tenant, identity, customer) in &batch.identities {
            writes.insert(
                key(b'i', tenant, &[identity.index_key().as_bytes()]),
                customer.as_str().as_bytes(),
            );
        }
        for (tenant, identity) in &batch.unlinked {
            writes.remove(key(b'i', tenant, &[identity.index_key().as_bytes()]));
        }
        let erased = |tenant: &TenantId, customer: &CustomerId| {
            (batch.erased.iter()).any(|(t, c)| (t, c) == (tenant, customer))
        };
        for (tenant, entry, customer) in &batch.attributes {
            if !erased(tenant, customer) {
                writes.insert(
                    key(b'x', tenant, &[entry.as_bytes()]),
                    customer.as_str().as_bytes(),
                );
            }
        }
        // A forgotten customer's entries: found by a scan of the tenant's (forgetting is rare).
        for (tenant, customer) in &batch.erased {
            for entry in self.db()?.scan_prefix(key(b'x', tenant, &[&[]])) {
                let (key, value) = entry?;
                if value.as_ref() == customer.as_str().as_bytes() {
                    writes.remove(key.to_vec());
                }
            }
        }
        for chunk in &batch.applied {
            let mut key = applied_key(chunk.generation);
            key.extend_from_slice(&batch.next_offset.to_be_bytes());
            let digests: Vec<u8> = (chunk.digests.iter())
                .flat_map(|d| d.to_be_bytes())
                .collect();
            writes.insert(key, digests);
        }
        for generation in &batch.forgotten {
            for entry in self.db()?.scan_prefix(applied_key(*generation)) {
                writes.remove(entry?.0.to_vec());
            }
        }
        // One key per customer per step, not per event: far fewer writes.
        let mut chunks: HashMap<(&TenantId, &CustomerId), Vec<u64>> = HashMap::default();
        for (tenant, customer, offset) in &batch.customer_events {
            chunks.entry((tenant, customer)).or_default().push(*offset);
        }
        for ((tenant, customer), offsets) in chunks {
            let first = offsets[0];
            writes.insert(
                key(
                    b'c',
                    tenant,
                    &[customer.as_str().as_bytes(), &first.to_be_bytes()],
                ),
                encode_offsets(&offsets),
            );
        }
        for (tenant, agent) in &batch.agents {
            writes.insert(
                key(b'a', tenant, &[agent.agent_id.as_str().as_bytes()]),
                agent.to_bytes(),
            );
        }
        for (tenant, conversation, customer) in &batch.conversations {
            writes.insert(
                key(b'v', tenant, &[conversation.as_str().as_bytes()]),
                customer.as_str().as_bytes(),
            );
        }
        for (tenant, interaction, customer) in &batch.decided {
            writes.insert(
                key(b'n', tenant, &[interaction.as_str().as_bytes()]),
                customer.as_str().as_bytes(),
            );
        }
        for (tenant, token, grant) in &batch.tokens {
            let key = key(b't', tenant, &[token.as_bytes()]);
            match grant {
                Some(grant) => writes.insert(key, token_value(grant)),
                None => writes.remove(key),
            }
        }
        for (tenant, record) in &batch.routing {
            let mut value = record.version.to_be_bytes().to_vec();
            value.extend_from_slice(record.config.as_bytes());
            writes.insert(key(b'r', tenant, &[]), value);
        }
        for (tenant, contact, routed) in &batch.routed {
            let key = key(b'w', tenant, &[contact.as_str().as_bytes()]);
            match routed {
                Some(routed) => writes.insert(key, routed.to_bytes()),
                None => writes.remove(key),
            }
        }
        if let Some(measure) = &batch.measure {
            measured::write(measure, &mut writes)?;
        }
        writes.insert(OFFSET_KEY, batch.next_offset.to_be_bytes());
        let _one_at_a_time = self.lock_writing();
        pieces::write(&self.db()?, &self.path, writes)
    }

    fn journey(&self, tenant: &TenantId, customer: &CustomerId) -> Result<Option<Journey>> {
        let key = key(b'j', tenant, &[customer.as_str().as_bytes()]);
        self.db()?
            .get(&key)?
            .map(|value| Self::decode_journey(&key, &value))
            .transpose()
    }

    fn journeys<'a>(
        &'a self,
        tenant: Option<&TenantId>,
    ) -> Box<dyn Iterator<Item = Result<Journey>> + 'a> {
        let prefix = match tenant {
            Some(tenant) => key(b'j', tenant, &[&[]]),
            None => vec![b'j'],
        };
        let db = match self.db() {
            Ok(db) => db,
            Err(error) => return Box::new(std::iter::once(Err(error))),
        };
        Box::new(db.scan_prefix(prefix).map(|entry| {
            let (key, value) = entry?;
            Self::decode_journey(&key, &value)
        }))
    }

    fn journeys_after(
        &self,
        after: Option<&(TenantId, CustomerId)>,
        limit: usize,
    ) -> Result<Vec<Journey>> {
        let after =
            after.map(|(tenant, customer)| key(b'j', tenant, &[customer.as_str().as_bytes()]));
        (self.kind_after(b'j', after, limit))
            .map(|entry| entry.and_then(|(key, value)| Self::decode_journey(&key, &value)))
            .collect()
    }

    fn links_after(
        &self,
        after: Option<&(TenantId, String)>,
        limit: usize,
    ) -> Result<Vec<(TenantId, String, CustomerId)>> {
        let after = after.map(|(tenant, identity)| key(b'i', tenant, &[identity.as_bytes()]));
        (self.kind_after(b'i', after, limit))
            .map(|entry| {
                let (key, value) = entry?;
                let corrupt = || corrupt(&key);
                let text = std::str::from_utf8(&key[1..]).map_err(|_| corrupt())?;
                let (tenant, identity) = text.split_once('\0').ok_or_else(corrupt)?;
                let tenant = TenantId::new(tenant).map_err(|_| corrupt())?;
                let owner = customer_id(&value).ok_or_else(corrupt)?;
                Ok((tenant, identity.to_owned(), owner))
            })
            .collect()
    }

    fn resolve(&self, tenant: &TenantId, identity: &ChannelIdentity) -> Result<Option<CustomerId>> {
        self.customer_at(key(b'i', tenant, &[identity.index_key().as_bytes()]))
    }

    fn scan(
        &self,
        tenant: &TenantId,
        index: Index,
        prefix: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<(String, CustomerId)>> {
        let kind = match index {
            Index::Identities => b'i',
            Index::Attributes => b'x',
        };
        let tenant_keys = key(kind, tenant, &[&[]]);
        let start = key(kind, tenant, &[prefix.max(after).as_bytes()]);
        let mut entries = Vec::new();
        for entry in self.db()?.range(start..) {
            let (key, value) = entry?;
            let Some(Ok(index_key)) =
                (key.strip_prefix(tenant_keys.as_slice())).map(std::str::from_utf8)
            else {
                break;
            };
            if !index_key.starts_with(prefix) || entries.len() == limit {
                break;
            }
            if index_key <= after {
                continue;
            }
            let customer = customer_id(&value).ok_or_else(|| corrupt(&key))?;
            entries.push((index_key.to_owned(), customer));
        }
        Ok(entries)
    }

    fn conversation_owner(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
    ) -> Result<Option<CustomerId>> {
        self.customer_at(key(b'v', tenant, &[conversation.as_str().as_bytes()]))
    }

    fn decided_customer(
        &self,
        tenant: &TenantId,
        interaction: &InteractionId,
    ) -> Result<Option<CustomerId>> {
        self.customer_at(key(b'n', tenant, &[interaction.as_str().as_bytes()]))
    }

    fn token(&self, tenant: &TenantId, token: &str) -> Result<Option<TokenGrant>> {
        let Some(value) = self.db()?.get(key(b't', tenant, &[token.as_bytes()]))? else {
            return Ok(None);
        };
        Ok(token_grant(&value))
    }

    fn applied_ids(&self) -> Result<Vec<AppliedIds>> {
        let mut chunks = Vec::new();
        for entry in self.db()?.scan_prefix([b'd']) {
            let (key, value) = entry?;
            let generation = key.get(1..9).and_then(be_u64);
            let (Some(generation), 0) = (generation, value.len() % 16) else {
                return Err(corrupt(&key));
            };
            let digests = (value.chunks_exact(16))
                .filter_map(|d| d.try_into().ok().map(u128::from_be_bytes))
                .collect();
            chunks.push(AppliedIds {
                generation,
                digests,
            });
        }
        Ok(chunks)
    }

    fn customer_offsets(
        &self,
        tenant: &TenantId,
        customer: &CustomerId,
        from: u64,
        to: u64,
    ) -> Result<Vec<u64>> {
        if from >= to {
            return Ok(Vec::new());
        }
        let customer = customer.as_str().as_bytes();
        // Chunks starting before `to` may hold offsets in range (a chunk's offsets all
        // follow its first one, and chunks never overlap).
        let start = key(b'c', tenant, &[customer, &0u64.to_be_bytes()]);
        let end = key(b'c', tenant, &[customer, &to.to_be_bytes()]);
        let mut offsets = Vec::new();
        for entry in self.db()?.range(start..end) {
            let (key, value) = entry?;
            let corrupt = |reason: &str| Error::Corrupt {
                key: String::from_utf8_lossy(&key).into_owned(),
                source: rezef_events::Error::Invalid(vec![rezef_events::Violation::new(
                    "customer offsets",
                    reason,
                )]),
            };
            let first = key
                .len()
                .checked_sub(8)
                .and_then(|at| be_u64(&key[at..]))
                .ok_or_else(|| corrupt("key too short"))?;
            let chunk = decode_offsets(first, &value).ok_or_else(|| corrupt("bad encoding"))?;
            offsets.extend(chunk.into_iter().filter(|o| (from..to).contains(o)));
        }
        Ok(offsets)
    }

    fn agent(&self, tenant: &TenantId, agent: &AgentId) -> Result<Option<AgentState>> {
        let key = key(b'a', tenant, &[agent.as_str().as_bytes()]);
        self.db()?
            .get(&key)?
            .map(|value| {
                AgentState::from_bytes(&value).map_err(|source| Error::Corrupt {
                    key: String::from_utf8_lossy(&key).into_owned(),
                    source,
                })
            })
            .transpose()
    }

    fn routing_config(&self, tenant: &TenantId) -> Result<Option<RoutingConfigRecord>> {
        let key = key(b'r', tenant, &[]);
        let Some(value) = self.db()?.get(&key)? else {
            return Ok(None);
        };
        let corrupt = || corrupt(&key);
        let (version, config) = value.split_at_checked(8).ok_or_else(corrupt)?;
        Ok(Some(RoutingConfigRecord {
            version: be_u64(version).ok_or_else(corrupt)?,
            config: String::from_utf8(config.to_vec()).map_err(|_| corrupt())?,
        }))
    }

    fn routed_contacts(&self) -> Result<Vec<(TenantId, InteractionId, RoutedContact)>> {
        self.db()?
            .scan_prefix([b'w'])
            .map(|entry| {
                let (key, value) = entry?;
                let (tenant, contact) = (key[1..].split(|b| *b == 0))
                    .map(|part| std::str::from_utf8(part).ok())
                    .collect::<Option<Vec<_>>>()
                    .and_then(|parts| match parts.as_slice() {
                        [tenant, contact] => Some((
                            TenantId::new(*tenant).ok()?,
                            InteractionId::new(*contact).ok()?,
                        )),
                        _ => None,
                    })
                    .ok_or_else(|| corrupt(&key))?;
                let routed =
                    RoutedContact::from_bytes(&value).map_err(|source| Error::Corrupt {
                        key: String::from_utf8_lossy(&key).into_owned(),
                        source,
                    })?;
                Ok((tenant, contact, routed))
            })
            .collect()
    }

    fn measurer(&self) -> Result<Measurer> {
        measured::measurer(&self.db()?)
    }

    fn bucket(&self, key: &StoredKey) -> Result<Option<Figures>> {
        measured::bucket(&self.db()?, key)
    }

    fn buckets<'a>(
        &'a self,
        tenant: Option<&TenantId>,
        width: Interval,
        range: Range<Timestamp>,
    ) -> Box<dyn Iterator<Item = Result<StoredBucket>> + 'a> {
        match self.db() {
            Ok(db) => Box::new(measured::buckets(db, tenant.cloned(), width, range)),
            Err(error) => Box::new(std::iter::once(Err(error))),
        }
    }

    fn clear(&self) -> Result<()> {
        let _one_at_a_time = self.lock_writing();
        pieces::discard(&self.path)?;
        let db = self.db()?;
        db.clear()?;
        stamp_formats(&db)
    }

    fn flush(&self) -> Result<()> {
        self.db()?.flush()?;
        Ok(())
    }

    fn recover(&self) -> Result<()> {
        let _one_at_a_time = self.lock_writing();
        let writable = match self.db() {
            Ok(db) => db.flush().is_ok(),
            Err(_) => false,
        };
        if writable {
            return Ok(());
        }
        probe_disk(&self.path)?;
        let mut slot = self.db.write().unwrap_or_else(|e| e.into_inner());
        // sled lets go of its lock once the last handle is gone (reads hold theirs briefly).
        drop(slot.take());
        let db = open_sled(&self.path, self.cache_bytes)?;
        *slot = Some(db);
        tracing::info!(path = %self.path.display(), "reopened the journey store after a failure");
        Ok(())
    }
}

/// A token grant's stored value: expiry, customer, and `\0` channels when limited to some.
fn token_value(grant: &TokenGrant) -> Vec<u8> {
    let mut value = grant.expires_at.unix_nanos().to_be_bytes().to_vec();
    value.extend_from_slice(grant.customer.as_str().as_bytes());
    if !grant.redeem_on.is_empty() {
        let channels: Vec<String> = grant.redeem_on.iter().map(Channel::to_string).collect();
        value.push(0);
        value.extend_from_slice(channels.join(",").as_bytes());
    }
    value
}

/// A grant from [`token_value`]'s bytes; `None` for bytes it never wrote.
fn token_grant(value: &[u8]) -> Option<TokenGrant> {
    let (expiry, rest) = value.split_at(value.len().min(8));
    let nanos = i64::from_be_bytes(expiry.try_into().ok()?);
    let mut parts = rest.splitn(2, |b| *b == 0);
    let customer = CustomerId::new(String::from_utf8(parts.next()?.to_vec()).ok()?).ok()?;
    let redeem_on = match parts.next() {
        None => Vec::new(),
        Some(names) => std::str::from_utf8(names)
            .ok()?
            .split(',')
            .map(Channel::from_name)
            .collect::<Option<_>>()?,
    };
    Some(TokenGrant {
        customer,
        expires_at: Timestamp::from_unix_nanos(nanos),
        redeem_on,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_lists_round_trip() {
        for offsets in [vec![7], vec![0, 1, 2], vec![5, 200, 70_000, u64::MAX / 2]] {
            let encoded = encode_offsets(&offsets);
            assert_eq!(decode_offsets(offsets[0], &encoded), Some(offsets));
        }
        assert_eq!(decode_offsets(1, &[0x80]), None, "a truncated varint");
    }
}
