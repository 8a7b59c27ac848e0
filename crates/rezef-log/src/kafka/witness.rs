//! Why a connection failed, for the error that follows.
//!
//! librdkafka says what went wrong with a connection (a broker certificate the CA did not
//! sign, a failed SASL authentication, a refused TCP connection) in its log, and the request
//! waiting on that connection ends in a bare "broker transport failure" or a timeout. So a
//! node pointed at a TLS broker with the wrong CA would fail to start without saying why.
//!
//! The metadata look-ups that come first when a log opens (`ensure_topic`'s and
//! `KafkaLog::open`'s) are made with consumers that carry a [`Witness`] instead of librdkafka's
//! default context: it logs as the default does and keeps the latest error-level line, which
//! the failure then quotes ([`explained`]). rust-rdkafka routes librdkafka's log lines through
//! the client's queue, so [`explained`] first polls the consumer for what is waiting there:
//! only safe while the consumer is assigned nothing (a poll could take its records). The line
//! names the broker and the reason, never a credential.

use std::sync::Mutex;
use std::time::Duration;

use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use super::config::{ConsumerRole, KafkaConfig};
use super::failure::classify;
use crate::error::{Error, Result};

/// At most this many waiting events are handled before a failure is explained.
const DRAIN: usize = 256;

/// A consumer for metadata look-ups: it never joins its group (no subscription), fetches
/// nothing (no assignment) and commits nothing.
pub(crate) fn lookup(config: &KafkaConfig) -> Result<BaseConsumer<Witness>> {
    config
        .consumer(ConsumerRole::Reader)
        .create_with_context(Witness::default())
        .map_err(|e| classify("create the Kafka metadata client", &e))
}

/// `error`, with the latest connection failure `consumer`'s librdkafka reported. Polls the
/// consumer first (for the log lines waiting in its queue), so `consumer` must not be assigned
/// any partition.
pub(crate) fn explained(consumer: &BaseConsumer<Witness>, error: Error) -> Error {
    for _ in 0..DRAIN {
        // Nothing is assigned: a poll only handles log, error and statistics events.
        let _ = consumer.poll(Duration::ZERO);
    }
    consumer.context().explain(error)
}

/// Remembers the latest connection failure librdkafka reported for one client.
#[derive(Debug, Default)]
pub(crate) struct Witness {
    last: Mutex<Option<String>>,
}

impl ClientContext for Witness {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        DefaultClientContext.log(level, fac, log_message);
        use RDKafkaLogLevel as L;
        if matches!(level, L::Emerg | L::Alert | L::Critical | L::Error) {
            self.witness(log_message);
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        DefaultClientContext.error(error.clone(), reason);
        // "1/1 brokers are down" follows the failure that took them down and says less.
        if error.rdkafka_error_code() != Some(RDKafkaErrorCode::AllBrokersDown) {
            self.witness(reason);
        }
    }
}

impl ConsumerContext for Witness {}

impl Witness {
    fn witness(&self, what: &str) {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(what.to_owned());
    }

    /// `error`, with the latest connection failure added when it is [`Error::Unavailable`]
    /// (a timeout or an unreachable broker, which the failure explains).
    pub(crate) fn explain(&self, error: Error) -> Error {
        let last = self.last.lock().unwrap_or_else(|p| p.into_inner()).clone();
        match (error, last) {
            (Error::Unavailable(message), Some(last)) => {
                Error::Unavailable(format!("{message}; the last connection error: {last}"))
            }
            (error, _) => error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeout_quotes_the_connection_failure_before_it() {
        let witness = Witness::default();
        let timeout = || Error::Unavailable("look up topic t: timed out".into());
        assert_eq!(
            witness.explain(timeout()).to_string(),
            timeout().to_string(),
            "nothing to add yet"
        );
        witness.log(
            RDKafkaLogLevel::Info,
            "FAIL",
            "ssl://127.0.0.1:9093/bootstrap: Disconnected",
        );
        assert!(
            !witness
                .explain(timeout())
                .to_string()
                .contains("Disconnected")
        );
        witness.log(
            RDKafkaLogLevel::Error,
            "FAIL",
            "ssl://127.0.0.1:9093/bootstrap: SSL handshake failed: certificate verify failed",
        );
        witness.error(
            KafkaError::Global(RDKafkaErrorCode::AllBrokersDown),
            "1/1 brokers are down",
        );
        let explained = witness.explain(timeout()).to_string();
        assert!(explained.contains("timed out"), "{explained}");
        assert!(
            explained.contains("certificate verify failed"),
            "{explained}"
        );
        let refused = witness.explain(Error::Refused("no such topic".into()));
        assert!(!refused.to_string().contains("certificate"), "{refused}");
    }
}
