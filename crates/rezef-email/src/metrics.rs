//! The adapter's own metrics, at `GET /metrics/email` of `rezef-email maildir` (the runtime's
//! `/metrics` has the publisher's: events accepted, acknowledged, refused, the spool).
//!
//! | name | type | what |
//! |---|---|---|
//! | `rezef_email_messages_total{outcome="accepted"}` | counter | messages whose events the publisher accepted |
//! | `rezef_email_messages_total{outcome="failed"}` | counter | malformed messages moved to `failed/` |
//! | `rezef_email_messages_total{outcome="deferred"}` | counter | messages left for later (the spool full, a disk error) |

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct Outcome {
    outcome: &'static str,
}

/// Messages by outcome since the adapter started.
#[derive(Debug)]
pub struct Counters {
    registry: Registry,
    messages: Family<Outcome, Counter>,
}

impl Default for Counters {
    fn default() -> Self {
        let mut registry = Registry::default();
        let messages = Family::<Outcome, Counter>::default();
        registry.register(
            "rezef_email_messages",
            "Messages taken, by outcome",
            messages.clone(),
        );
        Self { registry, messages }
    }
}

impl Counters {
    pub fn count(&self, outcome: &'static str) {
        self.messages.get_or_create(&Outcome { outcome }).inc();
    }

    pub fn get(&self, outcome: &'static str) -> u64 {
        self.messages.get_or_create(&Outcome { outcome }).get()
    }

    /// Prometheus's text format.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing to a String does not fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}
