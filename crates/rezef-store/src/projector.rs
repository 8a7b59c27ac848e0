//! The projector: reads the log in order and folds each event into journey state.
//!
//! It folds into the projection in memory, a [`CachedStore`], in place (`crate::workspace`);
//! each step then commits its indexes with the offset it reached, and a checkpoint, cut
//! between steps, writes many steps to sled at once, on the other core while folding goes
//! on. After a crash the store holds a whole checkpoint or none of it, and the projector
//! resumes from its offset: no event is applied twice, none is skipped. An event id
//! applied within the recent-ids window is not applied again (it counts as a duplicate;
//! `crate::dedup`).
//!
//! On a partitioned log the projector folds one partition. An event whose journey lives on
//! another partition (its customer was merged there, its identity is linked there) is
//! forwarded, and what another partition must decide (an identity's owner, a merge) is sent
//! there as a [`Handover`]; both go through the [`Partitioning`]'s relay before the step
//! that produced them commits (docs/scale-out.md §2).
//!
//! A checkpoint that fails (the store's disk is full) does not stop the live projector:
//! what it held goes back in front ([`CachedStore::write_sealed`]), the projector says it is
//! [`ProjectorHealth::Stalled`] and tries again with back-off, asking the store to recover
//! first ([`JourneyStore::recover`]: sled is reopened once it can be written again). Folding
//! goes on in memory meanwhile, until the projection reaches its memory bound; then it
//! pauses until a checkpoint succeeds. Any other failure stops it
//! ([`ProjectorHealth::Stopped`]).
//!
//! The watch also says when the newest projected record was recorded
//! ([`ProjectionWatch::newest_recorded`]): with the log's end, how far behind the projection
//! is in time as well as in offsets (the server's metrics).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rezef_events::policy::Policies;
use rezef_events::{CustomerId, Event, TenantId, Timestamp};
use rezef_log::Log;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tracing::{Instrument, debug, error, info, info_span, warn};

use crate::blocking;
use crate::cached::CachedStore;
use crate::dedup::DedupWindow;
use crate::partitioning::Partitioning;
use crate::read_ahead::{Decoded, ReadAhead};
use crate::step::Step;
use crate::store::{Checkpoint, JourneyStore};
use crate::{Error, Result};
use rezef_record::sealed::Sealing;

/// How long the live projector waits for new records before it looks whether a checkpoint
/// is due.
const IDLE_CHECK: Duration = Duration::from_millis(250);

/// After a failed checkpoint, the next try comes this soon...
const FIRST_RETRY: Duration = Duration::from_millis(200);
/// ...and the pause between tries doubles up to this.
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(2);

/// Whether the projector keeps the projection going, for a server's health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectorHealth {
    /// Folding the log, its checkpoints written.
    Running,
    /// Checkpoints fail (`reason`, for operators): retried with back-off; folding goes on in
    /// memory up to the projection's bound, then waits.
    Stalled { reason: String },
    /// Stopped by a failure it cannot retry (`reason`, for operators), or shut down.
    Stopped { reason: String },
}

impl ProjectorHealth {
    /// Whether the projector is folding with its checkpoints written.
    pub fn is_running(&self) -> bool {
        matches!(self, ProjectorHealth::Running)
    }
}

/// A failed checkpoint's back-off.
#[derive(Debug, Clone, Copy)]
struct Retry {
    at: Instant,
    pause: Duration,
}

/// A journey changed; `offset` is the projected offset once it was committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JourneyChanged {
    pub tenant: TenantId,
    pub customer: CustomerId,
    pub offset: u64,
}

/// What readers of the projection use: its position and its change feed.
#[derive(Debug, Clone)]
pub struct ProjectionWatch {
    position: watch::Receiver<u64>,
    changes: broadcast::Sender<JourneyChanged>,
    health: watch::Receiver<ProjectorHealth>,
    newest_recorded: Arc<AtomicI64>,
}

impl ProjectionWatch {
    /// When the log recorded the newest record projected; before the projector has
    /// projected any, when it started.
    pub fn newest_recorded(&self) -> Timestamp {
        Timestamp::from_unix_millis(self.newest_recorded.load(Ordering::Relaxed))
    }

    /// The projected offset: every log record below it has been applied.
    pub fn position(&self) -> u64 {
        *self.position.borrow()
    }

    /// Waits until the record at `offset` has been applied (position > offset). Returns
    /// `false` if the projector stopped first.
    pub async fn wait_past(&self, offset: u64) -> bool {
        let mut position = self.position.clone();
        position.wait_for(|p| *p > offset).await.is_ok()
    }

