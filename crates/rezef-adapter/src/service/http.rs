//! The adapter's HTTP side: its own routes beside `GET /healthz` (the process is alive),
//! `GET /readyz` (the spool is open and the publisher running: 200, else 503; with the
//! events and bytes spooled and whether the server was reachable at the last `Publish`) and
//! `GET /metrics` (`metrics.rs`). Every request of a route runs in a span naming the route
//! and is counted by route and status.

use std::sync::Arc;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tracing::{Instrument, debug, info_span};

use super::metrics::Metrics;
use crate::Publisher;

#[derive(Debug, Clone)]
struct Health {
    publisher: Arc<Publisher>,
    metrics: Arc<Metrics>,
}

/// `routes` with health and metrics, every request counted.
pub(super) fn router(routes: Router, publisher: Arc<Publisher>, metrics: Arc<Metrics>) -> Router {
    let health = Health {
        publisher,
        metrics: metrics.clone(),
    };
    let own = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(scrape))
        .with_state(health);
    routes
        .merge(own)
        .route_layer(middleware::from_fn_with_state(metrics, count))
}

async fn count(
    State(metrics): State<Arc<Metrics>>,
    route: Option<MatchedPath>,
    request: Request,
    next: Next,
) -> Response {
    let route = route.map_or_else(|| "unmatched".to_owned(), |r| r.as_str().to_owned());
    let span = info_span!("http", %route, method = %request.method());
    let response = next.run(request).instrument(span).await;
    let status = response.status().as_u16();
    debug!(%route, status, "answered");
    metrics.request(&route, status);
    response
}

async fn readyz(State(health): State<Health>) -> Response {
    let stats = health.publisher.stats();
    let reachable = match stats.server_reachable {
        Some(true) => "true",
        Some(false) => "false",
        None => "null",
    };
    let body = format!(
        "{{\"ready\":{},\"spooled_events\":{},\"spool_bytes\":{},\"server_reachable\":{reachable}}}\n",
        !stats.stopped, stats.unsent, stats.spool_bytes
    );
    let status = if stats.stopped {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn scrape(State(health): State<Health>) -> Response {
    match health.metrics.render() {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
