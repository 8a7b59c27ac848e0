//! Merging two customers who turned out to be one person, and undoing it.
//!
//! A merge moves everything of the absorbed customer into the survivor's journey, tagging
//! each identity and conversation with the member it came with, and keeps each member's own
//! counters and times as a [`Share`]. The absorbed record becomes a pointer to the survivor,
//! so its id keeps resolving. An unmerge takes the member (and whoever was merged into it)
//! back out, with what it brought and what its identities did since, so merge then unmerge
//! gives both customers back as they were.

use crate::ids::CustomerId;
use crate::journey::{Journey, MergeRecord, Share};

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

        for mut identity in absorbed.identities {
            if self.identity(&identity.identity).is_none() {
                identity.owner.get_or_insert_with(|| id.clone());
                self.identities.push(identity);
            }
        }
        for mut conversation in absorbed.conversations {
            conversation.owner.get_or_insert_with(|| id.clone());
            self.conversations.push(conversation);
        }
        self.conversations.sort_by_key(|c| c.opened_at);
        self.conflicts.extend(absorbed.conflicts);
        let members: Vec<CustomerId> = self.shares.iter().map(|s| s.customer_id.clone()).collect();
        self.conflicts.retain(|c| !members.contains(&c.owner));

        self.counters += &absorbed.counters;
        self.first_seen_at = self.first_seen_at.min(absorbed.first_seen_at);
        self.last_seen_at = self.last_seen_at.max(absorbed.last_seen_at);
        if absorbed.last_event_offset > self.last_agent_offset() && absorbed.last_agent_id.is_some()
        {
            self.last_agent_id = absorbed.last_agent_id;
        }
        self.last_event_offset = self.last_event_offset.max(absorbed.last_event_offset);
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
        let owned_by =
            |owner: &Option<CustomerId>| owner.as_ref().is_some_and(|o| leaving.contains(o));
        let (identities, kept) = std::mem::take(&mut self.identities)
            .into_iter()
            .partition(|i| owned_by(&i.owner));
        self.identities = kept;
        restored.identities = identities;
        let (conversations, kept) = std::mem::take(&mut self.conversations)
            .into_iter()
            .partition(|c| owned_by(&c.owner));
        self.conversations = kept;
        restored.conversations = conversations;
        for identity in &mut restored.identities {
            if identity.owner.as_ref() == Some(member) {
                identity.owner = None;
            }
        }
        for conversation in &mut restored.conversations {
            if conversation.owner.as_ref() == Some(member) {
                conversation.owner = None;
            }
        }
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
