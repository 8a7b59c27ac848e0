//! Journeys stay bounded. A customer with years of contacts must not grow a journey without
//! limit: the fold looks through the journey's conversations on every event, the store and
//! its cache hold journeys whole, and `GetJourney` and `ResumeConversation` read them whole.
//! So a journey keeps its recent history whole and its older history as counts and short
//! summaries. Nothing is lost: every event stays in the log (`Audit.ReplayHistory`).
//!
//! # The bounds
//! - **Conversations**: at most [`MAX_CONVERSATIONS`] whole. Past that, the closed
//!   conversation least recently active becomes a [`ConversationSummary`] in
//!   [`Journey::past`]. Open conversations are never compacted: they close after the
//!   inactivity timeout, and are compacted then if the journey is over its bound.
//! - **Summaries**: at most [`MAX_SUMMARIES`]. Past that, the least recently active are
//!   dropped and only counted, in `Counters::conversations_forgotten` (the journey's and
//!   the share of the member they came with).
//! - **Interactions**: at most [`MAX_INTERACTIONS`] per conversation. Past that, the oldest
//!   ended one (the oldest, if none has ended) is dropped and counted in
//!   `Conversation::earlier_interactions`.
//!
//! # A compacted conversation named again
//! An event naming a compacted conversation (by its id or an alias) brings it back whole
//! from its summary, without the detail the summary dropped (interactions, transcript,
//! context, tokens: that stays in the log), and applies to it as to any conversation it
//! names: an interaction starting in it reopens it as a repeat contact. So a journey never
//! holds two conversations of one id, and the conversation is still counted once. A
//! conversation whose summary was dropped is not known any more: an event naming it opens a
//! new conversation of that id, counted as new.
//!
//! The interactions and continuation tokens of a compacted conversation are not kept: an
//! event carrying one without naming its conversation is placed as a new contact's would be.
//!
//! # Merges
//! A merge brings the absorbed journey's summaries with its conversations, then applies the
//! bounds to the merged journey. An unmerge gives each member its conversations and summaries
//! back; what was compacted while merged stays compacted.

use std::sync::Arc;

use crate::ids::{ConversationId, CustomerId};
use crate::journey::{Conversation, ConversationSummary, Interaction, Journey};

/// How many conversations a journey keeps whole, open ones aside. Twenty needs, most
/// recent first, are more than an agent desktop shows, and the fold's look-ups over them
/// stay a few microseconds.
pub const MAX_CONVERSATIONS: usize = 20;

/// How many compacted conversations a journey keeps as summaries: years of history for a
/// frequent customer, in tens of kilobytes.
pub const MAX_SUMMARIES: usize = 200;

/// How many interactions a conversation keeps whole: a need rarely takes more than a few;
/// a conversation held open for years by an adapter naming it must not grow without limit.
pub const MAX_INTERACTIONS: usize = 50;

impl Journey {
    /// Compacts closed conversations and forgets summaries until the journey is within its
    /// bounds. Cheap when it is: the fold calls it after every event.
    pub(crate) fn keep_bounded(&mut self) {
        while self.conversations.len() > MAX_CONVERSATIONS {
            let Some(index) = self.least_recently_active_closed() else {
                break;
            };
            let summary =
                ConversationSummary::from(Arc::unwrap_or_clone(self.conversations.remove(index)));
            self.remember(summary);
        }
        self.forget_beyond_bound();
    }

    /// The closed conversation with the oldest last activity (the first of equals).
    fn least_recently_active_closed(&self) -> Option<usize> {
        self.conversations
            .iter()
            .enumerate()
            .filter(|(_, c)| c.is_closed())
            .min_by_key(|(_, c)| c.last_activity_at)
            .map(|(index, _)| index)
    }

    /// Files a summary in `past`, which stays ordered by last activity.
    fn remember(&mut self, summary: ConversationSummary) {
        let at = self
            .past
            .partition_point(|s| s.last_activity_at <= summary.last_activity_at);
        self.past.insert(at, summary);
    }

    /// Takes in summaries from elsewhere (a merged journey's), in order of last activity.
    pub(crate) fn remember_all(&mut self, summaries: Vec<ConversationSummary>) {
        self.past.extend(summaries);
        self.past.sort_by_key(|s| s.last_activity_at);
    }

    /// Drops the least recently active summaries past `MAX_SUMMARIES`, counting them for
    /// the journey and for the member each came with.
    fn forget_beyond_bound(&mut self) {
        let excess = self.past.len().saturating_sub(MAX_SUMMARIES);
        let owners: Vec<Option<CustomerId>> = self.past.drain(..excess).map(|s| s.owner).collect();
        for owner in owners {
            self.counters.conversations_forgotten += 1;
            if let Some(share) = self.share_mut(owner.as_ref()) {
                share.counters.conversations_forgotten += 1;
            }
        }
    }

    /// Brings the compacted conversation `id` names back whole (see the module docs) and
    /// returns its index; `None` if no summary answers to `id`.
    pub(crate) fn revive(&mut self, id: &ConversationId) -> Option<usize> {
        let at = self.past.iter().position(|s| s.answers_to(id))?;
        let conversation = Conversation::from(self.past.remove(at));
        let index = self
            .conversations
            .partition_point(|c| c.opened_at <= conversation.opened_at);
        self.conversations.insert(index, Arc::new(conversation));
        Some(index)
    }
}

impl Conversation {
    /// Adds a new interaction, counting away the oldest past the bound; returns its index.
    pub(crate) fn push_interaction(&mut self, interaction: Interaction) -> usize {
        self.interactions.push(interaction);
        self.trim_interactions();
        self.interactions.len() - 1
    }

    /// Drops interactions past `MAX_INTERACTIONS`, the oldest ended first, and counts them.
    pub(crate) fn trim_interactions(&mut self) {
        while self.interactions.len() > MAX_INTERACTIONS {
            let oldest = self
                .interactions
                .iter()
                .position(|i| i.ended_at.is_some())
                .unwrap_or(0);
            self.interactions.remove(oldest);
            self.earlier_interactions = self.earlier_interactions.saturating_add(1);
        }
    }
}

impl From<Conversation> for ConversationSummary {
    fn from(c: Conversation) -> Self {
        Self {
            interactions: c.interaction_count(),
            id: c.id,
            aliases: c.aliases,
            status: c.status,
            opened_at: c.opened_at,
            last_activity_at: c.last_activity_at,
            closed_at: c.closed_at,
            intent: c.intent,
            channels: c.channels,
            transfer_count: c.transfer_count,
            repeat_contacts: c.repeat_contacts,
            last_agent_id: c.last_agent_id,
            disposition: c.disposition,
            survey: c.survey,
            owner: c.owner,
        }
    }
}

/// A conversation brought back from its summary: what the summary kept, and no detail.
impl From<ConversationSummary> for Conversation {
    fn from(s: ConversationSummary) -> Self {
        Self {
            status: s.status,
            last_activity_at: s.last_activity_at,
            closed_at: s.closed_at,
            intent: s.intent,
            channels: s.channels,
            earlier_interactions: s.interactions,
            last_agent_id: s.last_agent_id,
            transfer_count: s.transfer_count,
            disposition: s.disposition,
            survey: s.survey,
            repeat_contacts: s.repeat_contacts,
            aliases: s.aliases,
            ..Conversation::new(s.id, s.opened_at, s.owner)
        }
    }
}
