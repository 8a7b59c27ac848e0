//! An embedded log of several partitions (`log.partitions`): customers are spread over them
//! as over a Kafka topic's, each partition folds on its own, and one node serves them all:
//! what crosses partitions (a merge) is handed over between them as between nodes, and
//! `rezef.cluster.v1.Partitions/ReadFigures` reads their figures as another node would.

mod common;

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rezef_adapter::EventFactory;
use rezef_adapter::proto::{self, event::Payload};
use rezef_events::partition::Partitioner;
use rezef_events::{ChannelIdentity, CustomerRef, TenantId, Timestamp};
use rezef_measure::{BucketKey, Figures, Grouping, Interval};
use rezef_proto::cluster::v1::ReadFiguresRequest;
use rezef_proto::cluster::v1::partitions_client::PartitionsClient;
use rezef_server::{Server, ServerConfig, SystemClock};
use tonic::Code;

use common::{Running, chat, fields};

const TENANT: &str = "acme";

fn two_partitions() -> ServerConfig {
    let mut config = ServerConfig::default();
    config.log.partitions = 2;
    config
}

fn by_id(customer: &str) -> proto::CustomerRef {
    proto::CustomerRef {
        r#ref: Some(proto::customer_ref::Ref::CustomerId(customer.to_owned())),
    }
}

