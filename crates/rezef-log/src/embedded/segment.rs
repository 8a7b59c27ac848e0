//! One segment file: naming, its sparse index, and the frame-level scans over it (recovery,
//! lazy index build, reads, time lookup).
//!
//! All functions here do blocking file I/O; callers run them on the writer thread, at open, or
//! on `spawn_blocking`.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};

use bytes::Bytes;

use crate::chain::ChainHash;
use crate::error::{Corruption, Error, Result};
use crate::frame::{self, FIXED_LEN, FrameHeader};
use crate::{OFFSET_LIMIT, Offset, Record};

/// An index entry is added for a frame when it starts at least this many bytes after the
/// previous entry's frame (the first frame of a segment is always indexed).
pub(crate) const INDEX_INTERVAL: u64 = 16 * 1024;
/// Sequential scans read the file in chunks of this size (or one whole frame if larger).
const READ_CHUNK: u64 = 64 * 1024;
/// Extension of segment files.
pub(crate) const SEGMENT_EXT: &str = "log";
/// Width of the zero-padded base offset in a segment file name.
const NAME_DIGITS: usize = 20;

/// `00000000000000000042.log` for base offset 42.
pub(crate) fn segment_file_name(base: Offset) -> String {
    format!("{base:0width$}.{SEGMENT_EXT}", width = NAME_DIGITS)
}

