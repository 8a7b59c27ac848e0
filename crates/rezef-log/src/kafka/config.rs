//! Where a [`KafkaLog`](super::KafkaLog) finds its partition, and the librdkafka settings each
//! of its clients gets.
//!
//! The settings the log's guarantees rest on are fixed here, not left to `extra`: an
//! idempotent producer with `acks=all` (no duplicates or reordering from retries, and an
//! acknowledgement means the in-sync replicas have the records), no transactions (their control
//! records would leave gaps in the offsets), consumers that never commit (the log has no
//! consumer-group position; callers keep their own), and no automatic topic creation (a typo in
//! a topic name must fail, not create a topic with the broker's defaults). `extra` carries
//! everything else (security, tuning) and is checked against that list.
//!
//! Every client is made from [`KafkaConfig::common`], so TLS and SASL settings in `extra`
//! (`security.protocol`, `ssl.*`, `sasl.*`) reach all of them alike; the values of secrets
//! among them are kept out of `Debug` output.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::config::RDKafkaLogLevel;

use crate::error::{Error, Result};

/// Settings `extra` may not set, because the log's contract depends on their values (or, for
/// the first two, because [`KafkaConfig`] has a field for them).
const PROTECTED: &[&str] = &[
    "bootstrap.servers",
    "client.id",
    "enable.idempotence",
    "acks",
    "request.required.acks",
    "transactional.id",
    "enable.auto.commit",
    "allow.auto.create.topics",
];

/// librdkafka's own limits on `socket.timeout.ms`, which follows `request_timeout`.
const TIMEOUT_RANGE: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(300));

/// librdkafka's default `message.max.bytes`.
const DEFAULT_MESSAGE_MAX_BYTES: usize = 1_000_000;

/// The consumer group named to librdkafka's consumers. librdkafka's `assign()` requires one,
/// but the log only ever assigns partitions by hand: the group is never joined and nothing is
/// committed to it.
const GROUP_ID: &str = "rezef-log-unjoined";

/// What a consumer of the log is for ([`KafkaConfig::consumer`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerRole {
    /// Random-access reads.
    Reader,
    /// Following the partition's end.
    Follower,
}

/// Configuration of a [`KafkaLog`](super::KafkaLog): one partition of one topic. Build it with
/// [`KafkaConfig::new`] and adjust the public fields. Its `Debug` form redacts the values of
/// `extra` settings that hold secrets (passwords, private keys, client secrets).
#[derive(Clone, PartialEq, Eq)]
pub struct KafkaConfig {
    /// Bootstrap brokers, `host:port[,host:port...]`.
    pub brokers: String,
    /// The topic (it must exist: see [`ensure_topic`](super::ensure_topic)).
    pub topic: String,
    /// The partition of `topic` that this log is.
    pub partition: i32,
    /// Client id the brokers see (logs, quotas). Default `rezef`.
    pub client_id: String,
    /// How long an operation may take before it fails with
    /// [`Error::Unavailable`]: an append's delivery (including librdkafka's retries), a read,
    /// a metadata or offset query. Between 100 ms and 300 s; default 30 s.
    pub request_timeout: Duration,
    /// Further librdkafka settings, given to every client of the log (security, tuning:
    /// `security.protocol`, `ssl.*`, `sasl.*`, `linger.ms`, `message.max.bytes`, ...). Settings the
    /// log's guarantees depend on (idempotence, acks, transactions, commits, topic
    /// auto-creation) are refused with [`Error::Config`].
    pub extra: BTreeMap<String, String>,
}

impl fmt::Debug for KafkaConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let extra = self.extra.iter().map(|(key, value)| {
            let value = if is_secret(key) { "<redacted>" } else { value };
            (key, value)
        });
        let extra: BTreeMap<_, _> = extra.collect();
        f.debug_struct("KafkaConfig")
            .field("brokers", &self.brokers)
            .field("topic", &self.topic)
            .field("partition", &self.partition)
            .field("client_id", &self.client_id)
            .field("request_timeout", &self.request_timeout)
            .field("extra", &extra)
            .finish()
    }
}

