//! What the browser tests need (tests/browser): Debian's chromium, node, and a script with
//! its modules installed (`npm ci --prefix tests/browser`). `.ci/run` installs them and sets
//! `BROWSER_TESTS=1`; without that variable a browser test says it is skipped and passes (as
//! the Kafka tests do without `KAFKA_BROKERS`); with it, anything missing is a failure.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

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

impl Browser {
    /// Starts the script in node with `env` besides `CHROMIUM` and `SCREENSHOTS`; each line
    /// it says is waited for at most `step`.
    pub fn drive(&self, env: &[(&str, &str)], step: Duration) -> Driver {
        let mut node = Command::new("node");
        node.arg(&self.script)
            .env("CHROMIUM", &self.chromium)
            .env("SCREENSHOTS", screenshots())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        for (name, value) in env {
            node.env(name, value);
        }
        let mut node = node.spawn().expect("node starts");
        let stdout = node.stdout.take().expect("piped");
        let stdin = node.stdin.take().expect("piped");
        let (said, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = said.send(line);
            }
        });
        Driver {
            node,
            stdin,
            lines,
            step,
        }
    }
}

/// The script running, driving chromium: what it says, a line at a time, and what the test
/// tells it, on its standard input.
#[derive(Debug)]
pub struct Driver {
    node: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    step: Duration,
}

impl Driver {
    /// Its next line, or `Err` if it says none within the step (blocking the test's thread,
    /// not its multi-threaded runtime).
    pub fn next(&self) -> Result<String, RecvTimeoutError> {
        tokio::task::block_in_place(|| self.lines.recv_timeout(self.step))
    }

    pub fn tell(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").expect("told");
    }

    /// Waits for it to end, with nothing more to tell it: it must succeed.
    pub fn finish(self) {
        let Self {
            mut node, stdin, ..
        } = self;
        drop(stdin);
        let status = tokio::task::block_in_place(|| node.wait()).expect("node ends");
        assert!(status.success(), "{status}");
        println!("screenshots: {}", screenshots().display());
    }
}
