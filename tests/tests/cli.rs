//! The command line as a user runs it: demo, serve, publish, journey, replay, rebuild.

use std::path::Path;

use rezef_scenarios::{RezefServer, rezef};

fn stdout(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "rezef failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn the_demo_carries_the_chat_into_the_call_to_an_agent_measures_a_morning_and_simulates_a_day() {
    let out = stdout(&rezef(&["demo"], None));
    assert!(out.contains("channels so far   webchat → voice"), "{out}");
    // Routing: the billing rule, the agent who speaks the Hebrew the customer chatted in.
    assert!(
        out.contains(
            "RouteInteraction: offered to yael in queue billing (rule \"billing disputes\"), \
             candidates yael"
        ),
        "{out}"
    );
    assert!(
        out.contains("yael's desk shows the offer: intent billing.double_charge"),
        "{out}"
    );
    // Resolved on the call, confirmed by email, one conversation across three channels.
    assert!(
        out.contains("(resolved)\n   channels          webchat → voice → email"),
        "{out}"
    );
    assert!(
        out.contains("contacts          3, last agent yael, disposition double-charge-reversed"),
        "{out}"
    );
    assert!(
        out.contains("intent            billing.double_charge"),
        "{out}"
    );
    assert!(out.contains("card_last4 = ****"), "{out}");
    // The code the customer typed in the chat reaches no channel: the call sees it masked.
    assert_eq!(
        out.matches("482913").count(),
        1,
        "typed once, never served: {out}"
    );
    assert!(
        out.contains("                       customer: ****"),
        "{out}"
    );
    assert!(
        out.contains("phone +972545550123 — verified by one time code (substantial) on webchat"),
        "{out}"
    );
    assert!(out.contains("(within window)"), "{out}");
    assert!(
        out.contains("re-verify?        no: the verification still holds"),
        "{out}"
    );
    assert!(out.contains("IVR menus         skipped"), "{out}");
    assert!(out.contains("The customer repeats nothing."), "{out}");
    // The morning, measured: the seven calls, the chat (no agent sought), the routed call
    // (answered at once, never queued: journey-true only) and the email (written).
    assert!(
        out.contains("classic, from queue entry           80.0%  (4 of 5 calls, 5 left out)"),
        "{out}"
    );
    assert!(
        out.contains("journey-true, from the first ring   37.5%  (3 of 8 calls, 2 left out)"),
        "{out}"
    );
    assert!(
        out.contains(
            "why they differ                   callback real wait 1, ivr abandon 1, \
             short abandon excluded 1, ivr time 1, not queued 1"
        ),
        "{out}"
    );
    assert!(
        out.contains("wait from the first ring          p50 15 s, p90 2400 s, max 2400 s"),
        "{out}"
    );
    assert!(
        out.contains("The dashboard shows these figures live: http://127.0.0.1:"),
        "{out}"
    );
    // A day at scale, simulated two days back (the morning's figures above are without it),
    // and the dashboard's address for it.
    let (_, rest) = (out.split_once("── 5. A day at scale ─ `rezef simulate`: "))
        .unwrap_or_else(|| panic!("no simulated day: {out}"));
    let day = &rest[..10];
    assert!(rest[10..].starts_with(", 600 needs, 12 agents"), "{out}");
    assert!(out.contains(" customers ("), "{out}");
    assert!(out.contains(" interactions (email "), "{out}");
    assert!(
        out.contains(&format!("/?tenant=demo-bank&day={day}\n")),
        "{out}"
    );
}

