//! The binary's own contract: help, configuration errors, client errors without a server.

use std::process::Command;

fn rezef() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rezef"));
    command.env_remove("RUST_LOG");
    command
}

#[test]
fn help_lists_every_command() {
    let output = rezef().arg("--help").output().expect("runs");
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    let commands = [
        "serve", "publish", "journey", "resume", "replay", "keys", "rebuild", "demo",
    ];
    for command in commands {
        assert!(help.contains(command), "{command} missing from:\n{help}");
    }
}

#[test]
fn a_typo_in_the_config_file_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("bad.toml"), "listne = \"127.0.0.1:1\"\n").expect("write");
    let output = rezef()
        .args(["serve", "--config", "bad.toml"])
        .current_dir(dir.path())
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("listne"), "{stderr}");
}

#[test]
fn client_commands_without_a_server_say_how_to_start_one() {
    let output = rezef()
        .args(["journey", "phone:+972501234567", "--tenant", "acme"])
        .args(["--server", "http://127.0.0.1:9"])
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("rezef serve"), "{stderr}");
}

#[test]
fn rebuild_without_a_log_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = rezef()
        .args(["rebuild", "--data-dir"])
        .arg(dir.path().join("nothing"))
        .output()
        .expect("runs");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("nothing to rebuild"));
}

#[test]
fn the_api_key_from_the_environment_is_never_printed() {
    let secret = "rzf_ab12_5ec7e75ec7e7";
    for command in ["publish", "journey", "resume", "replay"] {
        let output = rezef()
            .args([command, "--help"])
            .env("REZEF_TOKEN", secret)
            .output()
            .expect("runs");
        assert!(output.status.success());
        let help = String::from_utf8_lossy(&output.stdout);
        assert!(help.contains("REZEF_TOKEN"), "{command}: {help}");
        assert!(!help.contains("5ec7e7"), "{command}: {help}");
    }
}

#[test]
fn a_token_that_is_no_api_key_is_refused_before_any_call() {
    let output = rezef()
        .args(["journey", "phone:+972501234567", "--tenant", "acme"])
        .args(["--server", "http://127.0.0.1:9", "--token", "SUMMER-2931"])
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not an API key"), "{stderr}");
    assert!(
        !stderr.contains("SUMMER-2931"),
        "the value is not echoed: {stderr}"
    );
    assert!(
        !stderr.contains("rezef serve"),
        "refused before connecting: {stderr}"
    );
}
