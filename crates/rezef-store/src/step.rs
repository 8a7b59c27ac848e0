//! One projection step: a batch of decoded records folded into journey state in place (in a
//! [`Workspace`]), and what else it produced (identity links, offsets, tokens, agents)
//! handed to the store as one [`ProjectionBatch`].
//!
//! Customers merged into another keep a record that points there; an event about them is
//! applied to the journey at the end of the pointers (the root) and attributed to them. On
//! a partitioned log, identity ownership and merges that another partition must decide are
//! sent there as handovers (docs/scale-out.md §2).

use std::sync::{Arc, Mutex};

use rezef_events::agent::AgentState;
use rezef_events::fold::{self, Context, continuation_token, customer_id_for};
use rezef_events::handover::Handover;
use rezef_events::journey::{MergeCause, MergeRecord};
use rezef_events::merge::{self, Hop};
use rezef_events::policy::Policies;
use rezef_events::resolution::{self, Directory, Resolution};
use rezef_events::routed;
use rezef_events::search;
use rezef_events::{
    AgentId, ChannelIdentity, CustomerId, CustomerRef, Event, Journey, Payload, TenantId, Timestamp,
};
use tracing::{debug, warn};

use crate::dedup::DedupWindow;
use crate::partitioning::Partitioning;
use crate::projector::ProjectionStats;
use crate::read_ahead::Decoded;
use crate::store::{ProjectionBatch, RoutingConfigRecord, TokenGrant};
use crate::workspace::{Measuring, Workspace};
use crate::{Error, Result};
use rezef_events::by_tenant::{ByTenant, HashMap};

/// One projection step: journeys folded in place, indexes gathered for one commit. Customers
/// merged into another keep a record that points there; an event about them is applied to
/// the journey at the end of the pointers (the root) and attributed to them.
pub struct Step {
    policies: Arc<Policies>,
    partitioning: Option<Partitioning>,
    /// The journeys the step loaded or changed, announced when it commits.
    touched: ByTenant<CustomerId, ()>,
    /// `None`: unlinked in this step.
    links: HashMap<(TenantId, String), Option<CustomerId>>,
    tokens: HashMap<(TenantId, String), Option<TokenGrant>>,
    window: Arc<Mutex<DedupWindow>>,
    agents: HashMap<(TenantId, AgentId), AgentState>,
    /// Events for other partitions, relayed before the step commits.
    outbox: Vec<Event>,
    batch: ProjectionBatch,
    stats: ProjectionStats,
}

impl Step {
    pub fn new(
        policies: Arc<Policies>,
        partitioning: Option<Partitioning>,
        window: Arc<Mutex<DedupWindow>>,
    ) -> Self {
        Self {
            policies,
            partitioning,
            touched: ByTenant::default(),
            links: HashMap::default(),
            tokens: HashMap::default(),
            window,
            agents: HashMap::default(),
            outbox: Vec::new(),
            batch: ProjectionBatch::default(),
            stats: ProjectionStats::default(),
        }
    }

    /// What the step sends to other partitions (relayed before it commits).
    pub fn take_outbox(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.outbox)
    }

    pub fn stats(&self) -> ProjectionStats {
        self.stats
    }

    /// Folds one record in place, in `workspace`.
    pub fn record(&mut self, workspace: &mut Workspace<'_>, record: Decoded) -> Result<()> {
        Folding {
            step: self,
            ws: workspace,
        }
        .record(record)
    }

    /// Everything the step produced besides the journeys (folded in place), for the store,
    /// and the journeys it touched.
    pub fn finish(self) -> (ProjectionBatch, Vec<(TenantId, CustomerId)>) {
        let mut batch = self.batch;
        let changes = self
            .window
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take_changes();
        (batch.applied, batch.forgotten) = (changes.applied, changes.forgotten);
        batch.agents = self.agents.into_iter().map(|((t, _), s)| (t, s)).collect();
        let touched = (self.touched.into_entries())
            .map(|(tenant, customer, ())| (tenant, customer))
            .collect();
        (batch, touched)
    }
}

/// One record being folded: the step's state and the workspace it folds in.
struct Folding<'a, 'l> {
    step: &'a mut Step,
    ws: &'a mut Workspace<'l>,
}

