//! Routing's answers in the public contract: a decision, queue figures, and what an agent
//! session receives.

use rezef_proto::v1::{
    self, AgentSessionEvent, ResumeConversationResponse, RouteInteractionResponse, RouteOutcome,
    agent_session_event as out,
};
use rezef_routing::{Decision, QueueStats, Target};
use tonic::Status;

use super::{duration, presence_to_proto, timestamp};
use crate::error::code_name;
use crate::routing::desk::Outgoing;

/// What `RouteInteraction` answers for `decision`, logged at `offset`.
pub fn route_response(decision: Decision, offset: u64) -> RouteInteractionResponse {
    let mut response = RouteInteractionResponse {
        queue_id: decision.queue,
        rule: decision.rule.unwrap_or_default(),
        step: u32::try_from(decision.step).unwrap_or(u32::MAX),
        priority: decision.priority,
        candidates: (decision.candidates.iter())
            .map(ToString::to_string)
            .collect(),
        config_version: decision.config_version,
        offset,
        ..Default::default()
    };
    match decision.target {
        Target::Bot { bot_id } => {
            response.outcome = RouteOutcome::Bot as i32;
            response.bot_id = bot_id;
        }
        Target::Offered(offer) => {
            response.outcome = RouteOutcome::Offered as i32;
            response.agent_id = offer.agent.to_string();
            response.offer_id = offer.id.0;
        }
        Target::Queued {
            position,
            estimated_wait,
            offer_callback,
        } => {
            response.outcome = RouteOutcome::Queued as i32;
            response.position = u32::try_from(position).unwrap_or(u32::MAX);
            response.estimated_wait = estimated_wait.map(duration);
            response.offer_callback = offer_callback;
        }
    }
    response
}

/// One queue's figures.
pub fn queue_stats(stats: QueueStats) -> v1::QueueStats {
    let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    v1::QueueStats {
        queue_id: stats.queue,
        waiting: count(stats.waiting),
        scheduled: count(stats.scheduled),
        longest_wait: Some(duration(stats.longest_wait)),
        available: (stats.available.into_iter())
            .map(|(channel, n)| (channel.to_string(), count(n)))
            .collect(),
        estimated_wait: stats.estimated_wait.map(duration),
        average_wait: stats.average_wait.map(duration),
        average_handle_time: stats.average_handle_time.map(duration),
    }
}

/// The first thing a session receives: logged in, under this configuration version.
pub fn logged_in(config_version: u64) -> AgentSessionEvent {
    session_event(out::Event::LoggedIn(out::LoggedIn { config_version }))
}

/// A request of the session that could not be carried out, and why.
pub fn refused(status: &Status) -> AgentSessionEvent {
    session_event(out::Event::Refused(out::Refused {
        code: code_name(status.code()).to_owned(),
        message: status.message().to_owned(),
    }))
}

/// What routing tells an agent, with an offer's `context` (the customer's journey as the
/// agent should see it) read beforehand.
pub fn outgoing(
    message: Outgoing,
    context: Option<ResumeConversationResponse>,
) -> AgentSessionEvent {
    session_event(match message {
        Outgoing::Offer { offer, consult, .. } => out::Event::Offer(out::Offer {
            offer_id: offer.id.0,
            interaction_id: offer.contact.to_string(),
            queue_id: offer.queue,
            expires_at: Some(timestamp(offer.expires_at)),
            context,
            consult,
        }),
        Outgoing::Withdrawn(offer, reason) => out::Event::Withdrawn(out::OfferWithdrawn {
            offer_id: offer.id.0,
            reason: reason.into(),
        }),
        Outgoing::Assigned(offer) => out::Event::Assigned(out::Assigned {
            offer_id: offer.id.0,
            interaction_id: offer.contact.to_string(),
        }),
        Outgoing::Presence(presence, reason) => out::Event::Presence(out::PresenceChanged {
            presence: presence_to_proto(presence),
            reason: reason.into(),
        }),
        Outgoing::ProfileUpdated => out::Event::ProfileUpdated(out::ProfileUpdated {}),
        Outgoing::TransferEnded(ended) => out::Event::TransferEnded(ended.into()),
        Outgoing::Consult(changed) => out::Event::Consult(changed.into()),
    })
}

fn session_event(event: out::Event) -> AgentSessionEvent {
    AgentSessionEvent { event: Some(event) }
}
