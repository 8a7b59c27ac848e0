//! What is measured of a conversation rather than one contact: wrap-ups, surveys, and how
//! it closed: the resolution of the need (first answer, contacts, transfers, callbacks),
//! with its first-contact resolution decided at once when the need took more than one
//! contact, else left pending for the tenant's window; or unresolved, closed as inactive.
//! What the journey says is read where it is ([`Closed`], [`Resolution`]); the measurer's
//! books (callbacks' waits, pending resolutions) are kept by [`Measurer`].

use rezef_events::journey::{Conversation, Stage, SurveyScores};
use rezef_events::{ConversationId, CustomerId, Journey, TenantId, Timestamp};

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

/// What a conversation record is made of, read from the journey: its ids (and aliases),
/// dimensions, opening and closing, first answer, and contacts and transfers.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Closed {
    pub id: ConversationId,
    pub aliases: Vec<ConversationId>,
    pub dims: Dims,
    pub times: (Timestamp, Timestamp),
    pub first_answer: Option<std::time::Duration>,
    pub counts: (u32, u32),
}

impl Closed {
    /// A conversation (whole) closed at `at`.
    pub fn of(conversation: &Conversation, at: Timestamp) -> Self {
        let first_answer = (conversation.interactions.iter())
            .filter_map(|i| first(i, Stage::Connected))
            .min()
            .map(|answered| answered.since(conversation.opened_at));
        Self {
            id: conversation.id.clone(),
            aliases: conversation.aliases.clone(),
            dims: dims(conversation),
            times: (conversation.opened_at, at),
            first_answer,
            counts: (
                conversation.interaction_count(),
                conversation.transfer_count,
            ),
        }
    }

    /// The conversation `id` the fold closed as inactive, at its `closed_at`. One compacted
    /// in the same step (a journey over its bound) is read from its summary, which keeps no
    /// queue and no answer times.
    pub fn inactive(journey: &Journey, id: &ConversationId) -> Option<Self> {
        if let Some(conversation) = journey.conversation(id) {
            return Some(Self::of(conversation, conversation.closed_at?));
        }
        let summary = journey.past_conversation(id)?;
        let dims = Dims {
            queue: None,
            channel: summary.channels.first().copied(),
            intent: summary.intent.as_ref().map(|i| i.intent.clone()),
        };
        Some(Self {
            id: summary.id.clone(),
            aliases: summary.aliases.clone(),
            dims,
            times: (summary.opened_at, summary.closed_at?),
            first_answer: None,
            counts: (summary.interactions, summary.transfer_count),
        })
    }
}

/// A conversation resolved by a wrap-up, as read from the journey: whether it was
/// already not resolved at first contact (it took more than one contact, or the journey
/// holds a contact that repeats it over the tenant's window).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Resolution {
    pub closed: Closed,
    pub repeated: bool,
}

impl Resolution {
    pub fn read(
        config: &MeasureConfig,
        journey: &Journey,
        conversation: &Conversation,
        at: Timestamp,
    ) -> Self {
        let closed = Closed::of(conversation, at);
        let window = (at, at.plus(config.fcr_window()));
        let repeated =
            closed.counts.0 > 1 || came_back(journey, window, closed.dims.intent.as_deref());
        Self { closed, repeated }
    }
}

/// The journey's tenant and customer.
pub(crate) type Whose<'a> = (&'a TenantId, &'a CustomerId);

impl Measurer {
    /// The conversation was resolved: its record, and its first-contact resolution when
    /// already decided, else pending for the tenant's window.
    pub(crate) fn resolve(
        &mut self,
        config: &MeasureConfig,
        (tenant, customer): Whose<'_>,
        Resolution { closed, repeated }: Resolution,
    ) -> Vec<Measured> {
        let at = closed.times.1;
        let record = self.close((tenant, customer), closed);
        let mut out = Vec::new();
        if repeated {
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
                (tenant, customer),
                record.conversation_id.clone(),
                (at, at.plus(config.fcr_window())),
                record.dims.clone(),
            );
        }
        out.insert(0, Measured::Conversation(record));
        out
    }

    /// A conversation the fold closed as inactive: unresolved.
    pub(crate) fn unresolved(&mut self, (tenant, customer): Whose<'_>, closed: Closed) -> Measured {
        Measured::Unresolved(self.close((tenant, customer), closed))
    }

    /// The record of a closed conversation, with its callbacks' waits (then forgotten).
    fn close(&mut self, (tenant, customer): Whose<'_>, closed: Closed) -> ConversationRecord {
        let (mut callbacks, mut callback_wait) = (0, std::time::Duration::ZERO);
        for id in std::iter::once(&closed.id).chain(&closed.aliases) {
            if let Some(tally) = self.callbacks.remove(tenant, id) {
                callbacks += tally.count;
                callback_wait += tally.wait;
            }
        }
        ConversationRecord {
            conversation_id: closed.id,
            customer_id: customer.clone(),
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
