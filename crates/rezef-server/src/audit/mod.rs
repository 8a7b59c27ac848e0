//! `rezef.v1.Audit`: the original events, replayed from the log in order, for auditors
//! (docs/audit.md); `filter.rs`: which events a replay keeps by conversation and channel.

mod filter;

use std::pin::Pin;

use futures::Stream;
use rezef_events::partition::Partitioner;
use rezef_events::policy::ContinuityPolicy;
use rezef_events::{Channel, ConversationId, Event, TenantId, Timestamp, mask};
use rezef_log::{ChainCheck, Log, Record, Verdict, Verified};
use rezef_proto::v1::{
    ChainVerified, ReplayHistoryRequest, ReplayedEvent, audit_client::AuditClient,
    audit_server::Audit,
};
use rezef_record::sealed::Sealing;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use tracing::{Instrument, info_span, warn};

use crate::backbone::Backbone;
use crate::cluster::{Place, Topology, forward_stream};
use crate::convert::{Check, event_to_proto};
use crate::reveal::Revealed;
use crate::shutdown;
use crate::{Error, Result};
use filter::{Filter, OfConversation};

/// Records read from the log at a time when scanning.
const SCAN_BATCH: usize = 1024;

/// The response headers naming the offsets a replay runs over: the first, and the first
/// not included (for a client's progress bar).
pub const REPLAY_FROM_HEADER: &str = "x-rezef-replay-from";
pub const REPLAY_TO_HEADER: &str = "x-rezef-replay-to";

/// The service: places each replay on the node serving the partition it reads.
#[derive(Debug, Clone)]
pub struct AuditService {
    topology: Topology,
}

/// Replays answered here, from one partition.
#[derive(Debug, Clone)]
struct Local {
    backbone: Backbone,
    partition: u32,
    partitioner: Partitioner,
}

/// A validated replay request.
#[derive(Debug)]
struct Replay {
    tenant: TenantId,
    /// Set: only this customer's offsets, ascending.
    offsets: Option<Vec<u64>>,
    from: u64,
    to: u64,
    to_time_ms: Option<i64>,
    from_time_ms: Option<i64>,
    limit: usize,
    partition: u32,
    filter: Filter,
    /// `None`: the caller may see sensitive values; else the tenant's policy masks them.
    masking: Option<ContinuityPolicy>,
    /// Opens sealed values: a forgotten customer's read erased.
    sealing: Sealing,
}

impl AuditService {
    pub fn new(topology: Topology) -> Self {
        Self { topology }
    }

    /// The partition a replay reads: the customer's, or the one named (0 by default).
    fn partition(&self, request: &ReplayHistoryRequest) -> Result<u32> {
        let mut check = self.topology.check();
        let tenant = check.tenant("tenant_id", request.tenant_id.clone());
        let customer = (request.customer.clone()).and_then(|c| check.customer("customer", c));
        let partitioner = self.topology.partitioner();
        let named = request.partition;
        check_partition(&mut check, named, partitioner);
        let tenant = check.finish(|| tenant)?;
        let Some(customer) = customer else {
            return Ok(named.unwrap_or(0));
        };
        let partition = partitioner.reference(&tenant, &customer);
        if named.is_some_and(|p| p != partition) {
            return Err(Error::invalid(
                "partition",
                format!("the customer's events are on partition {partition}"),
            ));
        }
        Ok(partition)
    }
}

/// A partition named in a request must exist.
fn check_partition(check: &mut Check, partition: Option<u32>, partitioner: Partitioner) {
    if partition.is_some_and(|p| p >= partitioner.partitions()) {
        check.fail(
            "partition",
            format!("must be below {}", partitioner.partitions()),
        );
    }
}

