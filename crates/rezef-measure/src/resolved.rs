//! What is measured of a conversation rather than one contact: wrap-ups, surveys, and the
//! resolution of the need (first answer, contacts, transfers, callbacks), with its
//! first-contact resolution decided at once when the need took more than one contact, else
//! left pending for the tenant's window.

use rezef_events::journey::{Conversation, Stage, SurveyScores};
use rezef_events::{Journey, Timestamp};

use crate::config::MeasureConfig;
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

impl Measurer {
    /// The conversation was resolved at `at`: its record, and its first-contact resolution
    /// when already decided.
    pub(crate) fn resolve(
        &mut self,
        config: &MeasureConfig,
        journey: &Journey,
        conversation: &Conversation,
        at: Timestamp,
    ) -> Vec<Measured> {
        let tenant = &journey.tenant_id;
        let (mut callbacks, mut callback_wait) = (0, std::time::Duration::ZERO);
        for id in std::iter::once(&conversation.id).chain(&conversation.aliases) {
            if let Some(tally) = self.callbacks.remove(&(tenant.clone(), id.clone())) {
                callbacks += tally.count;
                callback_wait += tally.wait;
            }
        }
        let first_answer = (conversation.interactions.iter())
            .filter_map(|i| first(i, Stage::Connected))
            .min()
            .map(|answered| answered.since(conversation.opened_at));
        let record = ConversationRecord {
            conversation_id: conversation.id.clone(),
            customer_id: journey.customer_id.clone(),
            dims: dims(conversation),
            opened_at: conversation.opened_at,
            resolved_at: at,
            first_answer,
            contacts: conversation.interaction_count(),
            transfers: conversation.transfer_count,
            callbacks,
            callback_wait,
        };
        let mut out = Vec::new();
        if record.contacts > 1 {
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
                (at, at.plus(config.fcr_window())),
                record.dims.clone(),
            );
        }
        out.insert(0, Measured::Conversation(record));
        out
    }
}
