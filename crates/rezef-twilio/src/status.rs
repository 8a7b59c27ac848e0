//! `POST /twilio/status`, a call's status callback: a call that is over ends its
//! interaction. `completed` is `InteractionEnded` (completed); `canceled` (the caller hung
//! up before the call was answered) is `ContactAbandoned` in the IVR, then
//! `InteractionEnded` (customer left); `busy`, `no-answer` and `failed` end it as failed or
//! timed out. Progress (`queued`, `ringing`, `in-progress`) publishes nothing.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use rezef_adapter::proto::{self, event::Payload};

use crate::App;
use crate::error::WebhookError;
use crate::events::Contact;
use crate::twiml::Twiml;
use crate::webhook::Webhook;

pub async fn callback(
    State(app): State<App>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebhookError> {
    let hook = Webhook::verify(&app.settings, &uri, &headers, &body)?;
    let contact = Contact::call(&app.settings, &hook)?;
    let ended = |reason: proto::EndReason| {
        let payload = Payload::InteractionEnded(proto::InteractionEnded {
            reason: reason as i32,
        });
        contact.event("ended", payload)
    };
    let events = match hook.require("CallStatus")? {
        "completed" => vec![ended(proto::EndReason::Completed)],
        "canceled" => {
            let abandoned = Payload::ContactAbandoned(proto::ContactAbandoned {
                point: proto::AbandonPoint::Ivr as i32,
            });
            vec![
                contact.event("abandoned", abandoned),
                ended(proto::EndReason::CustomerLeft),
            ]
        }
        "no-answer" => vec![ended(proto::EndReason::TimedOut)],
        "busy" | "failed" => vec![ended(proto::EndReason::Failed)],
        _ => Vec::new(),
    };
    if !events.is_empty() {
        app.publisher.publish_all(events).await?;
    }
    Ok(app.twiml(Twiml::new()))
}
