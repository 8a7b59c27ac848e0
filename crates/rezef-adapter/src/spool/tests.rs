//! The spool against a model: whatever is appended and not acknowledged reads back in order
//! after any sequence of appends, acknowledgements, reopenings and torn last appends.

use std::collections::VecDeque;

use proptest::prelude::*;

use super::*;

const LIMITS: SpoolLimits = SpoolLimits {
    max_bytes: 4096,
    segment_bytes: 256,
};

fn open(dir: &Path) -> Spool {
    Spool::open(dir, LIMITS).expect("opens")
}

/// Everything from the head, one event at a time and in batches of at most 3 and 100 bytes.
fn unacknowledged(spool: &Spool) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut at = spool.head();
    loop {
        let read = spool.read(at, 3, 100).expect("reads");
        let Some((_, last)) = read.last() else {
            break;
        };
        assert!(read.len() == 1 || Spool::framed_len(read.iter().map(|(r, _)| &r[..])) <= 100);
        at = *last;
        out.extend(read.into_iter().map(|(record, _)| record));
    }
    assert_eq!(at, spool.end());
    out
}

#[test]
fn given_appends_when_acknowledged_and_reopened_then_the_rest_reads_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut spool = open(dir.path());
    spool.append(&[b"a", b"b"]).expect("appended");
    spool.append(&[b"c"]).expect("appended");
    let read = spool.read(spool.head(), 1, 1 << 20).expect("reads");
    spool.acknowledge(read[0].1).expect("acknowledged");
    drop(spool);
    let spool = open(dir.path());
    assert_eq!(unacknowledged(&spool), vec![b"b".to_vec(), b"c".to_vec()]);
    assert_eq!(spool.head().seq, 1);
    assert_eq!(spool.end().seq, 3);
}

#[test]
fn given_a_full_spool_when_appending_then_it_refuses_with_the_limit_and_keeps_the_rest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut spool = open(dir.path());
    let big = vec![7; 1000];
    for _ in 0..4 {
        spool.append(&[&big]).expect("fits");
    }
    match spool.append(&[&big]) {
        Err(Error::SpoolFull { limit }) => assert_eq!(limit, 4096),
        other => panic!("expected SpoolFull, got {other:?}"),
    }
    assert_eq!(unacknowledged(&spool).len(), 4);
    // Acknowledging makes room.
    let read = spool.read(spool.head(), 1, 1 << 20).expect("reads");
    spool.acknowledge(read[0].1).expect("acknowledged");
    spool.append(&[&big]).expect("fits again");
}

#[test]
fn given_a_second_opener_when_the_spool_is_in_use_then_it_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _spool = open(dir.path());
    assert!(matches!(
        Spool::open(dir.path(), LIMITS),
        Err(Error::SpoolLocked { .. })
    ));
}

#[test]
fn given_acknowledged_segments_when_acknowledged_then_their_files_are_deleted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut spool = open(dir.path());
    for _ in 0..20 {
        spool.append(&[&[1; 100]]).expect("fits");
    }
    let segments = || {
        (fs::read_dir(dir.path()).expect("listed"))
            .filter(|e| {
                let path = e.as_ref().expect("entry").path();
                path.extension().is_some_and(|x| x == "seg")
            })
            .count()
    };
    assert!(segments() > 3);
    spool.acknowledge(spool.end()).expect("acknowledged");
    assert_eq!(segments(), 1);
    assert_eq!(spool.pending_bytes(), 0);
}

#[test]
fn given_damage_before_the_last_segment_when_opening_then_it_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut spool = open(dir.path());
    for _ in 0..10 {
        spool.append(&[&[1; 100]]).expect("fits");
    }
    drop(spool);
    let first = dir.path().join(segment_name(0));
    let mut bytes = fs::read(&first).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::write(&first, bytes).expect("written");
    assert!(matches!(
        Spool::open(dir.path(), LIMITS),
        Err(Error::SpoolCorrupt { .. })
    ));
}

#[derive(Debug, Clone)]
enum Op {
    Append(Vec<Vec<u8>>),
    Acknowledge(usize),
    Reopen,
    /// A crash in the middle of writing one more event: `cut` of its frame's bytes written.
    TornAppend {
        record: Vec<u8>,
        cut: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let record = proptest::collection::vec(any::<u8>(), 1..120);
    prop_oneof![
        4 => proptest::collection::vec(record.clone(), 1..4).prop_map(Op::Append),
        2 => (0usize..6).prop_map(Op::Acknowledge),
        1 => Just(Op::Reopen),
        1 => (record, any::<usize>()).prop_map(|(record, cut)| Op::TornAppend { record, cut }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn what_is_appended_and_not_acknowledged_reads_back_in_order(
        ops in proptest::collection::vec(op(), 1..40),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut spool = Some(open(dir.path()));
        let mut model: VecDeque<Vec<u8>> = VecDeque::new();
        for op in ops {
            let current = spool.as_mut().expect("open");
            match op {
                Op::Append(records) => {
                    let refs: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
                    match current.append(&refs) {
                        Ok(_) => model.extend(records),
                        Err(Error::SpoolFull { .. }) => {
                            let size = Spool::framed_len(refs.iter().copied());
                            prop_assert!(current.pending_bytes() + size > LIMITS.max_bytes);
                        }
                        Err(e) => panic!("append: {e}"),
                    }
                }
                Op::Acknowledge(n) => {
                    let read = current.read(current.head(), n.max(1), usize::MAX).expect("reads");
                    if n > 0 && let Some((_, to)) = read.last() {
                        current.acknowledge(*to).expect("acknowledged");
                        model.drain(..read.len());
                    }
                }
                Op::Reopen => {
                    drop(spool.take());
                    spool = Some(open(dir.path()));
                }
                Op::TornAppend { record, cut } => {
                    let active = current.segments.back().expect("a segment");
                    let (path, at) = (active.path.clone(), HEADER.len() as u64 + active.len);
                    let mut frame = Vec::new();
                    format::encode(&mut frame, &record);
                    let cut = cut % frame.len();
                    drop(spool.take());
                    let file = OpenOptions::new().write(true).open(&path).expect("opened");
                    file.write_all_at(&frame[..cut], at).expect("written");
                    drop(file);
                    spool = Some(open(dir.path()));
                }
            }
            let current = spool.as_ref().expect("open");
            prop_assert_eq!(unacknowledged(current), Vec::from(model.clone()));
        }
        drop(spool);
        prop_assert_eq!(unacknowledged(&open(dir.path())), Vec::from(model));
    }
}
