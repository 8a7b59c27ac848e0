//! `Identities/FindCustomers` over real gRPC on loopback: customers found by a context value,
//! by a profile attribute and by the start of an identity, a page at a time, following merges
//! and unmerges, with bad queries refused naming the field.

mod common;

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rezef_adapter::proto::event::Payload;
use rezef_adapter::{Client, EventFactory, proto};
use rezef_events::policy::{ContinuityPolicy, Policies};
use rezef_server::{ServerConfig, SystemClock};
use tonic::Code;

use common::{Running, chat, fields};

fn phone(value: &str) -> proto::ChannelIdentity {
    proto::ChannelIdentity {
        kind: proto::IdentityKind::Phone as i32,
        value: value.into(),
        network: String::new(),
    }
}

fn visitor(id: &str) -> proto::ChannelIdentity {
    proto::ChannelIdentity {
        kind: proto::IdentityKind::ChatVisitor as i32,
        value: id.into(),
        network: String::new(),
    }
}

fn context(name: &str, value: &str) -> proto::find_customers_request::Query {
    proto::find_customers_request::Query::Attribute(proto::AttributeMatch {
        scope: proto::AttributeScope::Context as i32,
        name: name.into(),
        value: value.into(),
    })
}

fn profile(name: &str, value: &str) -> proto::find_customers_request::Query {
    proto::find_customers_request::Query::Attribute(proto::AttributeMatch {
        scope: proto::AttributeScope::Profile as i32,
        name: name.into(),
        value: value.into(),
    })
}

fn phones_from(prefix: &str) -> proto::find_customers_request::Query {
    proto::find_customers_request::Query::IdentityPrefix(proto::IdentityPrefix {
        kind: proto::IdentityKind::Phone as i32,
        network: String::new(),
        value_prefix: prefix.into(),
    })
}

async fn find_page(
    client: &mut Client,
    tenant: &str,
    query: proto::find_customers_request::Query,
    page_size: u32,
    page_token: &str,
) -> Result<proto::FindCustomersResponse, tonic::Status> {
    let request = proto::FindCustomersRequest {
        tenant_id: tenant.into(),
        query: Some(query),
        page_size,
        page_token: page_token.into(),
    };
    let response = client.identities().find_customers(request).await;
    response.map(tonic::Response::into_inner)
}

/// Every match as `(customer_id, matched_customer_id)`, first page only.
async fn find(
    client: &mut Client,
    tenant: &str,
    query: proto::find_customers_request::Query,
) -> Vec<(String, String)> {
    let page = find_page(client, tenant, query, 0, "").await.expect("find");
    assert!(page.next_page_token.is_empty(), "one page");
    (page.customers.into_iter())
        .map(|found| (found.customer_id, found.matched_customer_id))
        .collect()
}

/// Publishes `events`; the offset of the last one.
async fn publish(client: &mut Client, events: Vec<proto::Event>) -> u64 {
    let ack = client.publish(events).await.expect("publish");
    ack.first_offset + u64::from(ack.count) - 1
}

/// The customer an identity belongs to once the record at `min_offset` is projected.
async fn customer_of(
    client: &mut Client,
    tenant: &str,
    identity: proto::ChannelIdentity,
    min_offset: u64,
) -> String {
    let request = proto::ResolveCustomerRequest {
        tenant_id: tenant.into(),
        identity: Some(identity),
        min_offset: Some(min_offset),
    };
    let response = client.identities().resolve_customer(request).await;
    response.expect("resolve").into_inner().customer_id
}

fn attributes(chat: &EventFactory, tier: &str, language: Option<&str>) -> proto::Event {
    chat.event(Payload::CustomerAttributesSet(
        proto::CustomerAttributesSet {
            tier: Some(tier.into()),
            preferred_language: language.map(Into::into),
        },
    ))
}

