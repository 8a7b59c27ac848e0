//! What every adapter must get right, as checks an adapter's own tests run (feature
//! `conformance`; docs/adapters.md, "Conformance"):
//!
//! - **its events validate**: each passes the checks the server makes on `Publish`, with the
//!   same field paths in the findings ([`valid`]);
//! - **ids are stable**: the same input (a webhook Twilio retries, a mail delivered twice)
//!   becomes the same events with the same ids, so the server applies it once ([`stable`]);
//!   different inputs never share an id ([`distinct`]);
//! - **retries are safe**: publishing the adapter's events again, as the SDK's publisher does
//!   after an outage, leaves every journey as it was, the copies counted as duplicates
//!   ([`retries_are_safe`], against a running server).
//!
//! The first three need no server: [`check`] runs them on an adapter function called twice.
//! An adapter's test:
//!
//! ```
//! use rezef_adapter::{EventFactory, conformance, proto};
//!
//! // The adapter's translation of one input (here: a chat message with a stable id).
//! fn translate(message_id: &str) -> Vec<proto::Event> {
//!     let chat = EventFactory::new("acme", "my-chat")
//!         .identity(proto::IdentityKind::ChatVisitor, "visitor-42")
//!         .on(proto::Channel::Webchat, "chat-1");
//!     let mut event = chat.message(proto::Participant::Customer, "hello");
//!     event.event_id = format!("my-chat:{message_id}");
//!     vec![event]
//! }
//!
//! conformance::check(|| translate("m-1")).assert_conforms();
//! ```

mod offline;
mod retries;

use std::fmt;

pub use offline::{distinct, stable, valid};
pub use retries::retries_are_safe;

use crate::proto;

/// Which rule a finding breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// The server would refuse the event.
    Valid,
    /// Two different events share an id (the server would apply only the first).
    Distinct,
    /// The same input gave different ids, or the same id to different content.
    Stable,
    /// Publishing again changed a journey, or was not counted as a duplicate.
    SafeRetry,
}

/// One way an adapter's events break a [`Rule`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub rule: Rule,
    /// The event's id (empty when the event has none).
    pub event_id: String,
    /// What is wrong; for [`Rule::Valid`], the field's path and the server's description.
    pub detail: String,
}

impl Finding {
    fn new(rule: Rule, event: &proto::Event, detail: impl Into<String>) -> Self {
        Self {
            rule,
            event_id: event.event_id.clone(),
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} (event {:?}): {}",
            self.rule, self.event_id, self.detail
        )
    }
}

/// What the checks found; empty when the adapter conforms.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn conforms(&self) -> bool {
        self.findings.is_empty()
    }

    /// For tests: panics listing every finding.
    #[track_caller]
    pub fn assert_conforms(&self) {
        if !self.conforms() {
            let lines: Vec<String> = self.findings.iter().map(ToString::to_string).collect();
            panic!(
                "the adapter's events do not conform:\n  {}",
                lines.join("\n  ")
            );
        }
    }
}

/// The checks that need no server, on what `translate` makes of one input, called twice (as
/// when the input is delivered again): the events validate, their ids are distinct, and the
/// second call gives the same events with the same ids.
pub fn check(mut translate: impl FnMut() -> Vec<proto::Event>) -> Report {
    let first = translate();
    let second = translate();
    let mut findings = valid(&first);
    findings.extend(distinct(&first));
    findings.extend(stable(&first, &second));
    Report { findings }
}
