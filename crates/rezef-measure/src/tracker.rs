//! The customer tracker (the pizza tracker): a customer's open conversation as the stations
//! each of its contacts went through, with when each began and ended, read from the stage
//! visits the journey fold keeps, the same way the measurer reads them (`stations`). A
//! callback's original arrival is not in the journey: the measurer keeps it
//! ([`crate::Measurer::callback_arrival`]), and the caller looks it up for each contact.

use rezef_events::journey::Interaction;
use rezef_events::journey::Stage;
use rezef_events::{Channel, ConversationId, InteractionId, Journey, Timestamp};

use crate::record::Station;
use crate::stations::station_of;

/// One station visited, until `until` (`None`: the customer is there now).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visit {
    pub station: Station,
    pub entered_at: Timestamp,
    pub until: Option<Timestamp>,
}

/// One contact of the conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub interaction_id: InteractionId,
    pub channel: Option<Channel>,
    pub queue_id: Option<String>,
    pub started_at: Timestamp,
    /// When it ended or was abandoned, if it did.
    pub ended_at: Option<Timestamp>,
    /// With a callback: the customer's original arrival, from which the callback's real
    /// wait runs (the `callback_wait` station of a report).
    pub callback_arrival: Option<Timestamp>,
    pub visits: Vec<Visit>,
}

/// A customer's open conversation, station by station.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracker {
    pub conversation_id: ConversationId,
    pub opened_at: Timestamp,
    pub intent: Option<String>,
    pub contacts: Vec<Contact>,
}

/// The tracker of the customer's open conversation; `None` when none is open.
/// `callback_arrival` tells a contact's callback's original arrival (the measurer's), or
/// fails with the caller's error.
pub fn track<E>(
    journey: &Journey,
    callback_arrival: impl Fn(&InteractionId) -> Result<Option<Timestamp>, E>,
) -> Result<Option<Tracker>, E> {
    let Some(conversation) = journey.open_conversation() else {
        return Ok(None);
    };
    let contacts = (conversation.interactions.iter())
        .map(|interaction| Ok(contact(interaction, callback_arrival(&interaction.id)?)))
        .collect::<Result<_, E>>()?;
    Ok(Some(Tracker {
        conversation_id: conversation.id.clone(),
        opened_at: conversation.opened_at,
        intent: conversation.intent.as_ref().map(|i| i.intent.clone()),
        contacts,
    }))
}

fn contact(interaction: &Interaction, callback_arrival: Option<Timestamp>) -> Contact {
    let stages = &interaction.stages;
    let ended_at = (stages.iter())
        .find(|v| matches!(v.stage, Stage::Ended | Stage::Abandoned))
        .map(|v| v.entered_at);
    let visits = (stages.iter().enumerate())
        .filter_map(|(i, visit)| {
            let station = match visit.stage {
                Stage::CallbackPending => Some(Station::CallbackWait),
                stage => station_of(stage, interaction.channel),
            }?;
            let until = stages.get(i + 1).map(|next| next.entered_at);
            Some(Visit {
                station,
                entered_at: visit.entered_at,
                until: until.or(ended_at),
            })
        })
        .collect();
    Contact {
        interaction_id: interaction.id.clone(),
        channel: interaction.channel,
        queue_id: interaction.queue_id.clone(),
        started_at: interaction.started_at,
        ended_at,
        callback_arrival,
        visits,
    }
}
