//! Identity resolution as pure decisions: when an event shows or proves identities that
//! belong to someone else, is this contact that customer, are the two merged, is the owner's
//! partition asked to decide, or is the link refused?
//!
//! The rules live here, with no store and no I/O, so that they can be tested given/when/then
//! over a map ([`Directory`] answers what they need to know about the projection). The
//! projector (`rezef-store`) asks them and carries the decisions out: merges, claims sent to
//! other partitions, conflicts recorded on the journey.

use crate::event::{AssuranceLevel, Event, Payload, VerificationMethod};
use crate::identity::ChannelIdentity;
use crate::ids::CustomerId;
use crate::journey::MergeCause;
use crate::policy::{ContinuityPolicy, MergeRefusal};
use crate::time::Timestamp;

/// What identity resolution needs to know about the projection.
pub trait Directory {
    type Error;
    /// The customer an identity is linked to, if any.
    fn owner(&mut self, identity: &ChannelIdentity) -> Result<Option<CustomerId>, Self::Error>;
    /// The customer whose journey holds `customer` (the end of its merge pointers).
    fn root(&mut self, customer: &CustomerId) -> Result<CustomerId, Self::Error>;
    /// When the customer was first seen; `None` when it has no journey (yet).
    fn first_seen(&mut self, customer: &CustomerId) -> Result<Option<Timestamp>, Self::Error>;
    /// Whether the customer's journey lives on this partition (always, on one partition).
    fn here(&self, customer: &CustomerId) -> bool;
}

/// What to do about one identity of an event that belongs to another customer.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolution {
    /// A first contact proven to be a known customer: the event is that customer's; nobody
    /// is merged.
    IsOwner(CustomerId),
    /// The owner's journey is on another partition, which decides the merge: send it a claim.
    Claim {
        identity: ChannelIdentity,
        owner: CustomerId,
    },
    /// Merge `absorbed` into `survivor` (the one first seen earlier).
    Merge {
        survivor: CustomerId,
        absorbed: CustomerId,
        cause: MergeCause,
    },
    /// The evidence does not allow a merge: the identity stays with its owner, and the
    /// event's customer records the conflict.
    Refuse {
        identity: ChannelIdentity,
        owner: CustomerId,
        refusal: MergeRefusal,
    },
}

/// The verification an event brings, if it is one.
pub fn verification(event: &Event) -> Option<(VerificationMethod, AssuranceLevel)> {
    match &event.payload {
        Payload::CustomerIdentified {
            method, assurance, ..
        } => Some((*method, *assurance)),
        _ => None,
    }
}

/// Whether `verified` evidence lets the tenant's policy merge on `identity`.
pub fn verdict(
    verified: Option<(VerificationMethod, AssuranceLevel)>,
    policy: &ContinuityPolicy,
    identity: &ChannelIdentity,
) -> Result<(VerificationMethod, AssuranceLevel), MergeRefusal> {
    let (method, assurance) = verified.ok_or(MergeRefusal::Unverified)?;
    policy.may_merge(method, assurance, identity.kind())?;
    Ok((method, assurance))
}

/// Whether `a` survives a merge with `b`: the customer first seen earlier does (a customer
/// without a journey counts as earliest), ties broken by id, so that long-standing ids, the
/// ones other systems know, stay.
pub fn survives(a: (Option<Timestamp>, &CustomerId), b: (Option<Timestamp>, &CustomerId)) -> bool {
    a <= b
}

/// Decides, in order, what to do about each identity `event` shows or proves, for an event
/// whose customer's journey is `root`. Each decision holds for the ones after it (after a
/// merge, the survivor is the event's customer).
pub fn resolve<D: Directory>(
    event: &Event,
    root: &CustomerId,
    policy: &ContinuityPolicy,
    directory: &mut D,
) -> Result<Vec<Resolution>, D::Error> {
    let verified = verification(event);
    let mut root = root.clone();
    let mut has_journey = directory.first_seen(&root)?.is_some();
    // Merges decided here, which the directory does not know yet: absorbed → survivor.
    let mut merged: Vec<(CustomerId, CustomerId)> = Vec::new();
    let mut decisions = Vec::new();
    for identity in event.identities() {
        let Some(owner) = directory.owner(identity)? else {
            continue;
        };
        let mut owner_root = directory.root(&owner)?;
        while let Some((_, survivor)) = merged.iter().find(|(absorbed, _)| *absorbed == owner_root)
        {
            owner_root = survivor.clone();
        }
        if owner_root == root {
            continue;
        }
        let decision = match verdict(verified, policy, identity) {
            Ok(_) if !has_journey => {
                root = owner_root.clone();
                has_journey = true;
                Resolution::IsOwner(owner_root)
            }
            Ok(_) if !directory.here(&owner_root) => Resolution::Claim {
                identity: identity.clone(),
                owner: owner_root,
            },
            Ok((method, assurance)) => {
                let ours = directory.first_seen(&root)?;
                let theirs = directory.first_seen(&owner_root)?;
                let (survivor, absorbed) = if survives((ours, &root), (theirs, &owner_root)) {
                    (root.clone(), owner_root)
                } else {
                    (owner_root, root.clone())
                };
                merged.push((absorbed.clone(), survivor.clone()));
                root = survivor.clone();
                Resolution::Merge {
                    survivor,
                    absorbed,
                    cause: MergeCause::Verified {
                        method,
                        assurance,
                        identity: identity.clone(),
                    },
                }
            }
            Err(refusal) => Resolution::Refuse {
                identity: identity.clone(),
                owner: owner_root,
                refusal,
            },
        };
        decisions.push(decision);
    }
    Ok(decisions)
}
