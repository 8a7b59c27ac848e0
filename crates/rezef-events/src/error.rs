//! Validation errors. A violation names the offending field by its path in the event
//! (`customer.identity.value`), so the gRPC edge can say exactly what is wrong.

use std::fmt;

/// One invalid field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Path of the field, e.g. `customer.identity.value`.
    pub field: String,
    pub description: String,
}

impl Violation {
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            description: description.into(),
        }
    }

    /// The same violation below `prefix` (`events[3]` + `source` = `events[3].source`).
    pub fn under(mut self, prefix: &str) -> Self {
        self.field = if self.field.is_empty() {
            prefix.to_owned()
        } else {
            format!("{prefix}.{}", self.field)
        };
        self
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.description)
    }
}

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid event: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<Violation>),
    #[error("cannot decode a stored event: {0}")]
    Decode(#[source] serde_json::Error),
    #[error("cannot decode stored journey state: {0}")]
    DecodeState(#[source] postcard::Error),
    #[error("cannot decode a journey snapshot: {0}")]
    DecodeSnapshot(#[source] serde_json::Error),
    #[error("unsupported stored event format version {0}")]
    UnsupportedFormat(u8),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
