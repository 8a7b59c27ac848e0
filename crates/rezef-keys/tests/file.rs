//! [`FileKeyStore`]: the conformance suite, then what only a file shows: recovery from a torn
//! tail, refusal of damage, the bytes a destroy leaves on disk, the lock.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rezef_keys::{Error, FileKeyStore, KeyId, KeyStore, Subject};

rezef_keys::conformance_tests!({
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("keys");
    (dir, move || FileKeyStore::open(&path).expect("open"))
});

const HEADER: &[u8] = b"rezef-keys 1\n";
/// A frame of one key: length, CRC, id, subject hash, key.
const ONE_KEY_FRAME: u64 = 8 + 16 + 32 + 32;

fn open(dir: &Path) -> FileKeyStore {
    FileKeyStore::open(dir).expect("open")
}

fn file(dir: &Path) -> PathBuf {
    dir.join("keys")
}

fn len(dir: &Path) -> u64 {
    fs::metadata(file(dir)).expect("key file").len()
}

fn customer(n: u32) -> Subject {
    Subject::customer("acme", &format!("c-{n}"))
}

/// Makes one key per call, for customers `0..n`; the ids.
fn make(dir: &Path, n: u32) -> Vec<KeyId> {
    let store = open(dir);
    (0..n)
        .map(|c| store.keys_for(&[customer(c)]).expect("keys_for")[0].0)
        .collect()
}

/// Every file under `dir`, read whole.
fn every_file(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files.extend(every_file(&path));
        } else {
            files.push((path.clone(), fs::read(&path).expect("read")));
        }
    }
    files
}

fn holds(bytes: &[u8], needle: &[u8]) -> bool {
    bytes.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn a_new_store_is_a_header_and_a_lock() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store_dir = dir.path().join("a").join("keys");
    drop(open(&store_dir));
    assert_eq!(fs::read(file(&store_dir)).expect("key file"), HEADER);
    let mut names: Vec<_> = fs::read_dir(&store_dir)
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["LOCK", "keys"]);
    let mode = fs::metadata(file(&store_dir))
        .expect("key file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the key file is its owner's only");
}

#[test]
fn one_call_is_one_frame() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(dir.path());
    store
        .keys_for(&[customer(1), customer(2), customer(1)])
        .expect("keys_for");
    assert_eq!(len(dir.path()), HEADER.len() as u64 + 8 + 2 * 80);
    store.keys_for(&[customer(2), customer(1)]).expect("again");
    assert_eq!(
        len(dir.path()),
        HEADER.len() as u64 + 8 + 2 * 80,
        "nothing new"
    );
}

#[test]
fn a_torn_tail_loses_only_the_last_call() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ids = make(dir.path(), 2);
    let whole = len(dir.path());
    let kept = whole - ONE_KEY_FRAME;
    for cut in (kept..whole).rev() {
        let key_file = fs::File::options().write(true).open(file(dir.path()));
        key_file.expect("key file").set_len(cut).expect("truncate");
        let store = open(dir.path());
        assert_eq!(
            len(dir.path()),
            kept,
            "cut to {cut}: the torn frame is cut off"
        );
        assert_eq!(store.find(&customer(0)), [ids[0]], "cut to {cut}");
        assert!(store.key(&ids[0]).is_some(), "cut to {cut}");
        assert!(
            store.find(&customer(1)).is_empty(),
            "cut to {cut}: the torn key"
        );
        // The store goes on appending after the cut, and reads that back.
        let again = store.keys_for(&[customer(1)]).expect("keys_for")[0].0;
        assert_eq!(len(dir.path()), whole);
        drop(store);
        assert_eq!(open(dir.path()).find(&customer(1)), [again], "cut to {cut}");
    }
}

#[test]
fn a_last_frame_damaged_or_followed_by_garbage_is_cut_off() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ids = make(dir.path(), 2);
    let whole = len(dir.path());
    let mut bytes = fs::read(file(dir.path())).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    fs::write(file(dir.path()), &bytes).expect("write");
    let store = open(dir.path());
    assert_eq!(len(dir.path()), whole - ONE_KEY_FRAME);
    assert!(store.key(&ids[0]).is_some() && store.key(&ids[1]).is_none());
    drop(store);

    // A crash that extended the file without writing it leaves zeros; or a partial header.
    for tail in [vec![0; 300], vec![88, 0, 0, 0, 1, 2]] {
        let before = len(dir.path());
        let mut bytes = fs::read(file(dir.path())).expect("read");
        bytes.extend_from_slice(&tail);
        fs::write(file(dir.path()), &bytes).expect("write");
        let store = open(dir.path());
        assert_eq!(len(dir.path()), before, "garbage {tail:?} cut off");
        assert!(store.key(&ids[0]).is_some());
    }
}