impl Folding<'_, '_> {
    fn record(&mut self, record: Decoded) -> Result<()> {
        self.step.stats.records += 1;
        self.step.batch.next_offset = record.offset + 1;
        let event = match record.event {
            Ok(event) => event,
            Err(error) => {
                self.step.stats.undecodable += 1;
                warn!(offset = record.offset, %error, "passing over an undecodable log record");
                return Ok(());
            }
        };
        let digest = record.digest;
        let duplicate = {
            let mut window = self.step.window.lock().unwrap_or_else(|e| e.into_inner());
            let seen = window.contains(digest);
            if !seen {
                window.insert(digest);
            }
            seen
        };
        if duplicate {
            self.step.stats.duplicates += 1;
            if event.customer.is_some() && !matches!(event.payload, Payload::Handover(_)) {
                let component = self.component(&event)?;
                let root = self.root(&event.tenant_id, &component)?;
                if let Some(journey) = self.load(&event.tenant_id, &root)? {
                    journey.counters.duplicates_ignored += 1;
                }
            }
            return Ok(());
        }
        self.step.stats.applied += 1;

        if let Payload::AgentPresenceChanged { agent_id, .. } = &event.payload {
            let key = (event.tenant_id.clone(), agent_id.clone());
            let current = match self.step.agents.remove(&key) {
                Some(state) => Some(state),
                None => self.ws.agent(&key.0, &key.1)?,
            };
            if let Some(state) = AgentState::fold(current, record.offset, &event) {
                self.step.agents.insert(key, state);
            }
            return Ok(());
        }
        if let Payload::RoutingConfigChanged { version, config } = &event.payload {
            let record = RoutingConfigRecord {
                version: *version,
                config: config.clone(),
            };
            self.step
                .batch
                .routing
                .push((event.tenant_id.clone(), record));
            return Ok(());
        }
        self.routed(&event);
        if let Payload::Handover(handover) = &event.payload {
            return self.handover(record.offset, &event, handover);
        }
        if event.customer.is_some() {
            self.tell_routing(&event);
            self.customer_event(record.offset, record.recorded_at, &event)?;
        }
        Ok(())
    }

    /// Routing reads its tenant's routing partition only: an event appended elsewhere that
    /// ends a contact is told there (once, by the partition it was appended to).
    fn tell_routing(&mut self, event: &Event) {
        let Some(partitioning) = &self.step.partitioning else {
            return;
        };
        if let (Some(end), Some(_), None) = (
            event.payload.contact_end(),
            &event.interaction_id,
            &event.forward,
        ) && partitioning.partitioner.routing(&event.tenant_id) != partitioning.partition
        {
            self.send(Handover::ContactEnded { end }, event);
        }
    }

    /// Keeps the contacts routing holds (`rezef_events::routed`), where routing reads them:
    /// from routing's own records and the ends told to it, on its tenant's routing partition
    /// (not from copies forwarded to journeys elsewhere).
    fn routed(&mut self, event: &Event) {
        let (Some(contact), None) = (&event.interaction_id, &event.forward) else {
            return;
        };
        let elsewhere = (self.step.partitioning.as_ref())
            .is_some_and(|p| p.partitioner.routing(&event.tenant_id) != p.partition);
        if elsewhere {
            return;
        }
        let customer = match &event.customer {
            Some(CustomerRef::Id(customer)) => Some(customer),
            _ => None,
        };
        if let (Payload::RoutingDecided { .. }, Some(customer)) = (&event.payload, customer) {
            let decided = (event.tenant_id.clone(), contact.clone(), customer.clone());
            self.step.batch.decided.push(decided);
        }
        let held = match routed::change(&event.payload, customer, event.channel) {
            Some(routed::Change::Holds(contact)) => Some(*contact),
            Some(routed::Change::Left) => None,
            None => return,
        };
        let key = (event.tenant_id.clone(), contact.clone(), held);
        self.step.batch.routed.push(key);
    }

