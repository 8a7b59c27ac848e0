//! The behaviour every [`JourneyStore`] must show, as functions each taking a fresh, empty
//! store. Run them all with [`run_all`] from an implementation's tests.

use std::sync::Arc;

use rezef_events::agent::AgentState;
use rezef_events::event::{Channel, Presence};
use rezef_events::routed::{RoutedContact, RoutingInput};
use rezef_events::{
    AgentId, ChannelIdentity, ConversationId, CustomerId, EventId, InteractionId, Journey,
    TenantId, Timestamp,
};

use crate::dedup::{AppliedIds, digest};
use crate::store::{Index, JourneyStore, ProjectionBatch, RoutingConfigRecord, TokenGrant};

fn tenant(name: &str) -> TenantId {
    TenantId::new(name).expect("valid tenant")
}

fn customer(name: &str) -> CustomerId {
    CustomerId::new(name).expect("valid customer")
}

fn journey(tenant_id: &TenantId, customer_id: &CustomerId, events: u64) -> Arc<Journey> {
    let mut journey = Journey::new(
        tenant_id.clone(),
        customer_id.clone(),
        Timestamp::from_unix_millis(1_700_000_000_000),
    );
    journey.counters.events = events;
    Arc::new(journey)
}

/// Runs every check, each on a store from `make`.
pub fn run_all(make: impl Fn() -> Arc<dyn JourneyStore>) {
    empty_store(make());
    commit_applies_everything_with_the_offset(make());
    tenants_are_isolated(make());
    customer_offsets_are_ranged_and_exact(make());
    later_commits_replace_state(make());
    moved_journeys_are_removed(make());
    the_latest_routing_config_is_kept(make());
    routed_contacts_are_kept_until_they_leave(make());
    clear_removes_everything(make());
    conversations_and_tokens_are_indexed(make());
    forgotten_ids_are_deleted(make());
    indexes_scan_by_prefix_in_pages(make());
    forgotten_customers_leave_the_indexes(make());
    journeys_and_links_list_across_tenants_in_pages(make());
    concurrent_large_commits_all_land(make());
}

/// Commits from several threads at once, each large enough for a store to write it in
/// pieces (`crate::SledStore` journals a checkpoint of over 1,024 writes), all land whole.
pub fn concurrent_large_commits_all_land(store: Arc<dyn JourneyStore>) {
    const THREADS: u64 = 4;
    const CUSTOMERS: u64 = 1_500;
    let acme = tenant("acme");
    std::thread::scope(|scope| {
        for thread in 0..THREADS {
            let (store, acme) = (store.clone(), acme.clone());
            scope.spawn(move || {
                for round in 0..3 {
                    let customer_events = (0..CUSTOMERS)
                        .map(|n| {
                            let who = customer(&format!("c-{thread}-{n}"));
                            (acme.clone(), who, round * 10_000 + n)
                        })
                        .collect();
                    let batch = ProjectionBatch {
                        next_offset: 1,
                        customer_events,
                        ..Default::default()
                    };
                    store.commit(batch).expect("a concurrent commit");
                }
            });
        }
    });
    for thread in 0..THREADS {
        for n in [0, CUSTOMERS / 2, CUSTOMERS - 1] {
            let who = customer(&format!("c-{thread}-{n}"));
            let offsets = store.customer_offsets(&acme, &who, 0, u64::MAX);
            assert_eq!(offsets.expect("offsets"), [n, 10_000 + n, 20_000 + n]);
        }
    }
}

