//! The behaviour every [`Log`] implementation must show, as executable checks.
//!
//! Enabled by the `conformance` feature. Each `pub async fn` takes a **fresh, empty** log and
//! panics (with a message) when the implementation deviates; [`run_all`] runs them all, asking
//! `make` for a new log each time. An implementation's test file is then just:
//!
//! ```no_run
//! use std::sync::Arc;
//! use rezef_log::{EmbeddedLog, EmbeddedLogConfig, Log};
//!
//! #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
//! async fn conformance() {
//!     let dir = tempfile::tempdir().expect("tempdir");
//!     let mut n = 0;
//!     rezef_log::conformance::run_all(|| {
//!         n += 1;
//!         let config = EmbeddedLogConfig::new(dir.path().join(n.to_string()));
//!         async move { EmbeddedLog::open(config).expect("open") as Arc<dyn Log> }
//!     })
//!     .await;
//! }
//! ```
//!
//! Crash-related guarantees (atomicity across crashes, recovery) cannot be checked through the
//! trait; each implementation tests them separately (see `tests/recovery.rs` for the embedded
//! log). The timeouts below only turn a hang into a failure; nothing here asserts speed.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::{Error, Log, Offset, Record};

/// Generous bound after which an operation that should complete is considered hung.
const HANG: Duration = Duration::from_secs(30);

async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(HANG, fut).await {
        Ok(v) => v,
        Err(_) => panic!("{what}: did not complete within {HANG:?}"),
    }
}

fn payload(tag: &str, n: usize) -> Bytes {
    Bytes::from(format!("{tag}-{n}"))
}

async fn append_ok(log: &Arc<dyn Log>, payloads: Vec<Bytes>) -> crate::Appended {
    match within("append", log.append(payloads)).await {
        Ok(a) => a,
        Err(e) => panic!("append failed: {e}"),
    }
}

async fn read_ok(log: &Arc<dyn Log>, from: Offset, max: usize) -> Vec<Record> {
    match within("read", log.read(from, max)).await {
        Ok(r) => r,
        Err(e) => panic!("read({from}, {max}) failed: {e}"),
    }
}

/// Reads everything from `start_offset()` to `end_offset()`.
async fn read_all(log: &Arc<dyn Log>) -> Vec<Record> {
    let mut out = Vec::new();
    let mut next = log.start_offset();
    let end = log.end_offset();
    while next < end {
        let batch = read_ok(log, next, 1000).await;
        assert!(
            !batch.is_empty(),
            "read({next}) returned nothing below end {end}"
        );
        next = batch[batch.len() - 1].offset + 1;
        out.extend(batch);
    }
    out
}

/// One `#[tokio::test]` per check, named after it, each on a fresh log. `$fresh` is an async
/// expression giving `Option<(guard, Arc<dyn Log>)>`: the guard (a temp dir, a mock cluster)
/// lives until the check ends; `None` skips the test (no broker to test against), saying so.
#[macro_export]
macro_rules! conformance_tests {
    ($fresh:expr) => {
        $crate::conformance_tests!(@each $fresh;
            fresh_log_is_empty,
            ordered_offsets,
            atomic_batches,
            read_from_any_offset,
            reads_past_end_are_empty,
            out_of_range,
            empty_batch_error,
            empty_payloads,
            timestamps_never_decrease,
            wait_for,
            tail_follows_live_appends,
            offset_for_time,
            concurrent_appends,
            reads_during_appends,
            verify_chain_beside_appends,
            close_ends_waits_and_appends_but_not_reads,
        );
    };
    (@each $fresh:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some((_guard, log)) = $fresh.await else {
                    eprintln!("skipped: {}: nothing to run it against", stringify!($name));
                    return;
                };
                $crate::conformance::$name(log).await;
            }
        )*
    };
}

