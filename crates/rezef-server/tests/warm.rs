//! A server started again over its data warms its journey cache from the store before any
//! call asks (`[projection] warm_cache`, `rezef_store::warm`), unless told not to.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use rezef_adapter::proto;
use rezef_server::{ServerConfig, SystemClock};

use common::{Running, chat};

const CUSTOMERS: usize = 20;

/// A data directory where a server projected `CUSTOMERS` chats and stopped.
async fn chats_then_stopped() -> tempfile::TempDir {
    let server = Running::start_with(ServerConfig::default()).await;
    let mut client = server.client().await;
    let mut last = None;
    for n in 0..CUSTOMERS {
        let chat = chat("acme", &format!("v-{n}"));
        let events = vec![
            chat.interaction_started(proto::Direction::Inbound),
            chat.message(proto::Participant::Customer, "hello"),
        ];
        let ack = client.publish(events).await.expect("publish");
        last = Some((chat, ack.first_offset + u64::from(ack.count) - 1));
    }
    let (chat, offset) = last.expect("published");
    let seen = client
        .journey("acme", chat.customer_ref(), Some(offset))
        .await;
    assert!(seen.expect("GetJourney").journey.is_some());
    server.stop_keeping().await
}

async fn restarted(warm_cache: bool) -> Running {
    let dir = chats_then_stopped().await;
    let mut config = ServerConfig::default();
    config.projection.warm_cache = warm_cache;
    Running::start_in(config, Arc::new(SystemClock), dir).await
}

async fn until_warm(server: &Running) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.cache.warming() > 0 {
        assert!(Instant::now() < deadline, "still warming");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_restarted_server_warms_its_cache_before_any_call() {
    // Given a server that projected twenty chats and stopped
    // When it starts again over the same data, and nobody calls it
    let server = restarted(true).await;
    until_warm(&server).await;

    // Then its cache holds the chats' identity links and journeys: about 20 × (a link of
    // some 190 bytes and a journey of at least 1 KB), as the cache counts them
    let weight = server.cache.weight();
    assert!(weight > CUSTOMERS as u64 * 1_000, "{weight} bytes");
    server.stop().await;
}

#[tokio::test]
async fn a_server_told_not_to_warm_starts_with_an_empty_cache() {
    // Given the same data, and `[projection] warm_cache = false`
    // When the server starts again over it
    let server = restarted(false).await;
    until_warm(&server).await;

    // Then nothing was read into its cache
    assert_eq!(server.cache.weight(), 0);
    server.stop().await;
}