    /// Whether a customer's journey lives on this partition (always, on an unpartitioned log).
    fn here(&self, tenant: &TenantId, customer: &CustomerId) -> bool {
        self.step
            .partitioning
            .as_ref()
            .is_none_or(|p| p.holds(tenant, customer))
    }

    /// Sends `event` on to the partition of `journey`, attributed to `member` there.
    fn forward(&mut self, event: &Event, member: CustomerId, journey: CustomerId) {
        match event.forwarded(member, journey) {
            Some(forwarded) => {
                self.step.stats.forwarded += 1;
                self.step.outbox.push(forwarded);
            }
            None => warn!(tenant = %event.tenant_id, event = %event.event_id,
                "an event forwarded too many times is dropped: merge pointers form a loop"),
        }
    }

    fn send(&mut self, handover: Handover, cause: &Event) {
        self.step.outbox.push(handover.event(cause));
    }

    fn customer_event(&mut self, offset: u64, recorded_at: Timestamp, event: &Event) -> Result<()> {
        let tenant = &event.tenant_id;
        let at = fold::time_of(event, Some(recorded_at));
        let policies = self.step.policies.clone();
        let policy = policies.for_tenant(tenant);
        let mut component = self.component(event)?;
        let mut root = self.root(tenant, &component)?;
        if !self.here(tenant, &root) {
            self.forward(event, component, root);
            return Ok(());
        }

        match &event.payload {
            Payload::CustomersMerged {
                absorbed,
                reason,
                requested_by,
            } => {
                let other = self.root(tenant, absorbed)?;
                let record = MergeRecord {
                    at,
                    offset,
                    cause: MergeCause::Requested {
                        reason: reason.clone(),
                        requested_by: requested_by.clone(),
                    },
                };
                if other == root {
                    warn!(%tenant, %root, %absorbed, offset, "merge passed over: not two customers");
                } else if !self.here(tenant, &other) {
                    let survivor = root.clone();
                    let request = Handover::MergeRequested {
                        absorbed: other,
                        survivor,
                        record,
                    };
                    self.send(request, event);
                } else if self.load(tenant, &other)?.is_some() {
                    self.merge(tenant, &root, &other, record, at)?;
                    self.index_named(tenant, [absorbed, &other], &component, offset);
                } else {
                    warn!(%tenant, %root, %absorbed, offset, "merge passed over: no such customer");
                }
            }
            Payload::CustomersUnmerged { absorbed, .. } => {
                let restored = self.load(tenant, &root)?.and_then(|j| j.split(absorbed));
                if restored.is_some() {
                    self.index_named(tenant, [absorbed], &component, offset);
                }
                match restored {
                    Some(restored) if self.here(tenant, absorbed) => {
                        self.put(restored);
                    }
                    Some(restored) => {
                        self.remove(tenant, absorbed);
                        let moved = Handover::JourneyMoved {
                            journey: restored.into(),
                            into: None,
                        };
                        self.send(moved, event);
                    }
                    None => {
                        warn!(%tenant, %root, %absorbed, offset, "unmerge passed over: not a member")
                    }
                }
            }
            Payload::CustomerForgotten { .. } => self.forget(tenant, &root)?,
            _ => {}
        }

        // Identities the event shows or proves that belong to someone else: merge when the
        // evidence allows, otherwise record the conflict and leave the identity where it is.
        // An owner on another partition decides there: it gets a claim.
        let mut foreign = Vec::new();
        let mut claims = Vec::new();
        let decisions =
            resolution::resolve(event, &root, policy, &mut Lookup { step: self, tenant })?;
        for decision in decisions {
            match decision {
                Resolution::IsOwner(owner) => (component, root) = (owner.clone(), owner),
                Resolution::Claim { identity, owner } => claims.push((identity, Some(owner))),
                Resolution::Merge {
                    survivor,
                    absorbed,
                    cause,
                } => {
                    let record = MergeRecord { at, offset, cause };
                    self.merge(tenant, &survivor, &absorbed, record, at)?;
                    self.index_named(tenant, [&survivor, &absorbed], &component, offset);
                    root = survivor;
                }
                Resolution::Refuse {
                    identity,
                    owner,
                    refusal,
                } => {
                    let shown = crate::redact::Redacted(&identity);
                    debug!(%tenant, identity = %shown, %owner, %root, %refusal, "link refused");
                    foreign.push((identity, owner, refusal));
                }
            }
        }
        if !self.here(tenant, &root) {
            self.forward(event, component, root);
            return Ok(());
        }

        let origin = (component != root).then_some(&component);
        let cx = Context {
            policy,
            origin,
            foreign: &foreign,
            recorded_at: Some(recorded_at),
        };
        let (journey, measuring) = self.load_to_measure(tenant, &root, at)?;
        let applied = journey.apply_with(offset, event, &cx);
        let first_seen = journey.first_seen_at;
        // Measured in the same step, seeing the journey after the fold.
        measuring.observe((offset, event), recorded_at, (journey, &applied))?;
        // Indexed under the member it came from, so that an unmerge splits the history too.
        self.step
            .batch
            .customer_events
            .push((tenant.clone(), component.clone(), offset));
        if applied.changed {
            for attribute in search::attributes(event) {
                let entry = (
                    tenant.clone(),
                    attribute.entry(&component),
                    component.clone(),
                );
                self.step.batch.attributes.push(entry);
            }
        }
        for identity in applied.linked {
            // The identity's home learns its owner, unless its owner's partition was just
            // asked to decide (its home already names that owner).
            let home = customer_id_for(tenant, &identity);
            if !self.here(tenant, &home) && !claims.iter().any(|(claimed, _)| *claimed == identity)
            {
                claims.push((identity.clone(), None));
            }
            self.link(tenant, identity, component.clone());
        }
        for (identity, owner) in claims {
            let claim = Handover::IdentityClaimed {
                identity,
                claimant: root.clone(),
                claimant_first_seen: first_seen,
                verified: resolution::verification(event),
                owner,
            };
            self.send(claim, event);
        }
        for conversation in applied.opened {
            self.step
                .batch
                .conversations
                .push((tenant.clone(), conversation, component.clone()));
        }
        let issued = applied.tokens_issued.into_iter().map(|issued| {
            let grant = TokenGrant {
                customer: root.clone(),
                expires_at: issued.expires_at,
                redeem_on: issued.redeem_on,
            };
            (issued.token, Some(grant))
        });
        let used = applied.tokens_used.into_iter().map(|t| (t, None));
        for (token, owner) in issued.chain(used) {
            self.step
                .tokens
                .insert((tenant.clone(), token.clone()), owner.clone());
            self.step.batch.tokens.push((tenant.clone(), token, owner));
        }
        Ok(())
    }