/// The base offset encoded in a segment file name, or `None` if `name` is not one.
pub(crate) fn parse_segment_file_name(name: &str) -> Option<Offset> {
    let digits = name.strip_suffix(SEGMENT_EXT)?.strip_suffix('.')?;
    if digits.len() != NAME_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A sparse index point: the frame starting at file position `pos` has base offset `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IndexEntry {
    pub offset: Offset,
    pub pos: u64,
    pub timestamp_ms: i64,
}

/// What is known about a segment's frames. For the active segment it covers exactly the
/// durable frames (the writer extends it after each sync, before publishing the new end).
#[derive(Debug)]
pub(crate) struct SegmentIndex {
    /// False for sealed segments found at open until their first use.
    built: bool,
    entries: Vec<IndexEntry>,
    /// Offset one past the last indexed record (== segment base when empty).
    end_offset: Offset,
    /// File position one past the last indexed frame.
    end_pos: u64,
    /// Timestamp of the last indexed frame.
    last_ts: Option<i64>,
    /// The chain hash after the last indexed frame (what the next frame chains from).
    last_chain: ChainHash,
}

impl SegmentIndex {
    /// An index covering no frames yet.
    pub(crate) fn empty(base: Offset) -> Self {
        SegmentIndex {
            built: true,
            entries: Vec::new(),
            end_offset: base,
            end_pos: 0,
            last_ts: None,
            last_chain: ChainHash::GENESIS,
        }
    }

    fn unbuilt(base: Offset) -> Self {
        SegmentIndex {
            built: false,
            ..SegmentIndex::empty(base)
        }
    }

    /// Records the frame `header` found at file position `pos` (which must be `end_pos`).
    pub(crate) fn push(&mut self, header: &FrameHeader, pos: u64) {
        let add = match self.entries.last() {
            None => true,
            Some(last) => pos - last.pos >= INDEX_INTERVAL,
        };
        if add {
            self.entries.push(IndexEntry {
                offset: header.base_offset,
                pos,
                timestamp_ms: header.timestamp_ms,
            });
        }
        self.end_offset = header.next_offset();
        self.end_pos = pos + header.len();
        self.last_ts = Some(header.timestamp_ms);
        self.last_chain = header.chain_after();
    }

    pub(crate) fn end_offset(&self) -> Offset {
        self.end_offset
    }

    pub(crate) fn end_pos(&self) -> u64 {
        self.end_pos
    }

    pub(crate) fn last_ts(&self) -> Option<i64> {
        self.last_ts
    }

    /// The chain hash the next frame chains from (the genesis value for a segment without
    /// frames, or after version 1 frames). Taken from the stored fields, not recomputed.
    pub(crate) fn last_chain(&self) -> ChainHash {
        self.last_chain
    }

    /// The index entry at or before `offset` (the frame scan for `offset` starts there).
    fn entry_at_or_before(&self, offset: Offset) -> Option<IndexEntry> {
        let idx = self.entries.partition_point(|e| e.offset <= offset);
        idx.checked_sub(1).map(|i| self.entries[i])
    }
}

/// A segment file and its index.
#[derive(Debug)]
pub(crate) struct Segment {
    base: Offset,
    path: PathBuf,
    /// Read handle, opened on first use for sealed segments (so that a large log does not hold
    /// one descriptor per segment it never reads).
    file: OnceLock<File>,
    index: Mutex<SegmentIndex>,
}

impl Segment {
    /// A sealed segment discovered at open; validated lazily.
    pub(crate) fn sealed(base: Offset, path: PathBuf) -> Self {
        Segment {
            base,
            path,
            file: OnceLock::new(),
            index: Mutex::new(SegmentIndex::unbuilt(base)),
        }
    }

    /// A segment whose index is already known (the active segment).
    pub(crate) fn with_index(base: Offset, path: PathBuf, file: File, index: SegmentIndex) -> Self {
        let cell = OnceLock::new();
        let _ = cell.set(file);
        Segment {
            base,
            path,
            file: cell,
            index: Mutex::new(index),
        }
    }

    pub(crate) fn base(&self) -> Offset {
        self.base
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Locks the index. A panic while holding the lock cannot leave it half-updated in a way
    /// that matters (every mutation is a push plus plain stores), so poisoning is ignored.
    pub(crate) fn index(&self) -> MutexGuard<'_, SegmentIndex> {
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn file(&self) -> Result<&File> {
        if let Some(f) = self.file.get() {
            return Ok(f);
        }
        let f = File::open(&self.path).map_err(|e| Error::io("open segment", &self.path, e))?;
        // If another reader won the race, its handle is kept and ours is dropped.
        let _ = self.file.set(f);
        self.file.get().ok_or_else(|| {
            Error::io(
                "open segment",
                &self.path,
                std::io::Error::other("segment handle unavailable"),
            )
        })
    }

    fn corrupt(&self, position: u64, reason: Corruption) -> Error {
        Error::Corrupt {
            path: self.path.clone(),
            position,
            reason,
        }
    }

    /// Builds the index of a sealed segment if that has not happened yet, by walking its frame
    /// headers. Validates magic, lengths, offset continuity, timestamp order, and that the
    /// segment ends exactly where `next_base` (the following segment) begins. CRCs are checked
    /// later, when frames are actually read.
    pub(crate) fn ensure_index(
        &self,
        next_base: Option<Offset>,
    ) -> Result<MutexGuard<'_, SegmentIndex>> {
        let mut index = self.index();
        if index.built {
            return Ok(index);
        }
        let file = self.file()?;
        let len = file
            .metadata()
            .map_err(|e| Error::io("stat segment", &self.path, e))?
            .len();
        let mut built = SegmentIndex::empty(self.base);
        let mut scanner = Scanner::new(file, len);
        let mut pos = 0;
        while pos < len {
            let header = scanner.header(pos).map_err(|e| e.into_error(self, pos))?;
            if header.len() > len - pos {
                return Err(self.corrupt(
                    pos,
                    Corruption::BadFrameLength {
                        len: header.len(),
                        available: len - pos,
                    },
                ));
            }
            check_sequence(&built, &header).map_err(|r| self.corrupt(pos, r))?;
            built.push(&header, pos);
            pos += header.len();
        }
        if let Some(expected) = next_base
            && built.end_offset != expected
        {
            return Err(self.corrupt(
                len,
                Corruption::SegmentGap {
                    expected,
                    found: built.end_offset,
                },
            ));
        }
        tracing::debug!(
            segment = %self.path.display(),
            frames_indexed = built.entries.len(),
            end_offset = built.end_offset,
            "indexed sealed segment"
        );
        *index = built;
        Ok(index)
    }

    /// Appends to `out` the records of this segment from offset `from` on, stopping before
    /// offset `end` or when `out` holds `max` records. Every frame read is fully verified
    /// (CRC included). Returns the offset to continue from.
    pub(crate) fn read_into(
        &self,
        from: Offset,
        end: Offset,
        max: usize,
        next_base: Option<Offset>,
        out: &mut Vec<Record>,
    ) -> Result<Offset> {
        let (entry, limit) = {
            let index = self.ensure_index(next_base)?;
            (index.entry_at_or_before(from), index.end_pos)
        };
        let Some(entry) = entry else {
            return Ok(from);
        };
        let file = self.file()?;
        let mut scanner = Scanner::new(file, limit);
        let mut pos = entry.pos;
        let mut expected = entry.offset;
        let mut cur = from;
        while pos < limit && cur < end && out.len() < max {
            let header = scanner.header(pos).map_err(|e| e.into_error(self, pos))?;
            if header.base_offset != expected {
                return Err(self.corrupt(
                    pos,
                    Corruption::OffsetMismatch {
                        expected,
                        found: header.base_offset,
                    },
                ));
            }
            if header.next_offset() > cur {
                let bytes = scanner
                    .frame(pos, header.len())
                    .map_err(|e| e.into_error(self, pos))?;
                frame::verify(&header, bytes).map_err(|r| self.corrupt(pos, r))?;
                for (offset, payload) in
                    (header.base_offset..).zip(frame::Records::new(bytes, &header))
                {
                    if offset < cur {
                        continue;
                    }
                    if offset >= end || out.len() >= max {
                        break;
                    }
                    out.push(Record {
                        offset,
                        timestamp_ms: header.timestamp_ms,
                        payload: Bytes::copy_from_slice(payload),
                    });
                    cur = offset + 1;
                }
            }
            expected = header.next_offset();
            pos += header.len();
        }
        Ok(cur)
    }

    /// Timestamp of the segment's first frame (`None` if the segment is empty), from the index
    /// when built, else from one header read. Not checksum-verified.
    pub(crate) fn first_timestamp(&self) -> Result<Option<i64>> {
        {
            let index = self.index();
            if index.built {
                return Ok(index.entries.first().map(|e| e.timestamp_ms));
            }
        }
        let file = self.file()?;
        let len = file
            .metadata()
            .map_err(|e| Error::io("stat segment", &self.path, e))?
            .len();
        if len == 0 {
            return Ok(None);
        }
        let mut scanner = Scanner::new(file, len);
        let header = scanner.header(0).map_err(|e| e.into_error(self, 0))?;
        Ok(Some(header.timestamp_ms))
    }

    /// The first offset in this segment whose frame timestamp is `>= timestamp_ms`, or `None`
    /// when every indexed frame is older.
    pub(crate) fn offset_for_time(
        &self,
        timestamp_ms: i64,
        next_base: Option<Offset>,
    ) -> Result<Option<Offset>> {
        let (start, limit) = {
            let index = self.ensure_index(next_base)?;
            match index.last_ts {
                Some(last) if last >= timestamp_ms => {}
                _ => return Ok(None),
            }
            let idx = index
                .entries
                .partition_point(|e| e.timestamp_ms < timestamp_ms);
            if idx == 0 {
                return Ok(index.entries.first().map(|e| e.offset));
            }
            (index.entries[idx - 1], index.end_pos)
        };
        let file = self.file()?;
        let mut scanner = Scanner::new(file, limit);
        let mut pos = start.pos;
        while pos < limit {
            let header = scanner.header(pos).map_err(|e| e.into_error(self, pos))?;
            if header.timestamp_ms >= timestamp_ms {
                return Ok(Some(header.base_offset));
            }
            pos += header.len();
        }
        Ok(None)
    }
}

/// Checks that `header` may follow the frames already in `index`.
fn check_sequence(index: &SegmentIndex, header: &FrameHeader) -> Result<(), Corruption> {
    if header.base_offset != index.end_offset {
        return Err(Corruption::OffsetMismatch {
            expected: index.end_offset,
            found: header.base_offset,
        });
    }
    if let Some(previous) = index.last_ts
        && header.timestamp_ms < previous
    {
        return Err(Corruption::TimestampRegression {
            previous,
            found: header.timestamp_ms,
        });
    }
    if header.count == 0 {
        return Err(Corruption::Malformed("frame holds no records"));
    }
    past_limit(header.base_offset, header.count)
}

/// Refuses offsets from `base` for `count` records that reach past [`OFFSET_LIMIT`] (only a
/// damaged or forged file has them), before anything adds to them.
fn past_limit(base: Offset, count: u32) -> Result<(), Corruption> {
    match base.checked_add(u64::from(count)) {
        Some(end) if end <= OFFSET_LIMIT => Ok(()),
        _ => Err(Corruption::PastOffsetLimit { base, count }),
    }
}

/// Why a scan could not produce a frame.
pub(crate) enum ScanError {
    Io(std::io::Error),
    Bad(Corruption),
}

impl ScanError {
    fn into_error(self, segment: &Segment, pos: u64) -> Error {
        match self {
            ScanError::Io(e) => Error::io("read segment", &segment.path, e),
            ScanError::Bad(reason) => segment.corrupt(pos, reason),
        }
    }
}

/// Sequential, chunked reader of frames in `[0, limit)` of a file, using positional reads so
/// that it never disturbs (or depends on) a shared file cursor.
pub(crate) struct Scanner<'a> {
    file: &'a File,
    limit: u64,
    buf: Vec<u8>,
    buf_start: u64,
}

impl<'a> Scanner<'a> {
    pub(crate) fn new(file: &'a File, limit: u64) -> Self {
        Scanner {
            file,
            limit,
            buf: Vec::new(),
            buf_start: 0,
        }
    }

    /// Makes `[pos, pos + len)` available in the buffer and returns it.
    fn fill(&mut self, pos: u64, len: u64) -> std::result::Result<&[u8], ScanError> {
        let available = self.limit.saturating_sub(pos);
        if len > available {
            return Err(ScanError::Bad(Corruption::BadFrameLength {
                len,
                available,
            }));
        }
        let have = pos >= self.buf_start && pos + len <= self.buf_start + self.buf.len() as u64;
        if !have {
            let want = len.max(READ_CHUNK.min(available));
            let want = usize::try_from(want)
                .map_err(|_| ScanError::Bad(Corruption::BadFrameLength { len, available }))?;
            self.buf.clear();
            self.buf.resize(want, 0);
            self.buf_start = pos;
            if let Err(e) = self.file.read_exact_at(&mut self.buf, pos) {
                self.buf.clear();
                return Err(ScanError::Io(e));
            }
        }
        // Both bounds fit in usize: they lie within the buffer.
        let start = (pos - self.buf_start) as usize;
        Ok(&self.buf[start..start + len as usize])
    }

    pub(crate) fn header(&mut self, pos: u64) -> std::result::Result<FrameHeader, ScanError> {
        let version = self.fill(pos, FIXED_LEN as u64)?[8];
        let bytes = self.fill(pos, frame::header_len(version) as u64)?;
        frame::parse_header(bytes).map_err(ScanError::Bad)
    }

    pub(crate) fn frame(&mut self, pos: u64, len: u64) -> std::result::Result<&[u8], ScanError> {
        self.fill(pos, len)
    }
}

/// Result of recovering the last segment.
pub(crate) struct Recovered {
    /// Read/write handle positioned nowhere in particular (all I/O is positional).
    pub file: File,
    pub index: SegmentIndex,
    /// Bytes cut off the end of the file (a torn or corrupt tail).
    pub dropped_bytes: u64,
}

/// Scans the last segment frame by frame, verifying each completely, and truncates it after the
/// last whole valid frame.
///
/// A frame that is incomplete, has a bad magic or length, or fails its CRC is a torn write
/// from a crash and everything from it on is dropped (it was never acknowledged: an append is
/// acknowledged only after its frame and everything before it are synced). A frame that *passes*
/// its CRC but is inconsistent (unknown version, wrong base offset, timestamp going backwards,
/// malformed records) cannot come from a crash, so it is reported as [`Error::Corrupt`] and
/// nothing is truncated.
pub(crate) fn recover_last(base: Offset, path: &Path, sync: bool) -> Result<Recovered> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| Error::io("open segment", path, e))?;
    let len = file
        .metadata()
        .map_err(|e| Error::io("stat segment", path, e))?
        .len();
    let corrupt = |position, reason| Error::Corrupt {
        path: path.to_path_buf(),
        position,
        reason,
    };
    past_limit(base, 0).map_err(|reason| corrupt(0, reason))?;
    let mut index = SegmentIndex::empty(base);
    let mut torn: Option<Corruption> = None;
    {
        let mut scanner = Scanner::new(&file, len);
        let mut pos = 0;
        while pos < len {
            let header = match scanner.header(pos) {
                Ok(h) => h,
                Err(ScanError::Bad(reason)) => {
                    torn = Some(reason);
                    break;
                }
                Err(ScanError::Io(e)) => return Err(Error::io("read segment", path, e)),
            };
            let bytes = match scanner.frame(pos, header.len()) {
                Ok(b) => b,
                Err(ScanError::Bad(reason)) => {
                    torn = Some(reason);
                    break;
                }
                Err(ScanError::Io(e)) => return Err(Error::io("read segment", path, e)),
            };
            match frame::verify(&header, bytes) {
                Ok(()) => {}
                Err(
                    reason @ (Corruption::ChecksumMismatch { .. }
                    | Corruption::BadFrameLength { .. }),
                ) => {
                    torn = Some(reason);
                    break;
                }
                Err(reason) => return Err(corrupt(pos, reason)),
            }
            check_sequence(&index, &header).map_err(|r| corrupt(pos, r))?;
            index.push(&header, pos);
            pos += header.len();
        }
    }
    let keep = index.end_pos;
    let dropped_bytes = len - keep;
    if let Some(reason) = torn {
        tracing::warn!(
            segment = %path.display(),
            position = keep,
            dropped_bytes,
            %reason,
            "truncating the torn tail of the last log segment: a write a crash cut short \
             (never acknowledged), or damage; a journey store that folded records past the \
             new end refuses to start (rezef rebuild)"
        );
        file.set_len(keep)
            .map_err(|e| Error::io("truncate segment", path, e))?;
        if sync {
            file.sync_all()
                .map_err(|e| Error::io("fsync segment", path, e))?;
        }
    }
    Ok(Recovered {
        file,
        index,
        dropped_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_round_trip() {
        assert_eq!(segment_file_name(0), "00000000000000000000.log");
        assert_eq!(segment_file_name(42), "00000000000000000042.log");
        assert_eq!(segment_file_name(u64::MAX), "18446744073709551615.log");
        for base in [0, 1, 42, 1 << 40, u64::MAX] {
            assert_eq!(
                parse_segment_file_name(&segment_file_name(base)),
                Some(base)
            );
        }
        assert_eq!(parse_segment_file_name("42.log"), None);
        assert_eq!(parse_segment_file_name("0000000000000000004x.log"), None);
        assert_eq!(parse_segment_file_name("00000000000000000042.idx"), None);
        assert_eq!(parse_segment_file_name("00000000000000000042log"), None);
        assert_eq!(parse_segment_file_name("99999999999999999999.log"), None);
    }

    #[test]
    fn sparse_index_spacing_and_lookup() {
        let mut index = SegmentIndex::empty(100);
        let mut pos = 0;
        let mut offset = 100;
        for _ in 0..100 {
            let header = FrameHeader {
                crc: 0,
                version: frame::VERSION,
                reserved: [0; 3],
                frame_len: 1000,
                base_offset: offset,
                count: 2,
                timestamp_ms: 0,
                links: None,
            };
            index.push(&header, pos);
            pos += 1000;
            offset += 2;
        }
        assert_eq!(index.end_offset(), 300);
        assert_eq!(index.end_pos(), 100_000);
        // One entry per INDEX_INTERVAL bytes (rounded up to a frame boundary), plus the first.
        assert!(
            index.entries.len() > 1 && index.entries.len() <= 100_000 / INDEX_INTERVAL as usize + 1
        );
        for probe in 100..300 {
            let e = index.entry_at_or_before(probe).expect("entry");
            assert!(e.offset <= probe);
            // The next entry (if any) is past the probe.
            let next = index.entries.iter().find(|x| x.offset > e.offset);
            assert!(next.is_none_or(|n| n.offset > probe));
        }
        assert_eq!(index.entry_at_or_before(99), None);
    }
}
