//! Sealing and opening values: what opens, and that nothing else does.

use proptest::prelude::*;
use rezef_keys::{DataKey, Error, NONCE_LEN, Nonces, TAG_LEN, open, seal, seal_with};

fn key(byte: u8) -> DataKey {
    DataKey::from_bytes(&[byte; 32])
}

fn unsealable(result: rezef_keys::Result<Vec<u8>>) -> bool {
    matches!(result, Err(Error::Unsealable))
}

#[test]
fn a_sealed_value_opens_with_its_key_and_aad() {
    let key = DataKey::generate().expect("random key");
    for plaintext in [&b""[..], b"4580 1234 5678 9012", &[0xff; 1000]] {
        let sealed = seal(&key, b"event-1", plaintext);
        assert_eq!(sealed.len(), NONCE_LEN + plaintext.len() + TAG_LEN);
        assert_eq!(open(&key, b"event-1", &sealed).expect("opens"), plaintext);
    }
    let sealed = seal(&key, b"", b"no aad");
    assert_eq!(open(&key, b"", &sealed).expect("opens"), b"no aad");
}

#[test]
fn sealing_twice_differs() {
    let key = key(1);
    let (one, two) = (seal(&key, b"e", b"dana"), seal(&key, b"e", b"dana"));
    assert_ne!(one[..NONCE_LEN], two[..NONCE_LEN], "a nonce drawn twice");
    assert_ne!(one, two);
}

#[test]
fn the_seals_of_one_batch_have_distinct_nonces_and_open() {
    let key = key(1);
    let mut nonces = Nonces::new();
    let sealed: Vec<_> = (0..1000)
        .map(|_| seal_with(&mut nonces, &key, b"e", b"dana"))
        .collect();
    let distinct: std::collections::HashSet<_> = sealed.iter().map(|s| &s[..NONCE_LEN]).collect();
    assert_eq!(distinct.len(), sealed.len());
    assert!(
        sealed
            .iter()
            .all(|s| open(&key, b"e", s).expect("opens") == b"dana")
    );
    let other = seal_with(&mut Nonces::new(), &key, b"e", b"dana");
    assert!(
        !distinct.contains(&other[..NONCE_LEN]),
        "another batch draws its own"
    );
}

#[test]
fn the_plaintext_is_not_in_the_sealed_value() {
    let plaintext = b"dana.levi@example.com";
    let sealed = seal(&key(1), b"event-1", plaintext);
    assert!(!sealed.windows(plaintext.len()).any(|w| w == plaintext));
}

#[test]
fn another_aad_or_key_does_not_open() {
    let sealed = seal(&key(1), b"event-1", b"dana");
    assert!(unsealable(open(&key(1), b"event-2", &sealed)));
    assert!(unsealable(open(&key(1), b"", &sealed)));
    assert!(unsealable(open(&key(2), b"event-1", &sealed)));
}

#[test]
fn any_changed_cut_or_added_byte_does_not_open() {
    let key = key(3);
    let sealed = seal(&key, b"event-1", b"+972501234567");
    for at in 0..sealed.len() {
        let mut changed = sealed.clone();
        changed[at] ^= 0x01;
        assert!(
            unsealable(open(&key, b"event-1", &changed)),
            "byte {at} flipped"
        );
    }
    for len in 0..sealed.len() {
        assert!(
            unsealable(open(&key, b"event-1", &sealed[..len])),
            "cut to {len}"
        );
    }
    let mut longer = sealed.clone();
    longer.push(0);
    assert!(unsealable(open(&key, b"event-1", &longer)), "a byte added");
}

proptest! {
    #[test]
    fn round_trip(key in any::<[u8; 32]>(), aad in prop::collection::vec(any::<u8>(), 0..64), plaintext in prop::collection::vec(any::<u8>(), 0..512)) {
        let key = DataKey::from_bytes(&key);
        let sealed = seal(&key, &aad, &plaintext);
        prop_assert_eq!(open(&key, &aad, &sealed).expect("opens"), plaintext);
    }

    #[test]
    fn tampering_is_caught(
        key in any::<[u8; 32]>(),
        plaintext in prop::collection::vec(any::<u8>(), 0..256),
        at in any::<prop::sample::Index>(),
        bit in 0..8u8,
        other_aad in prop::collection::vec(any::<u8>(), 1..32),
    ) {
        let key = DataKey::from_bytes(&key);
        let sealed = seal(&key, b"event-1", &plaintext);
        let mut flipped = sealed.clone();
        flipped[at.index(sealed.len())] ^= 1 << bit;
        prop_assert!(unsealable(open(&key, b"event-1", &flipped)));
        prop_assume!(other_aad != b"event-1");
        prop_assert!(unsealable(open(&key, &other_aad, &sealed)));
    }
}
