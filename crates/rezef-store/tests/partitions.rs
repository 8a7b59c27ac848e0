//! A person whose identities live on several partitions ends with one journey on one
//! partition: four real embedded logs stand for the partitions of a Kafka topic, each with
//! its own sled store and projector, and a relay that appends to the partition an event
//! belongs to, as the cluster's relay does through the partitions' owners.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rezef_events::event::{AssuranceLevel, Direction, VerificationMethod};
use rezef_events::fold::customer_id_for;
use rezef_events::handover::Handover;
use rezef_events::partition::Partitioner;
use rezef_events::policy::MergeRefusal;
use rezef_events::testing::EventBuilder;
use rezef_events::{
    Channel, ChannelIdentity, CustomerId, CustomerRef, Event, Journey, Payload, TenantId,
};
use rezef_log::{EmbeddedLog, EmbeddedLogConfig, Log};
use rezef_store::{
    CachedStore, JourneyStore, Partitioning, ProjectionConfig, ProjectionWatch, Projector, Relay,
    RelayFuture, SledStore,
};
use tempfile::TempDir;
use tokio::sync::watch;

const PARTITIONS: u32 = 4;

fn acme() -> TenantId {
    TenantId::new("acme").expect("valid")
}

/// Appends each event to its partition's log.
#[derive(Debug)]
struct Router {
    partitioner: Partitioner,
    logs: Vec<Arc<EmbeddedLog>>,
}

