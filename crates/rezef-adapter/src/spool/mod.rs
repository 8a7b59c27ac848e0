//! [`Spool`]: the publisher's events on local disk, in order, until the server acknowledges
//! them, so that an adapter loses nothing it accepted while Rezef is down or when the
//! adapter itself restarts.
//!
//! A directory of append-only segment files (`<first seq>.seg`, 20 digits) and a `head` file
//! naming the first event the server has not acknowledged. Appends go to the last segment
//! (a new one past [`SpoolLimits::segment_bytes`]); acknowledging moves the head and deletes
//! the segments wholly before it. The head is written without fsync: after a crash it may
//! be behind, and the events after it are sent again, which the server recognises by their
//! ids. The format and its recovery rules are in `format.rs`.
//!
//! No maintained crate fitted: `yaque` and `queue-file` have no byte bound or CRC per
//! record, `segment-buffer` acknowledges an append before it reaches the disk. The framing is
//! the key store's (`rezef-keys` `file/format.rs`), per record.
//!
//! Bounded: the events appended and not yet acknowledged take at most
//! [`SpoolLimits::max_bytes`] (frames included); past it an append is refused whole
//! ([`Error::SpoolFull`]). The disk holds at most one segment more (the acknowledged part of
//! the oldest segment).

mod format;

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use format::MAX_RECORD;
use format::{FRAME_HEADER_LEN, HEAD_LEN, HEADER};

use crate::Error;

const HEAD: &str = "head";
const LOCK: &str = "LOCK";
const SEGMENT_EXT: &str = "seg";

/// How much a spool holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpoolLimits {
    /// The most bytes of events not yet acknowledged (each with its 8 bytes of framing).
    pub max_bytes: u64,
    /// A segment past this size is closed and a new one started.
    pub segment_bytes: u64,
}

impl Default for SpoolLimits {
    /// 1 GiB in segments of 16 MiB.
    fn default() -> Self {
        Self {
            max_bytes: 1 << 30,
            segment_bytes: 16 << 20,
        }
    }
}

/// A place in the spool: the sequence number of an event and the byte where its frame
/// starts, counted over all frames ever kept (not persisted: recounted on opening).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cursor {
    pub seq: u64,
    pos: u64,
}

#[derive(Debug)]
struct Segment {
    /// The sequence number of its first event.
    base: u64,
    /// Where its first frame is in the count of [`Cursor::pos`].
    start: u64,
    /// Bytes of frames in it.
    len: u64,
    file: Arc<File>,
    path: PathBuf,
}

impl Segment {
    fn end(&self) -> u64 {
        self.start + self.len
    }
}

/// The spool of one publisher; the directory is locked against a second one.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    limits: SpoolLimits,
    _lock: File,
    head_file: File,
    /// Oldest first; the last is appended to. Never empty.
    segments: VecDeque<Segment>,
    /// The first event not acknowledged.
    head: Cursor,
    /// After the last event written.
    end: Cursor,
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::Spool {
        path: path.to_path_buf(),
        source,
    }
}

fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(dir))
}

fn segment_name(base: u64) -> String {
    format!("{base:020}.{SEGMENT_EXT}")
}

impl Spool {
    /// Opens the spool in `dir`, creating it if needed. A torn tail of the last segment (an
    /// append a crash cut) is cut off; damage anywhere else is [`Error::SpoolCorrupt`].
    pub fn open(dir: &Path, limits: SpoolLimits) -> Result<Self, Error> {
        fs::create_dir_all(dir).map_err(io_error(dir))?;
        let lock_path = dir.join(LOCK);
        let lock = (OpenOptions::new().create(true).truncate(false).write(true))
            .open(&lock_path)
            .map_err(io_error(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(Error::SpoolLocked {
                    dir: dir.to_path_buf(),
                });
            }
            Err(TryLockError::Error(e)) => return Err(io_error(&lock_path)(e)),
        }
        let head_path = dir.join(HEAD);
        let head_file = (OpenOptions::new().create(true).truncate(false))
            .read(true)
            .write(true)
            .open(&head_path)
            .map_err(io_error(&head_path))?;
        let mut head_bytes = [0; HEAD_LEN];
        let read = head_file.read_at(&mut head_bytes, 0).unwrap_or(0);
        let head_seq = format::decode_head(&head_bytes[..read]);

        let mut bases = Vec::new();
        for entry in fs::read_dir(dir).map_err(io_error(dir))? {
            let path = entry.map_err(io_error(dir))?.path();
            let base = (path.extension().is_some_and(|e| e == SEGMENT_EXT))
                .then(|| path.file_stem()?.to_str()?.parse::<u64>().ok())
                .flatten();
            if let Some(base) = base {
                bases.push(base);
            }
        }
        bases.sort_unstable();

        let mut spool = Self {
            dir: dir.to_path_buf(),
            limits,
            _lock: lock,
            head_file,
            segments: VecDeque::new(),
            head: Cursor::default(),
            end: Cursor::default(),
        };
        let mut head = None;
        for (i, &base) in bases.iter().enumerate() {
            let last = i + 1 == bases.len();
            let (segment, count, head_pos) = spool.load(base, spool.end.pos, last, head_seq)?;
            if base != spool.end.seq && !spool.segments.is_empty() {
                return Err(Error::SpoolCorrupt {
                    path: segment.path,
                    offset: 0,
                });
            }
            head = head.or(head_pos.map(|pos| Cursor {
                seq: head_seq.unwrap_or(0),
                pos,
            }));
            spool.end = Cursor {
                seq: base + count,
                pos: segment.end(),
            };
            spool.segments.push_back(segment);
        }
        if spool.segments.is_empty() {
            let base = head_seq.unwrap_or(0);
            spool.end = Cursor { seq: base, pos: 0 };
            spool.create_segment(base)?;
        }
        spool.head = match head {
            Some(head) => head,
            // Before the first segment (its deletion outlived the head's write): from there.
            None if head_seq.is_none_or(|seq| seq < spool.end.seq) => {
                let first = &spool.segments[0];
                Cursor {
                    seq: first.base,
                    pos: first.start,
                }
            }
            // Past the end: the server acknowledged events a crash then cut; none is owed.
            None => spool.end,
        };
        spool.persist_head()?;
        spool.drop_acknowledged()?;
        Ok(spool)
    }

