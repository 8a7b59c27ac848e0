//! Contacts from numbers that identify no one: a withheld caller id, the tenant's own outbound
//! line, a hotel switchboard (`ContinuityPolicy::non_identifying_numbers`). Linked like any
//! number, such a number would become one customer everybody who calls from it shares, with
//! everybody's conversations and verifications.
//!
//! So the edge sets them aside before an event is logged: an event naming its customer only
//! by such a number belongs to a customer of its own contact ([`contact_customer`]: one per
//! interaction, not one per number), an interaction started from one shows no identity, and a
//! verification drops them from what it proves. Reads by such a number resolve to no one
//! (`ContinuityPolicy::identifies`). When the caller is identified later in the contact (an
//! account number and a PIN in the IVR), the usual rules make the contact that customer's.

use crate::error::Violation;
use crate::event::{CustomerRef, Event, Payload};
use crate::ids::{CustomerId, TenantId, stable_hash};
use crate::policy::ContinuityPolicy;

/// The customer of a contact whose caller is not identified: derived from the tenant and the
/// contact's interaction (or conversation), so that every event of the contact, and a
/// rebuild, find the same one.
pub fn contact_customer(tenant: &TenantId, contact: &str) -> CustomerId {
    let hash = stable_hash(&[tenant.as_str(), "contact", contact]);
    CustomerId::new(format!("cus-contact-{}", &hash[..24])).expect("a hex id is always valid")
}

/// Sets aside the identities of `event` that identify no one under `policy` (see the module
/// documentation), or says why the event cannot do without them.
pub fn set_aside(event: &mut Event, policy: &ContinuityPolicy) -> Result<(), Vec<Violation>> {
    let mut violations = Vec::new();
    if let Some(CustomerRef::Identity(identity)) = &event.customer
        && !policy.identifies(identity)
    {
        let contact = event
            .interaction_id
            .as_ref()
            .map(|id| format!("interaction:{id}"))
            .or_else(|| (event.conversation_id.as_ref()).map(|id| format!("conversation:{id}")));
        match contact {
            Some(contact) => {
                let customer = contact_customer(&event.tenant_id, &contact);
                event.customer = Some(CustomerRef::Id(customer));
            }
            None => violations.push(Violation::new(
                "customer.identity.value",
                "identifies no one (a withheld caller id or a number the tenant lists in \
                 non_identifying_numbers): name the customer otherwise, or give the event the \
                 interaction_id of its contact",
            )),
        }
    }
    let name = event.payload.name();
    match &mut event.payload {
        Payload::InteractionStarted { identity, .. }
            if identity.as_ref().is_some_and(|i| !policy.identifies(i)) =>
        {
            *identity = None;
        }
        Payload::CustomerIdentified { identities, .. } => {
            let before = identities.len();
            identities.retain(|identity| policy.identifies(identity));
            if identities.is_empty() && before > 0 {
                violations.push(Violation::new(
                    format!("{name}.identities"),
                    "proves only numbers that identify no one (withheld caller ids or numbers \
                     the tenant lists in non_identifying_numbers)",
                ));
            }
        }
        _ => {}
    }
    if violations.is_empty() {
        Ok(())
    } else {
        Err(violations)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{ChannelIdentity, IdentityKind};
    use crate::testing::EventBuilder;

    fn policy() -> ContinuityPolicy {
        ContinuityPolicy {
            default_region: "IL".parse().ok(),
            non_identifying_numbers: vec!["03-555-0000".into()],
            ..ContinuityPolicy::default()
        }
    }

    fn phone(raw: &str) -> ChannelIdentity {
        ChannelIdentity::in_region(IdentityKind::Phone, raw, None, policy().default_region)
            .expect("valid")
    }

    fn call_from(raw: &str, interaction: &str) -> Event {
        let mut call = EventBuilder::phone("acme", "+972501234567");
        let mut event = call.started();
        event.customer = Some(CustomerRef::Identity(phone(raw)));
        event.interaction_id = crate::InteractionId::new(interaction).ok();
        if let Payload::InteractionStarted { identity, .. } = &mut event.payload {
            *identity = Some(phone(raw));
        }
        event
    }

    #[test]
    fn a_withheld_call_is_a_customer_of_its_own_contact() {
        let mut first = call_from("anonymous", "call-1");
        let mut again = call_from("Anonymous", "call-1");
        let mut second = call_from("unavailable", "call-2");
        for event in [&mut first, &mut again, &mut second] {
            set_aside(event, &policy()).expect("set aside");
            assert_eq!(event.identities().count(), 0, "no identity is shown");
        }
        assert_eq!(first.customer, again.customer);
        assert_ne!(first.customer, second.customer);
        let Some(CustomerRef::Id(customer)) = &first.customer else {
            panic!("named by id: {:?}", first.customer);
        };
        assert!(customer.as_str().starts_with("cus-contact-"));
    }

    #[test]
    fn a_listed_number_identifies_no_one_and_others_stay() {
        let mut switchboard = call_from("+972 3-555-0000", "call-3");
        set_aside(&mut switchboard, &policy()).expect("set aside");
        assert!(matches!(switchboard.customer, Some(CustomerRef::Id(_))));
        let mut caller = call_from("050-1234567", "call-4");
        let before = caller.clone();
        set_aside(&mut caller, &policy()).expect("kept");
        assert_eq!(caller, before);
    }

    #[test]
    fn without_a_contact_or_anything_proven_the_event_is_refused() {
        let mut call = call_from("anonymous", "call-5");
        call.interaction_id = None;
        call.conversation_id = None;
        let fields: Vec<_> = set_aside(&mut call, &policy())
            .expect_err("nothing to name")
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(fields, ["customer.identity.value"]);

        let mut proof = EventBuilder::phone("acme", "+972501234567")
            .identified(vec![phone("03-555-0000"), phone("050-1234567")]);
        set_aside(&mut proof, &policy()).expect("one identity left");
        assert_eq!(proof.identities().count(), 2, "the customer and one proven");
        let mut only_withheld =
            EventBuilder::phone("acme", "+972501234567").identified(vec![phone("withheld")]);
        let fields: Vec<_> = set_aside(&mut only_withheld, &policy())
            .expect_err("proves nothing")
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(fields, ["customer_identified.identities"]);
    }
}
