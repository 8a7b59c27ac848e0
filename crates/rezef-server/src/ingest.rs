//! `rezef.v1.Ingest`: validates batches of events and appends them to the log. An
//! acknowledgement is given only once the log says the batch is durable.

use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use prost::Message;
use rezef_events::{Timestamp, codec};
use rezef_log::Log;
use rezef_proto::v1::{
    self, PublishRequest, PublishResponse, PublishStreamResponse, ingest_server::Ingest,
    publish_stream_response::Result as StreamResult,
};
use tonic::{Request, Response, Status, Streaming};
use tracing::{Instrument, info_span};

use crate::config::Limits;
use crate::convert::{event_from_proto, timestamp};
use crate::{Error, Result};

#[derive(Debug, Clone)]
pub struct IngestService {
    log: Arc<dyn Log>,
    limits: Limits,
    /// Turns true when the server shuts down; open publish streams end then.
    closing: tokio::sync::watch::Receiver<bool>,
}

impl IngestService {
    pub fn new(
        log: Arc<dyn Log>,
        limits: Limits,
        closing: tokio::sync::watch::Receiver<bool>,
    ) -> Self {
        Self {
            log,
            limits,
            closing,
        }
    }

    /// Validates the whole batch, then appends it atomically.
    async fn publish_batch(&self, request: PublishRequest) -> Result<PublishResponse> {
        let size = request.encoded_len();
        if size > self.limits.max_message_bytes {
            return Err(Error::TooLarge {
                what: "the request",
                size,
                limit: self.limits.max_message_bytes,
            });
        }
        let count = request.events.len();
        if count == 0 {
            return Err(Error::invalid("events", "at least one event is required"));
        }
        if count > self.limits.max_batch_events {
            return Err(Error::TooLarge {
                what: "the batch's event count",
                size: count,
                limit: self.limits.max_batch_events,
            });
        }
        let tenant = request.events[0].tenant_id.clone();
        let mut violations = Vec::new();
        let mut payloads = Vec::with_capacity(count);
        for (i, event) in request.events.into_iter().enumerate() {
            let at = format!("events[{i}]");
            if event.tenant_id != tenant {
                violations.push(rezef_events::Violation::new(
                    format!("{at}.tenant_id"),
                    "must be the same for every event of a batch",
                ));
            }
            match event_from_proto(event) {
                Ok(event) => {
                    let encoded = codec::encode(&event);
                    if encoded.len() > self.limits.max_event_bytes {
                        return Err(Error::TooLarge {
                            what: "an event",
                            size: encoded.len(),
                            limit: self.limits.max_event_bytes,
                        });
                    }
                    payloads.push(Bytes::from(encoded));
                }
                Err(errors) => violations.extend(errors.into_iter().map(|v| v.under(&at))),
            }
        }
        if !violations.is_empty() {
            return Err(Error::InvalidArgument(violations));
        }
        let appended = self.log.append(payloads).await?;
        Ok(PublishResponse {
            first_offset: appended.first_offset,
            count: appended.count,
            recorded_at: Some(timestamp(Timestamp::from_unix_millis(
                appended.timestamp_ms,
            ))),
        })
    }
}

type PublishStream = Pin<Box<dyn Stream<Item = Result<PublishStreamResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Ingest for IngestService {
    async fn publish(
        &self,
        request: Request<PublishRequest>,
    ) -> Result<Response<PublishResponse>, Status> {
        let request = request.into_inner();
        let span = info_span!(
            "publish",
            events = request.events.len(),
            tenant = tracing::field::Empty
        );
        if let Some(first) = request.events.first() {
            span.record("tenant", first.tenant_id.as_str());
        }
        let response = self.publish_batch(request).instrument(span).await?;
        Ok(Response::new(response))
    }

    type PublishStreamStream = PublishStream;

    async fn publish_stream(
        &self,
        request: Request<Streaming<PublishRequest>>,
    ) -> Result<Response<PublishStream>, Status> {
        let service = self.clone();
        let mut closing = self.closing.clone();
        // Between batches, a shutdown ends the stream (the batch in flight completes).
        let requests = request.into_inner().take_until(async move {
            let _ = closing.wait_for(|closing| *closing).await;
        });
        // One batch at a time, in the order sent, so an adapter's events keep their order
        // in the log; other connections' batches still share fsyncs with these.
        let responses = requests.then(move |request| {
            let service = service.clone();
            async move {
                let request = request?;
                let sequence = request.sequence;
                let span = info_span!("publish_stream", sequence, events = request.events.len());
                let result = match service.publish_batch(request).instrument(span).await {
                    Ok(ack) => StreamResult::Ack(ack),
                    Err(error) => StreamResult::Rejected(rejection(error)),
                };
                Ok(PublishStreamResponse {
                    sequence,
                    result: Some(result),
                })
            }
        });
        Ok(Response::new(Box::pin(responses)))
    }
}

fn rejection(error: Error) -> v1::Rejection {
    let violations = match &error {
        Error::InvalidArgument(violations) => violations
            .iter()
            .map(|v| v1::FieldViolation {
                field: v.field.clone(),
                description: v.description.clone(),
            })
            .collect(),
        _ => Vec::new(),
    };
    v1::Rejection {
        code: error.code() as i32,
        message: error.to_string(),
        violations,
    }
}
