//! The key store's contract: what every implementation (a file on one node, a compacted
//! Kafka topic) promises, checked by [`crate::conformance`].

use crate::{DataKey, KeyId, Result, Subject};

/// Data keys by subject, durable on their own (not in a projection that can be rebuilt).
pub trait KeyStore: Send + Sync + 'static {
    /// The key of each subject, in order; a subject without a live key gets a new random one
    /// (getrandom), durable (fsynced) before this returns. One fsync for the whole call.
    fn keys_for(&self, subjects: &[Subject]) -> Result<Vec<(KeyId, DataKey)>>;

    /// A live key by id; None once destroyed (or never made). In memory, no I/O.
    fn key(&self, id: &KeyId) -> Option<DataKey>;

    /// The live key id of a subject, if any. No I/O.
    fn find(&self, subject: &Subject) -> Option<KeyId>;

    /// Destroys these keys (unknown or already destroyed ids are fine: idempotent), durably:
    /// when it returns, the key bytes are in no file of the store.
    fn destroy(&self, ids: &[KeyId]) -> Result<()>;
}
