//! Warming a cache from the store below (`rezef_store::warm`): what goes in, where it stops,
//! and that it lets a closed store go.

use std::sync::Arc;

use rezef_events::journey::Conversation;
use rezef_events::{ChannelIdentity, ConversationId, CustomerId, Journey, TenantId, Timestamp};
use rezef_store::warm::{self, Ended, Warmed};
use rezef_store::{CachedStore, JourneyStore, ProjectionBatch, ProjectionConfig, SledStore};

const CUSTOMERS: u64 = 1_000;

fn phone(n: u64) -> ChannelIdentity {
    ChannelIdentity::phone(&format!("+9725{n:08}")).expect("phone")
}

/// Customer `n` of tenant `acme` (even) or `acmex` (odd).
fn who(n: u64) -> (TenantId, CustomerId) {
    let tenant = if n.is_multiple_of(2) { "acme" } else { "acmex" };
    let tenant = TenantId::new(tenant).expect("tenant");
    (tenant, CustomerId::new(format!("c-{n}")).expect("customer"))
}

/// A sled store holding `CUSTOMERS` journeys, each with a phone linked to it.
fn filled(dir: &tempfile::TempDir) -> SledStore {
    let sled = SledStore::open(dir.path().join("store")).expect("sled");
    let at = Timestamp::from_unix_millis(1_700_000_000_000);
    let (mut journeys, mut identities) = (Vec::new(), Vec::new());
    for n in 0..CUSTOMERS {
        let (tenant, customer) = who(n);
        let mut journey = Journey::new(tenant.clone(), customer.clone(), at);
        journey.counters.events = n;
        for c in 0..2 {
            let id = ConversationId::new(format!("v-{n}-{c}")).expect("conversation");
            let conversation = Conversation::new(id, at, None);
            journey.conversations.push(Arc::new(conversation));
        }
        journeys.push(Arc::new(journey));
        identities.push((tenant, phone(n), customer));
    }
    let batch = ProjectionBatch {
        next_offset: 1,
        journeys,
        identities,
        ..Default::default()
    };
    sled.commit(batch).expect("commit");
    sled
}

fn cached(below: &SledStore, cache_bytes: u64) -> Arc<CachedStore> {
    let config = ProjectionConfig {
        cache_bytes,
        ..ProjectionConfig::default()
    };
    Arc::new(CachedStore::new(Arc::new(below.clone()), config).expect("cached"))
}

#[test]
fn a_store_opened_over_data_warms_its_links_then_its_journeys() {
    // Given a store opened over a thousand customers, with a cache that holds them all
    let dir = tempfile::tempdir().expect("tempdir");
    let below = filled(&dir);
    let store = cached(&below, 64 << 20);

    // When it is warmed
    let warmed = warm::warm(&Arc::downgrade(&store)).expect("warm");

    // Then every link and journey went in, and they answer after the store below forgets
    // them: from memory
    let expected = Warmed {
        links: CUSTOMERS,
        journeys: CUSTOMERS,
        ended: Ended::Read,
    };
    assert_eq!(warmed, expected);
    below.clear().expect("clear below");
    for n in 0..CUSTOMERS {
        let (tenant, customer) = who(n);
        let owner = store.resolve(&tenant, &phone(n)).expect("resolve");
        assert_eq!(owner.as_ref(), Some(&customer), "link {n}");
        let journey = store.journey(&tenant, &customer).expect("journey");
        assert_eq!(journey.map(|j| j.counters.events), Some(n), "journey {n}");
    }
}

#[test]
fn a_warm_up_stops_at_nine_tenths_of_a_share() {
    // Given a cache whose journeys' share holds about half the journeys (each weighs about
    // 1,200 bytes as the cache counts them, a link under 200)
    let dir = tempfile::tempdir().expect("tempdir");
    let below = filled(&dir);
    let bytes = 1_000_000;
    let store = cached(&below, bytes);

    // When it is warmed
    let warmed = warm::warm(&Arc::downgrade(&store)).expect("warm");

    // Then the links (a quarter of the cache) all fit, the journeys stop once their share is
    // nine-tenths full (about 560 of them), and room stays for what callers read
    assert_eq!(warmed.links, CUSTOMERS);
    assert_eq!(warmed.ended, Ended::Full);
    assert!((400..700).contains(&warmed.journeys), "{warmed:?}");
    let cache = store.cache().weight();
    assert!(cache <= bytes / 10 * 9 + 1_200, "{cache} of {bytes}");
}

#[test]
fn a_warm_up_in_the_background_is_counted_until_it_ends_and_lets_a_closed_store_go() {
    // Given a store opened over data, warming on its own thread
    let dir = tempfile::tempdir().expect("tempdir");
    let below = filled(&dir);
    let store = cached(&below, 64 << 20);
    let cache = store.cache().clone();
    let thread = warm::spawn(&store).expect("spawn");
    assert_eq!(cache.warming(), 1);

    // When it ends
    thread.join().expect("the warm-up");

    // Then the cache holds the store's entries and counts no warm-up; a store closed before
    // its warm-up began is let go at once
    assert_eq!(cache.warming(), 0);
    assert!(cache.weight() > 0);
    let closed = Arc::downgrade(&store);
    drop(store);
    let warmed = warm::warm(&closed).expect("warm");
    assert_eq!(warmed.ended, Ended::Closed);
    drop(below);
    SledStore::open(dir.path().join("store")).expect("the store opens again");
}
