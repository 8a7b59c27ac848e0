//! The adapter's metrics, in Prometheus's text format at `GET /metrics`: HTTP requests by
//! route and status, counted as they are answered, and the publisher's figures (events
//! accepted, acknowledged, refused, retries, the spool), read when scraped.
//!
//! | name | type | what |
//! |---|---|---|
//! | `rezef_adapter_http_requests_total{route,status}` | counter | requests answered |
//! | `rezef_adapter_events_accepted_total` | counter | events spooled since the start |
//! | `rezef_adapter_events_acknowledged_total` | counter | events the server acknowledged |
//! | `rezef_adapter_events_refused_total` | counter | events the server refused for good |
//! | `rezef_adapter_publish_retries_total` | counter | `Publish` attempts retried |
//! | `rezef_adapter_spool_events` | gauge | events waiting for the server |
//! | `rezef_adapter_spool_bytes` | gauge | their bytes in the spool |

use std::fmt;
use std::sync::{Arc, Weak};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::Publisher;

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RequestLabels {
    /// The route's pattern (`/twilio/voice`), not the path asked for: bounded.
    pub route: String,
    pub status: u16,
}

/// The registry and the counters updated as requests are answered.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
}

impl Metrics {
    /// The metrics of an adapter publishing through `publisher` (read when scraped, as long
    /// as it lives).
    pub fn new(publisher: &Arc<Publisher>) -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "rezef_adapter_http_requests",
            "HTTP requests answered, by route and status",
            requests.clone(),
        );
        registry.register_collector(Box::new(PublisherFigures(Arc::downgrade(publisher))));
        Self { registry, requests }
    }

    pub fn request(&self, route: &str, status: u16) {
        let labels = RequestLabels {
            route: route.to_owned(),
            status,
        };
        self.requests.get_or_create(&labels).inc();
    }

    /// The text exposition.
    pub fn render(&self) -> Result<String, fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// The publisher's figures, read at each scrape.
#[derive(Debug)]
struct PublisherFigures(Weak<Publisher>);

impl Collector for PublisherFigures {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let Some(publisher) = self.0.upgrade() else {
            return Ok(());
        };
        let stats = publisher.stats();
        let counters = [
            (
                "rezef_adapter_events_accepted",
                "Events spooled since the start",
                stats.accepted,
            ),
            (
                "rezef_adapter_events_acknowledged",
                "Events the server acknowledged",
                stats.acknowledged,
            ),
            (
                "rezef_adapter_events_refused",
                "Events the server refused for good",
                stats.refused,
            ),
            (
                "rezef_adapter_publish_retries",
                "Publish attempts that failed and were retried",
                stats.retries,
            ),
        ];
        for (name, help, value) in counters {
            let counter = ConstCounter::new(value);
            let metric = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
            counter.encode(metric)?;
        }
        let gauges = [
            (
                "rezef_adapter_spool_events",
                "Events waiting for the server",
                stats.unsent,
            ),
            (
                "rezef_adapter_spool_bytes",
                "Bytes of events waiting for the server",
                stats.spool_bytes,
            ),
        ];
        for (name, help, value) in gauges {
            let gauge = ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX));
            let metric = encoder.encode_descriptor(name, help, None, gauge.metric_type())?;
            gauge.encode(metric)?;
        }
        Ok(())
    }
}
