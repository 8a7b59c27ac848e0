//! API keys end to end, as an operator and a client meet them: the real binary, keys made
//! with `rezef keys`, calls made with `rezef … --token` and `REZEF_TOKEN`. Given a server
//! with a key file, when a client calls without a key, with a key of another tenant, or with
//! a revoked key, then it is refused with the status that says why; and a server without keys
//! refuses to listen beyond loopback unless told `--insecure`.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use rezef_scenarios::{RezefServer, free_port, rezef, rezef_bin};

fn example() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/triple-c.jsonl")
        .display()
        .to_string()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Makes a key with `rezef keys create` in `dir`'s key file; its token.
fn create_key(dir: &Path, args: &[&str]) -> String {
    let data_dir = dir.display().to_string();
    let mut all = vec!["--data-dir", data_dir.as_str()];
    all.extend(args);
    rezef_scenarios::create_key(&all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_keys_a_call_needs_a_key_of_its_tenant_and_role() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The example proves a phone by a one-time code: above low assurance, so it needs the
    // grant.
    let adapter = create_key(
        dir.path(),
        &[
            "--tenant",
            "acme",
            "--role",
            "adapter",
            "--verify",
            "one_time_code",
        ],
    );
    let ungranted = create_key(dir.path(), &["--tenant", "acme", "--role", "adapter"]);
    let channel = create_key(dir.path(), &["--tenant", "acme", "--role", "channel"]);
    let auditor = create_key(dir.path(), &["--tenant", "acme", "--role", "auditor"]);
    let server = RezefServer::start(dir.path()).await;
    let url = server.url();
    let (example, url) = (example(), url.as_str());

    let refused = rezef(&["publish", &example, "--server", url], None);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("needs an API key"),
        "{}",
        stderr(&refused)
    );

    let wrong_role = rezef(
        &["publish", &example, "--server", url, "--token", &channel],
        None,
    );
    assert!(!wrong_role.status.success());
    assert!(
        stderr(&wrong_role).contains("the role `adapter`"),
        "{}",
        stderr(&wrong_role)
    );

    let unverified = rezef(
        &["publish", &example, "--server", url, "--token", &ungranted],
        None,
    );
    assert!(!unverified.status.success());
    assert!(
        stderr(&unverified).contains("--verify one_time_code"),
        "{}",
        stderr(&unverified)
    );

    let published = Command::new(rezef_bin())
        .args(["publish", &example, "--server", url])
        .env("REZEF_TOKEN", &adapter)
        .env_remove("RUST_LOG")
        .output()
        .expect("rezef runs");
    assert!(published.status.success(), "{}", stderr(&published));

    let read = |tenant: &str| {
        rezef(
            &[
                "journey",
                "phone:+972501234567",
                "--tenant",
                tenant,
                "--min-offset",
                "17",
                "--server",
                url,
                "--token",
                &channel,
            ],
            None,
        )
    };
    let ours = read("acme");
    assert!(ours.status.success(), "{}", stderr(&ours));
    assert!(String::from_utf8_lossy(&ours.stdout).contains("internet.outage"));
    let theirs = read("globex");
    assert!(!theirs.status.success());
    assert!(
        stderr(&theirs).contains("acts for tenant `acme` only"),
        "{}",
        stderr(&theirs)
    );

    // An auditor's reveal is served, and recorded in the log first: the next replay shows it.
    let replay = |reveal: bool| {
        let mut args = vec![
            "replay", "--tenant", "acme", "--server", url, "--token", &auditor,
        ];
        args.extend(reveal.then_some("--reveal"));
        rezef(&args, None)
    };
    let revealed = replay(true);
    assert!(revealed.status.success(), "{}", stderr(&revealed));
    let after = replay(false);
    assert!(after.status.success(), "{}", stderr(&after));
    let auditor_id = auditor.split('_').nth(1).expect("an id");
    let recorded = String::from_utf8_lossy(&after.stdout)
        .lines()
        .filter(|line| line.contains("sensitiveRevealed") && line.contains(auditor_id))
        .count();
    assert_eq!(recorded, 1, "{}", String::from_utf8_lossy(&after.stdout));

    // A revocation takes effect without a restart.
    let id = channel.split('_').nth(1).expect("an id").to_owned();
    let data_dir = dir.path().display().to_string();
    let revoked = rezef(&["keys", "revoke", &id, "--data-dir", &data_dir], None);
    assert!(revoked.status.success(), "{}", stderr(&revoked));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let after = read("acme");
        if !after.status.success() && stderr(&after).contains("not known to this server") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the revoked key still works: {}",
            stderr(&after)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    server.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_keys_only_loopback_is_served_unless_insecure() {
    let dir = tempfile::tempdir().expect("tempdir");
    let listen = format!("0.0.0.0:{}", free_port());
    let data_dir = dir.path().display().to_string();
    let serve = [
        "serve",
        "--listen",
        listen.as_str(),
        "--data-dir",
        data_dir.as_str(),
    ];

    let refused = rezef(&serve, None);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("without API keys"),
        "{}",
        stderr(&refused)
    );
    assert!(
        stderr(&refused).contains("--insecure"),
        "{}",
        stderr(&refused)
    );

    let mut insecure = Command::new(rezef_bin())
        .args(serve)
        .arg("--insecure")
        .env(rezef_scenarios::DASHBOARD.0, rezef_scenarios::DASHBOARD.1)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("rezef serve starts");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let running = insecure.try_wait().expect("status").is_none();
    let _ = insecure.kill();
    let output = insecure.wait_with_output().expect("stopped");
    assert!(running, "--insecure did not serve: {}", stderr(&output));
    assert!(
        stderr(&output).contains("every caller that reaches"),
        "{}",
        stderr(&output)
    );
}
