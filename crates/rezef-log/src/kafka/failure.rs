//! librdkafka's errors, sorted into the log's: "not now" or "never".
//!
//! A caller needs one decision from a failure: retry or give up. So every `KafkaError` becomes
//! either [`Error::Unavailable`] (transport failures, timeouts, leader elections, anything
//! librdkafka itself would retry: the request may or may not have been carried out, and a
//! retry is safe for Rezef's idempotent publishes), [`Error::Refused`] (the brokers answered
//! "no": unknown topic, authorization, oversized records, unsupported requests, settings they
//! reject), or [`Error::Config`] (librdkafka rejected a setting before sending anything). An
//! unrecognised code counts as unavailable: wrongly retrying costs a retry, wrongly giving up
//! loses a write.

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::error::Error;

/// `what` says what was being done, e.g. `"append to events/0"`.
pub(crate) fn classify(what: &str, error: &KafkaError) -> Error {
    match error {
        KafkaError::ClientConfig(..) | KafkaError::ClientCreation(_) | KafkaError::Nul(_) => {
            Error::Config(format!("{what}: {error}"))
        }
        KafkaError::AdminOp(code) => by_code(what, *code, error),
        _ => match error.rdkafka_error_code() {
            Some(code) => by_code(what, code, error),
            None => Error::Unavailable(format!("{what}: {error}")),
        },
    }
}

fn by_code(what: &str, code: RDKafkaErrorCode, error: &KafkaError) -> Error {
    if is_refusal(code) {
        Error::Refused(format!("{what}: {error}"))
    } else {
        Error::Unavailable(format!("{what}: {error}"))
    }
}

/// Codes that mean the request is wrong for this cluster, so that retrying it cannot succeed.
pub(crate) fn is_refusal(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode as C;
    matches!(
        code,
        C::UnknownTopicOrPartition
            | C::UnknownTopic
            | C::UnknownPartition
            | C::InvalidTopic
            | C::InvalidMessage
            | C::InvalidMessageSize
            | C::MessageSizeTooLarge
            | C::MessageBatchTooLarge
            | C::InvalidRequiredAcks
            | C::InvalidTimestamp
            | C::InvalidRecord
            | C::InvalidRequest
            | C::InvalidArgument
            | C::InvalidPartitions
            | C::InvalidReplicationFactor
            | C::InvalidReplicaAssignment
            | C::InvalidConfig
            | C::PolicyViolation
            | C::TopicAuthorizationFailed
            | C::ClusterAuthorizationFailed
            | C::SaslAuthenticationFailed
            | C::UnsupportedSASLMechanism
            | C::Authentication
            | C::UnsupportedVersion
            | C::UnsupportedFeature
            | C::UnsupportedForMessageFormat
            | C::UnsupportedCompressionType
            | C::TopicDeletionDisabled
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_are_unavailable_and_refusals_refused() {
        let timeout = KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut);
        assert!(matches!(
            classify("append", &timeout),
            Error::Unavailable(m) if m.starts_with("append: ")
        ));
        let down = KafkaError::MetadataFetch(RDKafkaErrorCode::AllBrokersDown);
        assert!(matches!(classify("open", &down), Error::Unavailable(_)));
        let unknown = KafkaError::MessageProduction(RDKafkaErrorCode::UnknownTopicOrPartition);
        assert!(matches!(classify("append", &unknown), Error::Refused(_)));
        let admin = KafkaError::AdminOp(RDKafkaErrorCode::InvalidReplicationFactor);
        assert!(matches!(classify("create", &admin), Error::Refused(_)));
        let config = KafkaError::ClientCreation("bad".into());
        assert!(matches!(classify("open", &config), Error::Config(_)));
    }
}
