//! `rezef.v1.Ingest`: validates batches of events and appends them to the log. An
//! acknowledgement is given only once the log says the batch is durable.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use prost::Message;
use rezef_events::fold::continuation_token;
use rezef_events::{Channel, CustomerRef, Event, TenantId, Timestamp};
use rezef_proto::v1::{
    self, PublishRequest, PublishResponse, PublishStreamResponse, ingest_client::IngestClient,
    ingest_server::Ingest, publish_stream_response::Result as StreamResult,
};
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status, Streaming};
use tracing::{Instrument, info_span};

use crate::cluster::{Place, Topology, forward};
use crate::config::Limits;
use crate::convert::{event_under, timestamp};
use crate::metrics::Ingest as IngestMetrics;
use crate::shutdown;
use crate::token_tries::{Trier, caller_of};
use crate::{Error, Result};

#[derive(Debug, Clone)]
pub struct IngestService {
    topology: Topology,
    limits: Limits,
    /// Turns true when the server shuts down; open publish streams end then.
    closing: tokio::sync::watch::Receiver<bool>,
    /// Batches by result, events appended and how long appends take.
    metrics: IngestMetrics,
}

/// The events of a batch bound for one partition.
#[derive(Debug, Default)]
struct Part {
    /// Their places in the batch.
    indexes: Vec<usize>,
    /// Sealed into records where the part is appended.
    events: Vec<Event>,
    /// As received, for the owner when the part is forwarded.
    originals: Vec<v1::Event>,
    /// The continuation tokens its interactions start with: tries, counted where the
    /// part is appended (`crate::token_tries`).
    tokens: Vec<TokenTry>,
}

/// A continuation token an event gives, from the identity it shows on its channel.
#[derive(Debug)]
struct TokenTry {
    token: String,
    shown: CustomerRef,
    channel: Option<Channel>,
}

impl IngestService {
    pub fn new(
        topology: Topology,
        limits: Limits,
        closing: tokio::sync::watch::Receiver<bool>,
        metrics: IngestMetrics,
    ) -> Self {
        Self {
            topology,
            limits,
            closing,
            metrics,
        }
    }

    /// Publishes a batch ([`Self::validate_and_append`]), counting it by its result.
    async fn publish_batch(
        &self,
        metadata: &MetadataMap,
        caller: &str,
        request: PublishRequest,
    ) -> Result<PublishResponse> {
        let published = self.validate_and_append(metadata, caller, request).await;
        let code = match &published {
            Ok(_) => tonic::Code::Ok,
            Err(error) => error.code(),
        };
        self.metrics.batch(code);
        published
    }

    /// Validates the whole batch, then appends it: atomically on one partition, else each
    /// partition's part by the node serving it.
    async fn validate_and_append(
        &self,
        metadata: &MetadataMap,
        caller: &str,
        request: PublishRequest,
    ) -> Result<PublishResponse> {
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
        let (now, skew) = (Timestamp::now(), self.limits.clock_skew());
        let latest = now.plus(skew);
        let partitioner = self.topology.partitioner();
        let partitioned = partitioner.partitions() > 1;
        let mut violations = Vec::new();
        let mut parts: BTreeMap<u32, Part> = BTreeMap::new();
        let policies = self.topology.policies();
        for (i, event) in request.events.into_iter().enumerate() {
            let original = partitioned.then(|| event.clone());
            let at = format!("events[{i}]");
            if event.tenant_id != tenant {
                violations.push(rezef_events::Violation::new(
                    format!("{at}.tenant_id"),
                    "must be the same for every event of a batch",
                ));
            }
            // As sent (its record holds the same fields, plus the format byte).
            let size = 1 + event.encoded_len();
            match event_under(policies.clone(), event) {
                Ok(event) if event.occurred_at > latest => {
                    violations.push(ahead_of_the_clock(&at, event.occurred_at, now, skew));
                }
                Ok(event) => {
                    if size > self.limits.max_event_bytes {
                        return Err(Error::TooLarge {
                            what: "an event",
                            size,
                            limit: self.limits.max_event_bytes,
                        });
                    }
                    let part = parts.entry(partitioner.event(&event)).or_default();
                    if let (Some(token), Some(shown)) =
                        (continuation_token(&event), &event.customer)
                    {
                        part.tokens.push(TokenTry {
                            token: token.to_owned(),
                            shown: shown.clone(),
                            channel: event.channel,
                        });
                    }
                    part.indexes.push(i);
                    part.events.push(event);
                    part.originals.extend(original);
                }
                Err(errors) => violations.extend(errors.into_iter().map(|v| v.under(&at))),
            }
        }
        if !violations.is_empty() {
            return Err(Error::InvalidArgument(violations));
        }
        let tenant = TenantId::new(tenant)
            .map_err(|e| Error::invalid("events[0].tenant_id", e.to_string()))?;
        let appended =
            futures::future::try_join_all(parts.into_iter().map(|(partition, part)| {
                self.append(metadata, (caller, &tenant), partition, part)
            }))
            .await?;
        let mut positions = vec![v1::EventPosition::default(); count];
        for (indexes, response) in &appended {
            for (&i, position) in indexes.iter().zip(&response.positions) {
                positions[i] = *position;
            }
        }
        let first = appended.first().map(|(_, r)| r);
        Ok(PublishResponse {
            first_offset: positions.first().map_or(0, |p| p.offset),
            count: u32::try_from(count).unwrap_or(u32::MAX),
            recorded_at: first.and_then(|r| r.recorded_at),
            positions,
        })
    }

