//! A journey store filled directly, for read benchmarks that need far more customers than
//! Publish and the projector could load in the time (about 10,000 events/s: a million
//! customers of 15 events each would take over four hours).
//!
//! Each customer's events are made by the workload, validated and converted exactly as the
//! Ingest service does (`event_from_proto`), folded in memory by the projector's own
//! `Journey::apply` under the default continuity policy, and committed with
//! `JourneyStore::commit` in batches, from two threads. What reads use is written as the
//! projector writes it: the journeys, the identity index and the conversation index. The
//! per-event dedup index and the audit index are not (no read path touches them), and the log
//! stays empty: the store's projected offset is 0.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use rezef_adapter::proto;
use rezef_events::{CustomerId, Journey, TenantId};
use rezef_store::{JourneyStore, ProjectionBatch, SledStore};

use crate::workload::{TENANT, Workload, customer_id};

/// Journeys per commit.
const FILL_BATCH: usize = 1000;
/// Threads folding and committing (the machine's cores).
const FILL_THREADS: u64 = 2;

/// What was written.
#[derive(Debug, Clone, Copy)]
pub struct Filled {
    pub customers: u64,
    pub events: u64,
    /// Sum of the journeys' stored sizes.
    pub journey_bytes: u64,
    pub elapsed: Duration,
}

/// Writes the journeys of customers `0..customers` into `store`, each folded from the events
/// `script` makes for it (on a workload of its own thread's customer range).
pub fn fill(
    store: &SledStore,
    customers: u64,
    seed: u64,
    script: impl Fn(&mut Workload, u64) -> Vec<proto::Event> + Sync,
) -> Result<Filled> {
    let tenant = TenantId::new(TENANT).map_err(|e| anyhow!("tenant: {e}"))?;
    let started = Instant::now();
    let done = AtomicU64::new(0);
    let per_thread = customers.div_ceil(FILL_THREADS);
    let totals = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..FILL_THREADS)
            .map(|t| {
                let first = (t * per_thread).min(customers);
                let count = per_thread.min(customers - first);
                let (tenant, script, done) = (&tenant, &script, &done);
                scope.spawn(move || {
                    let mut workload = Workload::range(first, count.max(1), seed + t);
                    let mut filled = (0u64, 0u64);
                    let mut batch = ProjectionBatch::default();
                    for n in first..first + count {
                        let (events, bytes) =
                            fold(tenant, n, script(&mut workload, n), &mut batch)?;
                        filled = (filled.0 + events, filled.1 + bytes);
                        if batch.journeys.len() == FILL_BATCH {
                            let full = std::mem::take(&mut batch);
                            store.commit(full).context("committing journeys")?;
                            let so_far = done.fetch_add(FILL_BATCH as u64, Ordering::Relaxed)
                                + FILL_BATCH as u64;
                            if so_far % (customers / 10).max(FILL_BATCH as u64) < FILL_BATCH as u64
                            {
                                eprintln!(
                                    "  filled {so_far} of {customers} journeys ({:.0} s)",
                                    started.elapsed().as_secs_f64()
                                );
                            }
                        }
                    }
                    if !batch.journeys.is_empty() {
                        store.commit(batch).context("committing journeys")?;
                    }
                    anyhow::Ok(filled)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| anyhow!("a fill thread panicked"))?)
            .collect::<Result<Vec<_>>>()
    })?;
    Ok(Filled {
        customers,
        events: totals.iter().map(|t| t.0).sum(),
        journey_bytes: totals.iter().map(|t| t.1).sum(),
        elapsed: started.elapsed(),
    })
}

/// Folds one customer's events into a new journey and adds it, with the identities linked
/// and the conversations opened, to `batch`. Returns the events folded and the journey's
/// stored size.
fn fold(
    tenant: &TenantId,
    n: u64,
    events: Vec<proto::Event>,
    batch: &mut ProjectionBatch,
) -> Result<(u64, u64)> {
    let customer = CustomerId::new(customer_id(n)).map_err(|e| anyhow!("customer id: {e}"))?;
    let count = events.len() as u64;
    let mut journey: Option<Journey> = None;
    for (i, event) in (0u64..).zip(events) {
        let event = rezef_server::convert::event_from_proto(event)
            .map_err(|violations| anyhow!("the workload made an invalid event: {violations:?}"))?;
        let journey = journey.get_or_insert_with(|| {
            Journey::new(tenant.clone(), customer.clone(), event.occurred_at)
        });
        // Offsets as a log would have given them, had the customers come one after another.
        let applied = journey.apply(n * count + i, &event);
        for identity in applied.linked {
            batch
                .identities
                .push((tenant.clone(), identity, customer.clone()));
        }
        for conversation in applied.opened {
            batch
                .conversations
                .push((tenant.clone(), conversation, customer.clone()));
        }
    }
    let journey = journey.ok_or_else(|| anyhow!("customer {n} has no events"))?;
    let bytes = journey.to_bytes().len() as u64;
    batch.journeys.push(std::sync::Arc::new(journey));
    Ok((count, bytes))
}
