//! The measurer: fed every event the journey fold applied, with the journey after it, it
//! produces measured records. The fold already decided which conversation and interaction
//! the event belongs to and keeps each interaction's stage visits; the measurer reads them
//! rather than placing events again, and keeps only what the journey does not: callbacks'
//! original arrivals and first agent messages of open interactions, callbacks' waits of
//! open conversations, and resolutions whose first-contact resolution is pending.
//!
//! Its state is serde, so a projection checkpoints it beside its own, and bounded by time:
//! an open interaction or callback tally with no event for [`FORGET_AFTER`] is forgotten
//! (within the hour), and a pending resolution leaves at its deadline. Time is the events' (as the fold takes it),
//! so a rebuild from the log produces the same records; [`Measurer::advance`] lets a
//! projection decide pending resolutions by the clock when no event comes.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use rezef_events::by_tenant::ByTenant;
use rezef_events::event::Payload;
use rezef_events::fold::{Applied, time_of};
use rezef_events::journey::{Conversation, ConversationStatus, Interaction, JoinReason, Stage};
use rezef_events::{ConversationId, Event, InteractionId, Journey, TenantId, Timestamp};

use crate::applied::{ends_now, first_end, locate};
use crate::config::MeasureConfig;
use crate::fcr::PendingFcr;
use crate::record::{Dims, Ending, InteractionRecord, Measured, Station};
use crate::resolved;
use crate::seen::Seen;
use crate::stations::{arrival, stations};
use crate::verdict::judge;

/// How long an interaction or a tally with no event is kept (a callback may wait a day; an
/// interaction whose end was never published must not be kept for ever).
pub const FORGET_AFTER: Duration = Duration::from_secs(7 * 24 * 3600);

/// How often (in event time) idle entries are looked for: a sweep walks every entry, so it
/// runs once an hour rather than on every event.
const SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// Callbacks of an open conversation, with their real waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CallbackTally {
    pub count: u32,
    pub wait: Duration,
    pub touched_at: Timestamp,
}

/// Turns applied events into measured records (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Measurer {
    last_offset: Option<u64>,
    clock: Option<Timestamp>,
    swept_at: Option<Timestamp>,
    open: ByTenant<InteractionId, Seen>,
    pub(crate) callbacks: ByTenant<ConversationId, CallbackTally>,
    pub(crate) fcr: PendingFcr,
}