impl Local {
    /// The replay asked for, and the check of the log's hash chain up to at least its end,
    /// when asked.
    async fn plan(
        &self,
        request: Request<ReplayHistoryRequest>,
    ) -> Result<(Replay, Option<ChainCheck>)> {
        let wait = self.backbone.max_wait(&request);
        let reveal = (self.backbone).may_reveal(&request, request.get_ref().reveal_sensitive)?;
        let request = request.into_inner();
        let log = &self.backbone.log;
        let (start, end) = (log.start_offset(), log.end_offset());
        let mut check = self.backbone.check();
        let tenant = check.tenant("tenant_id", request.tenant_id);
        let from_time = check.time("from_time", request.from_time);
        let to_time = check.time("to_time", request.to_time);
        let asked_customer = request.customer.is_some();
        let customer = request.customer.and_then(|c| check.customer("customer", c));
        check_partition(&mut check, request.partition, self.partitioner);
        let channel = check.optional::<Channel>("channel", request.channel);
        let conversation = check.id(
            "conversation_id",
            request.conversation_id,
            false,
            ConversationId::new,
        );
        if conversation.is_some() && !asked_customer {
            check.fail("conversation_id", "needs customer");
        }
        let from = request.from_offset.unwrap_or(start);
        let to = request.to_offset.unwrap_or(end);
        // Past the end is out of range (as offsets are), not a malformed request.
        if from > to && from <= end {
            check.fail("from_offset", "must not be greater than to_offset");
        }
        let tenant = check.finish(|| tenant)?;
        if from < start || from > end || to > end {
            return Err(Error::OutOfRange(format!(
                "offsets {from}..{to} are outside the log's {start}..{end}"
            )));
        }
        // Asked before anything is recorded, so that a log without a chain refuses at once;
        // its end now is at least `to`.
        let chain = request
            .verify_chain
            .then(|| log.verify_chain())
            .transpose()?;
        let from = match from_time {
            Some(time) => from.max(log.offset_for_time(time.unix_millis()).await?),
            None => from,
        };
        let mut replayed = None;
        let mut filter = Filter {
            conversation: None,
            channel,
        };
        let offsets = match customer {
            Some(customer) => {
                // The customer index is part of the projection: let it catch up to `to`.
                if to > 0 {
                    self.backbone.wait_projected(to - 1, wait).await?;
                }
                // A merged customer's history is its own and every member's.
                let journey = self.backbone.journey(&tenant, &customer)?;
                let offsets = self.backbone.history_offsets(&tenant, &journey, from, to)?;
                if let Some(id) = &conversation {
                    let found = journey.conversation(id).map(OfConversation::of);
                    let found = found.ok_or_else(|| {
                        Error::NotFound(format!(
                            "customer {} has no conversation {id} (a compacted one cannot be told \
                             apart)",
                            journey.customer_id
                        ))
                    })?;
                    filter.conversation = Some(found);
                }
                replayed = Some(journey.customer_id);
                Some(offsets)
            }
            None => None,
        };
        if let Some(revealer) = &reveal {
            let revealed = Revealed {
                tenant: &tenant,
                customer: replayed.as_ref(),
                method: "/rezef.v1.Audit/ReplayHistory",
                offsets: Some(from..to),
            };
            self.backbone.record_reveal(revealer, revealed).await?;
        }
        let masking = reveal
            .is_none()
            .then(|| self.backbone.policy(&tenant).clone());
        let replay = Replay {
            tenant,
            offsets,
            from,
            to,
            from_time_ms: from_time.map(Timestamp::unix_millis),
            to_time_ms: to_time.map(Timestamp::unix_millis),
            limit: usize::try_from(request.limit)
                .ok()
                .filter(|l| *l > 0)
                .unwrap_or(usize::MAX),
            partition: self.partition,
            filter,
            masking,
            sealing: self.backbone.sealing.clone(),
        };
        Ok((replay, chain))
    }
}

impl Replay {
    /// Whether a record is past the time window (records' times never decrease).
    fn past_window(&self, record: &Record) -> bool {
        self.to_time_ms.is_some_and(|to| record.timestamp_ms >= to)
    }

    /// The event a record holds, if it belongs in the answer.
    fn select(&self, record: &Record) -> Result<Option<Event>> {
        if self
            .from_time_ms
            .is_some_and(|from| record.timestamp_ms < from)
        {
            return Ok(None);
        }
        let event = self
            .sealing
            .decode(&record.payload)
            .map_err(|source| Error::Undecodable {
                offset: record.offset,
                source,
            })?;
        if event.tenant_id != self.tenant || !self.filter.admits(&event) {
            return Ok(None);
        }
        // Served as every other read serves it, unless the caller may reveal.
        let masked = (self.masking.as_ref()).and_then(|policy| mask::event(&event, policy));
        Ok(Some(masked.unwrap_or(event)))
    }
}

type ReplayStream = Pin<Box<dyn Stream<Item = Result<ReplayedEvent, Status>> + Send>>;

#[tonic::async_trait]
impl Audit for AuditService {
    type ReplayHistoryStream = ReplayStream;