    /// Folds a message from another partition (see `rezef_events::handover`).
    fn handover(&mut self, offset: u64, event: &Event, handover: &Handover) -> Result<()> {
        let tenant = &event.tenant_id;
        let at = event.occurred_at;
        match handover {
            Handover::IdentityClaimed {
                identity,
                claimant,
                claimant_first_seen,
                verified,
                owner,
            } => {
                let owner = match owner {
                    Some(owner) => Some(owner.clone()),
                    None => self.owner(tenant, identity)?,
                };
                let Some(owner) = owner else {
                    self.link(tenant, identity.clone(), claimant.clone());
                    return Ok(());
                };
                let (owner, claimant) = (self.root(tenant, &owner)?, self.root(tenant, claimant)?);
                if owner == claimant {
                    return Ok(());
                }
                if !self.here(tenant, &owner) {
                    let claim = Handover::IdentityClaimed {
                        identity: identity.clone(),
                        claimant,
                        claimant_first_seen: *claimant_first_seen,
                        verified: *verified,
                        owner: Some(owner),
                    };
                    self.send(claim, event);
                    return Ok(());
                }
                let policies = self.step.policies.clone();
                let policy = policies.for_tenant(tenant);
                let (method, assurance) = match resolution::verdict(*verified, policy, identity) {
                    Ok(verified) => verified,
                    Err(refusal) => {
                        let identity = identity.clone();
                        let refused = Handover::ClaimRefused {
                            identity,
                            claimant,
                            owner,
                            refusal,
                        };
                        return self.claim_refused(offset, event, &refused);
                    }
                };
                let cause = MergeCause::Verified {
                    method,
                    assurance,
                    identity: identity.clone(),
                };
                let record = MergeRecord { at, offset, cause };
                let owner_first_seen = self.load(tenant, &owner)?.map(|j| j.first_seen_at);
                let owner_survives = resolution::survives(
                    (Some(owner_first_seen.unwrap_or(at)), &owner),
                    (Some(*claimant_first_seen), &claimant),
                );
                if owner_survives {
                    self.merge_into_here(event, &owner, &claimant, record)
                } else {
                    self.move_out(event, &owner, &claimant, record)
                }
            }
            Handover::ClaimRefused { .. } => self.claim_refused(offset, event, handover),
            Handover::MergeRequested {
                absorbed,
                survivor,
                record,
            } => {
                let absorbed = self.root(tenant, absorbed)?;
                if !self.here(tenant, &absorbed) {
                    self.forward(event, absorbed.clone(), absorbed);
                    return Ok(());
                }
                let survivor = self.root(tenant, survivor)?;
                if survivor != absorbed {
                    self.move_out(event, &absorbed, &survivor, record.clone())?;
                }
                Ok(())
            }
            // For routing, which reads it from the log: nothing to fold.
            Handover::ContactEnded { .. } => Ok(()),
            Handover::JourneyMoved { journey, into } => match into {
                Some((survivor, record)) => {
                    let survivor = self.root(tenant, survivor)?;
                    if !self.here(tenant, &survivor) {
                        self.forward(event, survivor.clone(), survivor);
                        return Ok(());
                    }
                    let mut journey = journey.clone().into_journey();
                    journey.arrived_at(offset);
                    debug!(%tenant, %survivor, absorbed = %journey.customer_id, "journey moved in");
                    let pointer = self
                        .load_or_new(tenant, &survivor, journey.first_seen_at)?
                        .absorb(journey, record.clone());
                    self.put(pointer);
                    Ok(())
                }
                None => {
                    let mut journey = journey.clone().into_journey();
                    journey.arrived_at(offset);
                    self.put(journey);
                    Ok(())
                }
            },
        }
    }