impl Measurer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Measures the event the fold applied at `offset` (recorded at `recorded_at`, as given
    /// to the fold's `Context`), `journey` being the journey after it and `applied` what the
    /// fold said it did (the conversations it closed as inactive are measured unresolved).
    /// An offset at or below one already observed produces nothing, so replays are safe.
    pub fn observe(
        &mut self,
        config: &MeasureConfig,
        offset: u64,
        event: &Event,
        recorded_at: Option<Timestamp>,
        (journey, applied): (&Journey, &Applied),
    ) -> Vec<Measured> {
        if self.last_offset.is_some_and(|last| offset <= last) {
            return Vec::new();
        }
        self.last_offset = Some(offset);
        let at = time_of(event, recorded_at);
        // Closed when their timeout passed, before this event.
        let mut out: Vec<Measured> = (applied.closed.iter())
            .filter_map(|id| self.unresolved(journey, id))
            .collect();
        if event.customer.is_some() && !event.payload.is_about_the_record() {
            self.measure(config, event, at, journey, &mut out);
        }
        out.extend(self.advance(at));
        out
    }

    /// Moves the measurer's clock to `now`: resolutions whose window passed are decided
    /// (resolved at first contact), and what was idle for [`FORGET_AFTER`] is forgotten
    /// (looked for once an hour).
    pub fn advance(&mut self, now: Timestamp) -> Vec<Measured> {
        let now = self.clock.map_or(now, |clock| clock.max(now));
        self.clock = Some(now);
        if (self.swept_at).is_none_or(|swept| now >= swept.plus(SWEEP_EVERY)) {
            self.swept_at = Some(now);
            let fresh = |touched: Timestamp| touched.plus(FORGET_AFTER) >= now;
            self.open.retain(|seen| fresh(seen.touched_at));
            self.callbacks.retain(|tally| fresh(tally.touched_at));
        }
        self.fcr
            .expire(now)
            .into_iter()
            .map(Measured::Fcr)
            .collect()
    }

    /// The latest event time it has seen (or been advanced to); `None` before any.
    pub fn clock(&self) -> Option<Timestamp> {
        self.clock
    }

    /// Resolutions whose first-contact resolution is not decided yet.
    pub fn pending_fcr(&self) -> usize {
        self.fcr.len()
    }

    /// Interactions the measurer remembers something about (those with a callback until
    /// idle for [`FORGET_AFTER`], even once measured).
    pub fn tracked_interactions(&self) -> usize {
        self.open.len()
    }

    /// The customer's original arrival for `tenant`'s interaction `id` with a callback
    /// (`CallbackRequested.original_arrival_at`, else the interaction's start), until idle
    /// for [`FORGET_AFTER`]: the callback's real wait runs from it. `None` without a callback.
    pub fn callback_arrival(&self, tenant: &TenantId, id: &InteractionId) -> Option<Timestamp> {
        self.open.get(tenant, id)?.callback_arrival
    }

    fn measure(
        &mut self,
        config: &MeasureConfig,
        event: &Event,
        at: Timestamp,
        journey: &Journey,
        out: &mut Vec<Measured>,
    ) {
        let Some((conversation, interaction)) = locate(journey, event) else {
            return;
        };
        let tenant = &journey.tenant_id;
        if let Some(interaction) = interaction {
            // A contact comes back at its start, or once its intent is known (a resolution
            // logged after it scans the journey instead: `Measurer::resolve`).
            let asks = interaction.started_at == at
                || matches!(event.payload, Payload::IntentDetected { .. });
            if asks {
                let intent = conversation.intent.as_ref().map(|i| i.intent.as_str());
                let who = (tenant, &journey.customer_id);
                let repeats = self.fcr.came_back(who, interaction.started_at, intent);
                out.extend(repeats.into_iter().map(Measured::Fcr));
            }
            if let Some(ending) = self.track(tenant, event, at, interaction) {
                let record = self.finish(config, journey, conversation, interaction, ending, at);
                out.push(Measured::Interaction(record));
            }
        }
        match &event.payload {
            Payload::WrapUpRecorded { need_resolved, .. } => {
                out.extend(resolved::wrap_up(conversation, at).map(Measured::WrapUp));
                let resolved_now = *need_resolved
                    && conversation.status == ConversationStatus::Resolved
                    && conversation.closed_at == Some(at)
                    && !self
                        .fcr
                        .is_pending(tenant, &journey.customer_id, &conversation.id);
                if resolved_now {
                    out.extend(self.resolve(config, journey, conversation, at));
                }
            }
            Payload::SurveyAnswered {
                csat, nps, effort, ..
            } => out.push(resolved::survey(conversation, at, (*csat, *nps, *effort))),
            _ => {}
        }
    }

    /// Notes what the journey does not keep; returns how the interaction ended, if this
    /// event ended it.
    fn track(
        &mut self,
        tenant: &TenantId,
        event: &Event,
        at: Timestamp,
        interaction: &Interaction,
    ) -> Option<Ending> {
        let id = &interaction.id;
        // One lookup: a new entry is not measured yet, as none is.
        let seen = if Seen::worth_keeping(&event.payload) {
            Some(self.open.entry(tenant, id).or_insert_with(|| Seen::new(at)))
        } else {
            self.open.get_mut(tenant, id)
        };
        let measured = seen.as_ref().is_some_and(|seen| seen.measured);
        if let Some(seen) = seen {
            seen.note(&event.payload, at, interaction.started_at);
        }
        if measured {
            return None;
        }
        match &event.payload {
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

    /// The record of an interaction that ended at `end`; forgets what was seen of it.
    fn finish(
        &mut self,
        config: &MeasureConfig,
        journey: &Journey,
        conversation: &Conversation,
        interaction: &Interaction,
        ending: Ending,
        end: Timestamp,
    ) -> InteractionRecord {
        let tenant = &journey.tenant_id;
        let seen = (self.open.remove(tenant, &interaction.id)).unwrap_or_else(|| Seen::new(end));
        if seen.callback_arrival.is_some() {
            let measured = Seen {
                measured: true,
                ..seen.clone()
            };
            self.open.insert(tenant, interaction.id.clone(), measured);
        }
        let stations = stations(interaction, &seen, end);
        let verdicts = judge(interaction, &seen, end, config);
        if let Some(wait) = stations.get(&Station::CallbackWait) {
            let tally = (self.callbacks.entry(tenant, &conversation.id)).or_insert(CallbackTally {
                count: 0,
                wait: Duration::ZERO,
                touched_at: end,
            });
            tally.count += 1;
            tally.wait += *wait;
            tally.touched_at = end;
        }
        InteractionRecord {
            interaction_id: interaction.id.clone(),
            conversation_id: conversation.id.clone(),
            customer_id: journey.customer_id.clone(),
            arrived_at: arrival(interaction, &seen),
            ended_at: end,
            dims: Dims {
                queue: interaction.queue_id.clone(),
                channel: interaction.channel,
                intent: conversation.intent.as_ref().map(|i| i.intent.clone()),
            },
            stations,
            ending,
            transfers: interaction.transfers,
            repeat: interaction.joined == JoinReason::Reopened,
            classic: verdicts.classic,
            journey: verdicts.journey,
            reason: verdicts.reason,
        }
    }
}
