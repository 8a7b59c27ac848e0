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
    for command in ["serve", "publish", "journey", "replay", "rebuild", "demo"] {
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
