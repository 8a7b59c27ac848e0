//! Figures (`rezef_measure`) as the public contract's report rows (`rezef.v1.Insights`):
//! counts as they are, ratios and percentiles computed here, once, from the merged counts;
//! and the customer tracker.

use rezef_measure::buckets::BucketKey;
use rezef_measure::figures::{ServiceLevel, Surveys};
use rezef_measure::record::{Reason, Station};
use rezef_measure::spread::Percentiles;
use rezef_measure::tracker::{Contact, Tracker};
use rezef_measure::{Figures, Scorecard};
use rezef_proto::v1;

use super::{ProtoEnum, duration, timestamp};

/// One row of a report.
pub fn row_to_proto(key: &BucketKey, figures: &Figures) -> v1::ReportRow {
    let differences = (figures.reasons.iter())
        .map(|(reason, contacts)| v1::DifferenceCount {
            reason: reason_to_proto(*reason) as i32,
            contacts: *contacts,
        })
        .collect();
    let stations = (figures.stations.keys())
        .filter_map(|station| Some(spread(*station, figures.percentiles(*station)?)))
        .collect();
    let abandons = (figures.abandons.iter())
        .map(|(point, contacts)| v1::AbandonCount {
            point: point.to_proto(),
            contacts: *contacts,
        })
        .collect();
    v1::ReportRow {
        start: Some(timestamp(key.start)),
        queue_id: key.dims.queue.clone(),
        channel: key.dims.channel.map(ProtoEnum::to_proto),
        intent: key.dims.intent.clone(),
        contacts: figures.contacts,
        classic: Some(service_level(&figures.classic)),
        journey_true: Some(service_level(&figures.journey)),
        differences,
        stations,
        abandons,
        callbacks_unreached: figures.callbacks_unreached,
        repeat_contacts: figures.repeat_contacts,
        resolved: figures.resolved,
        resolved_contacts: figures.resolved_contacts,
        resolved_transfers: figures.resolved_transfers,
        transfers_per_resolved: figures.transfers_per_resolved(),
        unresolved: figures.unresolved,
        resolution_rate: figures.resolution_rate(),
        fcr: Some(v1::FirstContactResolution {
            achieved: figures.fcr_achieved,
            not_achieved: figures.fcr_not_achieved,
            pending: figures.fcr_pending(),
            rate: figures.fcr_rate(),
        }),
        surveys: Some(surveys(&figures.surveys)),
        scorecard: Some(scorecard(&Scorecard::of(figures))),
    }
}

fn service_level(level: &ServiceLevel) -> v1::ServiceLevel {
    v1::ServiceLevel {
        in_target: level.in_target,
        counted: level.counted,
        excluded: level.excluded,
        ratio: level.ratio(),
    }
}

fn spread(station: Station, p: Percentiles) -> v1::StationSpread {
    v1::StationSpread {
        station: station_to_proto(station) as i32,
        count: p.count,
        p50: Some(duration(p.p50)),
        p90: Some(duration(p.p90)),
        p99: Some(duration(p.p99)),
        max: Some(duration(p.max)),
    }
}

fn surveys(s: &Surveys) -> v1::Surveys {
    v1::Surveys {
        csat_answers: s.csat_count,
        csat_satisfied: s.csat_satisfied,
        csat: s.csat(),
        nps_promoters: s.nps_promoters,
        nps_passives: s.nps_passives,
        nps_detractors: s.nps_detractors,
        nps: s.nps(),
        effort_answers: s.effort_count,
        effort: s.effort(),
    }
}

fn scorecard(card: &Scorecard) -> v1::Scorecard {
    let (level, resolution) = (&card.service_level, &card.resolution);
    v1::Scorecard {
        service_level_classic: level.classic,
        service_level_journey_true: level.journey_true,
        journey_wait: level.journey_wait.map(|p| spread(Station::JourneyWait, p)),
        resolved: resolution.resolved,
        resolution_rate: resolution.resolution_rate,
        fcr_rate: resolution.fcr_rate,
        fcr_pending: resolution.fcr_pending,
        transfers_per_resolved: resolution.transfers_per_resolved,
        repeat_contacts: resolution.repeat_contacts,
        csat: card.quality.csat,
        effort: card.quality.effort,
        abandon_rate: card.quality.abandon_rate,
        nps: card.experience.nps,
        nps_answers: card.experience.answers,
    }
}

/// A customer's tracker (`rezef_measure::tracker`).
pub fn tracker_to_proto(
    customer_id: &str,
    tracker: Option<&Tracker>,
    offset: u64,
) -> v1::CustomerTracker {
    let conversation = tracker.map(|tracker| v1::TrackedConversation {
        conversation_id: tracker.conversation_id.to_string(),
        opened_at: Some(timestamp(tracker.opened_at)),
        intent: tracker.intent.clone(),
        contacts: tracker.contacts.iter().map(contact_to_proto).collect(),
    });
    v1::CustomerTracker {
        customer_id: customer_id.to_owned(),
        conversation,
        projected_offset: offset,
    }
}

fn contact_to_proto(contact: &Contact) -> v1::TrackedContact {
    let stations = (contact.visits.iter())
        .map(|visit| v1::TrackedStation {
            station: station_to_proto(visit.station) as i32,
            entered_at: Some(timestamp(visit.entered_at)),
            until: visit.until.map(timestamp),
        })
        .collect();
    v1::TrackedContact {
        interaction_id: contact.interaction_id.to_string(),
        channel: contact.channel.map(ProtoEnum::to_proto),
        queue_id: contact.queue_id.clone(),
        started_at: Some(timestamp(contact.started_at)),
        ended_at: contact.ended_at.map(timestamp),
        stations,
        callback_arrival_at: contact.callback_arrival.map(timestamp),
    }
}

fn station_to_proto(station: Station) -> v1::Station {
    match station {
        Station::SelfService => v1::Station::SelfService,
        Station::Queue => v1::Station::Queue,
        Station::Offer => v1::Station::Offer,
        Station::CallbackWait => v1::Station::CallbackWait,
        Station::Talk => v1::Station::Talk,
        Station::Hold => v1::Station::Hold,
        Station::WrapUp => v1::Station::WrapUp,
        Station::FirstResponse => v1::Station::FirstResponse,
        Station::JourneyWait => v1::Station::JourneyWait,
        Station::FirstAnswer => v1::Station::FirstAnswer,
        Station::Resolution => v1::Station::Resolution,
    }
}

fn reason_to_proto(reason: Reason) -> v1::DifferenceReason {
    match reason {
        Reason::CallbackRealWait => v1::DifferenceReason::CallbackRealWait,
        Reason::CallbackAbandon => v1::DifferenceReason::CallbackAbandon,
        Reason::IvrAbandon => v1::DifferenceReason::IvrAbandon,
        Reason::BotAbandon => v1::DifferenceReason::BotAbandon,
        Reason::ClosedHours => v1::DifferenceReason::ClosedHours,
        Reason::ShortAbandonExcluded => v1::DifferenceReason::ShortAbandonExcluded,
        Reason::IvrTime => v1::DifferenceReason::IvrTime,
        Reason::BotTime => v1::DifferenceReason::BotTime,
        Reason::NotQueued => v1::DifferenceReason::NotQueued,
    }
}
