//! Rezef's measurement domain: what a contact centre's service really was, derived from the
//! log and never hand-entered. Pure: no I/O, no clock of its own; the projector feeds it, a
//! report reads it.
//!
//! Service level is reported two ways side by side: the classic one (from queue entry, as
//! vendors define it) and the journey-true one (from first contact, callbacks with their
//! real wait, IVR, bot and callback abandons and closed-hours contacts counted), with the
//! reason for every contact they disagree on. `docs/measurement.md` defines every figure and
//! works a scripted day through by hand.
//!
//! # Layout
//! - [`Measurer`] (`observer`, `applied`, `seen`, `stations`, `verdict`, `resolved`, `fcr`): fed each event the
//!   journey fold applied with the journey after it (or what [`Observation`] read of them, to
//!   measure on another thread), it produces [`Measured`] records
//!   ([`record`]): per interaction when it ends, per wrap-up, per resolved conversation, per
//!   first-contact-resolution decision, per survey. Its state is serde and bounded in time.
//! - [`MeasureConfig`] ([`config`], [`hours`]): a tenant's targets, short-abandon threshold,
//!   FCR window and business hours; [`MeasureRules`] ([`rules`]): every tenant's.
//! - [`Figures`] ([`figures`], [`spread`]): records summed, mergeable in any order;
//!   durations as HdrHistograms for p50/p90/p99. [`Buckets`] ([`buckets`]): figures by
//!   interval, queue, channel and intent, and reports over them (one `Buckets` per tenant,
//!   while one `Measurer` serves them all). [`Scorecard`]: the four dimensions of quality.
//! - [`tracker`]: a customer's open conversation station by station (the pizza tracker).
//!
//! ```
//! use rezef_events::testing::EventBuilder;
//! use rezef_events::{Channel, Journey, fold::customer_id_for};
//! use rezef_measure::{Buckets, MeasureConfig, Measurer};
//!
//! let config = MeasureConfig::default();
//! let (mut measurer, mut buckets) = (Measurer::new(), Buckets::default());
//! let mut call = EventBuilder::phone("acme", "+972501234567").on(Channel::Voice, "call-1");
//! let events = [call.started(), call.assigned("agent-1"), call.event(
//!     rezef_events::Payload::InteractionEnded { reason: None },
//! )];
//! let Some(rezef_events::CustomerRef::Identity(identity)) = &events[0].customer else {
//!     unreachable!()
//! };
//! let customer = customer_id_for(&events[0].tenant_id, identity);
//! let mut journey = Journey::new(events[0].tenant_id.clone(), customer, events[0].occurred_at);
//! for (offset, event) in events.iter().enumerate() {
//!     let applied = journey.apply(offset as u64, event);
//!     for record in measurer.observe(&config, offset as u64, event, None, (&journey, &applied)) {
//!         buckets.add(&record);
//!     }
//! }
//! assert_eq!(buckets.total().contacts, 1);
//! ```

mod applied;
pub mod buckets;
pub mod config;
mod error;
mod fcr;
pub mod figures;
pub mod hours;
mod observation;
mod observer;
mod pairs;
pub mod record;
mod resolved;
pub mod rules;
pub mod scorecard;
mod seen;
pub mod spread;
mod stations;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod tracker;
mod verdict;

pub use buckets::{BucketKey, Buckets, Grouping, Interval, Report};
pub use config::MeasureConfig;
pub use error::{Error, Result};
pub use figures::Figures;
pub use observation::Observation;
pub use observer::{FORGET_AFTER, Measurer};
pub use record::Measured;
pub use rules::MeasureRules;
pub use scorecard::Scorecard;
