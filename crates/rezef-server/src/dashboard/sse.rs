//! Server-sent events (`text/event-stream`), how the page is told what changed. Each event
//! is one message in its proto3 JSON form on one `data:` line, named by what it is
//! (`event: queues`); a stream that fails says so in a `problem` event (`source`, `code`,
//! `message`). A comment line after 15 quiet seconds keeps proxies from closing the stream.
//! The page reads them with `fetch`, not `EventSource`, which cannot send an API key.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use http::{HeaderValue, Response, header};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use rezef_proto::json::{JsonMessage, to_json};
use tokio::sync::watch;
use tonic::{Status, Streaming};

use super::HttpBody;
use crate::error::code_name;

/// How long a stream stays quiet before a keep-alive comment.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// One event: `name` with `data` (one line of JSON).
pub fn event(name: &str, data: &str) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

/// The event saying that `source` failed with `status`.
pub fn problem(source: &str, status: &Status) -> Bytes {
    let data = serde_json::json!({
        "source": source,
        "code": code_name(status.code()),
        "message": status.message(),
    });
    event("problem", &data.to_string())
}

/// `stream`'s messages as events named `name`, and a `problem` if it fails.
pub fn messages<M: JsonMessage + Send + 'static>(
    name: &'static str,
    stream: Streaming<M>,
) -> impl Stream<Item = Bytes> + Send {
    futures::stream::unfold(Some(stream), move |stream| async move {
        let mut stream = stream?;
        match stream.message().await {
            Ok(Some(message)) => Some((event(name, &to_json(&message)), Some(stream))),
            Ok(None) => None,
            Err(status) => Some((problem(name, &status), None)),
        }
    })
}

/// The response streaming `events`, with keep-alives, until they end or the server closes.
pub fn response(
    events: impl Stream<Item = Bytes> + Send + 'static,
    mut closing: watch::Receiver<bool>,
) -> Response<HttpBody> {
    let closed = async move {
        let _ = closing.wait_for(|closing| *closing).await;
    };
    let events = Box::pin(events.take_until(closed));
    let framed = futures::stream::unfold(events, |mut events| async move {
        let next = match tokio::time::timeout(KEEP_ALIVE, events.next()).await {
            Ok(Some(event)) => event,
            Ok(None) => return None,
            Err(_quiet) => Bytes::from_static(b": keep-alive\n\n"),
        };
        Some((Ok::<_, Infallible>(Frame::data(next)), events))
    });
    let mut response = Response::new(StreamBody::new(framed).boxed_unsync());
    (response.headers_mut()).insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    (response.headers_mut()).insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
