//! The embedded log on a disk that fills up and is freed again, on a real tmpfs of a few MiB
//! (`rezef_log::small_disk`; skipped, saying why, where mounting is not permitted).
//!
//! What must hold: an append the disk cannot take is refused with `Error::NoSpace` and not
//! acknowledged; reads go on; the log's write health says it is failing; once space is free
//! the log takes appends again without a reopen (on the next append, or by its probe when no
//! append comes); and after a reopen every acknowledged record is there exactly once, at its
//! offset, with nothing a failed write left between frames.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rezef_log::small_disk::SmallDisk;
use rezef_log::{EmbeddedLog, EmbeddedLogConfig, Error, Log, WriteHealth};

const DISK_BYTES: u64 = 8 * 1024 * 1024;

fn open(disk: &SmallDisk, segment_bytes: u64) -> Arc<EmbeddedLog> {
    let mut config = EmbeddedLogConfig::new(disk.path().join("log"));
    config.segment_bytes = segment_bytes;
    EmbeddedLog::open(config).expect("open log")
}

fn batch(tag: u64, bytes: usize) -> Vec<Bytes> {
    let mut payload = tag.to_be_bytes().to_vec();
    payload.resize(bytes.max(8), (tag % 251) as u8);
    vec![Bytes::from(payload)]
}

/// Appends batches of `bytes` until one is refused; the acknowledged ones' tags and the
/// refusal.
async fn append_until_refused(
    log: &EmbeddedLog,
    next_tag: &mut u64,
    bytes: usize,
    acked: &mut Vec<u64>,
) -> Error {
    for _ in 0..10_000 {
        let tag = *next_tag;
        *next_tag += 1;
        match log.append(batch(tag, bytes)).await {
            Ok(appended) => {
                assert_eq!(
                    appended.first_offset,
                    acked.len() as u64,
                    "offsets in order"
                );
                acked.push(tag);
            }
            Err(error) => return error,
        }
    }
    panic!("the disk never filled");
}

async fn assert_holds(log: &EmbeddedLog, acked: &[u64]) {
    let records = log.read(0, usize::MAX).await.expect("read");
    let tags: Vec<u64> = records
        .iter()
        .map(|r| u64::from_be_bytes(r.payload[..8].try_into().expect("tag")))
        .collect();
    assert_eq!(tags, acked, "every acknowledged record, once, in order");
    for (i, record) in records.iter().enumerate() {
        assert_eq!(record.offset, i as u64);
    }
    assert_eq!(log.end_offset(), acked.len() as u64);
}

/// `log` holds `acked`, and so does the log reopened from its files.
async fn holds_after_reopen(
    log: Arc<EmbeddedLog>,
    disk: &SmallDisk,
    segment_bytes: u64,
    acked: &[u64],
) {
    assert_holds(&log, acked).await;
    log.close().await;
    drop(log);
    let log = open(disk, segment_bytes);
    assert_holds(&log, acked).await;
    log.close().await;
}

async fn wait_writable(log: &EmbeddedLog, within: Duration) {
    let mut health = log.write_health();
    tokio::time::timeout(within, health.wait_for(WriteHealth::is_writable))
        .await
        .expect("writable again in time")
        .expect("health follows the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_appends_and_the_next_append_after_space_returns_succeeds() {
    let Some(disk) = SmallDisk::mount_or_skip(DISK_BYTES) else {
        return;
    };
    // Given a log with acknowledged records on a disk that is then nearly full
    let log = open(&disk, 1024 * 1024);
    let (mut tag, mut acked) = (0, Vec::new());
    for _ in 0..10 {
        acked.push(tag);
        log.append(batch(tag, 1000)).await.expect("append");
        tag += 1;
    }
    disk.fill_leaving(100 * 1024);

    // When appends go on until the disk is full, the last ones large enough to be written in
    // part
    let refused = append_until_refused(&log, &mut tag, 10 * 1024, &mut acked).await;
    let big = log.append(batch(tag, 300 * 1024)).await;
    tag += 1;

    // Then they are refused as a full disk, health says so, and reads go on
    assert!(matches!(refused, Error::NoSpace { .. }), "{refused}");
    assert!(refused.to_string().starts_with("the log's disk is full"));
    assert!(matches!(big, Err(Error::NoSpace { .. })), "{big:?}");
    let health = log.write_health().borrow().clone();
    assert!(
        matches!(health, WriteHealth::Failing { no_space: true, .. }),
        "{health:?}"
    );
    assert_holds(&log, &acked).await;

    // When space is freed, the very next append is written
    disk.free();
    let appended = log
        .append(batch(tag, 1000))
        .await
        .expect("append after free");
    assert_eq!(appended.first_offset, acked.len() as u64);
    acked.push(tag);
    assert!(log.write_health().borrow().is_writable());
    for _ in 0..5 {
        tag += 1;
        log.append(batch(tag, 20 * 1024)).await.expect("append");
        acked.push(tag);
    }
    // And after a reopen everything acknowledged is there, nothing else
    holds_after_reopen(log, &disk, 1024 * 1024, &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_append_coming_the_probe_finds_the_freed_space() {
    let Some(disk) = SmallDisk::mount_or_skip(DISK_BYTES) else {
        return;
    };
    // Given a log with small segments that filled its disk, rolls included
    let log = open(&disk, 64 * 1024);
    disk.fill_leaving(512 * 1024);
    let (mut tag, mut acked) = (0, Vec::new());
    let refused = append_until_refused(&log, &mut tag, 30 * 1024, &mut acked).await;
    assert!(matches!(refused, Error::NoSpace { .. }), "{refused}");
    assert!(log.segment_count() > 2, "{}", log.segment_count());
    assert!(!log.write_health().borrow().is_writable());

    // When space is freed and nobody appends
    disk.free();

    // Then the log's probe finds out within a few seconds
    wait_writable(&log, Duration::from_secs(5)).await;
    for _ in 0..40 {
        log.append(batch(tag, 30 * 1024)).await.expect("append");
        acked.push(tag);
        tag += 1;
    }
    holds_after_reopen(log, &disk, 64 * 1024, &acked).await;
}
