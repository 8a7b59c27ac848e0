//! Crash recovery of the embedded log, on real files.
//!
//! A crash can leave the last segment with any prefix of the bytes that were being written
//! (an unacknowledged frame cut anywhere, or garbage where the file was extended). Recovery must
//! cut exactly that frame and keep everything before it. Sealed segments, by contrast, are never
//! repaired: damage there is reported as `Error::Corrupt` — when the damaged segment is first
//! read, not at open (sealed segments are trusted at open for speed; the one exception is the
//! segment before an empty last segment, which open indexes to recover the timestamp floor).

mod common;

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use rezef_log::{Corruption, EmbeddedLog, EmbeddedLogConfig, Error, Log, OFFSET_LIMIT};
use tempfile::TempDir;

use common::segments;

/// The version 2 frame header (FORMAT.md).
const HEADER_LEN: u64 = 100;

fn open(dir: &Path, segment_bytes: u64) -> Arc<EmbeddedLog> {
    try_open(dir, segment_bytes).expect("open log")
}

fn try_open(dir: &Path, segment_bytes: u64) -> rezef_log::Result<Arc<EmbeddedLog>> {
    let mut config = EmbeddedLogConfig::new(dir);
    config.segment_bytes = segment_bytes;
    EmbeddedLog::open(config)
}

async fn shut(log: Arc<EmbeddedLog>) {
    log.close().await;
    drop(log);
}

fn file_len(path: &Path) -> u64 {
    fs::metadata(path).expect("metadata").len()
}

fn copy_dir(from: &Path) -> TempDir {
    let to = tempfile::tempdir().expect("tempdir");
    for entry in fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        fs::copy(entry.path(), to.path().join(entry.file_name())).expect("copy");
    }
    to
}

fn set_len(path: &Path, len: u64) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| f.set_len(len))
        .expect("truncate");
}

fn flip(path: &Path, position: u64) {
    let mut bytes = fs::read(path).expect("read");
    bytes[position as usize] ^= 0xff;
    fs::write(path, bytes).expect("write");
}

fn batch(tag: usize, n: usize) -> Vec<Bytes> {
    (0..n)
        .map(|i| Bytes::from(format!("batch{tag}-rec{i}")))
        .collect()
}

fn frame_len(payloads: &[Bytes]) -> u64 {
    HEADER_LEN + payloads.iter().map(|p| 4 + p.len() as u64).sum::<u64>()
}

async fn payloads_of(log: &EmbeddedLog) -> Vec<Bytes> {
    let records = log.read(0, 100_000).await.expect("read all");
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.offset, i as u64);
    }
    records.into_iter().map(|r| r.payload).collect()
}

/// A log whose last frame sits at a known place in its last segment.
struct Fixture {
    dir: TempDir,
    segment_bytes: u64,
    /// Payloads of every batch but the last.
    kept: Vec<Bytes>,
    /// The last segment file's name and the byte range of the last frame in it.
    last_segment: PathBuf,
    frame_start: u64,
    frame_end: u64,
}

impl Fixture {
    async fn new(segment_bytes: u64) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = open(dir.path(), segment_bytes);
        let mut kept = Vec::new();
        for i in 0..6 {
            let b = batch(i, i % 3 + 1);
            log.append(b.clone()).await.expect("append");
            kept.extend(b);
        }
        shut(log).await;
        let before: Vec<(PathBuf, u64)> = segments(dir.path())
            .into_iter()
            .map(|p| {
                let len = file_len(&p);
                (p, len)
            })
            .collect();

        let log = open(dir.path(), segment_bytes);
        let last = batch(99, 3);
        let appended = log.append(last.clone()).await.expect("append last");
        assert_eq!(appended.first_offset, kept.len() as u64);
        shut(log).await;

