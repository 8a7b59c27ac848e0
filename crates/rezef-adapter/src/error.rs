//! The SDK's errors: each says what the adapter can do about it ([`Error::is_retryable`];
//! the publisher's own rules are in `retry.rs`).

use std::path::PathBuf;

use crate::retry::{self, Verdict};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot reach the Rezef server at {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("{}: {}", .0.code(), .0.message())]
    Status(#[from] tonic::Status),
    #[error("line {line}: {source}")]
    Json {
        line: usize,
        #[source]
        source: rezef_proto::json::JsonError,
    },
    #[error("cannot read events: {0}")]
    Io(#[from] std::io::Error),
    #[error("agent session: {0}")]
    Session(String),
    #[error("invalid API key: {0}")]
    Token(String),
    #[error("TLS settings: {0}")]
    Tls(String),
    /// The spool holds `limit` bytes of events the server has not acknowledged yet: the
    /// event was not accepted (nothing accepted before it is lost). Rezef has been out of
    /// reach for long; try again later, or give the spool more room.
    #[error(
        "the spool is full: {limit} bytes of events wait for the server; the event was not \
         accepted"
    )]
    SpoolFull { limit: u64 },
    /// The publisher's queue is full ([`crate::Publisher::try_publish`]).
    #[error("the publisher's queue of {capacity} events is full")]
    QueueFull { capacity: usize },
    #[error("spool {}: {source}", path.display())]
    Spool {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("spool {}: damaged at byte {offset}", path.display())]
    SpoolCorrupt { path: PathBuf, offset: u64 },
    #[error("spool {}: another publisher has it open", dir.display())]
    SpoolLocked { dir: PathBuf },
    #[error("an event of {size} bytes cannot be spooled (1 byte to 64 MiB)")]
    SpoolRecord { size: usize },
    #[error("spool: no event {seq} to read")]
    SpoolCursor { seq: u64 },
    /// A spooled event that does not decode (a spool written by an incompatible version).
    #[error("spool: event {seq} does not decode: {source}")]
    SpoolDecode {
        seq: u64,
        #[source]
        source: prost::DecodeError,
    },
    /// The server refused these events for good (their own fault, or the key's): they were
    /// not retried and are no longer in the spool.
    #[error("{} event(s) refused: {}", .0.len(), summary(.0))]
    Rejected(Vec<Rejection>),
    #[error("the publisher is closed")]
    Closed,
    /// An adapter's settings (feature `service`).
    #[error("settings: {0}")]
    Config(String),
    /// An adapter's HTTP server failed (feature `service`).
    #[error("HTTP server: {0}")]
    Serve(std::io::Error),
    /// The publisher's background work failed (its spool could not be read or written).
    #[error("the publisher stopped: {0}")]
    Stopped(String),
}

/// An event the server refused for good, by id, with the server's answer.
#[derive(Debug, Clone)]
pub struct Rejection {
    pub event_id: String,
    pub status: tonic::Status,
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (code, message) = (self.status.code(), self.status.message());
        write!(f, "event {}: {code}: {message}", self.event_id)
    }
}

fn summary(rejections: &[Rejection]) -> String {
    let shown: Vec<String> = rejections.iter().take(3).map(|r| r.to_string()).collect();
    match rejections.len().saturating_sub(shown.len()) {
        0 => shown.join("; "),
        more => format!("{} (and {more} more)", shown.join("; ")),
    }
}

impl Error {
    /// Whether sending the same request again may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Session(_) | Self::QueueFull { .. } | Self::SpoolFull { .. } => true,
            Self::Connect { .. } | Self::Status(_) => {
                matches!(retry::verdict(self), Verdict::Retry { .. })
            }
            Self::Json { .. }
            | Self::Io(_)
            | Self::Token(_)
            | Self::Tls(_)
            | Self::Spool { .. }
            | Self::SpoolCorrupt { .. }
            | Self::SpoolLocked { .. }
            | Self::SpoolRecord { .. }
            | Self::SpoolCursor { .. }
            | Self::SpoolDecode { .. }
            | Self::Rejected(_)
            | Self::Closed
            | Self::Config(_)
            | Self::Serve(_)
            | Self::Stopped(_) => false,
        }
    }
}
