//! The mapping core given a route, when a body arrives, then these events (or this error);
//! and by property: a body maps to the same ids every time, and a missing required path is
//! an error naming it.

use std::time::{Duration, SystemTime};

use proptest::prelude::*;
use rezef_adapter::proto::{self, event::Payload};
use serde_json::{Value, json};

use super::config::RouteConfig;
use super::{ConfigError, MapError, Mapping};

/// A helpdesk's route, as `deploy/rezef-webhook.toml` has it in short.
fn helpdesk() -> Value {
    json!({
        "name": "desk",
        "auth": { "none": true },
        "envelope": {
            "tenant": { "path": "/account" },
            "identity_kind": "email",
            "identity": { "path": "/ticket/requester/email" },
            "channel": { "path": "/ticket/channel", "map": { "web": "webchat", "mail": "email" } },
            "interaction": { "path": "/ticket/id" },
            "id": { "path": "/id" },
            "occurred_at": { "path": "/time" },
        },
        "events": [
            {
                "name": "opened",
                "when": [{ "path": "/type", "equals": "ticket.created" }],
                "kind": "interaction_started",
                "fields": { "direction": "inbound" },
            },
            {
                "name": "topic",
                "when": [{ "path": "/ticket/category", "exists": true }],
                "kind": "intent_detected",
                "fields": { "intent": { "path": "/ticket/category" }, "confidence": 1.0 },
            },
            {
                "name": "comment",
                "when": [{ "path": "/comment", "exists": true }],
                "kind": "message_sent",
                "fields": {
                    "from": "customer",
                    "text": { "path": "/comment/body" },
                    "sender_id": { "path": "/comment/author", "optional": true },
                },
            },
        ],
    })
}

fn ticket() -> Value {
    json!({
        "id": "d-1",
        "type": "ticket.created",
        "time": "2026-12-07T09:00:00Z",
        "account": "acme",
        "ticket": {
            "id": 35436,
            "channel": "web",
            "category": "billing.dispute",
            "requester": { "email": "dana@example.com" },
        },
        "comment": { "body": "I was charged twice" },
    })
}

fn given(route: Value) -> Result<Mapping, ConfigError> {
    let config: RouteConfig = serde_json::from_value(route).expect("a route");
    Mapping::compile(&config, "webhook")
}

fn when(mapping: &Mapping, body: &Value) -> Result<Vec<proto::Event>, MapError> {
    mapping.map(body.to_string().as_bytes(), SystemTime::UNIX_EPOCH)
}

fn ids(events: &[proto::Event]) -> Vec<&str> {
    events.iter().map(|e| e.event_id.as_str()).collect()
}

#[test]
fn a_ticket_becomes_its_start_its_topic_and_its_message() {
    let mapping = given(helpdesk()).expect("compiles");
    let events = when(&mapping, &ticket()).expect("maps");

    assert_eq!(
        ids(&events),
        [
            "webhook:desk:opened:d-1",
            "webhook:desk:topic:d-1",
            "webhook:desk:comment:d-1"
        ]
    );
    let started = &events[0];
    assert_eq!(started.tenant_id, "acme");
    assert_eq!(started.source, "webhook");
    assert_eq!(started.channel(), proto::Channel::Webchat);
    assert_eq!(started.interaction_id, "35436");
    assert_eq!(
        started.occurred_at.map(|t| t.seconds),
        Some(1_796_634_000),
        "2026-12-07T09:00:00Z"
    );
    assert_eq!(
        started.customer,
        Some(rezef_adapter::identity_ref(
            proto::IdentityKind::Email,
            "dana@example.com"
        ))
    );
    let Some(Payload::IntentDetected(intent)) = &events[1].payload else {
        panic!("an intent: {:?}", events[1].payload)
    };
    assert_eq!(
        (intent.intent.as_str(), intent.confidence),
        ("billing.dispute", 1.0)
    );
    let Some(Payload::MessageSent(message)) = &events[2].payload else {
        panic!("a message: {:?}", events[2].payload)
    };
    assert_eq!(message.from(), proto::Participant::Customer);
    assert_eq!(message.text, "I was charged twice");
    assert_eq!(message.sender_id, "", "optional and missing: unset");
}

