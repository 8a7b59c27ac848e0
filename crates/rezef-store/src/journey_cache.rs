//! What the projection in memory keeps of the store below: journeys and identity links read
//! from sled (or written there by a checkpoint), bounded in estimated bytes and shared by
//! every store of a node (a Kafka node folds many partitions). quick_cache's scan-resistant
//! CLOCK-Pro evicts them; a journey changed since its checkpoint is not here but in the
//! projection's tables, and is never evicted.
//!
//! Identity links have a share of the bound of their own ([`LINKS_SHARE`]): a call by phone
//! reads the phone's owner, then the owner's journey, and a miss of either costs a sled read,
//! but a link weighs a tenth of a journey. Sharing one bound, journeys read often crowded
//! links out, and a repeat caller whose journey had been evicted missed twice (the test
//! below: 61% of links found in one shared bound, against all of them with a share of their
//! own).
//!
//! Every read counts as a hit or a miss per share ([`JourneyCache::reads`]), one relaxed
//! atomic add, for the server's metrics: a falling hit rate says `cache_mib` is too small.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use quick_cache::sync::Cache;
use quick_cache::{DefaultHashBuilder, Lifecycle, Weighter};
use rezef_events::{CustomerId, Journey, TenantId};

/// The part of the bound kept for identity links: a quarter.
pub const LINKS_SHARE: u64 = 4;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Entry {
    Journey(CustomerId),
    Identity(String),
}

/// The two parts of the bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Share {
    Journeys,
    Links,
}

/// A cached answer from below, negative ones included.
#[derive(Debug, Clone)]
pub(crate) enum Cached {
    Journey(Option<Arc<Journey>>),
    Owner(Option<CustomerId>),
}

/// Reads of the cache since it was made, per share: what found an answer and what did not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheReads {
    pub journey_hits: u64,
    pub journey_misses: u64,
    pub link_hits: u64,
    pub link_misses: u64,
}

/// The counts behind [`CacheReads`]: hits and misses of journeys, then of links.
#[derive(Debug, Default)]
struct Reads([AtomicU64; 4]);

impl Reads {
    fn count(&self, share: Share, hit: bool) {
        let index = match share {
            Share::Journeys => 0,
            Share::Links => 2,
        } + usize::from(!hit);
        self.0[index].fetch_add(1, Ordering::Relaxed);
    }

    fn now(&self) -> CacheReads {
        let read = |i: usize| self.0[i].load(Ordering::Relaxed);
        CacheReads {
            journey_hits: read(0),
            journey_misses: read(1),
            link_hits: read(2),
            link_misses: read(3),
        }
    }
}

/// Which store, then what.
pub(crate) type Key = (u32, TenantId, Entry);

type Entries = Cache<Key, Cached, Weigh, DefaultHashBuilder, NoteEvictions>;

#[derive(Debug, Clone)]
struct Weigh;

impl Weighter<Key, Cached> for Weigh {
    fn weight(&self, key: &Key, value: &Cached) -> u64 {
        // A key and a negative answer: the key's text, the map's slot and quick_cache's
        // bookkeeping.
        let entry = match &key.2 {
            Entry::Journey(customer) => customer.as_str().len(),
            Entry::Identity(identity) => identity.len(),
        };
        let small = 128 + entry as u64;
        match value {
            Cached::Journey(Some(journey)) => weight(journey),
            Cached::Journey(None) | Cached::Owner(None) => small,
            Cached::Owner(Some(owner)) => small + 32 + owner.as_str().len() as u64,
        }
    }
}

/// Notes that something was evicted: from then on, a miss must ask the store below.
#[derive(Debug, Clone, Default)]
struct NoteEvictions(Arc<AtomicBool>);

impl Lifecycle<Key, Cached> for NoteEvictions {
    type RequestState = ();

