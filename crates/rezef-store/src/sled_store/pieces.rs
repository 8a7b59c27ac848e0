//! A checkpoint written to sled in pieces, and still whole.
//!
//! sled keeps every version a batch replaces in memory until the batch ends (its epoch
//! guard stays pinned across the batch), so one batch per checkpoint made a rebuild's
//! memory grow with the checkpoint. Measured with sled 0.34 on 500,000 inserts of a
//! checkpoint's shape: in one batch 10 s and a 3 GB peak, in batches of 1,000 4.2 s and
//! 340 MB. A checkpoint must still land whole or not at all, so a large one goes through a
//! redo journal:
//! 1. its writes, serialized in pieces under `p` keys, then the seal (`meta/sealed`, how many
//!    pieces) and a flush;
//! 2. each piece applied as a batch of its own, then a flush;
//! 3. the journal and its seal removed.
//!
//! A store opened (or written) with a seal present finishes applying the journal first:
//! applying a piece twice is harmless, since it holds final values. A journal with no seal
//! is from a checkpoint that failed before it began to apply, and is dropped.

use std::collections::BTreeMap;

use crate::{Error, Result};

/// A key and its new value, `None` to remove it.
type Write = (Vec<u8>, Option<Vec<u8>>);

/// The writes of one checkpoint by key (`None` removes), in key order as sled writes best.
#[derive(Debug, Default)]
pub(super) struct Writes(BTreeMap<Vec<u8>, Option<Vec<u8>>>);

impl Writes {
    pub(super) fn insert(&mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.0.insert(key.into(), Some(value.into()));
    }

    pub(super) fn remove(&mut self, key: impl Into<Vec<u8>>) {
        self.0.insert(key.into(), None);
    }
}

/// Writes per sled batch (see the module docs for the measurement).
const PIECE_WRITES: usize = 1024;

const JOURNAL: u8 = b'p';
const SEAL_KEY: &[u8] = b"meta/sealed";

/// Writes one checkpoint: in one batch if it is small, else through the journal.
pub(super) fn write(db: &sled::Db, writes: Writes) -> Result<()> {
    finish_sealed(db)?;
    if writes.0.len() <= PIECE_WRITES {
        db.apply_batch(to_batch(writes.0))?;
        return Ok(());
    }
    drop_journal(db)?;
    let writes: Vec<_> = writes.0.into_iter().collect();
    let mut count = 0u64;
    for piece in writes.chunks(PIECE_WRITES) {
        db.insert(journal_key(count), encode(piece))?;
        count += 1;
    }
    db.insert(SEAL_KEY, &count.to_be_bytes())?;
    db.flush()?;
    let mut rest = writes.into_iter().peekable();
    while rest.peek().is_some() {
        db.apply_batch(to_batch(rest.by_ref().take(PIECE_WRITES)))?;
    }
    db.flush()?;
    drop_journal(db)
}

/// Makes the store whole: applies a sealed journal, drops one never sealed.
pub(super) fn recover(db: &sled::Db) -> Result<()> {
    finish_sealed(db)?;
    drop_journal(db)
}

fn finish_sealed(db: &sled::Db) -> Result<()> {
    let Some(sealed) = db.get(SEAL_KEY)? else {
        return Ok(());
    };
    let count = <[u8; 8]>::try_from(sealed.as_ref())
        .map(u64::from_be_bytes)
        .map_err(|_| Error::Journal { piece: None })?;
    for number in 0..count {
        let piece = db.get(journal_key(number))?.ok_or(Error::Journal {
            piece: Some(number),
        })?;
        let writes = decode(&piece).ok_or(Error::Journal {
            piece: Some(number),
        })?;
        db.apply_batch(to_batch(writes))?;
    }
    db.flush()?;
    drop_journal(db)
}

fn drop_journal(db: &sled::Db) -> Result<()> {
    let mut batch = sled::Batch::default();
    for entry in db.scan_prefix([JOURNAL]) {
        batch.remove(entry?.0);
    }
    batch.remove(SEAL_KEY);
    db.apply_batch(batch)?;
    Ok(())
}

fn journal_key(number: u64) -> Vec<u8> {
    let mut key = vec![JOURNAL];
    key.extend_from_slice(&number.to_be_bytes());
    key
}

