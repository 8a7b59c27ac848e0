//! The projection in memory (`CachedStore`) over the real embedded log and real sled:
//! conformance, a cache smaller than the working set, crashes between and inside
//! checkpoints, and a store ahead of its log.

mod common;

use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use rezef_events::event::Participant;
use rezef_events::testing::EventBuilder;
use rezef_events::{Event, Journey};
use rezef_log::Log;
use rezef_store::{
    CachedStore, Error, JourneyStore, MemoryStore, ProjectionBatch, ProjectionConfig, Projector,
    SledStore, conformance,
};

use common::Fixture;

#[test]
fn the_memory_store_conforms() {
    conformance::run_all(|| Arc::new(MemoryStore::new()));
}

#[test]
fn the_cached_store_conforms_before_and_after_checkpoints() {
    let dirs = std::cell::RefCell::new(Vec::new());
    let open = |config: ProjectionConfig| {
        let dir = tempfile::tempdir().expect("tempdir");
        let sled = SledStore::open(dir.path().join("store")).expect("open");
        dirs.borrow_mut().push(dir);
        let cached = CachedStore::new(Arc::new(sled), config).expect("cached");
        Arc::new(cached) as Arc<dyn JourneyStore>
    };
    // Everything in memory (no checkpoint is ever due)...
    conformance::run_all(|| open(ProjectionConfig::default()));
    // ...and everything checkpointed at once, through a cache of one entry.
    conformance::run_all(|| Arc::new(Checkpointing(open(tiny()))));
}

/// A cache far smaller than the working set, checkpointing after every step.
fn tiny() -> ProjectionConfig {
    ProjectionConfig {
        cache_bytes: 1,
        checkpoint_interval: Duration::ZERO,
        checkpoint_dirty_bytes: 1,
        dedup_window: 1000,
        ..ProjectionConfig::default()
    }
}

/// Customers chatting, with a retried (duplicate) event now and then.
fn traffic(customers: usize, rounds: usize) -> Vec<Event> {
    let mut chats: Vec<_> = (0..customers)
        .map(|c| EventBuilder::customer("acme", &format!("c-{c}")).ids(&format!("c{c}")))
        .collect();
    let mut events = Vec::new();
    for round in 0..rounds {
        for (c, chat) in chats.iter_mut().enumerate() {
            let event = match round % 3 {
                0 => chat.message(Participant::Customer, "hello"),
                1 => chat.context("round", &round.to_string()),
                _ => chat.message(Participant::Bot, "ok"),
            };
            if (round + c) % 5 == 0 {
                events.push(event.clone());
            }
            events.push(event);
        }
    }
    events
}

fn all(store: &Arc<CachedStore>) -> Vec<Journey> {
    store.journeys(None).map(|j| j.expect("decodes")).collect()
}

async fn project(fixture: &Fixture, store: &Arc<CachedStore>, until: u64) -> Result<(), Error> {
    let mut projector = Projector::with_window(fixture.log(), store.clone(), 1000)?;
    projector.catch_up(until, |_| {}).await.map(|_| ())
}

#[tokio::test]
async fn a_cache_smaller_than_the_working_set_gives_the_same_journeys() {
    let fixture = Fixture::new();
    let events = traffic(60, 9);
    fixture.publish(&events).await;
    let end = fixture.log.end_offset();
    let unbounded = fixture.store("unbounded");
    project(&fixture, &unbounded, end).await.expect("project");
    let small = fixture.cached("small", tiny());
    project(&fixture, &small, end).await.expect("project");
    assert_eq!(all(&small), all(&unbounded));
    // Read one by one too: through the cache's misses and the store below.
    for journey in all(&unbounded) {
        let read = small.journey(&journey.tenant_id, &journey.customer_id);
        assert_eq!(read.expect("read"), Some(journey));
    }
    let duplicates: u64 = all(&small)
        .iter()
        .map(|j| j.counters.duplicates_ignored)
        .sum();
    assert_eq!(
        duplicates,
        (events.len() - 540) as u64,
        "each retry counted once"
    );
}

