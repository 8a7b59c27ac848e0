//! The API key given to a [`Client`] reaches the server on every call: through the wrapped
//! methods, the generated clients the accessors hand out and an agent session alike. A
//! server that answers every method `UNIMPLEMENTED` records the `authorization` header of
//! each call it gets.

use std::sync::{Arc, Mutex};

use rezef_adapter::{AgentSession, Client, Error, identity_ref, proto};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::service::{InterceptorLayer, Routes};
use tonic::transport::Server;

const TOKEN: &str = "rzf_0a1b2c_5ec7e7";

/// The `authorization` header of each call, in order (`None`: the call had none).
type Seen = Arc<Mutex<Vec<Option<String>>>>;

/// A server of no service at all, recording headers; returns its address.
async fn recording_server(seen: Seen) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let addr = listener.local_addr().expect("bound");
    let record = move |request: tonic::Request<()>| {
        let header = (request.metadata().get("authorization"))
            .map(|value| value.to_str().unwrap_or("(not ASCII)").to_owned());
        seen.lock().expect("not poisoned").push(header);
        Ok(request)
    };
    let router = Server::builder()
        .layer(InterceptorLayer::new(record))
        .add_routes(Routes::default());
    tokio::spawn(router.serve_with_incoming(TcpListenerStream::new(listener)));
    format!("http://{addr}")
}

/// One call of each kind; each reaches the server, which knows none of them.
async fn call_everything(client: &mut Client) -> usize {
    let unimplemented = |result: Result<(), Error>, what: &str| match result {
        Err(Error::Status(status)) if status.code() == tonic::Code::Unimplemented => {}
        other => panic!("{what}: expected UNIMPLEMENTED from the server, got {other:?}"),
    };
    let customer = || identity_ref(proto::IdentityKind::Phone, "+972501234567");
    let identity = proto::ChannelIdentity {
        kind: proto::IdentityKind::Phone as i32,
        value: "+972501234567".into(),
        network: String::new(),
    };

    unimplemented(client.publish(Vec::new()).await.map(drop), "publish");
    let journey = client.journey("acme", customer(), None).await;
    unimplemented(journey.map(drop), "journey");
    let resume = (client.resume("acme", customer(), proto::Channel::Voice, None)).await;
    unimplemented(resume.map(drop), "resume");
    unimplemented(
        client.resolve("acme", identity, None).await.map(drop),
        "resolve",
    );
    let replay = client.replay(proto::ReplayHistoryRequest::default()).await;
    unimplemented(replay.map(drop), "replay");

    let request = proto::PublishRequest::default();
    let ingest = client.ingest().publish(request).await;
    unimplemented(ingest.map(drop).map_err(Error::from), "ingest()");
    let request = proto::GetJourneyRequest::default();
    let journeys = client.journeys().get_journey(request).await;
    unimplemented(journeys.map(drop).map_err(Error::from), "journeys()");
    let request = proto::ResolveCustomerRequest::default();
    let identities = client.identities().resolve_customer(request).await;
    unimplemented(identities.map(drop).map_err(Error::from), "identities()");
    let request = proto::GetQueueStatsRequest::default();
    let routing = client.routing().get_queue_stats(request).await;
    unimplemented(routing.map(drop).map_err(Error::from), "routing()");
    let request = proto::ReplayHistoryRequest::default();
    let audit = client.audit().replay_history(request).await;
    unimplemented(audit.map(drop).map_err(Error::from), "audit()");

    let profile = proto::AgentProfile {
        agent_id: "agent-1".into(),
        ..Default::default()
    };
    let session = AgentSession::login(client, "acme", profile, None).await;
    unimplemented(session.map(drop), "agent session");
    11
}

#[tokio::test]
async fn every_call_carries_the_api_key() {
    let seen = Seen::default();
    let addr = recording_server(seen.clone()).await;
    let mut client = (Client::connect(addr).await.expect("connects"))
        .with_token(TOKEN)
        .expect("a well-formed key");
    assert!(
        !format!("{client:?}").contains("5ec7e7"),
        "the key's secret stays out of logs: {client:?}"
    );

    let calls = call_everything(&mut client).await;
    let seen = seen.lock().expect("not poisoned").clone();
    let bearer = format!("Bearer {TOKEN}");
    assert_eq!(seen, vec![Some(bearer); calls]);
}

#[tokio::test]
async fn a_client_without_a_key_sends_no_authorization() {
    let seen = Seen::default();
    let addr = recording_server(seen.clone()).await;
    let mut client = Client::connect(addr).await.expect("connects");
    let calls = call_everything(&mut client).await;
    assert_eq!(*seen.lock().expect("not poisoned"), vec![None; calls]);
}

#[tokio::test]
async fn a_key_that_is_no_header_value_is_refused_before_any_call() {
    let seen = Seen::default();
    let addr = recording_server(seen.clone()).await;
    let client = Client::connect(addr).await.expect("connects");
    for bad in [
        "",
        "rzf_ab_c d",
        "rzf_ab_cd\n",
        "rzf_ab_cé",
        "rzf_ab_\u{7f}",
    ] {
        match client.clone().with_token(bad) {
            Err(error @ Error::Token(_)) => {
                assert!(!error.is_retryable());
                assert!(error.to_string().contains("API key"), "{error}");
            }
            other => panic!("{bad:?}: expected a refusal, got {other:?}"),
        }
    }
    assert!(seen.lock().expect("not poisoned").is_empty());
}

#[tokio::test]
async fn a_call_that_sets_its_own_authorization_keeps_it() {
    let seen = Seen::default();
    let addr = recording_server(seen.clone()).await;
    let client = (Client::connect(addr).await.expect("connects"))
        .with_token(TOKEN)
        .expect("a well-formed key");
    let mut request = tonic::Request::new(proto::GetJourneyRequest::default());
    let other = "Bearer rzf_other_key".parse().expect("a header value");
    request.metadata_mut().insert("authorization", other);
    let answer = client.journeys().get_journey(request).await;
    assert!(answer.is_err_and(|status| status.code() == tonic::Code::Unimplemented));
    let seen = seen.lock().expect("not poisoned").clone();
    assert_eq!(seen, vec![Some("Bearer rzf_other_key".to_owned())]);
}