#[test]
fn a_body_no_event_wants_maps_to_nothing() {
    let mapping = given(helpdesk()).expect("compiles");
    let events = when(&mapping, &json!({"type": "ticket.viewed"})).expect("maps");
    assert!(events.is_empty());
}

#[test]
fn without_an_id_path_the_ids_are_the_bodys_hash() {
    let mut route = helpdesk();
    route["envelope"]["id"] = Value::Null;
    let mapping = given(route).expect("compiles");
    let first = when(&mapping, &ticket()).expect("maps");
    let again = when(&mapping, &ticket()).expect("maps");
    assert_eq!(ids(&first), ids(&again));
    let mut other = ticket();
    other["comment"]["body"] = json!("and again");
    let changed = when(&mapping, &other).expect("maps");
    assert_ne!(ids(&first)[0], ids(&changed)[0]);
}

#[test]
fn a_missing_required_path_is_named() {
    let mapping = given(helpdesk()).expect("compiles");
    let mut body = ticket();
    body["ticket"]["requester"] = json!({});
    let error = when(&mapping, &body).expect_err("no email");
    assert_eq!(
        error,
        MapError::Missing {
            event: "opened".into(),
            field: "envelope.identity".into(),
            path: "/ticket/requester/email".into(),
        }
    );
    body = ticket();
    body["comment"] = json!({"author": "x"});
    let error = when(&mapping, &body).expect_err("no text");
    assert_eq!(error.path(), Some("/comment/body"));
    assert!(error.to_string().contains("fields.text"), "{error}");
}

#[test]
fn a_value_that_does_not_fit_is_named_with_its_path() {
    let mapping = given(helpdesk()).expect("compiles");
    let mut body = ticket();
    body["ticket"]["channel"] = json!("fax");
    let error = when(&mapping, &body).expect_err("no fax");
    assert!(
        matches!(&error, MapError::Invalid { field, path: Some(path), .. }
            if field == "envelope.channel" && path == "/ticket/channel"),
        "{error:?}"
    );
    body = ticket();
    body["time"] = json!("yesterday");
    assert_eq!(
        when(&mapping, &body).expect_err("no time").path(),
        Some("/time")
    );
    let error = mapping
        .map(b"{not json", SystemTime::UNIX_EPOCH)
        .expect_err("not JSON");
    assert!(matches!(error, MapError::NotJson(_)));
}

#[test]
fn mistakes_in_the_mapping_are_named_by_route_event_and_field() {
    let cases: [(&str, Value, &str); 6] = [
        ("/events/0/kind", json!("message"), "kind"),
        (
            "/events/0/fields/directon",
            json!("inbound"),
            "fields.directon",
        ),
        (
            "/events/0/fields/direction",
            json!("sideways"),
            "fields.direction",
        ),
        ("/envelope/tenant", Value::Null, "envelope.tenant"),
        ("/envelope/channel", json!("fax"), "envelope.channel"),
        (
            "/events/1/when/0/path",
            json!("ticket/category"),
            "JSON Pointer",
        ),
    ];
    for (pointer, value, named) in cases {
        let mut route = helpdesk();
        let (parent, key) = pointer.rsplit_once('/').expect("a key");
        route
            .pointer_mut(parent)
            .and_then(Value::as_object_mut)
            .expect("a parent")
            .insert(key.to_owned(), value);
        let error = given(route).expect_err(pointer);
        assert!(error.at.starts_with("routes[desk].events["), "{error}");
        assert!(error.reason.contains(named), "{pointer}: {error}");
    }
}

#[test]
fn a_time_may_be_unix_seconds_or_millis() {
    let mut route = helpdesk();
    route["envelope"]["occurred_at"] = json!({"path": "/at", "format": "unix_millis"});
    let mapping = given(route).expect("compiles");
    let mut body = ticket();
    body["at"] = json!(1_796_634_000_250_u64);
    let events = when(&mapping, &body).expect("maps");
    let at = events[0].occurred_at.expect("a time");
    assert_eq!((at.seconds, at.nanos), (1_796_634_000, 250_000_000));
}

