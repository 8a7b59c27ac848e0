//! The email channel adapter: RFC 5322 messages, from a maildir or from a mail server's
//! pipe, become Rezef events published through the SDK's [`rezef_adapter::Publisher`].
//! Parsing is `mail-parser`'s (Stalwart Labs; maintained, MIME and charsets, HTML to text).
//!
//! # Layout
//! - [`mail`]: the message as the adapter reads it, or why it is malformed (pure);
//! - [`translate`]: the core: a message and the thread index give events, attachment
//!   bytes and a thread entry (pure; given/when/then and property tests);
//! - [`threads`]: the thread index on disk, message id → interaction and customer;
//! - [`attachments`]: attachment bytes by content hash;
//! - [`intake`]: one message taken, in crash-safe order, counted ([`metrics`]);
//! - [`maildir`]: `new/` → taken → `cur/…:2,S`, or `failed/`;
//! - [`deliver`]: one message on standard input, the exit codes a mail server reads;
//! - [`config`]: the TOML configuration.
//!
//! docs/adapters.md, "The email adapter", says how to deploy it and its threading rules.

pub mod attachments;
pub mod config;
pub mod deliver;
mod error;
pub mod intake;
pub mod mail;
pub mod maildir;
pub mod metrics;
pub mod threads;
pub mod translate;

pub use error::{Error, Result};
