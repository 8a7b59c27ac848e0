//! What is read when Prometheus scrapes, rather than counted as it happens: how far each
//! partition's projection is behind its log, the bytes on disk, the journey cache, the
//! routing queues and agents, and which partitions this node serves. Reading these costs
//! nothing between scrapes, and a queue or partition that went away simply stops showing.
//!
//! Scrapes run on a blocking thread (`endpoint`): the disk figures walk the data directory.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use rezef_events::Timestamp;
use rezef_store::JourneyCache;

use super::names::{self, Def, Kind};
use crate::cluster::Topology;
use crate::routing::Desks;

/// The node's parts the scrape reads.
#[derive(Debug)]
pub struct Scrape {
    pub topology: Topology,
    pub desks: Arc<Desks>,
    pub cache: JourneyCache,
    /// Where the journey stores are.
    pub store_dir: PathBuf,
    /// Where the embedded log is (none on Kafka).
    pub log_dir: Option<PathBuf>,
}

/// Labels made when scraped.
type Labels = Vec<(&'static str, String)>;

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        self.partitions(&mut encoder)?;
        self.disk(&mut encoder)?;
        self.cache(&mut encoder)?;
        self.routing(&mut encoder)
    }
}

impl Scrape {
    /// Which partitions are served here and how far behind their projections are.
    fn partitions(&self, encoder: &mut DescriptorEncoder) -> fmt::Result {
        let (mut owned, mut records, mut seconds) = (Vec::new(), Vec::new(), Vec::new());
        let now = Timestamp::now();
        for (partition, backbone) in self.topology.replicas().all() {
            let labels: Labels = vec![("partition", partition.to_string())];
            let behind = (backbone.log.end_offset()).saturating_sub(backbone.projection.position());
            let late = match behind {
                0 => 0.0,
                _ => now
                    .since(backbone.projection.newest_recorded())
                    .as_secs_f64(),
            };
            owned.push((labels.clone(), 1.0));
            records.push((labels.clone(), behind as f64));
            seconds.push((labels, late));
        }
        gauges(encoder, names::PARTITION_OWNED, owned)?;
        gauges(encoder, names::PROJECTOR_LAG_RECORDS, records)?;
        gauges(encoder, names::PROJECTOR_LAG_SECONDS, seconds)
    }

    fn disk(&self, encoder: &mut DescriptorEncoder) -> fmt::Result {
        let store = bytes_under(&self.store_dir) as f64;
        gauges(encoder, names::STORE_DISK_BYTES, [(Labels::new(), store)])?;
        match &self.log_dir {
            Some(dir) => {
                let log = bytes_under(dir) as f64;
                gauges(encoder, names::LOG_DISK_BYTES, [(Labels::new(), log)])
            }
            None => Ok(()),
        }
    }

    fn cache(&self, encoder: &mut DescriptorEncoder) -> fmt::Result {
        let reads = self.cache.reads();
        let share = |share: &str| vec![("share", share.to_owned())];
        let hits = [
            (share("journeys"), reads.journey_hits),
            (share("links"), reads.link_hits),
        ];
        counters(encoder, names::CACHE_HITS, hits)?;
        let misses = [
            (share("journeys"), reads.journey_misses),
            (share("links"), reads.link_misses),
        ];
        counters(encoder, names::CACHE_MISSES, misses)?;
        let weight = self.cache.weight() as f64;
        gauges(encoder, names::CACHE_BYTES, [(Labels::new(), weight)])
    }

    /// Every routed tenant's queues and agents on the desks of this node.
    fn routing(&self, encoder: &mut DescriptorEncoder) -> fmt::Result {
        let (mut waiting, mut oldest, mut agents) = (Vec::new(), Vec::new(), Vec::new());
        for desk in self.desks.all() {
            for figures in desk.figures() {
                let tenant = figures.tenant.as_str();
                for queue in figures.queues {
                    let labels: Labels =
                        vec![("tenant", tenant.to_owned()), ("queue", queue.queue)];
                    waiting.push((labels.clone(), queue.waiting as f64));
                    oldest.push((labels, queue.longest_wait.as_secs_f64()));
                }
                for (presence, count) in figures.agents {
                    let labels: Labels = vec![
                        ("tenant", tenant.to_owned()),
                        ("presence", presence.to_string()),
                    ];
                    agents.push((labels, count as f64));
                }
            }
        }
        gauges(encoder, names::QUEUE_WAITING, waiting)?;
        gauges(encoder, names::QUEUE_OLDEST_WAIT, oldest)?;
        gauges(encoder, names::AGENTS, agents)
    }
}

/// A gauge's series.
fn gauges(
    encoder: &mut DescriptorEncoder,
    def: Def,
    series: impl IntoIterator<Item = (Labels, f64)>,
) -> fmt::Result {
    debug_assert_eq!(def.kind, Kind::Gauge, "{}", def.name);
    let mut metric = encoder.encode_descriptor(def.name, def.help, None, MetricType::Gauge)?;
    for (labels, value) in series {
        ConstGauge::new(value).encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

/// A counter's series.
fn counters(
    encoder: &mut DescriptorEncoder,
    def: Def,
    series: impl IntoIterator<Item = (Labels, u64)>,
) -> fmt::Result {
    debug_assert_eq!(def.kind, Kind::Counter, "{}", def.name);
    let mut metric = encoder.encode_descriptor(def.name, def.help, None, MetricType::Counter)?;
    for (labels, value) in series {
        ConstCounter::new(value).encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

/// The bytes of the files under `dir` (0 if it cannot be read): sled's files, the
/// checkpoint journal, the log's segments.
fn bytes_under(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => bytes_under(&entry.path()),
            Ok(kind) if kind.is_file() => entry.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_under_a_directory_count_its_files_at_every_depth() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join("a"), [0u8; 100]).expect("write");
        std::fs::create_dir(dir.path().join("p1")).expect("mkdir");
        std::fs::write(dir.path().join("p1").join("b"), [0u8; 23]).expect("write");
        assert_eq!(bytes_under(dir.path()), 123);
        assert_eq!(bytes_under(&dir.path().join("missing")), 0);
    }
}
