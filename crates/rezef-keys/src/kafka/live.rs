//! The keys a node knows: those it read from the key topic, made or destroyed itself.
//!
//! Records arrive in topic order from the follower, and this node's own keys and tombstones
//! are applied as soon as the brokers acknowledge them, before the follower reads them back:
//! so a key read back after this node destroyed it must stay destroyed. Key ids are random
//! and never made twice, so an id once destroyed (or proven absent) is gone for good
//! ([`Live::gone`]).

use std::collections::{HashMap, HashSet};

use super::record::Entry;
use crate::{DataKey, KeyId};

/// What the node knows about a key id.
#[derive(Debug)]
pub(super) enum Lookup {
    Live(DataKey),
    /// Destroyed, or proven absent from the topic.
    Gone,
    /// Not seen yet: another node may have made it since the follower last read.
    Unknown,
}

/// A live key.
#[derive(Debug)]
struct Known {
    subject: [u8; 32],
    key: DataKey,
    /// Its record's offset in the key topic.
    offset: u64,
}

/// The live keys, by id and by subject, and the ids known gone.
#[derive(Debug, Default)]
pub(super) struct Live {
    by_id: HashMap<KeyId, Known>,
    /// A subject's live keys by offset, the first made first: more than one when two nodes
    /// made its first key at once.
    by_subject: HashMap<[u8; 32], Vec<(u64, KeyId)>>,
    gone: HashSet<KeyId>,
}

impl Live {
    /// Applies a record of the key topic at `offset`.
    pub(super) fn apply(&mut self, offset: u64, entry: Entry) {
        match entry {
            Entry::Made { id, subject, key } => self.made(offset, id, subject, key),
            Entry::Destroyed(id) => self.destroyed(id),
        }
    }

    /// A key made at `offset`; nothing if it is known already or gone.
    pub(super) fn made(&mut self, offset: u64, id: KeyId, subject: [u8; 32], key: DataKey) {
        if self.gone.contains(&id) || self.by_id.contains_key(&id) {
            return;
        }
        let keys = self.by_subject.entry(subject).or_default();
        let at = keys.partition_point(|&(o, _)| o < offset);
        keys.insert(at, (offset, id));
        self.by_id.insert(
            id,
            Known {
                subject,
                key,
                offset,
            },
        );
    }

    /// A key destroyed: gone from memory, and never taken back.
    pub(super) fn destroyed(&mut self, id: KeyId) {
        self.gone.insert(id);
        let Some(known) = self.by_id.remove(&id) else {
            return;
        };
        if let Some(keys) = self.by_subject.get_mut(&known.subject) {
            keys.retain(|&(offset, other)| (offset, other) != (known.offset, id));
            if keys.is_empty() {
                self.by_subject.remove(&known.subject);
            }
        }
    }

    /// An id the topic, read to its end, does not hold: gone (the caller proved it).
    pub(super) fn absent(&mut self, id: KeyId) {
        if !self.by_id.contains_key(&id) {
            self.gone.insert(id);
        }
    }

    pub(super) fn lookup(&self, id: &KeyId) -> Lookup {
        match self.by_id.get(id) {
            Some(known) => Lookup::Live(known.key.clone()),
            None if self.gone.contains(id) => Lookup::Gone,
            None => Lookup::Unknown,
        }
    }

    pub(super) fn is_gone(&self, id: &KeyId) -> bool {
        self.gone.contains(id)
    }

    /// The subject's first live key.
    pub(super) fn first(&self, subject: &[u8; 32]) -> Option<(KeyId, DataKey)> {
        let &(_, id) = self.by_subject.get(subject)?.first()?;
        self.by_id.get(&id).map(|known| (id, known.key.clone()))
    }

    /// The subject's live key ids, the first first.
    pub(super) fn ids(&self, subject: &[u8; 32]) -> Vec<KeyId> {
        (self.by_subject.get(subject))
            .map(|keys| keys.iter().map(|&(_, id)| id).collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DANA: [u8; 32] = [1; 32];

    fn key(byte: u8) -> DataKey {
        DataKey::from_bytes(&[byte; 32])
    }

    fn live_bytes(live: &Live, id: KeyId) -> Option<[u8; 32]> {
        match live.lookup(&id) {
            Lookup::Live(key) => Some(*key.as_bytes()),
            Lookup::Gone | Lookup::Unknown => None,
        }
    }

    #[test]
    fn a_key_read_back_after_its_tombstone_stays_destroyed() {
        // Given a key this node made and destroyed before the follower read either record
        let mut live = Live::default();
        let id = KeyId([7; 16]);
        live.made(3, id, DANA, key(7));
        live.destroyed(id);
        // When the follower reads them back, the key first
        live.apply(
            3,
            Entry::Made {
                id,
                subject: DANA,
                key: key(7),
            },
        );
        live.apply(4, Entry::Destroyed(id));
        // Then it stays gone
        assert!(matches!(live.lookup(&id), Lookup::Gone));
        assert_eq!(live.first(&DANA).map(|(id, _)| id), None);
        assert!(live.ids(&DANA).is_empty());
    }

    #[test]
    fn two_keys_of_a_subject_both_open_and_the_earliest_is_handed_out() {
        // Given two nodes that made dana's first key at once, read in either order
        let (early, late) = (KeyId([1; 16]), KeyId([2; 16]));
        let mut live = Live::default();
        live.made(9, late, DANA, key(2));
        live.made(5, early, DANA, key(1));
        // Then both open, the earlier is handed out, and find names both
        assert_eq!(live_bytes(&live, early), Some([1; 32]));
        assert_eq!(live_bytes(&live, late), Some([2; 32]));
        assert_eq!(live.first(&DANA).map(|(id, _)| id), Some(early));
        assert_eq!(live.ids(&DANA), [early, late]);
        // When the earlier is destroyed, the later is handed out
        live.destroyed(early);
        assert_eq!(live.first(&DANA).map(|(id, _)| id), Some(late));
        assert_eq!(live.ids(&DANA), [late]);
    }

    #[test]
    fn an_unknown_id_is_unknown_until_proven_absent() {
        let mut live = Live::default();
        let id = KeyId([4; 16]);
        assert!(matches!(live.lookup(&id), Lookup::Unknown));
        live.absent(id);
        assert!(matches!(live.lookup(&id), Lookup::Gone));
        // A live key is never marked absent.
        let other = KeyId([5; 16]);
        live.made(0, other, DANA, key(5));
        live.absent(other);
        assert_eq!(live_bytes(&live, other), Some([5; 32]));
    }
}
