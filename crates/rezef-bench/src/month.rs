//! A contact centre's month (issue 18: 1,000,000 events over 100 queues and 30 days), for the
//! report benchmarks. The contacts are appended to an embedded log in `dir/log` and folded
//! through the real projection into a sled store in `dir/store` (the projector, the
//! projection in memory over sled, the measurement in the same step, checkpoints letting go of
//! old buckets), so the buckets are the ones a server would have. A one-partition server
//! opened on `dir` afterwards finds its log and store there, already projected: `report`
//! reads the store in process, `report-load` serves it.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use bytes::Bytes;
use rezef_events::event::{AbandonPoint, Direction, EndReason, SCHEMA_VERSION};
use rezef_events::{
    AgentId, Channel, CustomerId, CustomerRef, Event, EventId, InteractionId, Payload, TenantId,
    Timestamp,
};
use rezef_log::{EmbeddedLog, Log};
use rezef_store::{CachedStore, JourneyStore, ProjectionConfig, Projector, SledStore};

use crate::harness::{Rng, thousands};
use crate::projection::open_log;
use crate::workload::TENANT;

#[derive(Debug, Clone, clap::Args)]
pub struct MonthArgs {
    /// Events in the month's log (about five per contact).
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1_000..=10_000_000))]
    pub events: u64,
    /// Queues the contacts are spread over.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub queues: u64,
    /// Days the contacts are spread over (reports ask for 30 of them, or all if fewer).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(i64).range(7..=90))]
    pub days: i64,
}

pub const DAY_NANOS: i64 = 86_400 * 1_000_000_000;

/// A month appended and folded.
pub struct Month {
    pub contacts: u64,
    /// Events in the log (its end offset).
    pub events: u64,
    /// How long the fold took.
    pub folded: Duration,
    pub log: Arc<EmbeddedLog>,
    pub sled: Arc<SledStore>,
    /// The projection's store over `sled`, as the fold left it (flushed).
    pub store: Arc<CachedStore>,
}

/// Appends `args.days` of contacts from `first` on to a log in `dir/log` and folds them into
/// a store in `dir/store`.
pub async fn fill(dir: &Path, args: &MonthArgs, first: Timestamp) -> Result<Month> {
    let log = open_log(&dir.join("log"))?;
    eprintln!("  loading {} events", thousands(args.events as f64));
    let contacts = load(&log, args, first).await?;

    let sled = Arc::new(SledStore::open(dir.join("store")).context("the store")?);
    let below: Arc<dyn JourneyStore> = sled.clone();
    let store = Arc::new(CachedStore::new(below, ProjectionConfig::default())?);
    eprintln!("  folding and measuring");
    let folding = Instant::now();
    let dyn_log: Arc<dyn Log> = log.clone();
    let mut projector = Projector::new(dyn_log, store.clone())?;
    let events = log.end_offset();
    projector.catch_up(events, |_| {}).await?;
    store.flush()?;
    Ok(Month {
        contacts,
        events,
        folded: folding.elapsed(),
        log,
        sled,
        store,
    })
}

