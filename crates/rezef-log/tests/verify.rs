//! Tamper evidence of the embedded log, on real files: a log of many batches over several
//! segments, tampered with in every way an editor of the files could (a changed byte anywhere,
//! a frame deleted, inserted or moved, a segment removed, a frame rewritten with its checksum
//! or its hash recomputed), must be reported by `verify` at the first offset that no longer
//! holds what was appended. The frames are located by this file's own reading of FORMAT.md,
//! not by the crate's code.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use rezef_log::{
    BreakKind, Broken, ChainHash, EmbeddedLog, EmbeddedLogConfig, Log, Verdict, Verified, verify,
};
use tempfile::TempDir;

use common::segments;

/// The version 2 header (FORMAT.md): fixed fields, previous chain, own chain.
const HEADER_LEN: usize = 100;
const PREVIOUS_AT: usize = 36;
const CHAIN_AT: usize = 68;

/// A frame as found in a segment file.
#[derive(Debug, Clone)]
struct Frame {
    segment: PathBuf,
    pos: usize,
    len: usize,
    base: u64,
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

/// Every frame of the log in `dir`, in order.
fn frames(dir: &Path) -> Vec<Frame> {
    let mut out = Vec::new();
    for segment in segments(dir) {
        let bytes = fs::read(&segment).expect("read segment");
        let mut pos = 0;
        while pos < bytes.len() {
            let len = u32_at(&bytes, pos + 12) as usize;
            out.push(Frame {
                segment: segment.clone(),
                pos,
                len,
                base: u64_at(&bytes, pos + 16),
            });
            pos += len;
        }
    }
    out
}

fn frame_bytes(frame: &Frame) -> Vec<u8> {
    fs::read(&frame.segment).expect("read")[frame.pos..frame.pos + frame.len].to_vec()
}

fn copy_dir(from: &Path) -> TempDir {
    let to = tempfile::tempdir().expect("tempdir");
    for entry in fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        fs::copy(entry.path(), to.path().join(entry.file_name())).expect("copy");
    }
    to
}

/// The same frame in a copy of the log.
fn in_copy(frame: &Frame, copy: &TempDir) -> PathBuf {
    copy.path()
        .join(frame.segment.file_name().expect("segment name"))
}

/// Replaces bytes `[from, to)` of `path` with `with`.
fn splice(path: &Path, from: usize, to: usize, with: &[u8]) {
    let mut bytes = fs::read(path).expect("read");
    bytes.splice(from..to, with.iter().copied());
    fs::write(path, bytes).expect("write");
}

/// Recomputes a frame's CRC after an edit, as a forger would.
fn reseal(frame: &mut [u8]) {
    let crc = crc32c::crc32c(&frame[8..]);
    frame[4..8].copy_from_slice(&crc.to_le_bytes());
}

/// Recomputes a version 2 frame's chain hash (then its CRC), as a forger who read FORMAT.md
/// would: BLAKE3 of the previous chain, the magic, bytes 8..36 and the records.
fn rehash(frame: &mut [u8]) {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&frame[PREVIOUS_AT..CHAIN_AT]);
    hasher.update(&frame[0..4]);
    hasher.update(&frame[8..36]);
    hasher.update(&frame[HEADER_LEN..]);
    frame[CHAIN_AT..HEADER_LEN].copy_from_slice(hasher.finalize().as_bytes());
    reseal(frame);
}

/// A log of 80 batches of 1 to 4 records over many small segments.
async fn written_log() -> (TempDir, u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = EmbeddedLogConfig::new(dir.path());
    config.segment_bytes = 1500;
    config.fsync = false;
    let log = EmbeddedLog::open(config).expect("open");
    for batch in 0..80usize {
        let records = (0..batch % 4 + 1)
            .map(|i| {
                Bytes::from(format!(
                    "batch {batch} record {i} {}",
                    "x".repeat(batch % 7)
                ))
            })
            .collect();
        log.append(records).await.expect("append");
    }
    let end = log.end_offset();
    assert!(log.segment_count() >= 6, "several segments");
    log.close().await;
    drop(log);
    (dir, end)
}