/// Search indexes answer by prefix, in key order, a page at a time, per tenant, across
/// commits; a later link of an identity wins.
/// A forgotten customer's identities unlinked and attribute entries deleted (those of the
/// same batch too); another customer's stay, and one linked again after is found.
pub fn forgotten_customers_leave_the_indexes(store: Arc<dyn JourneyStore>) {
    let acme = tenant("acme");
    let phone = |n: &str| ChannelIdentity::phone(n).expect("valid");
    let (dana, omer) = (customer("c-dana"), customer("c-omer"));
    let entry = |value: &str, c: &CustomerId| format!("c:order\0{value}\0{c}");
    store
        .commit(ProjectionBatch {
            next_offset: 1,
            identities: vec![
                (acme.clone(), phone("+972501234567"), dana.clone()),
                (acme.clone(), phone("+972501234568"), omer.clone()),
            ],
            attributes: vec![
                (acme.clone(), entry("A-1", &dana), dana.clone()),
                (acme.clone(), entry("A-1", &omer), omer.clone()),
            ],
            ..Default::default()
        })
        .expect("commit");
    store
        .commit(ProjectionBatch {
            next_offset: 2,
            identities: vec![(acme.clone(), phone("+972501234569"), dana.clone())],
            unlinked: vec![(acme.clone(), phone("+972501234567"))],
            attributes: vec![(acme.clone(), entry("A-2", &dana), dana.clone())],
            erased: vec![(acme.clone(), dana.clone())],
            ..Default::default()
        })
        .expect("commit");
    let resolve = |n: &str| store.resolve(&acme, &phone(n)).expect("resolve");
    assert_eq!(resolve("+972501234567"), None);
    assert_eq!(resolve("+972501234568"), Some(omer.clone()));
    assert_eq!(resolve("+972501234569"), Some(dana.clone()));
    let scan = |index, prefix: &str| {
        let found = store.scan(&acme, index, prefix, "", 10).expect("scan");
        found.into_iter().map(|(_, c)| c).collect::<Vec<_>>()
    };
    assert_eq!(
        scan(Index::Attributes, "c:order\0"),
        std::slice::from_ref(&omer)
    );
    assert_eq!(
        scan(Index::Identities, "phone::+9725012345"),
        [omer.clone(), dana.clone()]
    );
    let links = store.links_after(None, 10).expect("links");
    assert_eq!(links.len(), 2, "{links:?}");
}

