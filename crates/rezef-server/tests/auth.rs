//! API keys at the gRPC level, for every method the server has: the methods come from the
//! service descriptors, so one added later is covered here without anyone listing it.
//! Given keys of tenant `acme`, when each method is called without a key, with a key of
//! another role, or for tenant `globex`, then it answers `UNAUTHENTICATED` or
//! `PERMISSION_DENIED`, and a key with a role the table allows gets past both.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::Running;
use common::raw::Raw;
use futures::StreamExt;
use prost_reflect::{
    DescriptorPool, DynamicMessage, Kind, MessageDescriptor, MethodDescriptor, Value,
};
use rezef_auth::{KeyFile, NewKey, Role, Scope, access};
use rezef_server::ServerConfig;
use tonic::Code;
use tonic::transport::Channel;

/// Every `rezef.*` method the server serves.
fn methods() -> Vec<MethodDescriptor> {
    let pool = DescriptorPool::decode(rezef_proto::FILE_DESCRIPTOR_SET).expect("descriptors");
    (pool.services())
        .filter(|s| s.full_name().starts_with("rezef."))
        .flat_map(|s| s.methods().collect::<Vec<_>>())
        .collect()
}

fn path(method: &MethodDescriptor) -> String {
    format!("/{}/{}", method.parent_service().full_name(), method.name())
}

/// A request of `message`'s type naming `tenant` wherever it can (its own `tenant_id`, or
/// one element of the first field that leads to one).
fn naming(message: &MessageDescriptor, tenant: &str) -> Option<DynamicMessage> {
    let mut request = DynamicMessage::new(message.clone());
    if let Some(field) = message.get_field_by_name("tenant_id") {
        request.set_field(&field, Value::String(tenant.into()));
        return Some(request);
    }
    for field in message.fields() {
        let Kind::Message(inner) = field.kind() else {
            continue;
        };
        let Some(inner) = naming(&inner, tenant) else {
            continue;
        };
        let value = match field.is_list() {
            true => Value::List(vec![Value::Message(inner)]),
            false => Value::Message(inner),
        };
        request.set_field(&field, value);
        return Some(request);
    }
    None
}

/// What one call of `method` answered, with `key` (if any) and a request for `tenant`.
/// A call still open after a moment (a watch, a session) was let in.
async fn call(
    channel: &Channel,
    method: &MethodDescriptor,
    key: Option<&str>,
    tenant: &str,
) -> Code {
    let body = naming(&method.input(), tenant)
        .map(|m| prost::Message::encode_to_vec(&m))
        .unwrap_or_default();
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.expect("ready");
    let path: http::uri::PathAndQuery = path(method).parse().expect("path");
    let answered = async {
        let status = match (method.is_client_streaming(), method.is_server_streaming()) {
            (false, false) => grpc.unary(with_key(body, key), path, Raw).await.err(),
            (false, true) => match grpc.server_streaming(with_key(body, key), path, Raw).await {
                Ok(mut stream) => stream.get_mut().message().await.err(),
                Err(status) => Some(status),
            },
            (true, _) => {
                // The first message, then the stream stays open as a client's would.
                let messages = futures::stream::iter([body]).chain(futures::stream::pending());
                let request = with_key(messages, key);
                match grpc.streaming(request, path, Raw).await {
                    Ok(mut stream) => stream.get_mut().message().await.err(),
                    Err(status) => Some(status),
                }
            }
        };
        status.map_or(Code::Ok, |s| s.code())
    };
    tokio::time::timeout(Duration::from_millis(1500), answered)
        .await
        .unwrap_or(Code::Ok)
}

/// `message` with `key` in its `authorization` header.
fn with_key<T>(message: T, key: Option<&str>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(key) = key {
        let value = format!("Bearer {key}").parse().expect("header");
        request.metadata_mut().insert("authorization", value);
    }
    request
}

