//! The core, given a thread index, when a message arrives, then these events.

use std::collections::HashMap;

use proptest::prelude::*;

use super::*;
use crate::mail::Part;

fn settings() -> Settings {
    Settings {
        tenant: "acme".into(),
        source: "email".into(),
        sender: SenderHeader::From,
        company: vec!["support@acme.test".into(), "@agents.acme.test".into()],
        attachment_uri_base: "file:///att/".into(),
    }
}

fn mail(id: &str, from: &str) -> Mail {
    Mail {
        message_id: id.into(),
        parents: Vec::new(),
        from: from.into(),
        reply_to: None,
        recipients: vec!["support@acme.test".into()],
        date: Some(1_000),
        subject: "Invoice".into(),
        body: "Why was I charged twice?".into(),
        attachments: Vec::new(),
    }
}

fn at(seconds: i64) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds, nanos: 0 }
}

/// Given the index `threads`, when `mail` arrives, then its translation.
fn when(threads: &HashMap<String, Thread>, mail: &Mail) -> Translation {
    translate(mail, at(2_000), &settings(), threads).expect("translates")
}

fn message(event: &proto::Event) -> &proto::MessageSent {
    match &event.payload {
        Some(Payload::MessageSent(m)) => m,
        other => panic!("not a message: {other:?}"),
    }
}

fn customer_of(event: &proto::Event) -> String {
    match event.customer.as_ref().and_then(|c| c.r#ref.as_ref()) {
        Some(proto::customer_ref::Ref::Identity(identity)) => {
            assert_eq!(identity.kind, proto::IdentityKind::Email as i32);
            identity.value.clone()
        }
        other => panic!("not an identity: {other:?}"),
    }
}

#[test]
fn a_new_message_starts_an_inbound_interaction_with_the_sender_as_customer() {
    let t = when(&HashMap::new(), &mail("m1@example.com", "dana@example.com"));
    let [started, sent] = t.events.as_slice() else {
        panic!("two events: {:?}", t.events)
    };
    let Some(Payload::InteractionStarted(s)) = &started.payload else {
        panic!("started first")
    };
    assert_eq!(s.direction, proto::Direction::Inbound as i32);
    assert_eq!(s.entry_point, "support@acme.test");
    assert_eq!(customer_of(sent), "dana@example.com");
    assert_eq!(sent.channel, proto::Channel::Email as i32);
    assert_eq!(sent.tenant_id, "acme");
    assert_eq!(message(sent).from, proto::Participant::Customer as i32);
    assert_eq!(message(sent).text, "Invoice\n\nWhy was I charged twice?");
    assert_eq!(sent.interaction_id, started.interaction_id);
    assert_eq!(t.thread.interaction_id, sent.interaction_id);
    assert_eq!(t.thread.customer, "dana@example.com");
    assert_eq!(sent.occurred_at, Some(at(1_000)));
    assert!(sent.conversation_id.is_empty(), "placed by Rezef's rules");
}

#[test]
fn a_reply_to_a_known_message_continues_its_interaction() {
    let root = when(&HashMap::new(), &mail("m1@x", "dana@example.com"));
    let index = HashMap::from([("m1@x".to_owned(), root.thread.clone())]);
    let mut reply = mail("m2@x", "dana@example.com");
    reply.parents = vec!["unknown@x".into(), "m1@x".into()];
    let t = when(&index, &reply);
    let [sent] = t.events.as_slice() else {
        panic!("only a message: {:?}", t.events)
    };
    assert_eq!(sent.interaction_id, root.thread.interaction_id);
    assert_eq!(t.thread, root.thread);
}

#[test]
fn an_agents_reply_is_an_agent_message_to_the_threads_customer() {
    let root = when(&HashMap::new(), &mail("m1@x", "dana@example.com"));
    let index = HashMap::from([("m1@x".to_owned(), root.thread.clone())]);
    let mut reply = mail("m2@x", "noa@agents.acme.test");
    reply.recipients = vec!["dana@example.com".into()];
    reply.parents = vec!["m1@x".into()];
    let t = when(&index, &reply);
    let [sent] = t.events.as_slice() else {
        panic!("only a message")
    };
    assert_eq!(customer_of(sent), "dana@example.com");
    assert_eq!(sent.interaction_id, root.thread.interaction_id);
    assert_eq!(message(sent).from, proto::Participant::Agent as i32);
    assert_eq!(message(sent).sender_id, "noa@agents.acme.test");
}

