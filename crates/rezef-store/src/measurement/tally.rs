//! The counter: a partition's measured records counted into their buckets on a thread of
//! its own, beside the fold.
//!
//! Counting was half of measuring's cost on the fold's thread, the one a rebuild waits for,
//! while the machine's other core was mostly idle. The fold hands records over in batches
//! ([`Tally::count`]: a wake-up per batch, not per event); the counter takes them in order,
//! with the cuts and evictions of checkpoints between them as jobs in the same queue, so a
//! checkpoint's cut holds exactly the records of the events before it. A reader first hands
//! over what is batched, then waits until the counter has counted every job sent
//! ([`Tally::synced`]): what the fold measured before a read is in it, as when counting was
//! in the fold's step.
//!
//! A bucket to count in that was let go of is read back from the store below here, off the
//! fold's thread. If that read fails, the counter stops counting: the fold's next record
//! and every later cut fail with the error ([`Error::Counting`]), so no checkpoint writes
//! figures that miss a record and the projector stops as for any store failure.

use std::mem;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};

use rezef_events::{TenantId, Timestamp};
use rezef_measure::Measured;
use tracing::{error, info_span};

use super::held::HeldBuckets;
use super::{StoredBucket, floors};
use crate::store::JourneyStore;
use crate::{Error, Result};

/// Records batched before they are handed to the counter.
const BATCH: usize = 512;
/// Jobs queued for the counter before the fold waits for it (memory stays bounded).
const QUEUED_JOBS: usize = 16;
/// Jobs counted under one hold of the buckets' lock (readers wait no longer than that).
const JOBS_PER_HOLD: u64 = 8;

/// What the counter is asked to do, in order.
enum Job {
    Count(Vec<(TenantId, Measured)>),
    /// Cut the buckets changed since the last cut, for a checkpoint.
    Seal(SyncSender<Result<Vec<StoredBucket>, Arc<Error>>>),
    /// A cut was not written.
    Unseal(Vec<StoredBucket>),
    /// A checkpoint was written: let go of the old buckets it wrote.
    Evict,
}

/// The buckets and how many jobs were done on them.
#[derive(Debug)]
pub(crate) struct Counted {
    pub buckets: HeldBuckets,
    done: u64,
}

/// What the counter's thread shares with the fold and readers.
#[derive(Debug)]
struct Shared {
    counted: Mutex<Counted>,
    moved: Condvar,
    /// The measurer's clock (unix nanos), whose floors say which buckets stay in memory.
    clock: AtomicI64,
    /// [`HeldBuckets::dirty`] after the last jobs, for deciding when a checkpoint is due.
    dirty: AtomicUsize,
    failed: OnceLock<Arc<Error>>,
}

/// Records batched, and the queue to the counter.
#[derive(Debug)]
struct Outbox {
    batch: Vec<(TenantId, Measured)>,
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
    /// Starts counting over `buckets` (as restored), reading let-go buckets from `below`.
    pub fn start(
        buckets: HeldBuckets,
        clock: Option<Timestamp>,
        below: Arc<dyn JourneyStore>,
    ) -> Self {
        let shared = Arc::new(Shared {
            dirty: AtomicUsize::new(buckets.dirty()),
            counted: Mutex::new(Counted { buckets, done: 0 }),
            moved: Condvar::new(),
            clock: AtomicI64::new(clock.map_or(i64::MIN, Timestamp::unix_nanos)),
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
            jobs,
            sent: 0,
        };
        Self {
            outbox: Arc::new(Mutex::new(outbox)),
            shared,
        }
    }

    /// Moves the clock the floors are taken at (the measurer's).
    pub fn set_clock(&self, clock: Option<Timestamp>) {
        if let Some(clock) = clock {
            self.shared
                .clock
                .store(clock.unix_nanos(), Ordering::Relaxed);
        }
    }

    /// Hands `records` over to be counted; the counter's failure, if it failed.
    pub fn count(
        &self,
        records: impl ExactSizeIterator<Item = (TenantId, Measured)>,
    ) -> Result<()> {
        self.failure()?;
        if records.len() == 0 {
            return Ok(());
        }
        let mut outbox = self.outbox();
        outbox.batch.extend(records);
        if outbox.batch.len() >= BATCH {
            outbox.flush();
        }
        Ok(())
    }

    /// Cuts the buckets changed since the last cut, after every record handed over: the
    /// answer comes once the counter reached the cut.
    pub fn seal(&self) -> Receiver<Result<Vec<StoredBucket>, Arc<Error>>> {
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

    /// The buckets with every record handed over so far counted, under their lock.
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
            let batch = mem::take(&mut self.batch);
            self.push(Job::Count(batch));
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
            let floors = floors(shared.clock.load(Ordering::Relaxed));
            if let Err(failed) = run(&mut counted.buckets, job, floors, below, shared) {
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

fn run(
    buckets: &mut HeldBuckets,
    job: Job,
    floors: super::held::Floors,
    below: &dyn JourneyStore,
    shared: &Shared,
) -> Result<()> {
    match job {
        Job::Count(records) => {
            if shared.failed.get().is_some() {
                return Ok(());
            }
            for key in buckets.absent(&records, floors) {
                // Let go of only once a checkpoint wrote it: the store's copy is the latest.
                let stored = below.bucket(&key)?;
                buckets.load(key, stored);
            }
            buckets.add(&records);
        }
        Job::Seal(answer) => {
            let cut = match shared.failed.get() {
                Some(failed) => Err(failed.clone()),
                None => Ok(buckets.seal()),
            };
            let _ = answer.send(cut);
        }
        Job::Unseal(failed) => buckets.unseal(&failed),
        Job::Evict => buckets.evict(floors),
    }
    Ok(())
}
