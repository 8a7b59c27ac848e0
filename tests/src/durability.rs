//! What a crash must not break, checked from outside: publishers that record every event
//! the server acknowledged (id → offset), and a verdict read back over gRPC after a restart.
//!
//! Shared by the `kill -9` scenario (`tests/crash.rs`) and the kill soak (`rezef-soak kill`),
//! so that the one-off test and the thousand-crash run check the same promise the same way:
//! every acknowledged event is in the log once, at the offset it was acknowledged with
//! (`ReplayHistory`), and every journey counts each of its logged events once (`GetJourney`).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use futures::StreamExt;
use rezef_adapter::{Client, EventFactory, proto};

/// The tenant the publishers write to.
pub const TENANT: &str = "acme";
/// How many customers the publishers spread their events over.
pub const CUSTOMERS: usize = 20;
/// Events in one `Publish`.
const BATCH: usize = 10;

/// Customer `customer`'s web chat.
pub fn factory(customer: usize) -> EventFactory {
    EventFactory::new(TENANT, "crash-test")
        .customer(format!("c-{customer}"))
        .on(proto::Channel::Webchat, format!("chat-{customer}"))
}

/// Acknowledged events: event id → (offset, customer).
pub type Acked = Arc<Mutex<HashMap<String, (u64, usize)>>>;

/// How many events `acked` holds (a publisher that panicked cannot hide its acknowledgements).
pub fn acked_len(acked: &Acked) -> usize {
    acked.lock().unwrap_or_else(PoisonError::into_inner).len()
}

/// Publishes batches from `tasks` concurrent publishers, each on a connection of its own,
/// until the server stops answering; records what was acknowledged in `acked`. A batch
/// whose answer never came is not recorded: it may or may not be in the log.
pub async fn publish_until_killed(url: String, tasks: usize, acked: Acked) {
    let mut handles = Vec::new();
    for task in 0..tasks {
        let (url, acked) = (url.clone(), acked.clone());
        handles.push(tokio::spawn(async move {
            let Ok(mut client) = Client::connect(url).await else {
                return;
            };
            for round in 0.. {
                let batch: Vec<_> = (0..BATCH)
                    .map(|i| {
                        let customer = (task * 7 + round * 3 + i) % CUSTOMERS;
                        (
                            customer,
                            factory(customer).message(proto::Participant::Customer, "hi"),
                        )
                    })
                    .collect();
                let events: Vec<_> = batch.iter().map(|(_, e)| e.clone()).collect();
                let Ok(ack) = client.publish(events).await else {
                    return;
                };
                let mut acked = acked.lock().unwrap_or_else(PoisonError::into_inner);
                for (i, (customer, event)) in batch.into_iter().enumerate() {
                    acked.insert(event.event_id, (ack.first_offset + i as u64, customer));
                }
            }
        }));
    }
    for handle in handles {
        let _ = handle.await;
    }
}

/// What the server holds against what it acknowledged.
#[derive(Debug, Default, Clone)]
pub struct Verdict {
    /// Events acknowledged to the publishers.
    pub acknowledged: usize,
    /// Events in the log (acknowledged, and published but never answered before a kill).
    pub logged: usize,
    /// Acknowledged events missing from the log.
    pub lost: Vec<String>,
    /// Acknowledged events in the log at another offset than acknowledged.
    pub misplaced: Vec<String>,
    /// Events in the log more than once.
    pub duplicated: Vec<String>,
    /// Customers whose journey counts other than their logged events: (customer, counted
    /// events, counted messages, logged).
    pub miscounted: Vec<(String, u64, u64, u64)>,
}

impl Verdict {
    /// Nothing lost, moved, doubled or miscounted.
    pub fn is_clean(&self) -> bool {
        self.lost.is_empty()
            && self.misplaced.is_empty()
            && self.duplicated.is_empty()
            && self.miscounted.is_empty()
    }
}

/// Replays the tenant's log and reads every journey in it through `client`, and compares
/// them with `acked`.
pub async fn verify(
    client: &mut Client,
    acked: &HashMap<String, (u64, usize)>,
) -> Result<Verdict, rezef_adapter::Error> {
    let replay = client
        .replay(proto::ReplayHistoryRequest {
            tenant_id: TENANT.into(),
            ..Default::default()
        })
        .await?;
    let mut replay = std::pin::pin!(replay);
    let mut verdict = Verdict {
        acknowledged: acked.len(),
        ..Verdict::default()
    };
    let mut by_id: HashMap<String, u64> = HashMap::new();
    let mut per_customer: BTreeMap<String, u64> = BTreeMap::new();
    let mut last = None;
    while let Some(replayed) = replay.next().await {
        let replayed = replayed?;
        let Some(event) = replayed.event else {
            continue;
        };
        verdict.logged += 1;
        last = last.max(Some(replayed.offset));
        if by_id
            .insert(event.event_id.clone(), replayed.offset)
            .is_some()
        {
            verdict.duplicated.push(event.event_id);
        }
        // The publishers' messages, by customer id (a scenario's other events are not theirs).
        let message = matches!(event.payload, Some(proto::event::Payload::MessageSent(_)));
        if let Some(proto::customer_ref::Ref::CustomerId(id)) = event.customer.and_then(|c| c.r#ref)
            && message
        {
            *per_customer.entry(id).or_default() += 1;
        }
    }
    for (id, (offset, _)) in acked {
        match by_id.get(id) {
            None => verdict.lost.push(id.clone()),
            Some(logged) if logged != offset => verdict.misplaced.push(id.clone()),
            Some(_) => {}
        }
    }
    for (customer, logged) in per_customer {
        let journey = client
            .journey(
                TENANT,
                proto::CustomerRef {
                    r#ref: Some(proto::customer_ref::Ref::CustomerId(customer.clone())),
                },
                last,
            )
            .await?;
        let counters = journey.journey.and_then(|j| j.counters).unwrap_or_default();
        let messages = u64::from(counters.messages);
        if counters.events != logged || messages != logged {
            let counted = (customer, counters.events, messages, logged);
            verdict.miscounted.push(counted);
        }
    }
    Ok(verdict)
}
