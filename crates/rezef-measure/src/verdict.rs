//! How one contact counts in the two service levels, and why they differ.
//!
//! Classic (as Genesys defines it): from queue entry; answered within the target over
//! answered plus abandoned, abandons shorter than the short-abandon threshold left out;
//! contacts that never queued are invisible; a callback counts as answered in target.
//!
//! Journey-true: from first contact (IVR and bot time counted), a callback from its original
//! arrival until it connected; every contact that sought an agent or gave up counts (IVR,
//! bot, queue and callback abandons, short ones too), and so does a contact that arrived
//! while its queue was closed. Contacts contained in self service, and written channels
//! (which have a first-response time instead), are in neither.

use std::time::Duration;

use rezef_events::event::AbandonPoint;
use rezef_events::journey::{Interaction, Stage};
use rezef_events::{Channel, Timestamp};

use crate::config::{MeasureConfig, is_written};
use crate::record::{Reason, Verdict};
use crate::seen::Seen;
use crate::stations::{arrival, first};

/// The two verdicts of one contact, and the reason they differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Verdicts {
    pub classic: Verdict,
    pub journey: Verdict,
    pub reason: Option<Reason>,
}

fn within(wait: Duration, target: Duration) -> Verdict {
    if wait <= target {
        Verdict::InTarget
    } else {
        Verdict::Missed
    }
}

/// Judges an interaction that ended at `end`.
pub(crate) fn judge(
    interaction: &Interaction,
    seen: &Seen,
    end: Timestamp,
    config: &MeasureConfig,
) -> Verdicts {
    let queue = interaction.queue_id.as_deref();
    let target = config.target(queue, interaction.channel);
    let queued = first(interaction, Stage::Queued);
    let answered = first(interaction, Stage::Connected);
    let callback = seen.callback_arrival.is_some();
    let arrived = arrival(interaction, seen);
    let closed = config.hours(queue).is_some_and(|h| !h.is_open(arrived));
    let written = is_written(interaction.channel);

    let classic = match (written, callback, queued, answered) {
        (true, ..) | (false, false, None, _) => Verdict::Excluded,
        (false, true, ..) => Verdict::InTarget,
        (false, false, Some(q), Some(a)) => within(a.since(q), target),
        (false, false, Some(q), None) if end.since(q) < config.short_abandon() => Verdict::Excluded,
        (false, false, Some(_), None) => Verdict::Missed,
    };

    let sought = queued.is_some()
        || answered.is_some()
        || callback
        || interaction.abandoned_at.is_some()
        || (interaction.stages.iter())
            .any(|v| matches!(v.stage, Stage::HandoffRequested | Stage::Offered));
    let journey = if written || seen.contained || !(sought || closed) {
        Verdict::Excluded
    } else {
        answered.map_or(Verdict::Missed, |a| within(a.since(arrived), target))
    };

    // A contact only the classic figure counts was contained in self service later: no
    // difference to explain.
    let reason = (classic != journey && journey != Verdict::Excluded).then(|| {
        if callback {
            return if answered.is_some() {
                Reason::CallbackRealWait
            } else {
                Reason::CallbackAbandon
            };
        }
        match (interaction.abandoned_at, queued) {
            (Some(AbandonPoint::Ivr), None) => return Reason::IvrAbandon,
            (Some(AbandonPoint::Bot), None) => return Reason::BotAbandon,
            (Some(AbandonPoint::Callback), None) => return Reason::CallbackAbandon,
            _ => {}
        }
        if closed {
            Reason::ClosedHours
        } else if classic == Verdict::Excluded && queued.is_some() {
            Reason::ShortAbandonExcluded
        } else if classic == Verdict::Excluded {
            Reason::NotQueued
        } else if interaction.channel == Some(Channel::Bot) {
            Reason::BotTime
        } else {
            Reason::IvrTime
        }
    });
    Verdicts {
        classic,
        journey,
        reason,
    }
}
