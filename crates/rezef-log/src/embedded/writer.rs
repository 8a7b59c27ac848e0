//! The single writer thread and its group commit.
//!
//! Durability costs one `fdatasync` per commit, and an fsync takes about as long for one
//! batch as for a hundred. So instead of syncing per append, one dedicated thread takes every
//! request that is waiting, writes all their frames with one `write`, syncs once, and only
//! then publishes the new end offset and answers every caller. Under load, concurrent
//! publishers share fsyncs; with a single publisher it degrades to one sync per append, which
//! is the latency floor anyway.
//!
//! A failed write (a full disk above all) must not end the log: the operator frees space
//! and writes go on. So a failure refuses the requests not yet synced, cuts what was written
//! of them off the segment (a partial frame must never sit between whole ones), and leaves
//! the writer's state at the last acknowledged frame. The next append tries the disk again;
//! while none comes, a probe (zeros written past the end, synced, cut again) tries it with
//! back-off, so that [`WriteHealth`] turns writable again by itself.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{mpsc, oneshot};

use super::Shared;
use super::segment::{Segment, SegmentIndex, segment_file_name};
use crate::chain::ChainHash;
use crate::error::{Error, Result};
use crate::frame::{self, FrameHeader};
use crate::{Appended, OFFSET_LIMIT, Offset, WriteHealth};

/// Most requests taken into one group commit.
const MAX_GROUP_REQUESTS: usize = 4096;
/// A group stops taking more requests once its frames reach this size (the first request is
/// always taken, whatever its size).
const MAX_GROUP_BYTES: u64 = 32 * 1024 * 1024;
/// The reusable write buffer is released after a group if it grew beyond this.
const KEEP_BUFFER_BYTES: usize = 4 * 1024 * 1024;
/// After a failed write, the first probe of the disk comes this soon...
const FIRST_PROBE: Duration = Duration::from_millis(100);
/// ...and the pause between probes doubles up to this.
const MAX_PROBE_PAUSE: Duration = Duration::from_secs(2);
/// How often a failing writer looks for new requests between probes.
const FAILING_POLL: Duration = Duration::from_millis(10);
/// A probe writes as many bytes as the failed group had, within these bounds.
const PROBE_BYTES: (u64, u64) = (4 * 1024, 1024 * 1024);

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
    /// The chain hash of the last acknowledged frame: the next frame chains from it.
    pub chain: ChainHash,
    pub segment_bytes: u64,
    pub fsync: bool,
    pub buf: Vec<u8>,
    /// The active segment may hold bytes past `pos` (a failed write): cut them before the
    /// next write.
    pub dirty: bool,
    /// Set while writes fail.
    pub failing: Option<Failing>,
}

/// The writer's state while writes fail.
#[derive(Debug)]
pub(crate) struct Failing {
    /// When to probe the disk next, unless an append tries it first.
    probe_at: Instant,
    pause: Duration,
    /// How many bytes a probe writes.
    probe_bytes: u64,
}

/// Where a frame of the current group went, for the index.
struct Placed {
    header: FrameHeader,
    pos: u64,
}

