//! Identity resolution, given/when/then over a map: no store, no log.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;

use rezef_events::event::{AssuranceLevel, Participant, Payload, VerificationMethod};
use rezef_events::journey::MergeCause;
use rezef_events::policy::{ContinuityPolicy, MergeRefusal};
use rezef_events::resolution::{Directory, Resolution, resolve};
use rezef_events::testing::EventBuilder;
use rezef_events::{ChannelIdentity, CustomerId, CustomerRef, Event, IdentityKind, Timestamp};

/// What the projection knows, as plain maps.
#[derive(Default)]
struct Given {
    owners: HashMap<String, CustomerId>,
    merged_into: HashMap<CustomerId, CustomerId>,
    first_seen: HashMap<CustomerId, Timestamp>,
    elsewhere: HashSet<CustomerId>,
}

impl Given {
    fn customer(mut self, id: &str, first_seen_ms: i64) -> Self {
        self.first_seen
            .insert(customer(id), Timestamp::from_unix_millis(first_seen_ms));
        self
    }

    fn owns(mut self, id: &str, identity: &ChannelIdentity) -> Self {
        self.owners.insert(identity.index_key(), customer(id));
        self
    }

    fn merged(mut self, absorbed: &str, survivor: &str) -> Self {
        self.merged_into
            .insert(customer(absorbed), customer(survivor));
        self
    }

    fn on_another_partition(mut self, id: &str) -> Self {
        self.elsewhere.insert(customer(id));
        self
    }

    /// When `event` about the journey of `root` is resolved under the default policy.
    fn when(mut self, event: &Event, root: &str) -> Vec<Resolution> {
        let policy = ContinuityPolicy::default();
        resolve(event, &customer(root), &policy, &mut self).expect("infallible")
    }
}

impl Directory for Given {
    type Error = Infallible;

    fn owner(&mut self, identity: &ChannelIdentity) -> Result<Option<CustomerId>, Infallible> {
        Ok(self.owners.get(&identity.index_key()).cloned())
    }

    fn root(&mut self, customer: &CustomerId) -> Result<CustomerId, Infallible> {
        let mut current = customer.clone();
        while let Some(next) = self.merged_into.get(&current) {
            current = next.clone();
        }
        Ok(current)
    }

    fn first_seen(&mut self, customer: &CustomerId) -> Result<Option<Timestamp>, Infallible> {
        Ok(self.first_seen.get(customer).copied())
    }

    fn here(&self, customer: &CustomerId) -> bool {
        !self.elsewhere.contains(customer)
    }
}

fn customer(id: &str) -> CustomerId {
    CustomerId::new(id).expect("valid")
}

fn crm(id: &str) -> ChannelIdentity {
    ChannelIdentity::new(IdentityKind::CrmId, id, None).expect("valid")
}

fn phone() -> ChannelIdentity {
    ChannelIdentity::phone("+972501234567").expect("valid")
}

fn proves(
    method: VerificationMethod,
    assurance: AssuranceLevel,
    identities: Vec<ChannelIdentity>,
) -> Event {
    EventBuilder::customer("acme", "visitor").event(Payload::CustomerIdentified {
        method,
        assurance,
        identities,
        expires_at: None,
    })
}

fn one_time_code(identities: Vec<ChannelIdentity>) -> Event {
    proves(
        VerificationMethod::OneTimeCode,
        AssuranceLevel::Substantial,
        identities,
    )
}

#[test]
fn an_identity_nobody_owns_or_the_customer_owns_already_needs_no_decision() {
    let given = Given::default()
        .customer("visitor", 5)
        .owns("visitor", &crm("A-1"));
    let decisions = given.when(&one_time_code(vec![crm("A-1"), crm("B-2")]), "visitor");
    assert_eq!(decisions, []);
}

#[test]
fn a_first_contact_proving_a_known_identity_is_that_customer() {
    let given = Given::default()
        .customer("crm-1", 5)
        .owns("crm-1", &crm("A-1"));
    let decisions = given.when(&one_time_code(vec![crm("A-1")]), "visitor");
    assert_eq!(decisions, [Resolution::IsOwner(customer("crm-1"))]);
}

