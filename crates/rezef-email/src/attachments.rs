//! [`AttachmentStore`]: attachment bytes in a directory, one file a content hash (BLAKE3,
//! hex), so that events carry a reference and never the content, and the same file sent
//! twice is kept once. Written to a temporary name, fsynced and renamed: a file under its
//! hash is whole.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::translate::Blob;

#[derive(Debug, Clone)]
pub struct AttachmentStore {
    dir: PathBuf,
}

impl AttachmentStore {
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
        Ok(Self {
            dir: dir.to_owned(),
        })
    }

    /// Where `hash`'s bytes are.
    pub fn path(&self, hash: &str) -> PathBuf {
        self.dir.join(hash)
    }

    /// Stores `blob` unless it is there already.
    pub fn store(&self, blob: &Blob) -> Result<()> {
        let path = self.path(&blob.hash);
        if path.exists() {
            return Ok(());
        }
        let mut file = tempfile::NamedTempFile::new_in(&self.dir).map_err(Error::io(&self.dir))?;
        (file.write_all(&blob.bytes))
            .and_then(|()| file.as_file().sync_data())
            .map_err(Error::io(file.path()))?;
        file.persist(&path).map_err(|e| Error::io(&path)(e.error))?;
        Ok(())
    }
}

/// The URI base of a directory's files: `file://` and its absolute path, with the bytes a
/// URI may not hold as such percent-encoded.
pub fn file_uri_base(dir: &Path) -> Result<String> {
    let absolute = std::path::absolute(dir).map_err(Error::io(dir))?;
    let mut uri = String::from("file://");
    for byte in absolute.as_os_str().as_encoded_bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'.' | b'_' | b'~' => {
                uri.push(char::from(*byte));
            }
            other => uri.push_str(&format!("%{other:02X}")),
        }
    }
    if !uri.ends_with('/') {
        uri.push('/');
    }
    Ok(uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_once_by_hash() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = AttachmentStore::open(dir.path()).expect("opens");
        let blob = Blob {
            hash: blake3::hash(b"pdf").to_hex().to_string(),
            bytes: b"pdf".to_vec(),
        };
        store.store(&blob).expect("stores");
        store.store(&blob).expect("stores again");
        assert_eq!(
            std::fs::read(store.path(&blob.hash)).expect("reads"),
            b"pdf"
        );
        assert_eq!(std::fs::read_dir(dir.path()).expect("lists").count(), 1);
    }

    #[test]
    fn a_file_uri_has_no_spaces() {
        let uri = file_uri_base(Path::new("/var/lib/my mail")).expect("absolute");
        assert_eq!(uri, "file:///var/lib/my%20mail/");
    }
}
