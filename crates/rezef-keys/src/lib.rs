//! Crypto-shredding: personal values sealed under per-subject data keys, and the store that
//! keeps the keys until a customer is forgotten.
//!
//! Events are immutable in the log, so erasing a customer's personal data cannot mean editing
//! them: each personal value is sealed ([`seal`]) under the data key of its subject (a
//! customer, an identity), and forgetting destroys the keys ([`KeyStore::destroy`]); what was
//! sealed under them can never be opened again, in the log, its copies or its replicas. The
//! design is in `docs/audit.md` ("Not built yet").
//!
//! A [`KeyStore`] hands out one live key per [`Subject`], making it durable before returning
//! it (a record sealed under a key the store lost would be lost with it). The store holds
//! subjects only as BLAKE3 hashes, never in the clear. [`FileKeyStore`] keeps them in one
//! append-only file; `KafkaKeyStore` (feature `kafka`) in a compacted topic every node of a
//! cluster on Kafka shares; [`conformance`] checks what every implementation promises.
//!
//! # Layout
//! - `key.rs`: [`KeyId`], [`DataKey`]; `subject.rs`: [`Subject`]; `store.rs`: [`KeyStore`];
//!   `group.rs`: concurrent `keys_for` calls made in one write.
//! - `seal.rs`: [`seal`] and [`open`] (ChaCha20-Poly1305, `ring`).
//! - `file/`: [`FileKeyStore`] (`mod.rs`) and its file format (`format.rs`).
//! - `kafka/` (feature `kafka`): `KafkaKeyStore` (`mod.rs`), its records (`record.rs`), what a
//!   node knows (`live.rs`), writing (`produce.rs`) and following (`follow.rs`) the topic.
//! - [`conformance`]: the checks every `KeyStore` passes; [`error`].
//!
//! ```
//! use rezef_keys::{FileKeyStore, KeyStore, Subject, open, seal};
//!
//! # fn main() -> rezef_keys::Result<()> {
//! let dir = tempfile::tempdir().expect("temp dir");
//! let store = FileKeyStore::open(dir.path())?;
//! let dana = Subject::identity("acme", "email", "dana.levi@example.com");
//!
//! let [(id, key)] = store.keys_for(&[dana])?.try_into().expect("one key");
//! let sealed = seal(&key, b"event-1", b"dana.levi@example.com");
//! assert_eq!(open(&key, b"event-1", &sealed)?, b"dana.levi@example.com");
//!
//! // Forgetting her: the key is gone, and the value with it.
//! store.destroy(&[id])?;
//! assert!(store.key(&id).is_none() && store.find(&dana).is_empty());
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod conformance;
pub mod error;
mod file;
mod group;
#[cfg(feature = "kafka")]
pub mod kafka;
mod key;
mod seal;
mod store;
mod subject;

pub use error::{Error, Result};
pub use file::FileKeyStore;
#[cfg(feature = "kafka")]
pub use kafka::KafkaKeyStore;
pub use key::{DataKey, KeyId};
pub use seal::{NONCE_LEN, Nonces, TAG_LEN, Unsealed, open, seal, seal_with};
pub use store::KeyStore;
pub use subject::Subject;