    /// Reads segment `base`, checks its frames (cutting a torn tail when `last`); the
    /// segment, its events, and the position of event `head_seq` if it is in it.
    fn load(
        &self,
        base: u64,
        start: u64,
        last: bool,
        head_seq: Option<u64>,
    ) -> Result<(Segment, u64, Option<u64>), Error> {
        let path = self.dir.join(segment_name(base));
        let file = (OpenOptions::new().read(true).write(true))
            .open(&path)
            .map_err(io_error(&path))?;
        let bytes = fs::read(&path).map_err(io_error(&path))?;
        let corrupt = |offset| Error::SpoolCorrupt {
            path: path.clone(),
            offset,
        };
        if !bytes.starts_with(HEADER) {
            // Only a segment whose creation a crash cut can lack its header.
            if !(last && HEADER.starts_with(&bytes)) {
                return Err(corrupt(0));
            }
            (file.set_len(0))
                .and_then(|()| file.write_all_at(HEADER, 0))
                .and_then(|()| file.sync_all())
                .map_err(io_error(&path))?;
            let segment = Segment {
                base,
                start,
                len: 0,
                file: Arc::new(file),
                path,
            };
            let head = (head_seq == Some(base)).then_some(start);
            return Ok((segment, 0, head));
        }
        let mut at = HEADER.len();
        let mut count = 0;
        let mut head = None;
        loop {
            if head_seq == Some(base + count) {
                head = Some(start + (at - HEADER.len()) as u64);
            }
            match format::frame_at(&bytes, at) {
                Some((_, next)) => {
                    at = next;
                    count += 1;
                }
                None if at == bytes.len() => break,
                None if last => {
                    (file.set_len(at as u64))
                        .and_then(|()| file.sync_all())
                        .map_err(io_error(&path))?;
                    break;
                }
                None => return Err(corrupt(at as u64)),
            }
        }
        let segment = Segment {
            base,
            start,
            len: (at - HEADER.len()) as u64,
            file: Arc::new(file),
            path,
        };
        Ok((segment, count, head))
    }

    /// Starts segment `base` at the end, durably (the file and its name).
    fn create_segment(&mut self, base: u64) -> Result<(), Error> {
        let path = self.dir.join(segment_name(base));
        let file = (OpenOptions::new().read(true).write(true).create_new(true))
            .open(&path)
            .and_then(|file| file.write_all_at(HEADER, 0).map(|()| file))
            .and_then(|file| file.sync_all().map(|()| file))
            .map_err(io_error(&path))?;
        sync_dir(&self.dir)?;
        self.segments.push_back(Segment {
            base,
            start: self.end.pos,
            len: 0,
            file: Arc::new(file),
            path,
        });
        Ok(())
    }

    /// The first event not acknowledged.
    pub fn head(&self) -> Cursor {
        self.head
    }

    /// After the last event written.
    pub fn end(&self) -> Cursor {
        self.end
    }

    /// Bytes of events written and not acknowledged.
    pub fn pending_bytes(&self) -> u64 {
        self.end.pos - self.head.pos
    }