/// A key of `tenant` in `roles`; an agent key is agent `a-1`'s.
fn key_of(tenant: Scope, roles: &[Role]) -> NewKey {
    NewKey {
        agent: roles.contains(&Role::Agent).then(|| "a-1".to_owned()),
        ..NewKey::new(tenant, roles.iter().copied())
    }
}

/// A server over a data directory whose key file holds one key per role for `acme`, one of
/// every role for `acme`, and a node key; the tokens in that order.
async fn guarded() -> (Running, Vec<(BTreeSet<Role>, String)>) {
    let dir = tempfile::tempdir().expect("dir");
    let file = KeyFile::new(dir.path().join("keys.json"));
    let acme = || Scope::Tenant("acme".into());
    let mut keys = Vec::new();
    for role in Role::ALL {
        let scope = if role == Role::Node {
            Scope::All
        } else {
            acme()
        };
        let (credential, token) = file.create(key_of(scope, &[role]), 1).expect("key");
        keys.push((credential.roles, token.to_string()));
    }
    let tenant_roles: Vec<Role> = Role::ALL.into_iter().filter(|r| *r != Role::Node).collect();
    let (credential, token) = file.create(key_of(acme(), &tenant_roles), 1).expect("key");
    keys.push((credential.roles, token.to_string()));
    let clock = std::sync::Arc::new(rezef_server::SystemClock);
    (
        Running::start_in(ServerConfig::default(), clock, dir).await,
        keys,
    )
}

async fn channel(server: &Running) -> Channel {
    Channel::from_shared(format!("http://{}", server.addr))
        .expect("url")
        .connect()
        .await
        .expect("connect")
}

#[test]
fn every_method_served_is_in_the_access_table_and_no_other() {
    let served: BTreeSet<String> = methods().iter().map(path).collect();
    let table: BTreeSet<String> = access::TABLE.iter().map(|(m, _)| (*m).to_owned()).collect();
    assert_eq!(served, table);
    for method in methods() {
        let need = access::need(&path(&method)).expect("in the table");
        assert!(
            !need.tenant || naming(&method.input(), "acme").is_some(),
            "{}: a tenant check needs a tenant_id in the request",
            path(&method)
        );
    }
}

#[test]
fn the_security_guide_prints_the_access_table() {
    let guide = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/security.md"
    ))
    .expect("docs/security.md");
    for (method, need) in access::TABLE {
        let roles: Vec<&str> = need.roles.iter().map(|r| r.as_str()).collect();
        let row = format!("| `{method}` | {} |", roles.join(", "));
        assert!(guide.contains(&row), "docs/security.md lacks the row {row}");
    }
}

