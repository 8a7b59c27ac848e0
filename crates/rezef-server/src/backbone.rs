//! What every service shares: the log, the journey store, the projection's position and
//! change feed, and the lookups built on them.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rezef_events::merge::{self, Hop};
use rezef_events::partition::Partitioner;
use rezef_events::policy::{ContinuityPolicy, Policies};
use rezef_events::{
    Channel, ChannelIdentity, CustomerId, CustomerRef, Event, Journey, TenantId, Timestamp,
};
use rezef_log::Log;
use rezef_proto::v1;
use rezef_record::sealed::Sealing;
use rezef_store::{JourneyStore, ProjectionWatch};

use crate::config::Limits;
use crate::convert::Check;
use crate::token_tries::{TokenTries, Trier};
use crate::{Error, Result};

#[derive(Debug, Clone)]
pub struct Backbone {
    pub log: Arc<dyn Log>,
    pub store: Arc<dyn JourneyStore>,
    pub projection: ProjectionWatch,
    pub limits: Limits,
    pub policies: Arc<Policies>,
    /// Keys allowed to see sensitive values.
    pub reveal_keys: Arc<Vec<String>>,
    /// Turns true when the server begins to shut down; open streams end then.
    pub closing: tokio::sync::watch::Receiver<bool>,
    /// The log's partitions, and the one this backbone serves (the embedded log has one).
    pub partition: (Partitioner, u32),
    /// The node's count of wrong continuation tokens.
    pub token_tries: Arc<TokenTries>,
    /// The keys this partition's records' personal values are sealed under.
    pub sealing: Sealing,
}

impl Backbone {
    /// Whether the server has begun to shut down.
    pub fn is_closing(&self) -> bool {
        *self.closing.borrow()
    }

    /// Resolves once the server is shutting down.
    pub async fn closed(&self) {
        crate::shutdown::begun(&self.closing).await;
    }

    /// A check of a request's fields under the tenants' rules (the region phone numbers are
    /// read in).
    pub fn check(&self) -> Check {
        Check::under(self.policies.clone())
    }

    /// Validates a `(tenant_id, customer)` pair from a request.
    pub fn parse_customer(
        mut check: Check,
        tenant: String,
        customer: Option<v1::CustomerRef>,
    ) -> Result<(TenantId, CustomerRef)> {
        let tenant = check.tenant("tenant_id", tenant);
        let customer = check.required_customer("customer", customer);
        (check.finish(|| Some((tenant?, customer?)))).map_err(Error::from)
    }

    pub fn policy(&self, tenant: &TenantId) -> &ContinuityPolicy {
        self.policies.for_tenant(tenant)
    }

    /// The journey of the customer a reference names, following merges, if known.
    pub fn find_journey(
        &self,
        tenant: &TenantId,
        customer: &CustomerRef,
    ) -> Result<Option<Journey>> {
        let id = match customer {
            CustomerRef::Id(id) => Some(id.clone()),
            CustomerRef::Identity(identity) => self.owner(tenant, identity)?,
        };
        match id {
            Some(id) => self.journey_of(tenant, &id),
            None => Ok(None),
        }
    }

    /// The customer `identity` is linked to, if any; no one for an identity the tenant's
    /// policy says identifies no one (a withheld caller id, a listed switchboard number), even
    /// one linked before the policy listed it.
    pub fn owner(
        &self,
        tenant: &TenantId,
        identity: &ChannelIdentity,
    ) -> Result<Option<CustomerId>> {
        if !self.policy(tenant).identifies(identity) {
            return Ok(None);
        }
        Ok(self.store.resolve(tenant, identity)?)
    }

    /// The journey holding `customer`: its own, or the one it was merged into;
    /// [`Error::Moved`] when that is kept on another partition.
    pub fn journey_of(&self, tenant: &TenantId, customer: &CustomerId) -> Result<Option<Journey>> {
        let found = merge::walk(customer, |id| match self.store.journey(tenant, &id)? {
            Some(Journey {
                merged_into: Some(next),
                ..
            }) => Ok(Hop::MergedInto(next)),
            Some(journey) => Ok(Hop::End(Some(journey))),
            None => {
                let (partitioner, here) = self.partition;
                let partition = partitioner.customer(tenant, &id);
                if partition == here {
                    return Ok(Hop::End(None));
                }
                Err(Error::Moved {
                    customer: id,
                    partition,
                })
            }
        })?;
        found.ok_or_else(|| {
            Error::Store(rezef_store::Error::MergeCycle {
                tenant: tenant.clone(),
                customer: customer.clone(),
            })
        })
    }

