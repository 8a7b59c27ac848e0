//! A data key and its id.
//!
//! A [`KeyId`] is random, not derived from the subject: records and `CustomerForgotten` events
//! name it in the clear, and it must tell nothing about whose key it is. A [`DataKey`] lives on
//! the heap, is wiped when its last copy is dropped and never printed.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::{Error, Result};

/// The id of a data key: 16 random bytes, written as 32 lower-case hexadecimal digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct KeyId(pub [u8; 16]);

impl KeyId {
    /// A new random id.
    pub fn generate() -> Result<KeyId> {
        let mut id = [0; 16];
        getrandom::fill(&mut id).map_err(Error::Random)?;
        Ok(KeyId(id))
    }

    /// Its 16 bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl FromStr for KeyId {
    type Err = Error;

    /// 32 hexadecimal digits, either case.
    fn from_str(s: &str) -> Result<KeyId> {
        let digits = s.as_bytes();
        if digits.len() != 32 {
            return Err(Error::BadKeyId);
        }
        let mut id = [0; 16];
        for (byte, pair) in id.iter_mut().zip(digits.chunks_exact(2)) {
            *byte = hex(pair[0])? << 4 | hex(pair[1])?;
        }
        Ok(KeyId(id))
    }
}

fn hex(digit: u8) -> Result<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
        .ok_or(Error::BadKeyId)
}

/// A 256-bit data key. Its copies share one allocation (a clone is a count, not a copy of
/// the key), wiped from memory when the last is dropped; `Debug` shows none of it.
#[derive(Clone)]
pub struct DataKey(Arc<KeyBytes>);

/// The bytes of a key, wiped when dropped.
struct KeyBytes([u8; 32]);

impl Drop for KeyBytes {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl DataKey {
    /// A new random key.
    pub fn generate() -> Result<DataKey> {
        let mut key = KeyBytes([0; 32]);
        getrandom::fill(&mut key.0).map_err(Error::Random)?;
        Ok(DataKey(Arc::new(key)))
    }

    /// A key from its bytes (as a store reads them back).
    pub fn from_bytes(bytes: &[u8; 32]) -> DataKey {
        DataKey(Arc::new(KeyBytes(*bytes)))
    }

    /// Its 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0.0
    }
}

impl ZeroizeOnDrop for DataKey {}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_id_hex_round_trip() {
        let id = KeyId([
            0x01, 0xab, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0x9e,
        ]);
        let text = id.to_string();
        assert_eq!(text, format!("01abff{}109e", "00".repeat(11)));
        assert_eq!(text.parse::<KeyId>().ok(), Some(id));
        assert_eq!(text.to_uppercase().parse::<KeyId>().ok(), Some(id));
    }

    #[test]
    fn bad_key_ids_are_refused() {
        for bad in [
            "",
            "01",
            &"0".repeat(31),
            &"0".repeat(33),
            &format!("{}g", "0".repeat(31)),
            &format!("{}é", "0".repeat(30)),
        ] {
            assert!(
                matches!(bad.parse::<KeyId>(), Err(Error::BadKeyId)),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn debug_shows_no_key_byte() {
        let key = DataKey::from_bytes(&[0xab; 32]);
        assert_eq!(format!("{key:?}"), "DataKey(..)");
    }
}
