//! The hash chain over frames: tamper evidence for the embedded log.
//!
//! A CRC catches accidents, not intent: whoever changes a frame can recompute its CRC. So
//! every version-2 frame also carries a BLAKE3 hash of its own bytes chained to the previous
//! frame's hash. Changing, deleting, inserting or reordering a frame then breaks the chain at
//! that frame, unless every later hash is recomputed too, which an outside copy of the head
//! (the last hash, see [`crate::verify`]) exposes. The exact definition is in `FORMAT.md`.

use std::fmt;

/// A link of the chain: the 32-byte BLAKE3 hash a version-2 frame carries.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChainHash(pub [u8; 32]);

impl ChainHash {
    /// The predecessor of the first version-2 frame of a log (and of one following
    /// version-1 frames): 32 zero bytes.
    pub const GENESIS: ChainHash = ChainHash([0; 32]);

    /// The hash as lowercase hex, 64 characters.
    pub fn to_hex(&self) -> String {
        blake3::Hash::from_bytes(self.0).to_hex().to_string()
    }

    /// The link after `previous` for a frame whose other covered bytes are `magic`, `fixed`
    /// (the header fields between the CRC and the chain fields) and `records`, in that order;
    /// `frame.rs` cuts a frame into these parts.
    pub(crate) fn link(previous: &ChainHash, magic: &[u8], fixed: &[u8], records: &[u8]) -> Self {
        let mut hasher = blake3::Hasher::new();
        hasher.update(&previous.0);
        hasher.update(magic);
        hasher.update(fixed);
        hasher.update(records);
        ChainHash(*hasher.finalize().as_bytes())
    }
}

impl fmt::Display for ChainHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ChainHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChainHash({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn genesis_is_zeros_and_hex_is_64_chars() {
        assert_eq!(ChainHash::GENESIS.to_hex(), "0".repeat(64));
        let linked = ChainHash::link(&ChainHash::GENESIS, b"RZLG", b"fixed", b"records");
        assert_eq!(linked.to_hex().len(), 64);
        assert_ne!(linked, ChainHash::GENESIS);
    }

    #[test]
    fn the_link_depends_on_the_predecessor_and_every_part() {
        let base = ChainHash::link(&ChainHash::GENESIS, b"RZLG", b"fixed", b"records");
        let other_previous = ChainHash([1; 32]);
        assert_ne!(
            ChainHash::link(&other_previous, b"RZLG", b"fixed", b"records"),
            base
        );
        assert_ne!(
            ChainHash::link(&ChainHash::GENESIS, b"RZLG", b"fixeD", b"records"),
            base
        );
        assert_ne!(
            ChainHash::link(&ChainHash::GENESIS, b"RZLG", b"fixed", b"recordS"),
            base
        );
    }
}
