//! The queue to the spool: takes every group of events waiting, writes them with one write
//! and one fsync, then tells their callers they are accepted. While one fsync runs the next
//! groups gather, so that many callers share each fsync.

use std::sync::Arc;

use prost::Message;
use tokio::sync::mpsc;

use super::{Intake, Shared};
use crate::Error;
use crate::spool::{MAX_RECORD, Spool};

/// Groups taken at once at most.
const GROUPS: usize = 1024;

/// Spools what comes in until every [`super::Publisher`] handle is gone.
pub(super) async fn run(shared: Arc<Shared>, mut queued: mpsc::UnboundedReceiver<Intake>) {
    let mut groups = Vec::with_capacity(GROUPS);
    while queued.recv_many(&mut groups, GROUPS).await > 0 {
        let taken = std::mem::take(&mut groups);
        let shared = shared.clone();
        let spooled = tokio::task::spawn_blocking(move || spool(&shared, taken)).await;
        let replies = match spooled {
            Ok(replies) => replies,
            // The blocking task panicked: its callers' replies were dropped (`Error::Closed`).
            Err(_) => continue,
        };
        for (intake, result) in replies {
            let _ = intake.reply.send(result);
        }
    }
}

/// Writes the groups that fit, fsyncs them, and pairs every group with its answer.
fn spool(shared: &Shared, groups: Vec<Intake>) -> Vec<(Intake, Result<(), Error>)> {
    let encoded: Vec<Vec<Vec<u8>>> = (groups.iter())
        .map(|intake| intake.events.iter().map(Message::encode_to_vec).collect())
        .collect();
    let mut spool = shared.spool();
    let limits = spool.limits();
    let mut room = limits.max_bytes.saturating_sub(spool.pending_bytes());
    let mut verdicts = Vec::with_capacity(groups.len());
    let mut records: Vec<&[u8]> = Vec::new();
    for group in &encoded {
        let size = Spool::framed_len(group.iter().map(Vec::as_slice));
        if let Some(record) = group.iter().find(|r| r.len() > MAX_RECORD) {
            verdicts.push(Err(Error::SpoolRecord { size: record.len() }));
            continue;
        }
        if size > room {
            verdicts.push(Err(Error::SpoolFull {
                limit: limits.max_bytes,
            }));
            continue;
        }
        room -= size;
        records.extend(group.iter().map(Vec::as_slice));
        verdicts.push(Ok(()));
    }
    let written = if records.is_empty() {
        Ok(None)
    } else {
        spool.append(&records).map(Some)
    };
    let end = spool.end().seq;
    drop(spool);
    // Durable before anyone hears "accepted"; the next write waits for this one.
    let synced = match written {
        Ok(Some(file)) => file.sync_data().map_err(|e| e.to_string()),
        Ok(None) => Ok(()),
        Err(e) => Err(e.to_string()),
    };
    shared.written.send_replace(end);
    let results = verdicts
        .into_iter()
        .map(|verdict| match (&synced, verdict) {
            (Ok(()), verdict) => verdict,
            (Err(_), Err(refused)) => Err(refused),
            (Err(why), Ok(())) => Err(Error::Stopped(format!("spooling: {why}"))),
        });
    groups.into_iter().zip(results).collect()
}
