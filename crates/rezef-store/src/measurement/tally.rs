//! The counter: a partition's measurer and the buckets its records are counted into, on a
//! thread of its own beside the fold.
//!
//! Measuring was a fifth of the fold's step, on the thread a rebuild waits for, while the
//! machine's other core was partly idle. The fold only reads what the measurer needs of
//! each journey ([`Observation`]) and hands it over in batches ([`Tally::observe`]: a
//! wake-up per batch, not per event); the counter measures them in order and counts the
//! records, with the cuts and evictions of checkpoints between them as jobs in the same
//! queue, so a checkpoint's cut holds exactly the measurer and the records of the events
//! before it. A reader first hands over what is batched, then waits until the counter has
//! done every job sent ([`Tally::synced`]): what the fold folded before a read is measured
//! and counted in it, as when measuring was in the fold's step.
//!
//! A bucket to count in that was let go of is read back from the store below here, off the
//! fold's thread. If that read fails, the counter stops counting: the fold's next record
//! and every later cut fail with the error ([`Error::Counting`]), so no checkpoint writes
//! figures that miss a record and the projector stops as for any store failure.

use std::mem;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};

use rezef_events::TenantId;
use rezef_measure::{MeasureRules, Measured, Measurer, Observation};
use tracing::{error, info_span};

use super::held::{Floors, HeldBuckets};
use super::{StoredBucket, floors};
use crate::store::JourneyStore;
use crate::{Error, Result};

/// Observations batched before they are handed to the counter.
const BATCH: usize = 512;
/// Jobs queued for the counter before the fold waits for it (memory stays bounded).
const QUEUED_JOBS: usize = 16;
/// Jobs counted under one hold of the buckets' lock (readers wait no longer than that).
const JOBS_PER_HOLD: u64 = 8;

/// What the counter is asked to do, in order.
enum Job {
    Measure(Vec<Run>),
    /// Cut the measurer and the buckets changed since the last cut, for a checkpoint.
    Seal(SyncSender<Cut>),
    /// A cut was not written.
    Unseal(Vec<StoredBucket>),
    /// A checkpoint was written: let go of the old buckets it wrote.
    Evict,
}

/// A checkpoint's cut: the measurer, and the buckets changed since the last cut.
pub(crate) type Cut = Result<(Measurer, Vec<StoredBucket>), Arc<Error>>;

/// The measurer, the buckets and how many jobs were done on them.
#[derive(Debug)]
pub(crate) struct Counted {
    pub measurer: Measurer,
    pub buckets: HeldBuckets,
    done: u64,
}

/// What the counter's thread shares with the fold and readers.
#[derive(Debug)]
struct Shared {
    counted: Mutex<Counted>,
    moved: Condvar,
    /// Every tenant's rules the measurer measures under.
    rules: MeasureRules,
    /// [`HeldBuckets::dirty`] after the last jobs, for deciding when a checkpoint is due.
    dirty: AtomicUsize,
    failed: OnceLock<Arc<Error>>,
}

/// Observations of one tenant's journeys, in order.
type Run = (TenantId, Vec<Observation>);

/// Observations batched, in runs by tenant, and the queue to the counter.
#[derive(Debug)]
struct Outbox {
    batch: Vec<Run>,
    batched: usize,
    jobs: SyncSender<Job>,
    sent: u64,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Job")
    }
}

/// A partition's counter (see the module docs); clones share it. The thread ends once the
/// last clone is dropped.
#[derive(Debug, Clone)]
pub(crate) struct Tally {
    outbox: Arc<Mutex<Outbox>>,
    shared: Arc<Shared>,
}

impl Tally {
    /// Starts measuring with `measurer` under `rules` and counting over `buckets` (both
    /// as restored), reading let-go buckets from `below`.
    pub fn start(
        (measurer, rules): (Measurer, MeasureRules),
        buckets: HeldBuckets,
        below: Arc<dyn JourneyStore>,
    ) -> Self {
        let shared = Arc::new(Shared {
            dirty: AtomicUsize::new(buckets.dirty()),
            counted: Mutex::new(Counted {
                measurer,
                buckets,
                done: 0,
            }),
            moved: Condvar::new(),
            rules,
            failed: OnceLock::new(),
        });
        let (jobs, queue) = mpsc::sync_channel(QUEUED_JOBS);
        let counter = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("rezef-tally".into())
            .spawn(move || {
                let counting = AssertUnwindSafe(|| count_jobs(&counter, &queue, below.as_ref()));
                if panic::catch_unwind(counting).is_err() {
                    counter.fail(Error::CounterStopped("it panicked"));
                }
            });
        if spawned.is_err() {
            shared.fail(Error::CounterStopped("its thread could not be started"));
        }
        let outbox = Outbox {
            batch: Vec::new(),
            batched: 0,
            jobs,
            sent: 0,
        };
        Self {
            outbox: Arc::new(Mutex::new(outbox)),
            shared,
        }
    }

    /// Hands what was read of an applied event of `tenant`'s journey over to be measured
    /// and counted; the counter's failure, if it failed.
    pub fn observe(&self, tenant: &TenantId, seen: Observation) -> Result<()> {
        self.failure()?;
        let mut outbox = self.outbox();
        match outbox.batch.last_mut() {
            Some((last, run)) if last == tenant => run.push(seen),
            _ => {
                let mut run = Vec::with_capacity(BATCH - outbox.batched);
                run.push(seen);
                outbox.batch.push((tenant.clone(), run));
            }
        }
        outbox.batched += 1;
        if outbox.batched >= BATCH {
            outbox.flush();
        }
        Ok(())
    }

