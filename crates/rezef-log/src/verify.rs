//! `verify`: reads a whole embedded log from its first segment to its last and checks every
//! frame (CRC, structure), the offsets (each frame starts where the previous one ended, across
//! segment files), the timestamps and the hash chain, naming the first offset where any of it
//! breaks.
//!
//! Why a separate, read-only pass: opening the log trusts sealed segments and repairs a torn
//! tail, which is right for serving and wrong for an audit. Verification changes nothing and
//! takes no lock, so it also runs beside a server; what it checks then is the log as it was on
//! disk while it read (a frame being written at that moment shows as an incomplete tail).
//!
//! What the chain proves, and what it does not: a changed byte, a deleted, inserted or
//! reordered frame breaks it at that frame; someone who rewrites a frame *and* every frame
//! after it, recomputing each hash, is caught only by comparing the head
//! ([`Verified::head`]) with a copy kept elsewhere (docs/audit.md, "Tamper evidence").

use std::fmt;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::chain::ChainHash;
use crate::embedded::list_segments;
use crate::embedded::segment::{ScanError, Scanner};
use crate::error::{Corruption, Error, Result};
use crate::frame::{self, FrameHeader};
use crate::{OFFSET_LIMIT, Offset};

/// What [`verify`] found: the log intact up to its head, or the first place it is not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every frame checks out.
    Intact(Verified),
    /// The first frame (or segment) that does not.
    Broken(Broken),
}

/// An intact log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The first offset the log holds (above 0 when retention deleted segments).
    pub start_offset: Offset,
    /// One past the last offset the log holds.
    pub end_offset: Offset,
    /// Segment files read.
    pub segments: usize,
    /// Frames (appended batches) checked.
    pub frames: u64,
    /// Version 1 frames among them: written before the chain existed, covered by their CRC
    /// and by the offset checks only.
    pub unchained_frames: u64,
    /// The first offset covered by the chain (`None` if no frame is chained).
    pub chained_from: Option<Offset>,
    /// The value the first chained frame chains from: [`ChainHash::GENESIS`] from the start of
    /// a log, or the value stored in the first frame kept when earlier segments were deleted
    /// (taken as given: it can only be checked against a head recorded earlier).
    pub predecessor: ChainHash,
    /// The chain hash of the last frame: anchor it outside the log (with `end_offset`) to
    /// detect a rewrite of the whole chain later. `None` if no frame is chained.
    pub head: Option<ChainHash>,
}

/// Where and how a log stops checking out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    /// The first offset that cannot be vouched for: records from here on are not proven to
    /// be the ones appended.
    pub offset: Offset,
    /// The segment file where it was found.
    pub segment: PathBuf,
    /// Byte position in that file (of the frame, or 0 for a segment that starts wrong).
    pub position: u64,
    /// What is wrong.
    pub kind: BreakKind,
}

/// What is wrong where a log breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BreakKind {
    /// The frame's bytes do not match its CRC, or it is malformed: bytes were changed.
    Damaged(Corruption),
    /// The last segment ends in an incomplete frame (or in zeros): a write cut short by a
    /// crash, a write in progress, or a damaged frame length.
    Incomplete {
        /// Bytes from the incomplete frame to the end of the segment.
        bytes: u64,
    },
    /// The frame (or segment) here starts past the offset due: records were deleted, or
    /// frames reordered.
    Missing {
        /// The offset the frame or segment starts at.
        found: Offset,
    },
    /// The frame (or segment) here starts before the offset due: a frame was inserted,
    /// repeated, or reordered.
    Unexpected {
        /// The offset the frame or segment starts at.
        found: Offset,
    },
    /// The frame names another predecessor than the frame before it: a frame before it was
    /// deleted, inserted or changed (with its hash recomputed), or this one was moved.
    Unlinked {
        /// The predecessor hash the frame stores.
        stored: ChainHash,
        /// The chain hash of the frame before it.
        expected: ChainHash,
    },
    /// The frame's CRC checks out but its chain hash does not match its bytes: bytes were
    /// changed and the CRC recomputed.
    Rehashed,
    /// A version 1 (unchained) frame after chained ones: the writer never does that.
    Downgraded,
    /// The frame's timestamp is below the previous frame's.
    TimestampRegression {
        /// The previous frame's timestamp.
        previous: i64,
        /// This frame's.
        found: i64,
    },
}

