//! The embedded log: segment files under the data directory, in one partition or several
//! (`log.partitions`). Each partition is a log of its own, folded on a core of its own;
//! customers are spread over them by the same partitioner as over a Kafka topic's.
//!
//! The count is fixed once events are logged (an event's partition follows from it), so a
//! data directory holding another count is refused with the count it holds.

use std::path::Path;
use std::sync::Arc;

use rezef_keys::FileKeyStore;
use rezef_log::{EmbeddedLog, EmbeddedLogConfig, Log};
use rezef_record::sealed::Sealing;

use crate::config::ServerConfig;
use crate::{Error, Result};

/// The partitions of the embedded log, in order.
/// The keys the embedded log's records are sealed under (`data_dir/data-keys`), for the
/// node and for `rezef rebuild`: one key store for every partition.
pub fn sealing(config: &ServerConfig) -> Result<Sealing> {
    let keys = FileKeyStore::open(&config.data_keys_dir())
        .map_err(|e| Error::Sealing(rezef_record::Error::Keys(e)))?;
    Ok(Sealing::under(Arc::new(keys)))
}

pub fn open(config: &ServerConfig) -> Result<Vec<Arc<dyn Log>>> {
    let wanted = config.log.partitions;
    if let Some(found) = partitions_in(&config.log_dir())?
        && found != wanted
    {
        return Err(Error::Config(format!(
            "the log in {} has {found} partition(s), and log.partitions = {wanted}: set \
             log.partitions = {found} (events are placed by the count they were logged under; \
             changing it would re-home customers)",
            config.log_dir().display()
        )));
    }
    (0..wanted)
        .map(|partition| {
            let log: Arc<dyn Log> = EmbeddedLog::open(EmbeddedLogConfig {
                segment_bytes: config.log.segment_bytes,
                ..EmbeddedLogConfig::new(config.partition_log_dir(partition))
            })?;
            Ok(log)
        })
        .collect()
}

/// How many partitions the log in `dir` has: `p<N>` directories, or one if segments lie in
/// `dir` itself; `None` for no log yet.
fn partitions_in(dir: &Path) -> Result<Option<u32>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::Config(format!("reading {}: {e}", dir.display()))),
    };
    let (mut partitions, mut segments) = (0, false);
    for entry in entries {
        let entry = entry.map_err(|e| Error::Config(format!("reading {}: {e}", dir.display())))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let numbered = |prefix: &str| {
            (name.strip_prefix(prefix)).is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        };
        if entry.path().is_dir() && numbered("p") {
            partitions += 1;
        } else if name.ends_with(".log") {
            segments = true;
        }
    }
    Ok(match (partitions, segments) {
        (0, false) => None,
        (0, true) => Some(1),
        (n, _) => Some(n),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path, partitions: u32) -> ServerConfig {
        let mut config = ServerConfig {
            data_dir: dir.to_path_buf(),
            ..ServerConfig::default()
        };
        config.log.partitions = partitions;
        config
    }

    #[tokio::test]
    async fn a_log_keeps_the_partitions_it_was_made_with() {
        // Given a data directory whose log was made with two partitions, one event in each
        let dir = tempfile::tempdir().expect("dir");
        let logs = open(&config(dir.path(), 2)).expect("two partitions");
        for log in &logs {
            log.append(vec![bytes::Bytes::from_static(b"event")])
                .await
                .expect("append");
            log.close().await;
        }
        drop(logs);

        // When it is opened with one partition, or three
        for wanted in [1, 3] {
            let refused = open(&config(dir.path(), wanted)).expect_err("refused");
            // Then it is refused with the count it holds
            assert!(
                refused.to_string().contains("set log.partitions = 2"),
                "{refused}"
            );
        }
        // And with two it opens, each partition with its event
        let logs = open(&config(dir.path(), 2)).expect("reopened");
        assert_eq!(logs.iter().map(|l| l.end_offset()).sum::<u64>(), 2);
    }

    #[tokio::test]
    async fn a_one_partition_log_stays_where_it_always_was() {
        let dir = tempfile::tempdir().expect("dir");
        let logs = open(&config(dir.path(), 1)).expect("one");
        logs[0]
            .append(vec![bytes::Bytes::from_static(b"event")])
            .await
            .expect("append");
        logs[0].close().await;
        drop(logs);
        assert!(dir.path().join("log").is_dir());
        let refused = open(&config(dir.path(), 4)).expect_err("refused");
        assert!(refused.to_string().contains("has 1 partition"), "{refused}");
    }
}
