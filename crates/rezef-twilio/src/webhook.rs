//! A webhook taken only once its signature holds: the body parsed as the form Twilio sent
//! (every pair, in order), the account found by its `AccountSid`, and `X-Twilio-Signature`
//! checked with that account's auth token over the public URL (`signature.rs`).

use axum::http::{HeaderMap, Uri, header};

use crate::error::WebhookError;
use crate::settings::{Account, Settings};
use crate::signature;

/// A verified webhook's parameters and account.
#[derive(Debug)]
pub struct Webhook {
    pub account: Account,
    params: Vec<(String, String)>,
}

impl Webhook {
    /// Verifies the request of `uri` with `headers` and `body`.
    pub fn verify(
        settings: &Settings,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Self, WebhookError> {
        let content_type = (headers.get(header::CONTENT_TYPE))
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !content_type.starts_with("application/x-www-form-urlencoded") {
            return Err(WebhookError::Unsupported);
        }
        let params: Vec<(String, String)> =
            serde_urlencoded::from_bytes(body).map_err(|_| WebhookError::BadForm)?;
        let given = (headers.get("x-twilio-signature"))
            .and_then(|v| v.to_str().ok())
            .ok_or(WebhookError::Forbidden)?;
        let account = (params.iter())
            .find(|(name, _)| name == "AccountSid")
            .and_then(|(_, sid)| settings.account(sid))
            .ok_or(WebhookError::Forbidden)?;
        let url = public_url(&settings.twilio.public_url, uri);
        if !signature::verify(&account.auth_token, &url, &params, given) {
            return Err(WebhookError::Forbidden);
        }
        Ok(Self {
            account: account.clone(),
            params,
        })
    }

    /// The parameter's first value.
    pub fn get(&self, name: &str) -> Option<&str> {
        (self.params.iter())
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The parameter's first value, which must be there and not empty.
    pub fn require(&self, name: &'static str) -> Result<&str, WebhookError> {
        (self.get(name))
            .filter(|v| !v.is_empty())
            .ok_or(WebhookError::Missing(name))
    }
}

/// The URL Twilio called: the configured public base, then the request's path and query.
pub fn public_url(base: &str, uri: &Uri) -> String {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    format!("{}{path}", base.trim_end_matches('/'))
}