    async fn replay_history(
        &self,
        request: Request<ReplayHistoryRequest>,
    ) -> Result<Response<ReplayStream>, Status> {
        let span = info_span!("replay_history", tenant = %request.get_ref().tenant_id);
        let (partition, place) = match self.partition(request.get_ref()) {
            Ok(partition) => (
                partition,
                self.topology.place(partition, request.metadata())?,
            ),
            Err(invalid) => (0, self.topology.place_invalid(request.metadata(), invalid)?),
        };
        let backbone = match place {
            Place::Here(backbone) => backbone,
            Place::There(peer) => {
                return forward_stream!(peer, AuditClient, replay_history, request);
            }
        };
        let local = Local {
            backbone: backbone.clone(),
            partition,
            partitioner: self.topology.partitioner(),
        };
        let (replay, chain) = local.plan(request).instrument(span.clone()).await?;
        let range = (replay.from, replay.to);
        let (sender, receiver) = mpsc::channel(64);
        tokio::spawn(
            async move {
                tokio::select! {
                    () = replay.send_all(backbone.log.as_ref(), &sender, chain) => {}
                    () = backbone.closed() => shutdown::end(&sender).await,
                }
            }
            .instrument(span),
        );
        let mut response = Response::new(Box::pin(ReceiverStream::new(receiver)) as ReplayStream);
        let headers = response.metadata_mut();
        headers.insert(REPLAY_FROM_HEADER, range.0.into());
        headers.insert(REPLAY_TO_HEADER, range.1.into());
        Ok(response)
    }
}

type Sender = mpsc::Sender<Result<ReplayedEvent, Status>>;

impl Replay {
    /// Streams the selected events and then, if the chain is being checked, its verdict
    /// (which may take longer than the events: it reads the whole log).
    async fn send_all(&self, log: &dyn Log, sender: &Sender, chain: Option<ChainCheck>) {
        let verdict = async {
            match chain {
                Some(check) => Some(check.await),
                None => None,
            }
        };
        let (finished, verdict) = tokio::join!(self.send_events(log, sender), verdict);
        let Some(verdict) = verdict.filter(|_| finished) else {
            return;
        };
        let item = match verdict {
            Ok(Verdict::Intact(verified)) => Ok(ReplayedEvent {
                offset: verified.end_offset,
                partition: self.partition,
                event: None,
                verified: Some(chain_verified(&verified)),
            }),
            Ok(Verdict::Broken(broken)) => {
                warn!(offset = broken.offset, kind = %broken.kind, "the log's hash chain breaks");
                Err(Error::ChainBroken(Box::new(broken)).into())
            }
            Err(error) => Err(Error::from(error).into()),
        };
        let _ = sender.send(item).await;
    }

    /// Streams the selected events; whether it went through them all (not stopped by the
    /// client leaving or an error).
    async fn send_events(&self, log: &dyn Log, sender: &Sender) -> bool {
        let mut sent = 0;
        let mut next = self.from;
        let mut wanted = self.offsets.as_deref().unwrap_or_default().iter();
        while next < self.to && sent < self.limit {
            // With a customer, jump to their next offset; otherwise scan.
            let count = match &self.offsets {
                Some(_) => match wanted.next() {
                    Some(offset) => {
                        next = *offset;
                        1
                    }
                    None => return true,
                },
                None => SCAN_BATCH,
            };
            let records = match log.read(next, count).await {
                Ok(records) if !records.is_empty() => records,
                Ok(_) => return true,
                Err(error) => {
                    let _ = sender.send(Err(Error::from(error).into())).await;
                    return false;
                }
            };
            for record in records {
                next = record.offset + 1;
                if record.offset >= self.to || self.past_window(&record) {
                    return true;
                }
                let item = match self.select(&record) {
                    Ok(Some(event)) => Ok(ReplayedEvent {
                        offset: record.offset,
                        partition: self.partition,
                        event: Some(event_to_proto(
                            &event,
                            Some(Timestamp::from_unix_millis(record.timestamp_ms)),
                        )),
                        verified: None,
                    }),
                    Ok(None) => continue,
                    Err(error) => {
                        warn!(%error, "replay stopped at an unreadable record");
                        Err(error.into())
                    }
                };
                let failed = item.is_err();
                if sender.send(item).await.is_err() || failed {
                    return false;
                }
                sent += 1;
                if sent >= self.limit {
                    return true;
                }
            }
        }
        true
    }
}

/// What a verification proved, as the last message of a replay tells it.
fn chain_verified(verified: &Verified) -> ChainVerified {
    ChainVerified {
        start_offset: verified.start_offset,
        end_offset: verified.end_offset,
        head: verified.head.map(|head| head.to_hex()).unwrap_or_default(),
        unchained_frames: verified.unchained_frames,
    }
}
