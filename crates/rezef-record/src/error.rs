//! Why a log record could not be read back as an event.

use rezef_events::Violation;

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The first byte names no format this build reads (an empty record reads as 0).
    #[error("unknown record format (first byte {0:#04x})")]
    UnknownFormat(u8),
    #[error("malformed JSON record: {0}")]
    Json(#[source] rezef_events::Error),
    #[error("malformed protobuf record: {0}")]
    Protobuf(#[from] prost::DecodeError),
    /// A sealed record (`sealed`) that is not well formed.
    #[error("malformed sealed record: {0}")]
    Sealed(&'static str),
    /// The key store failed, or a sealed box did not open under its live key (changed).
    #[error("sealed values: {0}")]
    Keys(#[source] rezef_keys::Error),
    /// The record decodes but is not a valid event (every violation, by field path).
    #[error("the stored event is invalid: {}", summary(.0))]
    Invalid(Vec<Violation>),
}

fn summary(violations: &[Violation]) -> String {
    let listed: Vec<String> = violations.iter().map(ToString::to_string).collect();
    listed.join("; ")
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
