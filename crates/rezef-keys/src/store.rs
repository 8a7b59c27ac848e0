//! The key store's contract: what every implementation (a file on one node, a compacted
//! Kafka topic shared by every node) promises, checked by [`crate::conformance`].

use std::collections::HashMap;

use crate::{DataKey, KeyId, Result, Subject};

/// Data keys by subject, durable on their own (not in a projection that can be rebuilt).
///
/// A store shared by several nodes (`KafkaKeyStore`, feature `kafka`)
/// may hold more than one live key for a subject: two nodes making its first key at the same
/// moment both succeed. Every key opens what was sealed under it, and [`KeyStore::find`] names
/// them all, so that forgetting the subject destroys them all.
pub trait KeyStore: Send + Sync + 'static {
    /// The key of each subject, in order; a subject without a live key gets a new random one
    /// (getrandom), durable (fsynced, or acknowledged by every in-sync replica) before this
    /// returns. One write for the whole call.
    fn keys_for(&self, subjects: &[Subject]) -> Result<Vec<(KeyId, DataKey)>>;

    /// A live key by id; None once destroyed (or never made). From memory; a shared store
    /// first catches up with the other nodes' keys when it misses (a bounded wait).
    fn key(&self, id: &KeyId) -> Option<DataKey>;

    /// The ids of the subject's live keys, the one [`KeyStore::keys_for`] hands out first;
    /// empty if none. A shared store first catches up with the other nodes' keys (a bounded
    /// wait), so that forgetting finds every key made before it.
    fn find(&self, subject: &Subject) -> Vec<KeyId>;

    /// Destroys these keys (unknown or already destroyed ids are fine: idempotent), durably:
    /// when it returns, the key bytes are in no file of a [`FileKeyStore`](crate::FileKeyStore)
    /// (a shared store says in its docs what remains until the broker compacts).
    fn destroy(&self, ids: &[KeyId]) -> Result<()>;
}

/// A key made by a `keys_for` call, to write.
#[derive(Debug)]
pub(crate) struct Made {
    pub id: KeyId,
    pub subject: [u8; 32],
    pub key: DataKey,
}

/// Each subject's key, and the keys among them made in the call, to write.
pub(crate) type Plan = (Vec<(KeyId, DataKey)>, Vec<Made>);

/// Each subject's key for a `keys_for` call (its live one, by [`Subject::hash`], from
/// `live`), and the keys it makes for the subjects without one: one each, however often the
/// call names the subject.
pub(crate) fn plan(
    subjects: &[Subject],
    live: impl Fn(&[u8; 32]) -> Option<(KeyId, DataKey)>,
) -> Result<Plan> {
    let mut made: Vec<Made> = Vec::new();
    // Subjects new in this call: their hash -> their place in `made`.
    let mut new: HashMap<[u8; 32], usize> = HashMap::new();
    let mut keys = Vec::with_capacity(subjects.len());
    for subject in subjects {
        let hash = subject.hash();
        let made_now = || {
            new.get(&hash)
                .map(|&at| (made[at].id, made[at].key.clone()))
        };
        let key = match live(&hash).or_else(made_now) {
            Some(key) => key,
            None => {
                let (id, key) = (KeyId::generate()?, DataKey::generate()?);
                new.insert(hash, made.len());
                made.push(Made {
                    id,
                    subject: hash,
                    key: key.clone(),
                });
                (id, key)
            }
        };
        keys.push(key);
    }
    Ok((keys, made))
}
