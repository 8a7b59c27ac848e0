//! What the browser tests need (tests/browser): Debian's chromium, node, and a script with
//! its modules installed (`npm ci --prefix tests/browser`). `.ci/run` installs them and sets
//! `BROWSER_TESTS=1`; without that variable a browser test says it is skipped and passes (as
//! the Kafka tests do without `KAFKA_BROKERS`); with it, anything missing is a failure.

use std::path::{Path, PathBuf};
use std::process::Command;

const ENABLED: &str = "BROWSER_TESTS";

/// Chromium and the script to drive it.
#[derive(Debug)]
pub struct Browser {
    pub chromium: PathBuf,
    pub script: PathBuf,
}

/// The browser for `script` (a file of tests/browser), or why the test is skipped.
pub fn browser(script: &str) -> Option<Browser> {
    if std::env::var_os(ENABLED).is_none() {
        println!("skipped: set {ENABLED}=1 to run the browser test (CI does)");
        return None;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("browser");
    let chromium = std::env::var_os("CHROMIUM").map_or("/usr/bin/chromium".into(), PathBuf::from);
    let node = Command::new("node").arg("--version").output();
    let missing = [
        (!chromium.exists()).then(|| format!("{} (apt-get install chromium)", chromium.display())),
        (!dir.join("node_modules/playwright-core").exists())
            .then(|| "playwright-core (npm ci --prefix tests/browser)".to_owned()),
        (!node.is_ok_and(|out| out.status.success())).then(|| "node".to_owned()),
    ];
    let missing: Vec<String> = missing.into_iter().flatten().collect();
    assert!(
        missing.is_empty(),
        "{ENABLED} is set, but missing: {missing:?}"
    );
    Some(Browser {
        chromium,
        script: dir.join(script),
    })
}

/// `target/browser-screenshots`, beside the test binary's profile directory.
pub fn screenshots() -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its path");
    let target = (exe.ancestors().nth(3)).expect("tests run from target/<profile>/deps");
    let dir = target.join("browser-screenshots");
    std::fs::create_dir_all(&dir).expect("a screenshot directory");
    dir
}
