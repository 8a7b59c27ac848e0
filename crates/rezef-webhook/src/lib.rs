//! A Rezef channel adapter for any JSON webhook, for systems nobody wrote an adapter for: a
//! POST to `/hooks/<route>` is checked (HMAC of the body or a bearer token), mapped to
//! events by the routes of a declarative mapping file, and published through the SDK's
//! publisher and its spool (docs/adapters.md, "The generic webhook adapter").
//!
//! # Layout
//! - `settings.rs`: the settings and `[[routes]]`, compiled at start.
//! - [`mapping`]: the pure core: a body to events, or an error naming the path.
//! - `auth.rs`: a route's credential, in constant time.
//! - `hooks.rs`: `POST /hooks/<name>`; `error.rs`: why a POST was refused, as a status.
//!
//! Health (`/healthz`, `/readyz`), metrics (`/metrics`), logs and the graceful stop come
//! from the SDK's runtime (`rezef_adapter::service`).

pub mod auth;
mod error;
mod hooks;
pub mod mapping;
pub mod settings;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::post;
use rezef_adapter::Publisher;
use rezef_adapter::service::Runtime;
use tokio::net::TcpListener;

pub use error::HookError;
pub use settings::Settings;

/// What the handler shares.
#[derive(Debug, Clone)]
struct App {
    routes: Arc<HashMap<String, settings::Route>>,
    publisher: Arc<Publisher>,
    max_body_bytes: usize,
}

/// Serves the routes of `settings` on `listener` until `shutdown` resolves.
pub async fn run(
    settings: Settings,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), rezef_adapter::Error> {
    let routes = settings
        .compile()
        .map_err(|e| rezef_adapter::Error::Config(e.to_string()))?;
    let runtime = Runtime::start(&settings.rezef, &settings.spool).await?;
    let app = App {
        routes: Arc::new(routes),
        publisher: runtime.publisher(),
        max_body_bytes: settings.webhook.max_body_bytes,
    };
    let routes = Router::new()
        .route("/hooks/{name}", post(hooks::receive))
        .layer(DefaultBodyLimit::max(settings.webhook.max_body_bytes))
        .with_state(app);
    runtime.serve(listener, routes, shutdown).await
}
