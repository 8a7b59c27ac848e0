//! The services over real gRPC on loopback, with a real log and store in a temp dir.

mod common;

use futures::StreamExt;
use rezef_adapter::{Client, EventFactory, identity_ref, proto};
use rezef_server::Limits;

use common::{Running, chat, status_of};
use tonic::Code;
use tonic_types::StatusExt;

#[tokio::test]
async fn published_events_are_projected_and_served() {
    let server = Running::start(Limits::default()).await;
    let mut client = server.client().await;
    let chat = chat("acme", "v-1");
    let ack = client
        .publish(vec![
            chat.interaction_started(proto::Direction::Inbound),
            chat.intent_detected("billing.dispute", 0.9, "bot"),
            chat.context("invoice", "INV-7", false),
            chat.context("card", "4111111111111111", true),
        ])
        .await
        .expect("publish");
    assert_eq!((ack.first_offset, ack.count), (0, 4));
    assert!(ack.recorded_at.is_some());

    let response = client
        .journey("acme", chat.customer_ref(), Some(ack.first_offset + 3))
        .await
        .expect("journey");
    assert!(response.projected_offset >= 4);
    let journey = response.journey.expect("journey");
    let conversation = &journey.conversations[0];
    assert_eq!(
        conversation.intent.as_ref().map(|i| i.intent.as_str()),
        Some("billing.dispute")
    );
    let context: Vec<_> = conversation
        .context
        .iter()
        .map(|c| (c.key.as_str(), c.value.as_str()))
        .collect();
    assert_eq!(context, [("card", "****"), ("invoice", "INV-7")]);
    assert_eq!(journey.counters.expect("counters").events, 4);
    server.stop().await;
}

#[tokio::test]
async fn an_invalid_event_names_index_and_field_and_writes_nothing() {
    let server = Running::start(Limits::default()).await;
    let mut client = server.client().await;
    let good = chat("acme", "v-1");
    let bad = EventFactory::new("acme", "voice")
        .identity(proto::IdentityKind::Phone, "050-1234567")
        .on(proto::Channel::Voice, "call-1");
    let status = match client
        .publish(vec![
            good.interaction_started(proto::Direction::Inbound),
            bad.interaction_started(proto::Direction::Inbound),
        ])
        .await
    {
        Err(rezef_adapter::Error::Status(status)) => status,
        other => panic!("expected a status, got {other:?}"),
    };
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status
            .message()
            .contains("events[1].customer.identity.value"),
        "{}",
        status.message()
    );
    let details = status
        .get_details_bad_request()
        .expect("BadRequest details");
    assert_eq!(
        details.field_violations[0].field,
        "events[1].customer.identity.value"
    );

    // Nothing of that batch was written: the next batch starts at offset 0.
    let ack = client
        .publish(vec![good.interaction_started(proto::Direction::Inbound)])
        .await
        .expect("publish");
    assert_eq!(ack.first_offset, 0);
    server.stop().await;
}

#[tokio::test]
async fn missing_fields_and_empty_batches_are_invalid_arguments() {
    let server = Running::start(Limits::default()).await;
    let mut client = server.client().await;
    let mut event = chat("acme", "v-1").interaction_started(proto::Direction::Inbound);
    event.occurred_at = None;
    event.tenant_id.clear();
    let status = status_of(client.publish(vec![event]).await);
    assert_eq!(status.code(), Code::InvalidArgument);
    let fields: Vec<_> = status
        .get_details_bad_request()
        .expect("details")
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert!(
        fields.contains(&"events[0].occurred_at".to_owned()),
        "{fields:?}"
    );
    assert!(
        fields.contains(&"events[0].tenant_id".to_owned()),
        "{fields:?}"
    );

    assert_eq!(
        status_of(client.publish(vec![]).await).code(),
        Code::InvalidArgument
    );
    server.stop().await;
}