#[tokio::test]
async fn a_store_ahead_of_its_log_is_refused_with_both_offsets_and_the_fix() {
    let fixture = Fixture::new();
    let store = fixture.sled("store");
    store
        .commit(ProjectionBatch {
            next_offset: 42,
            ..ProjectionBatch::default()
        })
        .expect("commit");
    fixture.publish(&traffic(2, 3)).await;
    let end = fixture.log.end_offset();
    let store = Arc::new(CachedStore::new(store, ProjectionConfig::default()).expect("cached"));
    let error = Projector::new(fixture.log(), store).expect_err("ahead of the log");
    assert!(
        matches!(error, Error::AheadOfLog { stored: 42, end: e } if e == end),
        "{error}"
    );
    let message = error.to_string();
    assert!(message.contains("offset 42") && message.contains(&format!("ends at {end}")));
    assert!(message.contains("rezef rebuild"));
}

/// How a run of the projector ends.
#[derive(Debug, Clone, Copy)]
enum Interruption {
    /// It stops cleanly: a last checkpoint is written.
    Stop,
    /// It is killed between checkpoints: what it folded since the last one is lost.
    Kill,
    /// It is killed while writing a checkpoint: the write never lands.
    KillInCheckpoint,
}

fn interruption() -> impl Strategy<Value = Interruption> {
    prop_oneof![
        Just(Interruption::Stop),
        Just(Interruption::Kill),
        Just(Interruption::KillInCheckpoint)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// A projection interrupted at random points and resumed from its store equals one
    /// uninterrupted fold of the log: nothing applied twice (duplicates included), nothing
    /// skipped.
    #[test]
    fn a_projection_interrupted_anywhere_equals_the_uninterrupted_fold(
        runs in prop::collection::vec((1u64..90, interruption(), any::<bool>()), 1..6),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(async {
            let fixture = Fixture::new();
            fixture.publish(&traffic(12, 12)).await;
            let end = fixture.log.end_offset();
            let reference = fixture.store("reference");
            project(&fixture, &reference, end).await.expect("project");

            let mut until = 0;
            for (length, how, small) in runs {
                until = (until + length).min(end);
                let config = if small { tiny() } else { ProjectionConfig::default() };
                match how {
                    Interruption::Stop => {
                        let store = fixture.cached("interrupted", config);
                        project(&fixture, &store, until).await.expect("project");
                        store.flush().expect("last checkpoint");
                    }
                    Interruption::Kill => {
                        let store = fixture.cached("interrupted", config);
                        project(&fixture, &store, until).await.expect("project");
                    }
                    Interruption::KillInCheckpoint => {
                        let before = fixture.sled_offset("interrupted");
                        let sled = fixture.sled("interrupted");
                        let failing: Arc<dyn JourneyStore> = Arc::new(FailingCheckpoint(sled));
                        let store = CachedStore::new(failing, tiny()).expect("cached");
                        let store = Arc::new(store);
                        let failed = project(&fixture, &store, until).await;
                        prop_assert!(failed.is_err() || before >= until, "the checkpoint failed");
                    }
                }
            }
            let store = fixture.store("interrupted");
            project(&fixture, &store, end).await.expect("project");
            prop_assert_eq!(all(&store), all(&reference));
            Ok(())
        })?;
    }
}

impl Fixture {
    fn sled_offset(&self, name: &str) -> u64 {
        self.sled(name).projected_offset().expect("offset")
    }
}

/// A store whose commits fail: a checkpoint interrupted before its write landed.
#[derive(Debug)]
struct FailingCheckpoint(Arc<dyn JourneyStore>);

/// A store that writes a checkpoint after every commit.
#[derive(Debug)]
struct Checkpointing(Arc<dyn JourneyStore>);

macro_rules! delegate_reads {
    () => {
        fn projected_offset(&self) -> rezef_store::Result<u64> {
            self.0.projected_offset()
        }
        fn journey(
            &self,
            t: &rezef_events::TenantId,
            c: &rezef_events::CustomerId,
        ) -> rezef_store::Result<Option<Journey>> {
            self.0.journey(t, c)
        }
        fn journeys<'a>(
            &'a self,
            t: Option<&rezef_events::TenantId>,
        ) -> Box<dyn Iterator<Item = rezef_store::Result<Journey>> + 'a> {
            self.0.journeys(t)
        }
        fn resolve(
            &self,
            t: &rezef_events::TenantId,
            i: &rezef_events::ChannelIdentity,
        ) -> rezef_store::Result<Option<rezef_events::CustomerId>> {
            self.0.resolve(t, i)
        }
        fn conversation_owner(
            &self,
            t: &rezef_events::TenantId,
            c: &rezef_events::ConversationId,
        ) -> rezef_store::Result<Option<rezef_events::CustomerId>> {
            self.0.conversation_owner(t, c)
        }
        fn decided_customer(
            &self,
            t: &rezef_events::TenantId,
            i: &rezef_events::InteractionId,
        ) -> rezef_store::Result<Option<rezef_events::CustomerId>> {
            self.0.decided_customer(t, i)
        }
        fn token(
            &self,
            t: &rezef_events::TenantId,
            token: &str,
        ) -> rezef_store::Result<Option<rezef_store::TokenGrant>> {
            self.0.token(t, token)
        }
        fn applied_ids(&self) -> rezef_store::Result<Vec<rezef_store::dedup::AppliedIds>> {
            self.0.applied_ids()
        }
        fn customer_offsets(
            &self,
            t: &rezef_events::TenantId,
            c: &rezef_events::CustomerId,
            from: u64,
            to: u64,
        ) -> rezef_store::Result<Vec<u64>> {
            self.0.customer_offsets(t, c, from, to)
        }
        fn agent(
            &self,
            t: &rezef_events::TenantId,
            a: &rezef_events::AgentId,
        ) -> rezef_store::Result<Option<rezef_events::agent::AgentState>> {
            self.0.agent(t, a)
        }
        fn routing_config(
            &self,
            t: &rezef_events::TenantId,
        ) -> rezef_store::Result<Option<rezef_store::RoutingConfigRecord>> {
            self.0.routing_config(t)
        }
        fn routed_contacts(
            &self,
        ) -> rezef_store::Result<
            Vec<(
                rezef_events::TenantId,
                rezef_events::InteractionId,
                rezef_events::routed::RoutedContact,
            )>,
        > {
            self.0.routed_contacts()
        }
        fn scan(
            &self,
            t: &rezef_events::TenantId,
            index: rezef_store::Index,
            prefix: &str,
            after: &str,
            limit: usize,
        ) -> rezef_store::Result<Vec<(String, rezef_events::CustomerId)>> {
            self.0.scan(t, index, prefix, after, limit)
        }
        fn journeys_after(
            &self,
            after: Option<&(rezef_events::TenantId, rezef_events::CustomerId)>,
            limit: usize,
        ) -> rezef_store::Result<Vec<Journey>> {
            self.0.journeys_after(after, limit)
        }
        fn links_after(
            &self,
            after: Option<&(rezef_events::TenantId, String)>,
            limit: usize,
        ) -> rezef_store::Result<Vec<(rezef_events::TenantId, String, rezef_events::CustomerId)>> {
            self.0.links_after(after, limit)
        }
        fn measurer(&self) -> rezef_store::Result<rezef_measure::Measurer> {
            self.0.measurer()
        }
        fn bucket(
            &self,
            key: &rezef_store::StoredKey,
        ) -> rezef_store::Result<Option<rezef_measure::Figures>> {
            self.0.bucket(key)
        }
        fn buckets<'a>(
            &'a self,
            tenant: Option<&rezef_events::TenantId>,
            width: rezef_measure::Interval,
            range: std::ops::Range<rezef_events::Timestamp>,
        ) -> Box<dyn Iterator<Item = rezef_store::Result<rezef_store::StoredBucket>> + 'a> {
            self.0.buckets(tenant, width, range)
        }
        fn clear(&self) -> rezef_store::Result<()> {
            self.0.clear()
        }
        fn flush(&self) -> rezef_store::Result<()> {
            self.0.flush()
        }
    };
}

impl JourneyStore for FailingCheckpoint {
    fn commit(&self, _: ProjectionBatch) -> rezef_store::Result<()> {
        Err(Error::Sled(sled::Error::Unsupported(
            "killed in a checkpoint".into(),
        )))
    }
    delegate_reads!();
}

impl JourneyStore for Checkpointing {
    fn commit(&self, batch: ProjectionBatch) -> rezef_store::Result<()> {
        self.0.commit(batch)?;
        self.0.checkpoint()
    }
    delegate_reads!();
}
