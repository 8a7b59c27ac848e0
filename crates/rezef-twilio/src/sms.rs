//! Messages: `POST /twilio/sms` (Twilio's incoming-message webhook) becomes a `MessageSent`
//! from the customer on the SMS channel, the sender's phone as identity, its media
//! (`MediaUrlN`, `MediaContentTypeN`) as attachments by reference. The messages between one
//! phone and one of the account's numbers are one interaction, named by a hash of the two
//! (no number in the id). The answer is empty TwiML: replies come from agents, not here.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use rezef_adapter::proto::{self, event::Payload};
use ring::digest;

use crate::App;
use crate::error::WebhookError;
use crate::events::Contact;
use crate::twiml::Twiml;
use crate::webhook::Webhook;

/// Media a message carries at most (Twilio sends up to 10).
const MAX_MEDIA: usize = 10;

pub async fn incoming(
    State(app): State<App>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebhookError> {
    let hook = Webhook::verify(&app.settings, &uri, &headers, &body)?;
    let (sid, from) = (hook.require("MessageSid")?, hook.require("From")?);
    let to = hook.get("To").unwrap_or_default();
    let thread = thread_id(&hook.account.tenant, to, from);
    let contact = Contact::new(
        &app.settings,
        &hook,
        proto::Channel::Sms,
        &thread,
        sid,
        from,
    );
    let media: usize = (hook.get("NumMedia"))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let attachments = (0..media.min(MAX_MEDIA))
        .filter_map(|n| {
            let uri = hook.get(&format!("MediaUrl{n}"))?.to_owned();
            let content_type = (hook.get(&format!("MediaContentType{n}")))
                .unwrap_or_default()
                .to_owned();
            Some(proto::Attachment {
                uri,
                content_type,
                ..Default::default()
            })
        })
        .collect();
    let message = contact.event(
        "message",
        Payload::MessageSent(proto::MessageSent {
            from: proto::Participant::Customer as i32,
            text: hook.get("Body").unwrap_or_default().to_owned(),
            attachments,
            ..Default::default()
        }),
    );
    app.publisher.publish(message).await?;
    Ok(app.twiml(Twiml::new()))
}

/// `sms-` and 16 hex digits of SHA-256 over the tenant and the two numbers.
fn thread_id(tenant: &str, to: &str, from: &str) -> String {
    let mut context = digest::Context::new(&digest::SHA256);
    for part in [tenant, to, from] {
        context.update(part.as_bytes());
        context.update(&[0]);
    }
    let hash = context.finish();
    let hex: String = hash.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sms-{hex}")
}

#[cfg(test)]
mod tests {
    use super::thread_id;

    #[test]
    fn a_thread_is_the_pair_of_numbers_and_names_neither() {
        let thread = thread_id("acme", "+18005551212", "+12349013030");
        assert_eq!(thread, thread_id("acme", "+18005551212", "+12349013030"));
        assert_ne!(thread, thread_id("acme", "+18005551213", "+12349013030"));
        assert_eq!(thread.len(), 20);
        assert!(!thread.contains("1234901"));
    }
}
