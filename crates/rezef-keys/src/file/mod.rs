//! [`FileKeyStore`]: the key store of a single node, one append-only file in a directory.
//!
//! Making keys appends a frame and fsyncs it before they are returned (one fsync per call);
//! destroying keys rewrites the file with the live keys only (`keys.tmp`, fsync, rename over
//! `keys`, fsync of the directory), so the destroyed key's bytes are in no file of the store
//! when `destroy` returns. Every key is in memory too: `key` and `find` do no I/O. The format
//! and the recovery rules are in `format.rs`.
//!
//! Not covered by destroying: blocks the file system freed (the old file's) keep their bytes
//! until reused, and a copy or backup of the file keeps them for as long as it is kept.
//!
//! Not covered by hashing subjects: the hash is unkeyed, so someone with the file can test a
//! guessed subject (a phone number of a tenant) for a live key. Names that must not be
//! guessable are to be keyed before they reach the store (the design's HMAC under a tenant
//! secret, `docs/audit.md`).

mod format;

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, TryLockError};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use format::{BadHeader, Made};
use zeroize::Zeroizing;

use crate::{DataKey, Error, KeyId, KeyStore, Result, Subject};
use crate::{group, store};

const KEYS: &str = "keys";
const KEYS_TMP: &str = "keys.tmp";
const LOCK: &str = "LOCK";

/// A [`KeyStore`] in one file of a directory (`keys`), locked against a second process
/// (`LOCK`).
#[derive(Debug)]
pub struct FileKeyStore {
    dir: PathBuf,
    /// Held for the store's life: the directory's advisory lock.
    _lock: File,
    /// Serialises changes to the file; lookups go to `live` without it.
    writer: Mutex<Writer>,
    /// `keys_for` calls waiting for the writer, made by whoever holds it.
    queue: group::Queue,
    live: RwLock<Live>,
}

/// The key file being appended to.
#[derive(Debug)]
struct Writer {
    file: File,
    /// Where the next frame goes: the end of the last acknowledged one.
    len: u64,
    /// A write failed after `len`: cut the file back there before the next one.
    dirty: bool,
    /// A destroy renamed the file but its directory's fsync failed: the next destroy
    /// makes the rename durable even when it has no key left to destroy.
    rename_unsynced: bool,
}

/// The live keys.
#[derive(Debug, Default)]
struct Live {
    by_id: HashMap<KeyId, ([u8; 32], DataKey)>,
    /// The key too, so that sealing looks a subject's key up once.
    by_subject: HashMap<[u8; 32], (KeyId, DataKey)>,
}

impl FileKeyStore {
    /// Opens the store in `dir`, creating the directory and an empty store if there is none.
    ///
    /// A torn tail (the frame a crash cut) is cut off the file; damage before the last valid
    /// frame is [`Error::Corrupt`]. A `keys.tmp` left by a destroy that crashed is removed (the
    /// file it was to replace still holds every live key).
    pub fn open(dir: &Path) -> Result<FileKeyStore> {
        if !dir.exists() {
            fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
            let parent = dir.parent().filter(|p| !p.as_os_str().is_empty());
            sync_dir(parent.unwrap_or(Path::new(".")))?;
        }
        let lock = lock(dir)?;
        let tmp = dir.join(KEYS_TMP);
        match fs::remove_file(&tmp) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_error(&tmp, e)),
            _ => {}
        }
        let path = dir.join(KEYS);
        if !path.exists() {
            replace(dir, &format::header())?;
            sync_dir(dir)?;
        }
        let file = File::options()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| io_error(&path, e))?;
        let (live, len) = load(&path, &file)?;
        Ok(FileKeyStore {
            dir: dir.to_path_buf(),
            _lock: lock,
            writer: Mutex::new(Writer {
                file,
                len,
                dirty: false,
                rename_unsynced: false,
            }),
            queue: group::Queue::default(),
            live: RwLock::new(live),
        })
    }

    fn path(&self) -> PathBuf {
        self.dir.join(KEYS)
    }

    /// Each subject's key, the new ones written (one frame, one fsync) before they are live.
    fn make(&self, writer: &mut Writer, subjects: &[Subject]) -> Result<Vec<(KeyId, DataKey)>> {
        let (keys, made) = {
            let live = self.live();
            store::plan(subjects, |hash| live.by_subject.get(hash).cloned())?
        };
        if made.is_empty() {
            return Ok(keys);
        }
        let mut frame = Zeroizing::new(Vec::new());
        format::encode(&mut frame, made.iter());
        writer.append(&self.path(), &frame)?;
        let mut live = self.live_mut();
        for m in made {
            live.by_subject.insert(m.subject, (m.id, m.key.clone()));
            live.by_id.insert(m.id, (m.subject, m.key));
        }
        Ok(keys)
    }

    fn writer(&self) -> MutexGuard<'_, Writer> {
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn live(&self) -> RwLockReadGuard<'_, Live> {
        self.live.read().unwrap_or_else(|p| p.into_inner())
    }

    fn live_mut(&self) -> RwLockWriteGuard<'_, Live> {
        self.live.write().unwrap_or_else(|p| p.into_inner())
    }
}

impl KeyStore for FileKeyStore {
    fn keys_for(&self, subjects: &[Subject]) -> Result<Vec<(KeyId, DataKey)>> {
        // Every subject known (a returning customer): no writer, no wait.
        let known: Option<Vec<_>> = {
            let live = self.live();
            (subjects.iter())
                .map(|s| live.by_subject.get(&s.hash()).cloned())
                .collect()
        };
        if let Some(keys) = known {
            return Ok(keys);
        }
        group::keys_for(
            &self.queue,
            subjects,
            || self.writer(),
            |writer, subjects| self.make(writer, subjects),
        )
    }

