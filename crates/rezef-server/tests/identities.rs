//! Identities as telephony and CRMs deliver them, over real gRPC on loopback: phone numbers
//! in national and international forms per tenant region, refused numbers, and numbers that
//! identify no one (withheld caller ids, a tenant's switchboard).

mod common;

use rezef_adapter::{Client, EventFactory, identity_ref, proto};
use rezef_events::policy::{ContinuityPolicy, Policies};
use rezef_server::ServerConfig;
use tonic::Code;

use common::{Running, chat, fields, status_of};

/// Tenants in Israel, the United Kingdom and the United States, and one with no region.
fn config() -> ServerConfig {
    let tenant = |region: &str, listed: &[&str]| ContinuityPolicy {
        default_region: region.parse().ok(),
        non_identifying_numbers: listed.iter().map(|n| (*n).to_owned()).collect(),
        ..ContinuityPolicy::default()
    };
    let mut continuity = Policies::default();
    continuity
        .tenants
        .insert("il".into(), tenant("IL", &["03-555-0000"]));
    continuity.tenants.insert("uk".into(), tenant("GB", &[]));
    continuity.tenants.insert("us".into(), tenant("US", &[]));
    ServerConfig {
        continuity,
        ..ServerConfig::default()
    }
}

fn phone(value: &str) -> proto::ChannelIdentity {
    proto::ChannelIdentity {
        kind: proto::IdentityKind::Phone as i32,
        value: value.into(),
        network: String::new(),
    }
}

/// Publishes `events`; the offset of the last one.
async fn publish(client: &mut Client, events: Vec<proto::Event>) -> u64 {
    let ack = client.publish(events).await.expect("publish");
    ack.first_offset + u64::from(ack.count) - 1
}

async fn resolve(
    client: &mut Client,
    tenant: &str,
    number: &str,
    min_offset: Option<u64>,
) -> String {
    client
        .identities()
        .resolve_customer(proto::ResolveCustomerRequest {
            tenant_id: tenant.into(),
            identity: Some(phone(number)),
            min_offset,
        })
        .await
        .unwrap_or_else(|status| panic!("{tenant} {number}: {status}"))
        .into_inner()
        .customer_id
}

/// A chat whose visitor proves a number by a one-time code, as the adapter delivered it.
async fn verified_chat(client: &mut Client, tenant: &str, number: &str) -> (EventFactory, u64) {
    let chat = chat(tenant, &format!("v-{tenant}"));
    let last = publish(
        client,
        vec![
            chat.interaction_started(proto::Direction::Inbound),
            chat.intent_detected("billing.dispute", 0.9, "bot"),
            chat.identified(
                proto::VerificationMethod::OneTimeCode,
                proto::AssuranceLevel::Substantial,
                vec![phone(number)],
            ),
        ],
    )
    .await;
    (chat, last)
}

