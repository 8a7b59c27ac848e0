//! The projector over a journey store whose disk fills up and is freed again: sled on a real
//! tmpfs of 16 MiB (`rezef_log::small_disk`; skipped, saying why, where mounting is not
//! permitted), the log on an ordinary temp dir.
//!
//! What must hold: a checkpoint that cannot be written stalls the projector (its health says
//! why) without stopping it; once space is free, sled is reopened, the checkpoint written,
//! the projector runs again by itself, and the store on disk ends with every event folded.

mod common;

use std::sync::Arc;
use std::time::Duration;

use rezef_events::event::Participant;
use rezef_events::testing::EventBuilder;
use rezef_events::{Event, Journey};
use rezef_log::Log;
use rezef_log::small_disk::SmallDisk;
use rezef_store::{
    CachedStore, JourneyStore, ProjectionConfig, ProjectionWatch, Projector, ProjectorHealth,
    SledStore,
};

use common::Fixture;

/// `customers` chatting for `rounds` messages each.
fn traffic(customers: usize, rounds: usize, from: usize) -> Vec<Event> {
    let mut chats: Vec<_> = (0..customers)
        .map(|c| EventBuilder::customer("acme", &format!("c-{c}")).ids(&format!("c{c}-{from}")))
        .collect();
    let mut events = Vec::new();
    for _ in 0..rounds {
        for chat in &mut chats {
            events.push(chat.message(Participant::Customer, &"hello ".repeat(40)));
        }
    }
    events
}

async fn wait_health(watch: &ProjectionWatch, want: fn(&ProjectorHealth) -> bool, what: &str) {
    let mut health = watch.health();
    let waited = tokio::time::timeout(Duration::from_secs(20), health.wait_for(want))
        .await
        .is_ok();
    let now = health.borrow().clone();
    assert!(waited, "the projector is not {what}: {now:?}");
}

async fn projected(fixture: &Fixture, watch: &ProjectionWatch) {
    let end = fixture.log.end_offset();
    let reached = tokio::time::timeout(Duration::from_secs(20), watch.wait_past(end - 1)).await;
    assert_eq!(reached.ok(), Some(true), "projected up to {end}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_store_disk_stalls_the_projector_until_space_returns() {
    let Some(disk) = SmallDisk::mount_or_skip(16 * 1024 * 1024) else {
        return;
    };
    // Given a projector checkpointing after every step into sled on a small disk
    let fixture = Fixture::new();
    let path = disk.path().join("store");
    let sled = SledStore::open_with_cache(&path, 1 << 20).expect("store");
    let config = ProjectionConfig {
        checkpoint_interval: Duration::ZERO,
        checkpoint_dirty_bytes: 1,
        ..ProjectionConfig::default()
    };
    let store = Arc::new(CachedStore::new(Arc::new(sled), config).expect("cached"));
    let projector = Projector::new(fixture.log(), store.clone()).expect("projector");
    let watch = projector.watch();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(projector.run(async {
        let _ = stopped.await;
    }));
    fixture.publish(&traffic(20, 2, 0)).await;
    projected(&fixture, &watch).await;

    // When the disk fills up while events come
    disk.fill_leaving(0);
    for round in 1..40 {
        fixture.publish(&traffic(50, 2, round)).await;
        if !watch.health().borrow().is_running() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Then the projector stalls, saying why, and still folds in memory
    wait_health(
        &watch,
        |h| matches!(h, ProjectorHealth::Stalled { .. }),
        "stalled",
    )
    .await;
    projected(&fixture, &watch).await;

    // When space is freed, it runs again by itself and folds what comes next
    disk.free();
    wait_health(&watch, ProjectorHealth::is_running, "running").await;
    fixture.publish(&traffic(20, 1, 100)).await;
    projected(&fixture, &watch).await;

    // And the store on disk holds every event folded, as a projection of the whole log does
    let _ = stop.send(());
    task.await.expect("joins").expect("a clean stop");
    let end = fixture.log.end_offset();
    let folded: Vec<Journey> = store.journeys(None).map(|j| j.expect("decodes")).collect();
    drop(store);
    let reopened = common::open_sled(&path);
    assert_eq!(reopened.projected_offset().expect("offset"), end);
    let fresh = fixture.store("fresh");
    common::project(&fixture, &fresh).await;
    let expected: Vec<Journey> = fresh.journeys(None).map(|j| j.expect("decodes")).collect();
    let on_disk: Vec<Journey> = reopened
        .journeys(None)
        .map(|j| j.expect("decodes"))
        .collect();
    assert_eq!(on_disk, expected);
    assert_eq!(folded, expected);
}
