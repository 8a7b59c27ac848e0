//! Reading the journey after the fold applied an event: which conversation and interaction
//! the event went to (the fold placed it; this only finds it), and whether the event ended
//! the interaction for measurement. Both are read from the journey alone, so the measurer
//! keeps no state for them.

use rezef_events::journey::{Conversation, Interaction, Stage, StageVisit};
use rezef_events::{Event, Journey, Timestamp};

/// The conversation (and interaction) an applied event went to, as the fold placed it.
pub(crate) fn locate<'j>(
    journey: &'j Journey,
    event: &Event,
) -> Option<(&'j Conversation, Option<&'j Interaction>)> {
    if let Some(id) = &event.interaction_id {
        // Newest first: an event is almost always about a recent interaction.
        let found = (journey.conversations.iter().rev()).find_map(|c| {
            let interaction = c.interactions.iter().rev().find(|i| &i.id == id);
            interaction.map(|i| (c.as_ref(), Some(i)))
        });
        if found.is_some() {
            return found;
        }
    }
    if let Some(id) = &event.conversation_id {
        return journey.conversation(id).map(|c| (c, None));
    }
    (journey.conversations.iter())
        .max_by_key(|c| c.last_activity_at)
        .map(|c| (c.as_ref(), None))
}

/// The visit that ended the interaction for measurement, if any: the first abandon, or
/// the first end that is not a leg waiting for its callback (a callback requested, not
/// connected since).
pub(crate) fn first_end(visits: &[StageVisit]) -> Option<usize> {
    let mut callback_waiting = false;
    for (index, visit) in visits.iter().enumerate() {
        match visit.stage {
            Stage::CallbackPending => callback_waiting = true,
            Stage::Connected => callback_waiting = false,
            Stage::Abandoned => return Some(index),
            Stage::Ended if !callback_waiting => return Some(index),
            _ => {}
        }
    }
    None
}

/// Whether the event, at `at`, just ended the interaction in `stage` (an interaction is
/// measured once, whatever comes after its end).
pub(crate) fn ends_now(interaction: &Interaction, stage: Stage, at: Timestamp) -> bool {
    let visits = &interaction.stages;
    let last = visits.len().checked_sub(1);
    first_end(visits).is_some_and(|end| Some(end) == last)
        && (visits.last()).is_some_and(|v| v.stage == stage && v.entered_at == at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn visits(stages: &[Stage]) -> Vec<StageVisit> {
        let at = |n: usize| Timestamp::from_unix_millis(i64::try_from(n).unwrap_or(0) * 1000);
        (stages.iter().enumerate())
            .map(|(n, stage)| StageVisit {
                stage: *stage,
                entered_at: at(n),
            })
            .collect()
    }

    #[test]
    fn given_a_leg_ending_while_its_callback_waits_then_not_the_end() {
        use Stage::*;
        let waiting = visits(&[Started, Queued, CallbackPending, Ended]);
        assert_eq!(first_end(&waiting), None);
        let called_back = visits(&[Started, Queued, CallbackPending, Ended, Connected, Ended]);
        assert_eq!(first_end(&called_back), Some(5));
    }

    #[test]
    fn given_an_abandon_then_events_after_it_then_the_abandon_is_the_end() {
        use Stage::*;
        let abandoned = visits(&[Started, Queued, Abandoned, Queued, Ended]);
        assert_eq!(first_end(&abandoned), Some(2));
        let answered = visits(&[Started, CallbackPending, Connected, Ended]);
        assert_eq!(first_end(&answered), Some(3));
    }
}
