//! Merging two customers who turned out to be one person, and undoing it.
//!
//! A merge moves everything of the absorbed customer into the survivor's journey, tagging
//! each identity and conversation with the member it came with, and keeps each member's own
//! counters and times as a [`Share`]. The absorbed record becomes a pointer to the survivor,
//! so its id keeps resolving. An unmerge takes the member (and whoever was merged into it)
//! back out, with what it brought and what its identities did since, so merge then unmerge
//! gives both customers back as they were.
//!
//! The merged journey is brought within its bounds ([`crate::bound`]): two long histories
//! make one of the same size, and what that compacts stays compacted after an unmerge.

use std::sync::Arc;

use crate::ids::CustomerId;
use crate::journey::{
    Conversation, ConversationSummary, Journey, LinkedIdentity, MergeRecord, Share,
};

/// What a journey holds on behalf of the member it came with (its `owner`: `None` for the
/// journey's own customer).
trait Owned {
    fn owner(&self) -> Option<&CustomerId>;
    fn owner_mut(&mut self) -> &mut Option<CustomerId>;
}

/// Implements [`Owned`] for types with an `owner` field.
macro_rules! owned {
    ($($t:ty),*) => {$(
        impl Owned for $t {
            fn owner(&self) -> Option<&CustomerId> {
                self.owner.as_ref()
            }

            fn owner_mut(&mut self) -> &mut Option<CustomerId> {
                &mut self.owner
            }
        }
    )*};
}
owned!(LinkedIdentity, Conversation, ConversationSummary);

/// A shared conversation is copied only when its owner changes.
impl<T: Owned + Clone> Owned for Arc<T> {
    fn owner(&self) -> Option<&CustomerId> {
        self.as_ref().owner()
    }

    fn owner_mut(&mut self) -> &mut Option<CustomerId> {
        Arc::make_mut(self).owner_mut()
    }
}

/// Tags what the absorbed customer `id` brings with it, unless a member of its own did.
fn adopt<T: Owned>(items: &mut [T], id: &CustomerId) {
    for item in items {
        item.owner_mut().get_or_insert_with(|| id.clone());
    }
}

/// Takes out of `items` what the `leaving` members own; what `member` itself owns becomes
/// the restored journey's own.
fn take_leaving<T: Owned>(
    items: &mut Vec<T>,
    leaving: &[CustomerId],
    member: &CustomerId,
) -> Vec<T> {
    let (mut taken, kept): (Vec<T>, Vec<T>) = std::mem::take(items)
        .into_iter()
        .partition(|item| item.owner().is_some_and(|o| leaving.contains(o)));
    *items = kept;
    for item in &mut taken {
        if item.owner() == Some(member) {
            *item.owner_mut() = None;
        }
    }
    taken
}

impl Journey {
    /// This journey as one share (its own part, before any merge).
    fn own_share(&self) -> Share {
        Share {
            customer_id: self.customer_id.clone(),
            parent: None,
            merge: None,
            counters: self.counters.clone(),
            first_seen_at: self.first_seen_at,
            last_seen_at: self.last_seen_at,
            last_agent_id: self.last_agent_id.clone(),
            last_event_offset: self.last_event_offset,
            attributes: self.attributes.clone(),
        }
    }

    /// A journey that arrived from another partition of the log (a merge or an unmerge
    /// across partitions): its offsets counted in that partition's log and compare with
    /// none here, so from now on it is as of `offset`, where it arrived. Kept as they were,
    /// an event here at a lower offset than the other partition had reached would pass for
    /// one already applied and be dropped.
    pub fn arrived_at(&mut self, offset: u64) {
        self.last_event_offset = Some(offset);
        for share in &mut self.shares {
            if share.last_event_offset.is_some() {
                share.last_event_offset = Some(offset);
            }
        }
    }

    /// What this customer's record becomes once merged into `survivor`: a pointer there.
    pub fn pointer_to(&self, survivor: &CustomerId) -> Journey {
        let mut pointer = Journey::new(
            self.tenant_id.clone(),
            self.customer_id.clone(),
            self.first_seen_at,
        );
        pointer.merged_into = Some(survivor.clone());
        pointer.last_event_offset = self.last_event_offset;
        pointer
    }