/// Publishes the start of `chat`'s interaction and waits until it is projected.
async fn start_and_project(client: &mut Client, chat: &EventFactory) -> proto::GetJourneyResponse {
    let ack = client
        .publish(vec![chat.interaction_started(proto::Direction::Inbound)])
        .await
        .expect("publish");
    client
        .journey("acme", chat.customer_ref(), Some(ack.first_offset))
        .await
        .expect("projected")
}

#[tokio::test]
async fn oversized_batches_and_messages_are_resource_exhausted() {
    let limits = Limits {
        max_batch_events: 10,
        max_message_bytes: 64 * 1024,
        ..Limits::default()
    };
    let server = Running::start(limits).await;
    let mut client = server.client().await;
    let chat = chat("acme", "v-1");
    let many: Vec<_> = (0..11)
        .map(|_| chat.message(proto::Participant::Customer, "hi"))
        .collect();
    let status = status_of(client.publish(many).await);
    assert_eq!(
        status.code(),
        Code::ResourceExhausted,
        "{}",
        status.message()
    );

    let huge = vec![chat.message(proto::Participant::Customer, &"x".repeat(100 * 1024))];
    let status = status_of(client.publish(huge).await);
    assert_eq!(
        status.code(),
        Code::ResourceExhausted,
        "{}",
        status.message()
    );

    // One event over `max_event_bytes` (as sent) in a message under its limit.
    let limits = Limits {
        max_event_bytes: 2048,
        ..Limits::default()
    };
    let small = Running::start(limits).await;
    let mut small_client = small.client().await;
    let long = vec![chat.message(proto::Participant::Customer, &"x".repeat(3000))];
    let status = status_of(small_client.publish(long).await);
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(
        status.message().contains("an event is"),
        "{}",
        status.message()
    );
    let fits = vec![chat.message(proto::Participant::Customer, &"x".repeat(1500))];
    small_client.publish(fits).await.expect("under the limit");
    small.stop().await;

    // The server is fine afterwards.
    client
        .publish(vec![chat.message(proto::Participant::Customer, "hi")])
        .await
        .expect("a normal batch still works");
    server.stop().await;
}

