//! Forgetting a customer (`Identities/ForgetCustomer`): the right to erasure in an
//! immutable log, by crypto-shredding (docs/audit.md, "Forgetting a customer").
//!
//! The person is the journey the customer belongs to now: its customer ids (its own and
//! those merged into it) and every identity it holds name the keys their personal values
//! were sealed under (`rezef_record::sealed`). The intent is logged first, as a
//! `CustomerForgotten` event naming the keys and no personal value, and only then are the
//! keys destroyed: a node stopped in between destroys them when its projector reads the
//! event again (`rezef_store` `read_ahead`).
//!
//! The keys are the node's data directory's (the embedded log) or the cluster's key topic
//! (Kafka), where finding a subject's keys first catches up with the keys other nodes made:
//! so the look-up runs off the async threads.

use rezef_events::{CustomerRef, Journey, Payload};
use rezef_keys::KeyId;
use rezef_record::sealed::subject;

use crate::auth::Caller;
use crate::backbone::Backbone;
use crate::convert::Check;
use crate::own_event::OwnEvent;
use crate::{Error, Result};

/// The longest reason, in bytes.
const MAX_REASON_LEN: usize = 256;

/// What forgetting did.
#[derive(Debug)]
pub struct Forgotten {
    pub offset: u64,
    pub keys_destroyed: usize,
}

impl Backbone {
    /// Forgets `journey`'s person, as asked by `requested_by` for `reason`.
    pub async fn forget(
        &self,
        journey: &Journey,
        requested_by: String,
        reason: String,
    ) -> Result<Forgotten> {
        let Some(keys) = self.sealing.keys().cloned() else {
            return Err(Error::FailedPrecondition(
                "this server's records are not sealed: forgetting needs a key store \
                 (docs/audit.md)"
                    .into(),
            ));
        };
        let tenant = &journey.tenant_id;
        let subjects: Vec<_> = owners(journey)
            .map(|owner| subject(tenant, &owner))
            .collect();
        let ids: Vec<KeyId> = {
            let keys = keys.clone();
            tokio::task::spawn_blocking(move || {
                subjects.iter().flat_map(|s| keys.find(s)).collect()
            })
            .await
            .map_err(|e| Error::Unavailable(format!("finding the keys stopped: {e}")))?
        };
        let payload = Payload::CustomerForgotten {
            key_ids: ids.iter().map(ToString::to_string).collect(),
            requested_by,
            reason,
        };
        let event = OwnEvent::new(tenant, "rezef.identities", payload)
            .about(&journey.customer_id)
            .build();
        let offset = self.append(&[event]).await?;
        let destroyed = ids.len();
        tokio::task::spawn_blocking(move || keys.destroy(&ids))
            .await
            .map_err(|e| Error::Unavailable(format!("destroying the keys stopped: {e}")))?
            .map_err(|e| Error::Sealing(rezef_record::Error::Keys(e)))?;
        Ok(Forgotten {
            offset,
            keys_destroyed: destroyed,
        })
    }
}

/// Who asked, as the log records it: the API key's id, or `anonymous` on a server
/// without API keys (never an address).
pub fn requester<T>(request: &tonic::Request<T>) -> String {
    match request.extensions().get::<Caller>() {
        Some(Caller(credential)) => credential.id.clone(),
        None => "anonymous".into(),
    }
}

/// `reason`: required, at most 256 bytes, no control characters.
pub fn reason_field(check: &mut Check, reason: &str) {
    if reason.is_empty() {
        check.fail("reason", "is required");
    } else if reason.len() > MAX_REASON_LEN {
        check.fail("reason", format!("is longer than {MAX_REASON_LEN} bytes"));
    } else if reason.chars().any(char::is_control) {
        check.fail("reason", "must not contain control characters");
    }
}

/// Whose keys forgetting a journey destroys: its customers and its identities.
pub fn owners(journey: &Journey) -> impl Iterator<Item = CustomerRef> + '_ {
    let customers = std::iter::once(&journey.customer_id)
        .chain(journey.merged_customers())
        .map(|id| CustomerRef::Id(id.clone()));
    let identities =
        (journey.identities.iter()).map(|linked| CustomerRef::Identity(linked.identity.clone()));
    customers.chain(identities)
}

/// The customer ids a journey holds: its own, then those merged into it.
pub fn customer_ids(journey: &Journey) -> Vec<String> {
    std::iter::once(&journey.customer_id)
        .chain(journey.merged_customers())
        .map(ToString::to_string)
        .collect()
}
