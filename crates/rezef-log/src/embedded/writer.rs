//! The single writer thread and its group commit.
//!
//! Durability costs one `fdatasync` per commit, and an fsync takes about as long for one
//! batch as for a hundred. So instead of syncing per append, one dedicated thread takes every
//! request that is waiting, writes all their frames with one `write`, syncs once, and only
//! then publishes the new end offset and answers every caller. Under load, concurrent
//! publishers share fsyncs; with a single publisher it degrades to one sync per append, which
//! is the latency floor anyway.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use super::Shared;
use super::segment::{Segment, SegmentIndex, segment_file_name};
use crate::error::{Error, Result};
use crate::frame::{self, FrameHeader};
use crate::{Appended, OFFSET_LIMIT, Offset};

/// Most requests taken into one group commit.
const MAX_GROUP_REQUESTS: usize = 4096;
/// A group stops taking more requests once its frames reach this size (the first request is
/// always taken, whatever its size).
const MAX_GROUP_BYTES: u64 = 32 * 1024 * 1024;
/// The reusable write buffer is released after a group if it grew beyond this.
const KEEP_BUFFER_BYTES: usize = 4 * 1024 * 1024;

/// One `append` call waiting for the writer.
#[derive(Debug)]
pub(crate) struct AppendRequest {
    pub payloads: Vec<Bytes>,
    /// `frame::encoded_len(&payloads)`, computed by the caller.
    pub frame_len: u64,
    pub reply: oneshot::Sender<Result<Appended>>,
}

/// State owned by the writer thread.
pub(crate) struct Writer {
    pub shared: Arc<Shared>,
    pub active: Arc<Segment>,
    /// Write handle of the active segment.
    pub file: File,
    /// Size of the active segment's durable content (where the next frame goes).
    pub pos: u64,
    pub next_offset: Offset,
    pub last_ts: i64,
    pub segment_bytes: u64,
    pub fsync: bool,
    pub buf: Vec<u8>,
}

/// Where a frame of the current group went, for the index.
struct Placed {
    header: FrameHeader,
    pos: u64,
}

impl Writer {
    /// Runs until every sender is gone (the log was closed) or a write fails.
    pub(crate) fn run(mut self, mut rx: mpsc::Receiver<AppendRequest>) {
        let _close_on_exit = super::CloseOnDrop(Arc::clone(&self.shared));
        let span = tracing::info_span!("rezef_log_writer", dir = %self.shared.dir.display());
        let _entered = span.enter();
        tracing::info!(
            end_offset = self.next_offset,
            segment = %self.active.path().display(),
            "log writer started"
        );
        let mut group = Vec::new();
        while let Some(first) = rx.blocking_recv() {
            let mut bytes = first.frame_len;
            group.push(first);
            while group.len() < MAX_GROUP_REQUESTS && bytes < MAX_GROUP_BYTES {
                match rx.try_recv() {
                    Ok(req) => {
                        bytes += req.frame_len;
                        group.push(req);
                    }
                    Err(_) => break,
                }
            }
            if let Err(e) = self.commit(&mut group) {
                tracing::error!(
                    error = %e,
                    "log write failed; the writer stops and the log refuses further appends \
                     (reopen to recover)"
                );
                for req in group.drain(..) {
                    let _ = req.reply.send(Err(e.duplicate()));
                }
                // Refuse what is still queued; new senders see a closed channel.
                rx.close();
                while let Ok(req) = rx.try_recv() {
                    let _ = req.reply.send(Err(Error::Closed));
                }
                break;
            }
        }
        tracing::info!(end_offset = self.next_offset, "log writer stopped");
    }

