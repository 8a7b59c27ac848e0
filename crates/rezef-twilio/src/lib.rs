//! A Rezef channel adapter for Twilio-compatible voice and SMS: Twilio's webhooks in
//! (form-encoded, signed), events out through the SDK's publisher and its spool, TwiML
//! answers that use `ResumeConversation` so that a known caller skips the menu.
//!
//! # Layout
//! - `settings.rs`: the TOML settings (accounts and tenants, the public URL, the menu).
//! - `signature.rs`: `X-Twilio-Signature`, as Twilio's documentation specifies.
//! - `webhook.rs`: a request taken only once its signature holds.
//! - `events.rs`: the events a webhook becomes, with ids stable per Twilio `Sid`.
//! - `voice.rs`: `/twilio/voice`, `/twilio/voice/gather`, `/twilio/voice/queue`; `sms.rs`: `/twilio/sms`;
//!   `status.rs`: `/twilio/status`.
//! - `twiml.rs`: the TwiML answers, escaped.
//! - `error.rs`: why a webhook was refused, as an HTTP status.
//!
//! Health (`/healthz`, `/readyz`), metrics (`/metrics`), logs and the graceful stop come
//! from the SDK's runtime (`rezef_adapter::service`).

mod error;
mod events;
pub mod settings;
pub mod signature;
mod sms;
mod status;
pub mod twiml;
mod voice;
mod webhook;

use std::sync::Arc;

use axum::Router;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use rezef_adapter::service::Runtime;
use rezef_adapter::{Client, Publisher};
use tokio::net::TcpListener;

pub use error::WebhookError;
pub use settings::Settings;

/// What the webhooks share.
#[derive(Debug, Clone)]
struct App {
    settings: Arc<Settings>,
    publisher: Arc<Publisher>,
    client: Client,
}

impl App {
    /// The public URL of the adapter's `path`, for TwiML's `action`s.
    fn url(&self, path: &str) -> String {
        format!(
            "{}{path}",
            self.settings.twilio.public_url.trim_end_matches('/')
        )
    }

    fn twiml(&self, twiml: twiml::Twiml) -> Response {
        ([(header::CONTENT_TYPE, "text/xml")], twiml.render()).into_response()
    }
}

/// Serves the webhooks with `settings` on `listener` until `shutdown` resolves.
pub async fn run(
    settings: Settings,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), rezef_adapter::Error> {
    settings.validate().map_err(rezef_adapter::Error::Config)?;
    let runtime = Runtime::start(&settings.rezef, &settings.spool).await?;
    let app = App {
        settings: Arc::new(settings),
        publisher: runtime.publisher(),
        client: runtime.client(),
    };
    let routes = Router::new()
        .route("/twilio/voice", post(voice::incoming))
        .route(voice::GATHER_PATH, post(voice::gather))
        .route(voice::QUEUE_PATH, post(voice::left_queue))
        .route("/twilio/sms", post(sms::incoming))
        .route("/twilio/status", post(status::callback))
        .with_state(app);
    runtime.serve(listener, routes, shutdown).await
}
