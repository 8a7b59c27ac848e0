//! Personal data stays out of operational logs: the demo (a chat with a phone number, an
//! email, card digits and a one-time code, then a call) runs at `RUST_LOG=trace`, every
//! component logging all it can, and none of those values appears in what it logged. The
//! demo prints them itself (it is the story), on standard output; the logs are on standard
//! error.

use std::process::Command;

use rezef_scenarios::rezef_bin;

/// Whether `line` shows `value`; a number only standing alone, not inside a longer one
/// (a log line's timestamp `10:22:30.084417Z` does not show the card digits `4417`).
fn shows(line: &str, value: &str) -> bool {
    let numeric = value.bytes().all(|b| b.is_ascii_digit());
    line.match_indices(value).any(|(at, _)| {
        let before = line[..at].bytes().next_back();
        let after = line[at + value.len()..].bytes().next();
        !numeric
            || !(before.is_some_and(|b| b.is_ascii_digit())
                || after.is_some_and(|b| b.is_ascii_digit()))
    })
}

#[test]
fn a_number_shows_only_standing_alone() {
    assert!(!shows("2026-12-06T10:22:30.084417Z TRACE h2", "4417"));
    assert!(shows("card_last4=4417 set", "4417"));
    assert!(shows("card 4417", "4417"));
    assert!(shows("from dana.levi@example.com", "dana.levi"));
}

#[test]
fn at_trace_level_the_logs_show_no_personal_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = Command::new(rezef_bin())
        .arg("demo")
        .current_dir(dir.path())
        .env("RUST_LOG", "trace")
        .output()
        .expect("rezef runs");
    assert!(output.status.success(), "the demo failed");
    let logs = String::from_utf8_lossy(&output.stderr);
    // The logs are there to be searched: at trace, every request and task says something.
    assert!(logs.lines().count() > 200, "too few log lines: {logs}");
    let story = String::from_utf8_lossy(&output.stdout);
    // Whether the demo prints it: the card digits are sensitive, masked even there.
    let personal = [
        ("the phone number, normalised", "545550123", true),
        ("the phone number as typed", "555-0123", true),
        ("the email", "dana.levi", true),
        ("the card digits", "4417", false),
        ("the one-time code", "482913", true),
        ("what the customer wrote", "charged twice", true),
    ];
    for (what, value, printed) in personal {
        assert_eq!(
            story.contains(value),
            printed,
            "the demo no longer sends {what} as this test expects"
        );
        let leaked: Vec<&str> = logs.lines().filter(|l| shows(l, value)).collect();
        assert!(
            leaked.is_empty(),
            "{what} is in the logs:\n{}",
            leaked.join("\n")
        );
    }
}
