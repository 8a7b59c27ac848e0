//! Every metric Rezef exports, in one place: its name, unit, labels and help. The code that
//! records or reads a figure names it from here, the docs (deploy/OPERATIONS.md,
//! "Metrics") and the Grafana dashboard (deploy/grafana/rezef.json) use these names, and
//! the tests below keep them to Prometheus's conventions (a `rezef_` prefix, the base unit
//! last, `_total` added to counters when exposed).
//!
//! Labels carry no personal data: no customer, conversation or identity ever appears, only
//! the tenant, queue, partition, gRPC method and status, and a few fixed words. The labels
//! that grow with the configuration are `tenant` and `queue` (one series per queue of each
//! tenant routed on the node) and `partition` (one per partition served here).

/// What kind of figure a metric is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up; exposed with `_total` after the name.
    Counter,
    /// Goes up and down; read when scraped.
    Gauge,
    /// Observations in buckets (`_bucket`, `_sum`, `_count`).
    Histogram,
}

/// One metric: its name (as exposed, without a counter's `_total`), unit, labels and help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Def {
    pub name: &'static str,
    pub kind: Kind,
    /// The base unit the name ends with (`seconds`, `bytes`, `records`), or "" for a count.
    pub unit: &'static str,
    pub labels: &'static [&'static str],
    pub help: &'static str,
}

pub const INGEST_BATCHES: Def = Def {
    name: "rezef_ingest_batches",
    kind: Kind::Counter,
    unit: "",
    labels: &["result"],
    help: "Publish batches received (Publish and PublishStream), by result: OK or the gRPC \
           code the batch was refused with",
};

pub const INGEST_EVENTS: Def = Def {
    name: "rezef_ingest_events_appended",
    kind: Kind::Counter,
    unit: "",
    labels: &[],
    help: "Published events appended to the log of the partitions served here",
};

pub const INGEST_APPEND_SECONDS: Def = Def {
    name: "rezef_ingest_append_seconds",
    kind: Kind::Histogram,
    unit: "seconds",
    labels: &[],
    help: "Time from handing a published batch to the log until it is durable (the embedded \
           log's group commit and fsync, or Kafka's acknowledgement)",
};

pub const PROJECTOR_LAG_RECORDS: Def = Def {
    name: "rezef_projector_lag_records",
    kind: Kind::Gauge,
    unit: "records",
    labels: &["partition"],
    help: "Records in the log not yet projected, per partition served here",
};

pub const PROJECTOR_LAG_SECONDS: Def = Def {
    name: "rezef_projector_lag_seconds",
    kind: Kind::Gauge,
    unit: "seconds",
    labels: &["partition"],
    help: "While records wait to be projected, the seconds since the newest projected one was \
           recorded (0 when caught up), per partition served here",
};

pub const CHECKPOINT_SECONDS: Def = Def {
    name: "rezef_checkpoint_seconds",
    kind: Kind::Histogram,
    unit: "seconds",
    labels: &["result"],
    help: "Time to write a checkpoint of the projection to the journey store, by result \
           (written or failed)",
};

pub const STORE_DISK_BYTES: Def = Def {
    name: "rezef_store_disk_bytes",
    kind: Kind::Gauge,
    unit: "bytes",
    labels: &[],
    help: "Bytes on disk of the journey stores under the data directory",
};

pub const LOG_DISK_BYTES: Def = Def {
    name: "rezef_log_disk_bytes",
    kind: Kind::Gauge,
    unit: "bytes",
    labels: &[],
    help: "Bytes on disk of the embedded log under the data directory (absent on Kafka)",
};

pub const CACHE_HITS: Def = Def {
    name: "rezef_journey_cache_hits",
    kind: Kind::Counter,
    unit: "",
    labels: &["share"],
    help: "Reads that found their answer in the journey cache, by share (journeys or links)",
};

pub const CACHE_MISSES: Def = Def {
    name: "rezef_journey_cache_misses",
    kind: Kind::Counter,
    unit: "",
    labels: &["share"],
    help: "Reads that did not find their answer in the journey cache, by share (journeys or \
           links)",
};

pub const CACHE_BYTES: Def = Def {
    name: "rezef_journey_cache_bytes",
    kind: Kind::Gauge,
    unit: "bytes",
    labels: &[],
    help: "Estimated bytes held in the journey cache ([projection] cache_mib bounds it)",
};

pub const GRPC_REQUESTS: Def = Def {
    name: "rezef_grpc_requests",
    kind: Kind::Counter,
    unit: "",
    labels: &["service", "method", "code"],
    help: "gRPC calls finished, by service, method and status code",
};

pub const GRPC_SECONDS: Def = Def {
    name: "rezef_grpc_request_seconds",
    kind: Kind::Histogram,
    unit: "seconds",
    labels: &["service", "method"],
    help: "Time from a gRPC call's arrival until its response ends (a stream's whole life)",
};

pub const GRPC_OPEN_STREAMS: Def = Def {
    name: "rezef_grpc_open_streams",
    kind: Kind::Gauge,
    unit: "",
    labels: &["service", "method"],
    help: "Streaming gRPC calls open now (watches, agent sessions, publish streams, replays)",
};