    /// `claimant` may not have `identity`, which `owner` keeps: on the claimant's partition,
    /// its journey drops the link and records a conflict; elsewhere, it is told.
    fn claim_refused(&mut self, offset: u64, event: &Event, refused: &Handover) -> Result<()> {
        let Handover::ClaimRefused {
            identity,
            claimant,
            owner,
            refusal,
        } = refused
        else {
            return Ok(());
        };
        let tenant = &event.tenant_id;
        let claimant = self.root(tenant, claimant)?;
        if !self.here(tenant, &claimant) {
            self.send(refused.clone(), event);
            return Ok(());
        }
        if let Some(journey) = self.load(tenant, &claimant)? {
            journey.refuse_link(identity, owner.clone(), *refusal, event.occurred_at, offset);
        }
        self.link(tenant, identity.clone(), owner.clone());
        Ok(())
    }

    /// Merges `absorbed` into `survivor`, whose journey is here: at once if `absorbed`'s is
    /// here too, else by asking its partition to send it.
    fn merge_into_here(
        &mut self,
        cause: &Event,
        survivor: &CustomerId,
        absorbed: &CustomerId,
        record: MergeRecord,
    ) -> Result<()> {
        let tenant = &cause.tenant_id;
        if self.here(tenant, absorbed) {
            return self.merge(tenant, survivor, absorbed, record, cause.occurred_at);
        }
        let request = Handover::MergeRequested {
            absorbed: absorbed.clone(),
            survivor: survivor.clone(),
            record,
        };
        self.send(request, cause);
        Ok(())
    }

    /// Merges `absorbed`, whose journey is here, into `survivor`: at once if `survivor`'s is
    /// here too, else by sending the journey there and keeping a pointer.
    fn move_out(
        &mut self,
        cause: &Event,
        absorbed: &CustomerId,
        survivor: &CustomerId,
        record: MergeRecord,
    ) -> Result<()> {
        let tenant = &cause.tenant_id;
        if self.here(tenant, survivor) {
            return self.merge(tenant, survivor, absorbed, record, cause.occurred_at);
        }
        let Some(journey) = self.load(tenant, absorbed)?.map(|j| j.clone()) else {
            return Ok(());
        };
        self.put(journey.pointer_to(survivor));
        debug!(%tenant, %survivor, %absorbed, "journey moved out");
        let moved = Handover::JourneyMoved {
            journey: journey.into(),
            into: Some((survivor.clone(), record)),
        };
        self.send(moved, cause);
        Ok(())
    }