fn to_batch(writes: impl IntoIterator<Item = Write>) -> sled::Batch {
    let mut batch = sled::Batch::default();
    for (key, value) in writes {
        match value {
            Some(value) => batch.insert(key, value),
            None => batch.remove(key),
        }
    }
    batch
}

/// A piece: per write, the key (length u64 BE, bytes), then 0 (remove) or 1 and the value.
fn encode(piece: &[Write]) -> Vec<u8> {
    let size: usize = (piece.iter())
        .map(|(key, value)| 17 + key.len() + value.as_ref().map_or(0, Vec::len))
        .sum();
    let mut out = Vec::with_capacity(size);
    for (key, value) in piece {
        put(&mut out, key);
        match value {
            Some(value) => {
                out.push(1);
                put(&mut out, value);
            }
            None => out.push(0),
        }
    }
    out
}

fn put(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
    out.extend_from_slice(bytes);
}

fn decode(mut bytes: &[u8]) -> Option<Vec<Write>> {
    let mut writes = Vec::new();
    while !bytes.is_empty() {
        let key = take(&mut bytes)?;
        let (&tag, rest) = bytes.split_first()?;
        bytes = rest;
        let value = match tag {
            0 => None,
            1 => Some(take(&mut bytes)?),
            _ => return None,
        };
        writes.push((key, value));
    }
    Some(writes)
}

fn take(bytes: &mut &[u8]) -> Option<Vec<u8>> {
    let (length, rest) = bytes.split_first_chunk::<8>()?;
    let length = usize::try_from(u64::from_be_bytes(*length)).ok()?;
    let (taken, rest) = (rest.len() >= length).then(|| rest.split_at(length))?;
    *bytes = rest;
    Some(taken.to_vec())
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
        let db = sled::open(dir.path().join("db")).expect("open");
        (dir, db)
    }

    #[test]
    fn pieces_round_trip() {
        let piece: Vec<_> = writes(100).0.into_iter().collect();
        assert_eq!(decode(&encode(&piece)), Some(piece.clone()));
        let encoded = encode(&piece);
        assert_eq!(decode(&encoded[..encoded.len() - 1]), None);
    }

    #[test]
    fn a_large_checkpoint_lands_whole_and_leaves_no_journal() {
        let (_dir, db) = db();
        let writes = writes(PIECE_WRITES * 3 + 5);
        write(&db, Writes(writes.0.clone())).expect("write");
        assert_eq!(contents(&db), expected(&writes));
    }

    #[test]
    fn a_sealed_journal_is_applied_when_the_store_recovers() {
        // Given a checkpoint stopped after its seal, with one piece of three applied
        let (_dir, db) = db();
        let writes = writes(PIECE_WRITES * 2 + 1);
        let all: Vec<_> = writes.0.clone().into_iter().collect();
        let pieces: Vec<_> = all.chunks(PIECE_WRITES).collect();
        for (number, piece) in pieces.iter().enumerate() {
            db.insert(journal_key(number as u64), encode(piece))
                .expect("piece");
        }
        db.insert(SEAL_KEY, &3u64.to_be_bytes()).expect("seal");
        db.apply_batch(to_batch(pieces[1].iter().cloned()))
            .expect("one piece");
        // When the store recovers
        recover(&db).expect("recover");
        // Then the whole checkpoint is there, and the journal is gone
        assert_eq!(contents(&db), expected(&writes));
    }

    #[test]
    fn a_journal_never_sealed_is_dropped_and_changes_nothing() {
        let (_dir, db) = db();
        db.insert(b"j/kept", b"before").expect("insert");
        let all: Vec<_> = writes(10).0.into_iter().collect();
        db.insert(journal_key(0), encode(&all)).expect("piece");
        recover(&db).expect("recover");
        assert_eq!(
            contents(&db),
            vec![(b"j/kept".to_vec(), b"before".to_vec())]
        );
    }

    #[test]
    fn a_damaged_sealed_journal_is_an_error_not_a_partial_checkpoint() {
        let (_dir, db) = db();
        db.insert(journal_key(0), &[1, 2, 3][..]).expect("piece");
        db.insert(SEAL_KEY, &1u64.to_be_bytes()).expect("seal");
        let error = recover(&db).expect_err("damaged");
        assert!(
            matches!(error, Error::Journal { piece: Some(0) }),
            "{error}"
        );
    }
}
