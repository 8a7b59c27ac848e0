//! Warming a node's cache from a store it opens.
//!
//! Why: after a restart the [`crate::JourneyCache`] is empty, and until callers' own reads
//! fill it again every call pays sled: a call by phone reads the phone's owner, then the
//! journey, and at a million customers those two reads are most of the call (BENCHMARKS.md,
//! "ResumeConversation at 1,000,000 customers"). So a store opened over data is read into the
//! cache in the background: identity links first (a call needs the owner before the journey,
//! and a link weighs a tenth of a journey), then journeys, in key order, each until its share
//! of the cache is nine-tenths full (room stays for what callers read) or the store is read
//! to its end. What InnoDB's buffer pool load and PostgreSQL's `pg_prewarm` do, from the
//! store itself.
//!
//! The warm-up reads a page at a time and holds the store only while it reads one, so a store
//! being closed (a partition moving away) is let go; one warm-up runs at a time on a node, so
//! a node opening many partitions reads one store at a time. A page enters the cache only if
//! no checkpoint finished while it was read (else it could put back what the checkpoint
//! replaced); otherwise it is read again.

use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Instant;

use tracing::{info, info_span, warn};

use crate::Result;
use crate::cached::CachedStore;
use crate::journey_cache::{Cached, Entry, Key, Share};

/// Entries read from the store at a time.
pub const PAGE: usize = 256;

/// Why a warm-up (of one share) stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Everything the store holds was read.
    Read,
    /// The share is nine-tenths full.
    Full,
    /// The store was closed.
    Closed,
}

/// What a warm-up put in the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Warmed {
    pub links: u64,
    pub journeys: u64,
    /// Why the journeys (the second share) stopped.
    pub ended: Ended,
}

/// Warms `store`'s cache on a thread of its own (a `warm` span under the caller's); the
/// cache counts it in [`crate::JourneyCache::warming`] until it ends.
pub fn spawn(store: &Arc<CachedStore>) -> std::io::Result<JoinHandle<()>> {
    let started = store.clean.warm_up_started();
    let (store, span) = (Arc::downgrade(store), info_span!("warm"));
    std::thread::Builder::new()
        .name("rezef-warm".into())
        .spawn(move || {
            let _counted = started;
            let _span = span.enter();
            let begun = Instant::now();
            match warm(&store) {
                Ok(warmed) => info!(
                    links = warmed.links,
                    journeys = warmed.journeys,
                    ended = ?warmed.ended,
                    seconds = begun.elapsed().as_secs_f64(),
                    "journey cache warmed"
                ),
                Err(error) => warn!(%error, "warming the journey cache stopped"),
            }
        })
}

/// Warms the cache of `store` (see the module docs); one warm-up at a time per cache.
pub fn warm(store: &Weak<CachedStore>) -> Result<Warmed> {
    let nothing = |ended| {
        Ok(Warmed {
            links: 0,
            journeys: 0,
            ended,
        })
    };
    let one_at_a_time = match store.upgrade() {
        None => return nothing(Ended::Closed),
        // A fresh store: memory holds all there is.
        Some(store) if !store.incomplete() => return nothing(Ended::Read),
        Some(store) => store.clean.one_warm_up.clone(),
    };
    let _one = one_at_a_time.lock().unwrap_or_else(|e| e.into_inner());
    let (links, _) = warm_share(store, Share::Links, |store, after| {
        let page = store.below.links_after(after, PAGE)?;
        let last = page
            .last()
            .map(|(tenant, key, _)| (tenant.clone(), key.clone()));
        let entries = page.into_iter().map(|(tenant, key, owner)| {
            let key = store.key(&tenant, Entry::Identity(key));
            (key, Cached::Owner(Some(owner)))
        });
        Ok((entries.collect(), last))
    })?;
    let (journeys, ended) = warm_share(store, Share::Journeys, |store, after| {
        let page = store.below.journeys_after(after, PAGE)?;
        let last = page
            .last()
            .map(|j| (j.tenant_id.clone(), j.customer_id.clone()));
        let entries = page.into_iter().map(|journey| {
            let key = store.key(
                &journey.tenant_id,
                Entry::Journey(journey.customer_id.clone()),
            );
            (key, Cached::Journey(Some(Arc::new(journey))))
        });
        Ok((entries.collect(), last))
    })?;
    Ok(Warmed {
        links,
        journeys,
        ended,
    })
}

/// A page of cache entries read from below, and where the next one starts.
type Page<A> = (Vec<(Key, Cached)>, Option<A>);

/// Fills one share a page at a time: how many entries went in, and why it stopped.
fn warm_share<A>(
    store: &Weak<CachedStore>,
    share: Share,
    read: impl Fn(&CachedStore, Option<&A>) -> Result<Page<A>>,
) -> Result<(u64, Ended)> {
    let (mut after, mut warmed) = (None, 0);
    loop {
        let Some(store) = store.upgrade() else {
            return Ok((warmed, Ended::Closed));
        };
        if !store.clean.has_room(share) {
            return Ok((warmed, Ended::Full));
        }
        let epoch = store.epoch();
        let (entries, last) = read(&store, after.as_ref())?;
        let (read, mut filled) = (entries.len() as u64, 0);
        let fitting = (entries.into_iter())
            .take_while(|_| store.clean.has_room(share))
            .inspect(|_| filled += 1);
        if store.fill(epoch, fitting) {
            warmed += filled;
            if filled < read {
                return Ok((warmed, Ended::Full));
            }
            if read < PAGE as u64 {
                return Ok((warmed, Ended::Read));
            }
            after = last;
        }
    }
}

#[cfg(test)]
mod tests {
    use rezef_events::{CustomerId, Journey, TenantId, Timestamp};

    use super::*;
    use crate::{JourneyStore, MemoryStore, ProjectionBatch, ProjectionConfig};

    fn journey(events: u64) -> Arc<Journey> {
        let tenant = TenantId::new("acme").expect("tenant");
        let customer = CustomerId::new("c-1").expect("customer");
        let mut journey = Journey::new(tenant, customer, Timestamp::from_unix_millis(1));
        journey.counters.events = events;
        Arc::new(journey)
    }

    fn batch(next_offset: u64, journey: Arc<Journey>) -> ProjectionBatch {
        let journeys = vec![journey];
        ProjectionBatch {
            next_offset,
            journeys,
            ..ProjectionBatch::default()
        }
    }

    #[test]
    fn a_page_read_before_a_checkpoint_finished_does_not_go_in() {
        // Given a store over data, and a page read from below
        let below = MemoryStore::new();
        below.commit(batch(1, journey(1))).expect("commit");
        let store = CachedStore::new(Arc::new(below), ProjectionConfig::default()).expect("store");
        let epoch = store.epoch();
        let page = store.below.journeys_after(None, PAGE).expect("page");

        // When a checkpoint writes a later version of its journey meanwhile
        store.commit(batch(2, journey(2))).expect("commit");
        store.checkpoint().expect("checkpoint");

        // Then the page does not go in, and the later version is what is read
        let (tenant, customer) = (&page[0].tenant_id, page[0].customer_id.clone());
        let key = store.key(tenant, Entry::Journey(customer.clone()));
        let stale = Cached::Journey(Some(Arc::new(page[0].clone())));
        assert!(!store.fill(epoch, [(key, stale)]));
        let read = store
            .journey(tenant, &customer)
            .expect("read")
            .expect("a journey");
        assert_eq!(read.counters.events, 2);
    }
}
