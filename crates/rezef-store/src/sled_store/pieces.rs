//! A checkpoint written to sled in pieces, and still whole.
//!
//! sled keeps every version a batch replaces in memory until the batch ends (its epoch
//! guard stays pinned across the batch), so one batch per checkpoint made a rebuild's
//! memory grow with the checkpoint. Measured with sled 0.34 on 500,000 inserts of a
//! checkpoint's shape: in one batch 10 s and a 3 GB peak, in batches of 1,000 4.2 s and
//! 340 MB. A checkpoint must still land whole or not at all, so a large one goes through a
//! redo journal, a file beside sled's (in sled it would sit in sled's cache, as large again
//! as the checkpoint):
//! 1. its writes are streamed to `checkpoint.journal.partial`, which is synced and renamed to
//!    `checkpoint.journal` (the directory synced too): the journal is sealed;
//! 2. they are applied one by one, on up to [`WRITERS`] threads (with the journal making the
//!    whole atomic, a sled batch adds nothing but cost: 500,000 writes took 3.2 s in batches
//!    of 1,024, 2.5 s one by one and 2.1 s on two threads), and sled is flushed;
//! 3. the journal is removed (the directory synced), before anything else is written.
//!
//! A store opened (or written) with a sealed journal applies it first: applying a write twice
//! is harmless, it holds a final value. A partial journal is from a checkpoint that failed
//! before it began to apply, and is removed.

use std::fs::File;
use std::io::{BufReader, BufWriter, ErrorKind, Read};
use std::path::Path;

use crate::{Error, Result};

/// A key and its new value, `None` to remove it.
type Write = (Vec<u8>, Option<Vec<u8>>);

/// The writes of one checkpoint (`None` removes), in the order they were made: the last
/// write of a key wins.
#[derive(Debug, Default)]
pub(super) struct Writes(Vec<Write>);

impl Writes {
    pub(super) fn insert(&mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.0.push((key.into(), Some(value.into())));
    }

    pub(super) fn remove(&mut self, key: impl Into<Vec<u8>>) {
        self.0.push((key.into(), None));
    }

    pub(super) fn extend(&mut self, writes: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>) {
        (self.0).extend(writes.into_iter().map(|(key, value)| (key, Some(value))));
    }

    /// The last write of each key, in key order as sled writes best (sorting once is a
    /// fraction of what a sorted map's inserts cost a large checkpoint).
    fn into_final(mut self) -> Vec<Write> {
        // Stable: the writes of one key stay in the order they were made.
        self.0.sort_by(|a, b| a.0.cmp(&b.0));
        let mut last: Vec<Write> = Vec::with_capacity(self.0.len());
        for write in self.0 {
            match last.last_mut() {
                Some(previous) if previous.0 == write.0 => *previous = write,
                _ => last.push(write),
            }
        }
        last
    }
}

/// A checkpoint of more writes than this goes through the journal.
const ONE_BATCH: usize = 1024;

/// Threads that encode and apply a large checkpoint's writes, at most.
const WRITERS: usize = 4;

const SEALED: &str = "checkpoint.journal";
const PARTIAL: &str = "checkpoint.journal.partial";