/// One contact's events in `queue`: `(seconds after arrival, payload)`.
fn contact(rng: &mut Rng, queue: &str) -> Result<Vec<(i64, Payload)>> {
    let started = Payload::InteractionStarted {
        direction: Direction::Inbound,
        identity: None,
        entry_point: "main".into(),
        language: None,
        continuation_token: None,
    };
    let ivr = 5 + rng.below(55) as i64;
    let abandoned = |point| Payload::ContactAbandoned { point };
    let queued = Payload::ContactQueued {
        queue_id: queue.into(),
        priority: 1,
        required_skills: Vec::new(),
        language: None,
    };
    Ok(match rng.below(100) {
        // Gave up in the IVR.
        0..5 => vec![(0, started), (ivr, abandoned(AbandonPoint::Ivr))],
        // Gave up in the queue.
        5..20 => vec![
            (0, started),
            (ivr, queued),
            (
                ivr + 5 + rng.below(300) as i64,
                abandoned(AbandonPoint::Queue),
            ),
        ],
        // Answered, mostly fast, a tenth after a long wait; wrapped up, a tenth surveyed.
        _ => {
            let wait = if rng.below(10) == 0 {
                120 + rng.below(780)
            } else {
                1 + rng.below(119)
            };
            let answered = ivr + wait as i64;
            let ended = answered + 60 + rng.below(840) as i64;
            let wrapped = ended + 30 + rng.below(90) as i64;
            let mut steps = vec![
                (0, started),
                (ivr, queued),
                (
                    answered,
                    Payload::ContactAssigned {
                        agent_id: AgentId::new(format!("agent-{}", rng.below(400)))
                            .map_err(anyhow::Error::msg)?,
                        queue_id: String::new(),
                    },
                ),
                (
                    ended,
                    Payload::InteractionEnded {
                        reason: Some(EndReason::Completed),
                    },
                ),
                (
                    wrapped,
                    Payload::WrapUpRecorded {
                        agent_id: None,
                        disposition: "done".into(),
                        need_resolved: rng.below(5) != 0,
                        notes: String::new(),
                    },
                ),
            ];
            if rng.below(10) == 0 {
                let survey = Payload::SurveyAnswered {
                    csat: Some(1 + rng.below(5) as u32),
                    nps: Some(rng.below(11) as u32),
                    effort: Some(1 + rng.below(7) as u32),
                    comment: String::new(),
                };
                steps.push((wrapped + 60, survey));
            }
            steps
        }
    })
}

/// Appends a month of contacts from `first` on, `args.events` events, each contact's events
/// together, the contacts in order of arrival. Returns the contacts.
async fn load(
    log: &Arc<rezef_log::EmbeddedLog>,
    args: &MonthArgs,
    first: Timestamp,
) -> Result<u64> {
    let tenant = TenantId::new(TENANT).map_err(|e| anyhow!("tenant: {e}"))?;
    let contacts = args.events / 5;
    let customers = (contacts / 4).max(1);
    let spacing = args.days * DAY_NANOS / contacts.max(1) as i64;
    let (mut rng, mut batch, mut appended) = (Rng::new(18), Vec::new(), 0u64);
    let mut n = 0u64;
    while appended + (batch.len() as u64) < args.events {
        let arrival = first.unix_nanos() + n as i64 * spacing;
        let queue = format!("queue-{:03}", rng.below(args.queues));
        let channel = if rng.below(5) == 0 {
            Channel::Webchat
        } else {
            Channel::Voice
        };
        let customer = CustomerId::new(format!("cust-{:07}", rng.below(customers)))
            .map_err(anyhow::Error::msg)?;
        for (i, (secs, payload)) in contact(&mut rng, &queue)?.into_iter().enumerate() {
            let event = Event {
                event_id: EventId::new(format!("month-{n}-{i}")).map_err(anyhow::Error::msg)?,
                tenant_id: tenant.clone(),
                occurred_at: Timestamp::from_unix_nanos(arrival + secs * 1_000_000_000),
                source: "bench".into(),
                schema_version: SCHEMA_VERSION,
                customer: Some(CustomerRef::Id(customer.clone())),
                conversation_id: None,
                interaction_id: Some(
                    InteractionId::new(format!("month-{n}")).map_err(anyhow::Error::msg)?,
                ),
                channel: Some(channel),
                forward: None,
                erased: false,
                payload,
            };
            batch.push(Bytes::from(rezef_record::encode(&event)));
        }
        n += 1;
        if batch.len() >= 1000 {
            appended += log.append(std::mem::take(&mut batch)).await?.count as u64;
        }
    }
    if !batch.is_empty() {
        log.append(batch).await?;
    }
    Ok(n)
}
