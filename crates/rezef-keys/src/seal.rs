//! Sealing a value under a data key: XChaCha20-Poly1305 with a random 24-byte nonce.
//!
//! A sealed value is `nonce (24) || ciphertext || tag (16)`: 40 bytes more than the plaintext.
//! The associated data (the event id, for records) is authenticated, not stored: a value
//! sealed for one event does not open for another. A nonce is 16 random bytes and a counter
//! ([`Nonces`]): the random part drawn once for many seals (one system call for a batch, not
//! one a value), the counter apart within it; 128 random bits make a repeated nonce under one
//! key negligible however many batches it seals, with nothing to persist.

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{Key, Tag, XChaCha20Poly1305, XNonce};

use crate::{DataKey, Error, Result};

/// Bytes of the nonce a sealed value starts with.
pub const NONCE_LEN: usize = 24;
/// Bytes of the tag a sealed value ends with.
pub const TAG_LEN: usize = 16;

fn cipher(key: &DataKey) -> XChaCha20Poly1305 {
    XChaCha20Poly1305::new(<&Key>::from(key.as_bytes()))
}

/// Nonces for the seals of one batch: 16 random bytes, then a 64-bit counter.
#[derive(Debug)]
pub struct Nonces {
    random: [u8; 16],
    next: u64,
}

impl Nonces {
    /// # Panics
    /// If the operating system's random source fails (it does not, on Linux once booted).
    pub fn new() -> Self {
        let mut random = [0; 16];
        getrandom::fill(&mut random).expect("the operating system's random source failed");
        Self { random, next: 0 }
    }

    fn next(&mut self) -> XNonce {
        let mut nonce = XNonce::default();
        nonce[..16].copy_from_slice(&self.random);
        nonce[16..].copy_from_slice(&self.next.to_le_bytes());
        self.next += 1;
        nonce
    }
}

impl Default for Nonces {
    fn default() -> Self {
        Self::new()
    }
}

/// Seals `plaintext` under `key`, binding `aad`: `nonce || ciphertext || tag`.
///
/// # Panics
/// As [`Nonces::new`], or when the plaintext exceeds the 256 GiB XChaCha20 can seal under
/// one nonce.
pub fn seal(key: &DataKey, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    seal_with(&mut Nonces::new(), key, aad, plaintext)
}

/// [`seal`] with the next nonce of `nonces`: for many values at once.
pub fn seal_with(nonces: &mut Nonces, key: &DataKey, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let nonce = nonces.next();
    let mut sealed = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
    sealed.extend_from_slice(&nonce);
    sealed.extend_from_slice(plaintext);
    let tag = cipher(key)
        .encrypt_inout_detached(&nonce, aad, (&mut sealed[NONCE_LEN..]).into())
        .expect("a plaintext within XChaCha20's limit");
    sealed.extend_from_slice(&tag);
    sealed
}

/// Opens a value [`seal`] made with the same key and associated data; [`Error::Unsealable`]
/// for any other key or associated data, a changed byte, or a value cut short.
pub fn open(key: &DataKey, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>> {
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return Err(Error::Unsealable);
    }
    let (nonce, rest) = sealed.split_at(NONCE_LEN);
    let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
    let nonce = XNonce::try_from(nonce).map_err(|_| Error::Unsealable)?;
    let tag = Tag::try_from(tag).map_err(|_| Error::Unsealable)?;
    let mut plaintext = ciphertext.to_vec();
    cipher(key)
        .decrypt_inout_detached(&nonce, aad, (&mut plaintext[..]).into(), &tag)
        .map_err(|_| Error::Unsealable)?;
    Ok(plaintext)
}
