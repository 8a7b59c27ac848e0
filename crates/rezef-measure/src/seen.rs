//! What the measurer sees of an open interaction that its journey does not keep: a
//! callback's original arrival, the first agent message of
//! a written contact, a containment in self service. Kept only for interactions where one
//! of these happened, and forgotten when the interaction is measured (one with a callback:
//! when idle, see `observer`).

use serde::{Deserialize, Serialize};

use rezef_events::event::{Participant, StepOutcome};
use rezef_events::{Payload, Timestamp};

/// What was seen of one open interaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Seen {
    /// A callback was requested: the customer's original arrival.
    pub callback_arrival: Option<Timestamp>,
    pub first_agent_message: Option<Timestamp>,
    /// Self service resolved the need.
    pub contained: bool,
    /// Measured already: kept for an interaction with a callback, whose stage visits cannot
    /// tell a leg that waits for its callback from an end, so that it is measured once.
    pub measured: bool,
    /// The latest event about it, to forget interactions that never end.
    pub touched_at: Timestamp,
}

impl Seen {
    pub fn new(at: Timestamp) -> Self {
        Self {
            callback_arrival: None,
            first_agent_message: None,
            contained: false,
            measured: false,
            touched_at: at,
        }
    }

    /// Notes an event at `at` about the interaction, which started at `started_at`.
    pub fn note(&mut self, note: Note, at: Timestamp, started_at: Timestamp) {
        self.touched_at = at;
        match note {
            Note::Contained => self.contained = true,
            Note::AgentMessage => {
                self.first_agent_message.get_or_insert(at);
            }
            Note::CallbackRequested(original_arrival_at) => {
                // Never after the request itself; the earliest if asked for twice.
                let arrived = original_arrival_at.unwrap_or(started_at).min(at);
                let earliest = self.callback_arrival.map_or(arrived, |a| a.min(arrived));
                self.callback_arrival = Some(earliest);
            }
            Note::Touched => {}
        }
    }
}

/// What an event about an interaction tells [`Seen`]: read from its payload where the
/// event is, noted where the measurer's books are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Note {
    /// Self service resolved the need.
    Contained,
    AgentMessage,
    /// A callback was requested; the customer's original arrival, if the event says.
    CallbackRequested(Option<Timestamp>),
    /// Nothing but that it happened.
    Touched,
}

impl Note {
    pub fn of(payload: &Payload) -> Self {
        match payload {
            Payload::SelfServiceStepCompleted {
                outcome: Some(StepOutcome::Contained),
                ..
            } => Self::Contained,
            Payload::MessageSent {
                from: Participant::Agent,
                ..
            } => Self::AgentMessage,
            Payload::CallbackRequested {
                original_arrival_at,
                ..
            } => Self::CallbackRequested(*original_arrival_at),
            _ => Self::Touched,
        }
    }

    /// Whether it tells something worth keeping for an interaction with no entry.
    pub fn worth_keeping(self) -> bool {
        self != Self::Touched
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_unix_millis(secs * 1000)
    }

    fn message(from: Participant) -> Payload {
        Payload::MessageSent {
            from,
            sender_id: String::new(),
            text: String::new(),
            attachments: Vec::new(),
            sensitive: false,
        }
    }

    #[test]
    fn given_customer_messages_then_only_the_first_agent_message_is_kept() {
        assert!(!Note::of(&message(Participant::Customer)).worth_keeping());
        let mut seen = Seen::new(at(0));
        seen.note(Note::of(&message(Participant::Customer)), at(1), at(0));
        seen.note(Note::of(&message(Participant::Agent)), at(2), at(0));
        seen.note(Note::of(&message(Participant::Agent)), at(3), at(0));
        assert_eq!(seen.first_agent_message, Some(at(2)));
    }

    #[test]
    fn given_a_step_that_continues_then_not_contained() {
        let step = |outcome| Payload::SelfServiceStepCompleted {
            step_id: "menu".into(),
            prompt: String::new(),
            customer_input: String::new(),
            outcome: Some(outcome),
        };
        let mut seen = Seen::new(at(0));
        seen.note(Note::of(&step(StepOutcome::Continued)), at(1), at(0));
        assert!(!seen.contained);
        seen.note(Note::of(&step(StepOutcome::Contained)), at(2), at(0));
        assert!(seen.contained);
    }
}