#[test]
fn an_agents_new_message_starts_an_outbound_interaction_with_its_recipient() {
    let mut m = mail("m1@x", "support@acme.test");
    m.recipients = vec!["noa@agents.acme.test".into(), "dana@example.com".into()];
    let t = when(&HashMap::new(), &m);
    let Some(Payload::InteractionStarted(s)) = &t.events[0].payload else {
        panic!("started first")
    };
    assert_eq!(s.direction, proto::Direction::Outbound as i32);
    assert_eq!(t.thread.customer, "dana@example.com");
}

#[test]
fn an_agents_message_to_no_customer_is_malformed() {
    let m = mail("m1@x", "support@acme.test");
    let err = translate(&m, at(2_000), &settings(), &HashMap::new());
    assert_eq!(err, Err(Malformed::NoCustomer));
}

#[test]
fn a_reply_from_someone_else_starts_their_own_interaction() {
    let root = when(&HashMap::new(), &mail("m1@x", "dana@example.com"));
    let index = HashMap::from([("m1@x".to_owned(), root.thread.clone())]);
    let mut reply = mail("m2@x", "eve@example.com");
    reply.parents = vec!["m1@x".into()];
    let t = when(&index, &reply);
    assert_eq!(t.events.len(), 2);
    assert_ne!(t.thread.interaction_id, root.thread.interaction_id);
    assert_eq!(t.thread.customer, "eve@example.com");
}

#[test]
fn reply_to_names_the_customer_when_configured() {
    let mut m = mail("m1@x", "noreply@forms.example.com");
    m.reply_to = Some("dana@example.com".into());
    let mut s = settings();
    assert_eq!(
        translate(&m, at(2_000), &s, &HashMap::new())
            .expect("translates")
            .thread
            .customer,
        "noreply@forms.example.com"
    );
    s.sender = SenderHeader::ReplyTo;
    let t = translate(&m, at(2_000), &s, &HashMap::new()).expect("translates");
    assert_eq!(t.thread.customer, "dana@example.com");
}

#[test]
fn attachments_go_by_reference_and_their_bytes_once_by_hash() {
    let mut m = mail("m1@x", "dana@example.com");
    let part = |name: &str, bytes: &[u8]| Part {
        name: name.into(),
        content_type: "application/pdf".into(),
        bytes: bytes.to_vec(),
    };
    m.attachments = vec![part("a.pdf", b"%PDF-1"), part("copy.pdf", b"%PDF-1")];
    let t = when(&HashMap::new(), &m);
    let sent = message(&t.events[1]);
    let hash = blake3::hash(b"%PDF-1").to_hex().to_string();
    assert_eq!(sent.attachments.len(), 2);
    assert_eq!(sent.attachments[0].uri, format!("file:///att/{hash}"));
    assert_eq!(sent.attachments[0].name, "a.pdf");
    assert_eq!(sent.attachments[0].size_bytes, 6);
    assert_eq!(sent.attachments[1].name, "copy.pdf");
    assert_eq!(t.blobs.len(), 1, "the same bytes are stored once");
    assert_eq!(t.blobs[0].hash, hash);
}

#[test]
fn a_date_later_than_receipt_is_taken_as_the_receipt() {
    let mut m = mail("m1@x", "dana@example.com");
    m.date = Some(9_999);
    assert_eq!(
        when(&HashMap::new(), &m).events[0].occurred_at,
        Some(at(2_000))
    );
    m.date = None;
    assert_eq!(
        when(&HashMap::new(), &m).events[0].occurred_at,
        Some(at(2_000))
    );
}

#[test]
fn a_message_with_nothing_to_say_is_malformed() {
    let mut m = mail("m1@x", "dana@example.com");
    m.subject.clear();
    m.body.clear();
    let err = translate(&m, at(2_000), &settings(), &HashMap::new());
    assert_eq!(err, Err(Malformed::Empty));
}

fn address() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("dana@example.com".to_owned()),
        Just("eve@example.org".to_owned()),
        Just("support@acme.test".to_owned()),
        Just("noa@agents.acme.test".to_owned()),
    ]
}