    /// Links an identity to a customer in the index.
    fn link(&mut self, tenant: &TenantId, identity: ChannelIdentity, customer: CustomerId) {
        self.step.links.insert(
            (tenant.clone(), identity.index_key()),
            Some(customer.clone()),
        );
        self.step
            .batch
            .identities
            .push((tenant.clone(), identity, customer));
    }

    /// Forgets a customer (`CustomerForgotten`): their journey erased as a rebuild would
    /// fold it (`Journey::erase`), its erased identities linked and its real ones unlinked,
    /// and the attribute entries naming its customers deleted.
    fn forget(&mut self, tenant: &TenantId, root: &CustomerId) -> Result<()> {
        let Some(journey) = self.load(tenant, root)? else {
            return Ok(());
        };
        let held = journey.erase();
        let erased: Vec<_> = (journey.identities.iter())
            .map(|linked| (linked.identity.clone(), linked.owner.clone()))
            .collect();
        let customers: Vec<_> = std::iter::once(journey.customer_id.clone())
            .chain(journey.merged_customers().cloned())
            .collect();
        for (identity, owner) in erased {
            self.link(tenant, identity, owner.unwrap_or_else(|| root.clone()));
        }
        for identity in held {
            let key = (tenant.clone(), identity.index_key());
            self.step.links.insert(key, None);
            self.step.batch.unlinked.push((tenant.clone(), identity));
        }
        for customer in customers {
            self.step.batch.erased.push((tenant.clone(), customer));
        }
        Ok(())
    }

    /// Keeps a journey (or pointer) under its customer.
    fn put(&mut self, journey: Journey) {
        touch(
            &mut self.step.touched,
            &journey.tenant_id,
            &journey.customer_id,
        );
        self.ws.put(journey);
    }

    fn remove(&mut self, tenant: &TenantId, customer: &CustomerId) {
        self.ws.remove(tenant, customer);
    }

    /// The customer the event's reference names: the one a partition forwarded it for, the
    /// owner of a continuation token it
    /// brings, the id it gives, or the owner of the identity it shows (a new customer, with
    /// an id derived from the identity, if nobody owns it yet).
    fn component(&mut self, event: &Event) -> Result<CustomerId> {
        let tenant = &event.tenant_id;
        if let Some(forward) = &event.forward {
            return Ok(forward.member.clone());
        }
        if let Some(token) = continuation_token(event)
            && let Some(grant) = self.token(tenant, token)?
            && grant.admits(event.channel, event.occurred_at)
        {
            return Ok(grant.customer);
        }
        Ok(match &event.customer {
            Some(CustomerRef::Id(id)) => id.clone(),
            Some(CustomerRef::Identity(identity)) => self
                .owner(tenant, identity)?
                .unwrap_or_else(|| customer_id_for(tenant, identity)),
            None => unreachable!("only customer events are resolved"),
        })
    }

    /// Who owns an identity; the store is asked once per step.
    fn owner(
        &mut self,
        tenant: &TenantId,
        identity: &ChannelIdentity,
    ) -> Result<Option<CustomerId>> {
        let key = (tenant.clone(), identity.index_key());
        if let Some(owner) = self.step.links.get(&key) {
            return Ok(owner.clone());
        }
        let owner = self.ws.resolve(tenant, identity)?;
        self.step.links.insert(key, owner.clone());
        Ok(owner)
    }

    fn token(&mut self, tenant: &TenantId, token: &str) -> Result<Option<TokenGrant>> {
        match self.step.tokens.get(&(tenant.clone(), token.to_owned())) {
            Some(grant) => Ok(grant.clone()),
            None => self.ws.token(tenant, token),
        }
    }

