//! `as_of` on GetJourney and ResumeConversation (docs/audit.md): the journey as the
//! projection knew it at a point of the log's history, folded again from the customer's
//! events up to it (`rezef_store::journey_as_of`).

use std::time::Duration;

use rezef_events::{CustomerRef, Journey, TenantId, Timestamp};
use rezef_proto::v1::{self, as_of::Point as ProtoPoint};
use rezef_record::check::Check;

use crate::backbone::Backbone;
use crate::{Error, Result};

/// A point of the log's history: every record below `offset` folded, none above; `time`
/// is when the log recorded the last of them (the Unix epoch before any).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Point {
    pub offset: u64,
    pub time: Timestamp,
}

/// What a request's `as_of` asks for, checked (`None`: unset).
pub(crate) enum Asked {
    Offset(u64),
    Time(Timestamp),
}

/// Checks `as_of` into `check`.
pub(crate) fn check(check: &mut Check, as_of: Option<v1::AsOf>) -> Option<Asked> {
    match as_of?.point {
        Some(ProtoPoint::Offset(offset)) => Some(Asked::Offset(offset)),
        Some(ProtoPoint::Time(time)) => check.time("as_of.time", Some(time)).map(Asked::Time),
        None => {
            check.fail("as_of", "must name an offset or a time");
            None
        }
    }
}

impl Backbone {
    /// The point `asked` names, once the projection has folded up to it (its customer index
    /// then holds every record below it), waiting at most `wait`.
    pub(crate) async fn point(&self, asked: Asked, wait: Duration) -> Result<Point> {
        let offset = match asked {
            Asked::Offset(offset) => offset,
            Asked::Time(time) => self.log.offset_for_time(time.unix_millis()).await?,
        };
        let end = self.log.end_offset();
        if offset > end {
            return Err(Error::OutOfRange(format!(
                "as_of offset {offset} is beyond the end of the log ({end})"
            )));
        }
        let time = match offset.checked_sub(1) {
            Some(last) => {
                self.wait_projected(last, wait).await?;
                let records = self.log.read(last, 1).await?;
                let recorded = records.first().map_or(0, |record| record.timestamp_ms);
                Timestamp::from_unix_millis(recorded)
            }
            None => Timestamp::from_unix_millis(0),
        };
        Ok(Point { offset, time })
    }

    /// The journey holding `customer` at `point`, if the tenant knew them then; an identity
    /// the tenant's policy says identifies no one names nobody, as now.
    pub(crate) async fn journey_at(
        &self,
        tenant: &TenantId,
        customer: &CustomerRef,
        point: Point,
    ) -> Result<Option<Journey>> {
        if let CustomerRef::Identity(identity) = customer
            && !self.policy(tenant).identifies(identity)
        {
            return Ok(None);
        }
        let log = (self.log.as_ref(), &self.sealing);
        let policies = self.policies.clone();
        let at = point.offset;
        let store = self.store.as_ref();
        Ok(rezef_store::journey_as_of(log, store, policies, tenant, customer, at).await?)
    }
}
