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

#[test]
fn buckets_are_read_by_tenant_width_and_range_of_start() {
    use rezef_events::{TenantId, Timestamp};
    use rezef_measure::{BucketKey, Figures, Interval, Measurer, record::Dims};
    use rezef_store::MeasureCheckpoint;

    let dir = tempfile::tempdir().expect("tempdir");
    let store = SledStore::open(dir.path().join("store")).expect("open");
    let minute = |m: i64| Timestamp::from_unix_nanos(m * 60_000_000_000);
    let bucket = |tenant: &str, width, start: i64, queue: &str, contacts| {
        let dims = Dims {
            queue: Some(queue.into()),
            ..Dims::default()
        };
        let figures = Figures {
            contacts,
            ..Figures::default()
        };
        let key = BucketKey {
            start: minute(start),
            dims,
        };
        (TenantId::new(tenant).expect("valid"), width, key, figures)
    };
    // Before 1970 too: starts sort by time whatever their sign. "ab" is a prefix of "abc".
    let buckets = vec![
        bucket("abc", Interval::Quarter, 15, "q1", 1),
        bucket("ab", Interval::Quarter, 30, "q2", 2),
        bucket("ab", Interval::Quarter, -15, "q1", 3),
        bucket("ab", Interval::Quarter, 0, "q1", 4),
        bucket("ab", Interval::Day, 0, "q1", 5),
        bucket("ab", Interval::Quarter, 15, "q1", 6),
    ];
    let measure = MeasureCheckpoint {
        measurer: Measurer::default(),
        buckets: buckets.clone(),
    };
    (store.commit(ProjectionBatch {
        next_offset: 1,
        measure: Some(Arc::new(measure)),
        ..ProjectionBatch::default()
    }))
    .expect("commit");
    let contacts = |tenant: Option<&str>, width, from: i64, to: i64| {
        let tenant = tenant.map(|t| TenantId::new(t).expect("valid"));
        (store.buckets(tenant.as_ref(), width, minute(from)..minute(to)))
            .map(|b| b.expect("bucket").3.contacts)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        contacts(Some("ab"), Interval::Quarter, -60, 60),
        [3, 4, 6, 2]
    );
    assert_eq!(contacts(Some("ab"), Interval::Quarter, 0, 30), [4, 6]);
    assert_eq!(contacts(None, Interval::Quarter, 15, 16), [6, 1]);
    assert_eq!(contacts(None, Interval::Day, -60, 60), [5]);
    let (tenant, width, key, figures) = buckets[1].clone();
    assert_eq!(
        store.bucket(&(tenant, width, key)).expect("read"),
        Some(figures)
    );
}