impl fmt::Display for BreakKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BreakKind::Damaged(reason) => write!(f, "bytes changed or damaged: {reason}"),
            BreakKind::Incomplete { bytes } => write!(
                f,
                "the last segment ends in {bytes} bytes that are no whole frame (a write cut \
                 short by a crash or in progress, or a damaged frame length)"
            ),
            BreakKind::Missing { found } => write!(
                f,
                "a frame of offset {found} stands here: records missing (deleted, or frames \
                 out of order)"
            ),
            BreakKind::Unexpected { found } => write!(
                f,
                "a frame of offset {found} stands here: a frame inserted, repeated or out of \
                 order"
            ),
            BreakKind::Unlinked { stored, expected } => write!(
                f,
                "the hash chain breaks: the frame chains from {stored}, the frame before it \
                 ends the chain at {expected} (a frame deleted, inserted, moved or rewritten)"
            ),
            BreakKind::Rehashed => f.write_str(
                "the frame's chain hash does not match its bytes (bytes changed and the \
                 checksum recomputed)",
            ),
            BreakKind::Downgraded => {
                f.write_str("an unchained (version 1) frame after chained ones")
            }
            BreakKind::TimestampRegression { previous, found } => write!(
                f,
                "the frame's timestamp {found} ms is below the previous frame's {previous} ms"
            ),
        }
    }
}

impl fmt::Display for Broken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "broken at offset {} ({} byte {}): {}",
            self.offset,
            self.segment.display(),
            self.position,
            self.kind
        )
    }
}

/// Verifies the embedded log in `dir` from its first segment to its last, reading every
/// frame. `Err` only when the files cannot be read (a missing directory, an I/O error); a
/// log that reads but does not check out is [`Verdict::Broken`].
pub fn verify(dir: &Path) -> Result<Verdict> {
    verify_below(dir, OFFSET_LIMIT)
}

/// [`verify`] up to the frame that holds offset `end - 1`: what a log serving appends has
/// acknowledged, while frames after it may be half written ([`crate::Log::verify_chain`]).
pub(crate) fn verify_below(dir: &Path, end: Offset) -> Result<Verdict> {
    let segments = list_segments(dir)?;
    let count = segments.len();
    let mut walk = Walk::new(end);
    for (i, (&base, path)) in segments.iter().enumerate() {
        if walk.done() {
            break;
        }
        if let Err(kind) = walk.enter_segment(base) {
            return Ok(Verdict::Broken(walk.broken(path, 0, kind)));
        }
        if let Some(broken) = walk.segment(path, i + 1 == count)? {
            return Ok(Verdict::Broken(broken));
        }
    }
    Ok(Verdict::Intact(Verified {
        start_offset: walk.start.unwrap_or(0),
        end_offset: walk.expected.unwrap_or(0),
        segments: count,
        frames: walk.frames,
        unchained_frames: walk.unchained,
        chained_from: walk.chained_from,
        predecessor: walk.predecessor,
        head: walk.chained_from.map(|_| walk.chain),
    }))
}

/// The state of a verification between frames.
struct Walk {
    /// Frames starting at or past this offset are not read.
    until: Offset,
    /// The first offset of the log (the first segment's base).
    start: Option<Offset>,
    /// The offset the next frame must start at.
    expected: Option<Offset>,
    last_ts: Option<i64>,
    /// The chain hash the next frame must chain from.
    chain: ChainHash,
    predecessor: ChainHash,
    chained_from: Option<Offset>,
    frames: u64,
    unchained: u64,
}

impl Walk {
    fn new(until: Offset) -> Self {
        Walk {
            until,
            start: None,
            expected: None,
            last_ts: None,
            chain: ChainHash::GENESIS,
            predecessor: ChainHash::GENESIS,
            chained_from: None,
            frames: 0,
            unchained: 0,
        }
    }

    /// Whether every frame below `until` was checked.
    fn done(&self) -> bool {
        self.expected.is_some_and(|next| next >= self.until)
    }

    fn broken(&self, segment: &Path, position: u64, kind: BreakKind) -> Broken {
        Broken {
            offset: self.expected.unwrap_or(0),
            segment: segment.to_path_buf(),
            position,
            kind,
        }
    }

    /// A segment named for `base` begins: it must start where the previous one ended.
    fn enter_segment(&mut self, base: Offset) -> Result<(), BreakKind> {
        match self.expected {
            None => {
                self.start = Some(base);
                self.expected = Some(base);
                Ok(())
            }
            Some(expected) => offsets_follow(expected, base),
        }
    }

