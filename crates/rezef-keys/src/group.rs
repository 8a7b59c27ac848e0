//! Group commit of `keys_for`: concurrent calls that need new keys share one write (one fsync
//! of the file store, one acknowledged produce of the Kafka store), as the log's appends do.
//!
//! A server appends many small batches at once, and a batch with a customer seen for the first
//! time makes a key, which must be durable before any record sealed under it is. One write a
//! call, one call at a time, capped ingest at the disk's fsync rate (half the events of
//! batches of 100 on this machine: BENCHMARKS.md). So a call queues its subjects, then takes
//! the store's writer: whoever holds it makes the keys of every call queued so far in one
//! write, and answers each; a call that finds itself answered when it gets the writer returns
//! that. Keys become visible to others only once durable, as before.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::{DataKey, Error, KeyId, Result, Subject};

/// The keys of a call's subjects, in order.
pub(crate) type Keys = Vec<(KeyId, DataKey)>;

/// The calls waiting for a writer.
#[derive(Debug, Default)]
pub(crate) struct Queue(Mutex<Vec<Arc<Call>>>);

/// One `keys_for` call: its subjects, and its keys once a writer made them.
#[derive(Debug)]
struct Call {
    subjects: Vec<Subject>,
    answer: Mutex<Option<Result<Keys>>>,
}

impl Queue {
    /// Queues a call for these subjects.
    fn push(&self, subjects: &[Subject]) -> Arc<Call> {
        let call = Arc::new(Call {
            subjects: subjects.to_vec(),
            answer: Mutex::new(None),
        });
        self.calls().push(call.clone());
        call
    }

    /// Every call queued: the holder of the writer answers them all.
    fn take(&self) -> Vec<Arc<Call>> {
        std::mem::take(&mut *self.calls())
    }

    fn calls(&self) -> MutexGuard<'_, Vec<Arc<Call>>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Call {
    /// Its keys, if a writer made them (taken: asked once).
    fn answered(&self) -> Option<Result<Keys>> {
        self.answer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    fn answer(&self, keys: Result<Keys>) {
        *self.answer.lock().unwrap_or_else(PoisonError::into_inner) = Some(keys);
    }
}

/// A `keys_for` call of a store that holds its writer with `writer()` and makes the keys of
/// subjects (the live ones looked up, the others written durably) with `make`.
pub(crate) fn keys_for<W>(
    queue: &Queue,
    subjects: &[Subject],
    writer: impl FnOnce() -> W,
    make: impl FnOnce(&mut W, &[Subject]) -> Result<Keys>,
) -> Result<Keys> {
    let call = queue.push(subjects);
    let mut writer = writer();
    if let Some(keys) = call.answered() {
        return keys;
    }
    // Ours is still queued: make the keys of every call queued, in one write.
    let calls = queue.take();
    let all: Vec<Subject> = calls
        .iter()
        .flat_map(|c| c.subjects.iter().copied())
        .collect();
    answer(&calls, &make(&mut writer, &all));
    drop(writer);
    call.answered()
        .expect("the call holding the writer answered every queued call, its own among them")
}

/// Answers each call with its part of `made` (the keys of their subjects one after the
/// other), or with the failure.
fn answer(calls: &[Arc<Call>], made: &Result<Keys>) {
    let mut at = 0;
    for call in calls {
        let n = call.subjects.len();
        call.answer(match made {
            Ok(keys) => Ok(keys[at..at + n].to_vec()),
            Err(error) => Err(error.again()),
        });
        at += n;
    }
}

impl Error {
    /// The same failure for another call of a group (`io::Error` is not `Clone`: its kind and
    /// message are).
    fn again(&self) -> Error {
        match self {
            Error::Io { path, source } => Error::Io {
                path: path.clone(),
                source: std::io::Error::new(source.kind(), source.to_string()),
            },
            Error::Corrupt {
                path,
                offset,
                reason,
            } => Error::Corrupt {
                path: path.clone(),
                offset: *offset,
                reason,
            },
            Error::UnsupportedVersion { path, version } => Error::UnsupportedVersion {
                path: path.clone(),
                version: *version,
            },
            Error::Locked { dir } => Error::Locked { dir: dir.clone() },
            Error::Kafka(message) => Error::Kafka(message.clone()),
            Error::Random(error) => Error::Random(*error),
            Error::BadKeyId => Error::BadKeyId,
            Error::Unsealable => Error::Unsealable,
        }
    }
}