        let last_segment = segments(dir.path()).pop().expect("a segment");
        let frame_start = before
            .iter()
            .find(|(p, _)| *p == last_segment)
            .map_or(0, |(_, len)| *len);
        let frame_end = file_len(&last_segment);
        assert_eq!(
            frame_end - frame_start,
            frame_len(&last),
            "frame size per FORMAT.md"
        );
        let name = PathBuf::from(last_segment.file_name().expect("name"));
        Fixture {
            dir,
            segment_bytes,
            kept,
            last_segment: name,
            frame_start,
            frame_end,
        }
    }

    /// Opens a damaged copy and checks that exactly the last frame was dropped; then that the
    /// repaired log accepts an append which survives another reopen.
    async fn expect_last_frame_dropped(&self, damaged: &TempDir, what: &str) {
        let path = damaged.path().join(&self.last_segment);
        let log = open(damaged.path(), self.segment_bytes);
        assert_eq!(
            log.end_offset(),
            self.kept.len() as u64,
            "{what}: end offset"
        );
        assert_eq!(
            payloads_of(&log).await,
            self.kept,
            "{what}: surviving records"
        );
        assert_eq!(
            file_len(&path),
            self.frame_start,
            "{what}: truncated to the last whole frame"
        );

        let appended = log
            .append(vec![Bytes::from_static(b"after-recovery")])
            .await
            .expect("append after recovery");
        assert_eq!(appended.first_offset, self.kept.len() as u64, "{what}");
        shut(log).await;

        let log = open(damaged.path(), self.segment_bytes);
        let mut expected = self.kept.clone();
        expected.push(Bytes::from_static(b"after-recovery"));
        assert_eq!(
            payloads_of(&log).await,
            expected,
            "{what}: after append and reopen"
        );
        shut(log).await;
    }
}