    fn on_evict(&self, _: &mut (), _: Key, _: Cached) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// About how many bytes of memory a journey takes (its heap, roughly): what the cache and
/// the checkpoint bounds count.
pub fn weight(journey: &Journey) -> u64 {
    let conversations: usize = (journey.conversations.iter())
        .map(|c| {
            let transcript: usize = c.transcript.iter().map(|t| 120 + t.text.len()).sum();
            let interactions: usize = (c.interactions.iter())
                .map(|i| 200 + 32 * i.stages.len())
                .sum();
            let context: usize = c
                .context
                .iter()
                .map(|(k, v)| 120 + k.len() + v.value.len())
                .sum();
            400 + transcript + interactions + context + 64 * c.tokens.len()
        })
        .sum();
    let past: usize = (journey.past.iter())
        .map(|s| 240 + 32 * (s.aliases.len() + s.channels.len()))
        .sum();
    let rest = 400
        + past
        + 120 * journey.identities.len()
        + 200 * journey.shares.len()
        + 160 * journey.conflicts.len();
    (conversations + rest) as u64
}

/// Journeys and identity links read from below, bounded in (estimated) bytes: one for a
/// node, however many stores it opens.
#[derive(Debug, Clone)]
pub struct JourneyCache {
    journeys: Arc<Entries>,
    links: Arc<Entries>,
    /// Something was evicted: a miss no longer proves the store below lacks it.
    pub(crate) evicted: Arc<AtomicBool>,
    next_store: Arc<AtomicU32>,
    /// Warm-ups started and not ended (`crate::warm`), and the one running.
    warm_ups: Arc<AtomicUsize>,
    pub(crate) one_warm_up: Arc<Mutex<()>>,
    reads: Arc<Reads>,
}

impl JourneyCache {
    /// A cache of `bytes` in all, [`LINKS_SHARE`] of it for identity links.
    pub fn new(bytes: u64) -> Self {
        let evicted = Arc::new(AtomicBool::new(false));
        let links = bytes / LINKS_SHARE;
        let entries = |bytes: u64, typical: u64| {
            let estimated_items = usize::try_from(bytes / typical).unwrap_or(usize::MAX);
            Arc::new(Cache::with(
                estimated_items.max(64),
                bytes.max(1),
                Weigh,
                DefaultHashBuilder::default(),
                NoteEvictions(evicted.clone()),
            ))
        };
        Self {
            journeys: entries(bytes - links, 2048),
            links: entries(links, 192),
            evicted: evicted.clone(),
            next_store: Arc::default(),
            warm_ups: Arc::default(),
            one_warm_up: Arc::default(),
            reads: Arc::default(),
        }
    }

    fn entries(&self, key: &Key) -> &Entries {
        self.share(share_of(key))
    }

    fn share(&self, share: Share) -> &Entries {
        match share {
            Share::Journeys => &self.journeys,
            Share::Links => &self.links,
        }
    }

    /// Whether a share is under nine-tenths full: warming stops there, leaving room for what
    /// callers read.
    pub(crate) fn has_room(&self, share: Share) -> bool {
        let entries = self.share(share);
        entries.weight() < entries.capacity() / 10 * 9
    }

    /// How many warm-ups of stores in this cache have started and not ended yet
    /// (`crate::warm`): a node's cache is warm when there are none.
    pub fn warming(&self) -> usize {
        self.warm_ups.load(Ordering::Acquire)
    }

    /// Counts a warm-up until the returned guard drops.
    pub(crate) fn warm_up_started(&self) -> WarmUp {
        self.warm_ups.fetch_add(1, Ordering::AcqRel);
        WarmUp(self.warm_ups.clone())
    }

    /// Bytes held now (estimated).
    pub fn weight(&self) -> u64 {
        self.journeys.weight() + self.links.weight()
    }

    /// Hits and misses so far, of every store sharing this cache.
    pub fn reads(&self) -> CacheReads {
        self.reads.now()
    }

    pub(crate) fn get(&self, key: &Key) -> Option<Cached> {
        let share = share_of(key);
        let found = self.share(share).get(key);
        self.reads.count(share, found.is_some());
        found
    }