#[tokio::test]
async fn unknown_customers_and_other_tenants_are_not_found() {
    let server = Running::start(Limits::default()).await;
    let mut client = server.client().await;
    let chat = chat("acme", "v-1");
    let journey = start_and_project(&mut client, &chat).await;
    let customer_id = journey.journey.expect("journey").customer_id;

    let unknown = identity_ref(proto::IdentityKind::ChatVisitor, "v-unknown");
    assert_eq!(
        status_of(client.journey("acme", unknown, None).await).code(),
        Code::NotFound
    );
    // Another tenant sees neither the identity nor the customer id.
    assert_eq!(
        status_of(client.journey("globex", chat.customer_ref(), None).await).code(),
        Code::NotFound
    );
    let by_id = proto::CustomerRef {
        r#ref: Some(proto::customer_ref::Ref::CustomerId(customer_id)),
    };
    assert_eq!(
        status_of(client.journey("globex", by_id, None).await).code(),
        Code::NotFound
    );
    // A malformed request is not a NOT_FOUND.
    let status = status_of(
        client
            .journey("acme", proto::CustomerRef { r#ref: None }, None)
            .await,
    );
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("customer"));
    // Waiting for an offset that does not exist.
    assert_eq!(
        status_of(client.journey("acme", chat.customer_ref(), Some(99)).await).code(),
        Code::OutOfRange
    );
    server.stop().await;
}

#[tokio::test]
async fn replay_returns_original_events_per_customer_and_tenant() {
    let server = Running::start(Limits::default()).await;
    let mut client = server.client().await;
    let (a, b, other) = (chat("acme", "a"), chat("acme", "b"), chat("globex", "a"));
    let mut published = Vec::new();
    for factory in [&a, &b, &other, &a] {
        let event = factory.message(proto::Participant::Customer, "hello");
        published.push(event.clone());
        client.publish(vec![event]).await.expect("publish");
    }
    let replay = |customer: Option<proto::CustomerRef>, tenant: &str, from: Option<u64>| {
        proto::ReplayHistoryRequest {
            tenant_id: tenant.into(),
            customer,
            from_offset: from,
            ..Default::default()
        }
    };
    let collect = |mut client: Client, request| async move {
        let stream = client.replay(request).await?;
        let items: Vec<_> = stream.collect().await;
        items.into_iter().collect::<Result<Vec<_>, _>>()
    };
    let offsets =
        |items: Vec<proto::ReplayedEvent>| items.iter().map(|e| e.offset).collect::<Vec<_>>();

    let all_acme = collect(client.clone(), replay(None, "acme", None))
        .await
        .expect("replay");
    assert_eq!(offsets(all_acme.clone()), [0, 1, 3]);
    let first = all_acme[0].event.clone().expect("event");
    assert_eq!(first.event_id, published[0].event_id);
    assert_eq!(first.occurred_at, published[0].occurred_at);
    assert!(first.recorded_at.is_some());

    let only_a = collect(client.clone(), replay(Some(a.customer_ref()), "acme", None))
        .await
        .expect("a");
    assert_eq!(offsets(only_a), [0, 3]);
    let a_from_1 = collect(
        client.clone(),
        replay(Some(a.customer_ref()), "acme", Some(1)),
    )
    .await
    .expect("a");
    assert_eq!(offsets(a_from_1), [3]);
    let globex = collect(client.clone(), replay(None, "globex", None))
        .await
        .expect("globex");
    assert_eq!(offsets(globex), [2]);

    let mut bad = replay(None, "acme", Some(3));
    bad.to_offset = Some(1);
    let status = status_of(collect(client.clone(), bad).await);
    assert_eq!(status.code(), Code::InvalidArgument);
    let mut beyond = replay(None, "acme", None);
    beyond.to_offset = Some(1000);
    assert_eq!(
        status_of(collect(client.clone(), beyond).await).code(),
        Code::OutOfRange
    );
    // Starting past the end (4 events logged) is out of range too, not a malformed request.
    let past_the_end = replay(None, "acme", Some(5));
    assert_eq!(
        status_of(collect(client.clone(), past_the_end).await).code(),
        Code::OutOfRange
    );
    let unknown = identity_ref(proto::IdentityKind::ChatVisitor, "nobody");
    assert_eq!(
        status_of(collect(client.clone(), replay(Some(unknown), "acme", None)).await).code(),
        Code::NotFound
    );
    server.stop().await;
}

#[tokio::test]
async fn watchers_see_the_journey_and_then_every_change() {
    let server = Running::start(Limits::default()).await;
    let mut client = server.client().await;
    let chat = chat("acme", "v-1");
    start_and_project(&mut client, &chat).await;

    let mut watch = client
        .journeys()
        .watch_journey(proto::WatchJourneyRequest {
            from_offset: None,
            tenant_id: "acme".into(),
            customer: Some(chat.customer_ref()),
        })
        .await
        .expect("watch")
        .into_inner();
    let first = watch.next().await.expect("an update").expect("ok");
    assert_eq!(
        first.journey.and_then(|j| j.counters).map(|c| c.events),
        Some(1)
    );

    client
        .publish(vec![chat.intent_detected("billing", 0.8, "bot")])
        .await
        .expect("publish");
    let second = watch.next().await.expect("an update").expect("ok");
    let journey = second.journey.expect("journey");
    assert_eq!(journey.counters.map(|c| c.events), Some(2));
    assert_eq!(
        journey.conversations[0]
            .intent
            .as_ref()
            .map(|i| i.intent.as_str()),
        Some("billing")
    );
    server.stop().await;
}

#[tokio::test]
async fn the_publish_stream_acks_in_order_and_survives_a_rejected_batch() {
    let server = Running::start(Limits::default()).await;
    let client = server.client().await;
    let chat = chat("acme", "v-1");
    let mut bad = chat.message(proto::Participant::Customer, "x");
    bad.event_id = "has spaces".into();
    let requests = vec![
        proto::PublishRequest {
            events: vec![chat.message(proto::Participant::Customer, "1")],
            sequence: 10,
        },
        proto::PublishRequest {
            events: vec![bad],
            sequence: 11,
        },
        proto::PublishRequest {
            events: vec![chat.message(proto::Participant::Customer, "2")],
            sequence: 12,
        },
    ];
    let responses: Vec<_> = client
        .ingest()
        .publish_stream(futures::stream::iter(requests))
        .await
        .expect("stream")
        .into_inner()
        .collect()
        .await;
    let responses: Vec<_> = responses
        .into_iter()
        .collect::<Result<_, _>>()
        .expect("all answered");
    let sequences: Vec<_> = responses.iter().map(|r| r.sequence).collect();
    assert_eq!(sequences, [10, 11, 12]);
    use proto::publish_stream_response::Result as R;
    assert!(matches!(&responses[0].result, Some(R::Ack(ack)) if ack.first_offset == 0));
    match &responses[1].result {
        Some(R::Rejected(rejection)) => {
            assert_eq!(rejection.code, Code::InvalidArgument as i32);
            assert_eq!(rejection.violations[0].field, "events[0].event_id");
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert!(matches!(&responses[2].result, Some(R::Ack(ack)) if ack.first_offset == 1));
    server.stop().await;
}

#[tokio::test]
async fn health_and_reflection_are_served() {
    let server = Running::start(Limits::default()).await;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", server.addr))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "rezef.v1.Ingest".into(),
        })
        .await
        .expect("check")
        .into_inner();
    assert_eq!(
        status.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let mut reflection = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .expect("reflection")
        .into_inner();
    let response = responses.next().await.expect("a response").expect("ok");
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("expected a service list");
    };
    let names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    for name in [
        "rezef.v1.Ingest",
        "rezef.v1.Journeys",
        "rezef.v1.Audit",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.contains(&name.to_owned()),
            "{name} missing from {names:?}"
        );
    }
    server.stop().await;
}