    /// Appends one partition's part here, or has its owner append it.
    async fn append(
        &self,
        metadata: &MetadataMap,
        (caller, tenant): (&str, &TenantId),
        partition: u32,
        part: Part,
    ) -> Result<(Vec<usize>, PublishResponse)> {
        let response = match self.topology.place(partition, metadata)? {
            Place::Here(backbone) => {
                // A token on an interaction's start is a try like one given to
                // ResumeConversation: refused while its caller is locked out.
                let now = Timestamp::now();
                for tried in &part.tokens {
                    let trier = Trier::new(caller, tenant, &tried.shown);
                    backbone.tried_token(&trier, tenant, &tried.token, tried.channel, now)?;
                }
                let started = std::time::Instant::now();
                let records = backbone.seal(part.events).await?;
                let appended = backbone.log.append(records).await?;
                (self.metrics).appended(u64::from(appended.count), started.elapsed());
                let positions = (appended.first_offset..appended.end_offset())
                    .map(|offset| v1::EventPosition { partition, offset })
                    .collect();
                PublishResponse {
                    first_offset: appended.first_offset,
                    count: appended.count,
                    recorded_at: Some(timestamp(Timestamp::from_unix_millis(
                        appended.timestamp_ms,
                    ))),
                    positions,
                }
            }
            Place::There(peer) => {
                let request = Request::from_parts(
                    metadata.clone(),
                    tonic::Extensions::default(),
                    PublishRequest {
                        events: part.originals,
                        sequence: 0,
                    },
                );
                forward!(peer, IngestClient, publish, request)
                    .map_err(Error::Forwarded)?
                    .into_inner()
            }
        };
        if response.positions.len() != part.indexes.len() {
            return Err(Error::Unavailable(format!(
                "partition {partition} acknowledged {} events of {}",
                response.positions.len(),
                part.indexes.len()
            )));
        }
        Ok((part.indexes, response))
    }
}

type PublishStream = Pin<Box<dyn Stream<Item = Result<PublishStreamResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Ingest for IngestService {
    async fn publish(
        &self,
        request: Request<PublishRequest>,
    ) -> Result<Response<PublishResponse>, Status> {
        let caller = caller_of(&request);
        let (metadata, _, request) = request.into_parts();
        let span = info_span!(
            "publish",
            events = request.events.len(),
            tenant = tracing::field::Empty
        );
        if let Some(first) = request.events.first() {
            span.record("tenant", first.tenant_id.as_str());
        }
        let response = self
            .publish_batch(&metadata, &caller, request)
            .instrument(span)
            .await?;
        Ok(Response::new(response))
    }

    type PublishStreamStream = PublishStream;

    async fn publish_stream(
        &self,
        request: Request<Streaming<PublishRequest>>,
    ) -> Result<Response<PublishStream>, Status> {
        let service = self.clone();
        let mut closing = self.closing.clone();
        let caller: Arc<str> = caller_of(&request).into();
        let (metadata, _, requests) = request.into_parts();
        let metadata = Arc::new(metadata);
        // Between batches, a shutdown ends the stream (the batch in flight completes).
        let requests = requests.take_until(async move {
            let _ = closing.wait_for(|closing| *closing).await;
        });
        // One batch at a time, in the order sent, so an adapter's events keep their order
        // in the log; other connections' batches still share fsyncs with these.
        let responses = requests.then(move |request| {
            let service = service.clone();
            let metadata = Arc::clone(&metadata);
            let caller = Arc::clone(&caller);
            async move {
                let request = request?;
                let sequence = request.sequence;
                let span = info_span!("publish_stream", sequence, events = request.events.len());
                let published = service.publish_batch(&metadata, &caller, request);
                let result = match published.instrument(span).await {
                    Ok(ack) => StreamResult::Ack(ack),
                    Err(error) => StreamResult::Rejected(rejection(error)),
                };
                Ok(PublishStreamResponse {
                    sequence,
                    result: Some(result),
                })
            }
        });
        // Ended by the shutdown, not by the client: say so, so it resends what is unacked.
        let ended = self.closing.clone();
        let shut_down = futures::stream::once(async move { *ended.borrow() })
            .filter_map(|closing| async move { closing.then(|| Err(shutdown::status())) });
        Ok(Response::new(Box::pin(responses.chain(shut_down))))
    }
}

/// An event dated further ahead of the server's clock than the skew allowed: it would
/// otherwise spare re-verification or close conversations early (the fold also clamps
/// records to their recording time, docs/continuity.md).
fn ahead_of_the_clock(
    at: &str,
    occurred_at: Timestamp,
    now: Timestamp,
    skew: std::time::Duration,
) -> rezef_events::Violation {
    let ahead = occurred_at.since(now);
    rezef_events::Violation::new(
        format!("{at}.occurred_at"),
        format!(
            "is {}s ahead of the server's clock; at most {}s is allowed (limits.max_clock_skew_ms)",
            ahead.as_secs(),
            skew.as_secs()
        ),
    )
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