    /// Takes `absorbed` (the journey of a customer merged nowhere else) into this one and
    /// returns what the absorbed customer's record becomes: a pointer here.
    pub fn absorb(&mut self, absorbed: Journey, record: MergeRecord) -> Journey {
        if self.shares.is_empty() {
            self.shares.push(self.own_share());
        }
        let tombstone = absorbed.pointer_to(&self.customer_id);

        let id = absorbed.customer_id.clone();
        let mut shares = if absorbed.shares.is_empty() {
            vec![absorbed.own_share()]
        } else {
            absorbed.shares
        };
        shares[0].parent = Some(self.customer_id.clone());
        shares[0].merge = Some(record);
        self.shares.extend(shares);

        let mut identities = absorbed.identities;
        identities.retain(|i| self.identity(&i.identity).is_none());
        adopt(&mut identities, &id);
        self.identities.extend(identities);
        let mut conversations = absorbed.conversations;
        adopt(&mut conversations, &id);
        self.conversations.extend(conversations);
        self.conversations.sort_by_key(|c| c.opened_at);
        let mut past = absorbed.past;
        adopt(&mut past, &id);
        self.remember_all(past);
        self.conflicts.extend(absorbed.conflicts);
        let members: Vec<CustomerId> = self.shares.iter().map(|s| s.customer_id.clone()).collect();
        self.conflicts.retain(|c| !members.contains(&c.owner));

        self.attributes = self.attributes.or(&absorbed.attributes);
        self.counters += &absorbed.counters;
        self.first_seen_at = self.first_seen_at.min(absorbed.first_seen_at);
        self.last_seen_at = self.last_seen_at.max(absorbed.last_seen_at);
        if absorbed.last_event_offset > self.last_agent_offset() && absorbed.last_agent_id.is_some()
        {
            self.last_agent_id = absorbed.last_agent_id;
        }
        self.last_event_offset = self.last_event_offset.max(absorbed.last_event_offset);
        self.keep_bounded();
        tombstone
    }

    /// Takes the merged member `member` (with whoever was merged into it) back out of this
    /// journey, as a journey of its own. `None` if it is not a member here.
    pub fn split(&mut self, member: &CustomerId) -> Option<Journey> {
        if !self.merged_customers().any(|m| m == member) {
            return None;
        }
        // The member and, transitively, the members merged into it.
        let mut leaving = vec![member.clone()];
        loop {
            let before = leaving.len();
            for share in &self.shares {
                if share.parent.as_ref().is_some_and(|p| leaving.contains(p))
                    && !leaving.contains(&share.customer_id)
                {
                    leaving.push(share.customer_id.clone());
                }
            }
            if leaving.len() == before {
                break;
            }
        }
        let (mut shares, staying): (Vec<Share>, Vec<Share>) = std::mem::take(&mut self.shares)
            .into_iter()
            .partition(|s| leaving.contains(&s.customer_id));
        self.shares = staying;
        // The member's own share first.
        shares.sort_by_key(|s| &s.customer_id != member);
        shares[0].parent = None;
        shares[0].merge = None;

        let mut restored = Journey::new(
            self.tenant_id.clone(),
            member.clone(),
            shares[0].first_seen_at,
        );
        restored.identities = take_leaving(&mut self.identities, &leaving, member);
        restored.conversations = take_leaving(&mut self.conversations, &leaving, member);
        restored.past = take_leaving(&mut self.past, &leaving, member);
        restored.shares = shares;
        restored.total_from_shares();
        // The caller applies the unmerge event next, which moves `last_event_offset` past
        // everything applied so far.
        self.total_from_shares();
        Some(restored)
    }