/// grpcio's reflection client (Python) and other older tools speak only `v1alpha`.
#[tokio::test]
async fn reflection_answers_v1alpha_clients_too() {
    use tonic_reflection::pb::v1alpha::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let server = Running::start(Limits::default()).await;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", server.addr))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let mut reflection = ServerReflectionClient::new(channel);
    let requests = [
        MessageRequest::ListServices(String::new()),
        MessageRequest::FileContainingSymbol("rezef.v1.Routing".into()),
    ]
    .map(|message| ServerReflectionRequest {
        host: String::new(),
        message_request: Some(message),
    });
    let mut responses = reflection
        .server_reflection_info(futures::stream::iter(requests))
        .await
        .expect("v1alpha reflection")
        .into_inner();
    let listed = responses.next().await.expect("a list").expect("ok");
    let Some(MessageResponse::ListServicesResponse(list)) = listed.message_response else {
        panic!("expected a service list, got {listed:?}");
    };
    let names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    assert!(names.contains(&"rezef.v1.Routing".to_owned()), "{names:?}");
    let file = responses.next().await.expect("a file").expect("ok");
    let Some(MessageResponse::FileDescriptorResponse(files)) = file.message_response else {
        panic!("expected the file of rezef.v1.Routing, got {file:?}");
    };
    let descriptor = <prost_types::FileDescriptorProto as prost::Message>::decode(
        files.file_descriptor_proto[0].as_slice(),
    )
    .expect("a file descriptor");
    assert!(
        (descriptor.service.iter()).any(|service| service.name() == "Routing"),
        "{:?}",
        descriptor.name
    );
    server.stop().await;
}