    /// Checks every frame of one segment; `Some` at the first that fails.
    fn segment(&mut self, path: &Path, last: bool) -> Result<Option<Broken>> {
        let file = File::open(path).map_err(|e| Error::io("open segment", path, e))?;
        let len = file
            .metadata()
            .map_err(|e| Error::io("stat segment", path, e))?
            .len();
        let mut scanner = Scanner::new(&file, len);
        let mut pos = 0;
        while pos < len && !self.done() {
            let read = scanner
                .header(pos)
                .and_then(|header| Ok((header, scanner.frame(pos, header.len())?)));
            let outcome = match read {
                Ok((header, bytes)) => self.frame(&header, bytes),
                Err(ScanError::Io(e)) => return Err(Error::io("read segment", path, e)),
                Err(ScanError::Bad(reason)) => Err(BreakKind::Damaged(reason)),
            };
            match outcome {
                Ok(frame_len) => pos += frame_len,
                Err(kind) => {
                    let kind = match kind {
                        BreakKind::Damaged(_) if last && torn_tail(&file, pos, len, path)? => {
                            BreakKind::Incomplete { bytes: len - pos }
                        }
                        kind => kind,
                    };
                    return Ok(Some(self.broken(path, pos, kind)));
                }
            }
        }
        Ok(None)
    }

    /// Checks one whole frame against the frames before it; returns its length.
    fn frame(&mut self, header: &FrameHeader, bytes: &[u8]) -> Result<u64, BreakKind> {
        frame::verify(header, bytes).map_err(BreakKind::Damaged)?;
        let expected = self.expected.unwrap_or(header.base_offset);
        offsets_follow(expected, header.base_offset)?;
        let end = header.base_offset.checked_add(u64::from(header.count));
        if end.is_none_or(|end| end > OFFSET_LIMIT) {
            return Err(BreakKind::Damaged(Corruption::PastOffsetLimit {
                base: header.base_offset,
                count: header.count,
            }));
        }
        if let Some(previous) = self.last_ts
            && header.timestamp_ms < previous
        {
            return Err(BreakKind::TimestampRegression {
                previous,
                found: header.timestamp_ms,
            });
        }
        match header.links {
            None if self.chained_from.is_some() => return Err(BreakKind::Downgraded),
            None => self.unchained += 1,
            Some(links) => {
                if self.frames == 0 && header.base_offset > 0 {
                    // The log's front was deleted: its first frame's predecessor is given.
                    self.chain = links.previous;
                    self.predecessor = links.previous;
                }
                if links.previous != self.chain {
                    return Err(BreakKind::Unlinked {
                        stored: links.previous,
                        expected: self.chain,
                    });
                }
                if frame::compute_chain(bytes) != links.chain {
                    return Err(BreakKind::Rehashed);
                }
                self.chain = links.chain;
                self.chained_from.get_or_insert(header.base_offset);
            }
        }
        self.expected = Some(header.next_offset());
        self.last_ts = Some(header.timestamp_ms);
        self.frames += 1;
        Ok(header.len())
    }
}

/// Whether a frame (or segment) starting at `found` may follow where `expected` is due.
fn offsets_follow(expected: Offset, found: Offset) -> Result<(), BreakKind> {
    match found.cmp(&expected) {
        std::cmp::Ordering::Equal => Ok(()),
        std::cmp::Ordering::Greater => Err(BreakKind::Missing { found }),
        std::cmp::Ordering::Less => Err(BreakKind::Unexpected { found }),
    }
}

/// Whether the bytes of the last segment from `pos` look like what a crash leaves: a frame
/// (or the start of one) that runs past the end of the file, or zeros to the end.
fn torn_tail(file: &File, pos: u64, len: u64, path: &Path) -> Result<bool> {
    let read = |at: u64, n: u64| -> Result<Vec<u8>> {
        let mut bytes = vec![0; usize::try_from(n).unwrap_or(0)];
        file.read_exact_at(&mut bytes, at)
            .map_err(|e| Error::io("read segment", path, e))?;
        Ok(bytes)
    };
    let rest = len - pos;
    let head = read(pos, rest.min(frame::HEADER_LEN as u64))?;
    let runs_past_end = match frame::parse_header(&head) {
        Ok(header) => header.len() > rest,
        // Cut inside the header: what there is starts like a frame.
        Err(Corruption::BadFrameLength { len, available }) if len > available => {
            frame::MAGIC.starts_with(&head[..head.len().min(4)])
        }
        Err(_) => false,
    };
    if runs_past_end {
        return Ok(true);
    }
    const CHUNK: u64 = 64 * 1024;
    let mut at = pos;
    while at < len {
        let n = CHUNK.min(len - at);
        if read(at, n)?.iter().any(|&b| b != 0) {
            return Ok(false);
        }
        at += n;
    }
    Ok(true)
}
