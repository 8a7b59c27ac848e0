//! Rezef's domain: the event model, the rules an event must follow, and the pure fold from
//! a customer's events to their journey state. No I/O happens here; the log, the store and
//! the gRPC edge sit around it.
//!
//! # Layout
//! - [`event`]: the facts adapters publish ([`Event`], [`Payload`]), named in the past tense.
//! - [`ids`], [`identity`], [`time`]: validated identifiers, normalised channel identities
//!   and timestamps; [`phone`]: phone numbers by libphonenumber's rules, in a region;
//!   [`language`]: BCP 47 language tags, canonical, and who speaks what;
//!   [`unidentified`]: contacts from numbers that identify no one.
//! - `validate`: the rules beyond the types ([`Event::validate`]).
//! - [`journey`] and [`fold`]: the state a customer's events fold into, and the fold itself,
//!   under a tenant's [`policy`]; [`merge`]: joining two customers and undoing it;
//!   [`resolution`]: whether identities an event shows make it another customer's, merge
//!   two, or are refused (pure decisions the projector carries out); [`bound`]: how a
//!   journey with years of history stays small.
//! - [`resume`]: what a channel learns when a contact arrives; [`search`]: what finds a
//!   customer by attribute or by the start of an identity; [`mask`]: what is masked
//!   before it is served (sensitive values, card numbers, one-time codes).
//! - [`personal`]: what in an event is personal, taken out to be sealed under a key that
//!   forgetting the customer destroys (crypto-shredding), and put back; `erase`: what
//!   forgetting does to a journey the projection holds ([`Journey::erase`]).
//! - [`agent`]: agents' presence; [`routed`]: the contacts routing holds, as its log
//!   records them (so that they survive its restart); [`explained`]: what routing saw when
//!   it chose an agent, recorded with the decision.
//! - [`codec`]: the JSON form of an event (log records of earlier versions, projectors'
//!   messages; `rezef-record` reads and writes records).
//! - [`partition`]: which partition of a partitioned log an event belongs to; [`handover`]:
//!   what partitions tell each other so that one person keeps one journey; [`snapshot`]: a
//!   journey in the versioned layout it leaves its partition in (handovers, other nodes).
//! - [`by_tenant`]: maps keyed by tenant then id, looked up without cloning keys (the
//!   projection's tables, the measurer's books).
//!
//! ```
//! use rezef_events::{Journey, fold::customer_id_for, testing::EventBuilder};
//!
//! let mut chat = EventBuilder::visitor("acme", "visitor-1");
//! let first = chat.started();
//! let identity = match &first.customer {
//!     Some(rezef_events::CustomerRef::Identity(identity)) => identity.clone(),
//!     _ => unreachable!(),
//! };
//! let customer = customer_id_for(&first.tenant_id, &identity);
//! let mut journey = Journey::new(first.tenant_id.clone(), customer, first.occurred_at);
//! journey.apply(0, &first);
//! journey.apply(1, &chat.intent("billing.dispute", 0.92));
//! let open = journey.open_conversation().expect("a conversation is open");
//! assert_eq!(open.intent.as_ref().map(|i| i.intent.as_str()), Some("billing.dispute"));
//! ```

pub mod agent;
pub mod attempts;
pub mod bound;
pub mod by_tenant;
pub mod codec;
mod erase;
mod error;
pub mod event;
pub mod explained;
pub mod fold;
pub mod handover;
pub mod identity;
pub mod ids;
pub mod journey;
pub mod language;
pub mod mask;
pub mod merge;
pub mod partition;
pub mod personal;
pub mod phone;
pub mod policy;
pub mod resolution;
pub mod resume;
pub mod routed;
pub mod search;
pub mod snapshot;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod time;
pub mod token;
pub mod unidentified;
mod validate;

pub use error::{Error, Result, Violation};
pub use event::{Channel, CustomerRef, Event, Payload};
pub use identity::{ChannelIdentity, IdentityKind};
pub use ids::{AgentId, ConversationId, CustomerId, EventId, InteractionId, TenantId};
pub use journey::Journey;
pub use snapshot::JourneySnapshot;
pub use time::Timestamp;
pub use validate::{MAX_CONTEXT_VALUE_LEN, MAX_TEXT_LEN, is_continuation_token, is_language_tag};