/// Whether a librdkafka setting holds a secret (a password, a private key, a client secret).
fn is_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["password", "secret", ".pem", "sasl.oauthbearer.config"]
        .iter()
        .any(|marker| key.contains(marker))
}

impl KafkaConfig {
    /// Default [`request_timeout`](KafkaConfig::request_timeout): 30 s.
    pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

    /// The default configuration for `partition` of `topic` on `brokers`.
    pub fn new(brokers: impl Into<String>, topic: impl Into<String>, partition: i32) -> Self {
        KafkaConfig {
            brokers: brokers.into(),
            topic: topic.into(),
            partition,
            client_id: "rezef".to_owned(),
            request_timeout: Self::DEFAULT_REQUEST_TIMEOUT,
            extra: BTreeMap::new(),
        }
    }

    /// Checks what librdkafka cannot check for us (it validates its own settings when a
    /// client is created).
    pub(crate) fn validate(&self) -> Result<()> {
        self.validate_connection()?;
        if self.topic.is_empty() {
            return Err(Error::Config("topic is empty".to_owned()));
        }
        if self.partition < 0 {
            return Err(Error::Config(format!(
                "partition {} is negative",
                self.partition
            )));
        }
        Ok(())
    }

    /// The checks that also apply when only the connection is used (topic administration).
    pub(crate) fn validate_connection(&self) -> Result<()> {
        if self.brokers.trim().is_empty() {
            return Err(Error::Config("brokers is empty".to_owned()));
        }
        let (min, max) = TIMEOUT_RANGE;
        if self.request_timeout < min || self.request_timeout > max {
            return Err(Error::Config(format!(
                "request_timeout {:?} is outside {min:?}..={max:?}",
                self.request_timeout
            )));
        }
        if let Some(key) = self.extra.keys().find(|k| PROTECTED.contains(&k.as_str())) {
            return Err(Error::Config(format!(
                "extra setting `{key}` is fixed by the log and may not be overridden"
            )));
        }
        self.message_max_bytes().map(drop)
    }

    /// Largest record librdkafka accepts (`message.max.bytes`, from `extra` or its default).
    pub(crate) fn message_max_bytes(&self) -> Result<usize> {
        match self.extra.get("message.max.bytes") {
            None => Ok(DEFAULT_MESSAGE_MAX_BYTES),
            Some(value) => value.trim().parse().map_err(|_| {
                Error::Config(format!(
                    "extra setting `message.max.bytes` is not a number: {value:?}"
                ))
            }),
        }
    }

    pub(crate) fn timeout_ms(&self) -> String {
        self.request_timeout.as_millis().to_string()
    }