fn example() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/triple-c.jsonl")
        .display()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_journey_replay_and_rebuild() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = RezefServer::start(dir.path()).await;
    let url = server.url();
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--server", url.as_str()]);
        rezef(&all, None)
    };

    let published = run(&["publish", &example()]);
    stdout(&published);
    assert!(String::from_utf8_lossy(&published.stderr).contains("18 of 18 events published"));

    // The Triple C's: chat, voice and email are one conversation of one customer.
    let journey = {
        let mut client = server.client().await;
        client
            .journey(
                "acme",
                rezef_adapter::identity_ref(
                    rezef_adapter::proto::IdentityKind::Email,
                    "dana.levi@example.com",
                ),
                Some(17),
            )
            .await
            .expect("journey")
    };
    let conversations = &journey.journey.as_ref().expect("journey").conversations;
    assert_eq!(conversations.len(), 1);
    assert_eq!(conversations[0].channels.len(), 3);

    let by_phone = stdout(&run(&[
        "journey",
        "phone:+972501234567",
        "--tenant",
        "acme",
    ]));
    assert!(
        by_phone.contains("\"intent\":\"internet.outage\""),
        "{by_phone}"
    );
    assert!(by_phone.contains("CHANNEL_EMAIL"), "{by_phone}");
    // As the projection knew the customer before the email (offsets 0..14: chat and call).
    let before_email = run(&[
        "journey",
        "phone:+972501234567",
        "--tenant",
        "acme",
        "--as-of",
        "14",
    ]);
    let then = stdout(&before_email);
    assert!(
        then.contains("CHANNEL_VOICE") && !then.contains("CHANNEL_EMAIL"),
        "{then}"
    );
    let said = String::from_utf8_lossy(&before_email.stderr);
    assert!(said.contains("projected through offset 14"), "{said}");
    let before_any = run(&[
        "journey",
        "phone:+972501234567",
        "--tenant",
        "acme",
        "--as-of",
        "0",
    ]);
    assert!(!before_any.status.success());
    assert!(String::from_utf8_lossy(&before_any.stderr).contains("as of offset 0"));
    let resumed = stdout(&run(&[
        "resume",
        "email:dana.levi@example.com",
        "--tenant",
        "acme",
        "--channel",
        "sms",
    ]));
    assert!(resumed.contains("\"known\":true"), "{resumed}");
    assert!(resumed.contains("+972501234567"), "{resumed}");
    let resume_at = |offset: &str| {
        stdout(&run(&[
            "resume",
            "email:dana.levi@example.com",
            "--tenant",
            "acme",
            "--as-of",
            offset,
        ]))
    };
    let during_chat = resume_at("8");
    assert!(during_chat.contains("\"known\":true"), "{during_chat}");
    assert!(
        !during_chat.contains("CHANNEL_VOICE"),
        "the call came later: {during_chat}"
    );
    assert!(
        !resume_at("0").contains("\"known\":true"),
        "nobody before the first event"
    );

    let exported = run(&[
        "replay",
        "--tenant",
        "acme",
        "--customer",
        "email:dana.levi@example.com",
        "--verify",
    ]);
    let replayed = stdout(&exported);
    assert_eq!(events_in(&replayed).count(), 18);
    assert!(
        events_in(&replayed)
            .next()
            .is_some_and(|l| l.contains("\"eventId\":\"triple-c-001\""))
    );
    let said = String::from_utf8_lossy(&exported.stderr);
    assert!(
        said.contains("the server's log checks out from offset 0 to 18"),
        "{said}"
    );
    verify_export(&replayed);

    let calls = run(&[
        "replay",
        "--tenant",
        "acme",
        "--customer",
        "email:dana.levi@example.com",
        "--channel",
        "voice",
    ]);
    let voice = stdout(&calls);
    assert_eq!(events_in(&voice).count(), 6, "the call's events: {voice}");
    assert!(
        events_in(&voice).all(|l| l.contains("CHANNEL_VOICE")),
        "{voice}"
    );
    let said = String::from_utf8_lossy(&calls.stderr);
    assert!(said.contains("6 events exported"), "{said}");

    let unknown = run(&["journey", "phone:+15550000000", "--tenant", "acme"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("not known"));

    // Stop, rebuild the store from the log, serve again: same journey.
    let status = server.terminate();
    assert!(status.success(), "clean exit on SIGTERM: {status}");
    let data_dir = dir.path().display().to_string();
    let rebuilt = rezef(&["rebuild", "--data-dir", &data_dir], None);
    stdout(&rebuilt);
    assert!(String::from_utf8_lossy(&rebuilt.stderr).contains("18 applied"));

    let server = RezefServer::start(dir.path()).await;
    let url = server.url();
    let again = rezef(
        &[
            "journey",
            "phone:+972501234567",
            "--tenant",
            "acme",
            "--server",
            &url,
        ],
        None,
    );
    assert_eq!(stdout(&again), by_phone);
}

/// `rezef forget` forgets the Triple C's customer: the phone names no one, a replay shows
/// the events erased with no trace of her email, and `rezef verify` still vouches for the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forget_erases_a_customer_from_what_the_cli_shows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = RezefServer::start(dir.path()).await;
    let url = server.url();
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--server", url.as_str(), "--tenant", "acme"]);
        rezef(&all, None)
    };
    stdout(&rezef(&["publish", &example(), "--server", &url], None));
    let phone =
        rezef_adapter::identity_ref(rezef_adapter::proto::IdentityKind::Phone, "+972501234567");
    let mut client = server.client().await;
    let journey = client
        .journey("acme", phone, Some(17))
        .await
        .expect("journey");
    let customer = journey.journey.expect("a journey").customer_id;
    let before = stdout(&run(&["replay"]));
    assert!(before.contains("dana.levi@example.com"));

    let forgotten = stdout(&run(&["forget", &customer, "--reason", "DSR-2026-17"]));
    assert!(forgotten.contains("key(s) destroyed"), "{forgotten}");
    let gone = run(&["journey", "phone:+972501234567"]);
    assert!(!gone.status.success());
    let after = stdout(&run(&["replay"]));
    assert!(!after.contains("dana.levi@example.com") && !after.contains("+972501234567"));
    assert!(after.contains("\"erased\":true"), "{after}");
    let refused = run(&["forget", &customer, "--reason", ""]);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("reason"));

    assert!(server.terminate().success());
    let data_dir = dir.path().display().to_string();
    let verified = stdout(&rezef(&["verify", "--data-dir", &data_dir], None));
    assert!(verified.contains(": intact"), "{verified}");
}