    /// Every journey change from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<JourneyChanged> {
        self.changes.subscribe()
    }

    /// Whether the projector is running, stalled or stopped, as it changes.
    pub fn health(&self) -> watch::Receiver<ProjectorHealth> {
        self.health.clone()
    }
}

/// Counts of one run of the projector.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ProjectionStats {
    pub records: u64,
    pub applied: u64,
    pub duplicates: u64,
    /// Records that are not events this build can read; logged and passed over.
    pub undecodable: u64,
    /// Events moved on to the partition of their journey (counted in `applied` too).
    pub forwarded: u64,
}

/// Folds the log into the store.
#[derive(Debug)]
pub struct Projector {
    log: Arc<dyn Log>,
    store: Arc<CachedStore>,
    policies: Arc<Policies>,
    partitioning: Option<Partitioning>,
    sealing: Sealing,
    window: Arc<Mutex<DedupWindow>>,
    position: watch::Sender<u64>,
    changes: broadcast::Sender<JourneyChanged>,
    /// The checkpoint being written, at most one.
    checkpoint: Option<JoinHandle<Result<()>>>,
    /// Set while checkpoints fail.
    retry: Option<Retry>,
    health: watch::Sender<ProjectorHealth>,
    /// Unix ms of the newest record projected ([`ProjectionWatch::newest_recorded`]).
    newest_recorded: Arc<AtomicI64>,
}

/// Whether the projector follows the log live or catches up to a given offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pace {
    Live,
    CatchingUp,
}

/// How many of the latest event ids a projector remembers unless told otherwise.
pub const DEFAULT_DEDUP_WINDOW: usize = 1_000_000;

impl Projector {
    /// A projector under the default continuity policy. Refuses a store that has projected
    /// past the log's end (a restored backup, a lost segment): it would silently pass over
    /// the new events at those offsets.
    pub fn new(log: Arc<dyn Log>, store: Arc<CachedStore>) -> Result<Self> {
        Self::with_window(log, store, DEFAULT_DEDUP_WINDOW)
    }

    /// A projector remembering `dedup_window` of the latest event ids.
    pub fn with_window(
        log: Arc<dyn Log>,
        store: Arc<CachedStore>,
        dedup_window: usize,
    ) -> Result<Self> {
        let stored = store.projected_offset()?;
        let end = log.end_offset();
        if stored > end {
            return Err(Error::AheadOfLog { stored, end });
        }
        let window = DedupWindow::new(dedup_window, store.applied_ids()?);
        let (position, _) = watch::channel(stored);
        let (changes, _) = broadcast::channel(4096);
        Ok(Self {
            log,
            store,
            policies: Arc::default(),
            partitioning: None,
            sealing: Sealing::default(),
            window: Arc::new(Mutex::new(window)),
            position,
            changes,
            checkpoint: None,
            retry: None,
            health: watch::Sender::new(ProjectorHealth::Running),
            newest_recorded: Arc::new(AtomicI64::new(Timestamp::now().unix_millis())),
        })
    }

    /// Folds under these tenants' continuity rules.
    pub fn with_policies(mut self, policies: Arc<Policies>) -> Self {
        self.policies = policies;
        self
    }

    /// Folds one partition of a partitioned log (the default: the whole log is one).
    pub fn with_partitioning(mut self, partitioning: Option<Partitioning>) -> Self {
        self.partitioning = partitioning;
        self
    }

    /// Opens sealed records with these keys (the default: reads them as skeletons).
    pub fn with_sealing(mut self, sealing: Sealing) -> Self {
        self.sealing = sealing;
        self
    }

    fn step(&self) -> Step {
        Step::new(
            self.policies.clone(),
            self.partitioning.clone(),
            self.window.clone(),
        )
    }

    pub fn watch(&self) -> ProjectionWatch {
        ProjectionWatch {
            position: self.position.subscribe(),
            changes: self.changes.clone(),
            health: self.health.subscribe(),
            newest_recorded: self.newest_recorded.clone(),
        }
    }

    /// Projects until `until` (exclusive) is reached, calling `progress` with the offset
    /// folded so far, and waits for the last checkpoint it started.
    pub async fn catch_up(
        &mut self,
        until: u64,
        mut progress: impl FnMut(u64),
    ) -> Result<ProjectionStats> {
        let mut stats = ProjectionStats::default();
        let from = *self.position.borrow();
        let mut ahead = ReadAhead::start(self.log.clone(), self.sealing.clone(), from, Some(until));
        while let Some(batch) = ahead.next().await {
            let step = fold(&self.store, self.step(), batch?).await?;
            self.commit(step, &mut stats, Pace::CatchingUp).await?;
            progress(*self.position.borrow());
        }
        self.checkpoint_written().await?;
        Ok(stats)
    }

