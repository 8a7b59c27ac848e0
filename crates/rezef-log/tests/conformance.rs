//! The `Log` conformance suite run against `EmbeddedLog`, plus the embedded-only behaviours
//! (reopen, close, retention-raised start offset, batch size limit).

use std::path::Path;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use rezef_log::{EmbeddedLog, EmbeddedLogConfig, Error, Log, conformance};
use tempfile::TempDir;

fn open(dir: &Path, segment_bytes: u64) -> Arc<EmbeddedLog> {
    let mut config = EmbeddedLogConfig::new(dir);
    config.segment_bytes = segment_bytes;
    EmbeddedLog::open(config).expect("open log")
}

fn fresh(segment_bytes: u64) -> (TempDir, Arc<dyn Log>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let log: Arc<dyn Log> = open(dir.path(), segment_bytes);
    (dir, log)
}

rezef_log::conformance_tests!(async { Some(fresh(EmbeddedLogConfig::DEFAULT_SEGMENT_BYTES)) });

/// The whole suite again with tiny segments, so that every behaviour also holds across
/// segment boundaries (nearly every batch starts a new segment).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_all_with_tiny_segments() {
    let dirs = Arc::new(Mutex::new(Vec::new()));
    conformance::run_all(|| {
        let dirs = Arc::clone(&dirs);
        async move {
            let (dir, log) = fresh(100);
            dirs.lock().expect("dirs").push(dir);
            log
        }
    })
    .await;
}

fn payloads(tag: &str, n: usize) -> Vec<Bytes> {
    (0..n).map(|i| Bytes::from(format!("{tag}-{i}"))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopen_keeps_everything() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), 300);
    let mut appended = Vec::new();
    for i in 0..40 {
        appended.push(
            log.append(payloads(&format!("b{i}"), i % 5 + 1))
                .await
                .expect("append"),
        );
    }
    let before = log.read(0, 10_000).await.expect("read");
    let end = log.end_offset();
    assert!(log.segment_count() > 3, "test should span several segments");
    log.close().await;
    drop(log);

    let log = open(dir.path(), 300);
    assert_eq!(log.end_offset(), end);
    assert_eq!(log.start_offset(), 0);
    let after = log.read(0, 10_000).await.expect("read after reopen");
    assert_eq!(after, before, "records changed across reopen");
    // Time lookups work on the (lazily indexed) sealed segments of the reopened log.
    for a in &appended {
        let first = log
            .offset_for_time(a.timestamp_ms)
            .await
            .expect("offset_for_time");
        assert!(first <= a.first_offset);
        assert!(after[first as usize].timestamp_ms >= a.timestamp_ms);
        assert!(first == 0 || after[first as usize - 1].timestamp_ms < a.timestamp_ms);
    }
    // Appending continues where it left off, with a timestamp no lower than before.
    let next = log
        .append(payloads("more", 2))
        .await
        .expect("append after reopen");
    assert_eq!(next.first_offset, end);
    assert!(next.timestamp_ms >= appended.last().expect("appended").timestamp_ms);
    log.close().await;
    drop(log);

    let log = open(dir.path(), 300);
    assert_eq!(log.end_offset(), end + 2);
    let tail = log.read(end, 10).await.expect("read");
    assert_eq!(
        tail.iter().map(|r| r.payload.clone()).collect::<Vec<_>>(),
        payloads("more", 2)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_stops_the_writer_and_keeps_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let log = open(dir.path(), EmbeddedLogConfig::DEFAULT_SEGMENT_BYTES);
        log.append(payloads("x", 2)).await.expect("append");
    } // dropped without close()
    let log = open(dir.path(), EmbeddedLogConfig::DEFAULT_SEGMENT_BYTES);
    assert_eq!(log.end_offset(), 2);
}

/// The embedded log's start offset is its first segment's base: removing old segment files
/// (what retention will do) raises it, and reads below it fail with `OffsetOutOfRange`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_offset_follows_the_first_segment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), 100);
    for i in 0..10 {
        log.append(payloads(&format!("b{i}"), 3))
            .await
            .expect("append");
    }
    let end = log.end_offset();
    log.close().await;
    drop(log);
    std::fs::remove_file(dir.path().join("00000000000000000000.log"))
        .expect("remove first segment");

    let log = open(dir.path(), 100);
    let start = log.start_offset();
    assert!(start > 0 && start < end, "start {start}");
    match log.read(start - 1, 10).await {
        Err(Error::OffsetOutOfRange {
            requested,
            start: s,
            end: e,
        }) => assert_eq!((requested, s, e), (start - 1, start, end)),
        other => panic!("expected OffsetOutOfRange, got {other:?}"),
    }
    assert!(matches!(
        log.read(0, 10).await,
        Err(Error::OffsetOutOfRange { .. })
    ));
    let records = log.read(start, 100).await.expect("read from start");
    assert_eq!(records.len() as u64, end - start);
    assert_eq!(
        log.offset_for_time(i64::MIN)
            .await
            .expect("offset_for_time"),
        start
    );
    conformance::out_of_range(log.clone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_size_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = EmbeddedLogConfig::new(dir.path());
    config.max_batch_bytes = 1000;
    let log = EmbeddedLog::open(config).expect("open");
    // 100-byte header + 2 * (4 + 446) = 1000: exactly at the limit.
    let fits = vec![Bytes::from(vec![1u8; 446]), Bytes::from(vec![2u8; 446])];
    log.append(fits).await.expect("batch at the limit");
    let too_big = vec![Bytes::from(vec![1u8; 447]), Bytes::from(vec![2u8; 446])];
    match log.append(too_big).await {
        Err(Error::BatchTooLarge { bytes, limit }) => assert_eq!((bytes, limit), (1001, 1000)),
        other => panic!("expected BatchTooLarge, got {other:?}"),
    }
    assert_eq!(log.end_offset(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_a_missing_directory_creates_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nested = dir.path().join("a").join("b");
    let log = open(&nested, 1024);
    assert!(nested.join("00000000000000000000.log").is_file());
    assert_eq!((log.start_offset(), log.end_offset()), (0, 0));
    // Unrelated files in the directory are ignored.
    std::fs::write(nested.join("README"), b"not a segment").expect("write");
    log.close().await;
    drop(log);
    let log = open(&nested, 1024);
    assert_eq!(log.end_offset(), 0);
    log.append(payloads("x", 1)).await.expect("append");
}

#[tokio::test]
async fn a_second_open_of_the_same_directory_is_refused_until_the_first_closes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = EmbeddedLog::open(EmbeddedLogConfig::new(dir.path())).expect("first open");
    let error = EmbeddedLog::open(EmbeddedLogConfig::new(dir.path())).expect_err("locked");
    assert!(matches!(error, rezef_log::Error::Locked { .. }), "{error}");
    first.close().await;
    drop(first);
    EmbeddedLog::open(EmbeddedLogConfig::new(dir.path())).expect("open after close");
}
