//! The sled store: the shared conformance suite, persistence and the format guard.

use std::sync::Arc;

use rezef_events::journey::STATE_FORMAT;
use rezef_store::{Error, JourneyStore, MEASURE_FORMAT, ProjectionBatch, SledStore, conformance};

#[test]
fn sled_store_conforms() {
    let dirs = std::cell::RefCell::new(Vec::new());
    conformance::run_all(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SledStore::open(dir.path().join("store")).expect("open");
        dirs.borrow_mut().push(dir);
        Arc::new(store)
    });
}

#[test]
fn committed_state_survives_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store");
    {
        let store = SledStore::open(&path).expect("open");
        store
            .commit(ProjectionBatch {
                next_offset: 42,
                ..Default::default()
            })
            .expect("commit");
        store.flush().expect("flush");
    }
    let store = SledStore::open(&path).expect("reopen");
    assert_eq!(store.projected_offset().expect("offset"), 42);
}

#[test]
fn a_store_of_another_format_is_refused_with_advice() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store");
    {
        let db = sled::open(&path).expect("raw sled");
        db.insert("meta/format", &(STATE_FORMAT + 1).to_be_bytes())
            .expect("insert");
        db.flush().expect("flush");
    }
    let error = SledStore::open(&path).expect_err("format mismatch");
    assert!(matches!(error, Error::FormatMismatch { .. }), "{error}");
    assert!(error.to_string().contains("rezef rebuild"));
}

#[test]
fn a_store_of_the_first_measurement_format_is_refused_with_advice() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store");
    {
        let db = sled::open(&path).expect("raw sled");
        db.insert("meta/format", &STATE_FORMAT.to_be_bytes())
            .expect("insert");
        // Format 1: bucket keys that do not sort by time.
        db.insert("meta/measure-format", &1u32.to_be_bytes())
            .expect("insert");
        db.flush().expect("flush");
    }
    let error = SledStore::open(&path).expect_err("measurement format mismatch");
    assert!(
        matches!(
            error,
            Error::MeasureFormatMismatch {
                found: 1,
                expected: 2
            }
        ),
        "{error}"
    );
    assert_eq!(MEASURE_FORMAT, 2);
    assert!(error.to_string().contains("rezef rebuild"), "{error}");
}

#[test]
fn a_store_just_let_go_of_opens_once_its_lock_is_free() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store");
    let held = SledStore::open(&path).expect("open");
    let release = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(300));
        drop(held);
    });
    let store = SledStore::open(&path).expect("opens once the other handle lets go");
    release.join().expect("release");
    assert_eq!(store.projected_offset().expect("offset"), 0);
}

#[test]
fn a_store_held_open_elsewhere_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store");
    let _held = SledStore::open(&path).expect("open");
    let error = SledStore::open(&path).expect_err("the lock stays taken");
    assert!(matches!(error, Error::Open { .. }), "{error}");
    assert!(error.to_string().contains("lock"), "{error}");
}
