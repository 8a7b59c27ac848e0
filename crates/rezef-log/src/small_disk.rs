//! A small disk for tests of a full disk: a tmpfs of a few MiB mounted for the test, and a
//! filler file that takes its space and gives it back on demand, so that "the disk is full"
//! and "space is free again" happen exactly when a test says.
//!
//! Enabled by the `conformance` feature. Mounting needs root (or `CAP_SYS_ADMIN`); where it
//! is refused, [`SmallDisk::mount`] says why and the test skips, printing that reason. The
//! tmpfs is unmounted when the [`SmallDisk`] is dropped (lazily if something still holds it).

use std::fs::File;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

/// A tmpfs mounted for a test, removed on drop.
#[derive(Debug)]
pub struct SmallDisk {
    path: PathBuf,
}

impl SmallDisk {
    /// Mounts a tmpfs of `bytes` on a new directory under the system's temp dir; why not,
    /// when mounting is not permitted here.
    pub fn mount(bytes: u64) -> Result<Self, String> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "rezef-small-disk-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(&path)
            .output();
        match mounted {
            Ok(out) if out.status.success() => Ok(Self { path }),
            Ok(out) => {
                let _ = std::fs::remove_dir(&path);
                Err(format!(
                    "mount -t tmpfs refused: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ))
            }
            Err(e) => {
                let _ = std::fs::remove_dir(&path);
                Err(format!("cannot run mount: {e}"))
            }
        }
    }

    /// [`SmallDisk::mount`], or `None` having printed why the test is skipped.
    pub fn mount_or_skip(bytes: u64) -> Option<Self> {
        match Self::mount(bytes) {
            Ok(disk) => Some(disk),
            Err(reason) => {
                eprintln!("skipped: no tmpfs for the test: {reason}");
                None
            }
        }
    }

    /// Where the tmpfs is mounted.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn filler(&self) -> PathBuf {
        self.path.join("filler")
    }

    /// Fills the disk with a filler file, then gives back `leave` bytes of it: afterwards
    /// about `leave` bytes are free.
    pub fn fill_leaving(&self, leave: u64) {
        let path = self.filler();
        let mut file = File::options()
            .create(true)
            .append(true)
            .open(&path)
            .expect("create the filler file");
        let chunk = vec![0x5a; 64 * 1024];
        loop {
            match file.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::StorageFull => break,
                Err(e) => panic!("filling {}: {e}", path.display()),
            }
        }
        let len = file.metadata().expect("filler metadata").len();
        file.set_len(len.saturating_sub(leave))
            .expect("shrink the filler file");
    }

    /// Removes the filler file: the space it took is free again.
    pub fn free(&self) {
        std::fs::remove_file(self.filler()).expect("remove the filler file");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let unmounted = Command::new("umount").arg(&self.path).status();
        if !unmounted.is_ok_and(|s| s.success()) {
            // Still in use (a process the test started): detach it now, gone when released.
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
        let _ = std::fs::remove_dir(&self.path);
    }
}