    /// Cuts the measurer and the buckets changed since the last cut, after every
    /// observation handed over: the answer comes once the counter reached the cut.
    pub fn seal(&self) -> Receiver<Cut> {
        let (answer, answered) = mpsc::sync_channel(1);
        self.outbox().send(Job::Seal(answer));
        answered
    }

    /// A cut was not written: its buckets are written with the next one.
    pub fn unseal(&self, failed: Vec<StoredBucket>) {
        self.outbox().send(Job::Unseal(failed));
    }

    /// A checkpoint was written: the old buckets it wrote are let go of.
    pub fn evict(&self) {
        self.outbox().send(Job::Evict);
    }

    /// How many buckets changed since the last cut, as of the last jobs counted.
    pub fn dirty(&self) -> usize {
        self.shared.dirty.load(Ordering::Relaxed)
    }

    /// The measurer and the buckets with every observation handed over so far measured and
    /// counted, under their lock.
    pub fn synced(&self) -> Result<MutexGuard<'_, Counted>> {
        let sent = {
            let mut outbox = self.outbox();
            outbox.flush();
            outbox.sent
        };
        let mut counted = lock(&self.shared.counted);
        while counted.done < sent && self.shared.failed.get().is_none() {
            counted = (self.shared.moved.wait(counted)).unwrap_or_else(|e| e.into_inner());
        }
        self.failure()?;
        Ok(counted)
    }

    fn failure(&self) -> Result<()> {
        match self.shared.failed.get() {
            Some(failed) => Err(Error::Counting(failed.clone())),
            None => Ok(()),
        }
    }

    fn outbox(&self) -> MutexGuard<'_, Outbox> {
        lock(&self.outbox)
    }
}

impl Outbox {
    /// Queues `job` after the records batched.
    fn send(&mut self, job: Job) {
        self.flush();
        self.push(job);
    }

    fn flush(&mut self) {
        if !self.batch.is_empty() {
            self.batched = 0;
            let batch = mem::take(&mut self.batch);
            self.push(Job::Measure(batch));
        }
    }

    fn push(&mut self, job: Job) {
        // The counter ends only once every sender is gone: this one is not.
        if self.jobs.send(job).is_ok() {
            self.sent += 1;
        }
    }
}

impl Shared {
    /// Counts nothing more; wakes the readers waiting, who get the error.
    fn fail(&self, failed: Error) {
        error!(error = %failed, "counting measurement failed");
        let _ = self.failed.set(Arc::new(failed));
        drop(lock(&self.counted));
        self.moved.notify_all();
    }
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// The counter's thread: jobs in order until every sender is gone.
fn count_jobs(shared: &Shared, queue: &Receiver<Job>, below: &dyn JourneyStore) {
    let _span = info_span!("measure_tally").entered();
    while let Ok(first) = queue.recv() {
        let mut counted = lock(&shared.counted);
        let mut next = Some(first);
        let mut done = 0;
        while let Some(job) = next.take() {
            if let Err(failed) = run(&mut counted, job, below, shared) {
                error!(error = %failed, "counting measurement failed");
                let _ = shared.failed.set(Arc::new(failed));
            }
            done += 1;
            if done < JOBS_PER_HOLD {
                next = queue.try_recv().ok();
            }
        }
        counted.done += done;
        shared
            .dirty
            .store(counted.buckets.dirty(), Ordering::Relaxed);
        drop(counted);
        shared.moved.notify_all();
    }
}

/// Floors of the measurer's clock: which buckets stay in memory.
fn floors_of(measurer: &Measurer) -> Floors {
    floors(
        measurer
            .clock()
            .map_or(i64::MIN, |clock| clock.unix_nanos()),
    )
}

fn run(counted: &mut Counted, job: Job, below: &dyn JourneyStore, shared: &Shared) -> Result<()> {
    let Counted {
        measurer, buckets, ..
    } = counted;
    match job {
        Job::Measure(runs) => {
            if shared.failed.get().is_some() {
                return Ok(());
            }
            let records = measure(measurer, &shared.rules, runs);
            for key in buckets.absent(&records, floors_of(measurer)) {
                // Let go of only once a checkpoint wrote it: the store's copy is the latest.
                let stored = below.bucket(&key)?;
                buckets.load(key, stored);
            }
            buckets.add(&records);
        }
        Job::Seal(answer) => {
            let cut = match shared.failed.get() {
                Some(failed) => Err(failed.clone()),
                None => Ok((measurer.clone(), buckets.seal())),
            };
            let _ = answer.send(cut);
        }
        Job::Unseal(failed) => buckets.unseal(&failed),
        Job::Evict => buckets.evict(floors_of(measurer)),
    }
    Ok(())
}

/// The records of the observations in `runs`, in order, each with the tenant whose
/// figures it counts in.
fn measure(
    measurer: &mut Measurer,
    rules: &MeasureRules,
    runs: Vec<Run>,
) -> Vec<(TenantId, Measured)> {
    let mut records = Vec::new();
    for (tenant, observations) in runs {
        let config = rules.for_tenant(&tenant);
        for seen in observations {
            let measured = measurer.take(config, &tenant, seen);
            records.extend(measured.into_iter().map(|record| match &record {
                // The clock decides pending resolutions of any tenant.
                Measured::Fcr(decision) => (decision.tenant_id.clone(), record),
                _ => (tenant.clone(), record),
            }));
        }
    }
    records
}
