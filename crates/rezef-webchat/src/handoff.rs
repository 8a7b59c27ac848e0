//! Handing a chat to a human: the bot's last word and `HandoffRequested` are published
//! straight to Rezef (after what the publisher holds, so they follow the chat in the log),
//! which gives their offset; then `Routing/RouteInteraction` is asked for the chat, with
//! that offset as `min_offset` so routing decides on a journey that has the handoff. With
//! Rezef out of reach the events go through the spool instead, and the chat is not routed
//! now (a supervisor sees the handoff in the journey once Rezef is back).

use std::time::Duration;

use rezef_adapter::proto::{self, event::Payload};
use tracing::{info, warn};

use crate::App;
use crate::bot::Handoff;
use crate::events::ChatEvents;

/// How long the handoff waits for Rezef (the spool's events first, then its own).
const WAIT: Duration = Duration::from_secs(3);

/// A handoff, as the bot knows it.
#[derive(Debug)]
pub struct Request<'a> {
    /// The widget's id of the message that led to it.
    pub message_id: &'a str,
    pub reason: Handoff,
    /// Turns the bot did not understand, in a row.
    pub failures: u32,
    /// The intent the bot last recognised.
    pub intent: Option<&'a str>,
    pub language: Option<&'a str>,
}

/// Publishes the handoff and routes the chat. Errors only when the spool refuses the events.
pub async fn hand_off(
    app: &App,
    chat: &ChatEvents,
    request: &Request<'_>,
) -> Result<(), rezef_adapter::Error> {
    let bot = &app.settings.bot;
    let reason = match request.reason {
        Handoff::CustomerAsked => proto::HandoffReason::CustomerAsked,
        Handoff::BotFailed => proto::HandoffReason::BotFailed,
    };
    let id = request.message_id;
    let events = vec![
        chat.bot_message(&format!("bot:{id}"), &bot.id, &bot.handoff),
        chat.event(
            &format!("handoff:{id}"),
            Payload::HandoffRequested(proto::HandoffRequested {
                bot_id: bot.id.clone(),
                reason: reason as i32,
                target_queue_id: String::new(),
                summary: summary(request),
            }),
        ),
    ];
    let Some(offset) = publish_now(app, events.clone()).await else {
        warn!("Rezef out of reach: the handoff is spooled, the chat not routed");
        app.publisher.publish_all(events).await?;
        return Ok(());
    };
    let route = proto::RouteInteractionRequest {
        tenant_id: app.settings.webchat.tenant.clone(),
        customer: Some(chat.customer()),
        interaction_id: chat.chat().to_owned(),
        channel: proto::Channel::Webchat as i32,
        language: request.language.unwrap_or_default().to_owned(),
        human_requested: true,
        bot_failures: request.failures,
        min_offset: Some(offset),
        ..Default::default()
    };
    match app.client.routing().route_interaction(route).await {
        Ok(routed) => {
            let routed = routed.into_inner();
            let outcome = proto::RouteOutcome::try_from(routed.outcome).unwrap_or_default();
            info!(outcome = outcome.as_str_name(), queue = %routed.queue_id, "chat routed");
        }
        Err(status) => warn!(code = ?status.code(), "the chat could not be routed"),
    }
    Ok(())
}

/// The offset of the last of `events`, published directly once the publisher has
/// delivered what it holds; `None` when Rezef does not answer in time.
async fn publish_now(app: &App, events: Vec<proto::Event>) -> Option<u64> {
    let delivered = tokio::time::timeout(WAIT, app.publisher.flush()).await;
    if !matches!(delivered, Ok(Ok(()))) {
        return None;
    }
    let mut client = app.client.clone();
    let ack = match tokio::time::timeout(WAIT, client.publish(events)).await {
        Ok(Ok(ack)) => ack,
        Ok(Err(error)) => {
            warn!(%error, "handoff not published directly");
            return None;
        }
        Err(_) => return None,
    };
    let last = ack.first_offset + u64::from(ack.count.saturating_sub(1));
    Some(ack.positions.last().map_or(last, |p| p.offset))
}

/// The bot's summary for the agent: why, and what it understood.
fn summary(request: &Request<'_>) -> String {
    let why = match request.reason {
        Handoff::CustomerAsked => "The visitor asked for a person".to_owned(),
        Handoff::BotFailed => format!(
            "The bot did not understand the visitor {} times in a row",
            request.failures + 1
        ),
    };
    match request.intent {
        Some(intent) => format!("{why}; last topic: {intent}."),
        None => format!("{why}."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_says_why_and_the_topic() {
        let request = Request {
            message_id: "m",
            reason: Handoff::BotFailed,
            failures: 1,
            intent: Some("billing.invoice"),
            language: None,
        };
        assert_eq!(
            summary(&request),
            "The bot did not understand the visitor 2 times in a row; last topic: billing.invoice."
        );
        let asked = Request {
            reason: Handoff::CustomerAsked,
            intent: None,
            ..request
        };
        assert_eq!(summary(&asked), "The visitor asked for a person.");
    }
}