fn intact(dir: &Path) -> Verified {
    match verify(dir).expect("verify reads the log") {
        Verdict::Intact(verified) => verified,
        Verdict::Broken(broken) => panic!("a whole log reported broken: {broken}"),
    }
}

fn expect_broken(dir: &Path, what: &str) -> Broken {
    match verify(dir).expect("verify reads the log") {
        Verdict::Broken(broken) => broken,
        Verdict::Intact(verified) => panic!("{what}: undetected, verified {verified:?}"),
    }
}

/// A tiny deterministic generator, so that a failure names a reproducible position.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

#[tokio::test]
async fn a_whole_log_verifies_with_its_head() {
    // Given a log written over several segments
    let (dir, end) = written_log().await;
    let all = frames(dir.path());
    // When it is verified
    let verified = intact(dir.path());
    // Then every frame is accounted for, chained from the genesis value, and the head is the
    // last frame's chain hash
    let last = frame_bytes(all.last().expect("frames"));
    assert_eq!(verified.start_offset, 0);
    assert_eq!(verified.end_offset, end);
    assert_eq!(verified.frames, all.len() as u64);
    assert_eq!(verified.segments, segments(dir.path()).len());
    assert_eq!(verified.unchained_frames, 0);
    assert_eq!(verified.chained_from, Some(0));
    assert_eq!(verified.predecessor, ChainHash::GENESIS);
    let head = verified.head.expect("a head");
    assert_eq!(&head.0[..], &last[CHAIN_AT..HEADER_LEN]);
    assert_eq!(head.to_hex().len(), 64);
}

#[tokio::test]
async fn a_flipped_byte_anywhere_is_named_at_its_frame() {
    let (dir, _) = written_log().await;
    let all = frames(dir.path());
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    // Every header field of a few frames, then random bytes anywhere.
    let mut targets: Vec<(usize, usize)> = Vec::new();
    for frame in [0, 1, all.len() / 2, all.len() - 1] {
        for at in [0, 5, 8, 10, 13, 17, 25, 30, 40, 67, 68, 99, 100, 104] {
            targets.push((frame, at.min(all[frame].len - 1)));
        }
    }
    for _ in 0..150 {
        let frame = rng.below(all.len());
        targets.push((frame, rng.below(all[frame].len)));
    }
    for (index, at) in targets {
        // Given a copy of the log with one byte of one frame changed
        let frame = &all[index];
        let copy = copy_dir(dir.path());
        let path = in_copy(frame, &copy);
        let mut bytes = fs::read(&path).expect("read");
        bytes[frame.pos + at] ^= 1 << rng.below(8);
        fs::write(&path, bytes).expect("write");
        // When it is verified
        let broken = expect_broken(copy.path(), &format!("byte {at} of frame {index}"));
        // Then the first offset named is that frame's
        assert_eq!(
            (broken.offset, broken.position),
            (frame.base, frame.pos as u64),
            "byte {at} of frame {index}: {broken}"
        );
    }
}

#[tokio::test]
async fn a_changed_record_with_its_checksum_recomputed_is_named() {
    let (dir, _) = written_log().await;
    let all = frames(dir.path());
    let target = &all[all.len() / 3];
    // Given a record changed and the frame's CRC recomputed
    let copy = copy_dir(dir.path());
    let mut bytes = frame_bytes(target);
    bytes[HEADER_LEN + 4] ^= 0x20;
    reseal(&mut bytes);
    splice(
        &in_copy(target, &copy),
        target.pos,
        target.pos + target.len,
        &bytes,
    );
    // Then the chain hash no longer matches the frame
    let broken = expect_broken(copy.path(), "resealed frame");
    assert_eq!(broken.offset, target.base);
    assert_eq!(broken.kind, BreakKind::Rehashed);

    // Given the frame's chain hash recomputed too
    rehash(&mut bytes);
    splice(
        &in_copy(target, &copy),
        target.pos,
        target.pos + target.len,
        &bytes,
    );
    // Then the next frame no longer chains from it
    let broken = expect_broken(copy.path(), "rehashed frame");
    let next = &all[all.len() / 3 + 1];
    assert_eq!(broken.offset, next.base);
    assert!(
        matches!(broken.kind, BreakKind::Unlinked { .. }),
        "{broken}"
    );
}