#[test]
fn damage_before_a_valid_frame_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    make(dir.path(), 3);
    let intact = fs::read(file(dir.path())).expect("read");
    let frames_end = HEADER.len() + 2 * ONE_KEY_FRAME as usize;
    for at in HEADER.len()..frames_end {
        let mut damaged = intact.clone();
        damaged[at] ^= 0x10;
        fs::write(file(dir.path()), &damaged).expect("write");
        let frame = (at - HEADER.len()) / ONE_KEY_FRAME as usize;
        let frame_at = (HEADER.len() + frame * ONE_KEY_FRAME as usize) as u64;
        match FileKeyStore::open(dir.path()) {
            Err(Error::Corrupt { offset, .. }) => {
                assert_eq!(offset, frame_at, "byte {at} flipped: the damaged frame")
            }
            other => panic!("byte {at} flipped: {other:?}"),
        }
        let after = fs::read(file(dir.path())).expect("read");
        assert_eq!(
            after, damaged,
            "byte {at} flipped: a refused file is left as it was"
        );
    }
}

#[test]
fn a_damaged_header_or_another_version_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    make(dir.path(), 1);
    let intact = fs::read(file(dir.path())).expect("read");
    for at in 0..HEADER.len() {
        let mut damaged = intact.clone();
        damaged[at] ^= 0x02;
        fs::write(file(dir.path()), &damaged).expect("write");
        let opened = FileKeyStore::open(dir.path());
        let refused = match at {
            11 => matches!(opened, Err(Error::UnsupportedVersion { version: 3, .. })),
            _ => matches!(opened, Err(Error::Corrupt { offset: 0, .. })),
        };
        assert!(refused, "header byte {at} flipped: {opened:?}");
    }
}

#[test]
fn a_destroyed_key_is_in_no_file_of_the_store() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(dir.path());
    let subjects: Vec<Subject> = (0..4).map(customer).collect();
    let keys = store.keys_for(&subjects).expect("keys_for");
    let more = store.keys_for(&[customer(9)]).expect("keys_for");
    let (gone, kept) = ([&keys[1], &more[0]], [&keys[0], &keys[2], &keys[3]]);
    for (_, key) in kept.iter().chain(&gone) {
        let on_disk = every_file(dir.path())
            .iter()
            .any(|(_, b)| holds(b, key.as_bytes()));
        assert!(
            on_disk,
            "a live key is in the key file (or the search is wrong)"
        );
    }

    store.destroy(&[gone[0].0, gone[1].0]).expect("destroy");
    let mode = fs::metadata(file(dir.path()))
        .expect("key file")
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "the rewritten key file is its owner's only"
    );
    let check = |when: &str| {
        for (path, bytes) in every_file(dir.path()) {
            for (id, key) in gone {
                assert!(
                    !holds(&bytes, key.as_bytes()),
                    "{when}: key bytes in {path:?}"
                );
                assert!(!holds(&bytes, id.as_bytes()), "{when}: key id in {path:?}");
            }
        }
        for (_, key) in kept {
            let on_disk = every_file(dir.path())
                .iter()
                .any(|(_, b)| holds(b, key.as_bytes()));
            assert!(on_disk, "{when}: a kept key is not in the key file");
        }
    };
    check("after destroy");
    // Destroyed again (a forgetting folded again by a rebuild): the file is not rewritten.
    let inode = |dir: &Path| {
        std::os::unix::fs::MetadataExt::ino(&fs::metadata(file(dir)).expect("key file"))
    };
    let before = inode(dir.path());
    store
        .destroy(&[gone[0].0, gone[1].0])
        .expect("destroyed again");
    assert_eq!(
        inode(dir.path()),
        before,
        "no rewrite for keys already gone"
    );
    store
        .keys_for(&[customer(20)])
        .expect("keys_for after destroy");
    drop(store);
    let store = open(dir.path());
    check("reopened and appended to");
    assert!(store.key(&keys[0].0).is_some());
}

#[test]
fn a_tmp_file_left_by_a_crashed_destroy_is_removed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ids = make(dir.path(), 2);
    fs::write(dir.path().join("keys.tmp"), b"rezef-keys 1\nhalf a rewri").expect("write");
    let store = open(dir.path());
    assert!(!dir.path().join("keys.tmp").exists());
    assert!(store.key(&ids[0]).is_some() && store.key(&ids[1]).is_some());
}

#[test]
fn a_second_open_is_refused_while_the_first_holds_the_store() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(dir.path());
    let second = FileKeyStore::open(dir.path());
    assert!(matches!(second, Err(Error::Locked { .. })), "{second:?}");
    drop(store);
    open(dir.path());
}

#[test]
fn a_file_holding_a_subject_twice_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    make(dir.path(), 1);
    let mut bytes = fs::read(file(dir.path())).expect("read");
    let frame = bytes[HEADER.len()..].to_vec();
    // The same frame again: the same id and subject twice.
    bytes.extend_from_slice(&frame);
    fs::write(file(dir.path()), &bytes).expect("write");
    let opened = FileKeyStore::open(dir.path());
    let second = (HEADER.len() as u64) + ONE_KEY_FRAME + 8;
    assert!(
        matches!(opened, Err(Error::Corrupt { offset, .. }) if offset == second),
        "{opened:?}"
    );
}