    /// Writes and syncs the frames of `group`, publishes the new end offset and answers every
    /// request. On error nothing is answered (the caller does it) and nothing is published.
    fn commit(&mut self, group: &mut Vec<AppendRequest>) -> Result<()> {
        let started = Instant::now();
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let mut placed = Vec::with_capacity(group.len());
        let mut results = Vec::with_capacity(group.len());
        let mut next = self.next_offset;
        let mut syncs = 0u64;
        for req in group.iter() {
            let at = self.pos + buf.len() as u64;
            if at > 0 && at >= self.segment_bytes {
                syncs += self.flush(&mut buf, &mut placed)?;
                self.roll(next)?;
            }
            if next.saturating_add(req.payloads.len() as u64) > OFFSET_LIMIT {
                return Err(Error::Refused(format!(
                    "the log is full: its offsets end at {OFFSET_LIMIT}"
                )));
            }
            let ts = now_ms().max(self.last_ts);
            let pos = self.pos + buf.len() as u64;
            let start = buf.len();
            frame::encode(&mut buf, next, ts, &req.payloads);
            let header = frame::parse_header(&buf[start..]).map_err(|reason| Error::Corrupt {
                path: self.active.path().to_path_buf(),
                position: pos,
                reason,
            })?;
            let appended = Appended {
                first_offset: next,
                count: header.count,
                timestamp_ms: ts,
            };
            placed.push(Placed { header, pos });
            results.push(appended);
            next = header.next_offset();
            self.last_ts = ts;
        }
        let bytes: u64 = group.iter().map(|r| r.frame_len).sum();
        syncs += self.flush(&mut buf, &mut placed)?;
        if buf.capacity() <= KEEP_BUFFER_BYTES {
            self.buf = buf;
        }
        self.next_offset = next;

        // The frames are durable and indexed: make them visible, then acknowledge.
        self.shared.watermark.send_modify(|w| w.end = next);
        let stats = &self.shared.stats;
        stats.groups.fetch_add(1, Ordering::Relaxed);
        stats.syncs.fetch_add(syncs, Ordering::Relaxed);
        stats
            .appends
            .fetch_add(group.len() as u64, Ordering::Relaxed);
        stats.bytes.fetch_add(bytes, Ordering::Relaxed);
        let records: u64 = results.iter().map(|a| u64::from(a.count)).sum();
        stats.records.fetch_add(records, Ordering::Relaxed);
        tracing::debug!(
            requests = group.len(),
            records,
            bytes,
            syncs,
            end_offset = next,
            elapsed_us = started.elapsed().as_micros() as u64,
            "group committed"
        );
        for (req, appended) in group.drain(..).zip(results) {
            // A caller that gave up waiting is fine: its batch is durable regardless.
            let _ = req.reply.send(Ok(appended));
        }
        Ok(())
    }

    /// Writes `buf` at the end of the active segment, syncs it, and extends the segment's
    /// index with `placed`. Returns the number of data syncs done (0 or 1).
    fn flush(&mut self, buf: &mut Vec<u8>, placed: &mut Vec<Placed>) -> Result<u64> {
        if buf.is_empty() {
            return Ok(0);
        }
        let path = self.active.path();
        self.file
            .write_all_at(buf, self.pos)
            .map_err(|e| Error::io("write segment", path, e))?;
        let mut syncs = 0;
        if self.fsync {
            self.file
                .sync_data()
                .map_err(|e| Error::io("fdatasync segment", path, e))?;
            syncs = 1;
        }
        {
            let mut index = self.active.index();
            for p in placed.drain(..) {
                index.push(&p.header, p.pos);
            }
        }
        self.pos += buf.len() as u64;
        buf.clear();
        Ok(syncs)
    }

    /// Seals the active segment (already synced by `flush`) and starts a new one at `base`.
    fn roll(&mut self, base: Offset) -> Result<()> {
        let path = self.shared.dir.join(segment_file_name(base));
        let file = create_segment_file(&path, &self.shared.dir, self.fsync)?;
        let reader = file
            .try_clone()
            .map_err(|e| Error::io("clone segment handle", &path, e))?;
        let segment = Arc::new(Segment::with_index(
            base,
            path.clone(),
            reader,
            SegmentIndex::empty(base),
        ));
        self.shared
            .segments_mut()
            .insert(base, Arc::clone(&segment));
        tracing::info!(
            sealed = %self.active.path().display(),
            sealed_bytes = self.pos,
            segment = %path.display(),
            base_offset = base,
            "rolled to a new log segment"
        );
        self.active = segment;
        self.file = file;
        self.pos = 0;
        Ok(())
    }
}

/// Creates an empty segment file (failing if it exists) and, when `sync` is set, fsyncs the
/// directory so that the new name itself is durable.
pub(crate) fn create_segment_file(path: &Path, dir: &Path, sync: bool) -> Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| Error::io("create segment", path, e))?;
    if sync {
        sync_dir(dir)?;
    }
    Ok(file)
}

/// fsyncs a directory (makes created or removed names in it durable).
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("fsync directory", dir, e))
}

/// Wall-clock time in ms since the Unix epoch (negative before it, saturating).
pub(crate) fn now_ms() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_millis()).map_or(i64::MIN, |ms| -ms),
    }
}
