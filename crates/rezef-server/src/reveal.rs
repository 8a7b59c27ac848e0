//! Sensitive values served unmasked: who may see them, and the record of each time someone
//! did. An auditor's reveal is itself audited: before the values leave the server, a
//! `SensitiveRevealed` event naming the key and the call is in the log (about the customer
//! whose values are shown), so a replay of the customer shows who saw what, and when. A
//! reveal whose record cannot be written is not served.

use std::ops::Range;

use rezef_auth::Role;
use rezef_events::{CustomerId, Payload, TenantId};

use crate::auth::Caller;
use crate::backbone::Backbone;
use crate::own_event::OwnEvent;
use crate::{Error, Result};

/// The key a reveal is served to (its id, never its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revealer {
    key_id: String,
}

/// What a caller was shown, for the record.
#[derive(Debug)]
pub struct Revealed<'a> {
    pub tenant: &'a TenantId,
    /// The customer whose values are shown; none for a replay of a whole partition.
    pub customer: Option<&'a CustomerId>,
    /// The call's gRPC path.
    pub method: &'static str,
    /// For a replay: the offsets it covers.
    pub offsets: Option<Range<u64>>,
}

impl Backbone {
    /// Whether a caller who `asked` to see sensitive values may, and who they are: with API
    /// keys, a key with the `auditor` role; on a server without (no key file), an
    /// `authorization: Bearer <key>` header carrying one of `reveal_keys`. Asking without the
    /// right is refused, so that nothing is silently masked when the caller asked to see it.
    pub fn may_reveal<T>(
        &self,
        request: &tonic::Request<T>,
        asked: bool,
    ) -> Result<Option<Revealer>> {
        if !asked {
            return Ok(None);
        }
        if let Some(Caller(credential)) = request.extensions().get::<Caller>() {
            return match credential.has(Role::Auditor) {
                true => Ok(Some(Revealer {
                    key_id: credential.id.clone(),
                })),
                false => Err(Error::PermissionDenied(
                    "reveal_sensitive needs a key with the role `auditor`".into(),
                )),
            };
        }
        let key = (request.metadata().get("authorization"))
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "));
        match key {
            // The shared secret itself is never recorded.
            Some(key) if self.reveal_keys.iter().any(|k| k == key) => Ok(Some(Revealer {
                key_id: "reveal_keys".into(),
            })),
            _ => Err(Error::PermissionDenied(
                "reveal_sensitive needs an `authorization: Bearer <key>` header with a key \
                 the server allows (reveal_keys)"
                    .into(),
            )),
        }
    }

    /// Writes the record of a reveal and waits for the log to keep it; only then may the
    /// values be served.
    pub async fn record_reveal(&self, by: &Revealer, revealed: Revealed<'_>) -> Result<u64> {
        let payload = Payload::SensitiveRevealed {
            key_id: by.key_id.clone(),
            method: revealed.method.to_owned(),
            from_offset: revealed.offsets.as_ref().map(|o| o.start),
            to_offset: revealed.offsets.as_ref().map(|o| o.end),
        };
        let event = OwnEvent::new(revealed.tenant, "rezef.audit", payload);
        let event = match revealed.customer {
            Some(customer) => event.about(customer),
            None => event,
        };
        self.append(&[event.build()]).await
    }
}