/// The events of an export (its other lines are comments: the chain).
fn events_in(export: &str) -> impl Iterator<Item = &str> {
    export.lines().filter(|l| !l.starts_with('#'))
}

/// `rezef verify --export` vouches for an export as written, and names the offset of an event
/// changed in it.
fn verify_export(export: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("export.jsonl");
    std::fs::write(&path, export).expect("write");
    let file = path.display().to_string();
    let out = stdout(&rezef(&["verify", "--export", &file], None));
    assert!(
        out.contains(": intact") && out.contains("18 events, head "),
        "{out}"
    );
    assert!(
        out.contains("checked out when exported: offsets 0..18"),
        "{out}"
    );

    let (at, line) = (export.lines().enumerate())
        .find(|(_, l)| l.contains("CHANNEL_EMAIL"))
        .expect("an email event");
    let offset = export.lines().nth(at - 1).and_then(|chain| {
        chain
            .strip_prefix("# offset ")?
            .split(' ')
            .next()
            .map(str::to_owned)
    });
    let changed = export.replacen(line, &line.replacen("CHANNEL_EMAIL", "CHANNEL_SMS", 1), 1);
    std::fs::write(&path, changed).expect("write");
    let tampered = rezef(&["verify", "--export", &file], None);
    assert_eq!(tampered.status.code(), Some(1));
    let out = String::from_utf8_lossy(&tampered.stdout);
    let offset = offset.expect("the event's chain line names its offset");
    assert!(
        out.contains(&format!("BROKEN at offset {offset},")),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_the_same_data_dir_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _server = RezefServer::start(dir.path()).await;
    let port = rezef_scenarios::free_port().to_string();
    let data_dir = dir.path().display().to_string();
    let second = rezef(
        &[
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
            &data_dir,
        ],
        None,
    );
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("in use by another process"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_arguments_are_read_in_the_tenants_region() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("rezef.toml");
    std::fs::write(
        &config,
        "[continuity]\ndefault_region = \"IL\"\nnon_identifying_numbers = [\"03-555-0000\"]\n",
    )
    .expect("config");
    let data = dir.path().join("data");
    let config = config.display().to_string();
    let server = RezefServer::start_with(&data, &["--config", &config]).await;
    let url = server.url();
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--tenant", "acme", "--server", url.as_str()]);
        rezef(&all, None)
    };
    stdout(&rezef(&["publish", &example(), "--server", &url], None));
    // The last of the 18 events is at offset 17: read once it is projected.
    let by_e164 = stdout(&run(&[
        "journey",
        "phone:+972501234567",
        "--min-offset",
        "17",
    ]));
    for national in [
        "phone:050-1234567",
        "phone:0501234567",
        "phone:972501234567",
    ] {
        assert_eq!(stdout(&run(&["journey", national])), by_e164, "{national}");
    }
    let resumed = stdout(&run(&[
        "resume",
        "phone:050 123 4567",
        "--channel",
        "voice",
    ]));
    assert!(resumed.contains("\"known\":true"), "{resumed}");

    let short = run(&["journey", "phone:050-123"]);
    assert!(!short.status.success());
    let said = String::from_utf8_lossy(&short.stderr);
    assert!(
        said.contains("identity.value") && said.contains("length"),
        "{said}"
    );
    for no_one in ["phone:anonymous", "phone:03-555-0000"] {
        let unknown = run(&["journey", no_one]);
        assert!(!unknown.status.success(), "{no_one}");
        assert!(
            String::from_utf8_lossy(&unknown.stderr).contains("not known"),
            "{no_one}"
        );
    }
}

/// The Triple C's on an embedded log of two partitions: the chat, the call and the email
/// name the customer by identities the partitioner places apart, and which partition learns
/// of the verification first is a race (a partitioned log orders events per partition only),
/// so the journeys served are read once they stop changing. `rezef rebuild --partitions 2`
/// folds both partitions side by side, handovers included, into the same journeys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_two_partitions_a_rebuild_gives_the_journeys_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    let flags = ["--partitions", "2"];
    let server = RezefServer::start_with(dir.path(), &flags).await;
    let url = server.url();
    stdout(&rezef(&["publish", &example(), "--server", &url], None));
    let served = settled_journeys(&server).await;
    assert!(served.iter().all(Option::is_some), "{served:?}");
    assert!(server.terminate().success());
    assert!(dir.path().join("log/p1").is_dir());

    let data_dir = dir.path().display().to_string();
    let rebuilt = rezef(
        &["rebuild", "--data-dir", &data_dir, "--partitions", "2"],
        None,
    );
    stdout(&rebuilt);
    let said = String::from_utf8_lossy(&rebuilt.stderr);
    assert_eq!(said.matches("rebuilt ").count(), 2, "{said}");
    // Each partition's log is verified on its own.
    let verified = stdout(&rezef(&["verify", "--data-dir", &data_dir], None));
    assert_eq!(verified.matches(": intact").count(), 2, "{verified}");

    let server = RezefServer::start_with(dir.path(), &flags).await;
    assert_eq!(settled_journeys(&server).await, served);
}