/// The journey `customer` leads to, once `done` says it is as expected (within 10 s).
async fn journey_once(
    client: &mut rezef_adapter::Client,
    customer: &str,
    done: impl Fn(&proto::Journey) -> bool,
) -> proto::Journey {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let journey = (client.journey(TENANT, by_id(customer), None).await)
            .expect("GetJourney")
            .journey
            .expect("a journey");
        if done(&journey) {
            return journey;
        }
        assert!(Instant::now() < deadline, "still {journey:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Merges `absorbed` into `survivor` (one chat each); the journey `absorbed` then leads to:
/// the survivor's, holding both chats.
async fn merge(
    client: &mut rezef_adapter::Client,
    survivor: &str,
    absorbed: &str,
) -> proto::Journey {
    let merge = proto::MergeCustomersRequest {
        tenant_id: TENANT.into(),
        survivor_customer_id: survivor.to_owned(),
        absorbed_customer_id: absorbed.to_owned(),
        reason: "same person".into(),
        requested_by: "agent-1".into(),
    };
    (client.identities().merge_customers(merge).await).expect("merged");
    let merged = |j: &proto::Journey| j.customer_id == survivor && j.conversations.len() == 2;
    journey_once(client, absorbed, merged).await
}

#[tokio::test]
async fn customers_spread_over_two_partitions_and_a_merge_crosses_them() {
    // Given a node whose embedded log has two partitions
    let server = Running::start_with(two_partitions()).await;
    let mut client = server.client().await;

    // When sixteen customers chat
    let mut customers = Vec::new();
    for n in 0..16 {
        let chat = chat(TENANT, &format!("v-{n}"));
        let events = vec![
            chat.interaction_started(proto::Direction::Inbound),
            chat.message(proto::Participant::Customer, "hello"),
        ];
        let ack = client.publish(events).await.expect("publish");
        let partition = ack.positions[0].partition;
        // Then each customer's events are in one partition, and read back from it
        assert!(ack.positions.iter().all(|p| p.partition == partition));
        let last = ack.positions[1].offset;
        let journey = (client
            .journey(TENANT, chat.customer_ref(), Some(last))
            .await)
            .expect("GetJourney")
            .journey
            .expect("a journey");
        assert_eq!(journey.conversations.len(), 1);
        customers.push((partition, journey.customer_id));
    }
    let on = |partition: u32| {
        let found = customers.iter().find(|(p, _)| *p == partition);
        found
            .map(|(_, c)| c.clone())
            .expect("customers on both partitions")
    };
    let (survivor, absorbed) = (on(0), on(1));

    // When a customer of each partition turn out to be one, then the absorbed customer
    // leads to the survivor's journey, holding both chats
    merge(&mut client, &survivor, &absorbed).await;

    // And a node started again over the data with another count is refused, saying the count
    let dir = server.stop_keeping().await;
    for part in ["log/p0", "log/p1", "store/p0", "store/p1"] {
        assert!(dir.path().join(part).is_dir(), "{part} is missing");
    }
    let one = ServerConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        data_dir: dir.path().to_path_buf(),
        ..ServerConfig::default()
    };
    let refused = Server::open(one)
        .await
        .expect_err("one partition is refused");
    assert!(
        refused.to_string().contains("set log.partitions = 2"),
        "{refused}"
    );

    // While with the same count everything is there
    let server = Running::start_in(two_partitions(), Arc::new(SystemClock), dir).await;
    let mut client = server.client().await;
    let merged = |j: &proto::Journey| j.customer_id == survivor && j.conversations.len() == 2;
    journey_once(&mut client, &absorbed, merged).await;
    for (_, customer) in &customers {
        journey_once(&mut client, customer, |j| !j.conversations.is_empty()).await;
    }
    server.stop().await;
}

/// Whether any file under `dir` holds `needle`.
fn files_hold(dir: &std::path::Path, needle: &[u8]) -> bool {
    let entries = std::fs::read_dir(dir).expect("readable");
    entries.flatten().any(|entry| {
        let path = entry.path();
        if path.is_dir() {
            return files_hold(&path, needle);
        }
        let bytes = std::fs::read(&path).unwrap_or_default();
        bytes.windows(needle.len()).any(|w| w == needle)
    })
}

#[tokio::test]
async fn a_journey_moved_by_a_merge_is_in_the_log_sealed_and_forgetting_erases_it() {
    // Given a customer on each partition, each having said something of their own
    let server = Running::start_with(two_partitions()).await;
    let mut client = server.client().await;
    let mut on: [Option<(String, String)>; 2] = [None, None];
    for n in 0.. {
        if on.iter().all(Option::is_some) {
            break;
        }
        let chat = chat(TENANT, &format!("v-moved-{n}"));
        let said = format!("my account is ZX-{n:04}-private");
        let events = vec![
            chat.interaction_started(proto::Direction::Inbound),
            chat.message(proto::Participant::Customer, &said),
        ];
        let ack = client.publish(events).await.expect("publish");
        let at = ack.positions[1];
        let journey = (client
            .journey(TENANT, chat.customer_ref(), Some(at.offset))
            .await)
            .expect("GetJourney")
            .journey
            .expect("a journey");
        let slot = &mut on[usize::try_from(at.partition).expect("small")];
        if slot.is_none() {
            *slot = Some((journey.customer_id, said));
        }
    }
    let [Some((survivor, _)), Some((absorbed, secret))] = on else {
        unreachable!("both found")
    };

    // And the absorbed customer proves a phone whose home is the other partition (a claim
    // handed over there)
    let partitioner = Partitioner::new(NonZeroU32::new(2).expect("two"));
    let tenant = TenantId::new(TENANT).expect("valid");
    let phone = (0..)
        .map(|n| format!("+97250111{n:04}"))
        .find(|phone| {
            let identity = ChannelIdentity::phone(phone).expect("valid");
            partitioner.reference(&tenant, &CustomerRef::Identity(identity)) == 0
        })
        .expect("a phone at home on partition 0");
    let prover = EventFactory::new(TENANT, "ivr")
        .customer(absorbed.clone())
        .on(proto::Channel::Voice, "call-claim");
    let proved = prover.identified(
        proto::VerificationMethod::OneTimeCode,
        proto::AssuranceLevel::Substantial,
        vec![proto::ChannelIdentity {
            kind: proto::IdentityKind::Phone as i32,
            value: phone.clone(),
            network: String::new(),
        }],
    );
    (client.publish(vec![proved]).await).expect("published");
    let holds_phone = |j: &proto::Journey| {
        (j.identities.iter()).any(|i| i.identity.as_ref().is_some_and(|i| i.value == phone))
    };
    journey_once(&mut client, &absorbed, holds_phone).await;

    // When they are merged across the partitions (the absorbed journey moves in a handover)
    let journey = merge(&mut client, &survivor, &absorbed).await;
    let shown = (journey.conversations.iter()).flat_map(|c| &c.transcript);
    assert!(shown.into_iter().any(|t| t.text == secret), "moved whole");

    // Then no log file holds what the absorbed customer said, the moved journey included,
    // nor the phone, the claim included
    let dir = server.stop_keeping().await;
    assert!(!files_hold(&dir.path().join("log"), secret.as_bytes()));
    let digits = phone.trim_start_matches('+');
    assert!(!files_hold(&dir.path().join("log"), digits.as_bytes()));

    // And once the person is forgotten, a rebuild (the stores gone) folds the moved journey
    // erased
    let server = Running::start_in(two_partitions(), Arc::new(SystemClock), dir).await;
    let client = server.client().await;
    let forget = proto::ForgetCustomerRequest {
        tenant_id: TENANT.into(),
        customer_id: survivor.clone(),
        reason: "erasure request".into(),
    };
    (client.identities().forget_customer(forget).await).expect("forgotten");
    let dir = server.stop_keeping().await;
    for store in ["store/p0", "store/p1"] {
        std::fs::remove_dir_all(dir.path().join(store)).expect("store removed");
    }
    let server = Running::start_in(two_partitions(), Arc::new(SystemClock), dir).await;
    let client = server.client().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let rebuilt = loop {
        // Not found until the rebuild reaches the survivor.
        let read = client.clone().journey(TENANT, by_id(&survivor), None).await;
        if let Some(journey) = read.ok().and_then(|r| r.journey)
            && journey
                .counters
                .as_ref()
                .is_some_and(|c| c.conversations == 2)
        {
            break journey;
        }
        assert!(Instant::now() < deadline, "not rebuilt in time");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(rebuilt.conversations.len(), 2);
    for conversation in &rebuilt.conversations {
        assert!(!conversation.transcript.is_empty());
        assert!(conversation.transcript.iter().all(|t| t.text.is_empty()));
    }
    server.stop().await;
}

/// A `ReadFigures` query as the proto documents it: postcard of the range of bucket starts
/// and the grouping, here yesterday to tomorrow (UTC) by quarter hour.
fn days_by_quarter() -> Vec<u8> {
    const DAY_MS: i64 = 86_400_000;
    let midnight = Timestamp::now().unix_millis() / DAY_MS * DAY_MS;
    let day = |days: i64| Timestamp::from_unix_millis(midnight + days * DAY_MS);
    let range = day(-1)..day(2);
    let grouping = Grouping {
        interval: Some(Interval::Quarter),
        queue: false,
        channel: false,
        intent: false,
    };
    postcard::to_stdvec(&(range, grouping)).expect("encodes")
}

fn read_figures(partitions: Vec<u32>) -> ReadFiguresRequest {
    ReadFiguresRequest {
        tenant_id: TENANT.into(),
        partitions,
        format: rezef_store::MEASURE_FORMAT,
        query: days_by_quarter(),
    }
}

#[tokio::test]
async fn read_figures_answers_the_partitions_named_each_once_and_refuses_others() {
    // Given a node whose embedded log has two partitions, and a chat that ended
    let server = Running::start_with(two_partitions()).await;
    let mut client = server.client().await;
    let chat = chat(TENANT, "figures");
    let ended = Payload::InteractionEnded(proto::InteractionEnded {
        reason: proto::EndReason::Completed as i32,
    });
    let events = vec![
        chat.interaction_started(proto::Direction::Inbound),
        chat.event(ended),
    ];
    client.publish(events).await.expect("publish");
    let mut partitions = PartitionsClient::connect(format!("http://{}", server.addr))
        .await
        .expect("connect");

    // When a peer asks for no partition, one beyond the log's, or one twice
    for (asked, field, says) in [
        (vec![], "partitions", "at least one"),
        (vec![0, 2], "partitions[1]", "below 2"),
        (vec![1, 0, 1], "partitions[2]", "twice"),
    ] {
        let status =
            (partitions.read_figures(read_figures(asked.clone())).await).expect_err("refused");
        // Then it is refused, naming the field
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "{asked:?}: {status:?}"
        );
        assert_eq!(fields(&status), [field], "{asked:?}: {status:?}");
        assert!(status.message().contains(says), "{asked:?}: {status:?}");
    }

    // When it names both partitions, each once, the figures hold the chat, in the format asked
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = (partitions.read_figures(read_figures(vec![1, 0])).await)
            .expect("figures")
            .into_inner();
        assert_eq!(answer.format, rezef_store::MEASURE_FORMAT);
        let rows: Vec<(BucketKey, Figures)> =
            postcard::from_bytes(&answer.figures).expect("figures in the store's encoding");
        let contacts: u64 = rows.iter().map(|(_, f)| f.contacts).sum();
        if contacts == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "not counted: {rows:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.stop().await;
}
