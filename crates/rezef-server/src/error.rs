//! The server's errors and their one mapping to gRPC status codes.

use rezef_events::Violation;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid request: {}", summary(.0))]
    InvalidArgument(Vec<Violation>),
    #[error("{what} is {size}, over the limit of {limit}")]
    TooLarge {
        what: &'static str,
        size: usize,
        limit: usize,
    },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    OutOfRange(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    DeadlineExceeded(String),
    #[error("{0}")]
    Unavailable(String),
    /// Not here, not now: the partition is catching up, moving, or owned by `owner` (for a
    /// client that routes itself). `UNAVAILABLE` with a `RetryInfo`.
    #[error("{message}")]
    Retry {
        message: String,
        retry_after: std::time::Duration,
        owner: Option<String>,
    },
    /// The customer's journey is on another partition (merged into a customer there, or the
    /// identity's owner lives there): the call is sent on for `customer` (see `answer!`).
    #[error(
        "the journey of customer {customer} is kept on partition {partition}: ask for customer \
         {customer}"
    )]
    Moved {
        customer: rezef_events::CustomerId,
        partition: u32,
    },
    /// The owner of a partition answered a forwarded call with this.
    #[error("{}", .0.message())]
    Forwarded(Status),
    #[error(transparent)]
    Log(#[from] rezef_log::Error),
    #[error(transparent)]
    Store(#[from] rezef_store::Error),
    #[error("stored event at offset {offset} cannot be read: {source}")]
    Undecodable {
        offset: u64,
        #[source]
        source: rezef_record::Error,
    },
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("gRPC transport failure: {0}")]
    Transport(#[from] tonic::transport::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The response header (and `ErrorInfo` metadata key, as `owner`) naming the node that owns a
/// partition, for clients that route themselves.
pub const OWNER_HEADER: &str = "x-rezef-owner";
const OWNER_KEY: &str = "owner";

fn summary(violations: &[Violation]) -> String {
    let shown: Vec<_> = violations.iter().take(5).map(ToString::to_string).collect();
    let more = violations.len().saturating_sub(shown.len());
    if more == 0 {
        shown.join("; ")
    } else {
        format!("{} (and {more} more)", shown.join("; "))
    }
}

impl Error {
    /// One invalid field.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self::InvalidArgument(vec![Violation::new(field, description)])
    }

    pub fn code(&self) -> Code {
        match self {
            Self::InvalidArgument(_) | Self::Config(_) => Code::InvalidArgument,
            Self::TooLarge { .. } => Code::ResourceExhausted,
            Self::NotFound(_) => Code::NotFound,
            Self::OutOfRange(_) => Code::OutOfRange,
            Self::FailedPrecondition(_) => Code::FailedPrecondition,
            Self::AlreadyExists(_) => Code::AlreadyExists,
            Self::PermissionDenied(_) => Code::PermissionDenied,
            Self::DeadlineExceeded(_) => Code::DeadlineExceeded,
            Self::Unavailable(_) | Self::Retry { .. } | Self::Moved { .. } => Code::Unavailable,
            Self::Forwarded(status) => status.code(),
            Self::Log(error) => match error {
                rezef_log::Error::BatchTooLarge { .. } => Code::ResourceExhausted,
                rezef_log::Error::OffsetOutOfRange { .. } => Code::OutOfRange,
                rezef_log::Error::EmptyBatch => Code::InvalidArgument,
                // The write was not acknowledged: the client may retry (ids make it safe).
                rezef_log::Error::Closed
                | rezef_log::Error::Io { .. }
                | rezef_log::Error::Unavailable(_)
                | rezef_log::Error::Interleaved { .. } => Code::Unavailable,
                // The brokers refuse the topic or the settings: an operator must act.
                rezef_log::Error::Refused(_) | rezef_log::Error::Config(_) => {
                    Code::FailedPrecondition
                }
                _ => Code::Internal,
            },
            Self::Undecodable { .. } => Code::DataLoss,
            Self::Store(_) | Self::Bind { .. } | Self::Transport(_) => Code::Internal,
        }
    }
}

/// A status code's name as the gRPC contract spells it (`FAILED_PRECONDITION`), for answers
/// that carry a code inside a message (an agent session's `Refused.code`).
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

impl From<Error> for Status {
    fn from(error: Error) -> Status {
        let code = error.code();
        if code == Code::Internal {
            tracing::error!(%error, "internal error");
        }
        match error {
            Error::Forwarded(status) => status,
            Error::InvalidArgument(ref violations) => {
                let details = ErrorDetails::with_bad_request(
                    violations
                        .iter()
                        .map(|v| FieldViolation::new(&v.field, &v.description))
                        .collect::<Vec<_>>(),
                );
                Status::with_error_details(code, error.to_string(), details)
            }
            Error::Retry {
                retry_after,
                ref owner,
                ..
            } => {
                let mut details = ErrorDetails::with_retry_info(Some(retry_after));
                if let Some(owner) = owner {
                    let owner: std::collections::HashMap<String, String> =
                        [(OWNER_KEY.to_owned(), owner.clone())].into();
                    details.set_error_info("PARTITION_ELSEWHERE", "rezef", owner);
                }
                let mut status = Status::with_error_details(code, error.to_string(), details);
                if let Some(value) = owner.as_deref().and_then(|o| o.parse().ok()) {
                    status.metadata_mut().insert(OWNER_HEADER, value);
                }
                status
            }
            _ => Status::new(code, error.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_failures_say_whether_a_retry_can_help() {
        let code = |error: rezef_log::Error| Error::Log(error).code();
        let retry = [
            rezef_log::Error::Closed,
            rezef_log::Error::Unavailable("brokers down".into()),
            rezef_log::Error::Interleaved {
                count: 2,
                first: 0,
                last: 5,
            },
        ];
        for error in retry {
            assert_eq!(code(error), Code::Unavailable);
        }
        for error in [
            rezef_log::Error::Refused("unknown topic".into()),
            rezef_log::Error::Config("no brokers".into()),
        ] {
            assert_eq!(code(error), Code::FailedPrecondition);
        }
        assert_eq!(
            code(rezef_log::Error::BatchTooLarge { bytes: 2, limit: 1 }),
            Code::ResourceExhausted
        );
    }

    #[test]
    fn code_names_are_the_contract_s() {
        assert_eq!(code_name(Code::FailedPrecondition), "FAILED_PRECONDITION");
        assert_eq!(code_name(Code::NotFound), "NOT_FOUND");
        assert_eq!(code_name(Code::InvalidArgument), "INVALID_ARGUMENT");
        assert_eq!(code_name(Code::Ok), "OK");
    }

    #[test]
    fn a_partition_elsewhere_says_when_to_retry_and_where() {
        let status = Status::from(Error::Retry {
            message: "partition 3 is owned by node b".into(),
            retry_after: std::time::Duration::from_millis(250),
            owner: Some("http://b:50051".into()),
        });
        assert_eq!(status.code(), Code::Unavailable);
        let details = status.get_error_details();
        let retry = details.retry_info().and_then(|r| r.retry_delay);
        assert_eq!(retry, Some(std::time::Duration::from_millis(250)));
        let owner = details
            .error_info()
            .and_then(|i| i.metadata.get("owner").cloned());
        assert_eq!(owner.as_deref(), Some("http://b:50051"));
        let header = status
            .metadata()
            .get(OWNER_HEADER)
            .and_then(|v| v.to_str().ok());
        assert_eq!(header, Some("http://b:50051"));
    }
}
