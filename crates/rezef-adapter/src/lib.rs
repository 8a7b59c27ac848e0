//! The client SDK of Rezef, for channel adapters (voice gateways, chat widgets, bots, email
//! connectors), for agent desktops ([`AgentSession`]) and for services that read journeys.
//!
//! # Layout
//! - `client.rs`: [`Client`], the services typed, with the errors an adapter must tell apart
//!   (its own mistakes, not to retry; the server unavailable, to retry), and the API key sent
//!   on every call ([`Client::with_token`]).
//! - `error.rs`: [`Error`], what went wrong and whether to try again.
//! - `factory.rs`: [`EventFactory`], well-formed events from who and where, said once.
//! - [`publisher`]: [`Publisher`], events handed over once and delivered whatever happens to
//!   the server (batches, retries, backpressure), through
//! - [`spool`]: [`spool::Spool`], the accepted events on local disk until acknowledged;
//! - [`retry`]: which failures are retried, and the backoff between attempts.
//! - `agent.rs`: [`AgentSession`], an agent desktop's session.
//! - [`jsonl`]: events as JSON Lines, `rezef publish`'s and `rezef replay`'s format.
//! - [`export`]: `rezef replay`'s export, those lines chained by a hash to check it later.
//! - [`conformance`] (feature `conformance`): what an adapter must get right (its events
//!   validate, ids are stable, retries are safe), as checks for its tests.
//! - `service` (feature `service`): the runtime the reference adapter binaries share
//!   (settings, HTTP with health and metrics, logs, graceful stop).
//!
//! ```no_run
//! # async fn example() -> Result<(), rezef_adapter::Error> {
//! use rezef_adapter::{Client, EventFactory, proto};
//!
//! let mut client = Client::connect("http://127.0.0.1:50051").await?;
//! let chat = EventFactory::new("acme", "web-chat")
//!     .identity(proto::IdentityKind::ChatVisitor, "visitor-42")
//!     .on(proto::Channel::Webchat, "chat-1");
//! let ack = client.publish(vec![chat.intent_detected("billing.dispute", 0.9, "bot")]).await?;
//! let journey = client
//!     .journey("acme", chat.customer_ref(), Some(ack.first_offset))
//!     .await?;
//! println!("{:?}", journey.journey);
//! # Ok(()) }
//! ```

mod agent;
mod client;
#[cfg(feature = "conformance")]
pub mod conformance;
mod error;
pub mod export;
mod factory;
pub mod jsonl;
pub mod publisher;
pub mod retry;
#[cfg(feature = "service")]
pub mod service;
pub mod spool;

pub use agent::AgentSession;
pub use client::{Auth, Client, TlsOptions};
pub use error::{Error, Rejection};
pub use factory::{EventFactory, identity_ref, new_event_id};
pub use publisher::{Publisher, PublisherConfig, PublisherStats};
/// The `rezef.v1` contract, as adapters see it.
pub use rezef_proto::v1 as proto;
