//! Which agent messages of a conversation the visitor has not seen yet. The journey's
//! transcript is the latest messages of the whole conversation (bounded, oldest first, each
//! without an id), and every update sends all of it again; so a message is known by when it
//! was sent, who sent it and what it says, and only agent messages sent at or after the
//! newest one the visitor was shown on arrival are new: older ones were before the excerpt
//! the visitor got, from another contact.

use std::collections::HashSet;

use rezef_adapter::proto;

/// A message as the transcript tells it.
type Key = (i64, i32, String, String);

fn key(entry: &proto::TranscriptEntry) -> Key {
    let at = (entry.sent_at.as_ref()).map_or(0, |t| t.seconds * 1_000_000_000 + i64::from(t.nanos));
    (at, entry.from, entry.sender_id.clone(), entry.text.clone())
}

/// The agent messages already sent to the visitor, and from when new ones count.
#[derive(Debug, Default)]
pub struct Forwarder {
    since: Option<i64>,
    sent: HashSet<Key>,
}

impl Forwarder {
    /// For a visitor who was shown `shown` on arrival (oldest first).
    pub fn new(shown: &[proto::TranscriptEntry]) -> Self {
        let sent: HashSet<Key> = shown.iter().map(key).collect();
        let since = sent.iter().map(|k| k.0).max();
        Self { since, sent }
    }

    /// The agent messages of `transcript` the visitor has not been sent, oldest first; they
    /// count as sent from now on.
    pub fn fresh(&mut self, transcript: &[proto::TranscriptEntry]) -> Vec<proto::TranscriptEntry> {
        let agent = proto::Participant::Agent as i32;
        (transcript.iter())
            .filter(|entry| entry.from == agent)
            .filter(|entry| {
                let key = key(entry);
                self.since.is_none_or(|since| key.0 >= since) && self.sent.insert(key)
            })
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn entry(from: proto::Participant, seconds: i64, text: &str) -> proto::TranscriptEntry {
        proto::TranscriptEntry {
            from: from as i32,
            sender_id: "x".into(),
            text: text.into(),
            sent_at: Some(prost_types::Timestamp { seconds, nanos: 0 }),
            ..Default::default()
        }
    }

    use proto::Participant::{Agent, Bot, Customer};

    #[test]
    fn only_new_agent_messages_are_forwarded_once() {
        // Given a visitor shown one agent message at 10,
        let shown = [entry(Customer, 5, "hi"), entry(Agent, 10, "old answer")];
        let mut forwarder = Forwarder::new(&shown);
        // when updates bring it again, with an older agent message and the visitor's own,
        let first = [
            entry(Agent, 3, "older than the excerpt"),
            shown[0].clone(),
            shown[1].clone(),
            entry(Customer, 11, "thanks"),
            entry(Bot, 12, "bye"),
            entry(Agent, 13, "new answer"),
        ];
        // then only the new agent message is forwarded, and only once.
        assert_eq!(forwarder.fresh(&first), vec![first[5].clone()]);
        let mut second = first.to_vec();
        second.push(entry(Agent, 13, "another at the same time"));
        assert_eq!(forwarder.fresh(&second), vec![second[6].clone()]);
        assert!(forwarder.fresh(&second).is_empty());
    }

    #[test]
    fn a_visitor_shown_nothing_gets_every_agent_message() {
        let mut forwarder = Forwarder::new(&[]);
        let transcript = [entry(Agent, 1, "a"), entry(Customer, 2, "b")];
        assert_eq!(forwarder.fresh(&transcript), vec![transcript[0].clone()]);
    }

    proptest! {
        /// However the transcript grows and is cut (bounded, oldest dropped), every agent
        /// message after arrival is forwarded exactly once, in order.
        #[test]
        fn each_agent_message_is_forwarded_exactly_once(
            messages in prop::collection::vec((any::<bool>(), 0u8..3), 1..40),
            window in 3usize..12,
            step in 1usize..5,
        ) {
            let all: Vec<_> = messages.iter().enumerate()
                .map(|(n, (agent, text))| {
                    let from = if *agent { Agent } else { Customer };
                    entry(from, n as i64, &text.to_string())
                })
                .collect();
            let mut forwarder = Forwarder::new(&[]);
            let mut forwarded = Vec::new();
            let mut end = 0;
            while end < all.len() {
                end = (end + step).min(all.len());
                let start = end.saturating_sub(window);
                forwarded.extend(forwarder.fresh(&all[start..end]));
            }
            let expected: Vec<_> = all.iter().filter(|e| e.from == Agent as i32).cloned().collect();
            // Updates at most `step` apart within a window of `window` lose nothing.
            if step <= window {
                prop_assert_eq!(forwarded, expected);
            }
        }
    }
}
