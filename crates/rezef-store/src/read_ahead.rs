//! Reading and decoding the log ahead of the fold, on a task of its own, so that decoding
//! the next records overlaps folding these: the projection uses both cores (with the
//! checkpoint writer, three threads).

use std::sync::Arc;

use rezef_events::{Event, Timestamp};
use rezef_log::{Log, Record};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use rezef_events::Payload;
use rezef_keys::KeyId;
use rezef_record::sealed::Sealing;

use crate::Result;
use crate::{blocking, dedup};

/// How many log records one read (and one projection step) takes at most.
pub const STEP_RECORDS: usize = 4096;
/// Decoded batches waiting for the fold: memory stays bounded by a few steps.
const AHEAD: usize = 2;

/// A log record's event, or why it could not be read.
#[derive(Debug)]
pub struct Decoded {
    pub offset: u64,
    /// When the log recorded it, by the server's clock.
    pub recorded_at: Timestamp,
    pub event: Result<Event, rezef_record::Error>,
    /// What the recent-ids window knows the event by (`crate::dedup::digest`; 0 when it
    /// could not be read), hashed here so that the fold does not.
    pub digest: u128,
}

/// Batches of decoded records, in log order, read ahead.
#[derive(Debug)]
pub struct ReadAhead {
    batches: mpsc::Receiver<Result<Vec<Decoded>>>,
    task: JoinHandle<()>,
}

impl ReadAhead {
    /// Reads from `from` up to `until` (exclusive), or with `None` follows the log until it
    /// is closed.
    pub fn start(log: Arc<dyn Log>, sealing: Sealing, from: u64, until: Option<u64>) -> Self {
        let (sender, batches) = mpsc::channel(AHEAD);
        let task = tokio::spawn(async move {
            if let Err(error) = read(log.as_ref(), &sealing, from, until, &sender).await {
                let _ = sender.send(Err(error)).await;
            }
        });
        Self { batches, task }
    }

    /// The next batch; `None` once `until` is reached or the log is closed.
    pub async fn next(&mut self) -> Option<Result<Vec<Decoded>>> {
        self.batches.recv().await
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn read(
    log: &dyn Log,
    sealing: &Sealing,
    mut from: u64,
    until: Option<u64>,
    sender: &mpsc::Sender<Result<Vec<Decoded>>>,
) -> Result<()> {
    loop {
        let want = match until {
            Some(until) if from >= until => return Ok(()),
            Some(until) => usize::try_from(until - from).unwrap_or(usize::MAX),
            None => STEP_RECORDS,
        };
        let records = log.read(from, want.min(STEP_RECORDS)).await?;
        let Some(last) = records.last() else {
            if until.is_some() {
                return Ok(());
            }
            match log.wait_for(from).await {
                Ok(()) => continue,
                Err(rezef_log::Error::Closed) => return Ok(()),
                Err(error) => return Err(error.into()),
            }
        };
        from = last.offset + 1;
        let sealing = sealing.clone();
        let decoded = blocking::run(move || {
            let decoded: Vec<Decoded> = records.iter().map(|r| decode(r, &sealing)).collect();
            forget_again(&decoded, &sealing)?;
            Ok(decoded)
        })
        .await;
        if sender.send(decoded).await.is_err() {
            return Ok(());
        }
    }
}

/// A log record decoded for the fold, its sealed values opened.
pub(crate) fn decode(record: &Record, sealing: &Sealing) -> Decoded {
    let event = sealing.decode(&record.payload);
    let digest =
        (event.as_ref()).map_or(0, |event| dedup::digest(&event.tenant_id, &event.event_id));
    Decoded {
        offset: record.offset,
        recorded_at: Timestamp::from_unix_millis(record.timestamp_ms),
        event,
        digest,
    }
}

/// Destroys the keys a `CustomerForgotten` names: the server destroyed them after logging
/// it, unless it stopped in between (idempotent otherwise).
fn forget_again(decoded: &[Decoded], sealing: &Sealing) -> Result<()> {
    let Some(keys) = sealing.keys() else {
        return Ok(());
    };
    for decoded in decoded {
        if let Ok(Event {
            payload: Payload::CustomerForgotten { key_ids, .. },
            ..
        }) = &decoded.event
        {
            let ids: Vec<KeyId> = key_ids.iter().filter_map(|id| id.parse().ok()).collect();
            keys.destroy(&ids)?;
        }
    }
    Ok(())
}
