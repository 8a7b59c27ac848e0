//! `kill -9` in the middle of checkpoints: a store reopened after the kill holds one whole
//! checkpoint, never part of one. Large checkpoints are written to sled in pieces through a
//! redo journal (`sled_store/pieces.rs`); this kills a real process while it writes them.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rezef_events::{ConversationId, CustomerId, TenantId};
use rezef_store::{JourneyStore, ProjectionBatch, SledStore};

/// Conversations each checkpoint points at its own customer: many sled pieces a checkpoint.
const CONVERSATIONS: usize = 12_000;
const CHILD: &str = "REZEF_CHECKPOINT_KILL_CHILD";

fn tenant() -> TenantId {
    TenantId::new("acme").expect("tenant")
}

fn conversation(i: usize) -> ConversationId {
    ConversationId::new(format!("conversation-{i}")).expect("conversation")
}

/// The customer every conversation belongs to in the checkpoint up to `offset`.
fn owner(offset: u64) -> CustomerId {
    CustomerId::new(format!("customer-{offset}")).expect("customer")
}

/// The child: checkpoint after checkpoint until killed, each moving every conversation to
/// the next customer.
fn write_until_killed(path: &str) {
    let store = SledStore::open(path).expect("open");
    let mut offset = store.projected_offset().expect("offset");
    loop {
        offset += 1;
        let conversations = (0..CONVERSATIONS)
            .map(|i| (tenant(), conversation(i), owner(offset)))
            .collect();
        store
            .commit(ProjectionBatch {
                next_offset: offset,
                conversations,
                ..Default::default()
            })
            .expect("commit");
    }
}

#[test]
fn a_kill_during_checkpoints_leaves_one_whole_checkpoint() {
    if let Ok(path) = std::env::var(CHILD) {
        write_until_killed(&path);
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store");
    let path = path.to_str().expect("utf-8 path");
    let mut seen = Vec::new();
    // Kill times spread over a checkpoint's phases (journal, seal, pieces, cleanup).
    for round in 0..12u64 {
        let mut child = Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "--exact",
                "a_kill_during_checkpoints_leaves_one_whole_checkpoint",
                "--nocapture",
            ])
            .env(CHILD, path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("child");
        std::thread::sleep(Duration::from_millis(300 + round * 37));
        child.kill().expect("kill -9");
        child.wait().expect("reaped");

        let started = Instant::now();
        let store = SledStore::open(path).expect("reopen after the kill");
        let offset = store.projected_offset().expect("offset");
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "recovery is quick"
        );
        if offset > 0 {
            for i in 0..CONVERSATIONS {
                let found = store
                    .conversation_owner(&tenant(), &conversation(i))
                    .expect("read");
                assert_eq!(
                    found,
                    Some(owner(offset)),
                    "conversation {i} after a kill, checkpoint {offset}"
                );
            }
        }
        seen.push(offset);
    }
    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]),
        "checkpoints never go back: {seen:?}"
    );
    assert!(seen.last() > Some(&3), "the child made progress: {seen:?}");
}