#[tokio::test]
async fn national_and_international_forms_resolve_to_the_same_customer_in_each_region() {
    let server = Running::start_with(config()).await;
    let mut client = server.client().await;
    let regions = [
        (
            "il",
            "+972501234567",
            &[
                "0501234567",
                "050-1234567",
                "972501234567",
                "tel:+972-50-123-4567",
            ][..],
        ),
        (
            "uk",
            "020 7946 0018",
            &["+44 20 7946 0018", "(020) 7946-0018", "0044 20 7946 0018"][..],
        ),
        (
            "us",
            "(201) 555-0123",
            &["+1 201 555 0123", "201.555.0123 ext. 7", "1-201-555-0123"][..],
        ),
    ];
    for (tenant, verified, forms) in regions {
        let (chat, last) = verified_chat(&mut client, tenant, verified).await;
        let visitor = resolve(&mut client, tenant, verified, Some(last)).await;
        for form in forms {
            assert_eq!(
                resolve(&mut client, tenant, form, None).await,
                visitor,
                "{tenant}: {form} is {verified}"
            );
            let answer = client
                .resume(
                    tenant,
                    identity_ref(proto::IdentityKind::Phone, *form),
                    proto::Channel::Voice,
                    None,
                )
                .await
                .expect("resume");
            assert!(answer.known, "{tenant}: {form}");
            assert_eq!(answer.customer_id, visitor);
            assert!(answer.verified.is_some(), "the chat's verification holds");
        }
        // A call from the national form is the same customer, and stored in E.164.
        let call = EventFactory::new(tenant, "pbx")
            .identity(proto::IdentityKind::Phone, forms[1])
            .on(proto::Channel::Voice, format!("call-{tenant}"));
        let offset = publish(
            &mut client,
            vec![call.interaction_started(proto::Direction::Inbound)],
        )
        .await;
        let journey = client
            .journey(tenant, chat.customer_ref(), Some(offset))
            .await
            .expect("journey")
            .journey
            .expect("a journey");
        let phones: Vec<_> = journey
            .identities
            .iter()
            .filter_map(|linked| linked.identity.as_ref())
            .filter(|identity| identity.kind == proto::IdentityKind::Phone as i32)
            .map(|identity| identity.value.clone())
            .collect();
        assert_eq!(phones.len(), 1, "{tenant}: one number, {phones:?}");
        assert!(phones[0].starts_with('+'), "{tenant}: E.164, {phones:?}");
        assert_eq!(
            journey.conversations.len(),
            1,
            "{tenant}: the call continues the chat"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn numbers_not_possible_in_the_region_are_refused_naming_the_field() {
    let server = Running::start_with(config()).await;
    let mut client = server.client().await;

    let short = EventFactory::new("il", "pbx")
        .identity(proto::IdentityKind::Phone, "050-123")
        .on(proto::Channel::Voice, "call-1");
    let status = status_of(
        client
            .publish(vec![short.interaction_started(proto::Direction::Inbound)])
            .await,
    );
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(fields(&status), ["events[0].customer.identity.value"]);
    assert!(status.message().contains("length"), "{}", status.message());

    // A tenant with no default_region takes international forms only, and says so.
    let status = client
        .identities()
        .resolve_customer(proto::ResolveCustomerRequest {
            tenant_id: "acme".into(),
            identity: Some(phone("0501234567")),
            min_offset: None,
        })
        .await
        .expect_err("no region");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(fields(&status), ["identity.value"]);
    assert!(
        status.message().contains("default_region"),
        "{}",
        status.message()
    );

    let status = status_of(
        client
            .resume(
                "us",
                identity_ref(proto::IdentityKind::Phone, "(201) 555-01"),
                proto::Channel::Voice,
                None,
            )
            .await,
    );
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(fields(&status), ["customer.identity.value"]);
    server.stop().await;
}

#[tokio::test]
async fn withheld_caller_ids_and_listed_numbers_identify_no_one() {
    let server = Running::start_with(config()).await;
    let mut client = server.client().await;
    let call = |number: &str, id: &str| {
        EventFactory::new("il", "pbx")
            .identity(proto::IdentityKind::Phone, number)
            .on(proto::Channel::Voice, id)
    };
    let mut last = 0;
    for (number, id) in [
        ("anonymous", "call-1"),
        ("Unavailable", "call-2"),
        ("03-555-0000", "call-3"),
    ] {
        let call = call(number, id);
        last = publish(
            &mut client,
            vec![
                call.interaction_started(proto::Direction::Inbound),
                call.intent_detected("booking.change", 0.8, "ivr"),
            ],
        )
        .await;
    }
    for number in ["anonymous", "withheld", "+972 3-555-0000", "035550000"] {
        let status = client
            .identities()
            .resolve_customer(proto::ResolveCustomerRequest {
                tenant_id: "il".into(),
                identity: Some(phone(number)),
                min_offset: Some(last),
            })
            .await
            .expect_err("no one");
        assert_eq!(status.code(), Code::NotFound, "{number}: {status}");
        let answer = client
            .resume(
                "il",
                identity_ref(proto::IdentityKind::Phone, number),
                proto::Channel::Voice,
                None,
            )
            .await
            .expect("resume");
        assert!(!answer.known, "{number} is no one");
    }
    // Each contact is a customer of its own, with no identity, not one shared by all.
    let tenant = rezef_events::TenantId::new("il").expect("valid");
    let mut customers = Vec::new();
    for id in ["call-1", "call-2", "call-3"] {
        let customer =
            rezef_events::unidentified::contact_customer(&tenant, &format!("interaction:{id}"));
        let journey = client
            .journey(
                "il",
                proto::CustomerRef {
                    r#ref: Some(proto::customer_ref::Ref::CustomerId(customer.to_string())),
                },
                Some(last),
            )
            .await
            .expect("the contact's journey")
            .journey
            .expect("a journey");
        assert!(
            journey.identities.is_empty(),
            "{id}: {:?}",
            journey.identities
        );
        assert_eq!(journey.conversations.len(), 1);
        customers.push(journey.customer_id);
    }
    customers.dedup();
    assert_eq!(customers.len(), 3);

    // A verification never links a number that identifies no one.
    let status = client
        .identities()
        .link_identity(proto::LinkIdentityRequest {
            tenant_id: "il".into(),
            customer_id: customers[0].clone(),
            identity: Some(phone("03-555-0000")),
            method: proto::VerificationMethod::Knowledge as i32,
            assurance: proto::AssuranceLevel::Substantial as i32,
            channel: proto::Channel::Voice as i32,
            source: "ivr".into(),
            expires_at: None,
        })
        .await
        .expect_err("never linked");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status}");
    server.stop().await;
}

#[tokio::test]
async fn language_tags_are_kept_canonical_and_bad_ones_refused() {
    let server = Running::start_with(config()).await;
    let mut client = server.client().await;
    let chat = chat("il", "v-lang");
    let started = |language: &str| {
        let mut event = chat.interaction_started(proto::Direction::Inbound);
        if let Some(proto::event::Payload::InteractionStarted(started)) = &mut event.payload {
            started.language = language.into();
        }
        event
    };
    let status = status_of(client.publish(vec![started("hebrew!")]).await);
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(fields(&status), ["events[0].interaction_started.language"]);

    let offset = publish(&mut client, vec![started("IW_il")]).await;
    let answer = client
        .resume(
            "il",
            chat.customer_ref(),
            proto::Channel::Voice,
            Some(offset),
        )
        .await
        .expect("resume");
    assert_eq!(answer.language, "he-IL");
    server.stop().await;
}