/// A thread of messages: each from one of a few senders, answering an earlier one (or none).
fn thread() -> impl Strategy<Value = Vec<(String, Option<usize>, String)>> {
    prop::collection::vec(
        (address(), any::<prop::sample::Index>(), any::<bool>()),
        1..12,
    )
    .prop_map(|steps| {
        steps
            .into_iter()
            .enumerate()
            .map(|(i, (from, parent, replies))| {
                let parent = (replies && i > 0).then(|| parent.index(i));
                (format!("m{i}@x"), parent, from)
            })
            .collect()
    })
}

fn thread_mail(id: &str, parent: Option<usize>, from: &str) -> Mail {
    let mut m = mail(id, from);
    m.recipients = vec!["support@acme.test".into(), "dana@example.com".into()];
    m.parents = parent.map(|p| format!("m{p}@x")).into_iter().collect();
    m
}

proptest! {
    /// Delivering a thread again, in any state of the index, gives the same events: ids,
    /// interactions and customers, so Rezef applies each message once.
    #[test]
    fn delivering_again_gives_the_same_events(steps in thread()) {
        let mut index = HashMap::new();
        let mut first = Vec::new();
        for (id, parent, from) in &steps {
            let t = when(&index, &thread_mail(id, *parent, from));
            index.insert(t.message_id.clone(), t.thread.clone());
            first.push(t);
        }
        for ((id, parent, from), before) in steps.iter().zip(&first) {
            let again = when(&index, &thread_mail(id, *parent, from));
            prop_assert_eq!(&again, before);
        }
    }

    /// Every reply to a known message of the same customer (or by an agent) stays in that
    /// message's interaction; every event is well formed for Rezef.
    #[test]
    fn replies_stay_in_their_threads_interaction(steps in thread()) {
        let mut index: HashMap<String, Thread> = HashMap::new();
        for (id, parent, from) in &steps {
            let t = when(&index, &thread_mail(id, *parent, from));
            let parent_thread = parent.and_then(|p| index.get(&format!("m{p}@x")).cloned());
            if let Some(parent_thread) = parent_thread {
                let same = settings().is_company(from) || parent_thread.customer == *from;
                prop_assert_eq!(same, t.thread == parent_thread);
                prop_assert_eq!(t.events.len(), if same { 1 } else { 2 });
            }
            for event in &t.events {
                prop_assert!(event.event_id.len() <= 128 && event.event_id.is_ascii());
                prop_assert_eq!(&event.interaction_id, &t.thread.interaction_id);
                prop_assert!(!settings().is_company(&customer_of(event)));
            }
            index.insert(t.message_id.clone(), t.thread.clone());
        }
    }

    /// The text is the subject and body, cut at a character boundary within Rezef's limit.
    #[test]
    fn text_stays_within_the_limit(body in "[a-zא-ת\n]{0,200}", repeat in 1usize..800) {
        let mut m = mail("m1@x", "dana@example.com");
        m.body = body.repeat(repeat);
        prop_assume!(!m.body.is_empty());
        let t = when(&HashMap::new(), &m);
        let text = &message(&t.events[1]).text;
        prop_assert!(text.len() <= MAX_TEXT);
        let full = format!("Invoice\n\n{}", m.body);
        match text.strip_suffix(TRUNCATED) {
            Some(kept) if full.len() > MAX_TEXT => prop_assert!(full.starts_with(kept)),
            _ => prop_assert_eq!(text, &full),
        }
    }
}

#[test]
fn a_message_delivered_again_conforms_whatever_the_index_learnt() {
    // Given a reply with an attachment, delivered twice (a mail server's retry), the index
    // learning its thread from the first delivery
    let mut reply = mail("<r-1@example.com>", "dana@example.com");
    reply.parents = vec!["<first@example.com>".into()];
    reply.attachments = vec![Part {
        name: "statement.pdf".into(),
        content_type: "application/pdf".into(),
        bytes: b"%PDF".to_vec(),
    }];
    let mut index = HashMap::new();
    let mut received = 2_000;
    // When translated each time, then the same valid events under the same ids
    rezef_adapter::conformance::check(|| {
        received += 60;
        let t = translate(&reply, at(received), &settings(), &index).expect("translates");
        index.insert(t.message_id.clone(), t.thread.clone());
        t.events
    })
    .assert_conforms();
}