    pub(crate) fn insert(&self, key: Key, value: Cached) {
        self.entries(&key).insert(key, value);
    }

    pub(crate) fn remove(&self, key: &Key) -> Option<Cached> {
        self.entries(key).remove(key).map(|(_, value)| value)
    }

    /// A key space of its own for a store (also a fresh one after a clear, leaving the old
    /// entries to be evicted).
    pub(crate) fn new_store(&self) -> u32 {
        self.next_store.fetch_add(1, Ordering::Relaxed)
    }
}

fn share_of(key: &Key) -> Share {
    match key.2 {
        Entry::Journey(_) => Share::Journeys,
        Entry::Identity(_) => Share::Links,
    }
}

/// A warm-up counted in [`JourneyCache::warming`] while it lives.
#[derive(Debug)]
pub(crate) struct WarmUp(Arc<AtomicUsize>);

impl Drop for WarmUp {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(entry: Entry) -> Key {
        (0, TenantId::new("acme").expect("tenant"), entry)
    }

    /// A journey of four conversations (about 2 KB by [`weight`], ten times a link).
    fn journey(n: usize) -> Arc<Journey> {
        let tenant = TenantId::new("acme").expect("tenant");
        let customer = CustomerId::new(format!("c-{n}")).expect("customer");
        let at = rezef_events::Timestamp::now();
        let mut journey = Journey::new(tenant, customer, at);
        for c in 0..4 {
            let id = rezef_events::ConversationId::new(format!("v-{n}-{c}")).expect("id");
            let conversation = rezef_events::journey::Conversation::new(id, at, None);
            journey.conversations.push(Arc::new(conversation));
        }
        Arc::new(journey)
    }

    #[test]
    fn reads_count_hits_and_misses_per_share() {
        let cache = JourneyCache::new(1 << 20);
        let link = key(Entry::Identity("phone::+972500000001".into()));
        assert!(cache.get(&link).is_none());
        cache.insert(link.clone(), Cached::Owner(None));
        assert!(cache.get(&link).is_some());
        let journey = journey(1);
        let key = key(Entry::Journey(journey.customer_id.clone()));
        assert!(cache.get(&key).is_none());
        let reads = cache.reads();
        let expected = CacheReads {
            journey_hits: 0,
            journey_misses: 1,
            link_hits: 1,
            link_misses: 1,
        };
        assert_eq!(reads, expected);
        assert_eq!(cache.clone().reads(), expected, "clones share the counts");
    }

    #[test]
    fn identity_links_keep_their_share_while_journeys_are_read_through() {
        // Given calls by phone from 800 customers in random order: each reads the phone's
        // owner, then the owner's journey, through a cache that holds every link in its share
        // (with room to spare: the cache's eight shards are filled unevenly) but only half of
        // the journeys
        let cache = JourneyCache::new(1 << 20);
        let (customers, mut seed, mut hits) = (800u64, 7u64, 0);
        for call in 0..24_000 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let n = (seed >> 33) % customers;
            let link = key(Entry::Identity(format!("phone::+9725000{n:05}")));
            match cache.get(&link) {
                Some(_) => hits += u32::from(call >= 12_000),
                None => {
                    let owner = CustomerId::new(format!("c-{n}")).expect("customer");
                    cache.insert(link, Cached::Owner(Some(owner)));
                }
            }
            let journey = journey(n as usize);
            let key = key(Entry::Journey(journey.customer_id.clone()));
            if cache.get(&key).is_none() {
                cache.insert(key, Cached::Journey(Some(journey)));
            }
        }
        // Then, once warm, every call finds its link in memory, and the bound holds
        assert!(cache.evicted.load(Ordering::Relaxed));
        assert_eq!(hits, 12_000, "links found in the second half");
        assert!(cache.weight() <= 1 << 20, "{}", cache.weight());
    }
}
