//! Personal data stays out of operational logs: the demo (a chat with a phone number, an
//! email, card digits and a one-time code, then a call) runs at `RUST_LOG=trace`, every
//! component logging all it can, and none of those values appears in what it logged. The
//! demo prints them itself (it is the story), on standard output; the logs are on standard
//! error.

use std::process::Command;

use rezef_scenarios::rezef_bin;

/// Whether `line` shows the number `value` standing alone, not inside a longer one or a
/// fraction (a log line's timestamp `10:22:30.080417Z` does not show the card digits
/// `0417`). The demo's card digits start with a zero, as no number a log prints does: a
/// length or an offset that happens to be the same four digits is not a leak.
fn shows(line: &str, value: &str) -> bool {
    let part_of_a_number = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_digit() || b == b'.');
    line.match_indices(value).any(|(at, _)| {
        let before = line[..at].bytes().next_back();
        let after = line[at + value.len()..].bytes().next();
        !(part_of_a_number(before) || part_of_a_number(after))
    })
}

#[test]
fn a_number_shows_only_standing_alone() {
    assert!(!shows("2026-12-06T10:22:30.080417Z TRACE h2", "0417"));
    assert!(!shows("time.busy=1.0417ms", "0417"));
    assert!(!shows("durable at offsets 10417..10430", "0417"));
    assert!(shows("card_last4=0417 set", "0417"));
    assert!(shows("card 0417", "0417"));
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
    // (what, the value, whether the demo prints it, whether it counts only standing alone:
    // short numbers a log may print by chance as a length, an offset or a time's fraction).
    let personal = [
        ("the phone number, normalised", "545550123", true, false),
        ("the phone number as typed", "555-0123", true, false),
        ("the email", "dana.levi", true, false),
        ("the card digits", "0417", false, true),
        ("the one-time code", "482913", true, true),
        ("what the customer wrote", "charged twice", true, false),
    ];
    for (what, value, printed, alone) in personal {
        let found = |line: &str| match alone {
            true => shows(line, value),
            false => line.contains(value),
        };
        assert_eq!(
            story.lines().any(found),
            printed,
            "the demo no longer sends {what} as this test expects"
        );
        let leaked: Vec<&str> = logs.lines().filter(|l| found(l)).collect();
        assert!(
            leaked.is_empty(),
            "{what} is in the logs:\n{}",
            leaked.join("\n")
        );
    }
}
