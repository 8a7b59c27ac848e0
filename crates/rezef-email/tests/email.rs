//! `rezef-email` against a real `rezef serve`: a thread becomes one conversation, a message
//! delivered twice is applied once, and the pipe mode's exit codes.

mod server;

use std::time::{Duration, Instant};

use rezef_adapter::{Client, identity_ref, proto};
use server::{Adapter, Server, fixture, free_port, http_get, terminate};

const THREAD: [&str; 3] = [
    "1-plain.eml",
    "2-agent-reply.eml",
    "3-reply-with-attachment.eml",
];

fn dana() -> proto::CustomerRef {
    identity_ref(proto::IdentityKind::Email, "dana.levi@example.com")
}

/// Dana's journey once its transcript holds `messages` entries.
async fn journey_with(client: &mut Client, messages: usize) -> proto::Journey {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(response) = client.journey("acme", dana(), None).await
            && let Some(journey) = response.journey
        {
            let seen: usize = journey
                .conversations
                .iter()
                .map(|c| c.transcript.len())
                .sum();
            if seen >= messages {
                return journey;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the journey never held {messages} messages"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The adapter exited with `code`; its stderr shown otherwise.
fn assert_exit(output: &std::process::Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn a_thread_of_three_messages_from_a_maildir_is_one_conversation() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path()).await;
    let adapter = Adapter::new(&server.url, "");
    let new = adapter.maildir().join("new");
    std::fs::create_dir_all(&new).expect("maildir");
    for (i, name) in THREAD.iter().enumerate() {
        let file = format!("17650000{i}.M1P1.mx.acme.test");
        std::fs::write(new.join(file), fixture(name)).expect("delivers");
    }
    std::fs::write(new.join("17650009.M9P9.mx"), fixture("no-sender.eml")).expect("delivers");

    let out = adapter.maildir_once();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let journey = journey_with(&mut server.client().await, 3).await;
    let [conversation] = journey.conversations.as_slice() else {
        panic!("one conversation: {:#?}", journey.conversations)
    };
    let [interaction] = conversation.interactions.as_slice() else {
        panic!("one interaction: {:#?}", conversation.interactions)
    };
    assert_eq!(interaction.channel, proto::Channel::Email as i32);
    assert_eq!(interaction.direction, proto::Direction::Inbound as i32);
    let from: Vec<i32> = conversation.transcript.iter().map(|t| t.from).collect();
    let (customer, agent) = (
        proto::Participant::Customer as i32,
        proto::Participant::Agent as i32,
    );
    assert_eq!(from, [customer, agent, customer]);
    assert_eq!(conversation.transcript[1].sender_id, "noa@acme.test");
    assert!(
        conversation.transcript[0]
            .text
            .starts_with("Charged twice for invoice 4411")
    );
    assert_eq!(conversation.transcript[2].attachment_count, 1);
    assert!(
        (journey.identities.iter()).any(|i| i.identity.as_ref().is_some_and(|id| {
            id.kind == proto::IdentityKind::Email as i32 && id.value == "dana.levi@example.com"
        })),
        "the sender's identity: {:#?}",
        journey.identities
    );

    // Taken messages are in cur/, seen; the malformed one in failed/; new/ is empty.
    let cur: Vec<String> = std::fs::read_dir(adapter.maildir().join("cur"))
        .expect("cur/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(cur.len(), 3);
    assert!(cur.iter().all(|name| name.ends_with(":2,S")), "{cur:?}");
    assert_eq!(std::fs::read_dir(&new).expect("new/").count(), 0);
    let failed = adapter.data().join("failed/17650009.M9P9.mx");
    assert_eq!(
        std::fs::read(failed).expect("kept"),
        fixture("no-sender.eml")
    );
    // The attachment's bytes are stored by hash, not in the event.
    let attachments: Vec<_> = std::fs::read_dir(adapter.data().join("attachments"))
        .expect("attachments/")
        .map(|e| e.expect("entry").path())
        .collect();
    let [pdf] = attachments.as_slice() else {
        panic!("one stored attachment: {attachments:?}")
    };
    assert!(std::fs::read(pdf).expect("reads").starts_with(b"%PDF-1.4"));
}

#[tokio::test]
async fn a_message_delivered_twice_is_applied_once() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path()).await;
    let adapter = Adapter::new(&server.url, "");
    for _ in 0..2 {
        let out = adapter.deliver(&fixture("1-plain.eml"));
        assert_exit(&out, 0);
    }
    let out = adapter.deliver(&fixture("2-agent-reply.eml"));
    assert_exit(&out, 0);

    let journey = journey_with(&mut server.client().await, 2).await;
    let counters = journey.counters.expect("counters");
    assert_eq!(
        counters.duplicates_ignored, 2,
        "the second delivery's two events"
    );
    let transcript: Vec<_> = (journey.conversations.iter())
        .flat_map(|c| &c.transcript)
        .collect();
    assert_eq!(transcript.len(), 2, "{transcript:#?}");
    assert_eq!(journey.conversations[0].interactions.len(), 1);
}

#[tokio::test]
async fn the_pipe_mode_answers_with_the_exit_codes_a_mail_server_reads() {
    // No server: accepted means spooled, so delivery succeeds while Rezef is down.
    let down = format!("http://127.0.0.1:{}", free_port());
    let adapter = Adapter::new(&down, "");
    let out = adapter.deliver(&fixture("1-plain.eml"));
    assert_exit(&out, 0);

    // Malformed: EX_DATAERR, and kept in failed/.
    let out = adapter.deliver(&fixture("no-sender.eml"));
    assert_exit(&out, 65);
    let failed = std::fs::read_dir(adapter.data().join("failed")).expect("failed/");
    assert_eq!(failed.count(), 1);

    // A spool too small for the events: EX_TEMPFAIL, so the mail server retries.
    let full = Adapter::new(&down, "[spool]\nmax_bytes = 64");
    let out = full.deliver(&fixture("1-plain.eml"));
    assert_exit(&out, 75);

    // A configuration that does not load: EX_CONFIG.
    let broken = Adapter::new(&down, "no_such_setting = 1");
    let out = broken.deliver(&fixture("1-plain.eml"));
    assert_exit(&out, 78);
}

#[tokio::test]
async fn events_spooled_while_the_server_was_down_arrive_with_the_next_delivery() {
    let data = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let adapter = Adapter::new(&format!("http://127.0.0.1:{port}"), "");
    let out = adapter.deliver(&fixture("1-plain.eml"));
    assert_exit(&out, 0);

    let server = Server::start_on(port, data.path()).await;
    let out = adapter.deliver(&fixture("3-reply-with-attachment.eml"));
    assert_exit(&out, 0);
    let journey = journey_with(&mut server.client().await, 2).await;
    assert_eq!(
        journey.conversations.len(),
        1,
        "{:#?}",
        journey.conversations
    );
}

#[tokio::test]
async fn the_maildir_service_takes_new_mail_and_reports_health_and_counts() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path()).await;
    let adapter = Adapter::new(&server.url, "");
    let port = free_port();
    let service = adapter.maildir_service(port);
    let deadline = Instant::now() + Duration::from_secs(30);
    while http_get(port, "/healthz").is_none() {
        assert!(Instant::now() < deadline, "the service never listened");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Delivered while it runs, as a mail server does: written in tmp/, renamed into new/.
    let tmp = adapter.maildir().join("tmp/1765001.M1P1.mx");
    std::fs::write(&tmp, fixture("1-plain.eml")).expect("writes");
    std::fs::rename(&tmp, adapter.maildir().join("new/1765001.M1P1.mx")).expect("delivers");
    std::fs::write(
        adapter.maildir().join("new/1765002.M2P2.mx"),
        fixture("malformed.eml"),
    )
    .expect("delivers");
    journey_with(&mut server.client().await, 1).await;

    let (status, ready) = http_get(port, "/readyz").expect("answers");
    assert_eq!(status, 200, "{ready}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, metrics) = http_get(port, "/metrics/email").expect("answers");
        assert_eq!(status, 200);
        let counted = metrics.contains("rezef_email_messages_total{outcome=\"accepted\"} 1")
            && metrics.contains("rezef_email_messages_total{outcome=\"failed\"} 1");
        if counted {
            break;
        }
        assert!(Instant::now() < deadline, "not counted: {metrics}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, metrics) = http_get(port, "/metrics").expect("answers");
    assert!(
        metrics.contains("rezef_adapter_events_accepted_total 2"),
        "{metrics}"
    );

    assert!(terminate(service).success(), "stops cleanly on SIGTERM");
}

#[tokio::test]
async fn mail_that_cannot_be_taken_now_stays_in_new_in_order() {
    // A spool too small for any event, and no server: nothing can be accepted.
    let down = format!("http://127.0.0.1:{}", free_port());
    let adapter = Adapter::new(&down, "[spool]\nmax_bytes = 64");
    let new = adapter.maildir().join("new");
    std::fs::create_dir_all(&new).expect("maildir");
    for (i, name) in THREAD.iter().enumerate() {
        std::fs::write(new.join(format!("17650000{i}.M1P1.mx")), fixture(name)).expect("delivers");
    }
    let out = adapter.maildir_once();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_dir(&new).expect("new/").count(),
        3,
        "all still in new/"
    );
    let cur = std::fs::read_dir(adapter.maildir().join("cur")).expect("cur/");
    assert_eq!(cur.count(), 0);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.matches("stays in new/").count(),
        1,
        "the pass stops at the first: {stderr}"
    );
}

#[tokio::test]
async fn flush_sends_what_deliveries_spooled_while_the_server_was_down() {
    let data = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let adapter = Adapter::new(&format!("http://127.0.0.1:{port}"), "");
    let out = adapter.deliver(&fixture("1-plain.eml"));
    assert_exit(&out, 0);

    let server = Server::start_on(port, data.path()).await;
    let out = adapter.flush();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let journey = journey_with(&mut server.client().await, 1).await;
    assert_eq!(
        journey.counters.expect("counters").events,
        2,
        "started and message"
    );
}