#[tokio::test]
async fn rewriting_the_last_frame_and_its_hash_changes_the_head() {
    let (dir, _) = written_log().await;
    let head = intact(dir.path()).head;
    let all = frames(dir.path());
    let last = all.last().expect("frames");
    // Given the last frame rewritten with its hash recomputed: nothing after it to break
    let copy = copy_dir(dir.path());
    let mut bytes = frame_bytes(last);
    bytes[HEADER_LEN + 4] ^= 0x20;
    rehash(&mut bytes);
    splice(&in_copy(last, &copy), last.pos, last.pos + last.len, &bytes);
    // Then only the head kept elsewhere shows it
    let verified = intact(copy.path());
    assert_ne!(verified.head, head);
}

#[tokio::test]
async fn a_deleted_frame_is_named() {
    let (dir, _) = written_log().await;
    let all = frames(dir.path());
    for index in [0, 1, all.len() / 2, all.len() - 2] {
        // Given a copy without one frame
        let frame = &all[index];
        let copy = copy_dir(dir.path());
        splice(
            &in_copy(frame, &copy),
            frame.pos,
            frame.pos + frame.len,
            &[],
        );
        // Then verify names its offset
        let broken = expect_broken(copy.path(), &format!("frame {index} deleted"));
        assert_eq!(broken.offset, frame.base, "frame {index}: {broken}");
    }
}

#[tokio::test]
async fn a_deleted_frame_whose_successor_was_renumbered_breaks_the_chain() {
    let (dir, _) = written_log().await;
    let all = frames(dir.path());
    let index = (2..all.len())
        .find(|&i| all[i - 1].segment == all[i].segment)
        .expect("two frames in one segment");
    let (gone, next) = (&all[index - 1], &all[index]);
    // Given a frame deleted and the next one given its offset and a valid CRC
    let copy = copy_dir(dir.path());
    let mut bytes = frame_bytes(next);
    bytes[16..24].copy_from_slice(&gone.base.to_le_bytes());
    reseal(&mut bytes);
    splice(&in_copy(gone, &copy), gone.pos, next.pos + next.len, &bytes);
    // Then the chain breaks at the deleted frame's offset
    let broken = expect_broken(copy.path(), "renumbered successor");
    assert_eq!(broken.offset, gone.base);
    assert!(
        matches!(broken.kind, BreakKind::Unlinked { .. }),
        "{broken}"
    );
}

#[tokio::test]
async fn an_inserted_frame_is_named() {
    let (dir, _) = written_log().await;
    let all = frames(dir.path());
    // Given a valid frame (CRC and all) copied from earlier in the log, inserted after frame 20
    let copy = copy_dir(dir.path());
    let (source, after) = (&all[3], &all[20]);
    let end = after.pos + after.len;
    splice(&in_copy(after, &copy), end, end, &frame_bytes(source));
    // Then verify names the offset where it stands
    let broken = expect_broken(copy.path(), "inserted frame");
    assert_eq!(broken.offset, all[21].base);
    assert_eq!(broken.kind, BreakKind::Unexpected { found: source.base });
}

