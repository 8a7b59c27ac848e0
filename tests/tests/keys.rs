//! `rezef keys` as an operator runs it: a key is made and its token printed once, the list
//! shows what each key may do and never a secret, a revoked key is listed as revoked, and
//! mistakes are refused with what to write instead. The key file is found as `rezef serve`
//! finds it: `--keys-file`, `[auth] keys_file` (the configuration file or
//! `REZEF_AUTH__KEYS_FILE`), else `keys.json` in the data directory.

use std::path::Path;
use std::process::{Command, Output};

use rezef_auth::{KeyFile, Role, Scope, Token};
use rezef_scenarios::rezef_bin;

/// Runs `rezef keys ARGS…` in `dir`, with `env` and no other `REZEF_` configuration.
fn keys(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(rezef_bin());
    command.arg("keys").args(args).current_dir(dir);
    // The test's own environment must not move the key file elsewhere.
    let configuration = (std::env::vars_os().map(|(name, _)| name))
        .filter(|name| name.to_str().is_some_and(|n| n.starts_with("REZEF_")));
    for name in configuration {
        command.env_remove(name);
    }
    command.env_remove("RUST_LOG").envs(env.iter().copied());
    command.output().expect("rezef runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The standard output of a run that succeeded.
fn succeeded(output: &Output) -> String {
    assert!(
        output.status.success(),
        "rezef failed: {}\n{}",
        output.status,
        text(&output.stderr)
    );
    text(&output.stdout)
}

/// The standard error of a run that failed.
fn failed(output: &Output) -> String {
    assert!(
        !output.status.success(),
        "rezef should have failed:\n{}",
        text(&output.stdout)
    );
    text(&output.stderr)
}

/// The token `rezef keys create` printed: its whole standard output, one line.
fn created(output: &Output) -> Token {
    let stdout = succeeded(output);
    let line = stdout.strip_suffix('\n').expect("one line");
    assert!(!line.contains('\n'), "only the token on stdout: {stdout:?}");
    line.parse().expect("an API key")
}

/// The line of `list` that names key `id`.
fn row<'a>(list: &'a str, id: &str) -> &'a str {
    (list.lines())
        .find(|line| line.split_whitespace().next() == Some(id))
        .unwrap_or_else(|| panic!("no row for {id} in:\n{list}"))
}

#[test]
fn keys_create_prints_the_token_once_and_list_never_shows_a_secret() {
    let dir = tempfile::tempdir().expect("tempdir");
    let made = keys(
        dir.path(),
        &[
            "create",
            "--tenant",
            "acme",
            "--role",
            "adapter",
            "--source",
            "ivr",
            "--verify",
            "pin,one_time_code",
        ],
        &[],
    );
    let token = created(&made);
    let said = text(&made.stderr);
    for shown in [
        token.id.as_str(),
        "acme",
        "adapter",
        "shown once: store it now",
    ] {
        assert!(said.contains(shown), "{shown:?} missing from: {said}");
    }
    assert!(!said.contains(&token.secret), "{said}");

    // Where `rezef serve` looks by default: keys.json in ./rezef-data.
    let file = KeyFile::new(dir.path().join("rezef-data/keys.json"));
    let stored = file.list().expect("the key file");
    assert_eq!(stored.len(), 1);
    let credential = &stored[0];
    assert_eq!(credential.id, token.id);
    assert_eq!(credential.tenant, Scope::Tenant("acme".into()));
    assert!(credential.proves(&token.secret));

    let operator = keys(
        dir.path(),
        &[
            "create",
            "--all-tenants",
            "--role",
            "admin,auditor",
            "--name",
            "on call",
        ],
        &[],
    );
    let operator = created(&operator);

    let list = succeeded(&keys(dir.path(), &["list"], &[]));
    let header: Vec<&str> = list
        .lines()
        .next()
        .expect("a header")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "ID", "TENANT", "ROLES", "SOURCES", "AGENT", "VERIFY", "CREATED", "REVOKED", "NAME"
        ]
    );
    let adapter: Vec<&str> = row(&list, &token.id).split_whitespace().collect();
    assert_eq!(
        adapter[1..6],
        ["acme", "adapter", "ivr", "-", "pin,one_time_code"],
        "{list}"
    );
    assert_eq!(adapter[7], "no", "{list}");
    // RFC 3339 in UTC, to the second: 2025-06-01T12:00:00Z.
    let created_at = adapter[6];
    assert!(
        created_at.len() == 20 && created_at.ends_with('Z') && created_at.as_bytes()[10] == b'T',
        "{created_at}"
    );
    let all: Vec<&str> = row(&list, &operator.id).split_whitespace().collect();
    // Roles in the order `Role` declares them.
    assert_eq!(all[1..4], ["*", "auditor,admin", "*"], "{list}");
    assert!(list.contains("on call"), "{list}");
    for secret in [&token.secret, &operator.secret, &credential.secret_hash] {
        assert!(!list.contains(secret.as_str()), "{list}");
    }
}