impl Writer {
    /// Runs until every sender is gone (the log was closed).
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
        while let Some(first) = self.next_request(&mut rx) {
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
                // A log out of offsets refuses appends; the disk is fine.
                if !matches!(e, Error::Refused(_)) {
                    self.failed(&e, bytes);
                }
                for req in group.drain(..) {
                    let _ = req.reply.send(Err(e.duplicate()));
                }
            }
        }
        tracing::info!(end_offset = self.next_offset, "log writer stopped");
    }

    /// The next request; while writes fail, probes the disk with back-off until one comes.
    /// `None` once the log is closed.
    fn next_request(&mut self, rx: &mut mpsc::Receiver<AppendRequest>) -> Option<AppendRequest> {
        loop {
            let Some(failing) = &self.failing else {
                return rx.blocking_recv();
            };
            match rx.try_recv() {
                Ok(req) => return Some(req),
                Err(TryRecvError::Disconnected) => return None,
                Err(TryRecvError::Empty) => {}
            }
            if Instant::now() < failing.probe_at {
                std::thread::sleep(FAILING_POLL);
                continue;
            }
            let probe_bytes = failing.probe_bytes;
            match self.probe(probe_bytes) {
                Ok(()) => {
                    tracing::info!("the log's disk takes writes again");
                    self.writable();
                }
                Err(e) => self.failed(&e, probe_bytes),
            }
        }
    }

    /// Notes a failed write: health says why, and the next probe is scheduled.
    fn failed(&mut self, error: &Error, bytes: u64) {
        let pause = match &self.failing {
            Some(failing) => (failing.pause * 2).min(MAX_PROBE_PAUSE),
            None => {
                tracing::error!(
                    error = %error,
                    end_offset = self.next_offset,
                    "log write failed: appends are refused until the disk takes writes again \
                     (retried on each append and by a probe)"
                );
                FIRST_PROBE
            }
        };
        self.failing = Some(Failing {
            probe_at: Instant::now() + pause,
            pause,
            probe_bytes: bytes.clamp(PROBE_BYTES.0, PROBE_BYTES.1),
        });
        let health = WriteHealth::Failing {
            no_space: error.is_no_space(),
            reason: error.to_string(),
        };
        self.shared.health.send_if_modified(|h| {
            let changed = *h != health;
            *h = health;
            changed
        });
    }

    /// Notes that writes succeed.
    fn writable(&mut self) {
        if self.failing.take().is_some() {
            self.shared.health.send_replace(WriteHealth::Writable);
        }
    }

    /// Cuts bytes a failed write left past the last whole frame.
    fn repair(&mut self) -> Result<()> {
        if self.dirty {
            let path = self.active.path();
            self.file
                .set_len(self.pos)
                .map_err(|e| Error::io("truncate segment", path, e))?;
            self.dirty = false;
        }
        Ok(())
    }

    /// Tries the disk without appending: finishes a roll that failed, then writes `bytes`
    /// zeros past the end, syncs them and cuts them again. A crash in between leaves a zero
    /// tail, which recovery cuts.
    fn probe(&mut self, bytes: u64) -> Result<()> {
        self.repair()?;
        if self.pos > 0 && self.pos >= self.segment_bytes {
            self.roll(self.next_offset)?;
        }
        let zeros = vec![0; usize::try_from(bytes).unwrap_or(usize::MAX)];
        let path = self.active.path().to_path_buf();
        self.dirty = true;
        self.file
            .write_all_at(&zeros, self.pos)
            .map_err(|e| Error::io("write segment", &path, e))?;
        if self.fsync {
            self.file
                .sync_data()
                .map_err(|e| Error::io("fdatasync segment", &path, e))?;
        }
        self.repair()
    }

    /// Writes and syncs the frames of `group`, publishes the new end offset and answers
    /// every request. On error the requests still in `group` were not acknowledged (the
    /// caller refuses them); those before a segment roll that failed were, and are gone
    /// from `group`.
    fn commit(&mut self, group: &mut Vec<AppendRequest>) -> Result<()> {
        let started = Instant::now();
        self.repair()?;
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let mut placed = Vec::with_capacity(group.len());
        let mut results = Vec::with_capacity(group.len());
        let mut next = self.next_offset;
        let mut last_ts = self.last_ts;
        let mut chain = self.chain;
        let mut syncs = 0u64;
        let mut i = 0;
        while i < group.len() {
            let at = self.pos + buf.len() as u64;
            if at > 0 && at >= self.segment_bytes {
                syncs += self.flush(&mut buf, &mut placed)?;
                // Durable: acknowledged now, whatever becomes of the rest of the group.
                self.acknowledge(group.drain(..i), results.drain(..), next, last_ts, chain);
                i = 0;
                self.roll(next)?;
            }
            let req = &group[i];
            if next.saturating_add(req.payloads.len() as u64) > OFFSET_LIMIT {
                return Err(Error::Refused(format!(
                    "the log is full: its offsets end at {OFFSET_LIMIT}"
                )));
            }
            let ts = now_ms().max(last_ts);
            let pos = self.pos + buf.len() as u64;
            let start = buf.len();
            chain = frame::encode(&mut buf, next, ts, &req.payloads, &chain);
            let header = frame::parse_header(&buf[start..]).map_err(|reason| Error::Corrupt {
                path: self.active.path().to_path_buf(),
                position: pos,
                reason,
            })?;
            results.push(Appended {
                first_offset: next,
                count: header.count,
                timestamp_ms: ts,
            });
            placed.push(Placed { header, pos });
            next = header.next_offset();
            last_ts = ts;
            i += 1;
        }
        syncs += self.flush(&mut buf, &mut placed)?;
        if buf.capacity() <= KEEP_BUFFER_BYTES {
            self.buf = buf;
        }
        let requests = group.len();
        let records: u64 = results.iter().map(|a| u64::from(a.count)).sum();
        let bytes: u64 = group.iter().map(|r| r.frame_len).sum();
        self.shared.stats.syncs.fetch_add(syncs, Ordering::Relaxed);
        self.acknowledge(group.drain(..), results.drain(..), next, last_ts, chain);
        tracing::debug!(
            requests,
            records,
            bytes,
            syncs,
            end_offset = next,
            elapsed_us = started.elapsed().as_micros() as u64,
            "group committed"
        );
        Ok(())
    }

    /// The frames of `requests` are durable and indexed: says the log is writable, makes
    /// them visible up to `next` (the last of them with `last_ts` and `chain`), then
    /// acknowledges each with its `results`.
    fn acknowledge(
        &mut self,
        requests: impl ExactSizeIterator<Item = AppendRequest>,
        results: impl Iterator<Item = Appended>,
        next: Offset,
        last_ts: i64,
        chain: ChainHash,
    ) {
        if requests.len() == 0 {
            return;
        }
        self.writable();
        self.next_offset = next;
        self.last_ts = last_ts;
        self.chain = chain;
        self.shared.watermark.send_modify(|w| w.end = next);
        let stats = &self.shared.stats;
        stats.groups.fetch_add(1, Ordering::Relaxed);
        for (req, appended) in requests.zip(results) {
            stats.appends.fetch_add(1, Ordering::Relaxed);
            stats.bytes.fetch_add(req.frame_len, Ordering::Relaxed);
            stats
                .records
                .fetch_add(u64::from(appended.count), Ordering::Relaxed);
            // A caller that gave up waiting is fine: its batch is durable regardless.
            let _ = req.reply.send(Ok(appended));
        }
    }

    /// Writes `buf` at the end of the active segment, syncs it, and extends the segment's
    /// index with `placed`. Returns the number of data syncs done (0 or 1). On error the
    /// segment is marked for [`Writer::repair`] and `buf` and `placed` are left for the
    /// caller to drop.
    fn flush(&mut self, buf: &mut Vec<u8>, placed: &mut Vec<Placed>) -> Result<u64> {
        if buf.is_empty() {
            return Ok(0);
        }
        let path = self.active.path();
        self.dirty = true;
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
        self.dirty = false;
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
    /// On error the active segment stays as it was (and the new file is not left behind).
    fn roll(&mut self, base: Offset) -> Result<()> {
        let path = self.shared.dir.join(segment_file_name(base));
        let file = create_segment_file(&path, &self.shared.dir, self.fsync)?;
        let reader = match file.try_clone() {
            Ok(reader) => reader,
            Err(e) => {
                drop(file);
                let _ = std::fs::remove_file(&path);
                return Err(Error::io("clone segment handle", &path, e));
            }
        };
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
    if sync && let Err(e) = sync_dir(dir) {
        // Not durable as a name: gone, so that a retry can create it again.
        drop(file);
        let _ = std::fs::remove_file(path);
        return Err(e);
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