#[tokio::test]
async fn swapped_frames_are_named() {
    let (dir, _) = written_log().await;
    let all = frames(dir.path());
    let index = (1..all.len())
        .find(|&i| all[i - 1].segment == all[i].segment && i > all.len() / 2)
        .expect("two frames in one segment");
    let (a, b) = (&all[index - 1], &all[index]);
    // Given two neighbouring frames swapped
    let copy = copy_dir(dir.path());
    let mut swapped = frame_bytes(b);
    swapped.extend(frame_bytes(a));
    splice(&in_copy(a, &copy), a.pos, b.pos + b.len, &swapped);
    // Then verify names the first of them
    let broken = expect_broken(copy.path(), "swapped frames");
    assert_eq!(broken.offset, a.base);
    assert_eq!(broken.kind, BreakKind::Missing { found: b.base });
}

#[tokio::test]
async fn a_deleted_middle_segment_is_named() {
    let (dir, _) = written_log().await;
    let files = segments(dir.path());
    let middle = &files[files.len() / 2];
    let base: u64 = middle
        .file_stem()
        .and_then(|s| s.to_str())
        .and_then(|s| s.parse().ok())
        .expect("segment base");
    // Given a copy without a middle segment file
    let copy = copy_dir(dir.path());
    fs::remove_file(copy.path().join(middle.file_name().expect("name"))).expect("remove");
    // Then verify names its first offset
    let broken = expect_broken(copy.path(), "segment deleted");
    assert_eq!(broken.offset, base);
    assert!(matches!(broken.kind, BreakKind::Missing { .. }), "{broken}");
}

#[tokio::test]
async fn retention_keeps_the_rest_verifiable() {
    let (dir, end) = written_log().await;
    let whole = intact(dir.path());
    let files = segments(dir.path());
    // Given the two first segments deleted, as retention does
    let copy = copy_dir(dir.path());
    for file in &files[..2] {
        fs::remove_file(copy.path().join(file.file_name().expect("name"))).expect("remove");
    }
    let first = frames(copy.path()).remove(0);
    // Then the rest verifies, from the predecessor its first frame names, to the same head
    let verified = intact(copy.path());
    assert_eq!(verified.start_offset, first.base);
    assert_eq!(verified.chained_from, Some(first.base));
    assert_eq!(
        &verified.predecessor.0[..],
        &frame_bytes(&first)[PREVIOUS_AT..CHAIN_AT]
    );
    assert_eq!((verified.end_offset, verified.head), (end, whole.head));

    // And a change in the first kept frame is still caught
    let mut bytes = frame_bytes(&first);
    bytes[HEADER_LEN + 4] ^= 1;
    reseal(&mut bytes);
    splice(
        &in_copy(&first, &copy),
        first.pos,
        first.pos + first.len,
        &bytes,
    );
    assert_eq!(
        expect_broken(copy.path(), "first kept frame").offset,
        first.base
    );
}

#[tokio::test]
async fn a_torn_tail_is_named_and_recovery_makes_the_log_whole() {
    let (dir, _) = written_log().await;
    let all = frames(dir.path());
    let last = all.last().expect("frames");
    // Given the last frame cut short, as a crash leaves it
    let copy = copy_dir(dir.path());
    let path = in_copy(last, &copy);
    let cut = last.pos + last.len / 2;
    splice(&path, cut, last.pos + last.len, &[]);
    let broken = expect_broken(copy.path(), "torn tail");
    assert_eq!(broken.offset, last.base);
    assert!(
        matches!(broken.kind, BreakKind::Incomplete { .. }),
        "{broken}"
    );
    // When the log is opened (recovery cuts the tail) and appended to
    let log = EmbeddedLog::open(EmbeddedLogConfig::new(copy.path())).expect("open");
    log.append(vec![Bytes::from_static(b"after the crash")])
        .await
        .expect("append");
    log.close().await;
    drop(log);
    // Then the log verifies again, the new frame chained to the last whole one
    assert_eq!(intact(copy.path()).end_offset, last.base + 1);
}