pub const QUEUE_WAITING: Def = Def {
    name: "rezef_routing_queue_waiting",
    kind: Kind::Gauge,
    unit: "",
    labels: &["tenant", "queue"],
    help: "Contacts waiting in a routing queue now (scheduled callbacks not counted)",
};

pub const QUEUE_OLDEST_WAIT: Def = Def {
    name: "rezef_routing_queue_oldest_wait_seconds",
    kind: Kind::Gauge,
    unit: "seconds",
    labels: &["tenant", "queue"],
    help: "How long the contact waiting longest in a routing queue has waited (0 if none)",
};

pub const AGENTS: Def = Def {
    name: "rezef_routing_agents",
    kind: Kind::Gauge,
    unit: "",
    labels: &["tenant", "presence"],
    help: "Agents routing knows, by presence",
};

pub const PARTITION_OWNED: Def = Def {
    name: "rezef_partition_owned",
    kind: Kind::Gauge,
    unit: "",
    labels: &["partition"],
    help: "1 for each partition of the log this node serves (a Kafka topic's, as the consumer \
           group assigns them)",
};

/// Every metric, for the tests.
#[cfg(test)]
pub const ALL: &[Def] = &[
    INGEST_BATCHES,
    INGEST_EVENTS,
    INGEST_APPEND_SECONDS,
    PROJECTOR_LAG_RECORDS,
    PROJECTOR_LAG_SECONDS,
    CHECKPOINT_SECONDS,
    STORE_DISK_BYTES,
    LOG_DISK_BYTES,
    CACHE_HITS,
    CACHE_MISSES,
    CACHE_BYTES,
    GRPC_REQUESTS,
    GRPC_SECONDS,
    GRPC_OPEN_STREAMS,
    QUEUE_WAITING,
    QUEUE_OLDEST_WAIT,
    AGENTS,
    PARTITION_OWNED,
];

/// Buckets of the append latency: 0.25 ms to about 4 s, doubling.
pub const APPEND_BUCKETS: [f64; 15] = doubling(0.000_25);
/// Buckets of gRPC call durations: 0.5 ms to about 8 s, doubling (longer streams land in
/// `+Inf`).
pub const GRPC_BUCKETS: [f64; 15] = doubling(0.000_5);
/// Buckets of checkpoint durations: 5 ms to about 80 s, doubling.
pub const CHECKPOINT_BUCKETS: [f64; 15] = doubling(0.005);

const fn doubling<const N: usize>(first: f64) -> [f64; N] {
    let mut buckets = [first; N];
    let mut i = 1;
    while i < N {
        buckets[i] = buckets[i - 1] * 2.0;
        i += 1;
    }
    buckets
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_prometheus_conventions() {
        let mut seen = std::collections::HashSet::new();
        for def in ALL {
            assert!(seen.insert(def.name), "{} twice", def.name);
            assert!(def.name.starts_with("rezef_"), "{}", def.name);
            assert!(
                !def.name.ends_with("_total"),
                "{}: added when exposed",
                def.name
            );
            assert!(
                def.unit.is_empty() || def.name.ends_with(&format!("_{}", def.unit)),
                "{} must end with its unit {}",
                def.name,
                def.unit
            );
            assert!(
                def.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{}",
                def.name
            );
            assert!(!def.help.is_empty(), "{}", def.name);
        }
    }

    #[test]
    fn no_label_can_name_a_customer() {
        let allowed = [
            "result",
            "partition",
            "share",
            "service",
            "method",
            "code",
            "tenant",
            "queue",
            "presence",
        ];
        for def in ALL {
            for label in def.labels {
                assert!(allowed.contains(label), "{}: {label}", def.name);
            }
        }
    }

    #[test]
    fn the_grafana_dashboard_uses_only_these_names() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../deploy/grafana/rezef.json"
        );
        let dashboard = std::fs::read_to_string(path).expect("deploy/grafana/rezef.json");
        let exposed = |def: &Def| -> Vec<String> {
            match def.kind {
                Kind::Counter => vec![format!("{}_total", def.name)],
                Kind::Gauge => vec![def.name.to_owned()],
                Kind::Histogram => ["_bucket", "_sum", "_count"]
                    .iter()
                    .map(|suffix| format!("{}{suffix}", def.name))
                    .collect(),
            }
        };
        let known: Vec<String> = ALL.iter().flat_map(exposed).collect();
        let mut used = 0;
        for (at, _) in dashboard.match_indices("rezef_") {
            let name: String = dashboard[at..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if name == "rezef_" {
                continue;
            }
            assert!(known.contains(&name), "the dashboard uses {name}");
            used += 1;
        }
        assert!(used > 10, "the dashboard queries the metrics");
    }

    #[test]
    fn buckets_double() {
        assert_eq!(GRPC_BUCKETS[0], 0.0005);
        assert_eq!(GRPC_BUCKETS[1], 0.001);
        assert!((APPEND_BUCKETS[14] - 4.096).abs() < 1e-9);
    }
}
