//! The widget and a demo page, embedded in the binary (no build step, works offline):
//! `GET /` (a page with the widget, as a site would embed it), `GET /widget.js` and
//! `GET /widget.css`.

use axum::http::header;
use axum::response::IntoResponse;

const INDEX: &str = include_str!("assets/index.html");
const WIDGET_JS: &str = include_str!("assets/widget.js");
const WIDGET_CSS: &str = include_str!("assets/widget.css");

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    let headers = [
        (header::CONTENT_TYPE, content_type),
        (header::CACHE_CONTROL, "no-cache"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ];
    (headers, body)
}

pub async fn index() -> impl IntoResponse {
    asset("text/html; charset=utf-8", INDEX)
}

pub async fn widget_js() -> impl IntoResponse {
    asset("text/javascript; charset=utf-8", WIDGET_JS)
}

pub async fn widget_css() -> impl IntoResponse {
    asset("text/css; charset=utf-8", WIDGET_CSS)
}
