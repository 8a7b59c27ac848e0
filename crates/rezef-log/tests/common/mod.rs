//! What the embedded log's file-level tests share.

use std::fs;
use std::path::{Path, PathBuf};

/// The segment files of the log in `dir`, in offset order.
pub fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    files
}