    /// Follows the log forever (until the log closes or `shutdown` resolves), then writes
    /// a last checkpoint.
    pub async fn run(mut self, shutdown: impl std::future::Future<Output = ()>) -> Result<()> {
        let span = info_span!("projector");
        let mut stats = ProjectionStats::default();
        let from = *self.position.borrow();
        let mut ahead = ReadAhead::start(self.log.clone(), self.sealing.clone(), from, None);
        let follow = async {
            loop {
                match tokio::time::timeout(IDLE_CHECK, ahead.next()).await {
                    Ok(Some(batch)) => {
                        let step = fold(&self.store, self.step(), batch?).await?;
                        self.commit(step, &mut stats, Pace::Live).await?;
                    }
                    // The log is closed.
                    Ok(None) => return Ok(()),
                    Err(_idle) => self.maybe_checkpoint(Pace::Live).await?,
                }
            }
        };
        let result = tokio::select! {
            result = follow.instrument(span.clone()) => result,
            () = shutdown => Ok(()),
        };
        let last = self.checkpoint_written().await;
        // A failed step may have folded part of its records: only a clean stop checkpoints.
        if result.is_ok() {
            let store = self.store.clone();
            blocking::run(move || store.flush()).await?;
        }
        span.in_scope(|| debug!(?stats, "projector stopped"));
        let result = result.and(last);
        let reason = match &result {
            Ok(()) => "shut down".to_owned(),
            Err(error) => error.to_string(),
        };
        self.health
            .send_replace(ProjectorHealth::Stopped { reason });
        result
    }

    /// Relays what the step sends to other partitions, commits it to the store, announces
    /// the new position and the changes, and starts a checkpoint if one is due.
    async fn commit(
        &mut self,
        (mut step, newest): Folded,
        stats: &mut ProjectionStats,
        pace: Pace,
    ) -> Result<()> {
        let outbox = step.take_outbox();
        if let Some(partitioning) = &self.partitioning
            && !outbox.is_empty()
        {
            relay(partitioning, outbox).await;
        }
        let step_stats = step.stats();
        let store = self.store.clone();
        let (offset, changed) = blocking::run(move || -> Result<_> {
            let (batch, changed) = step.finish();
            let offset = batch.next_offset;
            store.commit(batch)?;
            Ok((offset, changed))
        })
        .await?;
        stats.records += step_stats.records;
        stats.applied += step_stats.applied;
        stats.duplicates += step_stats.duplicates;
        stats.undecodable += step_stats.undecodable;
        stats.forwarded += step_stats.forwarded;
        if let Some(newest) = newest {
            (self.newest_recorded).store(newest.unix_millis(), Ordering::Relaxed);
        }
        self.position.send_replace(offset);
        for (tenant, customer) in changed {
            // Nobody listening is fine.
            let _ = self.changes.send(JourneyChanged {
                tenant,
                customer,
                offset,
            });
        }
        self.maybe_checkpoint(pace).await
    }

    /// Starts a checkpoint when the store says one is due. While the previous one is still
    /// being written, folding goes on until the changed journeys reach twice the bound, and
    /// then waits for it: memory stays bounded when sled is slower, and a checkpoint that
    /// takes a moment longer does not stall readers waiting for fresh events. Catching up (a
    /// rebuild) checkpoints only when memory asks: the interval bounds the work a crash
    /// redoes, which a rebuild redoes anyway, and every checkpoint rewrites every journey
    /// changed since the last one.
    ///
    /// Live, a checkpoint that failed is tried again after its back-off (folding goes on
    /// meanwhile, unless memory asks for the checkpoint: then the projector waits for it);
    /// catching up, it fails the catch-up.
    async fn maybe_checkpoint(&mut self, pace: Pace) -> Result<()> {
        if self
            .checkpoint
            .as_ref()
            .is_some_and(JoinHandle::is_finished)
        {
            self.settle_checkpoint(pace).await?;
        }
        let writing = self.checkpoint.is_some();
        let due = self.store.checkpoint_due();
        match (due, pace, writing) {
            (None, _, _)
            | (Some(Checkpoint::Interval), Pace::CatchingUp, _)
            | (Some(Checkpoint::Interval | Checkpoint::Dirty), _, true) => return Ok(()),
            (Some(Checkpoint::Full), _, _)
            | (Some(Checkpoint::Dirty), _, false)
            | (Some(Checkpoint::Interval), Pace::Live, false) => {}
        }
        self.settle_checkpoint(pace).await?;
        if let Some(retry) = self.retry {
            if due != Some(Checkpoint::Full) && Instant::now() < retry.at {
                return Ok(());
            }
            tokio::time::sleep_until(retry.at.into()).await;
            let store = self.store.clone();
            if let Err(error) = blocking::run(move || store.recover()).await {
                self.stalled(&error);
                return Ok(());
            }
        }
        // Cut here, between steps; written on another thread while folding goes on.
        if self.store.seal() {
            let store = self.store.clone();
            self.checkpoint = Some(tokio::task::spawn_blocking(move || {
                info_span!("checkpoint").in_scope(|| store.write_sealed())
            }));
        }
        Ok(())
    }

