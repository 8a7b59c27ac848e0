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

#[cfg(test)]
mod tests {
    use rezef_events::InteractionId;
    use rezef_events::journey::{JoinReason, StageVisit};

    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_unix_millis(1_796_630_400_000 + secs * 1000)
    }

    /// An interaction in `billing` with these stage visits (seconds after 08:00 Monday).
    fn visits(channel: Channel, stages: &[(Stage, i64)]) -> Interaction {
        let stages: Vec<_> = (stages.iter())
            .map(|(stage, secs)| StageVisit {
                stage: *stage,
                entered_at: at(*secs),
            })
            .collect();
        Interaction {
            id: InteractionId::new("i-1").expect("valid"),
            channel: Some(channel),
            direction: None,
            started_at: stages.first().map_or(at(0), |v| v.entered_at),
            ended_at: None,
            stage: stages.last().map_or(Stage::Started, |v| v.stage),
            stages,
            queue_id: Some("billing".into()),
            agent_id: None,
            self_service_steps: 0,
            transfers: 0,
            abandoned_at: None,
            end_reason: None,
            language: None,
            joined: JoinReason::Opened,
        }
    }

    fn judged(
        interaction: &Interaction,
        seen: &Seen,
        end: i64,
    ) -> (Verdict, Verdict, Option<Reason>) {
        let v = judge(interaction, seen, at(end), &MeasureConfig::default());
        (v.classic, v.journey, v.reason)
    }

    #[test]
    fn given_an_answer_exactly_at_the_target_then_in_target_both_ways() {
        let call = visits(
            Channel::Voice,
            &[
                (Stage::Started, 0),
                (Stage::Queued, 0),
                (Stage::Connected, 20),
            ],
        );
        let seen = Seen::new(at(0));
        assert_eq!(
            judged(&call, &seen, 90),
            (Verdict::InTarget, Verdict::InTarget, None)
        );
    }

    #[test]
    fn given_ivr_time_before_a_quick_queue_then_only_the_journey_true_figure_misses() {
        let call = visits(
            Channel::Ivr,
            &[
                (Stage::SelfService, 0),
                (Stage::Queued, 30),
                (Stage::Connected, 35),
            ],
        );
        let seen = Seen::new(at(0));
        let verdicts = (Verdict::InTarget, Verdict::Missed, Some(Reason::IvrTime));
        assert_eq!(judged(&call, &seen, 90), verdicts);
    }

    #[test]
    fn given_an_abandon_at_the_short_threshold_then_the_classic_figure_counts_it() {
        let mut call = visits(Channel::Voice, &[(Stage::Queued, 0), (Stage::Abandoned, 5)]);
        call.abandoned_at = Some(AbandonPoint::Queue);
        let seen = Seen::new(at(0));
        assert_eq!(
            judged(&call, &seen, 5),
            (Verdict::Missed, Verdict::Missed, None)
        );
        let verdicts = (
            Verdict::Excluded,
            Verdict::Missed,
            Some(Reason::ShortAbandonExcluded),
        );
        assert_eq!(judged(&call, &seen, 4), verdicts);
    }

    #[test]
    fn given_a_callback_then_classic_in_target_and_journey_true_from_the_original_arrival() {
        let call = visits(
            Channel::Voice,
            &[
                (Stage::Queued, 0),
                (Stage::CallbackPending, 10),
                (Stage::Connected, 1800),
            ],
        );
        let mut seen = Seen::new(at(0));
        seen.callback_arrival = Some(at(-60));
        let verdicts = (
            Verdict::InTarget,
            Verdict::Missed,
            Some(Reason::CallbackRealWait),
        );
        assert_eq!(judged(&call, &seen, 2000), verdicts);
    }

    #[test]
    fn given_an_email_or_a_contained_call_then_in_neither_figure() {
        let email = visits(
            Channel::Email,
            &[(Stage::Queued, 0), (Stage::Connected, 60)],
        );
        let seen = Seen::new(at(0));
        assert_eq!(
            judged(&email, &seen, 90),
            (Verdict::Excluded, Verdict::Excluded, None)
        );
        let menu = visits(Channel::Ivr, &[(Stage::SelfService, 0), (Stage::Ended, 40)]);
        let mut contained = Seen::new(at(0));
        contained.contained = true;
        assert_eq!(
            judged(&menu, &contained, 40),
            (Verdict::Excluded, Verdict::Excluded, None)
        );
        // Without containment an IVR call that asked for nobody is still in neither.
        assert_eq!(
            judged(&menu, &seen, 40),
            (Verdict::Excluded, Verdict::Excluded, None)
        );
    }
}