    /// Follows merge pointers from `customer` to the journey that holds it.
    fn root(&mut self, tenant: &TenantId, customer: &CustomerId) -> Result<CustomerId> {
        let root = merge::walk(customer, |current| -> Result<_> {
            // Read, not changed: not announced.
            Ok(
                match (self.ws.journey(tenant, &current)?).and_then(|j| j.merged_into.clone()) {
                    Some(next) => Hop::MergedInto(next),
                    None => Hop::End(current),
                },
            )
        })?;
        root.ok_or_else(|| Error::MergeCycle {
            tenant: tenant.clone(),
            customer: customer.clone(),
        })
    }

    /// The journey of `customer`, to fold in place.
    fn load(&mut self, tenant: &TenantId, customer: &CustomerId) -> Result<Option<&mut Journey>> {
        let journey = self.ws.journey(tenant, customer)?;
        if journey.is_some() {
            touch(&mut self.step.touched, tenant, customer);
        }
        Ok(journey)
    }

    fn load_or_new(
        &mut self,
        tenant: &TenantId,
        customer: &CustomerId,
        at: rezef_events::Timestamp,
    ) -> Result<&mut Journey> {
        Ok(self.load_to_measure(tenant, customer, at)?.0)
    }

    /// The journey as [`Self::load_or_new`] gives it, with its partition's measurement.
    fn load_to_measure(
        &mut self,
        tenant: &TenantId,
        customer: &CustomerId,
        at: rezef_events::Timestamp,
    ) -> Result<(&mut Journey, Measuring<'_>)> {
        touch(&mut self.step.touched, tenant, customer);
        let new = || Journey::new(tenant.clone(), customer.clone(), at);
        self.ws.journey_to_measure(tenant, customer, new)
    }

    /// Moves `absorbed` into `survivor`; the absorbed record becomes a pointer.
    /// Indexes a merge or an unmerge also under the other customers it joined or split
    /// (`component`'s own entry comes with every event), so that each one's history shows
    /// it, even once they are apart again.
    fn index_named<const N: usize>(
        &mut self,
        tenant: &TenantId,
        named: [&CustomerId; N],
        component: &CustomerId,
        offset: u64,
    ) {
        let mut indexed: Vec<&CustomerId> = vec![component];
        for customer in named {
            if !indexed.contains(&customer) {
                indexed.push(customer);
                let entry = (tenant.clone(), customer.clone(), offset);
                self.step.batch.customer_events.push(entry);
            }
        }
    }

    fn merge(
        &mut self,
        tenant: &TenantId,
        survivor: &CustomerId,
        absorbed: &CustomerId,
        record: MergeRecord,
        at: rezef_events::Timestamp,
    ) -> Result<()> {
        let Some(taken) = self.ws.take(tenant, absorbed)? else {
            return Ok(());
        };
        let tombstone = self
            .load_or_new(tenant, survivor, at)?
            .absorb(taken, record);
        debug!(%tenant, %survivor, %absorbed, "customers merged");
        self.put(tombstone);
        Ok(())
    }
}

/// Notes that the step touched a journey (the customer is cloned only the first time).
fn touch(touched: &mut ByTenant<CustomerId, ()>, tenant: &TenantId, customer: &CustomerId) {
    touched.entry(tenant, customer).or_insert(());
}

/// What identity resolution asks of the projection, answered from the step (and through it
/// the store) for one tenant.
struct Lookup<'a, 'b, 'l> {
    step: &'a mut Folding<'b, 'l>,
    tenant: &'a TenantId,
}

impl Directory for Lookup<'_, '_, '_> {
    type Error = Error;

    fn owner(&mut self, identity: &ChannelIdentity) -> Result<Option<CustomerId>> {
        self.step.owner(self.tenant, identity)
    }

    fn root(&mut self, customer: &CustomerId) -> Result<CustomerId> {
        self.step.root(self.tenant, customer)
    }

    fn first_seen(&mut self, customer: &CustomerId) -> Result<Option<rezef_events::Timestamp>> {
        Ok((self.step.ws.journey(self.tenant, customer)?).map(|j| j.first_seen_at))
    }

    fn here(&self, customer: &CustomerId) -> bool {
        self.step.here(self.tenant, customer)
    }
}
