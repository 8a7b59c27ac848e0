//! The behaviour every [`KeyStore`] implementation must show, as executable checks.
//!
//! Each `pub fn` takes `open`, which opens **one** store: empty on the first call, the same
//! store again on every later call (the check drops the previous one first, as a restart
//! does). It panics, saying what deviated. [`conformance_tests!`](crate::conformance_tests)
//! makes one `#[test]` per check; an implementation's test file is then:
//!
//! ```no_run
//! use rezef_keys::FileKeyStore;
//!
//! rezef_keys::conformance_tests!({
//!     let dir = tempfile::tempdir().expect("temp dir");
//!     let path = dir.path().join("keys");
//!     (dir, move || FileKeyStore::open(&path).expect("open"))
//! });
//! ```
//!
//! What a crash does to a store cannot be checked through the trait; each implementation
//! tests its recovery itself (`tests/file.rs` for [`FileKeyStore`](crate::FileKeyStore)).

use std::collections::HashSet;
use std::sync::Arc;

use crate::{KeyId, KeyStore, Subject};

/// One `#[test]` per check. `$fresh` is an expression giving `(guard, open)`: the guard (a
/// temp dir) lives until the check ends, `open` opens the check's store as described in the
/// [module](crate::conformance).
#[macro_export]
macro_rules! conformance_tests {
    ($fresh:expr) => {
        $crate::conformance_tests!(@each $fresh;
            fresh_store_knows_nothing,
            same_subject_same_key,
            one_call_makes_each_subject_one_key,
            subjects_are_told_apart,
            destroy_forgets,
            destroy_is_idempotent,
            destroy_leaves_others,
            concurrent_calls_agree,
        );
    };
    (@each $fresh:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let (_guard, open) = $fresh;
                $crate::conformance::$name(open);
            }
        )*
    };
}

/// The id and the key's bytes of each subject, from `keys_for`.
fn keys_for(store: &impl KeyStore, subjects: &[Subject]) -> Vec<(KeyId, [u8; 32])> {
    let keys = match store.keys_for(subjects) {
        Ok(keys) => keys,
        Err(e) => panic!("keys_for of {} subjects failed: {e}", subjects.len()),
    };
    assert_eq!(keys.len(), subjects.len(), "keys_for: one key per subject");
    keys.into_iter()
        .map(|(id, key)| (id, *key.as_bytes()))
        .collect()
}

fn one_key(store: &impl KeyStore, subject: &Subject) -> (KeyId, [u8; 32]) {
    keys_for(store, std::slice::from_ref(subject))[0]
}

fn destroy(store: &impl KeyStore, ids: &[KeyId]) {
    if let Err(e) = store.destroy(ids) {
        panic!("destroy of {} keys failed: {e}", ids.len());
    }
}

/// The key is live under its id and its subject's.
fn assert_live(store: &impl KeyStore, subject: &Subject, (id, key): (KeyId, [u8; 32]), when: &str) {
    assert_eq!(store.find(subject), [id], "{when}: find of a live subject");
    let found = store.key(&id).map(|k| *k.as_bytes());
    assert_eq!(found, Some(key), "{when}: key of a live id");
}

/// Neither the key nor the subject is known.
fn assert_gone(store: &impl KeyStore, subject: &Subject, id: KeyId, when: &str) {
    assert!(
        store.key(&id).is_none(),
        "{when}: key {id} of a destroyed id"
    );
    assert!(
        store.find(subject).is_empty(),
        "{when}: find of a forgotten subject"
    );
}

fn dana() -> Subject {
    Subject::identity("acme", "email", "dana.levi@example.com")
}

/// A new store has no key and finds no subject.
pub fn fresh_store_knows_nothing<S: KeyStore>(mut open: impl FnMut() -> S) {
    let store = open();
    assert!(
        store.key(&KeyId([7; 16])).is_none(),
        "key in an empty store"
    );
    assert!(store.find(&dana()).is_empty(), "find in an empty store");
    let none = keys_for(&store, &[]);
    assert!(none.is_empty());
    drop(store);
    let store = open();
    assert!(
        store.find(&dana()).is_empty(),
        "find in an empty store reopened"
    );
}

/// A subject keeps its key across calls and reopening.
pub fn same_subject_same_key<S: KeyStore>(mut open: impl FnMut() -> S) {
    let store = open();
    let first = one_key(&store, &dana());
    assert_live(&store, &dana(), first, "after keys_for");
    assert_eq!(one_key(&store, &dana()), first, "keys_for again");
    assert_eq!(
        keys_for(&store, &[dana(), dana()]),
        vec![first, first],
        "keys_for naming the subject twice"
    );
    drop(store);
    let store = open();
    assert_live(&store, &dana(), first, "reopened");
    assert_eq!(one_key(&store, &dana()), first, "keys_for reopened");
}

/// One call making several keys returns them in order, a subject named twice with one key,
/// and makes them all durable.
pub fn one_call_makes_each_subject_one_key<S: KeyStore>(mut open: impl FnMut() -> S) {
    let (a, b, c) = (
        Subject::customer("acme", "c-1"),
        Subject::customer("acme", "c-2"),
        Subject::identity("acme", "phone", "+972501234567"),
    );
    let store = open();
    let keys = keys_for(&store, &[a, b, a, c]);
    assert_eq!(keys[0], keys[2], "a subject named twice in one call");
    for (subject, key) in [(&a, keys[0]), (&b, keys[1]), (&c, keys[3])] {
        assert_live(&store, subject, key, "after one call");
    }
    drop(store);
    let store = open();
    for (subject, key) in [(&a, keys[0]), (&b, keys[1]), (&c, keys[3])] {
        assert_live(&store, subject, key, "reopened after one call");
    }
    assert_eq!(
        keys_for(&store, &[c, b, a]),
        vec![keys[3], keys[1], keys[0]]
    );
}

