//! Why a connection failed, for the error that follows.
//!
//! librdkafka reports what goes wrong with a connection (a broker certificate the CA did not
//! sign, a failed SASL authentication, a refused TCP connection) through its error callback,
//! and keeps retrying; the request waiting on that connection only ends in a timeout. So a
//! node pointed at a TLS broker with the wrong CA would fail to start with "timed out" alone.
//! The clients that answer first when a log opens (the admin client of `ensure_topic` and the
//! reader of `KafkaLog::open`) carry a [`Witness`] instead of librdkafka's default context:
//! it logs the report as the default does and keeps the latest one, which a timeout then
//! quotes ([`Witness::explain`]).

use std::sync::Mutex;

use rdkafka::client::ClientContext;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::error::Error;

/// Remembers the latest connection failure librdkafka reported for one client.
#[derive(Debug, Default)]
pub(crate) struct Witness {
    last: Mutex<Option<String>>,
}

impl ClientContext for Witness {
    fn error(&self, error: KafkaError, reason: &str) {
        tracing::error!("librdkafka: {error}: {reason}");
        // "1/1 brokers are down" follows the failure that took them down and says less.
        if error.rdkafka_error_code() != Some(RDKafkaErrorCode::AllBrokersDown) {
            *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason.to_owned());
        }
    }
}

impl ConsumerContext for Witness {}

impl Witness {
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
        witness.error(
            KafkaError::Global(RDKafkaErrorCode::SSL),
            "ssl://127.0.0.1:9093/bootstrap: SSL handshake failed: certificate verify failed",
        );
        witness.error(
            KafkaError::Global(RDKafkaErrorCode::AllBrokersDown),
            "1/1 brokers are down",
        );
        let explained = witness.explain(timeout()).to_string();
        assert!(explained.contains("timed out"), "{explained}");
        assert!(explained.contains("certificate verify failed"), "{explained}");
        let refused = witness.explain(Error::Refused("no such topic".into()));
        assert!(!refused.to_string().contains("certificate"), "{refused}");
    }
}
