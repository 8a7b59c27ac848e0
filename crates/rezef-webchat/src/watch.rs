//! The visitor's journey, watched (`Journeys/WatchJourney` by the visitor identity, so that
//! merges are followed) for what the widget must show: agent messages the visitor has not
//! seen (`transcript.rs`) and the stage of the chat's interaction. The watch starts again,
//! from the last offset received, whenever it ends (the journey not projected yet, Rezef
//! restarting).

use std::time::Duration;

use rezef_adapter::{Client, proto};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::transcript::Forwarder;

/// How long before watching again after the watch ended.
const AGAIN: Duration = Duration::from_millis(300);

/// What changed for the chat.
#[derive(Debug)]
pub struct Update {
    pub stage: Option<proto::Stage>,
    pub messages: Vec<proto::TranscriptEntry>,
}

/// Watches `customer`'s journey for chat `chat` until `updates` is dropped.
pub fn spawn(
    client: Client,
    tenant: String,
    customer: proto::CustomerRef,
    chat: String,
    mut forwarder: Forwarder,
    updates: mpsc::Sender<Update>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut from_offset = None;
        while !updates.is_closed() {
            let request = proto::WatchJourneyRequest {
                tenant_id: tenant.clone(),
                customer: Some(customer.clone()),
                from_offset,
            };
            if let Ok(answer) = client.journeys().watch_journey(request).await {
                let mut stream = answer.into_inner();
                while let Ok(Some(journey_update)) = stream.message().await {
                    from_offset = Some(journey_update.projected_offset);
                    let Some(journey) = journey_update.journey else {
                        continue;
                    };
                    let update = of_chat(&journey, &chat, &mut forwarder);
                    if updates.send(update).await.is_err() {
                        return;
                    }
                }
            }
            tokio::time::sleep(AGAIN).await;
        }
    })
}

/// The chat's stage and its conversation's new agent messages.
fn of_chat(journey: &proto::Journey, chat: &str, forwarder: &mut Forwarder) -> Update {
    let found = (journey.conversations.iter()).find_map(|c| {
        let interaction = c.interactions.iter().find(|i| i.interaction_id == chat)?;
        Some((c, interaction))
    });
    let Some((conversation, interaction)) = found else {
        return Update {
            stage: None,
            messages: Vec::new(),
        };
    };
    Update {
        stage: proto::Stage::try_from(interaction.stage).ok(),
        messages: forwarder.fresh(&conversation.transcript),
    }
}