async fn every_truncation_of_the_last_frame(segment_bytes: u64) -> Fixture {
    let fx = Fixture::new(segment_bytes).await;
    for cut in fx.frame_start..fx.frame_end {
        let copy = copy_dir(fx.dir.path());
        set_len(&copy.path().join(&fx.last_segment), cut);
        fx.expect_last_frame_dropped(&copy, &format!("cut at {cut}"))
            .await;
    }
    // And the undamaged log keeps the last frame.
    let log = open(fx.dir.path(), segment_bytes);
    assert_eq!(log.end_offset(), fx.kept.len() as u64 + 3);
    fx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_truncation_of_a_last_frame_mid_segment() {
    let fx = every_truncation_of_the_last_frame(1 << 20).await;
    assert!(fx.frame_start > 0);
    assert_eq!(segments(fx.dir.path()).len(), 1);
}

/// The last frame is alone in a freshly rolled segment: cutting it can leave an empty last
/// segment behind a sealed one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_truncation_of_a_last_frame_that_opened_a_segment() {
    let fx = every_truncation_of_the_last_frame(1).await;
    assert_eq!(fx.frame_start, 0);
    assert!(segments(fx.dir.path()).len() > 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_flipped_byte_in_the_last_frame_drops_it() {
    let fx = Fixture::new(1 << 20).await;
    for position in fx.frame_start..fx.frame_end {
        let copy = copy_dir(fx.dir.path());
        flip(&copy.path().join(&fx.last_segment), position);
        fx.expect_last_frame_dropped(&copy, &format!("flip at {position}"))
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_after_the_last_frame_is_cut() {
    let fx = Fixture::new(1 << 20).await;
    for garbage in [vec![0u8; 4096], vec![0xA5; 10], b"RZLG".to_vec()] {
        let copy = copy_dir(fx.dir.path());
        let path = copy.path().join(&fx.last_segment);
        let mut bytes = fs::read(&path).expect("read");
        bytes.extend_from_slice(&garbage);
        fs::write(&path, bytes).expect("write");
        let log = open(copy.path(), fx.segment_bytes);
        assert_eq!(log.end_offset(), fx.kept.len() as u64 + 3);
        assert_eq!(file_len(&path), fx.frame_end);
        shut(log).await;
    }
}

/// A damaged byte in a frame in the middle of the last segment, with whole frames after it:
/// recovery cannot tell damage from a torn write there (a crash may persist a later frame of
/// an unsynced group before an earlier one), so, as FORMAT.md says, the segment is cut at
/// the first bad frame and the frames after it are dropped, with a warning. (A journey store
/// that had folded them then refuses to start until `rezef rebuild`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_frame_mid_last_segment_cuts_the_segment_there() {
    let fx = Fixture::new(1 << 20).await;
    let copy = copy_dir(fx.dir.path());
    let path = copy.path().join(&fx.last_segment);
    let first = batch(0, 1);
    let second_frame = frame_len(&first);
    // The first payload byte of the second frame.
    flip(&path, second_frame + HEADER_LEN + 4);
    let log = open(copy.path(), fx.segment_bytes);
    assert_eq!(log.end_offset(), first.len() as u64);
    assert_eq!(file_len(&path), second_frame);
    assert_eq!(payloads_of(&log).await, first);
    shut(log).await;
}

/// A frame that passes its checksum but does not follow its predecessor cannot be a torn
/// write; the log refuses to open instead of guessing, and leaves the file alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_but_out_of_sequence_frame_refuses_to_open() {
    let fx = Fixture::new(1 << 20).await;
    let copy = copy_dir(fx.dir.path());
    let path = copy.path().join(&fx.last_segment);
    let mut bytes = fs::read(&path).expect("read");
    let last_frame = bytes[fx.frame_start as usize..fx.frame_end as usize].to_vec();
    bytes.extend_from_slice(&last_frame); // same base offset again
    fs::write(&path, &bytes).expect("write");
    match try_open(copy.path(), fx.segment_bytes) {
        Err(Error::Corrupt {
            position,
            reason: Corruption::OffsetMismatch { .. },
            ..
        }) => assert_eq!(position, fx.frame_end),
        other => panic!("expected Corrupt(OffsetMismatch), got {other:?}"),
    }
    assert_eq!(
        file_len(&path),
        bytes.len() as u64,
        "nothing may be truncated"
    );
}

/// Found by fuzzing (`fuzz/`, target `segment_recovery`): a segment named for base offset
/// 2^64 - 3, holding one valid frame there. Opening it was fine, but a read overflowed an
/// offset and panicked. Offsets end at `OFFSET_LIMIT` (2^63 - 1, Kafka's too): such a segment
/// is refused at open, and nothing is truncated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_segment_whose_offsets_reach_past_the_limit_refuses_to_open() {
    const FRAME: &str = "525a4c475a1e138f0100000029000000fdffffffffffffff01000000050000000000\
                         00000100000061";
    let frame: Vec<u8> = (0..FRAME.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&FRAME[i..i + 2], 16).expect("hex"))
        .collect();
    for (base, bytes) in [(u64::MAX - 2, frame), (OFFSET_LIMIT + 1, Vec::new())] {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(format!("{base:020}.log"));
        fs::write(&path, &bytes).expect("write");
        match try_open(dir.path(), 1024) {
            Err(Error::Corrupt {
                reason: Corruption::PastOffsetLimit { base: found, .. },
                ..
            }) => assert_eq!(found, base),
            other => panic!("expected Corrupt(PastOffsetLimit), got {other:?}"),
        }
        assert_eq!(fs::read(&path).expect("read"), bytes, "nothing truncated");
    }
}

/// A log whose offsets reached `OFFSET_LIMIT` refuses appends, and still opens and reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_log_refuses_appends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = OFFSET_LIMIT - 2;
    fs::write(dir.path().join(format!("{base:020}.log")), b"").expect("write");
    let log = open(dir.path(), 1024);
    log.append(batch(0, 2)).await.expect("the last two offsets");
    assert_eq!(log.end_offset(), OFFSET_LIMIT);
    assert!(matches!(
        log.append(batch(1, 1)).await,
        Err(Error::Refused(_))
    ));
    shut(log).await;
    let log = open(dir.path(), 1024);
    assert_eq!(log.read(base, 10).await.expect("read").len(), 2);
    shut(log).await;
}

/// Builds a multi-segment log; returns its directory and all payloads.
async fn multi_segment_log() -> (TempDir, Vec<Bytes>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), 150);
    let mut all = Vec::new();
    for i in 0..12 {
        let b = batch(i, 2);
        log.append(b.clone()).await.expect("append");
        all.extend(b);
    }
    assert!(log.segment_count() >= 4);
    shut(log).await;
    (dir, all)
}