#[tokio::test]
async fn without_a_key_every_method_is_unauthenticated() {
    let (server, _) = guarded().await;
    let channel = channel(&server).await;
    for method in methods() {
        let code = call(&channel, &method, None, "acme").await;
        assert_eq!(code, Code::Unauthenticated, "{}", path(&method));
        let code = call(&channel, &method, Some("rzf_0000_forged"), "acme").await;
        assert_eq!(
            code,
            Code::Unauthenticated,
            "{} with an unknown key",
            path(&method)
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn a_key_of_one_tenant_reaches_no_other_by_any_method() {
    let (server, keys) = guarded().await;
    let channel = channel(&server).await;
    let (_, every_role) = keys.last().expect("the key of every role");
    for method in methods() {
        if !access::need(&path(&method)).expect("in the table").tenant {
            continue;
        }
        let code = call(&channel, &method, Some(every_role), "globex").await;
        assert_eq!(code, Code::PermissionDenied, "{} for globex", path(&method));
    }
    server.stop().await;
}

#[tokio::test]
async fn each_role_calls_exactly_the_methods_its_row_allows() {
    let (server, keys) = guarded().await;
    let channel = channel(&server).await;
    for (roles, key) in &keys[..Role::ALL.len()] {
        for method in methods() {
            let need = access::need(&path(&method)).expect("in the table");
            let allowed = need.roles.iter().any(|r| roles.contains(r));
            let code = call(&channel, &method, Some(key), "acme").await;
            let let_in = !matches!(code, Code::PermissionDenied | Code::Unauthenticated);
            assert_eq!(
                let_in,
                allowed,
                "{} with {roles:?}: {code:?}",
                path(&method)
            );
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn a_key_file_that_appears_while_serving_closes_the_server_and_a_revocation_needs_no_restart()
{
    let dir = tempfile::tempdir().expect("dir");
    let file = KeyFile::new(dir.path().join("keys.json"));
    let clock = std::sync::Arc::new(rezef_server::SystemClock);
    let server = Running::start_in(ServerConfig::default(), clock, dir).await;
    let channel = channel(&server).await;
    let get = methods()
        .into_iter()
        .find(|m| m.name() == "GetJourney")
        .expect("GetJourney");
    let let_in = |code: Code| !matches!(code, Code::Unauthenticated | Code::PermissionDenied);
    // No key file: everyone is let in (the request is then found wanting, not refused).
    assert!(let_in(call(&channel, &get, None, "acme").await));

    let (credential, token) = file
        .create(key_of(Scope::Tenant("acme".into()), &[Role::Channel]), 1)
        .expect("key");
    let token = token.to_string();
    let eventually = |want: fn(Code) -> bool, key: Option<String>| {
        let (channel, get) = (channel.clone(), get.clone());
        async move {
            for _ in 0..50 {
                if want(call(&channel, &get, key.as_deref(), "acme").await) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("the key file's change never took effect");
        }
    };
    let unauthenticated = |code| code == Code::Unauthenticated;
    eventually(unauthenticated, None).await;
    assert!(let_in(call(&channel, &get, Some(&token), "acme").await));
    file.revoke(&credential.id).expect("revoked");
    eventually(unauthenticated, Some(token)).await;
    server.stop().await;
}

#[tokio::test]
async fn without_keys_only_loopback_is_served_unless_insecure() {
    let dir = tempfile::tempdir().expect("dir");
    let open = |insecure: bool| {
        let mut config = ServerConfig {
            listen: "0.0.0.0:0".parse().expect("addr"),
            data_dir: dir.path().to_path_buf(),
            ..ServerConfig::default()
        };
        config.auth.insecure = insecure;
        config.dashboard.listen.set_port(0);
        rezef_server::Server::open(config)
    };
    let refused = open(false).await.expect_err("no keys on every address");
    assert!(
        refused.to_string().contains("without API keys"),
        "{refused}"
    );
    drop(open(true).await.expect("insecure, as asked"));

    let file = KeyFile::new(dir.path().join("keys.json"));
    file.create(key_of(Scope::Tenant("acme".into()), &[Role::Adapter]), 1)
        .expect("key");
    drop(open(false).await.expect("keys: any address"));
}

#[tokio::test]
async fn an_adapter_key_with_sources_publishes_as_those_only() {
    let dir = tempfile::tempdir().expect("dir");
    let file = KeyFile::new(dir.path().join("keys.json"));
    let ivr_only = NewKey {
        sources: vec!["ivr".into()],
        ..key_of(Scope::Tenant("acme".into()), &[Role::Adapter])
    };
    let (_, token) = file.create(ivr_only, 1).expect("key");
    let clock = std::sync::Arc::new(rezef_server::SystemClock);
    let server = Running::start_in(ServerConfig::default(), clock, dir).await;
    let mut client = server
        .client()
        .await
        .with_token(token.to_string())
        .expect("a key");
    let started = |source: &str| {
        rezef_adapter::EventFactory::new("acme", source)
            .customer("c-1")
            .on(
                rezef_adapter::proto::Channel::Voice,
                format!("call-{source}"),
            )
            .interaction_started(rezef_adapter::proto::Direction::Inbound)
    };
    client
        .publish(vec![started("ivr")])
        .await
        .expect("its own source");
    let refused = client
        .publish(vec![started("ivr"), started("web-chat")])
        .await;
    let status = common::status_of(refused);
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(status.message().contains("source `web-chat`"), "{status:?}");
    server.stop().await;
}

fn limited(calls_per_second: u32, burst: u32, streams: u32) -> NewKey {
    NewKey {
        limits: Some(rezef_auth::Limits {
            calls_per_second,
            burst,
            streams,
        }),
        ..key_of(
            Scope::Tenant("acme".into()),
            &[Role::Adapter, Role::Channel],
        )
    }
}

#[tokio::test]
async fn a_key_over_its_rate_is_told_when_to_retry_and_other_keys_go_on() {
    let noisy = limited(1, 3, 10);
    let quiet = key_of(Scope::Tenant("acme".into()), &[Role::Channel]);
    let (server, tokens) = Running::with_keys(vec![noisy, quiet]).await;
    let channel = channel(&server).await;
    let get = methods()
        .into_iter()
        .find(|m| m.name() == "GetJourney")
        .expect("GetJourney");
    for _ in 0..3 {
        let code = call(&channel, &get, Some(&tokens[0]), "acme").await;
        assert!(
            !matches!(code, Code::ResourceExhausted | Code::PermissionDenied),
            "{code:?}"
        );
    }
    let mut client = server
        .client()
        .await
        .with_token(tokens[0].clone())
        .expect("key");
    let customer =
        rezef_adapter::identity_ref(rezef_adapter::proto::IdentityKind::Phone, "+972501234567");
    // The burst is spent; a token comes back each second, so of a few calls made at once
    // at least one is refused, however slow this machine.
    let mut refused = None;
    for _ in 0..5 {
        if let Err(rezef_adapter::Error::Status(status)) =
            client.journey("acme", customer.clone(), None).await
            && status.code() == Code::ResourceExhausted
        {
            refused = Some(status);
            break;
        }
    }
    let status = refused.expect("a call over the rate is refused");
    let retry = tonic_types::StatusExt::get_details_retry_info(&status).expect("retry info");
    let delay = retry.retry_delay.expect("a delay");
    assert!(
        delay > Duration::ZERO && delay <= Duration::from_secs(1),
        "{delay:?}"
    );

    let mut other = server
        .client()
        .await
        .with_token(tokens[1].clone())
        .expect("key");
    let answer = other.journey("acme", customer, None).await;
    assert!(
        !matches!(&answer, Err(rezef_adapter::Error::Status(s)) if s.code() == Code::ResourceExhausted),
        "{answer:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_key_at_its_stream_limit_opens_another_once_one_closes() {
    let (server, tokens) = Running::with_keys(vec![limited(1_000, 1_000, 1)]).await;
    let mut client = server
        .client()
        .await
        .with_token(tokens[0].clone())
        .expect("key");
    let visitor = common::chat("acme", "v-1");
    let ack = client
        .publish(vec![
            visitor.interaction_started(rezef_adapter::proto::Direction::Inbound),
        ])
        .await
        .expect("published");
    // Projected first: a watch of a customer not yet known would end at once.
    (client
        .journey("acme", visitor.customer_ref(), Some(ack.first_offset))
        .await)
        .expect("projected");
    let watch = |client: &rezef_adapter::Client| {
        let request = rezef_adapter::proto::WatchJourneyRequest {
            tenant_id: "acme".into(),
            customer: Some(visitor.customer_ref()),
            from_offset: None,
        };
        let mut journeys = client.journeys();
        async move { journeys.watch_journey(request).await }
    };
    let mut first = watch(&client).await.expect("the first stream").into_inner();
    first
        .message()
        .await
        .expect("the journey")
        .expect("an update");
    let second = watch(&client).await;
    let status = second.expect_err("over the limit");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    drop(first);
    let mut opened = false;
    for _ in 0..50 {
        if watch(&client).await.is_ok() {
            opened = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(opened, "the closed stream's place was never given back");
    server.stop().await;
}