impl Router {
    async fn append(&self, events: &[Event]) -> Result<(), String> {
        for event in events {
            let log = &self.logs[self.partitioner.event(event) as usize];
            let record = Bytes::from(rezef_record::encode(event));
            log.append(vec![record]).await.map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// Sends everything twice, as a projector that crashed after sending and before committing
/// sends it again: the second copies must change nothing.
impl Relay for Router {
    fn send(&self, events: Vec<Event>) -> RelayFuture<'_> {
        Box::pin(async move {
            self.append(&events).await?;
            self.append(&events).await
        })
    }
}

struct Partitions {
    _dir: TempDir,
    router: Arc<Router>,
    stores: Vec<Arc<CachedStore>>,
    watches: Vec<ProjectionWatch>,
    stop: watch::Sender<bool>,
    published: u64,
}

impl Partitions {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let partitioner = Partitioner::new(NonZeroU32::new(PARTITIONS).expect("non-zero"));
        let logs = (0..PARTITIONS)
            .map(|p| {
                let config = EmbeddedLogConfig::new(dir.path().join(format!("log-{p}")));
                EmbeddedLog::open(config).expect("log")
            })
            .collect();
        let router = Arc::new(Router { partitioner, logs });
        let (stop, _) = watch::channel(false);
        let (mut stores, mut watches) = (Vec::new(), Vec::new());
        for partition in 0..PARTITIONS {
            let sled = SledStore::open(dir.path().join(format!("store-{partition}")));
            let sled: Arc<dyn JourneyStore> = Arc::new(sled.expect("store"));
            let cached = CachedStore::new(sled, ProjectionConfig::default()).expect("store");
            let store = Arc::new(cached);
            let log: Arc<dyn Log> = router.logs[partition as usize].clone();
            let projector = Projector::new(log, store.clone())
                .expect("projector")
                .with_partitioning(Some(Partitioning {
                    partitioner,
                    partition,
                    relay: router.clone(),
                }));
            watches.push(projector.watch());
            stores.push(store);
            let mut stopped = stop.subscribe();
            tokio::spawn(projector.run(async move {
                let _ = stopped.wait_for(|s| *s).await;
            }));
        }
        Self {
            _dir: dir,
            router,
            stores,
            watches,
            stop,
            published: 0,
        }
    }

    fn partition_of(&self, customer: &CustomerId) -> usize {
        self.router.partitioner.customer(&acme(), customer) as usize
    }

    /// Publishes like an adapter, then waits until every partition has folded everything,
    /// handovers and forwarded events included.
    async fn publish(&mut self, events: &[Event]) {
        self.router.append(events).await.expect("append");
        self.published += events
            .iter()
            .filter(|e| !e.payload.is_identity_change())
            .count() as u64;
        let settled = async {
            loop {
                let ends: Vec<u64> = self.router.logs.iter().map(|l| l.end_offset()).collect();
                for (watch, end) in self.watches.iter().zip(&ends) {
                    if *end > 0 {
                        assert!(watch.wait_past(end - 1).await, "projector stopped");
                    }
                }
                let now: Vec<u64> = self.router.logs.iter().map(|l| l.end_offset()).collect();
                if now == ends {
                    return;
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(10), settled)
            .await
            .expect("partitions settle");
    }

    fn journey(&self, customer: &CustomerId) -> Option<Journey> {
        self.stores[self.partition_of(customer)]
            .journey(&acme(), customer)
            .expect("get")
    }

    /// Every journey that is not a pointer, on every partition.
    fn roots(&self) -> Vec<Journey> {
        self.stores
            .iter()
            .flat_map(|s| s.journeys(None).map(|j| j.expect("read")))
            .filter(|j| j.merged_into.is_none())
            .collect()
    }

    /// Each event published (merges aside) counted once, in exactly one journey.
    fn assert_each_event_once(&self) {
        let counted: u64 = self.roots().iter().map(|j| j.counters.events).sum();
        assert_eq!(
            counted, self.published,
            "events counted once across partitions"
        );
    }
}

impl Drop for Partitions {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// A customer id whose journey lives on `partition`.
fn customer_on(partitions: &Partitions, partition: usize, name: &str) -> CustomerId {
    (0..)
        .map(|i| CustomerId::new(format!("{name}-{i}")).expect("valid"))
        .find(|c| partitions.partition_of(c) == partition)
        .expect("some id lands there")
}

/// A phone number whose home (the partition of the customer it makes) is `partition`.
fn phone_homed_on(partitions: &Partitions, partition: usize) -> ChannelIdentity {
    (0..)
        .map(|i| ChannelIdentity::phone(&format!("+9725012{i:05}")).expect("valid"))
        .find(|p| partitions.partition_of(&customer_id_for(&acme(), p)) == partition)
        .expect("some number lands there")
}

fn caller(phone: &ChannelIdentity, prefix: &str) -> EventBuilder {
    EventBuilder::new("acme", CustomerRef::Identity(phone.clone()))
        .on(Channel::Voice, &format!("{prefix}-call"))
        .ids(prefix)
}

fn proved(b: &mut EventBuilder, identity: &ChannelIdentity, assurance: AssuranceLevel) -> Event {
    b.event(Payload::CustomerIdentified {
        method: VerificationMethod::OneTimeCode,
        assurance,
        identities: vec![identity.clone()],
        expires_at: None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identity_linked_on_one_partition_is_found_from_its_home() {
    let mut partitions = Partitions::start();
    let crm = customer_on(&partitions, 0, "crm");
    let phone = phone_homed_on(&partitions, 1);
    let mut app = EventBuilder::new("acme", CustomerRef::Id(crm.clone())).ids("app");
    let events = [app.started(), proved(&mut app, &phone, AssuranceLevel::Low)];
    partitions.publish(&events).await;
    assert_eq!(
        partitions.stores[1]
            .resolve(&acme(), &phone)
            .expect("resolve"),
        Some(crm.clone()),
        "the phone's home learnt its owner"
    );

    // The same person calls: the call lands on the phone's home and moves on to the journey.
    let mut call = caller(&phone, "call");
    call.wait(Duration::from_secs(3600));
    partitions.publish(&[call.started()]).await;
    let journey = partitions.journey(&crm).expect("the customer's journey");
    assert_eq!(journey.counters.events, 3);
    assert!(
        journey
            .conversations
            .iter()
            .any(|c| c.channels.contains(&Channel::Voice))
    );
    assert!(
        partitions
            .journey(&customer_id_for(&acme(), &phone))
            .is_none(),
        "no second journey for the phone"
    );
    assert_eq!(partitions.roots().len(), 1);
    partitions.assert_each_event_once();
}

/// The elder of two customers on different partitions survives a verified proof, whichever
/// partition it is on; what comes later for either lands in the one journey.
async fn verified_proof_merges(caller_first: bool) {
    let mut partitions = Partitions::start();
    let crm = customer_on(&partitions, 2, "crm");
    let phone = phone_homed_on(&partitions, 3);
    let by_phone = customer_id_for(&acme(), &phone);
    let mut app = EventBuilder::new("acme", CustomerRef::Id(crm.clone())).ids("app");
    let mut call = caller(&phone, "call");
    if caller_first {
        app.wait(Duration::from_secs(60));
    } else {
        call.wait(Duration::from_secs(60));
    }
    partitions
        .publish(&[app.started(), app.intent("billing", 0.9)])
        .await;
    partitions.publish(&[call.started()]).await;
    assert_eq!(partitions.roots().len(), 2, "two strangers so far");

    app.wait(Duration::from_secs(120));
    partitions
        .publish(&[proved(&mut app, &phone, AssuranceLevel::High)])
        .await;
    let (survivor, absorbed) = if caller_first {
        (by_phone.clone(), crm.clone())
    } else {
        (crm.clone(), by_phone.clone())
    };
    let roots = partitions.roots();
    assert_eq!(roots.len(), 1, "one journey: {roots:#?}");
    assert_eq!(roots[0].customer_id, survivor);
    assert!(roots[0].merged_customers().any(|m| m == &absorbed));
    assert_eq!(
        partitions.journey(&absorbed).and_then(|j| j.merged_into),
        Some(survivor.clone()),
        "the absorbed customer's partition keeps a pointer"
    );

    // Later events for either customer, by id or by phone, land in the survivor's journey.
    call.wait(Duration::from_secs(3600));
    let mut later = EventBuilder::new("acme", CustomerRef::Id(absorbed.clone()))
        .on(Channel::Sms, "sms-1")
        .ids("later");
    later.wait(Duration::from_secs(7200));
    partitions.publish(&[call.started(), later.started()]).await;
    assert_eq!(partitions.roots().len(), 1);
    let journey = partitions.journey(&survivor).expect("survivor");
    assert_eq!(journey.counters.events, 6);
    partitions.assert_each_event_once();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verified_proof_merges_into_the_elder_on_its_partition() {
    verified_proof_merges(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verified_proof_moves_the_younger_journey_to_the_elders_partition() {
    verified_proof_merges(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requested_merge_across_partitions_and_its_unmerge() {
    let mut partitions = Partitions::start();
    let a = customer_on(&partitions, 0, "a");
    let b = customer_on(&partitions, 3, "b");
    let mut ea = EventBuilder::new("acme", CustomerRef::Id(a.clone())).ids("ea");
    let mut eb = EventBuilder::new("acme", CustomerRef::Id(b.clone()))
        .on(Channel::Email, "mail-1")
        .ids("eb");
    partitions
        .publish(&[ea.started(), eb.started(), eb.intent("refund", 0.8)])
        .await;
    let request = |payload| {
        EventBuilder::new("acme", CustomerRef::Id(a.clone()))
            .ids("ops")
            .event(payload)
    };
    let merge = request(Payload::CustomersMerged {
        absorbed: b.clone(),
        reason: "same person".into(),
        requested_by: "supervisor-1".into(),
    });
    partitions.publish(&[merge]).await;
    let merged = partitions.journey(&a).expect("survivor");
    assert!(merged.merged_customers().any(|m| m == &b));
    assert_eq!(merged.counters.events, 3);
    assert_eq!(
        partitions.journey(&b).and_then(|j| j.merged_into),
        Some(a.clone())
    );

    // B writes again: forwarded to A's journey, attributed to B.
    eb.wait(Duration::from_secs(600));
    partitions
        .publish(&[eb.message(rezef_events::event::Participant::Customer, "hi")])
        .await;
    assert_eq!(partitions.journey(&a).expect("a").counters.events, 4);

    let mut unmerge = request(Payload::CustomersUnmerged {
        absorbed: b.clone(),
        reason: "not the same".into(),
        requested_by: "supervisor-1".into(),
    });
    unmerge.event_id = rezef_events::EventId::new("ops-unmerge").expect("valid");
    partitions.publish(&[unmerge]).await;
    let a_alone = partitions.journey(&a).expect("a");
    assert_eq!(a_alone.counters.events, 1);
    assert_eq!(a_alone.merged_customers().count(), 0);
    let b_back = partitions.journey(&b).expect("b is back on its partition");
    assert_eq!(b_back.merged_into, None);
    assert_eq!(b_back.counters.events, 3, "with what it did while merged");
    assert!(
        partitions.stores[0]
            .journey(&acme(), &b)
            .expect("get")
            .is_none(),
        "A's partition keeps nothing of B"
    );

    eb.wait(Duration::from_secs(600));
    partitions.publish(&[eb.wrapped_up(true)]).await;
    assert_eq!(partitions.journey(&b).expect("b").counters.events, 4);
    assert_eq!(partitions.roots().len(), 2);
    partitions.assert_each_event_once();
}

/// Routing reads its tenant's routing partition only: a hang-up appended to another
/// partition is told there, as a `ContactEnded` about the same contact; one appended there
/// is not told again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hang_up_on_another_partition_is_told_to_the_routing_partition() {
    use rezef_events::event::{AbandonPoint, ContactEnd};
    let mut partitions = Partitions::start();
    let routing = partitions.router.partitioner.routing(&acme()) as usize;
    let elsewhere = (routing + 1) % PARTITIONS as usize;
    let caller = |partition: usize, name: &str| {
        let customer = customer_on(&partitions, partition, name);
        EventBuilder::new("acme", CustomerRef::Id(customer))
            .on(Channel::Voice, &format!("{name}-call"))
            .ids(name)
    };
    let (mut far, mut near) = (caller(elsewhere, "far"), caller(routing, "near"));
    let hang_up = |b: &mut EventBuilder| {
        b.event(Payload::ContactAbandoned {
            point: AbandonPoint::Queue,
        })
    };
    partitions
        .publish(&[
            far.started(),
            hang_up(&mut far),
            near.started(),
            hang_up(&mut near),
        ])
        .await;

    let log = &partitions.router.logs[routing];
    let records = log.read(0, 1_000).await.expect("read");
    let told: Vec<_> = (records.iter())
        .map(|r| rezef_record::decode(&r.payload).expect("decodes"))
        .filter_map(|e| match e.payload {
            Payload::Handover(Handover::ContactEnded { end }) => {
                Some((e.interaction_id.map(|i| i.to_string()), end, e.customer))
            }
            _ => None,
        })
        .collect();
    assert!(!told.is_empty(), "the routing partition was told");
    for said in &told {
        assert_eq!(
            said,
            &(Some("far-call".into()), ContactEnd::Abandoned, None)
        );
    }
    partitions.assert_each_event_once();
}

/// Routing's decisions, in its tenant's routing partition, keep the contacts it holds in that
/// partition's store (and nowhere else: not from the copies forwarded to the customers'
/// partitions) until they leave routing: here one ends on the customer's partition, which
/// tells the routing partition.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_contacts_routing_holds_are_kept_on_its_partition_until_they_end() {
    use rezef_events::event::{AbandonPoint, RoutingTarget};
    use rezef_events::routed::{RoutedContact, RoutingInput};
    let mut partitions = Partitions::start();
    let routing = partitions.router.partitioner.routing(&acme()) as usize;
    let elsewhere = (routing + 1) % PARTITIONS as usize;
    let input = RoutingInput {
        intent: Some("billing".into()),
        ..RoutingInput::default()
    };
    let decided = |name: &str| {
        let customer = customer_on(&partitions, elsewhere, name);
        let mut b = EventBuilder::new("acme", CustomerRef::Id(customer.clone()))
            .on(Channel::Voice, &format!("{name}-call"))
            .ids(name);
        let event = b.event(Payload::RoutingDecided {
            target: RoutingTarget::Queue,
            bot_id: String::new(),
            queue_id: "general".into(),
            agent_id: None,
            rule: String::new(),
            step: 0,
            priority: 1.0,
            candidates: Vec::new(),
            estimated_wait_ms: None,
            offer_callback: false,
            config_version: 1,
            input: Some(Box::new(input.clone())),
            explanation: None,
        });
        (b, customer, event)
    };
    let (_, waiting, waits) = decided("waits");
    let (mut hangs_up, _, hung) = decided("hangs-up");
    let routing_log = &partitions.router.logs[routing];
    for event in [waits, hung] {
        let record = Bytes::from(rezef_record::encode(&event));
        routing_log.append(vec![record]).await.expect("append");
    }
    let hang_up = hangs_up.event(Payload::ContactAbandoned {
        point: AbandonPoint::Queue,
    });
    partitions.publish(&[hang_up]).await;

    let held = partitions.stores[routing].routed_contacts().expect("read");
    let expected = RoutedContact {
        customer: waiting,
        channel: Channel::Voice,
        queue_id: "general".into(),
        input,
    };
    let held: Vec<_> = (held.iter())
        .map(|(t, c, r)| (t.clone(), c.to_string(), r.clone()))
        .collect();
    assert_eq!(held, vec![(acme(), "waits-call".to_owned(), expected)]);
    let copies = partitions.stores[elsewhere]
        .routed_contacts()
        .expect("read");
    assert_eq!(copies, Vec::new(), "forwarded copies hold nothing");
}

/// Events of a customer of `partition`, to move that partition's log ahead of the others.
async fn move_ahead(partitions: &mut Partitions, partition: usize, records: usize) {
    let busy = customer_on(partitions, partition, &format!("busy-{partition}"));
    let mut b = EventBuilder::new("acme", CustomerRef::Id(busy)).ids(&format!("busy-{partition}"));
    let mut events = vec![b.started()];
    events
        .extend((1..records).map(|_| b.message(rezef_events::event::Participant::Customer, "hi")));
    partitions.publish(&events).await;
}

/// Offsets count per partition: a journey that moves from a partition whose log is far ahead
/// must not make the events of the partition it joins look already applied (they were
/// dropped, and a verification with them), nor must one restored by an unmerge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journey_moved_from_a_partition_ahead_misses_no_event_where_it_lands() {
    // Given B's partition far ahead of A's, and a merge that moves B into A
    let mut partitions = Partitions::start();
    let a = customer_on(&partitions, 0, "a");
    let b = customer_on(&partitions, 3, "b");
    move_ahead(&mut partitions, 3, 40).await;
    let mut ea = EventBuilder::new("acme", CustomerRef::Id(a.clone())).ids("ea");
    let mut eb = EventBuilder::new("acme", CustomerRef::Id(b.clone())).ids("eb");
    partitions.publish(&[ea.started(), eb.started()]).await;
    let ops = |payload| {
        EventBuilder::new("acme", CustomerRef::Id(a.clone()))
            .ids(&format!(
                "ops-{}",
                matches!(payload, Payload::CustomersMerged { .. })
            ))
            .event(payload)
    };
    let merge = ops(Payload::CustomersMerged {
        absorbed: b.clone(),
        reason: "same person".into(),
        requested_by: "supervisor-1".into(),
    });
    partitions.publish(&[merge]).await;

    // When A proves a phone on A's partition
    let phone = phone_homed_on(&partitions, 1);
    ea.wait(Duration::from_secs(60));
    partitions
        .publish(&[proved(&mut ea, &phone, AssuranceLevel::High)])
        .await;

    // Then the proof is in the merged journey, and the phone's home knows its owner
    let merged = partitions.journey(&a).expect("survivor");
    assert_eq!(merged.counters.events, 3, "{merged:#?}");
    assert!(merged.identity(&phone).is_some(), "the verification holds");
    assert_eq!(
        partitions.stores[1]
            .resolve(&acme(), &phone)
            .expect("resolve"),
        Some(a.clone())
    );

    // And when A's partition is far ahead in turn and an unmerge sends B home
    move_ahead(&mut partitions, 0, 80).await;
    let unmerge = ops(Payload::CustomersUnmerged {
        absorbed: b.clone(),
        reason: "not the same".into(),
        requested_by: "supervisor-1".into(),
    });
    partitions.publish(&[unmerge]).await;
    // Then B's next event on its own partition counts too
    eb.wait(Duration::from_secs(600));
    partitions
        .publish(&[eb.message(rezef_events::event::Participant::Customer, "back")])
        .await;
    assert_eq!(partitions.journey(&b).expect("b").counters.events, 2);
    assert_eq!(partitions.journey(&a).expect("a").counters.events, 2);
    partitions.assert_each_event_once();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identity_owned_elsewhere_without_proof_is_a_conflict_not_a_link() {
    let mut partitions = Partitions::start();
    let crm = customer_on(&partitions, 1, "crm");
    let phone = phone_homed_on(&partitions, 2);
    let by_phone = customer_id_for(&acme(), &phone);
    let mut call = caller(&phone, "call");
    partitions.publish(&[call.started()]).await;

    // The customer's app shows the same number, unverified.
    let mut app = EventBuilder::new("acme", CustomerRef::Id(crm.clone())).ids("app");
    app.wait(Duration::from_secs(60));
    let shown = app.event(Payload::InteractionStarted {
        direction: Direction::Inbound,
        identity: Some(phone.clone()),
        entry_point: "app".into(),
        language: None,
        continuation_token: None,
    });
    partitions.publish(&[shown]).await;
    let journey = partitions.journey(&crm).expect("customer");
    assert!(journey.identity(&phone).is_none(), "the link was withdrawn");
    let conflict = journey.conflicts.last().expect("a conflict to review");
    assert_eq!(conflict.identity, phone);
    assert_eq!(conflict.owner, by_phone);
    assert_eq!(conflict.refusal, MergeRefusal::Unverified);
    assert_eq!(partitions.roots().len(), 2, "nobody was merged");
    assert_eq!(
        partitions.stores[1]
            .resolve(&acme(), &phone)
            .expect("resolve"),
        Some(by_phone),
        "the claimant's partition learnt the owner"
    );
    partitions.assert_each_event_once();
}

/// A `JourneyMoved` record written before moved journeys were versioned snapshots (the
/// fixture of rezef-events) still moves its journey into the survivor's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journey_moved_record_written_before_snapshots_still_moves_its_journey() {
    let record = include_bytes!("../../rezef-events/tests/fixtures/journey_moved_v1.json");
    let event = rezef_record::decode(record).expect("the old record decodes");
    let Payload::Handover(Handover::JourneyMoved {
        journey,
        into: Some((survivor, merge)),
    }) = event.payload.clone()
    else {
        panic!("the fixture moves a journey into a survivor");
    };
    let mut partitions = Partitions::start();
    partitions.publish(&[event]).await;

    let mut moved = journey.into_journey();
    // The first record of the survivor's partition.
    moved.arrived_at(0);
    let mut expected = Journey::new(acme(), survivor.clone(), moved.first_seen_at);
    expected.absorb(moved, merge);
    let projected = partitions
        .journey(&survivor)
        .expect("the survivor's journey");
    assert_eq!(projected, expected);
    assert_eq!(projected.merged_customers().count(), 3);
}