/// Reads the whole log from 0 and returns the error it must hit.
async fn read_error(log: &EmbeddedLog) -> Error {
    let mut from = 0;
    loop {
        match log.read(from, 3).await {
            Ok(records) if records.is_empty() => panic!("read the whole log without an error"),
            Ok(records) => from = records[records.len() - 1].offset + 1,
            Err(e) => return e,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_payload_in_a_sealed_segment_is_an_error_on_read() {
    let (dir, all) = multi_segment_log().await;
    let files = segments(dir.path());
    let sealed = &files[1];
    // First payload byte of the segment's first record.
    flip(sealed, HEADER_LEN + 4);
    let log = open(dir.path(), 150);
    assert_eq!(
        log.end_offset(),
        all.len() as u64,
        "open trusts sealed segments"
    );
    match read_error(&log).await {
        Error::Corrupt {
            path,
            position,
            reason: Corruption::ChecksumMismatch { .. },
        } => {
            assert_eq!(&path, sealed);
            assert_eq!(position, 0);
        }
        other => panic!("expected Corrupt(ChecksumMismatch), got {other:?}"),
    }
    // Other segments stay readable; the file was not modified.
    let later = segments(dir.path())[2].clone();
    let base: u64 = later
        .file_stem()
        .and_then(|s| s.to_str())
        .and_then(|s| s.parse().ok())
        .expect("base offset from name");
    let records = log.read(base, 1000).await.expect("read later segments");
    assert_eq!(records.len() as u64, all.len() as u64 - base);
    assert_eq!(log.read(0, 1).await.expect("first segment").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_frame_structure_in_a_sealed_segment_is_an_error_on_read() {
    // A bad magic, a sealed segment cut short, and a missing segment.
    let (dir, _) = multi_segment_log().await;
    let files = segments(dir.path());

    let copy = copy_dir(dir.path());
    let path = copy.path().join(files[0].file_name().expect("name"));
    flip(&path, 0);
    let log = open(copy.path(), 150);
    assert!(matches!(
        read_error(&log).await,
        Error::Corrupt {
            reason: Corruption::BadMagic,
            ..
        }
    ));

    let copy = copy_dir(dir.path());
    let path = copy.path().join(files[1].file_name().expect("name"));
    set_len(&path, file_len(&path) - 1);
    let log = open(copy.path(), 150);
    assert!(matches!(
        read_error(&log).await,
        Error::Corrupt {
            reason: Corruption::BadFrameLength { .. },
            ..
        }
    ));

    let copy = copy_dir(dir.path());
    fs::remove_file(copy.path().join(files[1].file_name().expect("name"))).expect("remove");
    let log = open(copy.path(), 150);
    assert!(matches!(
        read_error(&log).await,
        Error::Corrupt {
            reason: Corruption::SegmentGap { .. },
            ..
        }
    ));
}

/// With an empty last segment, open indexes the sealed segment before it (for the timestamp
/// floor), so damage there is reported by `open` itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damage_before_an_empty_last_segment_fails_open() {
    let fx = Fixture::new(1).await;
    assert_eq!(fx.frame_start, 0);
    let copy = copy_dir(fx.dir.path());
    set_len(&copy.path().join(&fx.last_segment), 0);
    let files = segments(copy.path());
    let previous = &files[files.len() - 2];
    set_len(previous, file_len(previous) - 1);
    match try_open(copy.path(), fx.segment_bytes) {
        Err(Error::Corrupt { path, .. }) => assert_eq!(&path, previous),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_directory_and_empty_segment() {
    let dir = tempfile::tempdir().expect("tempdir");
    // An existing, empty directory.
    let log = open(dir.path(), 1024);
    assert_eq!(log.end_offset(), 0);
    shut(log).await;
    let only = segments(dir.path());
    assert_eq!(only.len(), 1);
    assert_eq!(file_len(&only[0]), 0);
    // Reopening the empty segment, then using it.
    let log = open(dir.path(), 1024);
    assert_eq!(log.end_offset(), 0);
    log.append(batch(0, 2)).await.expect("append");
    shut(log).await;
    let log = open(dir.path(), 1024);
    assert_eq!(payloads_of(&log).await, batch(0, 2));
}
