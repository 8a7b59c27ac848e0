//! How Rezef stores an event in a log record ([`encode`], [`decode`]; the formats are in
//! [`codec`]), and the conversion between domain events and the public `rezef.v1.Event`
//! that both the record and the gRPC edge use ([`event_from_proto`], [`event_to_proto`],
//! checked with [`check::Check`]); [`sealed`]: records whose personal values are sealed
//! under keys that forgetting a customer destroys.
//!
//! Besides the server and the adapter SDK, this is the one crate that touches generated
//! types, on purpose: the log's records *are* the public contract's events, so what an
//! adapter sends, what the log keeps and what an auditor replays are one schema.

pub mod check;
pub mod codec;
mod error;
mod event;
mod explained;
pub mod sealed;

pub use codec::{decode, encode, may_end_contact};
pub use error::{Error, Result};
pub use event::{event_from_proto, event_to_proto, event_under};
