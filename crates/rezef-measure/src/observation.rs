//! What the measurer reads of the journey after the fold applied an event, owned
//! ([`Observation::read`]): the half of measuring that needs the journey, done where the
//! journey is. The other half keeps the measurer's books ([`crate::Measurer::take`]) and
//! needs nothing of the journey, so a projection runs it beside the fold, on another
//! thread, and the fold's thread only reads and hands over.
//!
//! Most events are read without allocating: the ids are shared, and only an event that
//! ends an interaction (its copy), a wrap-up or a survey carry more. The tenant is not in
//! it: every event of a partition's batch is mostly one tenant's, whose id the caller
//! hands over once (a clone per event would have the two threads write its shared count).

use rezef_events::event::Payload;
use rezef_events::fold::{Applied, time_of};
use rezef_events::journey::{ConversationStatus, Interaction, Stage};
use rezef_events::{ConversationId, CustomerId, Event, InteractionId, Journey, Timestamp};

use crate::applied::{ends_now, first_end, locate};
use crate::config::MeasureConfig;
use crate::record::{Ending, Measured, WrapUpRecord};
use crate::resolved::{self, Closed, Resolution};
use crate::seen::Note;

/// What the measurer needs of one applied event and the journey after it (see the module
/// docs).
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub(crate) offset: u64,
    pub(crate) at: Timestamp,
    /// The journey's customer.
    pub(crate) customer: CustomerId,
    /// Conversations the fold closed as inactive, before this event.
    pub(crate) closed: Vec<Closed>,
    pub(crate) contact: Option<Contact>,
    pub(crate) wrap_up: Option<Box<WrapUp>>,
    pub(crate) survey: Option<Box<Measured>>,
}

/// The interaction the event went to.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Contact {
    pub id: InteractionId,
    pub started_at: Timestamp,
    /// It starts now or its intent is known now: its intent, to see whether it repeats a
    /// pending resolution.
    pub asks: Option<Option<String>>,
    pub note: Note,
    /// The event ends it (unless measured already): how, and what its record reads.
    pub ends: Option<Box<Ends>>,
}

/// An interaction the event ends, as its record reads it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Ends {
    pub ending: Ending,
    pub interaction: Interaction,
    pub conversation_id: ConversationId,
    pub intent: Option<String>,
}

/// A wrap-up: its record, and the resolution it records, if it resolved the need now.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WrapUp {
    pub record: Option<WrapUpRecord>,
    pub resolution: Option<Resolution>,
}

impl Observation {
    /// Reads the event the fold applied at `offset` (recorded at `recorded_at`), `journey`
    /// being the journey after it and `applied` what the fold said it did, under the
    /// journey's tenant's `config`; measured under that tenant ([`crate::Measurer::take`]).
    pub fn read(
        config: &MeasureConfig,
        offset: u64,
        event: &Event,
        recorded_at: Option<Timestamp>,
        (journey, applied): (&Journey, &Applied),
    ) -> Self {
        let at = time_of(event, recorded_at);
        let closed = (applied.closed.iter())
            .filter_map(|id| Closed::inactive(journey, id))
            .collect();
        let mut read = Self {
            offset,
            at,
            customer: journey.customer_id.clone(),
            closed,
            contact: None,
            wrap_up: None,
            survey: None,
        };
        if event.customer.is_some() && !event.payload.is_about_the_record() {
            read.measure(config, event, journey);
        }
        read
    }

    /// When the event happened, as the fold takes it: the measurer's clock moves to it.
    pub fn at(&self) -> Timestamp {
        self.at
    }

    fn measure(&mut self, config: &MeasureConfig, event: &Event, journey: &Journey) {
        let Some((conversation, interaction)) = locate(journey, event) else {
            return;
        };
        let at = self.at;
        let intent = || conversation.intent.as_ref().map(|i| i.intent.clone());
        if let Some(interaction) = interaction {
            // A contact comes back at its start, or once its intent is known (a resolution
            // logged after it scans the journey instead: `Resolution::read`).
            let asks = interaction.started_at == at
                || matches!(event.payload, Payload::IntentDetected { .. });
            let ends = ending(&event.payload, interaction, at).map(|ending| Ends {
                ending,
                interaction: interaction.clone(),
                conversation_id: conversation.id.clone(),
                intent: intent(),
            });
            self.contact = Some(Contact {
                id: interaction.id.clone(),
                started_at: interaction.started_at,
                asks: asks.then(intent),
                note: Note::of(&event.payload),
                ends: ends.map(Box::new),
            });
        }
        match &event.payload {
            Payload::WrapUpRecorded { need_resolved, .. } => {
                let resolved_now = *need_resolved
                    && conversation.status == ConversationStatus::Resolved
                    && conversation.closed_at == Some(at);
                let resolution =
                    resolved_now.then(|| Resolution::read(config, journey, conversation, at));
                self.wrap_up = Some(Box::new(WrapUp {
                    record: resolved::wrap_up(conversation, at),
                    resolution,
                }));
            }
            Payload::SurveyAnswered {
                csat, nps, effort, ..
            } => {
                let survey = resolved::survey(conversation, at, (*csat, *nps, *effort));
                self.survey = Some(Box::new(survey));
            }
            _ => {}
        }
    }
}

/// How the event at `at` ends the interaction, if it does (whether it was measured
/// already is the measurer's to say).
fn ending(payload: &Payload, interaction: &Interaction, at: Timestamp) -> Option<Ending> {
    match payload {
        Payload::ContactAbandoned { point } if ends_now(interaction, Stage::Abandoned, at) => {
            Some(Ending::Abandoned(*point))
        }
        Payload::InteractionEnded { reason } if ends_now(interaction, Stage::Ended, at) => {
            Some(Ending::Ended(*reason))
        }
        // The callback the interaction waited for (its leg may have ended before: the
        // stage visits show no end yet), or one whose request was not seen.
        Payload::CallbackCompleted { reached: false, .. }
            if first_end(&interaction.stages).is_none()
                || ends_now(interaction, Stage::Ended, at) =>
        {
            Some(Ending::CallbackUnreached)
        }
        _ => None,
    }
}