/// A version 1 frame, built from FORMAT.md's version 1 table.
fn frame_v1(base: u64, timestamp_ms: i64, payloads: &[&[u8]]) -> Vec<u8> {
    let len = 36 + payloads.iter().map(|p| 4 + p.len()).sum::<usize>();
    let mut out = Vec::new();
    out.extend_from_slice(b"RZLG");
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&[1, 0, 0, 0]);
    out.extend_from_slice(&u32::try_from(len).expect("small").to_le_bytes());
    out.extend_from_slice(&base.to_le_bytes());
    out.extend_from_slice(&u32::try_from(payloads.len()).expect("few").to_le_bytes());
    out.extend_from_slice(&timestamp_ms.to_le_bytes());
    for p in payloads {
        out.extend_from_slice(&u32::try_from(p.len()).expect("small").to_le_bytes());
        out.extend_from_slice(p);
    }
    reseal(&mut out);
    out
}

#[tokio::test]
async fn a_log_begun_in_version_1_is_read_and_chained_on() {
    // Given a log written by a build before the chain: version 1 frames in two segments
    let dir = tempfile::tempdir().expect("tempdir");
    let mut first = Vec::new();
    for i in 0..4u64 {
        first.extend(frame_v1(i * 2, 1_000 + i as i64, &[b"old a", b"old b"]));
    }
    fs::write(dir.path().join(format!("{:020}.log", 0)), first).expect("write");
    fs::write(
        dir.path().join(format!("{:020}.log", 8)),
        frame_v1(8, 2_000, &[b"old c"]),
    )
    .expect("write");
    // When this build opens it and appends, over more segments
    let mut config = EmbeddedLogConfig::new(dir.path());
    config.segment_bytes = 400;
    let log = EmbeddedLog::open(config.clone()).expect("open");
    for i in 0..6 {
        log.append(vec![Bytes::from(format!("new {i}"))])
            .await
            .expect("append");
    }
    log.close().await;
    drop(log);
    // Then the old records read as before, and the new follow them
    let log = EmbeddedLog::open(config).expect("reopen");
    let records = log.read(0, 100).await.expect("read");
    let payloads: Vec<&[u8]> = records.iter().map(|r| &r.payload[..]).collect();
    assert_eq!(&payloads[..3], &[&b"old a"[..], b"old b", b"old a"]);
    assert_eq!(payloads[8], b"old c");
    assert_eq!(payloads[14], b"new 5");
    assert_eq!(records[8].timestamp_ms, 2_000);
    log.close().await;
    drop(log);
    // And verify covers the old frames by their CRCs and chains the new from the genesis value
    let verified = intact(dir.path());
    assert_eq!(verified.end_offset, 15);
    assert_eq!(verified.unchained_frames, 5);
    assert_eq!(verified.chained_from, Some(9));
    assert_eq!(verified.predecessor, ChainHash::GENESIS);
    let first_chained = frames(dir.path())
        .into_iter()
        .find(|f| f.base == 9)
        .expect("first chained frame");
    assert_eq!(
        &frame_bytes(&first_chained)[PREVIOUS_AT..CHAIN_AT],
        &[0; 32]
    );

    // And a version 1 frame slipped in after chained ones is named
    let last = frames(dir.path()).pop().expect("frames");
    let bytes = fs::read(&last.segment).expect("read");
    let mut with_old = bytes.clone();
    with_old.extend(frame_v1(15, i64::MAX, &[b"forged"]));
    fs::write(&last.segment, with_old).expect("write");
    let broken = expect_broken(dir.path(), "version 1 after version 2");
    assert_eq!((broken.offset, broken.kind), (15, BreakKind::Downgraded));
}

#[tokio::test]
async fn an_empty_or_missing_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let verified = intact(dir.path());
    assert_eq!((verified.end_offset, verified.head), (0, None));
    assert!(verify(&dir.path().join("absent")).is_err());
}
