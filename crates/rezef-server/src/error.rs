//! The server's errors and their one mapping to gRPC status codes.
//!
//! A status travels in HTTP/2 headers (`grpc-message`, percent-encoded, and
//! `grpc-status-details-bin`, base64), and clients refuse headers past their limit: 8 KiB in
//! grpc-core and grpc-java, 16 KiB in hyper. An error quoting what the caller sent (a
//! 20,000-character configuration line) would then reach the client as
//! `RESOURCE_EXHAUSTED "received metadata size exceeds hard limit"` instead of what went
//! wrong. So the mapping bounds every message and detail: at most 1 KiB of message (3 KiB
//! once percent-encoded) and 2 KiB of field violations (under 3 KiB in base64).

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
    /// A key over its limits (`[auth.limits]`): `RESOURCE_EXHAUSTED` with a `RetryInfo`.
    #[error("{message}")]
    Exhausted {
        message: String,
        retry_after: std::time::Duration,
    },
    /// No key, or one this server does not know.
    #[error(transparent)]
    Unauthenticated(#[from] rezef_auth::Unauthenticated),
    /// A key whose roles or tenant do not allow the call.
    #[error(transparent)]
    Denied(#[from] rezef_auth::Denied),
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
    /// Sealing records' personal values, or the key store under them, failed.
    #[error("sealing personal values: {0}")]
    Sealing(#[source] rezef_record::Error),
    /// The log's hash chain does not check out (a replay that verifies it).
    #[error("the log's hash chain: {0}")]
    ChainBroken(Box<rezef_log::Broken>),
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
    #[error("cannot bind the metrics endpoint (metrics.listen) {addr}: {source}")]
    MetricsBind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "cannot bind the dashboard (dashboard.listen) {addr}: {source}; give it another \
         address (--dashboard-listen) or turn it off ([dashboard] enabled = false)"
    )]
    DashboardBind {
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

/// The longest status message, in bytes before percent-encoding.
pub const MAX_MESSAGE_BYTES: usize = 1024;
/// The most bytes of field violations in a status's `BadRequest` details.
pub const MAX_DETAILS_BYTES: usize = 2048;
/// The longest field path and description of one violation in the details.
const MAX_FIELD_BYTES: usize = 256;
const MAX_DESCRIPTION_BYTES: usize = 512;
/// The longest violation quoted in a message, so that five and their count fit in it.
const MAX_SUMMARY_BYTES: usize = 160;
const ELLIPSIS: &str = "…";

/// `text` cut to at most `limit` bytes, on a character boundary, with an ellipsis when cut.
fn bounded(text: &str, limit: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= limit {
        return text.into();
    }
    let mut end = limit.saturating_sub(ELLIPSIS.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{ELLIPSIS}", &text[..end]).into()
}

/// The violations that fit in a status's details, in order, each bounded (the message
/// counts them all).
fn bounded_violations(violations: &[Violation]) -> Vec<FieldViolation> {
    let mut size = 0;
    violations
        .iter()
        .map(|v| {
            let field = bounded(&v.field, MAX_FIELD_BYTES);
            let description = bounded(&v.description, MAX_DESCRIPTION_BYTES);
            FieldViolation::new(field, description)
        })
        .take_while(|v| {
            // A few bytes of protobuf framing each.
            size += v.field.len() + v.description.len() + 8;
            size <= MAX_DETAILS_BYTES
        })
        .collect()
}

fn summary(violations: &[Violation]) -> String {
    let shown: Vec<_> = (violations.iter().take(5))
        .map(|v| bounded(&v.to_string(), MAX_SUMMARY_BYTES).into_owned())
        .collect();
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

    /// Whether a partition is moving: it has no owner yet, or its owner is still catching
    /// up (said here, or by the owner asked), the states every rebalance passes through. An
    /// owner that did not answer is not moving: its status names it (`owner`).
    pub fn is_moving(&self) -> bool {
        match self {
            Self::Retry { owner, .. } => owner.is_none(),
            Self::Forwarded(status) => {
                status.code() == Code::Unavailable
                    && status.get_details_retry_info().is_some()
                    && status.get_details_error_info().is_none()
            }
            _ => false,
        }
    }

    pub fn code(&self) -> Code {
        match self {
            Self::InvalidArgument(_) | Self::Config(_) => Code::InvalidArgument,
            Self::TooLarge { .. } | Self::Exhausted { .. } => Code::ResourceExhausted,
            Self::NotFound(_) => Code::NotFound,
            Self::OutOfRange(_) => Code::OutOfRange,
            Self::FailedPrecondition(_) => Code::FailedPrecondition,
            Self::AlreadyExists(_) => Code::AlreadyExists,
            Self::PermissionDenied(_) | Self::Denied(_) => Code::PermissionDenied,
            Self::Unauthenticated(_) => Code::Unauthenticated,
            Self::DeadlineExceeded(_) => Code::DeadlineExceeded,
            Self::Unavailable(_) | Self::Retry { .. } | Self::Moved { .. } => Code::Unavailable,
            Self::Forwarded(status) => status.code(),
            Self::Log(error) | Self::Store(rezef_store::Error::Log(error)) => log_code(error),
            Self::Undecodable { .. } | Self::ChainBroken(_) => Code::DataLoss,
            // Not acknowledged: the client may retry (ids make it safe).
            Self::Sealing(rezef_record::Error::Keys(_)) => Code::Unavailable,
            Self::Sealing(_) => Code::Internal,
            // Off by configuration: an operator must turn it on (and rebuild).
            Self::Store(rezef_store::Error::MeasurementOff) => Code::FailedPrecondition,
            // Retention removed the history the answer needs: nothing to retry.
            Self::Store(rezef_store::Error::HistoryGone { .. }) => Code::FailedPrecondition,
            Self::Store(_)
            | Self::Bind { .. }
            | Self::MetricsBind { .. }
            | Self::DashboardBind { .. }
            | Self::Transport(_) => Code::Internal,
        }
    }
}

/// What a log failure tells the client, by what it can do about it.
fn log_code(error: &rezef_log::Error) -> Code {
    match error {
        // Not acknowledged; writes resume by themselves once space is freed.
        rezef_log::Error::BatchTooLarge { .. } | rezef_log::Error::NoSpace { .. } => {
            Code::ResourceExhausted
        }
        rezef_log::Error::OffsetOutOfRange { .. } => Code::OutOfRange,
        rezef_log::Error::EmptyBatch => Code::InvalidArgument,
        // The write was not acknowledged: the client may retry (ids make it safe).
        rezef_log::Error::Closed
        | rezef_log::Error::Io { .. }
        | rezef_log::Error::Unavailable(_)
        | rezef_log::Error::Interleaved { .. } => Code::Unavailable,
        // The brokers refuse the topic or the settings, or another process holds the
        // log: an operator must act.
        rezef_log::Error::Refused(_)
        | rezef_log::Error::Config(_)
        | rezef_log::Error::Locked { .. } => Code::FailedPrecondition,
        // Acknowledged data failed its checks: the log refuses to guess.
        rezef_log::Error::Corrupt { .. } => Code::DataLoss,
    }
}

/// A request's violations, as a check finishes them (`Check::finish`).
impl From<Vec<Violation>> for Error {
    fn from(violations: Vec<Violation>) -> Self {
        Self::InvalidArgument(violations)
    }
}

/// Routing's refusals, by what the caller can do about them.
impl From<rezef_routing::RoutingError> for Error {
    fn from(error: rezef_routing::RoutingError) -> Self {
        match error {
            rezef_routing::RoutingError::DuplicateContact(_) => {
                Error::AlreadyExists(error.to_string())
            }
            rezef_routing::RoutingError::UnknownContact(_)
            | rezef_routing::RoutingError::UnknownAgent(_)
            | rezef_routing::RoutingError::UnknownQueue(_) => Error::NotFound(error.to_string()),
            rezef_routing::RoutingError::Missing(_) => Error::invalid("request", error.to_string()),
            rezef_routing::RoutingError::UnknownOffer(_)
            | rezef_routing::RoutingError::NotYourOffer { .. }
            | rezef_routing::RoutingError::Assigned { .. }
            | rezef_routing::RoutingError::NotAssigned { .. }
            | rezef_routing::RoutingError::TransferPending(_)
            | rezef_routing::RoutingError::NoConsult(_)
            | rezef_routing::RoutingError::AgentUnavailable(_) => {
                Error::FailedPrecondition(error.to_string())
            }
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

/// The HTTP status the dashboard answers for a call that ended with `code`
/// (`crate::dashboard`), the gRPC message beside it.
pub fn http_status(code: Code) -> http::StatusCode {
    use http::StatusCode as Http;
    match code {
        Code::Ok => Http::OK,
        Code::InvalidArgument | Code::OutOfRange => Http::BAD_REQUEST,
        Code::Unauthenticated => Http::UNAUTHORIZED,
        Code::PermissionDenied => Http::FORBIDDEN,
        Code::NotFound => Http::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted | Code::FailedPrecondition => Http::CONFLICT,
        Code::ResourceExhausted => Http::TOO_MANY_REQUESTS,
        Code::Cancelled | Code::Unavailable => Http::SERVICE_UNAVAILABLE,
        Code::DeadlineExceeded => Http::GATEWAY_TIMEOUT,
        Code::Unimplemented => Http::NOT_IMPLEMENTED,
        Code::Unknown | Code::Internal | Code::DataLoss => Http::INTERNAL_SERVER_ERROR,
    }
}

impl Error {
    /// What a client is told, when the error's own text would show the server's files (paths,
    /// operating-system errors): the whole error goes to the server's log instead.
    fn for_client(&self) -> Option<String> {
        let said = |message: &str| Some(message.to_owned());
        match self {
            Self::Log(rezef_log::Error::Corrupt { .. }) => {
                said("a log segment failed its checks: the server's log says which")
            }
            // The operation and the system's reason (a full disk) help; the path does not.
            Self::Log(rezef_log::Error::Io { op, source, .. }) => {
                Some(format!("the log failed to {op}: {source}"))
            }
            Self::Log(rezef_log::Error::NoSpace { op, source, .. }) => Some(format!(
                "the log's disk is full: could not {op}: {source}; not written, retry once \
                 space is freed"
            )),
            Self::Log(rezef_log::Error::Locked { .. }) => {
                said("the log is held by another process: the server's log says which")
            }
            // Where in which file is for the server's log; the offset and the kind are not.
            Self::ChainBroken(broken) => Some(format!(
                "the log's hash chain breaks at offset {}: {}; records from there on are not \
                 proven to be the ones appended",
                broken.offset, broken.kind
            )),
            Self::Store(
                rezef_store::Error::MeasurementOff | rezef_store::Error::HistoryGone { .. },
            ) => None,
            Self::Store(_) => said("the journey store failed: the server's log says why"),
            _ => None,
        }
    }
}

impl From<Error> for Status {
    fn from(error: Error) -> Status {
        let code = error.code();
        let message = match error.for_client() {
            Some(message) => {
                tracing::error!(%error, "failed: {message}");
                message
            }
            None => {
                if code == Code::Internal {
                    tracing::error!(%error, "internal error");
                }
                bounded(&error.to_string(), MAX_MESSAGE_BYTES).into_owned()
            }
        };
        match error {
            // The owner mapped it here too; only its message is bounded again, in case a
            // transport error quoted something long.
            Error::Forwarded(status) if status.message().len() <= MAX_MESSAGE_BYTES => status,
            Error::Forwarded(status) => {
                Status::with_details(status.code(), message, status.details().to_vec().into())
            }
            Error::InvalidArgument(ref violations) => {
                let details = ErrorDetails::with_bad_request(bounded_violations(violations));
                Status::with_error_details(code, message, details)
            }
            Error::Exhausted { retry_after, .. } => {
                let details = ErrorDetails::with_retry_info(Some(retry_after));
                Status::with_error_details(code, message, details)
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
                let mut status = Status::with_error_details(code, message, details);
                if let Some(value) = owner.as_deref().and_then(|o| o.parse().ok()) {
                    status.metadata_mut().insert(OWNER_HEADER, value);
                }
                status
            }
            _ => Status::new(code, message),
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
            rezef_log::Error::Locked {
                dir: "log".into(),
                lock: "log/lock".into(),
            },
        ] {
            assert_eq!(code(error), Code::FailedPrecondition);
        }
        let corrupt = rezef_log::Error::Corrupt {
            path: "log/00000000000000000000.seg".into(),
            position: 64,
            reason: rezef_log::Corruption::BadMagic,
        };
        let status = Status::from(Error::Log(rezef_log::Error::Corrupt {
            path: "/var/lib/rezef/log/00000000000000000000.seg".into(),
            position: 64,
            reason: rezef_log::Corruption::BadMagic,
        }));
        assert_eq!(status.code(), Code::DataLoss);
        assert!(!status.message().contains("/var/lib"), "{status:?}");
        assert_eq!(code(corrupt), Code::DataLoss);
        assert_eq!(
            code(rezef_log::Error::BatchTooLarge { bytes: 2, limit: 1 }),
            Code::ResourceExhausted
        );
        let full = Status::from(Error::Log(rezef_log::Error::NoSpace {
            op: "write segment",
            path: "/var/lib/rezef/log/00000000000000000000.log".into(),
            source: std::io::Error::from(std::io::ErrorKind::StorageFull),
        }));
        assert_eq!(full.code(), Code::ResourceExhausted);
        assert!(
            full.message().starts_with("the log's disk is full"),
            "{full:?}"
        );
        assert!(!full.message().contains("/var/lib"), "{full:?}");
    }

    #[test]
    fn measurement_off_is_a_precondition_named_to_the_client() {
        let status = Status::from(Error::Store(rezef_store::Error::MeasurementOff));
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert!(
            status.message().contains("[measure] enabled = false"),
            "{status:?}"
        );
        let failed = Status::from(Error::Store(rezef_store::Error::Reopening {
            path: "/var/lib/rezef/store".into(),
        }));
        assert_eq!(failed.code(), Code::Internal);
    }

    /// What a client receives as headers for a status: its message percent-encoded, its
    /// details in base64.
    fn header_bytes(status: &Status) -> usize {
        let encoded_message: usize = status
            .message()
            .bytes()
            .map(|b| {
                if b.is_ascii_graphic() && b != b'%' {
                    1
                } else {
                    3
                }
            })
            .sum();
        encoded_message + status.details().len().div_ceil(3) * 4
    }

    #[test]
    fn every_message_and_detail_fits_a_client_s_metadata_limit() {
        let line = format!("name = \"{}", "é".repeat(10_700));
        let quoted = Status::from(Error::invalid("config.(file)", line.clone()));
        assert_eq!(quoted.code(), Code::InvalidArgument);
        let many: Vec<_> = (0..500)
            .map(|i| Violation::new(format!("events[{i}].{}", "x".repeat(300)), line.clone()))
            .collect();
        let many = Status::from(Error::InvalidArgument(many));
        let long_path = Status::from(Error::NotFound(line.clone()));
        for status in [&quoted, &many, &long_path] {
            assert!(header_bytes(status) < 8 * 1024, "{}", header_bytes(status));
        }
        assert!(long_path.message().ends_with('…'));
        let fields = quoted
            .get_details_bad_request()
            .expect("details")
            .field_violations;
        assert_eq!(fields[0].field, "config.(file)");
        assert!(fields[0].description.starts_with("name = \"éé"));
        let shown = many
            .get_details_bad_request()
            .expect("details")
            .field_violations;
        assert!(!shown.is_empty() && shown.len() < 500, "{}", shown.len());
        assert!(
            many.message().ends_with("(and 495 more)"),
            "{}",
            many.message()
        );
    }

    #[test]
    fn the_dashboard_answers_a_refusal_with_the_http_status_of_its_code() {
        let statuses = [
            (Code::InvalidArgument, 400),
            (Code::Unauthenticated, 401),
            (Code::PermissionDenied, 403),
            (Code::NotFound, 404),
            (Code::FailedPrecondition, 409),
            (Code::ResourceExhausted, 429),
            (Code::Unavailable, 503),
            (Code::DeadlineExceeded, 504),
        ];
        for (code, status) in statuses {
            assert_eq!(http_status(code).as_u16(), status, "{code:?}");
        }
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

    #[test]
    fn a_partition_with_no_owner_or_catching_up_is_moving_an_owner_not_answering_is_not() {
        // Given a partition with no owner (here, or as the owner asked answered), and one
        // whose owner did not answer (its status names it)
        let retry = |owner: Option<&str>| Error::Retry {
            message: "partition 3".into(),
            retry_after: std::time::Duration::from_millis(500),
            owner: owner.map(String::from),
        };
        let cases = [
            (retry(None), true),
            (Error::Forwarded(Status::from(retry(None))), true),
            (retry(Some("http://b:50051")), false),
            (
                Error::Forwarded(Status::from(retry(Some("http://b:50051")))),
                false,
            ),
            (Error::Forwarded(Status::unavailable("no answer")), false),
            (Error::Unavailable("the log".into()), false),
        ];
        // Then only the first two are moving
        for (error, moving) in cases {
            assert_eq!(error.is_moving(), moving, "{error:?}");
        }
    }
}
