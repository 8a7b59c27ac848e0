//! The page, embedded in the binary (no separate install, nothing fetched from elsewhere:
//! it works offline): plain HTML, CSS and a JavaScript module, no build step. Every answer
//! carries a strict Content-Security-Policy (scripts and styles from this origin only, no
//! inline script, no framing) and `nosniff`.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, header};

/// One embedded file.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    pub body: &'static [u8],
    pub content_type: &'static str,
}

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";

/// The file at `path`, if it is one of the page's.
pub fn find(path: &str) -> Option<Asset> {
    let (body, content_type): (&'static [u8], _) = match path {
        "/" | "/index.html" => (
            include_bytes!("assets/index.html"),
            "text/html; charset=utf-8",
        ),
        "/app.js" => (include_bytes!("assets/app.js"), JAVASCRIPT),
        "/api.js" => (include_bytes!("assets/api.js"), JAVASCRIPT),
        "/chart.js" => (include_bytes!("assets/chart.js"), JAVASCRIPT),
        "/format.js" => (include_bytes!("assets/format.js"), JAVASCRIPT),
        "/panels.js" => (include_bytes!("assets/panels.js"), JAVASCRIPT),
        "/style.css" => (
            include_bytes!("assets/style.css"),
            "text/css; charset=utf-8",
        ),
        "/favicon.svg" => (include_bytes!("assets/favicon.svg"), "image/svg+xml"),
        _ => return None,
    };
    Some(Asset { body, content_type })
}

impl Asset {
    pub fn bytes(self) -> Bytes {
        Bytes::from_static(self.body)
    }
}

/// What every answer of the dashboard's says about itself.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// Adds the security headers every answer carries.
pub fn secure(headers: &mut HeaderMap) {
    let set = [
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
    ];
    for (name, value) in set {
        headers.insert(name, value);
    }
}