#[tokio::test]
async fn a_context_value_finds_its_customer_through_merges_and_unmerges() {
    let server = Running::start_with(ServerConfig::default()).await;
    let mut client = server.client().await;
    let (dana, omer) = (chat("acme", "v-dana"), chat("acme", "v-omer"));
    let events = vec![
        dana.interaction_started(proto::Direction::Inbound),
        dana.context("order_id", "A-1001", false),
        dana.context("card", "4111111111111111", true),
        omer.interaction_started(proto::Direction::Inbound),
        omer.context("order_id", "B-2002", false),
    ];
    let last = publish(&mut client, events).await;
    // Found at once: the call waits for what was published before it.
    let order = |value: &str| context("order_id", value);
    let found = find(&mut client, "acme", order("A-1001")).await;
    let dana_id = customer_of(&mut client, "acme", visitor("v-dana"), last).await;
    let omer_id = customer_of(&mut client, "acme", visitor("v-omer"), last).await;
    assert_eq!(found, [(dana_id.clone(), dana_id.clone())]);
    assert_eq!(
        find(&mut client, "acme", order("A-1001")).await,
        [(dana_id.clone(), dana_id.clone())]
    );
    assert!(find(&mut client, "acme", order("A-100")).await.is_empty());
    assert!(
        find(&mut client, "acme", context("card", "4111111111111111"))
            .await
            .is_empty()
    );
    assert!(
        find(&mut client, "globex", order("A-1001"))
            .await
            .is_empty()
    );

    let merge = proto::MergeCustomersRequest {
        tenant_id: "acme".into(),
        survivor_customer_id: dana_id.clone(),
        absorbed_customer_id: omer_id.clone(),
        reason: "same person".into(),
        requested_by: "supervisor-1".into(),
    };
    client
        .identities()
        .merge_customers(merge)
        .await
        .expect("merge");
    let found = find_page(&mut client, "acme", order("B-2002"), 0, "").await;
    let found = found.expect("find").customers;
    assert_eq!(found.len(), 1);
    assert_eq!(
        (&found[0].customer_id, &found[0].matched_customer_id),
        (&dana_id, &omer_id)
    );
    let identities: Vec<_> = found[0]
        .identities
        .iter()
        .filter_map(|l| l.identity.clone())
        .collect();
    assert!(identities.contains(&visitor("v-omer")) && identities.contains(&visitor("v-dana")));

    let unmerge = proto::UnmergeCustomersRequest {
        tenant_id: "acme".into(),
        customer_id: dana_id.clone(),
        absorbed_customer_id: omer_id.clone(),
        reason: "two people".into(),
        requested_by: "supervisor-1".into(),
    };
    client
        .identities()
        .unmerge_customers(unmerge)
        .await
        .expect("unmerge");
    assert_eq!(
        find(&mut client, "acme", order("B-2002")).await,
        [(omer_id.clone(), omer_id)]
    );
    server.stop().await;
}

#[tokio::test]
async fn a_profile_attribute_finds_only_customers_who_have_it_now() {
    let server = Running::start_with(ServerConfig::default()).await;
    let mut client = server.client().await;
    let dana = chat("acme", "v-dana");
    let events = vec![
        dana.interaction_started(proto::Direction::Inbound),
        attributes(&dana, "gold", Some("he-IL")),
    ];
    let last = publish(&mut client, events).await;
    let dana_id = customer_of(&mut client, "acme", visitor("v-dana"), last).await;
    let gold = find_page(&mut client, "acme", profile("tier", "gold"), 0, "").await;
    let gold = gold.expect("find").customers;
    assert_eq!(gold.len(), 1);
    assert_eq!(gold[0].customer_id, dana_id);
    let attributes_now = gold[0].attributes.clone().expect("attributes");
    assert_eq!(attributes_now.tier, "gold");
    // The tag is read as BCP 47, as it was stored.
    assert_eq!(
        find(&mut client, "acme", profile("preferred_language", "HE-il")).await,
        [(dana_id.clone(), dana_id.clone())]
    );

    client
        .publish(vec![attributes(&dana, "vip", None)])
        .await
        .expect("publish");
    assert!(
        find(&mut client, "acme", profile("tier", "gold"))
            .await
            .is_empty()
    );
    assert_eq!(
        find(&mut client, "acme", profile("tier", "vip")).await,
        [(dana_id.clone(), dana_id)]
    );
    server.stop().await;
}

/// Israel, for national forms on publish.
fn israel() -> ServerConfig {
    let mut continuity = Policies::default();
    let policy = ContinuityPolicy {
        default_region: "IL".parse().ok(),
        ..ContinuityPolicy::default()
    };
    continuity.tenants.insert("il".into(), policy);
    ServerConfig {
        continuity,
        ..ServerConfig::default()
    }
}

#[tokio::test]
async fn identity_prefixes_page_through_numbers_in_order() {
    let server = Running::start_with(israel()).await;
    let mut client = server.client().await;
    let mut events = Vec::new();
    // Published in national form, out of order; a British number and a withheld caller id.
    for (n, number) in [
        "050-1234564",
        "050-1234562",
        "050-1234560",
        "050-1234563",
        "050-1234561",
    ]
    .into_iter()
    .enumerate()
    {
        let call = EventFactory::new("il", "pbx")
            .identity(proto::IdentityKind::Phone, number)
            .on(proto::Channel::Voice, format!("call-{n}"));
        events.push(call.interaction_started(proto::Direction::Inbound));
    }
    for (number, call) in [("+44 20 7946 0018", "call-uk"), ("anonymous", "call-anon")] {
        let call = EventFactory::new("il", "pbx")
            .identity(proto::IdentityKind::Phone, number)
            .on(proto::Channel::Voice, call);
        events.push(call.interaction_started(proto::Direction::Inbound));
    }
    let last = publish(&mut client, events).await;

    let mut numbers = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = find_page(&mut client, "il", phones_from("+972 50"), 2, &token).await;
        let page = page.expect("find");
        pages += 1;
        assert!(page.customers.len() <= 2);
        for found in page.customers {
            let identity = found.identity.expect("the identity found");
            let owner = customer_of(&mut client, "il", identity.clone(), last).await;
            assert_eq!(found.customer_id, owner);
            numbers.push(identity.value);
        }
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let expected: Vec<_> = (0..5).map(|n| format!("+97250123456{n}")).collect();
    assert_eq!(numbers, expected);
    assert_eq!(pages, 3);

    let everyone = find_page(&mut client, "il", phones_from("00"), 100, "").await;
    let everyone = everyone.expect("find");
    assert_eq!(
        everyone.customers.len(),
        6,
        "every number but the withheld one"
    );
    assert_eq!(
        everyone.customers[0]
            .identity
            .as_ref()
            .map(|i| i.value.as_str()),
        Some("+442079460018")
    );
    server.stop().await;
}