    fn key(&self, id: &KeyId) -> Option<DataKey> {
        self.live().by_id.get(id).map(|(_, key)| key.clone())
    }

    fn find(&self, subject: &Subject) -> Vec<KeyId> {
        self.live()
            .by_subject
            .get(&subject.hash())
            .map(|(id, _)| *id)
            .into_iter()
            .collect()
    }

    fn destroy(&self, ids: &[KeyId]) -> Result<()> {
        let mut writer = self.writer();
        let ids: HashSet<&KeyId> = ids.iter().collect();
        if !ids.iter().any(|id| self.live().by_id.contains_key(*id)) {
            // Gone already (a forgetting folded again, a rebuild): no rewrite of every key.
            if writer.rename_unsynced {
                sync_dir(&self.dir)?;
                writer.rename_unsynced = false;
            }
            return Ok(());
        }
        let mut file = Zeroizing::new(format::header());
        {
            let live = self.live();
            let kept = live.by_id.iter().filter(|(id, _)| !ids.contains(id));
            let kept: Vec<Made> = kept
                .map(|(id, (subject, key))| Made {
                    id: *id,
                    subject: *subject,
                    key: key.clone(),
                })
                .collect();
            format::encode(&mut file, kept.iter());
        }
        let new = replace(&self.dir, &file)?;
        *writer = Writer {
            file: new,
            len: file.len() as u64,
            dirty: false,
            rename_unsynced: true,
        };
        // The file no longer holds the keys: memory follows before the directory's fsync,
        // which, should it fail, a retried destroy does again.
        let mut live = self.live_mut();
        for id in ids {
            if let Some((subject, _)) = live.by_id.remove(id) {
                live.by_subject.remove(&subject);
            }
        }
        drop(live);
        sync_dir(&self.dir)?;
        writer.rename_unsynced = false;
        Ok(())
    }
}

impl Writer {
    /// Writes `frame` after the last acknowledged one and fsyncs it.
    fn append(&mut self, path: &Path, frame: &[u8]) -> Result<()> {
        if self.dirty {
            self.file.set_len(self.len).map_err(|e| io_error(path, e))?;
            self.dirty = false;
        }
        let written = self
            .file
            .write_all_at(frame, self.len)
            .and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            self.dirty = true;
            return Err(io_error(path, e));
        }
        self.len += frame.len() as u64;
        Ok(())
    }
}

/// Reads every key of the file, cutting a torn tail off; the keys and the valid length.
fn load(path: &Path, mut file: &File) -> Result<(Live, u64)> {
    let mut bytes = Zeroizing::new(Vec::new());
    io::Read::read_to_end(&mut file, &mut bytes).map_err(|e| io_error(path, e))?;
    let header = format::read_header(&bytes).map_err(|bad| match bad {
        BadHeader::Malformed => Error::Corrupt {
            path: path.to_path_buf(),
            offset: 0,
            reason: "not a key file header",
        },
        BadHeader::Version(version) => Error::UnsupportedVersion {
            path: path.to_path_buf(),
            version,
        },
    })?;
    let scan = format::scan(&bytes, header).map_err(|offset| Error::Corrupt {
        path: path.to_path_buf(),
        offset: offset as u64,
        reason: "a damaged frame before valid ones",
    })?;
    let end = scan.end as u64;
    if scan.end < bytes.len() {
        tracing::warn!(
            file = %path.display(),
            valid = end,
            cut = bytes.len() - scan.end,
            "cutting a torn tail off the key file"
        );
        file.set_len(end)
            .and_then(|()| file.sync_data())
            .map_err(|e| io_error(path, e))?;
    }
    let mut live = Live::default();
    for (at, made) in scan.records {
        let corrupt = |reason| Error::Corrupt {
            path: path.to_path_buf(),
            offset: at as u64,
            reason,
        };
        if live.by_id.contains_key(&made.id) {
            return Err(corrupt("a key id made twice"));
        }
        if live
            .by_subject
            .insert(made.subject, (made.id, made.key.clone()))
            .is_some()
        {
            return Err(corrupt("a subject with two live keys"));
        }
        live.by_id.insert(made.id, (made.subject, made.key));
    }
    Ok((live, end))
}

/// Replaces (or creates) the key file with `bytes`, written whole and fsynced in `keys.tmp`
/// (readable by its owner only) then renamed over it; the new file, open for writing. The rename is durable once the
/// caller fsyncs the directory.
fn replace(dir: &Path, bytes: &[u8]) -> Result<File> {
    let tmp = dir.join(KEYS_TMP);
    let written = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|file| {
            file.write_all_at(bytes, 0)?;
            file.sync_data()?;
            Ok(file)
        });
    let file = match written {
        Ok(file) => file,
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            return Err(io_error(&tmp, e));
        }
    };
    let path = dir.join(KEYS);
    if let Err(e) = fs::rename(&tmp, &path) {
        let _ = fs::remove_file(&tmp);
        return Err(io_error(&path, e));
    }
    Ok(file)
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error(dir, e))
}

/// Takes the directory's advisory lock, so a second process cannot open the same store.
fn lock(dir: &Path) -> Result<File> {
    let path = dir.join(LOCK);
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| io_error(&path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(Error::Locked {
            dir: dir.to_path_buf(),
        }),
        Err(TryLockError::Error(e)) => Err(io_error(&path, e)),
    }
}

fn io_error(path: &Path, source: io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}