/// The journeys of the Triple C's chat visitor, phone and email, once two reads half a
/// second apart agree (within 20 s).
async fn settled_journeys(server: &RezefServer) -> Vec<Option<rezef_adapter::proto::Journey>> {
    use rezef_adapter::proto::IdentityKind;
    let mut client = server.client().await;
    let identities = [
        (IdentityKind::ChatVisitor, "visitor-1001"),
        (IdentityKind::Phone, "+972501234567"),
        (IdentityKind::Email, "dana.levi@example.com"),
    ];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut last = Vec::new();
    loop {
        let mut now = Vec::new();
        for (kind, value) in identities {
            let found = client.journey("acme", rezef_adapter::identity_ref(kind, value), None);
            now.push(found.await.ok().and_then(|found| found.journey));
        }
        if now == last && now.iter().all(Option::is_some) {
            return now;
        }
        assert!(std::time::Instant::now() < deadline, "{now:?}");
        last = now;
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// The frames of a log segment as (base offset, position, length), read as FORMAT.md lays
/// them out.
fn frames(segment: &[u8]) -> Vec<(u64, usize, usize)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < segment.len() {
        let field = |at: usize, n: usize| -> u64 {
            (segment[pos + at..pos + at + n].iter().rev())
                .fold(0, |acc, &b| acc << 8 | u64::from(b))
        };
        let len = usize::try_from(field(12, 4)).expect("frame length");
        out.push((field(16, 8), pos, len));
        pos += len;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_vouches_for_the_log_and_names_a_changed_record() {
    // Given a server that logged the Triple C's in batches of five
    let dir = tempfile::tempdir().expect("tempdir");
    let server = RezefServer::start(dir.path()).await;
    let url = server.url();
    stdout(&rezef(
        &["publish", &example(), "--batch", "5", "--server", &url],
        None,
    ));
    let data_dir = dir.path().display().to_string();

    // When it is verified beside the running server: intact, with a note about the lock
    let beside = rezef(&["verify", "--data-dir", &data_dir], None);
    let out = stdout(&beside);
    assert!(out.contains(": intact"), "{out}");
    let said = String::from_utf8_lossy(&beside.stderr);
    assert!(said.contains("its LOCK is held"), "{said}");

    // And once stopped: intact from offset 0, chained from the genesis value, with a head
    assert!(server.terminate().success());
    let out = stdout(&rezef(&["verify", "--data-dir", &data_dir], None));
    assert!(
        out.contains("chained from offset 0, after the genesis value"),
        "{out}"
    );
    let head = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("head: offset "))
        .expect("a head");
    assert_eq!(
        head.split(" chain ").nth(1).map(str::len),
        Some(64),
        "{out}"
    );

    // Then a record changed in a copy of the data directory is named by its frame's offset
    let copy = tempfile::tempdir().expect("tempdir");
    let log = copy.path().join("log");
    std::fs::create_dir(&log).expect("log dir");
    let segment_name = "00000000000000000000.log";
    let mut segment = std::fs::read(dir.path().join("log").join(segment_name)).expect("segment");
    let frames = frames(&segment);
    assert!(frames.len() >= 3, "several batches: {frames:?}");
    let (base, pos, len) = frames[2];
    segment[pos + len - 3] ^= 0x01;
    std::fs::write(log.join(segment_name), segment).expect("write");
    let copy_dir = copy.path().display().to_string();
    let tampered = rezef(&["verify", "--data-dir", &copy_dir], None);
    assert_eq!(tampered.status.code(), Some(1));
    let out = String::from_utf8_lossy(&tampered.stdout);
    assert!(out.contains(&format!("BROKEN at offset {base}")), "{out}");
    let said = String::from_utf8_lossy(&tampered.stderr);
    assert!(said.contains(&format!("at offset {base}")), "{said}");
}
