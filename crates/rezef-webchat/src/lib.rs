//! A Rezef channel adapter for web chat: an embeddable widget and the WebSocket it talks
//! to. A visitor's chat is an interaction on the WEBCHAT channel, the visitor id the widget
//! keeps as identity; a rule bot answers first and hands off to a human through routing;
//! agents' replies, which agent desktops publish to Rezef, reach the visitor from the
//! journey; a visitor coming back is shown the conversation so far (docs/adapters.md, "The
//! web chat adapter").
//!
//! # Layout
//! - `settings.rs`: the TOML settings (`[webchat]`, `[bot]`).
//! - `protocol.rs`: the JSON frames between widget and adapter.
//! - `session.rs`: one visitor's connection, from `hello` to its end; `away.rs`: a chat
//!   whose visitor went away, kept open a moment for them to come back.
//! - `events.rs`: the events a chat becomes, with ids stable per widget message id.
//! - `bot.rs`: the rule bot's decisions; `handoff.rs`: handing the chat to a human.
//! - `watch.rs`: the journey watched for agent replies and the chat's stage;
//!   `transcript.rs`: which of its messages the visitor has not seen.
//! - `assets.rs`: the widget and a demo page; `error.rs`: a frame refused, as the widget is
//!   told.
//!
//! Health (`/healthz`, `/readyz`), metrics (`/metrics`), logs and the graceful stop come
//! from the SDK's runtime (`rezef_adapter::service`).

mod assets;
mod away;
pub mod bot;
mod error;
mod events;
mod handoff;
pub mod protocol;
mod session;
pub mod settings;
mod transcript;
mod watch;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rezef_adapter::service::Runtime;
use rezef_adapter::{Client, Publisher};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch as signal};

pub use error::ChatError;
pub use settings::Settings;

/// How long a stopping adapter waits for its chats to close.
const CLOSE_CHATS: Duration = Duration::from_secs(2);

/// What the chats share.
#[derive(Debug, Clone)]
struct App {
    settings: Arc<Settings>,
    publisher: Arc<Publisher>,
    client: Client,
    /// Becomes true when the adapter stops: every chat closes (without ending: the widget
    /// reconnects to carry it on).
    stopping: signal::Receiver<bool>,
    chats: Arc<Chats>,
    away: Arc<away::Away>,
}

/// The chats open, so that a stopping adapter closes its publisher after them.
#[derive(Debug, Default)]
struct Chats {
    open: AtomicUsize,
    closed: Notify,
}

/// One open chat, counted while it lives.
#[derive(Debug)]
struct ChatGuard(Arc<Chats>);

impl ChatGuard {
    fn new(chats: &Arc<Chats>) -> Self {
        chats.open.fetch_add(1, Ordering::SeqCst);
        Self(chats.clone())
    }
}

impl Drop for ChatGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
        self.0.closed.notify_waiters();
    }
}

impl Chats {
    async fn all_closed(&self) {
        loop {
            // Registered before the count is read, so that a chat closing in between wakes it.
            let closed = self.closed.notified();
            tokio::pin!(closed);
            closed.as_mut().enable();
            if self.open.load(Ordering::SeqCst) == 0 {
                return;
            }
            closed.await;
        }
    }
}

/// Serves the widget and its WebSocket with `settings` on `listener` until `shutdown`
/// resolves.
pub async fn run(
    settings: Settings,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), rezef_adapter::Error> {
    settings.validate().map_err(rezef_adapter::Error::Config)?;
    let runtime = Runtime::start(&settings.rezef, &settings.spool).await?;
    let (stop, stopping) = signal::channel(false);
    let chats = Arc::new(Chats::default());
    let app = App {
        settings: Arc::new(settings),
        publisher: runtime.publisher(),
        client: runtime.client(),
        stopping,
        chats: chats.clone(),
        away: Arc::default(),
    };
    let routes = Router::new()
        .route("/", get(assets::index))
        .route("/widget.js", get(assets::widget_js))
        .route("/widget.css", get(assets::widget_css))
        .route("/chat", get(upgrade))
        .with_state(app);
    let shutdown = async move {
        shutdown.await;
        let _ = stop.send(true);
        let _ = tokio::time::timeout(CLOSE_CHATS, chats.all_closed()).await;
    };
    runtime.serve(listener, routes, shutdown).await
}

/// `GET /chat`: the WebSocket, for pages of an allowed origin (403 for others).
async fn upgrade(State(app): State<App>, headers: HeaderMap, ws: WebSocketUpgrade) -> Response {
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(origin) = headers.get(header::ORIGIN) {
        let allowed = (origin.to_str().ok())
            .is_some_and(|o| (app.settings.webchat).origin_allowed(o, text(header::HOST)));
        if !allowed {
            tracing::info!("chat refused: origin not allowed");
            return (StatusCode::FORBIDDEN, "this page may not open a chat\n").into_response();
        }
    }
    // Frames up to four times the limit reach the session, which answers them with an
    // error frame; larger ones end the connection at once.
    let cap = app.settings.webchat.max_message_bytes.saturating_mul(4);
    let guard = ChatGuard::new(&app.chats);
    ws.max_message_size(cap)
        .max_frame_size(cap)
        .on_upgrade(move |socket| async move {
            session::run(socket, app).await;
            drop(guard);
        })
}