    /// The customer a continuation token leads to, if it is issued and a contact on
    /// `channel` may use it at `at`.
    pub fn token_holder(
        &self,
        tenant: &TenantId,
        token: &str,
        channel: Option<Channel>,
        at: Timestamp,
    ) -> Result<Option<CustomerId>> {
        let grant = self.store.token(tenant, token)?;
        Ok(grant
            .filter(|grant| grant.admits(channel, at))
            .map(|grant| grant.customer))
    }

    /// The customer a token a caller gave leads to (as [`Self::token_holder`]), counting a
    /// wrong one against the caller: refused while the caller, the identity it shows or
    /// the tenant is locked out for guessing (`crate::token_tries`).
    pub fn tried_token(
        &self,
        trier: &Trier,
        tenant: &TenantId,
        token: &str,
        channel: Option<Channel>,
        at: Timestamp,
    ) -> Result<Option<CustomerId>> {
        self.token_tries.admit(trier)?;
        let holder = self.token_holder(tenant, token, channel, at)?;
        let limits = &self.policy(tenant).token_attempts;
        self.token_tries.settle(trier, limits, holder.is_some());
        Ok(holder)
    }

    /// The journey of the customer a reference names, or `NOT_FOUND`.
    pub fn journey(&self, tenant: &TenantId, customer: &CustomerRef) -> Result<Journey> {
        self.find_journey(tenant, customer)?.ok_or_else(|| {
            let name = match customer {
                CustomerRef::Id(id) => format!("customer {id}"),
                CustomerRef::Identity(identity) => format!("identity {identity}"),
            };
            Error::NotFound(format!("{name} is not known in tenant {tenant}"))
        })
    }

    /// The offsets in `from..to` of a journey's history, ascending: its customer's and every
    /// merged member's (the projection's customer index).
    pub fn history_offsets(
        &self,
        tenant: &TenantId,
        journey: &Journey,
        from: u64,
        to: u64,
    ) -> Result<Vec<u64>> {
        let mut offsets = Vec::new();
        for member in std::iter::once(&journey.customer_id).chain(journey.merged_customers()) {
            offsets.extend(self.store.customer_offsets(tenant, member, from, to)?);
        }
        offsets.sort_unstable();
        offsets.dedup();
        Ok(offsets)
    }

    /// Appends events the server made itself (`OwnEvent`) as one batch, each validated as
    /// an adapter's event is first; the offset of the first.
    pub async fn append(&self, events: &[Event]) -> Result<u64> {
        for event in events {
            event.validate().map_err(Error::InvalidArgument)?;
        }
        let records = self.seal(events.to_vec()).await?;
        Ok(self.log.append(records).await?.first_offset)
    }

    /// The records of events about to be appended, their personal values sealed (every
    /// append to this partition's log goes through here). Making a key writes the key
    /// store: off the async threads.
    pub async fn seal(&self, events: Vec<Event>) -> Result<Vec<Bytes>> {
        let sealing = self.sealing.clone();
        let records = match sealing.keys() {
            Some(_) => tokio::task::spawn_blocking(move || sealing.encode_all(events))
                .await
                .map_err(|e| Error::Unavailable(format!("sealing stopped: {e}")))?,
            None => sealing.encode_all(events),
        };
        let records = records.map_err(Error::Sealing)?;
        Ok(records.into_iter().map(Bytes::from).collect())
    }

    /// Waits, at most `wait`, until everything logged so far is projected, so that checks
    /// made on the projection see every earlier write.
    pub async fn caught_up(&self, wait: Duration) -> Result<()> {
        self.caught_up_to(None, wait).await
    }

    /// Read-your-writes: waits, at most `wait`, until the projection has applied everything
    /// logged so far and, when given, the record at `min_offset` (`OUT_OF_RANGE` beyond the
    /// log's end, as [`Backbone::wait_projected`]).
    pub async fn caught_up_to(&self, min_offset: Option<u64>, wait: Duration) -> Result<()> {
        let last_logged = self.log.end_offset().checked_sub(1);
        match last_logged.max(min_offset) {
            Some(offset) => self.wait_projected(offset, wait).await,
            None => Ok(()),
        }
    }

