//! First-contact resolution waiting to be decided. A need resolved at its only contact is
//! resolved at first contact unless the same customer comes back about the same intent
//! within the tenant's window; until the window has passed the answer is pending, and the
//! figures say so (pending = resolved − achieved − not achieved). The book is bounded by
//! time: every entry leaves it by its deadline.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use rezef_events::by_tenant::ByTenant;
use rezef_events::{ConversationId, CustomerId, TenantId, Timestamp};

use crate::record::{Dims, FcrDecision};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Pending {
    conversation_id: ConversationId,
    resolved_at: Timestamp,
    deadline: Timestamp,
    /// The resolution's dimensions, its intent among them.
    dims: Dims,
}

/// Resolutions whose first-contact resolution is not decided yet, by customer and by
/// deadline.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PendingFcr {
    by_customer: ByTenant<CustomerId, Vec<Pending>>,
    deadlines: BTreeSet<(Timestamp, TenantId, CustomerId, ConversationId)>,
}

fn decision(
    (tenant, customer): (&TenantId, &CustomerId),
    pending: Pending,
    achieved: bool,
) -> FcrDecision {
    FcrDecision {
        tenant_id: tenant.clone(),
        conversation_id: pending.conversation_id,
        customer_id: customer.clone(),
        resolved_at: pending.resolved_at,
        dims: pending.dims,
        achieved,
    }
}

/// Whether a contact started at `started_at` about `intent` repeats a resolution at
/// `resolved_at` about `resolved_intent` whose window ends at `deadline`: it started within
/// the window, about the same intent (any, for a resolution with none).
pub(crate) fn repeats(
    (resolved_at, deadline, resolved_intent): (Timestamp, Timestamp, Option<&str>),
    (started_at, intent): (Timestamp, Option<&str>),
) -> bool {
    resolved_at < started_at
        && started_at <= deadline
        && (resolved_intent.is_none() || resolved_intent == intent)
}

impl PendingFcr {
    pub fn len(&self) -> usize {
        self.deadlines.len()
    }

    pub fn is_pending(
        &self,
        tenant: &TenantId,
        customer: &CustomerId,
        id: &ConversationId,
    ) -> bool {
        (self.by_customer.get(tenant, customer))
            .is_some_and(|all| all.iter().any(|p| &p.conversation_id == id))
    }

    /// Waits for the window after a resolution at `resolved_at`.
    pub fn open(
        &mut self,
        (tenant, customer): (&TenantId, &CustomerId),
        conversation_id: ConversationId,
        (resolved_at, deadline): (Timestamp, Timestamp),
        dims: Dims,
    ) {
        self.deadlines.insert((
            deadline,
            tenant.clone(),
            customer.clone(),
            conversation_id.clone(),
        ));
        (self.by_customer.entry(tenant, customer))
            .or_default()
            .push(Pending {
                conversation_id,
                resolved_at,
                deadline,
                dims,
            });
    }

    /// The customer made a contact that started at `started_at` about `intent`: every
    /// resolution it repeats (same intent, or a resolution with none) was not resolved at
    /// first contact.
    pub fn came_back(
        &mut self,
        (tenant, customer): (&TenantId, &CustomerId),
        started_at: Timestamp,
        intent: Option<&str>,
    ) -> Vec<FcrDecision> {
        let Some(all) = self.by_customer.get_mut(tenant, customer) else {
            return Vec::new();
        };
        let repeats = |p: &Pending| {
            let resolved = (p.resolved_at, p.deadline, p.dims.intent.as_deref());
            repeats(resolved, (started_at, intent))
        };
        if !all.iter().any(repeats) {
            return Vec::new();
        }
        let (repeated, waiting): (Vec<_>, Vec<_>) = all.drain(..).partition(repeats);
        *all = waiting;
        if all.is_empty() {
            self.by_customer.remove(tenant, customer);
        }
        (repeated.into_iter())
            .map(|p| {
                self.deadlines.remove(&(
                    p.deadline,
                    tenant.clone(),
                    customer.clone(),
                    p.conversation_id.clone(),
                ));
                decision((tenant, customer), p, false)
            })
            .collect()
    }

    /// Decides every resolution whose window passed before `now`: resolved at first
    /// contact.
    pub fn expire(&mut self, now: Timestamp) -> Vec<FcrDecision> {
        let mut out = Vec::new();
        while let Some(first) = self.deadlines.first().filter(|d| d.0 < now).cloned() {
            self.deadlines.remove(&first);
            let (_, tenant, customer, id) = first;
            let Some(all) = self.by_customer.get_mut(&tenant, &customer) else {
                continue;
            };
            if let Some(index) = all.iter().position(|p| p.conversation_id == id) {
                out.push(decision((&tenant, &customer), all.remove(index), true));
            }
            if all.is_empty() {
                self.by_customer.remove(&tenant, &customer);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_unix_millis(secs * 1000)
    }

    fn book() -> (PendingFcr, TenantId, CustomerId) {
        let (tenant, customer) = (
            TenantId::new("acme").expect("valid"),
            CustomerId::new("c").expect("valid"),
        );
        let mut book = PendingFcr::default();
        let dims = Dims {
            intent: Some("billing".into()),
            ..Dims::default()
        };
        let id = ConversationId::new("conv-1").expect("valid");
        book.open((&tenant, &customer), id, (at(100), at(200)), dims);
        (book, tenant, customer)
    }

    #[test]
    fn given_a_resolution_when_the_customer_comes_back_about_another_intent_then_still_pending() {
        let (mut book, tenant, customer) = book();
        assert!(
            book.came_back((&tenant, &customer), at(150), Some("moving"))
                .is_empty()
        );
        assert!(
            book.came_back((&tenant, &customer), at(150), None)
                .is_empty()
        );
        assert_eq!(book.len(), 1);
    }

    #[test]
    fn given_a_resolution_when_the_same_intent_comes_back_at_the_deadline_then_not_achieved() {
        let (mut book, tenant, customer) = book();
        let decided = book.came_back((&tenant, &customer), at(200), Some("billing"));
        assert_eq!(
            decided.iter().map(|d| d.achieved).collect::<Vec<_>>(),
            [false]
        );
        assert_eq!(book.len(), 0);
        assert_eq!(book, PendingFcr::default());
    }

    #[test]
    fn given_a_resolution_when_the_window_passes_then_achieved_and_only_then() {
        let (mut book, tenant, customer) = book();
        assert!(book.expire(at(200)).is_empty());
        let decided = book.expire(at(201));
        assert_eq!(
            decided.iter().map(|d| d.achieved).collect::<Vec<_>>(),
            [true]
        );
        assert!(
            book.came_back((&tenant, &customer), at(300), Some("billing"))
                .is_empty()
        );
        assert_eq!(book, PendingFcr::default());
    }
}