/// Runs every check, each against a new log from `make`.
pub async fn run_all<F, Fut>(mut make: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Arc<dyn Log>>,
{
    fresh_log_is_empty(make().await).await;
    ordered_offsets(make().await).await;
    atomic_batches(make().await).await;
    read_from_any_offset(make().await).await;
    reads_past_end_are_empty(make().await).await;
    out_of_range(make().await).await;
    empty_batch_error(make().await).await;
    empty_payloads(make().await).await;
    timestamps_never_decrease(make().await).await;
    wait_for(make().await).await;
    tail_follows_live_appends(make().await).await;
    offset_for_time(make().await).await;
    concurrent_appends(make().await).await;
    reads_during_appends(make().await).await;
    verify_chain_beside_appends(make().await).await;
    close_ends_waits_and_appends_but_not_reads(make().await).await;
}

/// A log either refuses to verify its chain at once ([`Error::Refused`]: it has none), or
/// vouches for every record acknowledged before the call while appends go on: an intact
/// verdict reaching at least that far.
pub async fn verify_chain_beside_appends(log: Arc<dyn Log>) {
    for i in 0..20 {
        append_ok(&log, (0..=i % 3).map(|k| payload("c", k)).collect()).await;
    }
    let acknowledged = log.end_offset();
    let check = match log.verify_chain() {
        Ok(check) => check,
        Err(Error::Refused(_)) => return,
        Err(other) => panic!("verify_chain: {other}"),
    };
    let writer = {
        let log = Arc::clone(&log);
        tokio::spawn(async move {
            for _ in 0..50 {
                append_ok(&log, vec![payload("later", 1)]).await;
            }
        })
    };
    match within("verify_chain", check).await.expect("verify_chain") {
        crate::Verdict::Intact(verified) => {
            assert_eq!(verified.start_offset, log.start_offset());
            assert!(
                verified.end_offset >= acknowledged,
                "vouched up to {}, {acknowledged} acknowledged before the call",
                verified.end_offset
            );
            assert!(verified.head.is_some(), "no chain head");
        }
        crate::Verdict::Broken(broken) => panic!("a log written only by appends: {broken}"),
    }
    within("appends beside verify_chain", writer)
        .await
        .expect("writer");
}

/// Closing ends the waits that cannot be met and refuses appends; what was appended stays
/// readable, waits already met still succeed, and closing twice is harmless.
pub async fn close_ends_waits_and_appends_but_not_reads(log: Arc<dyn Log>) {
    append_ok(&log, (0..3).map(|n| payload("x", n)).collect()).await;
    let waiter = {
        let log = Arc::clone(&log);
        tokio::spawn(async move { log.wait_for(100).await })
    };
    tokio::task::yield_now().await;
    within("close", log.close()).await;
    let ended = within("the waiter", waiter).await.expect("join");
    assert!(matches!(ended, Err(Error::Closed)), "{ended:?}");
    assert!(matches!(log.wait_for(100).await, Err(Error::Closed)));
    within("a met wait", log.wait_for(2))
        .await
        .expect("a wait already met succeeds after close");
    let refused = log.append(vec![payload("y", 0)]).await;
    assert!(matches!(refused, Err(Error::Closed)), "{refused:?}");
    assert_eq!(read_ok(&log, 0, 10).await.len(), 3);
    within("a second close", log.close()).await;
}

/// A new log starts and ends at the same offset, reads nothing, and can be written.
pub async fn fresh_log_is_empty(log: Arc<dyn Log>) {
    assert_eq!(log.start_offset(), log.end_offset(), "fresh log not empty");
    assert!(
        log.write_health().borrow().is_writable(),
        "fresh log not writable"
    );
    assert!(read_ok(&log, log.start_offset(), 10).await.is_empty());
    assert_eq!(
        within("offset_for_time", log.offset_for_time(i64::MIN))
            .await
            .ok(),
        Some(log.end_offset())
    );
}

/// Offsets are assigned contiguously, batch after batch, and the end offset follows.
pub async fn ordered_offsets(log: Arc<dyn Log>) {
    let start = log.end_offset();
    let mut expected_next = start;
    let mut model = Vec::new();
    for (i, size) in [1usize, 3, 1, 7, 2].into_iter().enumerate() {
        let payloads: Vec<Bytes> = (0..size).map(|j| payload(&format!("b{i}"), j)).collect();
        let appended = append_ok(&log, payloads.clone()).await;
        assert_eq!(appended.first_offset, expected_next, "batch {i} offset");
        assert_eq!(appended.count as usize, size, "batch {i} count");
        expected_next += size as u64;
        assert_eq!(appended.end_offset(), expected_next);
        assert_eq!(
            log.end_offset(),
            expected_next,
            "end_offset after batch {i}"
        );
        model.extend(payloads);
    }
    let records = read_all(&log).await;
    assert_eq!(records.len(), model.len());
    for (i, (record, payload)) in records.iter().zip(&model).enumerate() {
        assert_eq!(record.offset, start + i as u64, "record {i} offset");
        assert_eq!(&record.payload, payload, "record {i} payload");
    }
}

/// The records of one batch are contiguous, carry the batch's timestamp, and are readable
/// starting from any record inside the batch.
pub async fn atomic_batches(log: Arc<dyn Log>) {
    append_ok(&log, vec![payload("before", 0)]).await;
    let batch: Vec<Bytes> = (0..10).map(|i| payload("batch", i)).collect();
    let appended = append_ok(&log, batch.clone()).await;
    append_ok(&log, vec![payload("after", 0)]).await;
    let records = read_ok(&log, appended.first_offset, batch.len()).await;
    assert_eq!(records.len(), batch.len());
    for (i, record) in records.iter().enumerate() {
        assert_eq!(record.offset, appended.first_offset + i as u64);
        assert_eq!(
            record.timestamp_ms, appended.timestamp_ms,
            "record {i} timestamp"
        );
        assert_eq!(record.payload, batch[i]);
    }
    for (skip, expected) in batch.iter().enumerate().skip(1) {
        let from = appended.first_offset + skip as u64;
        let records = read_ok(&log, from, 3).await;
        assert_eq!(records[0].offset, from);
        assert_eq!(&records[0].payload, expected);
        assert!(records.len() <= 3);
    }
}

/// `read(from, max)` returns exactly the records `from..min(from + max, end)`.
pub async fn read_from_any_offset(log: Arc<dyn Log>) {
    let mut model = Vec::new();
    for i in 0..20usize {
        let payloads: Vec<Bytes> = (0..(i % 4) + 1)
            .map(|j| payload(&format!("r{i}"), j))
            .collect();
        model.extend(payloads.iter().cloned());
        append_ok(&log, payloads).await;
    }
    let start = log.start_offset();
    let end = log.end_offset();
    assert_eq!(end - start, model.len() as u64);
    for from in start..end {
        for max in [1usize, 2, 5, 1000] {
            let records = read_ok(&log, from, max).await;
            let expect = ((end - from) as usize).min(max);
            assert_eq!(records.len(), expect, "read({from}, {max}) length");
            for (k, record) in records.iter().enumerate() {
                let offset = from + k as u64;
                assert_eq!(record.offset, offset);
                assert_eq!(record.payload, model[(offset - start) as usize]);
            }
        }
    }
}

/// Reads at or past the end (or with `max_records == 0`) are empty, not errors.
pub async fn reads_past_end_are_empty(log: Arc<dyn Log>) {
    append_ok(&log, vec![payload("x", 0), payload("x", 1)]).await;
    let end = log.end_offset();
    assert!(read_ok(&log, end, 10).await.is_empty());
    assert!(read_ok(&log, end + 1, 10).await.is_empty());
    assert!(read_ok(&log, end + 1_000_000, 10).await.is_empty());
    assert!(read_ok(&log, u64::MAX, 10).await.is_empty());
    assert!(read_ok(&log, log.start_offset(), 0).await.is_empty());
}

/// Offsets below `start_offset()` are an error. (A fresh log usually starts at 0, where no
/// smaller offset exists; then only the bounds are checked.)
pub async fn out_of_range(log: Arc<dyn Log>) {
    append_ok(&log, vec![payload("x", 0)]).await;
    let start = log.start_offset();
    assert!(start <= log.end_offset());
    if start > 0 {
        match within("read", log.read(start - 1, 10)).await {
            Err(Error::OffsetOutOfRange {
                requested,
                start: s,
                ..
            }) => {
                assert_eq!(requested, start - 1);
                assert_eq!(s, start);
            }
            other => panic!("read below start: expected OffsetOutOfRange, got {other:?}"),
        }
    }
}

/// An empty batch is rejected and changes nothing.
pub async fn empty_batch_error(log: Arc<dyn Log>) {
    append_ok(&log, vec![payload("x", 0)]).await;
    let end = log.end_offset();
    match within("append", log.append(Vec::new())).await {
        Err(Error::EmptyBatch) => {}
        other => panic!("empty append: expected EmptyBatch, got {other:?}"),
    }
    assert_eq!(log.end_offset(), end);
    let next = append_ok(&log, vec![payload("y", 0)]).await;
    assert_eq!(
        next.first_offset, end,
        "an empty batch must not consume offsets"
    );
}

/// Zero-length payloads are records like any other.
pub async fn empty_payloads(log: Arc<dyn Log>) {
    let appended = append_ok(&log, vec![Bytes::new(), payload("x", 1), Bytes::new()]).await;
    let records = read_ok(&log, appended.first_offset, 10).await;
    assert_eq!(records.len(), 3);
    assert!(records[0].payload.is_empty());
    assert_eq!(records[1].payload, payload("x", 1));
    assert!(records[2].payload.is_empty());
}

/// Append timestamps never decrease along the log.
pub async fn timestamps_never_decrease(log: Arc<dyn Log>) {
    let mut last = i64::MIN;
    for i in 0..20 {
        let appended = append_ok(&log, vec![payload("t", i)]).await;
        assert!(appended.timestamp_ms >= last, "timestamp went backwards");
        last = appended.timestamp_ms;
    }
    let records = read_all(&log).await;
    assert!(
        records
            .windows(2)
            .all(|w| w[0].timestamp_ms <= w[1].timestamp_ms)
    );
}

/// `wait_for(o)` resolves at once when record `o` exists, and otherwise exactly when it is
/// appended.
pub async fn wait_for(log: Arc<dyn Log>) {
    append_ok(&log, vec![payload("w", 0)]).await;
    let end = log.end_offset();
    within("wait_for existing", log.wait_for(end - 1))
        .await
        .expect("wait_for an existing record");

    let waiter = {
        let log = Arc::clone(&log);
        tokio::spawn(async move { log.wait_for(end + 1).await })
    };
    // Not satisfied by the next record alone (end + 1 needs two more).
    append_ok(&log, vec![payload("w", 1)]).await;
    tokio::task::yield_now().await;
    assert!(
        !waiter.is_finished(),
        "wait_for resolved before its record was appended"
    );
    // A pending waiter must still be pending after a pause (it can only resolve early by
    // being wrong, so this cannot flake on a slow machine).
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(
        !waiter.is_finished(),
        "wait_for resolved before its record was appended"
    );
    append_ok(&log, vec![payload("w", 2)]).await;
    match within("wait_for", waiter).await {
        Ok(Ok(())) => {}
        other => panic!("wait_for: expected Ok, got {other:?}"),
    }
    assert!(log.end_offset() > end + 1);
}

/// A [`Tail`](crate::Tail) returns existing records, then records appended while it waits, in
/// order and without gaps or duplicates.
pub async fn tail_follows_live_appends(log: Arc<dyn Log>) {
    for i in 0..5 {
        append_ok(&log, vec![payload("old", i)]).await;
    }
    let start = log.start_offset();
    let total = 5 + 30;
    let reader = {
        let log = Arc::clone(&log);
        tokio::spawn(async move {
            let mut tail = crate::tail(log, start, 4);
            let mut seen = Vec::new();
            while seen.len() < total {
                let batch = tail.next_batch().await.expect("tail next_batch");
                assert!(!batch.is_empty() && batch.len() <= 4);
                seen.extend(batch);
            }
            (seen, tail.position())
        })
    };
    // 15 batches of 1, 2, 3, 1, 2, 3, ... records: 30 in all.
    for i in 0..15 {
        let payloads: Vec<Bytes> = (0..(i % 3) + 1)
            .map(|j| payload(&format!("new{i}"), j))
            .collect();
        append_ok(&log, payloads).await;
        if i % 4 == 0 {
            tokio::task::yield_now().await;
        }
    }
    assert_eq!(log.end_offset() - start, total as u64);
    let (seen, position) = within("tail", reader).await.expect("tail task");
    let expected = read_all(&log).await;
    assert_eq!(seen.len(), total);
    assert_eq!(
        seen,
        expected[..total].to_vec(),
        "tail saw different records than read"
    );
    assert_eq!(position, start + total as u64);
}

/// `offset_for_time(t)` is the first offset whose timestamp is `>= t`, or the end offset.
pub async fn offset_for_time(log: Arc<dyn Log>) {
    for i in 0..12 {
        let n = (i % 3) + 1;
        append_ok(&log, (0..n).map(|j| payload(&format!("t{i}"), j)).collect()).await;
        // Let the clock move so that several distinct timestamps exist.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let records = read_all(&log).await;
    let end = log.end_offset();
    let expected = |t: i64| -> Offset {
        records
            .iter()
            .find(|r| r.timestamp_ms >= t)
            .map_or(end, |r| r.offset)
    };
    let mut probes = vec![i64::MIN, i64::MAX, 0];
    for r in &records {
        probes.extend([r.timestamp_ms - 1, r.timestamp_ms, r.timestamp_ms + 1]);
    }
    for t in probes {
        let got = within("offset_for_time", log.offset_for_time(t))
            .await
            .unwrap_or_else(|e| panic!("offset_for_time({t}) failed: {e}"));
        assert_eq!(got, expected(t), "offset_for_time({t})");
    }
    assert_eq!(
        within("offset_for_time", log.offset_for_time(i64::MIN))
            .await
            .ok(),
        Some(log.start_offset())
    );
}

/// Many tasks appending at once get distinct, contiguous offsets; nothing is lost or
/// duplicated, each batch stays contiguous, and each task's batches keep its order.
pub async fn concurrent_appends(log: Arc<dyn Log>) {
    const TASKS: usize = 16;
    const APPENDS: usize = 25;
    let start = log.end_offset();
    let mut handles = Vec::new();
    for task in 0..TASKS {
        let log = Arc::clone(&log);
        handles.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            for seq in 0..APPENDS {
                let n = (task + seq) % 3 + 1;
                let payloads: Vec<Bytes> = (0..n)
                    .map(|k| Bytes::from(format!("{task}/{seq}/{k}")))
                    .collect();
                let appended = log
                    .append(payloads.clone())
                    .await
                    .expect("concurrent append");
                assert_eq!(appended.count as usize, n);
                mine.push((appended, payloads));
            }
            mine
        }));
    }
    let mut batches = Vec::new();
    for h in handles {
        let mine = within("appender", h).await.expect("appender task");
        for w in mine.windows(2) {
            assert!(
                w[0].0.first_offset < w[1].0.first_offset,
                "a task's sequential appends got decreasing offsets"
            );
        }
        batches.extend(mine);
    }
    let total: u64 = batches.iter().map(|(a, _)| u64::from(a.count)).sum();
    assert_eq!(log.end_offset(), start + total, "offsets lost or skipped");
    let records = read_all(&log).await;
    let records: Vec<&Record> = records.iter().filter(|r| r.offset >= start).collect();
    assert_eq!(records.len() as u64, total);
    let mut claimed = HashSet::new();
    for (appended, payloads) in &batches {
        for (k, p) in payloads.iter().enumerate() {
            let offset = appended.first_offset + k as u64;
            assert!(claimed.insert(offset), "offset {offset} assigned twice");
            let record = records[(offset - start) as usize];
            assert_eq!(record.offset, offset);
            assert_eq!(&record.payload, p, "payload at {offset}");
            assert_eq!(record.timestamp_ms, appended.timestamp_ms);
        }
    }
    assert_eq!(claimed.len() as u64, total);
}