#[tokio::test]
async fn a_number_listed_as_identifying_no_one_is_no_longer_found() {
    let server = Running::start_with(israel()).await;
    let mut client = server.client().await;
    let hotel = EventFactory::new("il", "pbx")
        .identity(proto::IdentityKind::Phone, "03-555-0000")
        .on(proto::Channel::Voice, "call-hotel");
    let last = publish(
        &mut client,
        vec![hotel.interaction_started(proto::Direction::Inbound)],
    )
    .await;
    let guest = customer_of(&mut client, "il", phone("+97235550000"), last).await;
    let found = find(&mut client, "il", phones_from("+9723")).await;
    assert_eq!(found, [(guest.clone(), guest)]);

    // The tenant lists the hotel's switchboard: the next start reads it.
    let dir = server.stop_keeping().await;
    let mut config = israel();
    let policy = config.continuity.tenants.get_mut("il").expect("il");
    policy.non_identifying_numbers = vec!["03-555-0000".into()];
    let server = Running::start_in(config, Arc::new(SystemClock), dir).await;
    let mut client = server.client().await;
    assert!(
        find(&mut client, "il", phones_from("+9723"))
            .await
            .is_empty()
    );
    server.stop().await;
}

#[tokio::test]
async fn bad_queries_are_refused_naming_the_field() {
    let server = Running::start_with(ServerConfig::default()).await;
    let client = server.client().await;
    let refused = |result: Result<proto::FindCustomersResponse, tonic::Status>| {
        let status = result.expect_err("refused");
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        fields(&status)
    };
    let ask = |query: Option<proto::find_customers_request::Query>, token: &str| {
        let request = proto::FindCustomersRequest {
            tenant_id: "acme".into(),
            query,
            page_size: 0,
            page_token: token.into(),
        };
        let mut identities = client.identities();
        async move {
            identities
                .find_customers(request)
                .await
                .map(tonic::Response::into_inner)
        }
    };
    assert_eq!(refused(ask(None, "").await), ["query"]);
    let unscoped = proto::find_customers_request::Query::Attribute(proto::AttributeMatch {
        name: "order_id".into(),
        value: "A-1".into(),
        ..Default::default()
    });
    assert_eq!(refused(ask(Some(unscoped), "").await), ["attribute.scope"]);
    assert_eq!(
        refused(ask(Some(profile("colour", "red")), "").await),
        ["attribute.name"]
    );
    assert_eq!(
        refused(ask(Some(context("order_id", "")), "").await),
        ["attribute.value"]
    );
    assert_eq!(
        refused(ask(Some(profile("preferred_language", "not a tag!")), "").await),
        ["attribute.value"]
    );
    assert_eq!(
        refused(ask(Some(phones_from("050")), "").await),
        ["identity_prefix.value_prefix"]
    );
    let handle = proto::find_customers_request::Query::IdentityPrefix(proto::IdentityPrefix {
        kind: proto::IdentityKind::SocialHandle as i32,
        network: String::new(),
        value_prefix: "dana".into(),
    });
    assert_eq!(
        refused(ask(Some(handle), "").await),
        ["identity_prefix.network"]
    );
    assert_eq!(
        refused(ask(Some(phones_from("+972")), "%%%").await),
        ["page_token"]
    );
    // A token of another query.
    let token = URL_SAFE_NO_PAD.encode("c:order_id\0A-1\0cus-1");
    assert_eq!(
        refused(ask(Some(phones_from("+972")), &token).await),
        ["page_token"]
    );
    let no_tenant = proto::FindCustomersRequest {
        query: Some(phones_from("+972")),
        ..Default::default()
    };
    let status = client
        .identities()
        .find_customers(no_tenant)
        .await
        .expect_err("refused");
    assert_eq!(fields(&status), ["tenant_id"]);
    server.stop().await;
}