    /// The bytes `records` take in the spool, framed.
    pub fn framed_len<'a>(records: impl IntoIterator<Item = &'a [u8]>) -> u64 {
        (records.into_iter())
            .map(|r| (FRAME_HEADER_LEN + r.len()) as u64)
            .sum()
    }

    pub fn limits(&self) -> SpoolLimits {
        self.limits
    }

    /// Writes `records` at the end, all or none ([`Error::SpoolFull`] when they do not fit
    /// under [`SpoolLimits::max_bytes`]), without syncing: the caller syncs the file returned
    /// before it tells anyone the records are accepted. Empty records are not allowed.
    pub fn append(&mut self, records: &[&[u8]]) -> Result<Arc<File>, Error> {
        let size = Self::framed_len(records.iter().copied());
        if self.pending_bytes() + size > self.limits.max_bytes {
            return Err(Error::SpoolFull {
                limit: self.limits.max_bytes,
            });
        }
        if let Some(record) = records
            .iter()
            .find(|r| r.is_empty() || r.len() > MAX_RECORD)
        {
            return Err(Error::SpoolRecord { size: record.len() });
        }
        let active = self.segments.back().expect("a spool has a segment");
        if active.len >= self.limits.segment_bytes {
            self.create_segment(self.end.seq)?;
        }
        let mut frames = Vec::with_capacity(size as usize);
        for record in records {
            format::encode(&mut frames, record);
        }
        let active = self.segments.back_mut().expect("a spool has a segment");
        let at = HEADER.len() as u64 + active.len;
        if let Err(e) = active.file.write_all_at(&frames, at) {
            // Nothing of it counts: cut what was written.
            let _ = active.file.set_len(at);
            return Err(io_error(&active.path)(e));
        }
        active.len += size;
        self.end = Cursor {
            seq: self.end.seq + records.len() as u64,
            pos: self.end.pos + size,
        };
        Ok(active.file.clone())
    }

    /// Up to `max_records` events from `from`, as many as fit in `max_bytes` (framed) but at
    /// least one if there is one, each with the cursor after it.
    pub fn read(
        &self,
        from: Cursor,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Vec<(Vec<u8>, Cursor)>, Error> {
        let mut out = Vec::new();
        let mut at = from;
        let mut bytes = 0;
        while out.len() < max_records && at.pos < self.end.pos && bytes < max_bytes {
            let segment = (self.segments.iter())
                .find(|s| s.start <= at.pos && at.pos < s.end())
                .ok_or(Error::SpoolCursor { seq: at.seq })?;
            let offset = at.pos - segment.start;
            let corrupt = || Error::SpoolCorrupt {
                path: segment.path.clone(),
                offset: HEADER.len() as u64 + offset,
            };
            // What is left to take, and at least a whole first frame.
            let mut len = [0; 4];
            (segment.file)
                .read_exact_at(&mut len, HEADER.len() as u64 + offset)
                .map_err(io_error(&segment.path))?;
            let first = FRAME_HEADER_LEN as u64 + u64::from(u32::from_le_bytes(len));
            let want = ((max_bytes - bytes) as u64).max(first);
            let mut chunk = vec![0; (segment.len - offset).min(want) as usize];
            (segment.file)
                .read_exact_at(&mut chunk, HEADER.len() as u64 + offset)
                .map_err(io_error(&segment.path))?;
            let mut i = 0;
            while out.len() < max_records {
                let Some((record, next)) = format::frame_at(&chunk, i) else {
                    break;
                };
                if !out.is_empty() && bytes + (next - i) > max_bytes {
                    return Ok(out);
                }
                bytes += next - i;
                at = Cursor {
                    seq: at.seq + 1,
                    pos: at.pos + (next - i) as u64,
                };
                out.push((record.to_vec(), at));
                i = next;
            }
            if i == 0 {
                return Err(corrupt());
            }
        }
        Ok(out)
    }

    /// The server has every event before `to`: moves the head there and deletes the
    /// segments wholly before it.
    pub fn acknowledge(&mut self, to: Cursor) -> Result<(), Error> {
        debug_assert!(self.head.pos <= to.pos && to.pos <= self.end.pos);
        self.head = to;
        self.persist_head()?;
        self.drop_acknowledged()
    }

    /// Writes the head (no fsync: a head found behind after a crash only sends again).
    fn persist_head(&self) -> Result<(), Error> {
        (self.head_file)
            .write_all_at(&format::encode_head(self.head.seq), 0)
            .map_err(io_error(&self.dir.join(HEAD)))
    }

    /// Deletes the segments before the head, all but the last.
    fn drop_acknowledged(&mut self) -> Result<(), Error> {
        while self.segments.len() > 1 && self.segments[0].end() <= self.head.pos {
            let segment = self.segments.pop_front().expect("more than one");
            fs::remove_file(&segment.path).map_err(io_error(&segment.path))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
