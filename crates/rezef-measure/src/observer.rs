//! The measurer: fed every event the journey fold applied, with the journey after it, it
//! produces measured records (what it reads of the journey: `observation`; its books:
//! here). The fold already decided which conversation and interaction
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
use rezef_events::fold::Applied;
use rezef_events::journey::JoinReason;
use rezef_events::{ConversationId, Event, InteractionId, Journey, TenantId, Timestamp};

use crate::config::MeasureConfig;
use crate::fcr::PendingFcr;
use crate::observation::{Contact, Ends, Observation};
use crate::record::{Dims, InteractionRecord, Measured, Station};
use crate::resolved::Whose;
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
    /// The same as [`Self::take`] of what [`Observation::read`] reads.
    pub fn observe(
        &mut self,
        config: &MeasureConfig,
        offset: u64,
        event: &Event,
        recorded_at: Option<Timestamp>,
        folded: (&Journey, &Applied),
    ) -> Vec<Measured> {
        if self.is_replay(offset) {
            return Vec::new();
        }
        let seen = Observation::read(config, offset, event, recorded_at, folded);
        self.take(config, &folded.0.tenant_id, seen)
    }

    /// Measures what was read of an applied event of `tenant`'s journey, wherever it was
    /// read (see [`Self::observe`]), under the tenant's `config`.
    pub fn take(
        &mut self,
        config: &MeasureConfig,
        tenant: &TenantId,
        seen: Observation,
    ) -> Vec<Measured> {
        if self.is_replay(seen.offset) {
            return Vec::new();
        }
        self.last_offset = Some(seen.offset);
        let Observation {
            at,
            customer,
            closed,
            contact,
            wrap_up,
            survey,
            ..
        } = seen;
        let whose = (tenant, &customer);
        // Closed when their timeout passed, before this event.
        let mut out: Vec<Measured> = (closed.into_iter())
            .map(|closed| self.unresolved(whose, closed))
            .collect();
        if let Some(contact) = contact {
            self.contact(config, whose, contact, at, &mut out);
        }
        if let Some(wrap_up) = wrap_up {
            out.extend(wrap_up.record.map(Measured::WrapUp));
            let resolution = (wrap_up.resolution)
                .filter(|r| !self.fcr.is_pending(tenant, &customer, &r.closed.id));
            if let Some(resolution) = resolution {
                out.extend(self.resolve(config, whose, resolution));
            }
        }
        out.extend(survey.map(|survey| *survey));
        out.extend(self.advance(at));
        out
    }

    fn is_replay(&self, offset: u64) -> bool {
        self.last_offset.is_some_and(|last| offset <= last)
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

    /// An event about an interaction: whether the customer came back about a pending
    /// resolution, what the journey does not keep, and its record if it ended it.
    fn contact(
        &mut self,
        config: &MeasureConfig,
        whose: Whose<'_>,
        contact: Contact,
        at: Timestamp,
        out: &mut Vec<Measured>,
    ) {
        if let Some(intent) = &contact.asks {
            let repeats = self
                .fcr
                .came_back(whose, contact.started_at, intent.as_deref());
            out.extend(repeats.into_iter().map(Measured::Fcr));
        }
        let (tenant, id) = (whose.0, &contact.id);
        // One lookup: a new entry is not measured yet, as none is.
        let seen = if contact.note.worth_keeping() {
            Some(self.open.entry(tenant, id).or_insert_with(|| Seen::new(at)))
        } else {
            self.open.get_mut(tenant, id)
        };
        let measured = seen.as_ref().is_some_and(|seen| seen.measured);
        if let Some(seen) = seen {
            seen.note(contact.note, at, contact.started_at);
        }
        if let Some(ends) = contact.ends.filter(|_| !measured) {
            let record = self.finish(config, whose, *ends, at);
            out.push(Measured::Interaction(record));
        }
    }

    /// The record of an interaction that ended at `end`; forgets what was seen of it.
    fn finish(
        &mut self,
        config: &MeasureConfig,
        (tenant, customer): Whose<'_>,
        ends: Ends,
        end: Timestamp,
    ) -> InteractionRecord {
        let Ends {
            ending,
            interaction,
            conversation_id,
            intent,
        } = ends;
        let seen = (self.open.remove(tenant, &interaction.id)).unwrap_or_else(|| Seen::new(end));
        if seen.callback_arrival.is_some() {
            let measured = Seen {
                measured: true,
                ..seen.clone()
            };
            self.open.insert(tenant, interaction.id.clone(), measured);
        }
        let stations = stations(&interaction, &seen, end);
        let verdicts = judge(&interaction, &seen, end, config);
        if let Some(wait) = stations.get(&Station::CallbackWait) {
            let tally = (self.callbacks.entry(tenant, &conversation_id)).or_insert(CallbackTally {
                count: 0,
                wait: Duration::ZERO,
                touched_at: end,
            });
            tally.count += 1;
            tally.wait += *wait;
            tally.touched_at = end;
        }
        InteractionRecord {
            arrived_at: arrival(&interaction, &seen),
            ended_at: end,
            dims: Dims {
                queue: interaction.queue_id,
                channel: interaction.channel,
                intent,
            },
            stations,
            ending,
            transfers: interaction.transfers,
            repeat: interaction.joined == JoinReason::Reopened,
            classic: verdicts.classic,
            journey: verdicts.journey,
            reason: verdicts.reason,
            interaction_id: interaction.id,
            conversation_id,
            customer_id: customer.clone(),
        }
    }
}
