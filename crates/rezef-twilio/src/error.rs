//! Why a webhook was not taken, and the HTTP status Twilio gets for it: mapped here, once.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// No `X-Twilio-Signature`, a wrong one, or an `AccountSid` no `[[accounts]]` names:
    /// nothing is published.
    #[error("the request is not signed by a configured Twilio account")]
    Forbidden,
    #[error("only form-encoded webhooks are taken (application/x-www-form-urlencoded)")]
    Unsupported,
    #[error("the body is not a form")]
    BadForm,
    #[error("the parameter {0} is missing")]
    Missing(&'static str),
    /// The spool did not take the events (full, or failed): Twilio may send it again.
    #[error("the events were not accepted: {0}")]
    Publish(#[from] rezef_adapter::Error),
}

impl WebhookError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::Unsupported => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::BadForm | Self::Missing(_) => StatusCode::BAD_REQUEST,
            Self::Publish(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl IntoResponse for WebhookError {
    fn into_response(self) -> Response {
        if let Self::Publish(error) = &self {
            tracing::error!(%error, "events not accepted");
        }
        (self.status(), format!("{self}\n")).into_response()
    }
}