    /// Settings shared by every client: where the brokers are, timeouts, `extra`.
    fn common(&self, defaults: &[(&str, &str)]) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("client.id", &self.client_id)
            .set("socket.timeout.ms", self.timeout_ms())
            .set("allow.auto.create.topics", "false")
            .set_log_level(RDKafkaLogLevel::Warning);
        for (key, value) in defaults {
            config.set(*key, *value);
        }
        for (key, value) in &self.extra {
            config.set(key, value);
        }
        config
    }

    /// The producer: idempotent, `acks=all`, a short linger so that the records of one append
    /// (and concurrent appends) travel in one produce request, and deliveries that fail after
    /// `request_timeout` instead of being retried forever. Public for other clients of the
    /// same brokers that need the same guarantees (the key store of `rezef-keys`).
    pub fn producer(&self) -> ClientConfig {
        let mut config = self.common(&[("linger.ms", "2"), ("compression.type", "none")]);
        config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("message.timeout.ms", self.timeout_ms())
            .set("request.timeout.ms", self.timeout_ms());
        config
    }

    /// A consumer that is only ever assigned partitions by hand and never commits. Public as
    /// [`KafkaConfig::producer`] is.
    pub fn consumer(&self, role: ConsumerRole) -> ClientConfig {
        let (fetch_wait, reset, eof) = match role {
            // A re-assignment waits for the fetch in flight (librdkafka keeps one per broker),
            // so a reader's fetches are short; an out-of-range offset is an error to report;
            // and reaching the end of the partition ends a read even if records are missing.
            ConsumerRole::Reader => ("10", "error", "true"),
            // The follower long-polls. Kafka answers a waiting fetch as soon as a record
            // arrives, so this only bounds the idle cost (and the latency on brokers that do
            // not answer early, like librdkafka's mock cluster).
            ConsumerRole::Follower => ("100", "latest", "false"),
        };
        let mut config = self.common(&[
            ("fetch.wait.max.ms", fetch_wait),
            ("auto.offset.reset", reset),
        ]);
        config
            .set("group.id", GROUP_ID)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", eof);
        config
    }

    /// A member of the ownership group (see `group.rs`): it subscribes and never commits;
    /// the caller sets the group, the member name and the session timeout. librdkafka's
    /// "range" then "roundrobin" assignors, eager rebalancing: a partition is revoked from its
    /// old owner before the new one gets it.
    pub(crate) fn membership(&self) -> ClientConfig {
        let mut config = self.common(&[
            ("auto.offset.reset", "latest"),
            ("partition.assignment.strategy", "range,roundrobin"),
        ]);
        config
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false");
        config
    }

    /// An admin client (topic creation, metadata).
    pub(crate) fn admin(&self) -> ClientConfig {
        self.common(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protected_settings_are_refused() {
        let mut config = KafkaConfig::new("localhost:9092", "events", 0);
        config.validate().expect("default config is valid");
        config
            .extra
            .insert("enable.idempotence".into(), "false".into());
        let error = config.validate().expect_err("protected");
        assert!(error.to_string().contains("enable.idempotence"), "{error}");
    }

    #[test]
    fn secrets_in_extra_stay_out_of_debug_output() {
        let mut config = KafkaConfig::new("localhost:9092", "events", 0);
        let secrets = [
            ("sasl.password", "hunter2"),
            ("ssl.key.password", "key-pass"),
            ("ssl.key.pem", "-----BEGIN PRIVATE KEY-----"),
            ("sasl.oauthbearer.client.secret", "s3cr3t"),
        ];
        for (key, value) in secrets {
            config.extra.insert(key.into(), value.into());
        }
        config.extra.insert("sasl.username".into(), "rezef".into());
        let shown = format!("{config:?}");
        for (key, value) in secrets {
            assert!(!shown.contains(value), "{key} shown: {shown}");
        }
        assert!(shown.contains("\"sasl.username\": \"rezef\""), "{shown}");
        let clients = [
            config.producer(),
            config.consumer(ConsumerRole::Reader),
            config.consumer(ConsumerRole::Follower),
            config.membership(),
            config.admin(),
        ];
        for client in clients {
            assert_eq!(client.get("sasl.password"), Some("hunter2"), "every client");
            assert!(!format!("{client:?}").contains("hunter2"));
        }
    }

    #[test]
    fn bad_values_are_refused() {
        let mut config = KafkaConfig::new("localhost:9092", "events", -1);
        assert!(matches!(config.validate(), Err(Error::Config(_))));
        config.partition = 0;
        config.request_timeout = Duration::from_millis(5);
        assert!(matches!(config.validate(), Err(Error::Config(_))));
        config.request_timeout = Duration::from_secs(1);
        config
            .extra
            .insert("message.max.bytes".into(), "lots".into());
        assert!(matches!(config.validate(), Err(Error::Config(_))));
        config
            .extra
            .insert("message.max.bytes".into(), "2000".into());
        assert_eq!(config.message_max_bytes().ok(), Some(2000));
        config.brokers = " ".into();
        assert!(matches!(config.validate(), Err(Error::Config(_))));
    }
}
