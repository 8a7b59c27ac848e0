//! Group commit: concurrent appenders share fsyncs.

use std::sync::Arc;

use bytes::Bytes;
use rezef_log::{EmbeddedLog, EmbeddedLogConfig, Log, LogStats};
use tokio::sync::Barrier;

const TASKS: usize = 32;
const APPENDS_PER_TASK: usize = 20;

async fn hammer(log: &Arc<EmbeddedLog>) {
    let barrier = Arc::new(Barrier::new(TASKS));
    let mut handles = Vec::new();
    for task in 0..TASKS {
        let log = Arc::clone(log);
        let barrier = Arc::clone(&barrier);
        handles.push(tokio::spawn(async move {
            barrier.wait().await;
            for i in 0..APPENDS_PER_TASK {
                log.append(vec![Bytes::from(format!("{task}:{i}"))])
                    .await
                    .expect("append");
            }
        }));
    }
    for h in handles {
        h.await.expect("appender");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_share_fsyncs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = EmbeddedLog::open(EmbeddedLogConfig::new(dir.path())).expect("open");
    assert_eq!(log.stats(), LogStats::default());
    hammer(&log).await;

    let stats = log.stats();
    let appends = (TASKS * APPENDS_PER_TASK) as u64;
    assert_eq!(stats.appends, appends);
    assert_eq!(stats.records, appends);
    assert_eq!(log.end_offset(), appends);
    // Every acknowledged append was covered by a sync, and there was one sync per group
    // (no segment roll happened), but far from one per append: while one group's fsync runs,
    // the other 31 appenders queue up behind it.
    assert!(stats.syncs >= 1);
    assert_eq!(stats.syncs, stats.groups);
    assert!(
        stats.syncs < appends,
        "{} fsyncs for {appends} concurrent appends: no group commit happened",
        stats.syncs
    );
    let frame_bytes: u64 = (0..TASKS)
        .flat_map(|t| (0..APPENDS_PER_TASK).map(move |i| 100 + 4 + format!("{t}:{i}").len() as u64))
        .sum();
    assert_eq!(stats.bytes, frame_bytes);
    log.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_fsync_no_syncs_are_counted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = EmbeddedLogConfig::new(dir.path());
    config.fsync = false;
    let log = EmbeddedLog::open(config).expect("open");
    hammer(&log).await;
    let stats = log.stats();
    assert_eq!(stats.appends, (TASKS * APPENDS_PER_TASK) as u64);
    assert_eq!(stats.syncs, 0);
    assert!(stats.groups >= 1 && stats.groups <= stats.appends);
}