    /// Waits for the checkpoint being written, if any, and notes how it went: live, a
    /// failure stalls the projector until a checkpoint succeeds; catching up, it is returned.
    async fn settle_checkpoint(&mut self, pace: Pace) -> Result<()> {
        let Some(handle) = self.checkpoint.take() else {
            return Ok(());
        };
        match (blocking::joined(handle).await, pace) {
            (Ok(()), _) => {
                if self.retry.take().is_some() {
                    info!("checkpoints are written again");
                    self.health.send_replace(ProjectorHealth::Running);
                }
                Ok(())
            }
            (Err(error), Pace::Live) => {
                self.stalled(&error);
                Ok(())
            }
            (Err(error), Pace::CatchingUp) => Err(error),
        }
    }

    /// Notes a failed checkpoint (or recovery): health says why, the next try backs off.
    fn stalled(&mut self, error: &Error) {
        let pause = match self.retry {
            Some(retry) => (retry.pause * 2).min(MAX_RETRY_PAUSE),
            None => {
                error!(%error, "a checkpoint failed: the projector goes on in memory and tries \
                    again (it waits once the projection reaches its memory bound)");
                FIRST_RETRY
            }
        };
        self.retry = Some(Retry {
            at: Instant::now() + pause,
            pause,
        });
        let health = ProjectorHealth::Stalled {
            reason: error.to_string(),
        };
        self.health.send_if_modified(|h| {
            let changed = *h != health;
            *h = health;
            changed
        });
    }

    /// Waits for the checkpoint being written, if any.
    async fn checkpoint_written(&mut self) -> Result<()> {
        match self.checkpoint.take() {
            Some(handle) => blocking::joined(handle).await,
            None => Ok(()),
        }
    }
}

/// Sends events to their partitions, retrying until they are there: the step that produced
/// them cannot commit before (its partition waits, it never skips them).
async fn relay(partitioning: &Partitioning, events: Vec<Event>) {
    let mut pause = Duration::from_millis(50);
    loop {
        match partitioning.relay.send(events.clone()).await {
            Ok(()) => return,
            Err(error) => {
                warn!(partition = partitioning.partition, events = events.len(), %error,
                    "could not hand events to their partitions; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
        }
    }
}

/// A step folded, and when the log recorded its newest record.
type Folded = (Step, Option<Timestamp>);

/// Folds decoded records into the store in place, one at a time, off the async runtime.
async fn fold(store: &Arc<CachedStore>, mut step: Step, records: Vec<Decoded>) -> Result<Folded> {
    let store = store.clone();
    let newest = records.last().map(|record| record.recorded_at);
    blocking::run(move || {
        for record in records {
            store.fold(|workspace| step.record(workspace, record))?;
        }
        Ok((step, newest))
    })
    .await
}

/// Deletes the projection and rebuilds it from the whole log.
///
/// On a partitioned log, events and handovers the fold sends elsewhere are already in their
/// partitions (the projector that first folded them sent them before committing), so
/// `partitioning`'s relay receives them again and may drop them.
pub async fn rebuild(
    (log, sealing): (Arc<dyn Log>, Sealing),
    store: Arc<CachedStore>,
    policies: Arc<Policies>,
    partitioning: Option<Partitioning>,
    dedup_window: usize,
    progress: impl FnMut(u64),
) -> Result<ProjectionStats> {
    let cleared = store.clone();
    blocking::run(move || cleared.clear()).await?;
    let until = log.end_offset();
    let mut projector = Projector::with_window(log, store.clone(), dedup_window)?
        .with_policies(policies)
        .with_partitioning(partitioning)
        .with_sealing(sealing);
    let stats = projector.catch_up(until, progress).await?;
    blocking::run(move || store.flush()).await?;
    Ok(stats)
}
