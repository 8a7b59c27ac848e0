//! Opening an embedded log whose last segment holds any bytes (`rezef_log::EmbeddedLog::open`,
//! the recovery of `FORMAT.md`), checked against an independent reading of the format: open
//! never panics; it fails with `Error::Corrupt` exactly when a frame that passes its CRC
//! breaks an invariant, and otherwise cuts the file after the last whole valid frame, where a
//! torn or damaged frame starts, and keeps every record before the cut. The recovered log
//! reads those records back, takes a new append, and opens again with it. Offsets end at
//! `OFFSET_LIMIT`: a segment reaching past it is corrupt, a log at it refuses appends.
//!
//! The input is the segment file, of base offset 0; or `B`, a little-endian base offset in 8
//! bytes, and the file.

#![no_main]

use std::path::PathBuf;
use std::sync::LazyLock;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use rezef_log::{EmbeddedLog, EmbeddedLogConfig, Error, Log, OFFSET_LIMIT};

/// The header of a version 1 frame; a version 2 frame's (with the hash chain) is longer.
const HEADER_LEN_V1: usize = 36;
const HEADER_LEN_V2: usize = 100;

/// What the format says opening the segment gives.
#[derive(Debug, PartialEq)]
enum Expected<'a> {
    /// The file cut to `keep` bytes, holding these records (offset, timestamp, payload).
    Open {
        keep: usize,
        records: Vec<(u64, i64, &'a [u8])>,
    },
    /// A frame that passes its CRC but is inconsistent: refused, nothing cut.
    Corrupt,
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

/// The recovery of a last segment, read from `FORMAT.md` (invariants 1-7).
fn expected(base: u64, file: &[u8]) -> Expected<'_> {
    if base > OFFSET_LIMIT {
        return Expected::Corrupt;
    }
    let mut pos = 0;
    let mut next = base;
    let mut last_ts = None;
    let mut records = Vec::new();
    while pos < file.len() {
        let rest = &file[pos..];
        // The version byte says how long the header is (version 2: 100 bytes, others 36),
        // before the CRC can vouch for it.
        let header_len = match rest.get(8) {
            Some(2) => HEADER_LEN_V2,
            _ => HEADER_LEN_V1,
        };
        if rest.len() < header_len || rest[..4] != *b"RZLG" {
            break;
        }
        let len = u32_at(rest, 12) as usize;
        if len < header_len || len > rest.len() {
            break;
        }
        let frame = &rest[..len];
        if crc32c::crc32c(&frame[8..]) != u32_at(frame, 4) {
            break;
        }
        // Past its CRC: whatever is wrong now is corruption, not a torn write.
        let (count, ts) = (
            u32_at(frame, 24),
            i64::from_le_bytes(frame[28..36].try_into().expect("8 bytes")),
        );
        if !matches!(frame[8], 1 | 2) || frame[9..12] != [0; 3] || count == 0 {
            return Expected::Corrupt;
        }
        let mut at = header_len;
        let mut payloads = Vec::new();
        for _ in 0..count {
            if frame.len() - at < 4 {
                return Expected::Corrupt;
            }
            let n = u32_at(frame, at) as usize;
            if frame.len() - at - 4 < n {
                return Expected::Corrupt;
            }
            payloads.push(&frame[at + 4..at + 4 + n]);
            at += 4 + n;
        }
        if at != frame.len() || u64_at(frame, 16) != next || last_ts.is_some_and(|t| ts < t) {
            return Expected::Corrupt;
        }
        if next
            .checked_add(u64::from(count))
            .is_none_or(|end| end > OFFSET_LIMIT)
        {
            return Expected::Corrupt;
        }
        for payload in payloads {
            records.push((next, ts, payload));
            next += 1;
        }
        last_ts = Some(ts);
        pos += len;
    }
    Expected::Open { keep: pos, records }
}

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime")
});

/// This process's log directory, emptied for every input.
static DIR: LazyLock<PathBuf> = LazyLock::new(|| {
    std::env::temp_dir().join(format!("rezef-fuzz-segment-{}", std::process::id()))
});

fn open() -> rezef_log::Result<std::sync::Arc<EmbeddedLog>> {
    let mut config = EmbeddedLogConfig::new(DIR.as_path());
    config.fsync = false;
    EmbeddedLog::open(config)
}

fuzz_target!(|input: &[u8]| {
    let (base, file) = match input {
        [b'B', rest @ ..] if rest.len() >= 8 => (u64_at(rest, 0), &rest[8..]),
        _ => (0, input),
    };
    let _ = std::fs::remove_dir_all(DIR.as_path());
    std::fs::create_dir_all(DIR.as_path()).expect("the log directory");
    let path = DIR.join(format!("{base:020}.log"));
    std::fs::write(&path, file).expect("the segment");

    let expected = expected(base, file);
    let log = match (open(), &expected) {
        (Ok(log), Expected::Open { .. }) => log,
        (Err(Error::Corrupt { .. }), Expected::Corrupt) => {
            let kept = std::fs::read(&path).expect("the segment");
            assert!(kept == file, "a corrupt segment is left as it was");
            return;
        }
        (Ok(_), Expected::Corrupt) => panic!("a checksummed inconsistent frame was accepted"),
        (Err(e), _) => panic!("open failed: {e}; expected {expected:?}"),
    };
    let Expected::Open { keep, records } = expected else {
        unreachable!("matched above");
    };
    let kept = std::fs::read(&path).expect("the segment");
    assert!(
        kept == file[..keep],
        "cut after the last whole valid frame ({keep} bytes)"
    );
    let end = base + records.len() as u64;
    assert_eq!(log.end_offset(), end);
    RUNTIME.block_on(async move {
        let read = log
            .read(base, records.len() + 1)
            .await
            .expect("the records read");
        let read: Vec<_> = read
            .iter()
            .map(|r| (r.offset, r.timestamp_ms, &r.payload[..]))
            .collect();
        assert_eq!(read, records, "every record before the cut reads back");
        let appended = log.append(vec![Bytes::from_static(b"after")]).await;
        log.close().await;
        drop(log); // and its lock on the directory
        if end == OFFSET_LIMIT {
            assert!(
                matches!(appended, Err(Error::Refused(_))),
                "a full log refuses appends"
            );
            return;
        }
        let appended = appended.expect("a recovered log takes appends");
        assert_eq!(appended.first_offset, end);
        let log = open().expect("the log opens again");
        assert_eq!(log.end_offset(), end + 1);
        let last = log.read(end, 1).await.expect("the appended record reads");
        assert_eq!(last[0].payload, Bytes::from_static(b"after"));
        log.close().await;
    });
});