    /// Recomputes the totals from the shares; drops them when only the own share is left.
    fn total_from_shares(&mut self) {
        let Some(first) = self.shares.first() else {
            return;
        };
        let mut total = first.clone();
        for share in &self.shares[1..] {
            total.attributes = total.attributes.or(&share.attributes);
        }
        let mut agent_offset = first.last_agent_id.as_ref().and(first.last_event_offset);
        for share in &self.shares[1..] {
            total.counters += &share.counters;
            total.first_seen_at = total.first_seen_at.min(share.first_seen_at);
            total.last_seen_at = total.last_seen_at.max(share.last_seen_at);
            total.last_event_offset = total.last_event_offset.max(share.last_event_offset);
            if share.last_agent_id.is_some() && share.last_event_offset > agent_offset {
                agent_offset = share.last_event_offset;
                total.last_agent_id = share.last_agent_id.clone();
            }
        }
        self.counters = total.counters;
        self.first_seen_at = total.first_seen_at;
        self.last_seen_at = total.last_seen_at;
        self.last_agent_id = total.last_agent_id;
        self.last_event_offset = total.last_event_offset;
        self.attributes = total.attributes;
        if self.shares.len() == 1 {
            self.shares.clear();
        }
    }

    /// The offset of the latest event that set the journey's last agent, as well as known.
    fn last_agent_offset(&self) -> Option<u64> {
        self.shares
            .iter()
            .filter(|s| s.last_agent_id.is_some())
            .filter_map(|s| s.last_event_offset)
            .max()
            .or(self.last_event_offset)
    }
}

/// How many journeys a walk along merge pointers reads at most (the projector never makes a
/// chain that long): more means a cycle in corrupt state.
pub const MAX_MERGE_DEPTH: usize = 64;

/// What one step of a walk along merge pointers found.
#[derive(Debug, PartialEq, Eq)]
pub enum Hop<T> {
    /// The customer was merged into this one: the walk goes on there.
    MergedInto(CustomerId),
    /// The walk ends with this.
    End(T),
}

/// Follows the merge pointers from `customer` to the journey that holds it: `hop` reads one
/// customer's record and says where it was merged into, or what the walk ends with. `None`
/// when [`MAX_MERGE_DEPTH`] records all pointed on.
pub fn walk<T, E>(
    customer: &CustomerId,
    mut hop: impl FnMut(CustomerId) -> Result<Hop<T>, E>,
) -> Result<Option<T>, E> {
    let mut current = customer.clone();
    for _ in 0..MAX_MERGE_DEPTH {
        match hop(current)? {
            Hop::MergedInto(next) => current = next,
            Hop::End(found) => return Ok(Some(found)),
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn id(name: &str) -> CustomerId {
        CustomerId::new(name).expect("id")
    }

    /// A walk over `pointers` (customer → where it was merged into) ending at a root.
    fn root_in(pointers: &HashMap<CustomerId, CustomerId>, from: &str) -> Option<CustomerId> {
        let hop = |current: CustomerId| {
            Ok::<_, ()>(match pointers.get(&current) {
                Some(next) => Hop::MergedInto(next.clone()),
                None => Hop::End(current),
            })
        };
        walk(&id(from), hop).expect("no error")
    }

    #[test]
    fn given_a_chain_of_merges_when_walked_then_it_ends_at_the_survivor() {
        let pointers = HashMap::from([(id("a"), id("b")), (id("b"), id("c"))]);
        assert_eq!(root_in(&pointers, "a"), Some(id("c")));
        assert_eq!(root_in(&pointers, "c"), Some(id("c")));
    }

    #[test]
    fn given_a_cycle_when_walked_then_it_stops_after_the_limit() {
        let pointers = HashMap::from([(id("a"), id("b")), (id("b"), id("a"))]);
        assert_eq!(root_in(&pointers, "a"), None);
    }

    #[test]
    fn given_the_longest_chain_allowed_when_walked_then_it_is_followed() {
        let names: Vec<String> = (0..MAX_MERGE_DEPTH).map(|n| format!("c{n}")).collect();
        let pointers: HashMap<_, _> = (names.windows(2))
            .map(|pair| (id(&pair[0]), id(&pair[1])))
            .collect();
        let last = names.last().expect("names");
        assert_eq!(root_in(&pointers, "c0"), Some(id(last)));
    }

    #[test]
    fn given_a_failing_read_when_walked_then_the_error_is_given() {
        let failed = walk(&id("a"), |_| Err::<Hop<()>, _>("unreadable"));
        assert_eq!(failed, Err("unreadable"));
    }
}