    /// Waits until the record at `offset` is projected, at most `wait`.
    pub async fn wait_projected(&self, offset: u64, wait: Duration) -> Result<()> {
        if self.projection.position() > offset {
            return Ok(());
        }
        let end = self.log.end_offset();
        if offset >= end {
            return Err(Error::OutOfRange(format!(
                "offset {offset} is beyond the end of the log ({end})"
            )));
        }
        match tokio::time::timeout(wait, self.projection.wait_past(offset)).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(Error::Unavailable("the projector has stopped".into())),
            // Waiting longer would not help until its checkpoints are written again.
            Err(_) if !self.projection.health().borrow().is_running() => {
                Err(Error::Unavailable(format!(
                    "the projection did not reach offset {offset} within {} ms: the projector \
                     is stalled (the journey store cannot be written; a full disk?) and retries",
                    wait.as_millis()
                )))
            }
            Err(_) => Err(Error::DeadlineExceeded(format!(
                "the projection did not reach offset {offset} within {} ms (it is at {})",
                wait.as_millis(),
                self.projection.position()
            ))),
        }
    }

    /// How long a call may wait: its `grpc-timeout`, capped by the configured maximum.
    pub fn max_wait<T>(&self, request: &tonic::Request<T>) -> Duration {
        let cap = Duration::from_millis(self.limits.max_wait_ms);
        request
            .metadata()
            .get("grpc-timeout")
            .and_then(|value| value.to_str().ok())
            .and_then(parse_grpc_timeout)
            .map_or(cap, |timeout| timeout.min(cap))
    }
}

/// Parses the `grpc-timeout` header: up to 8 digits and a unit (H, M, S, m, u, n).
fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.saturating_mul(3600)),
        "M" => Duration::from_secs(amount.saturating_mul(60)),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// A backbone over `log` for tests: a store in memory, one partition, and the projector it
/// watches (which folds nothing until a test runs it; its position stays put).
#[cfg(test)]
impl Backbone {
    pub(crate) fn in_memory(log: Arc<dyn Log>) -> (Self, rezef_store::Projector) {
        use rezef_store::{CachedStore, MemoryStore, ProjectionConfig, Projector};
        let below = Arc::new(MemoryStore::new());
        let store = CachedStore::new(below, ProjectionConfig::default()).expect("store");
        let store = Arc::new(store);
        let projector = Projector::new(log.clone(), store.clone()).expect("projector");
        let backbone = Backbone {
            log,
            store,
            projection: projector.watch(),
            limits: Limits::default(),
            policies: Arc::default(),
            reveal_keys: Arc::default(),
            closing: tokio::sync::watch::channel(false).1,
            partition: (Partitioner::new(std::num::NonZeroU32::MIN), 0),
            token_tries: Arc::default(),
            sealing: Sealing::default(),
        };
        (backbone, projector)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::own_event::OwnEvent;
    use rezef_events::event::Presence;
    use rezef_events::{AgentId, Payload};
    use rezef_log::{EmbeddedLog, EmbeddedLogConfig};

    #[test]
    fn grpc_timeouts_parse() {
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("x"), None);
        assert_eq!(parse_grpc_timeout(""), None);
        assert_eq!(parse_grpc_timeout("5Q"), None);
    }

    fn presence(source: &str) -> Event {
        let tenant = TenantId::new("acme").expect("tenant");
        let payload = Payload::AgentPresenceChanged {
            agent_id: AgentId::new("a-1").expect("agent"),
            presence: Presence::Available,
            custom_status: String::new(),
        };
        OwnEvent::new(&tenant, source, payload).build()
    }

    #[tokio::test]
    async fn the_server_s_own_events_are_validated_and_a_bad_one_appends_nothing() {
        // Given a backbone over an empty log
        let dir = tempfile::tempdir().expect("dir");
        let log: Arc<dyn Log> = EmbeddedLog::open(EmbeddedLogConfig::new(dir.path())).expect("log");
        let (backbone, _projector) = Backbone::in_memory(log.clone());

        // When a batch holds an event without a source
        let refused = backbone
            .append(&[presence("rezef.routing"), presence("")])
            .await;

        // Then the batch is refused naming the field, and the log is still empty
        let Err(Error::InvalidArgument(violations)) = refused else {
            panic!("expected INVALID_ARGUMENT, got {refused:?}");
        };
        assert_eq!(violations[0].field, "source");
        assert_eq!(log.end_offset(), 0);
        let appended = backbone.append(&[presence("rezef.routing")]).await;
        assert_eq!(appended.expect("a valid event"), 0);
    }
}
