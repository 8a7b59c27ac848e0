//! Why a POST was not taken, and the HTTP status and JSON body the sender gets for it:
//! mapped here, once.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::auth::Refused;
use crate::mapping::MapError;

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("no route named {0}")]
    UnknownRoute(String),
    /// Over `[webhook] max_body_bytes`.
    #[error("the body is over {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the body could not be read")]
    Unreadable,
    /// No or a wrong credential: nothing is published.
    #[error("{0}")]
    Unauthorized(#[from] Refused),
    /// The body does not map: the path is named.
    #[error("{0}")]
    Unmapped(#[from] MapError),
    /// The spool did not take the events (full, or stopping): the sender may try again.
    #[error("the events were not accepted: {0}")]
    Publish(#[from] rezef_adapter::Error),
}

impl HookError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::UnknownRoute(_) => StatusCode::NOT_FOUND,
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unreadable | Self::Unmapped(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Publish(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl IntoResponse for HookError {
    fn into_response(self) -> Response {
        if let Self::Publish(error) = &self {
            tracing::error!(%error, "events not accepted");
        }
        let mut body = json!({ "error": self.to_string() });
        if let Self::Unmapped(error) = &self
            && let Some(path) = error.path()
        {
            body["path"] = json!(path);
        }
        (
            self.status(),
            [(header::CONTENT_TYPE, "application/json")],
            format!("{body}\n"),
        )
            .into_response()
    }
}
