//! A key as a record of the key topic, and a destroyed one as a tombstone.
//!
//! ```text
//! key:   key id (16)
//! value: version 0x01 | subject hash (32) | data key (32)     or none: a tombstone (destroyed)
//! ```
//!
//! The record key is the key id, so compaction keeps one record per id: the key, until a
//! tombstone replaces it and, after `delete.retention.ms`, nothing.

use zeroize::Zeroizing;

use crate::{DataKey, KeyId};

/// The version byte of a key's value.
const VERSION: u8 = 1;
/// A key's value: version, subject hash, key.
const VALUE_LEN: usize = 1 + 32 + 32;

/// What a record of the key topic says.
#[derive(Debug)]
pub(super) enum Entry {
    /// A key made for a subject (by its hash).
    Made {
        id: KeyId,
        subject: [u8; 32],
        key: DataKey,
    },
    /// A key destroyed.
    Destroyed(KeyId),
}

/// The record value of a key made for `subject`, wiped when dropped.
pub(super) fn value(subject: &[u8; 32], key: &DataKey) -> Zeroizing<Vec<u8>> {
    let mut value = Zeroizing::new(Vec::with_capacity(VALUE_LEN));
    value.push(VERSION);
    value.extend_from_slice(subject);
    value.extend_from_slice(key.as_bytes());
    value
}

/// Reads a record of the key topic: its key and value (none for a tombstone), or what is
/// wrong with it.
pub(super) fn read(key: Option<&[u8]>, value: Option<&[u8]>) -> Result<Entry, &'static str> {
    let id = key
        .and_then(|k| <[u8; 16]>::try_from(k).ok())
        .map(KeyId)
        .ok_or("a record key that is not a 16-byte key id")?;
    let Some(value) = value else {
        return Ok(Entry::Destroyed(id));
    };
    match value.first() {
        Some(&VERSION) if value.len() == VALUE_LEN => {}
        Some(&VERSION) => return Err("a key record of the wrong length"),
        _ => return Err("a key record of a version this build does not read"),
    }
    let (subject, key) = value[1..].split_at(32);
    let subject = <[u8; 32]>::try_from(subject).map_err(|_| "a key record cut short")?;
    let key = <&[u8; 32]>::try_from(key).map_err(|_| "a key record cut short")?;
    Ok(Entry::Made {
        id,
        subject,
        key: DataKey::from_bytes(key),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_reads_back_and_a_tombstone_reads_destroyed() {
        let (id, subject, key) = (KeyId([3; 16]), [5; 32], DataKey::from_bytes(&[9; 32]));
        let value = value(&subject, &key);
        assert_eq!(value.len(), VALUE_LEN);
        match read(Some(id.as_bytes()), Some(&value)) {
            Ok(Entry::Made {
                id: read_id,
                subject: read_subject,
                key: read_key,
            }) => {
                assert_eq!((read_id, read_subject), (id, subject));
                assert_eq!(read_key.as_bytes(), key.as_bytes());
            }
            other => panic!("not the key: {other:?}"),
        }
        assert!(matches!(
            read(Some(id.as_bytes()), None),
            Ok(Entry::Destroyed(destroyed)) if destroyed == id
        ));
    }

    #[test]
    fn records_that_are_not_keys_are_refused() {
        let good = value(&[5; 32], &DataKey::from_bytes(&[9; 32]));
        let id = [3; 16];
        let mut newer = good.to_vec();
        newer[0] = 2;
        // A record's key and value.
        type Record<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);
        let cases: [Record; 6] = [
            (None, Some(&good)),
            (Some(&id[..15]), Some(&good)),
            (Some(&[3; 17]), None),
            (Some(&id), Some(&good[..VALUE_LEN - 1])),
            (Some(&id), Some(&[])),
            (Some(&id), Some(&newer)),
        ];
        for (key, value) in cases {
            assert!(read(key, value).is_err(), "{key:?} {value:?}");
        }
    }
}
