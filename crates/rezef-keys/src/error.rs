//! Errors of the key store and of opening sealed values.
//!
//! Structured so that callers react by kind: [`Error::Unsealable`] is an answer about one value
//! (its key is wrong or it was changed), [`Error::BadKeyId`] a caller's input, the rest are the
//! store's failures for an operator ([`Error::Io`], [`Error::Corrupt`], [`Error::Kafka`]: the
//! store refuses to start rather than lose keys).

use std::io;
use std::path::PathBuf;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the key store or when opening a sealed value.
///
/// Exhaustive on purpose: the server maps each variant to a gRPC status by name.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O operation on the store's files failed. Keys asked for were not made (nothing
    /// returned is less durable than promised); keys to destroy may still be in the file.
    #[error("key store I/O failed on {}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// The key file is damaged somewhere other than a torn tail: a record that fails its
    /// checksum or does not parse, followed by more bytes. Opening refuses rather than lose the
    /// keys after it.
    #[error("key store corrupt in {} at byte {offset}: {reason}", path.display())]
    Corrupt {
        /// The key file.
        path: PathBuf,
        /// Byte position of the damaged header or frame.
        offset: u64,
        /// What is wrong.
        reason: &'static str,
    },

    /// The key file was written in a format version this build does not read.
    #[error("key store {} has format version {version}, this build reads 1", path.display())]
    UnsupportedVersion {
        /// The key file.
        path: PathBuf,
        /// The version in its header.
        version: u32,
    },

    /// Another process has the store open: two writers would lose each other's keys.
    #[error("the key store in {} is in use by another process", dir.display())]
    Locked {
        /// The store's directory.
        dir: PathBuf,
    },

    /// The key store's Kafka topic (feature `kafka`): the brokers were not reached in time,
    /// refused a request, or the topic holds a record that is not a key (at open). Keys asked
    /// for were not returned (some may be in the topic, unused); keys to destroy may still be
    /// live. The message names the topic and what was being done.
    #[error("key store on Kafka: {0}")]
    Kafka(String),

    /// The operating system's random source failed (a key could not be made).
    #[error("random source failed: {0}")]
    Random(getrandom::Error),

    /// A key id that is not 32 hexadecimal digits.
    #[error("a key id is 32 hexadecimal digits")]
    BadKeyId,

    /// A sealed value that does not open with this key and associated data: the key is not the
    /// one it was sealed with, the associated data differ, or its bytes were changed or cut.
    #[error("the value does not open with this key and associated data")]
    Unsealable,
}