/// Subjects differing in tenant, kind, name or where the tenant ends have different ids and
/// keys.
pub fn subjects_are_told_apart<S: KeyStore>(mut open: impl FnMut() -> S) {
    let subjects = [
        Subject::customer("acme", "c-1"),
        Subject::customer("acme", "c-2"),
        Subject::customer("globex", "c-1"),
        Subject::identity("acme", "email", "c-1"),
        Subject::identity("acme", "phone", "c-1"),
        Subject::identity("globex", "email", "c-1"),
        Subject::named("acmec", &["ustomer:c-1"]),
    ];
    let store = open();
    let keys = keys_for(&store, &subjects);
    let ids: HashSet<KeyId> = keys.iter().map(|(id, _)| *id).collect();
    let bytes: HashSet<[u8; 32]> = keys.iter().map(|(_, key)| *key).collect();
    assert_eq!(ids.len(), subjects.len(), "distinct subjects share an id");
    assert_eq!(bytes.len(), subjects.len(), "distinct subjects share a key");
    drop(store);
    let store = open();
    for (subject, key) in subjects.iter().zip(keys) {
        assert_live(&store, subject, key, "reopened");
    }
}

/// A destroyed key is gone, after reopening too, and the subject then gets a new one.
pub fn destroy_forgets<S: KeyStore>(mut open: impl FnMut() -> S) {
    let store = open();
    let (old, old_key) = one_key(&store, &dana());
    destroy(&store, &[old]);
    assert_gone(&store, &dana(), old, "after destroy");
    drop(store);
    let store = open();
    assert_gone(&store, &dana(), old, "reopened after destroy");
    let new = one_key(&store, &dana());
    assert_ne!(new.0, old, "a forgotten subject got its old id back");
    assert_ne!(new.1, old_key, "a forgotten subject got its old key back");
    assert_live(&store, &dana(), new, "a new key after destroy");
    drop(store);
    let store = open();
    assert!(store.key(&old).is_none(), "reopened: the old key");
    assert_live(&store, &dana(), new, "reopened: the new key");
}

/// Destroying no key, an unknown key or a key twice succeeds and changes nothing else.
pub fn destroy_is_idempotent<S: KeyStore>(mut open: impl FnMut() -> S) {
    let other = Subject::customer("acme", "c-9");
    let store = open();
    let (id, _) = one_key(&store, &dana());
    let kept = one_key(&store, &other);
    destroy(&store, &[]);
    destroy(&store, &[KeyId([1; 16])]);
    destroy(&store, &[id, id]);
    destroy(&store, &[id, KeyId([2; 16])]);
    assert_gone(&store, &dana(), id, "destroyed twice");
    assert_live(&store, &other, kept, "beside repeated destroys");
    drop(store);
    let store = open();
    destroy(&store, &[id]);
    assert_gone(&store, &dana(), id, "destroyed again after reopening");
    assert_live(&store, &other, kept, "reopened beside repeated destroys");
}

/// Destroying some keys leaves the others readable, after reopening too.
pub fn destroy_leaves_others<S: KeyStore>(mut open: impl FnMut() -> S) {
    let subjects: Vec<Subject> = (0..5)
        .map(|n| Subject::customer("acme", &format!("c-{n}")))
        .collect();
    let store = open();
    let keys = keys_for(&store, &subjects);
    destroy(&store, &[keys[1].0, keys[3].0]);
    let check = |store: &S, when: &str| {
        for n in [0, 2, 4] {
            assert_live(store, &subjects[n], keys[n], when);
        }
        for n in [1, 3] {
            assert_gone(store, &subjects[n], keys[n].0, when);
        }
    };
    check(&store, "after destroy");
    drop(store);
    let store = open();
    check(&store, "reopened after destroy");
    let again = keys_for(&store, &[subjects[0], subjects[4]]);
    assert_eq!(again, vec![keys[0], keys[4]], "keys_for of the survivors");
}

/// Callers on several threads asking at once get one key for a subject they share and their
/// own keys for their own subjects (a store that groups concurrent calls answers each with its
/// part), all still there after a restart.
pub fn concurrent_calls_agree<S: KeyStore>(mut open: impl FnMut() -> S) {
    let store = Arc::new(open());
    let shared = Subject::customer("acme", "shared");
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (store, shared) = (store.clone(), shared);
            std::thread::spawn(move || {
                (0..20)
                    .map(|n| {
                        let own = Subject::customer("acme", &format!("t{t}-{n}"));
                        let keys = keys_for(&*store, &[own, shared]);
                        (own, keys[0], keys[1])
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut calls = Vec::new();
    for thread in threads {
        match thread.join() {
            Ok(keys) => calls.extend(keys),
            Err(_) => panic!("a thread calling keys_for panicked"),
        }
    }
    let seen: HashSet<_> = calls.iter().map(|(_, _, shared)| *shared).collect();
    assert_eq!(
        seen.len(),
        1,
        "one subject, concurrent calls: {} keys",
        seen.len()
    );
    let own: HashSet<_> = calls.iter().map(|(_, own, _)| *own).chain(seen).collect();
    assert_eq!(own.len(), calls.len() + 1, "every own subject its own key");
    match Arc::try_unwrap(store) {
        Ok(store) => drop(store),
        Err(_) => panic!("the threads still hold the store"),
    }
    let store = open();
    assert_live(
        &store,
        &shared,
        calls[0].2,
        "reopened after concurrent calls",
    );
    for (subject, key, _) in &calls {
        assert_live(
            &store,
            subject,
            *key,
            "an own key, reopened after concurrent calls",
        );
    }
}