#[test]
fn a_known_customer_proving_anothers_identity_merges_into_the_elder() {
    let given = Given::default()
        .customer("visitor", 1_000)
        .customer("crm-1", 5)
        .owns("crm-1", &crm("A-1"));
    let decisions = given.when(&one_time_code(vec![crm("A-1")]), "visitor");
    let [
        Resolution::Merge {
            survivor,
            absorbed,
            cause,
        },
    ] = decisions.as_slice()
    else {
        panic!("one merge: {decisions:?}");
    };
    assert_eq!((survivor.as_str(), absorbed.as_str()), ("crm-1", "visitor"));
    assert!(matches!(cause, MergeCause::Verified { identity, .. } if *identity == crm("A-1")));
}

#[test]
fn first_seen_ties_are_broken_by_id() {
    let given = Given::default()
        .customer("b", 5)
        .customer("a", 5)
        .owns("a", &crm("A-1"));
    let decisions = given.when(&one_time_code(vec![crm("A-1")]), "b");
    assert!(
        matches!(&decisions[..], [Resolution::Merge { survivor, .. }] if survivor.as_str() == "a")
    );
}

#[test]
fn weak_or_spoofable_evidence_is_refused_with_the_reason() {
    let known = || {
        Given::default()
            .customer("visitor", 1)
            .customer("crm-1", 5)
            .owns("crm-1", &crm("A-1"))
            .owns("crm-1", &phone())
    };
    let mut shown = EventBuilder::new("acme", CustomerRef::Identity(crm("A-1")))
        .message(Participant::Customer, "I am A-1");
    shown.customer = Some(CustomerRef::Identity(crm("A-1")));
    let cases = [
        (shown, crm("A-1"), MergeRefusal::Unverified),
        (
            proves(
                VerificationMethod::CallerId,
                AssuranceLevel::High,
                vec![crm("A-1")],
            ),
            crm("A-1"),
            MergeRefusal::ExcludedMethod,
        ),
        (
            proves(
                VerificationMethod::OneTimeCode,
                AssuranceLevel::Low,
                vec![crm("A-1")],
            ),
            crm("A-1"),
            MergeRefusal::WeakAssurance,
        ),
        (
            one_time_code(vec![phone()]),
            phone(),
            MergeRefusal::SharedIdentity,
        ),
    ];
    for (event, identity, refusal) in cases {
        let decisions = known().when(&event, "visitor");
        let refused = Resolution::Refuse {
            identity,
            owner: customer("crm-1"),
            refusal,
        };
        assert_eq!(decisions, [refused], "{refusal:?}");
    }
}

#[test]
fn an_owner_on_another_partition_gets_a_claim_and_decides_there() {
    let given = Given::default()
        .customer("visitor", 1)
        .owns("crm-1", &crm("A-1"))
        .on_another_partition("crm-1");
    let decisions = given.when(&one_time_code(vec![crm("A-1")]), "visitor");
    assert_eq!(
        decisions,
        [Resolution::Claim {
            identity: crm("A-1"),
            owner: customer("crm-1"),
        }]
    );
}

#[test]
fn owners_are_followed_through_merges_made_before_and_during_the_event() {
    // A-1's owner was merged into crm-1 long ago; B-2 belongs to the customer the first
    // merge of this very event absorbs, so it needs no second merge.
    let given = Given::default()
        .customer("visitor", 1_000)
        .customer("crm-1", 5)
        .customer("old", 1)
        .owns("old", &crm("A-1"))
        .merged("old", "crm-1")
        .owns("crm-1", &crm("B-2"));
    let decisions = given.when(&one_time_code(vec![crm("A-1"), crm("B-2")]), "visitor");
    assert_eq!(decisions.len(), 1, "{decisions:?}");
    assert!(
        matches!(&decisions[0], Resolution::Merge { survivor, absorbed, .. }
        if survivor.as_str() == "crm-1" && absorbed.as_str() == "visitor")
    );
}