#[tokio::test]
async fn shutdown_ends_open_streams_instead_of_waiting_for_them() {
    let server = Running::start(Limits::default()).await;
    let mut client = server.client().await;
    let chat = chat("acme", "v-1");
    start_and_project(&mut client, &chat).await;
    // A publish stream and a watch that the client never closes.
    let (requests, pending) = tokio::sync::mpsc::channel(1);
    requests
        .send(proto::PublishRequest {
            events: vec![chat.message(proto::Participant::Customer, "still here")],
            sequence: 1,
        })
        .await
        .expect("queued");
    let mut publishing = client
        .ingest()
        .publish_stream(tokio_stream::wrappers::ReceiverStream::new(pending))
        .await
        .expect("stream")
        .into_inner();
    publishing.next().await.expect("an ack").expect("ok");
    let _watch = client
        .journeys()
        .watch_journey(proto::WatchJourneyRequest {
            from_offset: None,
            tenant_id: "acme".into(),
            customer: Some(chat.customer_ref()),
        })
        .await
        .expect("watch");
    tokio::time::timeout(std::time::Duration::from_secs(10), server.stop())
        .await
        .expect("the server stops although clients keep their streams open");
    drop(requests);
}

#[tokio::test]
async fn watch_and_replay_validate_their_requests() {
    let server = Running::start(Limits::default()).await;
    let client = server.client().await;
    let watch = |tenant: &str, customer: Option<proto::CustomerRef>| proto::WatchJourneyRequest {
        from_offset: None,
        tenant_id: tenant.into(),
        customer,
    };
    fn code<T>(result: Result<T, tonic::Status>) -> Code {
        match result {
            Ok(_) => panic!("expected an error"),
            Err(status) => status.code(),
        }
    }
    let visitor = identity_ref(proto::IdentityKind::ChatVisitor, "v-1");
    let mut journeys = client.journeys();
    assert_eq!(
        code(
            journeys
                .watch_journey(watch("", Some(visitor.clone())))
                .await
        ),
        Code::InvalidArgument
    );
    assert_eq!(
        code(journeys.watch_journey(watch("acme", None)).await),
        Code::InvalidArgument
    );
    assert_eq!(
        code(journeys.watch_journey(watch("acme", Some(visitor))).await),
        Code::NotFound
    );

    let mut audit = client.audit();
    let replay = proto::ReplayHistoryRequest {
        tenant_id: "not a tenant!".into(),
        ..Default::default()
    };
    assert_eq!(
        code(audit.replay_history(replay).await),
        Code::InvalidArgument
    );
    let bad_time = proto::ReplayHistoryRequest {
        tenant_id: "acme".into(),
        from_time: Some(prost_types::Timestamp {
            seconds: 0,
            nanos: -1,
        }),
        ..Default::default()
    };
    let status = audit.replay_history(bad_time).await.expect_err("bad nanos");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("from_time"),
        "{}",
        status.message()
    );
    // The embedded log is one partition: 0.
    let no_such_partition = proto::ReplayHistoryRequest {
        tenant_id: "acme".into(),
        partition: Some(1),
        ..Default::default()
    };
    let status = audit
        .replay_history(no_such_partition)
        .await
        .expect_err("partition 1");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("partition") && status.message().contains("below 1"),
        "{}",
        status.message()
    );
    server.stop().await;
}

#[tokio::test]
async fn bytes_that_are_not_a_request_are_the_callers_mistake() {
    let server = Running::start(Limits::default()).await;
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", server.addr))
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let call = |body: Vec<u8>| {
        let mut grpc = tonic::client::Grpc::new(channel.clone());
        async move {
            grpc.ready().await.expect("ready");
            let path = "/rezef.v1.Journeys/GetJourney".parse().expect("path");
            let answer = grpc.unary(tonic::Request::new(body), path, common::raw::Raw);
            answer.await.expect_err("refused")
        }
    };
    // A string field cut short, and one holding invalid UTF-8.
    for body in [vec![0x0a, 0x09, b'a'], vec![0x0a, 0x02, 0xff, 0xfe]] {
        let status = call(body.clone()).await;
        assert_eq!(status.code(), Code::InvalidArgument, "{body:?}: {status:?}");
        assert!(
            status.message().contains("not a valid protobuf"),
            "{status:?}"
        );
    }
    server.stop().await;
}
