//! The adapter's errors. [`Error::is_temporary`] tells a failure that may pass (the spool
//! full or locked, a disk error: the message stays where it is, a mail server retries) from
//! a message that can never be taken ([`Malformed`]).

use std::path::PathBuf;

use crate::mail::Malformed;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("malformed message: {0}")]
    Malformed(#[from] Malformed),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("thread index {}: line {line} is damaged", path.display())]
    IndexCorrupt { path: PathBuf, line: usize },
    #[error(transparent)]
    Publish(#[from] rezef_adapter::Error),
    #[error("configuration: {0}")]
    Config(String),
    /// A task on the blocking pool panicked or was cancelled.
    #[error("disk work stopped: {0}")]
    Task(String),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }

    /// Whether the same message may be taken later (else it never will be).
    pub fn is_temporary(&self) -> bool {
        match self {
            Self::Malformed(_) => false,
            Self::Io { .. }
            | Self::IndexCorrupt { .. }
            | Self::Publish(_)
            | Self::Config(_)
            | Self::Task(_) => true,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
