//! What the measurer produces: one record per interaction when it ends, per wrap-up, per
//! resolved conversation, per first-contact-resolution decision and per survey. Each record
//! carries the instant and the dimensions (queue, channel, intent) it is counted under, so
//! figures are a plain sum of records and a rebuild gives the same figures.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use rezef_events::event::{AbandonPoint, EndReason};
use rezef_events::journey::SurveyScores;
use rezef_events::{Channel, ConversationId, CustomerId, InteractionId, TenantId, Timestamp};

/// A station of the journey whose durations are measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Station {
    /// In an IVR menu or with a bot (including the wait for a handoff).
    SelfService,
    /// Waiting in a queue for an agent.
    Queue,
    /// Offered to an agent, ringing.
    Offer,
    /// From the original arrival until the callback connected (or failed).
    CallbackWait,
    /// With an agent (talk or handle time), hold excluded.
    Talk,
    /// On hold while the agent consults another.
    Hold,
    /// From the end of an agent's contact to their wrap-up.
    WrapUp,
    /// Written channels (email, forms, social): to the first agent message or assignment.
    FirstResponse,
    /// Real-time channels: from first contact (or original arrival) to an agent's answer.
    JourneyWait,
    /// Per conversation: from first contact to the first agent's answer.
    FirstAnswer,
    /// Per conversation: from first contact to resolution.
    Resolution,
}

/// How a contact counts in a service level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Not in the figure at all.
    Excluded,
    /// Answered within the target.
    InTarget,
    /// Counted, not answered within the target (late, abandoned, never answered).
    Missed,
}

/// Why the journey-true verdict of a contact differs from the classic one (the first that
/// applies, in this order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// A callback's real wait from the original arrival passed the target.
    CallbackRealWait,
    /// A callback was never connected (unreached, or abandoned while waiting).
    CallbackAbandon,
    /// Gave up in the IVR, never queued: invisible to the classic figure.
    IvrAbandon,
    /// Gave up with a bot, never queued.
    BotAbandon,
    /// Arrived while the queue was closed.
    ClosedHours,
    /// Abandoned in the queue before the short-abandon threshold.
    ShortAbandonExcluded,
    /// The time before the queue (IVR menus) pushed the answer past the target.
    IvrTime,
    /// The time with a bot pushed the answer past the target.
    BotTime,
    /// Reached an agent without a queue.
    NotQueued,
}

/// How an interaction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ending {
    Ended(Option<EndReason>),
    Abandoned(AbandonPoint),
    /// The callback was made and the customer did not answer.
    CallbackUnreached,
}

/// The dimensions a record is counted under.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Dims {
    pub queue: Option<String>,
    pub channel: Option<Channel>,
    pub intent: Option<String>,
}

/// One contact on one channel, measured when it ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InteractionRecord {
    pub interaction_id: InteractionId,
    pub conversation_id: ConversationId,
    pub customer_id: CustomerId,
    /// When the customer arrived: the start, or a callback's original arrival.
    pub arrived_at: Timestamp,
    pub ended_at: Timestamp,
    pub dims: Dims,
    /// The stations it went through, each with its time.
    pub stations: BTreeMap<Station, Duration>,
    pub ending: Ending,
    pub transfers: u32,
    /// It reopened a closed conversation about the same need.
    pub repeat: bool,
    pub classic: Verdict,
    pub journey: Verdict,
    pub reason: Option<Reason>,
}

/// A wrap-up, timed from the end of the agent's latest contact in the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WrapUpRecord {
    pub at: Timestamp,
    pub dims: Dims,
    pub duration: Duration,
}

/// One customer need, measured when a wrap-up resolved it ([`Measured::Conversation`]) or
/// when it closed as inactive, unresolved ([`Measured::Unresolved`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationRecord {
    pub conversation_id: ConversationId,
    pub customer_id: CustomerId,
    /// Queue of its latest queued contact, channel of its first, its intent.
    pub dims: Dims,
    pub opened_at: Timestamp,
    /// When it was resolved, or when its inactivity timeout passed.
    pub closed_at: Timestamp,
    /// From first contact to the first agent's answer, if one answered.
    pub first_answer: Option<Duration>,
    pub contacts: u32,
    pub transfers: u32,
    pub callbacks: u32,
    /// The callbacks' real waits, added up.
    pub callback_wait: Duration,
}

/// Whether a resolved conversation was resolved at first contact: decided at resolution
/// when it took more than one contact, else when the customer came back about the same
/// intent within the window, else when the window passed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FcrDecision {
    /// Its tenant: a decision the clock makes (the window passed) may be of any tenant the
    /// measurer serves, not only the tenant of the event that moved the clock.
    pub tenant_id: TenantId,
    pub conversation_id: ConversationId,
    pub customer_id: CustomerId,
    /// Counted in the resolution's bucket.
    pub resolved_at: Timestamp,
    pub dims: Dims,
    pub achieved: bool,
}

/// A survey answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SurveyRecord {
    pub at: Timestamp,
    pub dims: Dims,
    pub scores: SurveyScores,
}

/// One measured record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Measured {
    Interaction(InteractionRecord),
    WrapUp(WrapUpRecord),
    /// A conversation resolved.
    Conversation(ConversationRecord),
    /// A conversation closed as inactive without a wrap-up resolving it.
    Unresolved(ConversationRecord),
    Fcr(FcrDecision),
    Survey(SurveyRecord),
}

impl Measured {
    /// The instant the record is counted at.
    pub fn at(&self) -> Timestamp {
        match self {
            Self::Interaction(r) => r.arrived_at,
            Self::WrapUp(r) => r.at,
            Self::Conversation(r) | Self::Unresolved(r) => r.closed_at,
            Self::Fcr(r) => r.resolved_at,
            Self::Survey(r) => r.at,
        }
    }

    /// The dimensions it is counted under.
    pub fn dims(&self) -> &Dims {
        match self {
            Self::Interaction(r) => &r.dims,
            Self::WrapUp(r) => &r.dims,
            Self::Conversation(r) | Self::Unresolved(r) => &r.dims,
            Self::Fcr(r) => &r.dims,
            Self::Survey(r) => &r.dims,
        }
    }
}
