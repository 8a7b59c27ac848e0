//! Calls: `POST /twilio/voice` when one comes in, `POST /twilio/voice/gather` with the keys
//! the caller pressed in the menu, `POST /twilio/voice/queue` when the caller leaves a
//! Twilio queue (`<Enqueue action>`): `QueueResult=hangup` is `ContactAbandoned` in the
//! queue.
//!
//! A call is published as `InteractionStarted` (voice, the caller's phone as identity), then
//! `ResumeConversation` is asked by that phone, for at most `[twilio] resume_timeout_ms`: a
//! caller whose open conversation has a known intent (`skip_self_service`) is greeted by
//! its topic and connected (`ContactQueued` on an `<Enqueue>`), skipping the menu; anyone
//! else, and every caller while Rezef is out of reach, gets the menu (`<Gather>`). Events go
//! through the spool, so a call is answered whether or not Rezef is up.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use rezef_adapter::proto::{self, event::Payload};
use tracing::{info, warn};

use crate::App;
use crate::error::WebhookError;
use crate::events::Contact;
use crate::twiml::{Connect, Twiml};
use crate::webhook::Webhook;

pub const GATHER_PATH: &str = "/twilio/voice/gather";
pub const QUEUE_PATH: &str = "/twilio/voice/queue";

pub async fn incoming(
    State(app): State<App>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebhookError> {
    let hook = Webhook::verify(&app.settings, &uri, &headers, &body)?;
    let contact = Contact::call(&app.settings, &hook)?;
    let started = contact.event(
        "started",
        Payload::InteractionStarted(proto::InteractionStarted {
            direction: proto::Direction::Inbound as i32,
            identity: Some(proto::ChannelIdentity {
                kind: proto::IdentityKind::Phone as i32,
                value: hook.require("From")?.to_owned(),
                network: String::new(),
            }),
            entry_point: hook.get("To").unwrap_or_default().to_owned(),
            ..Default::default()
        }),
    );
    // The call is answered even when the spool refuses: the caller is on the line.
    if let Err(error) = app.publisher.publish(started).await {
        warn!(%error, "call start not accepted");
    }
    let voice = &app.settings.voice;
    let Some(topic) = open_topic(&app, &hook, &contact).await else {
        return Ok(app.twiml(menu(&app)));
    };
    info!("known caller with an open conversation: menu skipped");
    let queued = queued(&contact, "queued", &voice.connect);
    if let Some(event) = queued
        && let Err(error) = app.publisher.publish(event).await
    {
        warn!(%error, "queueing not accepted");
    }
    let greeting = voice.greeting.replace("{topic}", &voice.topic(&topic));
    let language = voice.language.as_deref();
    Ok(app.twiml(
        Twiml::new()
            .say(&greeting, language)
            .connect(&voice.connect, &app.url(QUEUE_PATH)),
    ))
}

/// The intent of the caller's open conversation, when Rezef answers in time that the menu
/// has nothing left to ask.
async fn open_topic(app: &App, hook: &Webhook, contact: &Contact) -> Option<String> {
    let mut client = app.client.clone();
    let resume = client.resume(
        &hook.account.tenant,
        contact.customer(),
        proto::Channel::Voice,
        None,
    );
    let answer = match tokio::time::timeout(app.settings.twilio.resume_timeout_ms, resume).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(error)) => {
            warn!(%error, "resume failed: menu");
            return None;
        }
        Err(_) => {
            warn!("resume timed out: menu");
            return None;
        }
    };
    let intent = answer.conversation?.intent?.intent;
    (answer.skip_self_service && !intent.is_empty()).then_some(intent)
}

pub async fn gather(
    State(app): State<App>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebhookError> {
    let hook = Webhook::verify(&app.settings, &uri, &headers, &body)?;
    let digits = hook.get("Digits").unwrap_or_default();
    let contact = Contact::call(&app.settings, &hook)?;
    let voice = &app.settings.voice;
    let chosen = voice.option(digits);
    let outcome = match chosen {
        Some(_) => proto::StepOutcome::Continued,
        None => proto::StepOutcome::Failed,
    };
    // Keys are digits only (Twilio's `Digits`), so they fit in an id.
    let key: String = digits.chars().filter(char::is_ascii_alphanumeric).collect();
    let mut events = vec![contact.event(
        &format!("menu:{key}"),
        Payload::SelfServiceStepCompleted(proto::SelfServiceStepCompleted {
            step_id: "menu".into(),
            prompt: voice.menu_prompt.clone(),
            customer_input: digits.to_owned(),
            outcome: outcome as i32,
        }),
    )];
    let Some(option) = chosen else {
        app.publisher.publish_all(events).await?;
        let retry = Twiml::new().say(&voice.retry_prompt, voice.language.as_deref());
        return Ok(app.twiml(with_menu(&app, retry)));
    };
    let connect = option.connect.as_ref().unwrap_or(&voice.connect);
    events.push(contact.event(
        &format!("intent:{key}"),
        Payload::IntentDetected(proto::IntentDetected {
            intent: option.intent.clone(),
            confidence: 1.0,
            detected_by: "ivr-menu".into(),
        }),
    ));
    events.extend(queued(&contact, &format!("queued:{key}"), connect));
    app.publisher.publish_all(events).await?;
    let twiml = Twiml::new()
        .say(&voice.connecting, voice.language.as_deref())
        .connect(connect, &app.url(QUEUE_PATH));
    Ok(app.twiml(twiml))
}

/// `ContactQueued` when the call goes into a Twilio queue.
fn queued(contact: &Contact, kind: &str, connect: &Connect) -> Option<proto::Event> {
    let Connect::Enqueue(queue) = connect else {
        return None;
    };
    let payload = Payload::ContactQueued(proto::ContactQueued {
        queue_id: queue.clone(),
        ..Default::default()
    });
    Some(contact.event(kind, payload))
}

/// The menu: the options gathered, then (no key pressed) the default connection.
fn menu(app: &App) -> Twiml {
    with_menu(app, Twiml::new())
}

fn with_menu(app: &App, twiml: Twiml) -> Twiml {
    let voice = &app.settings.voice;
    let action = app.url(GATHER_PATH);
    let language = voice.language.as_deref();
    twiml
        .gather(&action, voice.digits(), &voice.menu_prompt, language)
        .say(&voice.connecting, language)
        .connect(&voice.connect, &app.url(QUEUE_PATH))
}

/// The caller left the queue: hung up waiting (`hangup`) is an abandon in the queue; being
/// connected (`bridged`) or sent on publishes nothing. The answer is empty TwiML.
pub async fn left_queue(
    State(app): State<App>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebhookError> {
    let hook = Webhook::verify(&app.settings, &uri, &headers, &body)?;
    if hook.get("QueueResult") == Some("hangup") {
        let contact = Contact::call(&app.settings, &hook)?;
        let abandoned = Payload::ContactAbandoned(proto::ContactAbandoned {
            point: proto::AbandonPoint::Queue as i32,
        });
        app.publisher
            .publish(contact.event("abandoned", abandoned))
            .await?;
    }
    Ok(app.twiml(Twiml::new()))
}