/// `work` done on each part of `items`, the parts on up to [`WRITERS`] threads when there
/// are more than [`ONE_BATCH`] items (a rebuild's last checkpoint has the cores to itself).
pub(super) fn on_threads<T: Sync, R: Send>(items: &[T], work: impl Fn(&[T]) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(WRITERS));
    if items.len() <= ONE_BATCH || threads == 1 {
        return vec![work(items)];
    }
    std::thread::scope(|scope| {
        let work = &work;
        let parts: Vec<_> = (items.chunks(items.len().div_ceil(threads)))
            .map(|part| scope.spawn(move || work(part)))
            .collect();
        (parts.into_iter())
            .map(|part| part.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

/// Writes one checkpoint into `db`, whose directory is `dir`: in one batch if it is small,
/// else through the journal.
pub(super) fn write(db: &sled::Db, dir: &Path, writes: Writes) -> Result<()> {
    finish_sealed(db, dir)?;
    let writes = writes.into_final();
    if writes.len() <= ONE_BATCH {
        let mut batch = sled::Batch::default();
        for (key, value) in writes {
            match value {
                Some(value) => batch.insert(key, value),
                None => batch.remove(key),
            }
        }
        db.apply_batch(batch)?;
        return Ok(());
    }
    seal(dir, &writes)?;
    let applied = on_threads(&writes, |part| part.iter().try_for_each(|w| apply(db, w)));
    applied.into_iter().collect::<Result<()>>()?;
    finish(db, dir)
}

/// Makes the store whole: applies a sealed journal, removes a partial one.
pub(super) fn recover(db: &sled::Db, dir: &Path) -> Result<()> {
    finish_sealed(db, dir)?;
    remove(dir, PARTIAL)
}

/// Removes any journal, for a store being cleared.
pub(super) fn discard(dir: &Path) -> Result<()> {
    remove(dir, SEALED)?;
    remove(dir, PARTIAL)
}

fn seal(dir: &Path, writes: &[Write]) -> Result<()> {
    let partial = dir.join(PARTIAL);
    let failed = |source| Error::Journal {
        path: partial.clone(),
        source,
    };
    let file = File::create(&partial).map_err(failed)?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    for (key, value) in writes {
        encode(&mut out, key, value.as_deref()).map_err(failed)?;
    }
    let file = out.into_inner().map_err(|e| failed(e.into_error()))?;
    file.sync_all().map_err(failed)?;
    std::fs::rename(&partial, dir.join(SEALED)).map_err(failed)?;
    sync_dir(dir)
}

fn finish_sealed(db: &sled::Db, dir: &Path) -> Result<()> {
    let path = dir.join(SEALED);
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(Error::Journal { path, source }),
    };
    let mut reader = BufReader::with_capacity(1 << 20, file);
    while let Some(write) = decode(&mut reader, &path)? {
        apply(db, &write)?;
    }
    finish(db, dir)
}

fn apply(db: &sled::Db, (key, value): &Write) -> Result<()> {
    match value {
        Some(value) => db.insert(key, value.as_slice())?,
        None => db.remove(key)?,
    };
    Ok(())
}

/// The journal's writes are all in sled and durable: it goes.
fn finish(db: &sled::Db, dir: &Path) -> Result<()> {
    db.flush()?;
    remove(dir, SEALED)
}

fn remove(dir: &Path, name: &str) -> Result<()> {
    let path = dir.join(name);
    match std::fs::remove_file(&path) {
        Ok(()) => sync_dir(dir),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::Journal { path, source }),
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| Error::Journal {
            path: dir.to_path_buf(),
            source,
        })
}

/// A write in the journal: the key (length u64 BE, bytes), then 0 (remove) or 1 and the
/// value (the same way).
fn encode(out: &mut impl std::io::Write, key: &[u8], value: Option<&[u8]>) -> std::io::Result<()> {
    put(out, key)?;
    match value {
        Some(value) => {
            out.write_all(&[1])?;
            put(out, value)
        }
        None => out.write_all(&[0]),
    }
}

fn put(out: &mut impl std::io::Write, bytes: &[u8]) -> std::io::Result<()> {
    out.write_all(&(bytes.len() as u64).to_be_bytes())?;
    out.write_all(bytes)
}

/// The next write of the journal at `path`; `None` at its end.
fn decode(input: &mut impl Read, path: &Path) -> Result<Option<Write>> {
    let damaged = |_: std::io::Error| Error::JournalDamaged {
        path: path.to_path_buf(),
    };
    let mut length = [0u8; 8];
    match input.read(&mut length[..1]) {
        Ok(0) => return Ok(None),
        Ok(_) => input.read_exact(&mut length[1..]).map_err(damaged)?,
        Err(source) => {
            return Err(Error::Journal {
                path: path.to_path_buf(),
                source,
            });
        }
    }
    let key = take(input, length).map_err(damaged)?;
    let mut tag = [0u8];
    input.read_exact(&mut tag).map_err(damaged)?;
    let value = match tag[0] {
        0 => None,
        1 => {
            input.read_exact(&mut length).map_err(damaged)?;
            Some(take(input, length).map_err(damaged)?)
        }
        _ => return Err(damaged(ErrorKind::InvalidData.into())),
    };
    Ok(Some((key, value)))
}

fn take(input: &mut impl Read, length: [u8; 8]) -> std::io::Result<Vec<u8>> {
    let length = u64::from_be_bytes(length);
    let mut bytes = Vec::new();
    input.take(length).read_to_end(&mut bytes)?;
    if bytes.len() as u64 == length {
        Ok(bytes)
    } else {
        Err(ErrorKind::UnexpectedEof.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writes(count: usize) -> Writes {
        Writes(
            (0..count)
                .map(|i| {
                    let key = format!("j/customer-{i:06}").into_bytes();
                    let value = (i % 7 != 0).then(|| vec![(i % 251) as u8; i % 40]);
                    (key, value)
                })
                .collect(),
        )
    }

    fn contents(db: &sled::Db) -> Vec<(Vec<u8>, Vec<u8>)> {
        db.iter()
            .map(|entry| entry.map(|(k, v)| (k.to_vec(), v.to_vec())))
            .collect::<sled::Result<_>>()
            .expect("scan")
    }

    fn expected(writes: &Writes) -> Vec<(Vec<u8>, Vec<u8>)> {
        (writes.0.iter())
            .filter_map(|(k, v)| Some((k.clone(), v.clone()?)))
            .collect()
    }

    fn db() -> (tempfile::TempDir, sled::Db) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = sled::open(dir.path()).expect("open");
        (dir, db)
    }

    #[test]
    fn a_large_checkpoint_lands_whole_and_leaves_no_journal() {
        let (dir, db) = db();
        let writes = writes(ONE_BATCH * 3 + 5);
        let wanted = expected(&writes);
        write(&db, dir.path(), writes).expect("write");
        assert_eq!(contents(&db), wanted);
        assert!(!dir.path().join(SEALED).exists());
    }

    #[test]
    fn the_last_write_of_a_key_wins_in_a_batch_and_through_the_journal() {
        for count in [10, ONE_BATCH * 2] {
            // Given writes, then each key's value replaced, then every third key removed
            let (dir, db) = db();
            let mut all = writes(count);
            let keys: Vec<_> = all.0.iter().map(|(key, _)| key.clone()).collect();
            for (i, key) in keys.iter().enumerate() {
                all.insert(key.clone(), format!("v{i}"));
            }
            for key in keys.iter().step_by(3) {
                all.remove(key.clone());
            }
            // When they are written as one checkpoint
            write(&db, dir.path(), all).expect("write");
            // Then each key holds its last write
            let wanted: Vec<_> = (keys.iter().enumerate())
                .filter(|(i, _)| i % 3 != 0)
                .map(|(i, key)| (key.clone(), format!("v{i}").into_bytes()))
                .collect();
            assert_eq!(contents(&db), wanted, "{count} writes");
        }
    }

    #[test]
    fn a_sealed_journal_is_applied_when_the_store_recovers() {
        // Given a checkpoint stopped after its seal, with some of its writes applied
        let (dir, db) = db();
        let writes = writes(ONE_BATCH * 2 + 1);
        seal(dir.path(), &writes.0).expect("seal");
        for write in writes.0.clone().into_iter().skip(ONE_BATCH).take(ONE_BATCH) {
            apply(&db, &write).expect("one write");
        }
        // When the store recovers
        recover(&db, dir.path()).expect("recover");
        // Then the whole checkpoint is there, and the journal is gone
        assert_eq!(contents(&db), expected(&writes));
        assert!(!dir.path().join(SEALED).exists());
    }

    #[test]
    fn a_partial_journal_is_removed_and_changes_nothing() {
        let (dir, db) = db();
        db.insert(b"j/kept", b"before").expect("insert");
        seal(dir.path(), &writes(10).0).expect("seal");
        std::fs::rename(dir.path().join(SEALED), dir.path().join(PARTIAL)).expect("unseal");
        recover(&db, dir.path()).expect("recover");
        assert_eq!(
            contents(&db),
            vec![(b"j/kept".to_vec(), b"before".to_vec())]
        );
        assert!(!dir.path().join(PARTIAL).exists());
    }

    #[test]
    fn a_damaged_journal_is_an_error_not_a_partial_checkpoint() {
        let (dir, db) = db();
        seal(dir.path(), &writes(10).0).expect("seal");
        let path = dir.path().join(SEALED);
        let bytes = std::fs::read(&path).expect("read");
        std::fs::write(&path, &bytes[..bytes.len() - 3]).expect("truncate");
        let error = recover(&db, dir.path()).expect_err("damaged");
        assert!(matches!(error, Error::JournalDamaged { .. }), "{error}");
        assert!(error.to_string().contains("rezef rebuild"), "{error}");
    }
}
