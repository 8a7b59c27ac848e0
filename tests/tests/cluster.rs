//! Three `rezef serve` nodes sharing a Kafka topic (docs/scale-out.md), against the broker
//! `scripts/kafka-broker` starts (`.ci/run` exports `KAFKA_BROKERS`; skipped without it).
//!
//! Publishers write through every node while one node is killed with `kill -9`: its
//! partitions move to the survivors and calls through any node keep being answered; restarted,
//! it takes partitions back. Then another node stops (SIGTERM) and hands its partitions over.
//! Every acknowledged event is projected exactly once, read through every node. Then one
//! person on three partitions ends with one journey, a search through any node finds
//! customers on every partition, a tenant's routing, on one node, is reached through any,
//! and a caller who hangs up on another partition leaves its queue.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use proto::agent_session_event::Event as Received;
use rezef_adapter::{AgentSession, EventFactory, identity_ref, proto};
use rezef_events::fold::customer_id_for;
use rezef_events::partition::Partitioner;
use rezef_events::testing::EventBuilder;
use rezef_events::{ChannelIdentity, CustomerId, JourneySnapshot, TenantId};
use rezef_proto::cluster::v1::partitions_client::PartitionsClient;
use rezef_proto::cluster::v1::{AppendRequest, ReadFiguresRequest, ReadJourneyRequest};
use rezef_scenarios::kafka::KafkaTopic;
use rezef_scenarios::{RezefServer, answers_itself, route_self};
use tonic::Code;

const TENANT: &str = "cluster-test";
const CUSTOMERS: usize = 24;
const PARTITIONS: &str = "6";

fn factory(customer: usize) -> EventFactory {
    EventFactory::new(TENANT, "cluster-test")
        .customer(format!("c-{customer}"))
        .on(proto::Channel::Webchat, format!("chat-{customer}"))
}

fn customers() -> Vec<proto::CustomerRef> {
    (0..CUSTOMERS).map(|c| factory(c).customer_ref()).collect()
}

/// Acknowledged events: event id → (partition, offset, customer).
type Acked = Arc<Mutex<HashMap<String, (u32, u64, usize)>>>;

