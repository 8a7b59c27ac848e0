//! An interaction's stations and their times, read from the stage visits the journey fold
//! keeps (`Interaction::stages`), plus the little the fold does not keep: a callback's
//! original arrival, the first agent message, a containment in self service (`seen`).
//! Each visit lasts until the next one, the last one until the interaction's end.

use std::collections::BTreeMap;
use std::time::Duration;

use rezef_events::journey::{Interaction, Stage};
use rezef_events::{Channel, Timestamp};

use crate::config::is_written;
use crate::record::Station;
use crate::seen::Seen;

/// When the interaction first entered `stage`.
pub(crate) fn first(interaction: &Interaction, stage: Stage) -> Option<Timestamp> {
    (interaction.stages.iter())
        .find(|visit| visit.stage == stage)
        .map(|visit| visit.entered_at)
}

/// When the customer arrived: a callback's original arrival, else the start.
pub(crate) fn arrival(interaction: &Interaction, seen: &Seen) -> Timestamp {
    seen.callback_arrival.unwrap_or(interaction.started_at)
}

pub(crate) fn station_of(stage: Stage, channel: Option<Channel>) -> Option<Station> {
    match stage {
        Stage::Started if channel.is_some_and(Channel::is_self_service) => {
            Some(Station::SelfService)
        }
        Stage::SelfService | Stage::HandoffRequested => Some(Station::SelfService),
        Stage::Queued => Some(Station::Queue),
        Stage::Offered => Some(Station::Offer),
        Stage::Connected => Some(Station::Talk),
        Stage::Consulting => Some(Station::Hold),
        // A callback's wait is measured from the original arrival, below; the end of a
        // leg while a callback is owed is part of that wait.
        Stage::Started | Stage::CallbackPending | Stage::Abandoned | Stage::Ended => None,
    }
}

/// The stations the interaction went through until `end`, each with its time.
pub(crate) fn stations(
    interaction: &Interaction,
    seen: &Seen,
    end: Timestamp,
) -> BTreeMap<Station, Duration> {
    let mut out = BTreeMap::new();
    let visits = &interaction.stages;
    for (i, visit) in visits.iter().enumerate() {
        let until = visits.get(i + 1).map_or(end, |next| next.entered_at);
        if let Some(station) = station_of(visit.stage, interaction.channel) {
            *out.entry(station).or_default() += until.since(visit.entered_at);
        }
    }
    let answered = first(interaction, Stage::Connected);
    if seen.callback_arrival.is_some() {
        let connected = (visits.iter())
            .skip_while(|v| v.stage != Stage::CallbackPending)
            .find(|v| v.stage == Stage::Connected)
            .map(|v| v.entered_at);
        let wait = connected.unwrap_or(end).since(arrival(interaction, seen));
        out.insert(Station::CallbackWait, wait);
    }
    if is_written(interaction.channel) {
        let responded = match (answered, seen.first_agent_message) {
            (Some(a), Some(m)) => Some(a.min(m)),
            (a, m) => a.or(m),
        };
        if let Some(responded) = responded {
            out.insert(
                Station::FirstResponse,
                responded.since(interaction.started_at),
            );
        }
    } else if let Some(answered) = answered {
        let wait = answered.since(arrival(interaction, seen));
        out.insert(Station::JourneyWait, wait);
    }
    out
}
