//! `POST /hooks/<name>`: the route found (404), the body read within the limit (413), its
//! credential checked (401), mapped (400 naming the path), the events accepted by the
//! publisher's spool together (503 when it cannot take them), then 202 with their ids; 200
//! with none when no event's `when` holds for the body.

use std::time::SystemTime;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tracing::{debug, instrument};

use crate::App;
use crate::error::HookError;

#[instrument(skip_all, fields(route = %name))]
pub async fn receive(
    State(app): State<App>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, HookError> {
    let route = (app.routes.get(&name)).ok_or_else(|| HookError::UnknownRoute(name.clone()))?;
    let body = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => HookError::TooLarge {
            limit: app.max_body_bytes,
        },
        _ => HookError::Unreadable,
    })?;
    route.auth.check(&headers, &body)?;
    let events = route.mapping.map(&body, SystemTime::now())?;
    if events.is_empty() {
        debug!("no event wants the body");
        return Ok(accepted(StatusCode::OK, &[]));
    }
    let ids = app.publisher.publish_all(events).await?;
    debug!(events = ids.len(), "accepted");
    Ok(accepted(StatusCode::ACCEPTED, &ids))
}

/// `{"accepted": [ids]}`.
fn accepted(status: StatusCode, ids: &[String]) -> Response {
    let body = json!({ "accepted": ids });
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        format!("{body}\n"),
    )
        .into_response()
}
