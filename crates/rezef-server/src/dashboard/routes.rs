//! One HTTP request: the page's files (`GET`), or a read (`POST /api/…`, a request in its
//! proto3 JSON form) answered through the gateway. A refused call answers the HTTP status
//! of its gRPC code with the gRPC code and message as JSON, which the page shows.
//!
//! | path | request | answer |
//! |---|---|---|
//! | `/api/report` | `GetReportRequest` | `GetReportResponse` |
//! | `/api/history` | `ReplayHistoryRequest`, `limit` 1 to 1000 | `{"events": [ReplayedEvent…]}` |
//! | `/api/track` | `TrackCustomerRequest` | events `tracker` (`CustomerTracker`) |
//! | `/api/live` | `GetReportRequest` | events `report`, `spread`, `queues`, `agents` (`live`) |

use std::convert::Infallible;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use rezef_proto::json::{JsonMessage, from_json, to_json};
use tokio::sync::watch;
use tonic::Code;
use tracing::debug;

use super::gateway::{Gateway, Refusal};
use super::{HttpBody, assets, live, sse};
use crate::insights::Projections;

/// The reads' paths.
const READS: [&str; 4] = ["/api/report", "/api/history", "/api/track", "/api/live"];
/// The largest request body read.
const MAX_BODY_BYTES: usize = 64 * 1024;
/// The most events `/api/history` answers at once.
const MAX_HISTORY: u32 = 1000;

/// Answers `request`.
pub async fn answer(
    gateway: Gateway,
    projections: Projections,
    closing: watch::Receiver<bool>,
    request: Request<Incoming>,
) -> Result<Response<HttpBody>, Infallible> {
    let path = request.uri().path().to_owned();
    let mut response = match assets::find(&path) {
        Some(asset) => file(request.method(), asset),
        None => read(gateway, projections, closing, request)
            .await
            .unwrap_or_else(refused),
    };
    assets::secure(response.headers_mut());
    // Only paths the dashboard has: a client's made-up path could hold anything.
    let known = assets::find(&path).is_some() || READS.contains(&path.as_str());
    let route = if known { path.as_str() } else { "other" };
    debug!(route, status = response.status().as_u16(), "answered");
    Ok(response)
}

fn file(method: &Method, asset: assets::Asset) -> Response<HttpBody> {
    if method != Method::GET && method != Method::HEAD {
        return refused(Refusal::with_status(
            StatusCode::METHOD_NOT_ALLOWED,
            Code::Unimplemented,
            "the page's files are read with GET",
        ));
    }
    let mut response = Response::new(full(asset.bytes()));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    // The files change with the binary: always asked again.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// A read at `/api/…`.
async fn read(
    gateway: Gateway,
    projections: Projections,
    closing: watch::Receiver<bool>,
    request: Request<Incoming>,
) -> Result<Response<HttpBody>, Refusal> {
    let gateway = gateway.with_authorization(request.headers());
    match request.uri().path() {
        "/api/report" => {
            let answer = gateway.report(body(request).await?).await?;
            Ok(json(to_json(&answer)))
        }
        "/api/history" => {
            let asked: rezef_proto::v1::ReplayHistoryRequest = body(request).await?;
            if asked.limit == 0 || asked.limit > MAX_HISTORY {
                let message = format!("limit: from 1 to {MAX_HISTORY} events at a time");
                return Err(Refusal::new(Code::InvalidArgument, &message));
            }
            let events = gateway.history(asked).await?;
            let events: Vec<String> = events.iter().map(to_json).collect();
            Ok(json(format!("{{\"events\":[{}]}}", events.join(","))))
        }
        "/api/track" => {
            let updates = gateway.track(body(request).await?).await?;
            Ok(sse::response(sse::messages("tracker", updates), closing))
        }
        "/api/live" => {
            let asked = body(request).await?;
            live::live(gateway, projections, asked, closing).await
        }
        _ => Err(Refusal::new(Code::NotFound, "no such page")),
    }
}

/// The request's body: one message in its proto3 JSON form, by `POST`.
async fn body<M: JsonMessage>(request: Request<Incoming>) -> Result<M, Refusal> {
    if request.method() != Method::POST {
        return Err(Refusal::with_status(
            StatusCode::METHOD_NOT_ALLOWED,
            Code::Unimplemented,
            "reads are sent with POST",
        ));
    }
    let collected = Limited::new(request.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
        .map_err(|_| {
            Refusal::with_status(
                StatusCode::PAYLOAD_TOO_LARGE,
                Code::ResourceExhausted,
                "the request is over 64 KiB",
            )
        })?;
    let text = String::from_utf8(collected.to_bytes().to_vec())
        .map_err(|_| Refusal::new(Code::InvalidArgument, "the request is not UTF-8"))?;
    from_json(&text).map_err(|error| Refusal::new(Code::InvalidArgument, &error.to_string()))
}

fn json(text: String) -> Response<HttpBody> {
    let mut response = Response::new(full(Bytes::from(text)));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn refused(refusal: Refusal) -> Response<HttpBody> {
    let mut response = json(refusal.json);
    *response.status_mut() = refusal.status;
    response
}

fn full(bytes: Bytes) -> HttpBody {
    Full::new(bytes)
        .map_err(|never| match never {})
        .boxed_unsync()
}