#[test]
fn keys_revoke_then_list_shows_the_key_revoked() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The file is the one the server configuration names, here from the environment.
    let path = dir.path().join("secrets/keys.json");
    let path_text = path.display().to_string();
    let env = [("REZEF_AUTH__KEYS_FILE", path_text.as_str())];
    let kept = created(&keys(
        dir.path(),
        &["create", "--tenant", "acme", "--role", "channel"],
        &env,
    ));
    let gone = created(&keys(
        dir.path(),
        &[
            "create", "--tenant", "acme", "--role", "agent", "--agent", "a-17",
        ],
        &env,
    ));
    assert_eq!(KeyFile::new(&path).list().expect("the key file").len(), 2);

    let revoked = keys(dir.path(), &["revoke", &gone.id], &env);
    succeeded(&revoked);
    let said = text(&revoked.stderr);
    assert!(
        said.contains(&gone.id) && said.contains("revoked"),
        "{said}"
    );

    let list = succeeded(&keys(dir.path(), &["list"], &env));
    let revoked_column = |id: &str| row(&list, id).split_whitespace().nth(7).map(str::to_owned);
    assert_eq!(revoked_column(&gone.id).as_deref(), Some("yes"), "{list}");
    assert_eq!(revoked_column(&kept.id).as_deref(), Some("no"), "{list}");
    let stored = KeyFile::new(&path).list().expect("the key file");
    let revoked = stored
        .iter()
        .find(|k| k.id == gone.id)
        .expect("kept, revoked");
    assert!(revoked.revoked && !revoked.proves(&gone.secret));
    assert!(
        !dir.path().join("rezef-data").exists(),
        "nothing in the default place"
    );
}

#[test]
fn keys_are_found_through_the_configuration_file_and_the_data_dir() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("rezef.toml"),
        "[auth]\nkeys_file = \"conf/keys.json\"\n",
    )
    .expect("config");
    let args = [
        "create",
        "--tenant",
        "acme",
        "--role",
        "supervisor",
        "--config",
        "rezef.toml",
    ];
    let by_config = created(&keys(dir.path(), &args, &[]));
    let in_conf = KeyFile::new(dir.path().join("conf/keys.json"));
    assert_eq!(in_conf.list().expect("read")[0].id, by_config.id);

    let env = [("REZEF_DATA_DIR", "elsewhere")];
    let by_data_dir = created(&keys(
        dir.path(),
        &[
            "create", "--tenant", "acme", "--role", "agent", "--agent", "a-17",
        ],
        &env,
    ));
    let in_data_dir = KeyFile::new(dir.path().join("elsewhere/keys.json"));
    assert_eq!(in_data_dir.list().expect("read")[0].id, by_data_dir.id);

    // `--keys-file` wins over the configuration.
    let list = keys(dir.path(), &["list", "--keys-file", "conf/keys.json"], &env);
    let list = succeeded(&list);
    assert!(
        list.contains(&by_config.id) && !list.contains(&by_data_dir.id),
        "{list}"
    );
}

#[test]
fn keys_revoke_of_an_unknown_id_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    created(&keys(
        dir.path(),
        &["create", "--tenant", "acme", "--role", "adapter"],
        &[],
    ));
    let said = failed(&keys(dir.path(), &["revoke", "0123456789ab"], &[]));
    assert!(said.contains("no key `0123456789ab`"), "{said}");
}

#[test]
fn keys_create_needs_a_tenant_or_all_tenants() {
    let dir = tempfile::tempdir().expect("tempdir");
    let neither = failed(&keys(dir.path(), &["create", "--role", "channel"], &[]));
    assert!(
        neither.contains("--tenant") && neither.contains("--all-tenants"),
        "{neither}"
    );
    let both = [
        "create",
        "--tenant",
        "acme",
        "--all-tenants",
        "--role",
        "channel",
    ];
    let both = failed(&keys(dir.path(), &both, &[]));
    assert!(both.contains("cannot be used with"), "{both}");
    let node = ["create", "--tenant", "acme", "--role", "node"];
    let node = failed(&keys(dir.path(), &node, &[]));
    assert!(node.contains("--all-tenants"), "{node}");
    let agent = ["create", "--tenant", "acme", "--role", "agent"];
    let agent = failed(&keys(dir.path(), &agent, &[]));
    assert!(agent.contains("--agent <agent id>"), "{agent}");
    let verify = [
        "create", "--tenant", "acme", "--role", "adapter", "--verify", "dna",
    ];
    let verify = failed(&keys(dir.path(), &verify, &[]));
    assert!(
        verify.contains("`dna`") && verify.contains("one_time_code"),
        "{verify}"
    );
    assert!(!dir.path().join("rezef-data").exists(), "no key was made");
}

#[test]
fn keys_create_with_an_unknown_role_lists_the_roles() {
    let dir = tempfile::tempdir().expect("tempdir");
    let said = failed(&keys(
        dir.path(),
        &["create", "--tenant", "acme", "--role", "nonsense"],
        &[],
    ));
    assert!(said.contains("nonsense"), "{said}");
    let roles: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
    assert!(said.contains(&roles.join(", ")), "{said}");
    assert!(!dir.path().join("rezef-data").exists(), "no key was made");
}

#[test]
fn keys_create_gives_a_key_limits_of_its_own() {
    let dir = tempfile::tempdir().expect("tempdir");
    let args = [
        "create",
        "--tenant",
        "acme",
        "--role",
        "adapter",
        "--calls-per-second",
        "7",
    ];
    let token = created(&keys(dir.path(), &args, &[]));
    let file = KeyFile::new(dir.path().join("rezef-data/keys.json"));
    let listed = file.list().expect("the key file");
    let key = listed.iter().find(|k| k.id == token.id).expect("the key");
    let limits = key.limits.expect("limits of its own");
    let defaults = rezef_auth::Limits::default();
    assert_eq!(
        (limits.calls_per_second, limits.burst, limits.streams),
        (7, defaults.burst, defaults.streams)
    );
    let plain = created(&keys(
        dir.path(),
        &["create", "--tenant", "acme", "--role", "adapter"],
        &[],
    ));
    let listed = file.list().expect("the key file");
    let key = listed.iter().find(|k| k.id == plain.id).expect("the key");
    assert_eq!(key.limits, None, "the server's limits apply");
}