/// Reads running while appends are in flight see only complete, correct records below the end
/// offset, never a gap or a partial batch.
pub async fn reads_during_appends(log: Arc<dyn Log>) {
    const APPENDS: usize = 150;
    let start = log.end_offset();
    let writer = {
        let log = Arc::clone(&log);
        tokio::spawn(async move {
            let mut next = start;
            for i in 0..APPENDS {
                let n = (i % 4) + 1;
                let payloads: Vec<Bytes> = (0..n as u64)
                    .map(|k| Bytes::from(format!("p{}", next + k)))
                    .collect();
                let appended = log.append(payloads).await.expect("append");
                assert_eq!(appended.first_offset, next);
                next = appended.end_offset();
            }
            next
        })
    };
    let mut rounds = 0usize;
    loop {
        let done = writer.is_finished();
        let mut from = start;
        loop {
            let records = read_ok(&log, from, 7).await;
            let end_after = log.end_offset();
            let Some(last) = records.last() else { break };
            for (k, record) in records.iter().enumerate() {
                assert_eq!(record.offset, from + k as u64, "gap in concurrent read");
                assert_eq!(record.payload, Bytes::from(format!("p{}", record.offset)));
            }
            assert!(
                last.offset < end_after,
                "read returned a record at or past the end"
            );
            // A batch is never visible partially: the end offset is always a batch boundary,
            // and batch `i` has `(i % 4) + 1` records.
            from = last.offset + 1;
        }
        let end = log.end_offset();
        assert!(
            from >= end || !done,
            "reader stopped at {from} below end {end}"
        );
        let mut boundary = start;
        let mut i = 0;
        while boundary < end {
            boundary += (i % 4) as u64 + 1;
            i += 1;
        }
        assert_eq!(boundary, end, "end offset {end} is not a batch boundary");
        rounds += 1;
        if done {
            break;
        }
        tokio::task::yield_now().await;
    }
    let end = within("writer", writer).await.expect("writer task");
    assert_eq!(log.end_offset(), end);
    assert!(rounds >= 1);
}
