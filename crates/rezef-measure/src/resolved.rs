//! What is measured of a conversation rather than one contact: wrap-ups, surveys, and how
//! it closed: the resolution of the need (first answer, contacts, transfers, callbacks),
//! with its first-contact resolution decided at once when the need took more than one
//! contact, else left pending for the tenant's window; or unresolved, closed as inactive.

use rezef_events::journey::{Conversation, Stage, SurveyScores};
use rezef_events::{ConversationId, Journey, Timestamp};

use crate::config::MeasureConfig;
use crate::fcr::repeats;
use crate::observer::Measurer;
use crate::record::{ConversationRecord, Dims, FcrDecision, Measured, SurveyRecord, WrapUpRecord};
use crate::stations::first;

/// A conversation's dimensions: the queue of its latest queued contact, the channel of its
/// first, its intent.
fn dims(conversation: &Conversation) -> Dims {
    Dims {
        queue: (conversation.interactions.iter().rev()).find_map(|i| i.queue_id.clone()),
        channel: conversation.channels.first().copied(),
        intent: conversation.intent.as_ref().map(|i| i.intent.clone()),
    }
}

/// Whether the journey already holds a contact that repeats a resolution over `window` about
/// `intent` (one logged before the resolution though it started after it).
fn came_back(
    journey: &Journey,
    (resolved_at, deadline): (Timestamp, Timestamp),
    intent: Option<&str>,
) -> bool {
    let resolution = (resolved_at, deadline, intent);
    journey.conversations.iter().any(|c| {
        let about = c.intent.as_ref().map(|i| i.intent.as_str());
        (c.interactions.iter()).any(|i| repeats(resolution, (i.started_at, about)))
    })
}

/// A wrap-up at `at`, timed from the end of the latest contact an agent handled.
pub(crate) fn wrap_up(conversation: &Conversation, at: Timestamp) -> Option<WrapUpRecord> {
    let ended = (conversation.interactions.iter())
        .filter(|i| i.agent_id.is_some())
        .filter_map(|i| i.ended_at)
        .filter(|ended| *ended <= at)
        .max()?;
    Some(WrapUpRecord {
        at,
        dims: dims(conversation),
        duration: at.since(ended),
    })
}

/// A survey answer at `at`.
pub(crate) fn survey(
    conversation: &Conversation,
    at: Timestamp,
    (csat, nps, effort): (Option<u32>, Option<u32>, Option<u32>),
) -> Measured {
    Measured::Survey(SurveyRecord {
        at,
        dims: dims(conversation),
        scores: SurveyScores { csat, nps, effort },
    })
}

/// What a conversation record is made of: its ids (and aliases), dimensions, opening and
/// closing, first answer, and contacts and transfers.
struct Closed<'c> {
    ids: (&'c ConversationId, &'c [ConversationId]),
    dims: Dims,
    times: (Timestamp, Timestamp),
    first_answer: Option<std::time::Duration>,
    counts: (u32, u32),
}

impl<'c> Closed<'c> {
    /// A conversation (whole) closed at `at`.
    fn of(conversation: &'c Conversation, at: Timestamp) -> Self {
        let first_answer = (conversation.interactions.iter())
            .filter_map(|i| first(i, Stage::Connected))
            .min()
            .map(|answered| answered.since(conversation.opened_at));
        Self {
            ids: (&conversation.id, &conversation.aliases),
            dims: dims(conversation),
            times: (conversation.opened_at, at),
            first_answer,
            counts: (
                conversation.interaction_count(),
                conversation.transfer_count,
            ),
        }
    }
}

impl Measurer {
    /// The conversation was resolved at `at`: its record, and its first-contact resolution
    /// when already decided (it took more than one contact, or the customer already came
    /// back about it).
    pub(crate) fn resolve(
        &mut self,
        config: &MeasureConfig,
        journey: &Journey,
        conversation: &Conversation,
        at: Timestamp,
    ) -> Vec<Measured> {
        let tenant = &journey.tenant_id;
        let record = self.close(journey, Closed::of(conversation, at));
        let mut out = Vec::new();
        let window = (at, at.plus(config.fcr_window()));
        if record.contacts > 1 || came_back(journey, window, record.dims.intent.as_deref()) {
            out.push(Measured::Fcr(FcrDecision {
                tenant_id: tenant.clone(),
                conversation_id: record.conversation_id.clone(),
                customer_id: record.customer_id.clone(),
                resolved_at: at,
                dims: record.dims.clone(),
                achieved: false,
            }));
        } else {
            self.fcr.open(
                (tenant, &journey.customer_id),
                record.conversation_id.clone(),
                window,
                record.dims.clone(),
            );
        }
        out.insert(0, Measured::Conversation(record));
        out
    }

    /// The fold closed the conversation `id` as inactive: unresolved, at its `closed_at`.
    /// One compacted in the same step (a journey over its bound) is read from its summary,
    /// which keeps no queue and no answer times.
    pub(crate) fn unresolved(
        &mut self,
        journey: &Journey,
        id: &ConversationId,
    ) -> Option<Measured> {
        let record = match journey.conversation(id) {
            Some(conversation) => {
                let closed = Closed::of(conversation, conversation.closed_at?);
                self.close(journey, closed)
            }
            None => {
                let summary = journey.past_conversation(id)?;
                let dims = Dims {
                    queue: None,
                    channel: summary.channels.first().copied(),
                    intent: summary.intent.as_ref().map(|i| i.intent.clone()),
                };
                let closed = Closed {
                    ids: (&summary.id, &summary.aliases),
                    dims,
                    times: (summary.opened_at, summary.closed_at?),
                    first_answer: None,
                    counts: (summary.interactions, summary.transfer_count),
                };
                self.close(journey, closed)
            }
        };
        Some(Measured::Unresolved(record))
    }

    /// The record of a closed conversation, with its callbacks' waits (then forgotten).
    fn close(&mut self, journey: &Journey, closed: Closed<'_>) -> ConversationRecord {
        let tenant = &journey.tenant_id;
        let (mut callbacks, mut callback_wait) = (0, std::time::Duration::ZERO);
        let (id, aliases) = closed.ids;
        for id in std::iter::once(id).chain(aliases) {
            if let Some(tally) = self.callbacks.remove(tenant, id) {
                callbacks += tally.count;
                callback_wait += tally.wait;
            }
        }
        ConversationRecord {
            conversation_id: id.clone(),
            customer_id: journey.customer_id.clone(),
            dims: closed.dims,
            opened_at: closed.times.0,
            closed_at: closed.times.1,
            first_answer: closed.first_answer,
            contacts: closed.counts.0,
            transfers: closed.counts.1,
            callbacks,
            callback_wait,
        }
    }
}
