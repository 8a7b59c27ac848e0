//! Sealing a value under a data key: ChaCha20-Poly1305 (`ring`, RFC 8439) with a 12-byte
//! nonce.
//!
//! A sealed value is `nonce (12) || ciphertext || tag (16)`: 28 bytes more than the plaintext.
//! The associated data (the event id and key id, for records) is authenticated, not stored: a
//! value sealed for one event does not open for another. A nonce is 8 random bytes and a
//! counter ([`Nonces`]): the random part drawn once for many seals (one system call for a
//! batch, not one a value), the counter apart within it. A key is one customer's or
//! identity's, so it seals few batches in its life: two of them drawing the same 64 random
//! bits is negligible (a key sealing a million batches: below one in 10^7), with nothing to
//! persist.
//!
//! `ring` rather than RustCrypto's `chacha20poly1305`: for the short values of an event
//! (tens of bytes) it seals in about 250 ns against 1.7 µs, most of which was Poly1305's
//! vector back end setting up and finishing (BENCHMARKS.md, "Sealing personal values").

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, Tag, UnboundKey};

use crate::{DataKey, Error, Result};

/// Bytes of the nonce a sealed value starts with.
pub const NONCE_LEN: usize = ring::aead::NONCE_LEN;
/// Bytes of the tag a sealed value ends with.
pub const TAG_LEN: usize = 16;

fn cipher(key: &DataKey) -> LessSafeKey {
    let key = UnboundKey::new(&CHACHA20_POLY1305, key.as_bytes())
        .expect("a data key is 32 bytes, ChaCha20-Poly1305's key length");
    LessSafeKey::new(key)
}

/// Nonces for the seals of one batch: 8 random bytes, then a 32-bit counter (new random
/// bytes when it runs out).
#[derive(Debug)]
pub struct Nonces {
    random: [u8; 8],
    next: u32,
}

impl Nonces {
    /// # Panics
    /// If the operating system's random source fails (it does not, on Linux once booted).
    pub fn new() -> Self {
        let mut random = [0; 8];
        getrandom::fill(&mut random).expect("the operating system's random source failed");
        Self { random, next: 0 }
    }

    fn next(&mut self) -> [u8; NONCE_LEN] {
        if self.next == u32::MAX {
            *self = Self::new();
        }
        let mut nonce = [0; NONCE_LEN];
        nonce[..8].copy_from_slice(&self.random);
        nonce[8..].copy_from_slice(&self.next.to_le_bytes());
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
/// As [`Nonces::new`], or when the plaintext exceeds the 256 GiB ChaCha20 can seal under one
/// nonce.
pub fn seal(key: &DataKey, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    seal_with(&mut Nonces::new(), key, aad, plaintext)
}

/// [`seal`] with the next nonce of `nonces`: for many values at once.
pub fn seal_with(nonces: &mut Nonces, key: &DataKey, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let mut sealed = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
    let unsealed = nonces.begin(&mut sealed);
    sealed.extend_from_slice(plaintext);
    unsealed.seal(key, aad, &mut sealed);
    sealed
}

impl Nonces {
    /// Starts a sealed value at the end of `out`, its nonce written: the caller appends the
    /// plaintext to `out`, then [`Unsealed::seal`] seals it where it is. For records that
    /// write their values straight into their own bytes, with no buffer a value.
    pub fn begin(&mut self, out: &mut Vec<u8>) -> Unsealed {
        let nonce = self.next();
        out.extend_from_slice(&nonce);
        Unsealed {
            plaintext_at: out.len(),
            nonce,
        }
    }
}

/// A value begun by [`Nonces::begin`]: its plaintext is what `out` holds after the nonce.
#[derive(Debug)]
#[must_use = "the plaintext stays in the clear until it is sealed"]
pub struct Unsealed {
    plaintext_at: usize,
    nonce: [u8; NONCE_LEN],
}

impl Unsealed {
    /// Seals the plaintext at the end of `out` in place and appends the tag, binding `aad`:
    /// `out` then ends with `nonce || ciphertext || tag`, as [`seal`] makes it.
    ///
    /// # Panics
    /// When the plaintext exceeds the 256 GiB ChaCha20 can seal under one nonce, or `out`
    /// is shorter than when the value was begun.
    pub fn seal(self, key: &DataKey, aad: &[u8], out: &mut Vec<u8>) {
        let tag = cipher(key)
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(self.nonce),
                Aad::from(aad),
                &mut out[self.plaintext_at..],
            )
            .expect("a plaintext within ChaCha20's limit");
        out.extend_from_slice(tag.as_ref());
    }
}

/// Opens a value [`seal`] made with the same key and associated data; [`Error::Unsealable`]
/// for any other key or associated data, a changed byte, or a value cut short.
pub fn open(key: &DataKey, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>> {
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return Err(Error::Unsealable);
    }
    let (nonce, rest) = sealed.split_at(NONCE_LEN);
    let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| Error::Unsealable)?;
    let tag: [u8; TAG_LEN] = tag.try_into().map_err(|_| Error::Unsealable)?;
    let mut plaintext = ciphertext.to_vec();
    cipher(key)
        .open_in_place_separate_tag(nonce, Aad::from(aad), Tag::from(tag), &mut plaintext, 0..)
        .map_err(|_| Error::Unsealable)?;
    Ok(plaintext)
}