pub fn indexes_scan_by_prefix_in_pages(store: Arc<dyn JourneyStore>) {
    let (acme, acmex) = (tenant("acme"), tenant("acmex"));
    let phone = |n: &str| ChannelIdentity::phone(n).expect("valid");
    let ids = [
        (acme.clone(), phone("+972501234567"), customer("c-1")),
        (acme.clone(), phone("+972501234568"), customer("c-2")),
        (acme.clone(), phone("+447911123456"), customer("c-3")),
        (acmex.clone(), phone("+972501234569"), customer("c-4")),
    ];
    let entry = |value: &str, c: &str| format!("c:order\0{value}\0{c}");
    store
        .commit(ProjectionBatch {
            next_offset: 1,
            identities: ids[..2].to_vec(),
            attributes: vec![
                (acme.clone(), entry("A-1", "c-1"), customer("c-1")),
                (acme.clone(), entry("A-10", "c-2"), customer("c-2")),
                (acmex.clone(), entry("A-1", "c-4"), customer("c-4")),
            ],
            ..Default::default()
        })
        .expect("commit");
    store
        .commit(ProjectionBatch {
            next_offset: 2,
            identities: vec![
                ids[2].clone(),
                ids[3].clone(),
                (acme.clone(), phone("+972501234568"), customer("c-9")),
            ],
            attributes: vec![(acme.clone(), entry("A-1", "c-3"), customer("c-3"))],
            ..Default::default()
        })
        .expect("commit");
    let scan = |index, prefix: &str, after: &str, limit| {
        let found = store
            .scan(&acme, index, prefix, after, limit)
            .expect("scan");
        found
            .into_iter()
            .map(|(_, c)| c.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        scan(Index::Identities, "phone::+97250", "", 10),
        ["c-1", "c-9"]
    );
    assert_eq!(scan(Index::Identities, "phone::+", "", 2), ["c-3", "c-1"]);
    let first = store
        .scan(&acme, Index::Identities, "phone::+", "", 2)
        .expect("scan");
    let after = first.last().map(|(key, _)| key.clone()).expect("a page");
    assert_eq!(scan(Index::Identities, "phone::+", &after, 2), ["c-9"]);
    assert_eq!(
        scan(Index::Attributes, "c:order\0A-1\0", "", 10),
        ["c-1", "c-3"]
    );
    let after = entry("A-1", "c-1");
    assert_eq!(
        scan(Index::Attributes, "c:order\0A-1\0", &after, 10),
        ["c-3"]
    );
    assert!(scan(Index::Attributes, "c:order\0A-2\0", "", 10).is_empty());
    let other = store
        .scan(&acmex, Index::Attributes, "c:order\0", "", 10)
        .expect("scan");
    assert_eq!(other, [(entry("A-1", "c-4"), customer("c-4"))]);
}

/// Every tenant's journeys and identity links list in key order, a page at a time, across
/// commits and checkpoints (what a cache warms from); removed journeys are not listed, and a
/// short page is the last.
pub fn journeys_and_links_list_across_tenants_in_pages(store: Arc<dyn JourneyStore>) {
    let (acme, acmex) = (tenant("acme"), tenant("acmex"));
    let who = |n: u64| customer(&format!("c-{n}"));
    let phone = |n: u64| ChannelIdentity::phone(&format!("+97250123456{n}")).expect("valid");
    let journeys = (0..5).map(|n| journey(&acme, &who(n), 1));
    store
        .commit(ProjectionBatch {
            next_offset: 1,
            journeys: journeys.chain([journey(&acmex, &who(0), 1)]).collect(),
            identities: (0..5).map(|n| (acme.clone(), phone(n), who(n))).collect(),
            ..Default::default()
        })
        .expect("commit");
    store.checkpoint().expect("checkpoint");
    store
        .commit(ProjectionBatch {
            next_offset: 2,
            journeys: vec![journey(&acme, &who(3), 2), journey(&acmex, &who(1), 1)],
            removed: vec![(acme.clone(), who(1)), (acme.clone(), who(2))],
            identities: vec![(acmex.clone(), phone(0), who(1))],
            ..Default::default()
        })
        .expect("commit");

    let (mut after, mut pages) = (None, Vec::new());
    loop {
        let page = store.journeys_after(after.as_ref(), 2).expect("journeys");
        let last = page
            .last()
            .map(|j| (j.tenant_id.clone(), j.customer_id.clone()));
        let short = page.len() < 2;
        let page = page.iter().map(|j| {
            let (t, c) = (j.tenant_id.as_str(), j.customer_id.as_str());
            format!("{t}/{c}/{}", j.counters.events)
        });
        pages.push(page.collect::<Vec<_>>());
        after = last;
        if short {
            break;
        }
    }
    let expected = [
        vec!["acme/c-0/1", "acme/c-3/2"],
        vec!["acme/c-4/1", "acmex/c-0/1"],
        vec!["acmex/c-1/1"],
    ];
    assert_eq!(pages, expected);

    let first = store.links_after(None, 4).expect("links");
    let link = |t: &TenantId, n: u64, owner: u64| (t.clone(), phone(n).index_key(), who(owner));
    assert_eq!(first, (0..4).map(|n| link(&acme, n, n)).collect::<Vec<_>>());
    let after = first.last().map(|(t, key, _)| (t.clone(), key.clone()));
    let rest = store.links_after(after.as_ref(), 4).expect("links");
    assert_eq!(rest, [link(&acme, 4, 4), link(&acmex, 0, 1)]);
}

pub fn forgotten_ids_are_deleted(store: Arc<dyn JourneyStore>) {
    let acme = tenant("acme");
    let id = |n: u64| digest(&acme, &EventId::new(format!("e-{n}")).expect("valid"));
    for (offset, generation) in [(1, 0), (2, 1), (3, 1)] {
        store
            .commit(ProjectionBatch {
                next_offset: offset,
                applied: vec![AppliedIds {
                    generation,
                    digests: vec![id(generation * 10 + offset)],
                }],
                ..Default::default()
            })
            .expect("commit");
    }
    store
        .commit(ProjectionBatch {
            next_offset: 4,
            forgotten: vec![0],
            ..Default::default()
        })
        .expect("commit");
    let mut kept: Vec<(u64, Vec<u128>)> = (store.applied_ids().expect("applied"))
        .into_iter()
        .map(|c| (c.generation, c.digests))
        .collect();
    kept.sort();
    let digests: Vec<u128> = kept.iter().flat_map(|(_, d)| d.clone()).collect();
    assert!(kept.iter().all(|(g, _)| *g == 1), "generation 0 is gone");
    assert_eq!(digests.len(), 2);
    assert!(digests.contains(&id(12)) && digests.contains(&id(13)));
}

/// Conversations, routed interactions and tokens are indexed by tenant.
pub fn conversations_and_tokens_are_indexed(store: Arc<dyn JourneyStore>) {
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    let c1 = customer("c-1");
    let conversation = ConversationId::new("cnv-1").expect("valid");
    let interaction = InteractionId::new("call-1").expect("valid");
    let grant = TokenGrant {
        customer: c1.clone(),
        expires_at: Timestamp::from_unix_millis(1_800_000_000_123),
        redeem_on: vec![Channel::Voice, Channel::Ivr],
    };
    let anywhere = TokenGrant {
        redeem_on: Vec::new(),
        ..grant.clone()
    };
    store
        .commit(ProjectionBatch {
            next_offset: 3,
            conversations: vec![(acme.clone(), conversation.clone(), c1.clone())],
            decided: vec![(acme.clone(), interaction.clone(), c1.clone())],
            tokens: vec![
                (acme.clone(), "482913".into(), Some(grant.clone())),
                (acme.clone(), "k3x9-link".into(), Some(anywhere.clone())),
            ],
            ..Default::default()
        })
        .expect("commit");
    let owner = |t: &TenantId| store.conversation_owner(t, &conversation).expect("get");
    assert_eq!((owner(&acme), owner(&globex)), (Some(c1.clone()), None));
    let decided = |t: &TenantId| store.decided_customer(t, &interaction).expect("get");
    assert_eq!((decided(&acme), decided(&globex)), (Some(c1.clone()), None));
    assert_eq!(store.token(&acme, "482913").expect("get"), Some(grant));
    assert_eq!(
        store.token(&acme, "k3x9-link").expect("get"),
        Some(anywhere)
    );
    assert_eq!(store.token(&globex, "482913").expect("get"), None);
    store
        .commit(ProjectionBatch {
            next_offset: 4,
            tokens: vec![(acme.clone(), "482913".into(), None)],
            ..Default::default()
        })
        .expect("commit");
    assert_eq!(store.token(&acme, "482913").expect("get"), None, "used up");
}

pub fn empty_store(store: Arc<dyn JourneyStore>) {
    let acme = tenant("acme");
    assert_eq!(store.projected_offset().expect("offset"), 0);
    assert!(
        store
            .journey(&acme, &customer("c-1"))
            .expect("get")
            .is_none()
    );
    let phone = ChannelIdentity::phone("+972501234567").expect("valid");
    assert!(store.resolve(&acme, &phone).expect("resolve").is_none());
    assert_eq!(store.journeys(None).count(), 0);
}

pub fn commit_applies_everything_with_the_offset(store: Arc<dyn JourneyStore>) {
    let acme = tenant("acme");
    let c1 = customer("c-1");
    let phone = ChannelIdentity::phone("+972501234567").expect("valid");
    let event = EventId::new("e-1").expect("valid");
    let agent = AgentId::new("agent-1").expect("valid");
    let batch = ProjectionBatch {
        next_offset: 7,
        journeys: vec![journey(&acme, &c1, 3)],
        identities: vec![(acme.clone(), phone.clone(), c1.clone())],
        applied: vec![AppliedIds {
            generation: 0,
            digests: vec![digest(&acme, &event)],
        }],
        customer_events: vec![(acme.clone(), c1.clone(), 6)],
        agents: vec![(
            acme.clone(),
            AgentState {
                agent_id: agent.clone(),
                presence: Presence::Available,
                custom_status: String::new(),
                since: Timestamp::from_unix_millis(1),
                last_event_offset: 5,
            },
        )],
        ..Default::default()
    };
    store.commit(batch).expect("commit");
    assert_eq!(store.projected_offset().expect("offset"), 7);
    let stored = store.journey(&acme, &c1).expect("get").expect("present");
    assert_eq!(stored.counters.events, 3);
    assert_eq!(
        store.resolve(&acme, &phone).expect("resolve"),
        Some(c1.clone())
    );
    let applied = store.applied_ids().expect("applied ids");
    assert_eq!(applied.len(), 1);
    assert_eq!(applied[0].digests, [digest(&acme, &event)]);
    assert_eq!(
        store.customer_offsets(&acme, &c1, 0, 100).expect("offsets"),
        [6]
    );
    let agent_state = store.agent(&acme, &agent).expect("agent").expect("present");
    assert_eq!(agent_state.presence, Presence::Available);
}

pub fn tenants_are_isolated(store: Arc<dyn JourneyStore>) {
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    let c1 = customer("c-1");
    let phone = ChannelIdentity::phone("+972501234567").expect("valid");
    store
        .commit(ProjectionBatch {
            next_offset: 2,
            journeys: vec![journey(&acme, &c1, 1), journey(&globex, &c1, 2)],
            identities: vec![(acme.clone(), phone.clone(), c1.clone())],
            ..Default::default()
        })
        .expect("commit");
    let events = |t: &TenantId| {
        store
            .journey(t, &c1)
            .expect("get")
            .map(|j| j.counters.events)
    };
    assert_eq!((events(&acme), events(&globex)), (Some(1), Some(2)));
    assert!(store.resolve(&globex, &phone).expect("resolve").is_none());
    let listed: Vec<_> = store
        .journeys(Some(&acme))
        .map(|j| j.expect("decodes").tenant_id)
        .collect();
    assert_eq!(listed, std::slice::from_ref(&acme));
    assert_eq!(store.journeys(None).count(), 2);
}

pub fn customer_offsets_are_ranged_and_exact(store: Arc<dyn JourneyStore>) {
    let acme = tenant("acme");
    let (c1, c10) = (customer("c-1"), customer("c-10"));
    // Two projection steps, so a customer's offsets span several commits.
    for (next_offset, offsets, other) in [(6, vec![1, 5], Some(4)), (301, vec![9, 300], None)] {
        let mut customer_events: Vec<_> = offsets
            .into_iter()
            .map(|o| (acme.clone(), c1.clone(), o))
            .collect();
        customer_events.extend(other.map(|o| (acme.clone(), c10.clone(), o)));
        store
            .commit(ProjectionBatch {
                next_offset,
                customer_events,
                ..Default::default()
            })
            .expect("commit");
    }
    let all = store
        .customer_offsets(&acme, &c1, 0, u64::MAX)
        .expect("all");
    assert_eq!(all, [1, 5, 9, 300]);
    assert_eq!(
        store.customer_offsets(&acme, &c1, 2, 9).expect("range"),
        [5]
    );
    assert_eq!(
        store
            .customer_offsets(&acme, &c1, 5, 10)
            .expect("across steps"),
        [5, 9]
    );
    let empty = store.customer_offsets(&acme, &c1, 9, 9).expect("empty");
    assert_eq!(empty, Vec::<u64>::new());
    assert_eq!(
        store.customer_offsets(&acme, &c10, 0, 10).expect("other"),
        [4]
    );
}

pub fn later_commits_replace_state(store: Arc<dyn JourneyStore>) {
    let acme = tenant("acme");
    let c1 = customer("c-1");
    for (offset, events) in [(1, 1), (2, 2)] {
        store
            .commit(ProjectionBatch {
                next_offset: offset,
                journeys: vec![journey(&acme, &c1, events)],
                ..Default::default()
            })
            .expect("commit");
    }
    let stored = store.journey(&acme, &c1).expect("get").expect("present");
    assert_eq!(stored.counters.events, 2);
    assert_eq!(store.projected_offset().expect("offset"), 2);
}

pub fn moved_journeys_are_removed(store: Arc<dyn JourneyStore>) {
    let acme = tenant("acme");
    let (c1, c2) = (customer("c-1"), customer("c-2"));
    store
        .commit(ProjectionBatch {
            next_offset: 1,
            journeys: vec![journey(&acme, &c1, 1), journey(&acme, &c2, 1)],
            ..Default::default()
        })
        .expect("commit");
    store
        .commit(ProjectionBatch {
            next_offset: 2,
            removed: vec![(acme.clone(), c1.clone())],
            ..Default::default()
        })
        .expect("commit");
    assert!(store.journey(&acme, &c1).expect("get").is_none());
    assert!(store.journey(&acme, &c2).expect("get").is_some());
    assert_eq!(store.journeys(Some(&acme)).count(), 1);
}

pub fn the_latest_routing_config_is_kept(store: Arc<dyn JourneyStore>) {
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    assert_eq!(store.routing_config(&acme).expect("read"), None);
    for version in [1, 2] {
        let record = RoutingConfigRecord {
            version,
            config: format!("version = {version}"),
        };
        store
            .commit(ProjectionBatch {
                next_offset: version,
                routing: vec![(acme.clone(), record)],
                ..Default::default()
            })
            .expect("commit");
    }
    let kept = store.routing_config(&acme).expect("read").expect("kept");
    assert_eq!((kept.version, kept.config.as_str()), (2, "version = 2"));
    assert_eq!(store.routing_config(&globex).expect("read"), None);
}

/// Contacts routing holds are kept, replaced and removed as commits say, across checkpoints,
/// per tenant.
pub fn routed_contacts_are_kept_until_they_leave(store: Arc<dyn JourneyStore>) {
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    let contact = |id: &str| InteractionId::new(id).expect("valid");
    let routed = |queue: &str| RoutedContact {
        customer: customer("c-1"),
        channel: Channel::Voice,
        queue_id: queue.into(),
        input: RoutingInput {
            intent: Some("billing".into()),
            ..RoutingInput::default()
        },
    };
    assert_eq!(store.routed_contacts().expect("read"), Vec::new());
    store
        .commit(ProjectionBatch {
            next_offset: 1,
            routed: vec![
                (acme.clone(), contact("i-1"), Some(routed("general"))),
                (acme.clone(), contact("i-2"), Some(routed("general"))),
                (globex.clone(), contact("i-1"), Some(routed("sales"))),
            ],
            ..Default::default()
        })
        .expect("commit");
    store.checkpoint().expect("checkpoint");
    store
        .commit(ProjectionBatch {
            next_offset: 2,
            routed: vec![
                (acme.clone(), contact("i-1"), None),
                (acme.clone(), contact("i-2"), Some(routed("billing"))),
                (acme.clone(), contact("i-9"), None),
            ],
            ..Default::default()
        })
        .expect("commit");
    let expected = vec![
        (acme.clone(), contact("i-2"), routed("billing")),
        (globex.clone(), contact("i-1"), routed("sales")),
    ];
    assert_eq!(store.routed_contacts().expect("read"), expected);
    store.checkpoint().expect("checkpoint");
    assert_eq!(store.routed_contacts().expect("read"), expected);
    store.clear().expect("clear");
    assert_eq!(store.routed_contacts().expect("read"), Vec::new());
}

pub fn clear_removes_everything(store: Arc<dyn JourneyStore>) {
    let acme = tenant("acme");
    let c1 = customer("c-1");
    store
        .commit(ProjectionBatch {
            next_offset: 9,
            journeys: vec![journey(&acme, &c1, 1)],
            ..Default::default()
        })
        .expect("commit");
    store.clear().expect("clear");
    assert_eq!(store.projected_offset().expect("offset"), 0);
    assert!(store.journey(&acme, &c1).expect("get").is_none());
}
