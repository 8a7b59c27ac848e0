//! Model-based test: random operation sequences against `EmbeddedLog`, compared with a plain
//! `Vec<Vec<u8>>` of every record.
//!
//! Tiny segments force frequent rolls; reopening exercises recovery scans of the last segment
//! and lazy indexing of sealed ones; "torn tail" simulates a crash that cut the last frame at a
//! random byte (the model then forgets that batch, since it was never acknowledged in the
//! crash scenario).

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use proptest::prelude::*;
use rezef_log::{EmbeddedLog, EmbeddedLogConfig, Log};

#[derive(Debug, Clone)]
enum Op {
    /// Append one batch with these payloads.
    Append(Vec<Vec<u8>>),
    /// Read up to `max` records from `from % (len + 3)`.
    Read { from: u64, max: usize },
    /// Close and reopen the log.
    Reopen,
    /// Close, cut the last frame of the last segment at a random point, reopen.
    TornTail(u64),
    /// Look up a timestamp picked among the records' timestamps.
    Time(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let payload = prop_oneof![
        2 => Just(Vec::new()),
        6 => prop::collection::vec(any::<u8>(), 1..24),
        1 => prop::collection::vec(any::<u8>(), 100..400),
    ];
    prop_oneof![
        8 => prop::collection::vec(payload, 1..5).prop_map(Op::Append),
        4 => (any::<u64>(), 0usize..12).prop_map(|(from, max)| Op::Read { from, max }),
        1 => Just(Op::Reopen),
        1 => any::<u64>().prop_map(Op::TornTail),
        1 => any::<usize>().prop_map(Op::Time),
    ]
}

fn open(dir: &Path, segment_bytes: u64) -> Arc<EmbeddedLog> {
    let mut config = EmbeddedLogConfig::new(dir);
    config.segment_bytes = segment_bytes;
    // Durability is not what this test checks (recovery.rs does, with fsync on); skipping the
    // syncs keeps hundreds of cases fast.
    config.fsync = false;
    EmbeddedLog::open(config).expect("open log")
}

fn frame_len(payloads: &[Vec<u8>]) -> u64 {
    100 + payloads.iter().map(|p| 4 + p.len() as u64).sum::<u64>()
}

fn last_segment(dir: &Path) -> std::path::PathBuf {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    files.pop().expect("a segment")
}

struct Model {
    records: Vec<Vec<u8>>,
    timestamps: Vec<i64>,
    /// Payloads of each batch, in order (for torn-tail surgery).
    batches: Vec<Vec<Vec<u8>>>,
}

async fn check_all(log: &EmbeddedLog, model: &Model) {
    assert_eq!(log.end_offset(), model.records.len() as u64);
    let all = log.read(0, usize::MAX).await.expect("read all");
    let got: Vec<Vec<u8>> = all.iter().map(|r| r.payload.to_vec()).collect();
    assert_eq!(got, model.records);
    let ts: Vec<i64> = all.iter().map(|r| r.timestamp_ms).collect();
    assert_eq!(ts, model.timestamps);
}

async fn run(ops: Vec<Op>, segment_bytes: u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), segment_bytes);
    let mut model = Model {
        records: Vec::new(),
        timestamps: Vec::new(),
        batches: Vec::new(),
    };
    for op in ops {
        match op {
            Op::Append(payloads) => {
                let bytes: Vec<Bytes> = payloads.iter().cloned().map(Bytes::from).collect();
                let appended = log.append(bytes).await.expect("append");
                assert_eq!(appended.first_offset, model.records.len() as u64);
                assert_eq!(appended.count as usize, payloads.len());
                if let Some(&last) = model.timestamps.last() {
                    assert!(appended.timestamp_ms >= last);
                }
                model.records.extend(payloads.iter().cloned());
                model
                    .timestamps
                    .extend(std::iter::repeat_n(appended.timestamp_ms, payloads.len()));
                model.batches.push(payloads);
            }
            Op::Read { from, max } => {
                let len = model.records.len() as u64;
                let from = from % (len + 3);
                let records = log.read(from, max).await.expect("read");
                let expect: Vec<&Vec<u8>> =
                    model.records.iter().skip(from as usize).take(max).collect();
                assert_eq!(records.len(), expect.len(), "read({from}, {max})");
                for (k, (r, e)) in records.iter().zip(expect).enumerate() {
                    assert_eq!(r.offset, from + k as u64);
                    assert_eq!(&r.payload[..], &e[..]);
                    assert_eq!(r.timestamp_ms, model.timestamps[r.offset as usize]);
                }
            }
            Op::Reopen => {
                log.close().await;
                drop(log);
                log = open(dir.path(), segment_bytes);
                check_all(&log, &model).await;
            }
            Op::TornTail(cut) => {
                log.close().await;
                drop(log);
                let path = last_segment(dir.path());
                let len = std::fs::metadata(&path).expect("metadata").len();
                // Only when the last segment holds the last batch's frame (it is empty after a
                // previous torn tail removed its only frame).
                if len > 0 {
                    let batch = model.batches.pop().expect("a batch in a non-empty segment");
                    let frame = frame_len(&batch);
                    assert!(frame <= len);
                    let keep = len - frame + cut % frame;
                    std::fs::OpenOptions::new()
                        .write(true)
                        .open(&path)
                        .and_then(|f| f.set_len(keep))
                        .expect("truncate");
                    let n = model.records.len() - batch.len();
                    model.records.truncate(n);
                    model.timestamps.truncate(n);
                    log = open(dir.path(), segment_bytes);
                    assert_eq!(
                        std::fs::metadata(&path).expect("metadata").len(),
                        len - frame
                    );
                } else {
                    log = open(dir.path(), segment_bytes);
                }
                check_all(&log, &model).await;
            }
            Op::Time(pick) => {
                let t = if model.timestamps.is_empty() {
                    0
                } else {
                    model.timestamps[pick % model.timestamps.len()] + (pick % 3) as i64 - 1
                };
                let expect = model
                    .timestamps
                    .iter()
                    .position(|&x| x >= t)
                    .unwrap_or(model.records.len()) as u64;
                assert_eq!(
                    log.offset_for_time(t).await.expect("offset_for_time"),
                    expect
                );
            }
        }
    }
    check_all(&log, &model).await;
    log.close().await;
    drop(log);
    let log = open(dir.path(), segment_bytes);
    check_all(&log, &model).await;
    log.close().await;
    drop(log);
    // Through rolls, reopens and cut tails, the chain stays whole.
    match rezef_log::verify(dir.path()).expect("verify") {
        rezef_log::Verdict::Intact(v) => {
            assert_eq!(v.end_offset, model.records.len() as u64);
            assert_eq!(v.head.is_some(), !model.records.is_empty());
        }
        rezef_log::Verdict::Broken(b) => panic!("{b}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn embedded_log_matches_model(
        ops in prop::collection::vec(op(), 1..60),
        segment_bytes in prop_oneof![Just(1u64), 64u64..600, Just(1u64 << 20)],
    ) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(run(ops, segment_bytes));
    }
}
