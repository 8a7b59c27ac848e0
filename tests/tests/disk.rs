//! `rezef serve` on a disk that is already full: it says so and exits non-zero, without a
//! panic, and serves once started with space (a tmpfs of 8 MiB made by the test,
//! `rezef_log::small_disk`; skipped, saying why, where mounting is not permitted).

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use rezef_log::small_disk::SmallDisk;
use rezef_scenarios::{RezefServer, free_port, rezef_bin};

/// Runs `rezef serve` over `data_dir` until it exits, at most `within` (then kills it and
/// fails: it started serving on a full disk).
fn serve_until_exit(data_dir: &std::path::Path, within: Duration) -> Output {
    let mut child = Command::new(rezef_bin())
        .args(["serve", "--listen", &format!("127.0.0.1:{}", free_port())])
        .arg("--data-dir")
        .arg(data_dir)
        .env(rezef_scenarios::DASHBOARD.0, rezef_scenarios::DASHBOARD.1)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("rezef serve starts");
    let deadline = Instant::now() + within;
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().expect("output");
            panic!(
                "rezef serve kept running on a full disk: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_on_a_full_disk_says_so_and_exits_and_serves_once_there_is_space() {
    let Some(disk) = SmallDisk::mount_or_skip(8 * 1024 * 1024) else {
        return;
    };
    // Given a disk with no space left
    let data_dir = disk.path().join("data");
    disk.fill_leaving(0);

    // When rezef serve starts on it
    let output = serve_until_exit(&data_dir, Duration::from_secs(30));

    // Then it exits non-zero saying the disk is full, without a panic
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains("No space left on device") || stderr.contains("disk is full"),
        "{stderr}"
    );

    // And once there is space it serves over the same directory
    disk.free();
    let server = RezefServer::start(&data_dir).await;
    drop(server);
}