/// Publishes batches through the nodes in turn until `stop`; a batch that fails is retried
/// (same event ids) through the next node.
async fn publish(urls: Vec<String>, task: usize, acked: Acked, stop: Arc<AtomicBool>) {
    let mut round = 0;
    let mut node = task;
    while !stop.load(Ordering::Relaxed) {
        let batch: Vec<_> = (0..5)
            .map(|i| {
                let customer = (task * 7 + round * 3 + i) % CUSTOMERS;
                let event = factory(customer).message(proto::Participant::Customer, "hi");
                (customer, event)
            })
            .collect();
        round += 1;
        loop {
            node = (node + 1) % urls.len();
            let events: Vec<_> = batch.iter().map(|(_, e)| e.clone()).collect();
            let published = match rezef_adapter::Client::connect(urls[node].clone()).await {
                Ok(mut client) => client.publish(events).await.ok(),
                Err(_) => None,
            };
            if let Some(ack) = published {
                let mut acked = acked.lock().expect("lock");
                for ((customer, event), position) in batch.iter().zip(&ack.positions) {
                    let place = (position.partition, position.offset, *customer);
                    acked.insert(event.event_id.clone(), place);
                }
                break;
            }
            if stop.load(Ordering::Relaxed) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn flags(topic: &KafkaTopic, node: usize) -> Vec<String> {
    let mut flags = topic.flags(PARTITIONS.parse().expect("a number"));
    flags.extend(["--node-id".into(), format!("node-{node}")]);
    flags
}

async fn start(dir: &std::path::Path, flags: &[String]) -> RezefServer {
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    RezefServer::start_with(dir, &flags).await
}

async fn wait_for_acks(acked: &Acked, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while acked.lock().expect("lock").len() < count {
        assert!(Instant::now() < deadline, "publishing stalled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A `GetJourney` asking for the owner's address instead of a forward.
fn routing_self(customer: proto::CustomerRef) -> tonic::Request<proto::GetJourneyRequest> {
    route_self(TENANT, customer)
}

/// Which customers the node answers for itself (the others it would forward).
async fn served_by(server: &RezefServer) -> usize {
    let client = server.client().await;
    let mut served = 0;
    for customer in customers() {
        served += usize::from(answers_itself(&client, TENANT, customer).await);
    }
    served
}

/// A merge asked through one node joins two customers on different partitions, and a phone
/// verified by one of them, whose home is a third partition, then leads to the same journey:
/// read by either id or by the phone, through every node (docs/scale-out.md §2).
async fn one_person_on_three_partitions(nodes: &[RezefServer]) -> String {
    let partitions = NonZeroU32::new(PARTITIONS.parse().expect("a number")).expect("non-zero");
    let partitioner = Partitioner::new(partitions);
    let tenant = TenantId::new(TENANT).expect("valid");
    let partition_of = |id: &str| partitioner.customer(&tenant, &CustomerId::new(id).expect("id"));
    let pick = |prefix: &str, taken: &[u32]| {
        (0..)
            .map(|i| format!("{prefix}-{i}"))
            .find(|id| !taken.contains(&partition_of(id)))
            .expect("another partition")
    };
    let a = pick("person-a", &[]);
    let b = pick("person-b", &[partition_of(&a)]);
    let phone = (0..)
        .map(|i| format!("+97250300{i:04}"))
        .find(|number| {
            let identity = ChannelIdentity::phone(number).expect("valid");
            let home = customer_id_for(&tenant, &identity);
            ![partition_of(&a), partition_of(&b)].contains(&partition_of(home.as_str()))
        })
        .expect("a number homed elsewhere");
    let person = |id: &str| {
        EventFactory::new(TENANT, "cluster-test")
            .customer(id)
            .on(proto::Channel::App, format!("app-{id}"))
    };
    let caller = EventFactory::new(TENANT, "cluster-test")
        .identity(proto::IdentityKind::Phone, &phone)
        .on(proto::Channel::Voice, "call-person");
    let (first, second) = (nodes[0].client().await, nodes[1].client().await);
    let publish = |client: &rezef_adapter::Client, event: proto::Event| {
        let mut ingest = client.ingest();
        async move {
            let request = proto::PublishRequest {
                events: vec![event],
                sequence: 0,
            };
            ingest.publish(request).await.expect("published");
        }
    };
    publish(
        &first,
        person(&a).interaction_started(proto::Direction::Inbound),
    )
    .await;
    publish(
        &first,
        person(&b).interaction_started(proto::Direction::Inbound),
    )
    .await;
    let merge = proto::MergeCustomersRequest {
        tenant_id: TENANT.into(),
        survivor_customer_id: a.clone(),
        absorbed_customer_id: b.clone(),
        reason: "same person".into(),
        requested_by: "supervisor-1".into(),
    };
    let mut merged = None;
    for _ in 0..100 {
        match second.identities().merge_customers(merge.clone()).await {
            Ok(response) => {
                merged = Some(response);
                break;
            }
            // B's start may not be folded yet.
            Err(status) if status.code() == Code::NotFound => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(status) => panic!("merge: {status:?}"),
        }
    }
    merged.expect("the merge was accepted");
    let proof = person(&a).identified(
        proto::VerificationMethod::OneTimeCode,
        proto::AssuranceLevel::High,
        vec![proto::ChannelIdentity {
            kind: proto::IdentityKind::Phone as i32,
            value: phone.clone(),
            network: String::new(),
        }],
    );
    publish(&second, proof).await;
    publish(
        &first,
        caller.interaction_started(proto::Direction::Inbound),
    )
    .await;

    let phone_ref = identity_ref(proto::IdentityKind::Phone, &phone);
    let by_b = person(&b).customer_ref();
    let deadline = Instant::now() + Duration::from_secs(60);
    for node in nodes {
        let client = node.client().await;
        for reference in [&by_b, &phone_ref] {
            loop {
                let request = proto::GetJourneyRequest {
                    tenant_id: TENANT.into(),
                    customer: Some(reference.clone()),
                    ..Default::default()
                };
                let found = client.journeys().get_journey(request).await;
                let journey = found.ok().and_then(|r| r.into_inner().journey);
                let events = journey
                    .as_ref()
                    .and_then(|j| j.counters.as_ref())
                    .map(|c| c.events);
                if journey.as_ref().is_some_and(|j| j.customer_id == a) && events == Some(4) {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{reference:?} through {} reads {journey:?}",
                    node.url()
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    a
}

/// A search through any node asks every partition: an order number collected from customers
/// on every partition finds each of them once, in order, a page at a time; the phone the
/// merged person verified finds that person (`Identities/FindCustomers`).
async fn customers_found_through_any_node(nodes: &[RezefServer], person: &str) {
    let client = nodes[0].client().await;
    for customer in 0..CUSTOMERS {
        let request = proto::PublishRequest {
            events: vec![factory(customer).context("order_id", "ORD-7", false)],
            sequence: 0,
        };
        client.ingest().publish(request).await.expect("published");
    }
    let mut expected: Vec<String> = (0..CUSTOMERS).map(|c| format!("c-{c}")).collect();
    expected.sort();
    let query = |value: &str| {
        Some(proto::find_customers_request::Query::Attribute(
            proto::AttributeMatch {
                scope: proto::AttributeScope::Context as i32,
                name: "order_id".into(),
                value: value.into(),
            },
        ))
    };
    for node in nodes {
        let client = node.client().await;
        let (mut found, mut token) = (Vec::new(), String::new());
        loop {
            let request = proto::FindCustomersRequest {
                tenant_id: TENANT.into(),
                query: query("ORD-7"),
                page_size: 5,
                page_token: token.clone(),
            };
            let page = client.identities().find_customers(request).await;
            let page = page.unwrap_or_else(|status| panic!("{}: {status:?}", node.url()));
            let page = page.into_inner();
            assert!(page.customers.len() <= 5);
            found.extend(page.customers.into_iter().map(|f| f.matched_customer_id));
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        assert_eq!(found, expected, "through {}", node.url());
        let request = proto::FindCustomersRequest {
            tenant_id: TENANT.into(),
            query: Some(proto::find_customers_request::Query::IdentityPrefix(
                proto::IdentityPrefix {
                    kind: proto::IdentityKind::Phone as i32,
                    network: String::new(),
                    value_prefix: "+97250300".into(),
                },
            )),
            ..Default::default()
        };
        let page = client.identities().find_customers(request).await;
        let page = page.expect("find by phone").into_inner();
        let owners: Vec<_> = page
            .customers
            .iter()
            .map(|f| f.customer_id.as_str())
            .collect();
        assert_eq!(owners, [person], "through {}", node.url());
    }
}

/// A caller whose events go to another partition than the tenant's routing partition hangs
/// up while queued: the hang-up, published through any node, takes the contact out of the
/// queue on the routing node (docs/scale-out.md §5).
async fn a_caller_who_hangs_up_leaves_the_queue_whatever_the_partition(nodes: &[RezefServer]) {
    let customer = customer_where("hangs-up", false);
    let call = EventFactory::new(TENANT, "cluster-test")
        .customer(&customer)
        .on(proto::Channel::Voice, "call-hangs-up");
    let (first, last) = (
        nodes[0].client().await,
        nodes[nodes.len() - 1].client().await,
    );
    let publish = |client: &rezef_adapter::Client, event: proto::Event| {
        let mut ingest = client.ingest();
        async move {
            let request = proto::PublishRequest {
                events: vec![event],
                sequence: 0,
            };
            ingest.publish(request).await.expect("published");
        }
    };
    publish(&first, call.interaction_started(proto::Direction::Inbound)).await;
    let request = proto::RouteInteractionRequest {
        tenant_id: TENANT.into(),
        customer: Some(call.customer_ref()),
        interaction_id: "call-hangs-up".into(),
        channel: proto::Channel::Voice as i32,
        ..Default::default()
    };
    first
        .routing()
        .route_interaction(request)
        .await
        .expect("routed");
    let waiting = |client: rezef_adapter::Client| async move {
        let request = proto::GetQueueStatsRequest {
            tenant_id: TENANT.into(),
        };
        let stats = client
            .routing()
            .get_queue_stats(request)
            .await
            .expect("stats");
        let queues = stats.into_inner().queues;
        queues.iter().map(|q| q.waiting).sum::<u32>()
    };
    assert_eq!(
        waiting(last.clone()).await,
        1,
        "queued: nobody is logged in"
    );
    let abandoned = call.event(proto::event::Payload::ContactAbandoned(
        proto::ContactAbandoned {
            point: proto::AbandonPoint::Queue as i32,
        },
    ));
    publish(&last, abandoned).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while waiting(first.clone()).await != 0 {
        assert!(
            Instant::now() < deadline,
            "the caller who hung up still waits"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A customer id starting with `prefix` whose journey is kept on the tenant's routing
/// partition (`on_routing`) or on another.
fn customer_where(prefix: &str, on_routing: bool) -> String {
    let partitions = NonZeroU32::new(PARTITIONS.parse().expect("a number")).expect("non-zero");
    let partitioner = Partitioner::new(partitions);
    let tenant = TenantId::new(TENANT).expect("valid");
    let routing = partitioner.routing(&tenant);
    (0..)
        .map(|i| format!("{prefix}-{i}"))
        .find(|id| {
            let partition = partitioner.customer(&tenant, &CustomerId::new(id).expect("id"));
            (partition == routing) == on_routing
        })
        .expect("some id lands there")
}

/// A node that does not own the tenant's routing partition now.
async fn routing_moves_to(nodes: &[RezefServer]) -> usize {
    let customer = customer_where("routing", true);
    for (at, node) in nodes.iter().enumerate() {
        let request = routing_self(proto::CustomerRef {
            r#ref: Some(proto::customer_ref::Ref::CustomerId(customer.clone())),
        });
        let answer = node.client().await.journeys().get_journey(request).await;
        if answer.is_err_and(|status| status.code() == Code::Unavailable) {
            return at;
        }
    }
    panic!("every node owns the routing partition");
}

const ROUTING: &str = r#"
version = 1
default_queue = "general"

[[queues]]
id = "general"
steps = [{ after = "0s" }]
"#;

/// A tenant's routing runs on the owner of its routing partition (docs/scale-out.md §5): its
/// configuration set through one node, an agent logged in through another and a contact
/// routed through either meet there, and the offer carries the customer's journey, read from
/// the partition that keeps it.
async fn routing_runs_on_one_node_and_any_node_reaches_it(
    nodes: &[RezefServer],
    customer: &str,
    call: &str,
) {
    let (first, last) = (
        nodes[0].client().await,
        nodes[nodes.len() - 1].client().await,
    );
    let config = proto::SetRoutingConfigRequest {
        tenant_id: TENANT.into(),
        config: ROUTING.into(),
    };
    last.routing()
        .set_routing_config(config)
        .await
        .expect("configured through any node");
    let profile = proto::AgentProfile {
        agent_id: "agent-1".into(),
        capacity: [("voice".to_owned(), 1)].into(),
        max_load: 1,
        ..Default::default()
    };
    let mut agent = AgentSession::login(&first, TENANT, profile, None)
        .await
        .expect("logged in through any node");
    let request = proto::RouteInteractionRequest {
        tenant_id: TENANT.into(),
        customer: Some(proto::CustomerRef {
            r#ref: Some(proto::customer_ref::Ref::CustomerId(customer.to_owned())),
        }),
        interaction_id: call.into(),
        channel: proto::Channel::Voice as i32,
        ..Default::default()
    };
    last.routing()
        .route_interaction(request)
        .await
        .expect("routed through any node");
    let offer = next_of(&mut agent, |event| match event {
        Received::Offer(offer) => Some(offer),
        _ => None,
    })
    .await;
    assert_eq!(offer.interaction_id, call);
    let context = offer.context.expect("the customer's context");
    assert_eq!(context.customer_id, customer, "read from its own partition");
    agent.accept(offer.offer_id).await.expect("accepted");
    let assigned = next_of(&mut agent, |event| match event {
        Received::Assigned(assigned) => Some(assigned),
        _ => None,
    })
    .await;
    assert_eq!(assigned.interaction_id, call);
}

/// The agent's next event that `pick` takes, passing over the others (presence, ...).
async fn next_of<T>(agent: &mut AgentSession, pick: impl Fn(Received) -> Option<T>) -> T {
    loop {
        let next = tokio::time::timeout(Duration::from_secs(20), agent.next())
            .await
            .expect("an event in time")
            .expect("ok")
            .expect("the session is open");
        if let Some(picked) = pick(next) {
            return picked;
        }
    }
}

/// `rezef.cluster.v1.Partitions` is for the nodes' projectors: what no projector would send
/// is refused with `INVALID_ARGUMENT` naming the field, and nothing is appended; figures
/// asked in another format are refused with `FAILED_PRECONDITION`.
async fn calls_between_nodes_refuse_bad_input(node: &RezefServer) {
    let channel = tonic::transport::Endpoint::from_shared(node.url())
        .expect("url")
        .connect()
        .await
        .expect("connected");
    let mut partitions = PartitionsClient::new(channel);
    let published = EventBuilder::customer(TENANT, "c-1").started();
    let append = |partition: u32, events: Vec<Vec<u8>>| AppendRequest { partition, events };
    let refused = [
        (append(99, vec![b"{}".to_vec()]), "partition"),
        (append(0, Vec::new()), "events"),
        (append(0, vec![b"not json".to_vec()]), "events[0]"),
        // An adapter's event belongs in rezef.v1.Ingest, which validates it.
        (
            append(0, vec![rezef_record::encode(&published)]),
            "rezef.v1.Ingest",
        ),
    ];
    for (request, field) in refused {
        let status = partitions.append(request).await.expect_err("refused");
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(status.message().contains(field), "{field}: {status:?}");
    }
    let read = |tenant: &str, customer: &[u8]| ReadJourneyRequest {
        tenant_id: tenant.into(),
        customer: customer.to_vec(),
        ..Default::default()
    };
    for (request, field) in [
        (read("no tenant!", br#"{"id":"c-1"}"#), "tenant_id"),
        (read(TENANT, b"c-1"), "customer"),
    ] {
        let status = partitions.read_journey(request).await.expect_err("refused");
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(status.message().contains(field), "{field}: {status:?}");
    }
    let figures = |tenant: &str, format: u32, query: &[u8]| ReadFiguresRequest {
        tenant_id: tenant.into(),
        partitions: vec![0],
        format,
        query: query.to_vec(),
    };
    let format = rezef_store::MEASURE_FORMAT;
    for (request, code, field) in [
        (
            figures(TENANT, format + 1, b""),
            Code::FailedPrecondition,
            "format",
        ),
        (
            figures("no tenant!", format, b""),
            Code::InvalidArgument,
            "tenant_id",
        ),
        (
            figures(TENANT, format, b"\xff"),
            Code::InvalidArgument,
            "query",
        ),
    ] {
        let status = partitions.read_figures(request).await.expect_err("refused");
        assert_eq!(status.code(), code, "{status:?}");
        assert!(status.message().contains(field), "{field}: {status:?}");
    }
    let found = partitions
        .read_journey(read(TENANT, br#"{"id":"c-1"}"#))
        .await
        .expect("the node serves every partition")
        .into_inner();
    let snapshot = JourneySnapshot::from_bytes(&found.journey).expect("a journey snapshot");
    assert_eq!(snapshot.version(), rezef_events::snapshot::SNAPSHOT_VERSION);
    assert_eq!(snapshot.into_journey().customer_id.as_str(), "c-1");
}

/// Every acknowledged event is in the log at the position it was acknowledged with, and
/// every journey, read through `server`, applied each of its events once. (A publish that
/// failed after its owner appended it, e.g. when the owner was killed before answering, is
/// retried and appended again; the journey applies the first copy, and the replay of a
/// customer lists the copy that was applied.)
async fn check_exactly_once(server: &RezefServer, acked: &HashMap<String, (u32, u64, usize)>) {
    server.wait_ready(TENANT, &customers()).await;
    let mut client = server.client().await;
    let mut at: HashMap<(u32, u64), String> = HashMap::new();
    for partition in 0..PARTITIONS.parse().expect("a number") {
        let replay = client
            .replay(proto::ReplayHistoryRequest {
                tenant_id: TENANT.into(),
                partition: Some(partition),
                ..Default::default()
            })
            .await
            .expect("replay");
        let records: Vec<_> = replay.map(|r| r.expect("replayed")).collect().await;
        for r in records {
            assert_eq!(r.partition, partition);
            let id = r.event.as_ref().expect("event").event_id.clone();
            at.insert((partition, r.offset), id);
        }
    }
    let mut applied: HashSet<String> = HashSet::new();
    for (c, customer) in customers().into_iter().enumerate() {
        let replay = client
            .replay(proto::ReplayHistoryRequest {
                tenant_id: TENANT.into(),
                customer: Some(customer.clone()),
                ..Default::default()
            })
            .await
            .expect("replay");
        let events: Vec<_> = replay.map(|r| r.expect("replayed")).collect().await;
        let ids: HashSet<_> = events
            .iter()
            .map(|r| r.event.as_ref().expect("event").event_id.clone())
            .collect();
        assert_eq!(ids.len(), events.len(), "c-{c}: an event applied twice");
        let journey = client
            .journey(TENANT, customer, None)
            .await
            .expect("journey")
            .journey
            .expect("journey");
        let counters = journey.counters.expect("counters");
        assert_eq!(counters.events, ids.len() as u64, "c-{c}: events applied");
        applied.extend(ids);
    }
    for (id, (partition, offset, _)) in acked {
        assert_eq!(
            at.get(&(*partition, *offset)),
            Some(id),
            "acknowledged event {id} is not at {partition}/{offset}"
        );
        assert!(applied.contains(id), "acknowledged event {id} not applied");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_share_partitions_survive_kill_9_and_take_them_back() {
    let Some(topic) = KafkaTopic::fresh("cluster") else {
        return eprintln!("skipped: KAFKA_BROKERS is not set");
    };
    let dirs: Vec<_> = (0..3)
        .map(|_| tempfile::tempdir().expect("tempdir"))
        .collect();
    let mut nodes = Vec::new();
    for (node, dir) in dirs.iter().enumerate() {
        nodes.push(start(dir.path(), &flags(&topic, node)).await);
    }
    for node in &nodes {
        node.wait_ready(TENANT, &customers()).await;
    }
    // Between them, the nodes serve every partition, once the group has settled (a node
    // that joined first may have had them all for a moment).
    let deadline = Instant::now() + Duration::from_secs(60);
    let shares = loop {
        let mut shares = Vec::new();
        for node in &nodes {
            shares.push(served_by(node).await);
        }
        if shares.iter().sum::<usize>() == CUSTOMERS {
            break shares;
        }
        assert!(Instant::now() < deadline, "never settled: {shares:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    let acked: Acked = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let urls: Vec<String> = nodes.iter().map(RezefServer::url).collect();
    let publishers: Vec<_> = (0..3)
        .map(|task| tokio::spawn(publish(urls.clone(), task, acked.clone(), stop.clone())))
        .collect();
    wait_for_acks(&acked, 300).await;

    // kill -9 the node that serves the most, while the publishers write through it too: its
    // partitions move to the others while it stays down.
    let victim = (0..3).max_by_key(|&i| shares[i]).expect("three nodes");
    let killed_at = Instant::now();
    nodes.remove(victim).kill9();
    for node in &nodes {
        node.wait_ready(TENANT, &customers()).await;
    }
    let failover = killed_at.elapsed();
    let before = acked.lock().expect("lock").len();
    wait_for_acks(&acked, before + 300).await;
    let mut shares: Vec<usize> = Vec::new();
    for node in &nodes {
        shares.push(served_by(node).await);
    }
    assert_eq!(
        shares.iter().sum::<usize>(),
        CUSTOMERS,
        "survivors: {shares:?}"
    );

    // Restarted on its data directory, it takes partitions back.
    let restarted = start(dirs[victim].path(), &flags(&topic, victim)).await;
    let deadline = Instant::now() + Duration::from_secs(90);
    while served_by(&restarted).await == 0 {
        assert!(
            Instant::now() < deadline,
            "the restarted node took nothing back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    nodes.insert(victim, restarted);
    let before = acked.lock().expect("lock").len();
    wait_for_acks(&acked, before + 100).await;

    // Another node stops cleanly: it hands its partitions over at once.
    let leaving = (victim + 1) % 3;
    let stopped_at = Instant::now();
    assert!(nodes.remove(leaving).terminate().success());
    for node in &nodes {
        node.wait_ready(TENANT, &customers()).await;
    }
    let handover = stopped_at.elapsed();
    let before = acked.lock().expect("lock").len();
    wait_for_acks(&acked, before + 100).await;
    stop.store(true, Ordering::Relaxed);
    for publisher in publishers {
        publisher.await.expect("publisher");
    }

    let acked = acked.lock().expect("lock").clone();
    let per_partition: BTreeMap<u32, usize> = acked.values().fold(BTreeMap::new(), |mut m, a| {
        *m.entry(a.0).or_default() += 1;
        m
    });
    eprintln!(
        "{} events acknowledged over partitions {per_partition:?}; a killed node's partitions \
         answered again after {failover:?}, a stopped node's after {handover:?}",
        acked.len()
    );
    // Through every node, including the restarted one.
    for node in &nodes {
        check_exactly_once(node, &acked).await;
    }
    // A node that does not own a customer's partition forwards, or names the owner.
    let node = &nodes[0];
    let client = node.client().await;
    let mut routed_self = 0;
    for customer in customers() {
        let request = routing_self(customer);
        if let Err(status) = client.journeys().get_journey(request).await {
            assert_eq!(status.code(), Code::Unavailable, "{status:?}");
            let owner = status.metadata().get("x-rezef-owner").expect("owner named");
            assert!(
                owner
                    .to_str()
                    .expect("ascii")
                    .starts_with("http://127.0.0.1:")
            );
            routed_self += 1;
        }
    }
    assert!(routed_self > 0, "node 0 owns every partition");
    let person = one_person_on_three_partitions(&nodes).await;
    customers_found_through_any_node(&nodes, &person).await;
    routing_runs_on_one_node_and_any_node_reaches_it(&nodes, &person, "call-1").await;
    a_caller_who_hangs_up_leaves_the_queue_whatever_the_partition(&nodes).await;

    // A caller waits, nobody logged in to take them.
    let waiting = proto::RouteInteractionRequest {
        tenant_id: TENANT.into(),
        customer: Some(proto::CustomerRef {
            r#ref: Some(proto::customer_ref::Ref::CustomerId(person.clone())),
        }),
        interaction_id: "call-waiting".into(),
        channel: proto::Channel::Voice as i32,
        ..Default::default()
    };
    let queued = (nodes[0].client().await.routing())
        .route_interaction(waiting)
        .await
        .expect("routed")
        .into_inner();
    assert_eq!(queued.outcome, proto::RouteOutcome::Queued as i32);

    // The others stop: the last node takes every partition, the tenant's routing with it
    // (kept is one that does not run it now, so that routing moves), configured as it was
    // set through the API, the caller still waiting, and agents reconnect to it.
    let keep = routing_moves_to(&nodes).await;
    let last = nodes.remove(keep);
    for node in nodes {
        assert!(node.terminate().success());
    }
    last.wait_ready(TENANT, &customers()).await;
    let client = last.client().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let stats = loop {
        let request = proto::GetQueueStatsRequest {
            tenant_id: TENANT.into(),
        };
        match client.routing().get_queue_stats(request).await {
            Ok(stats) => break stats.into_inner(),
            Err(status) if Instant::now() < deadline => {
                assert_eq!(status.code(), Code::Unavailable, "{status:?}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(status) => panic!("routing did not move: {status:?}"),
        }
    };
    assert_eq!(
        stats.config_version, 1,
        "the configuration set through the API"
    );
    let general = stats.queues.iter().find(|q| q.queue_id == "general");
    assert_eq!(general.map(|q| q.waiting), Some(1), "{stats:?}");
    let withdrawn = proto::WithdrawContactRequest {
        tenant_id: TENANT.into(),
        interaction_id: "call-waiting".into(),
    };
    (client.routing().withdraw_contact(withdrawn))
        .await
        .expect("the caller waits there");
    let alone = std::slice::from_ref(&last);
    routing_runs_on_one_node_and_any_node_reaches_it(alone, &person, "call-2").await;
    calls_between_nodes_refuse_bad_input(&last).await;
    assert!(last.terminate().success());
}