/// Any JSON: scalars, and arrays and objects of them, a few levels deep, with the keys the
/// helpdesk route reads among others.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        "\\PC{0,12}".prop_map(Value::from),
    ];
    let key = prop_oneof![
        Just("id".to_owned()),
        Just("type".to_owned()),
        Just("ticket".to_owned()),
        Just("requester".to_owned()),
        Just("email".to_owned()),
        "[a-z]{1,6}",
    ];
    leaf.prop_recursive(4, 32, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(key.clone(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    /// Whatever arrives, the mapping answers events or an error, and an error names a path
    /// the mapping reads (or says the body is not JSON).
    #[test]
    fn any_body_maps_or_names_what_is_wrong(body in any_json(), garbage in "\\PC{0,20}") {
        let mapping = given(helpdesk()).expect("compiles");
        let mut ticket = ticket();
        ticket["ticket"] = body.clone();
        for raw in [body.to_string(), ticket.to_string(), garbage] {
            match mapping.map(raw.as_bytes(), SystemTime::UNIX_EPOCH) {
                Ok(_) | Err(MapError::NotJson(_)) => {}
                Err(error) => prop_assert!(
                    error.path().is_some_and(|p| helpdesk().to_string().contains(p)),
                    "{error}"
                ),
            }
        }
    }

    /// Whatever the delivery id and text, the same body maps to the same ids, valid ones,
    /// whenever it arrives.
    #[test]
    fn a_body_maps_to_the_same_ids_every_time(
        id in "\\PC{0,200}",
        text in "\\PC{1,50}",
        later in 0u64..10_000_000,
    ) {
        let mapping = given(helpdesk()).expect("compiles");
        let mut body = ticket();
        body["id"] = json!(id);
        body["comment"]["body"] = json!(text);
        let raw = body.to_string();
        let first = mapping.map(raw.as_bytes(), SystemTime::UNIX_EPOCH).expect("maps");
        let again = mapping
            .map(raw.as_bytes(), SystemTime::UNIX_EPOCH + Duration::from_secs(later))
            .expect("maps");
        prop_assert_eq!(ids(&first), ids(&again));
        for event in &first {
            prop_assert!((1..=128).contains(&event.event_id.len()));
            prop_assert!(event.event_id.bytes().all(|b| b.is_ascii_graphic()));
        }
    }

    /// Whichever required leaf a body lacks, the error names its path.
    #[test]
    fn a_missing_required_path_is_an_error_naming_it(which in 0usize..5) {
        let required = [
            "/account",
            "/ticket/requester/email",
            "/ticket/channel",
            "/ticket/category",
            "/comment/body",
        ];
        let mapping = given(helpdesk()).expect("compiles");
        let path = required[which];
        let mut body = ticket();
        let (parent, key) = path.rsplit_once('/').expect("a key");
        body.pointer_mut(parent)
            .and_then(Value::as_object_mut)
            .expect("a parent")
            .remove(key);
        let error = when(&mapping, &body);
        // The category is also the topic's `when`: without it there is no topic, not an error.
        if path == "/ticket/category" {
            prop_assert_eq!(error.map(|e| e.len()), Ok(2));
        } else {
            let error = error.expect_err("missing");
            prop_assert_eq!(error.path(), Some(path));
        }
    }
}

#[test]
fn a_body_posted_again_conforms() {
    // Given the helpdesk's route, when the same ticket is posted twice a minute apart, then
    // the same valid events under the same ids
    let mapping = given(helpdesk()).expect("compiles");
    let mut now = SystemTime::UNIX_EPOCH;
    rezef_adapter::conformance::check(|| {
        now += Duration::from_secs(60);
        (mapping.map(ticket().to_string().as_bytes(), now)).expect("maps")
    })
    .assert_conforms();
}
