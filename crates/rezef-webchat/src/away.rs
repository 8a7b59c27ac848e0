//! Visitors away for a moment: a chat whose connection dropped (a page reloaded, a phone
//! changing networks) stays open for `webchat.reconnect_grace_ms`. The widget reconnecting
//! with its chat id carries it on, with the agent who has it; only a visitor who stays away
//! ends it (`CUSTOMER_LEFT`, dated when the connection dropped).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The chats whose visitor is away, each with the ticket of its latest departure.
#[derive(Debug, Default)]
pub(crate) struct Away {
    chats: Mutex<HashMap<String, u64>>,
    tickets: AtomicU64,
}

impl Away {
    /// The visitor of chat `chat` went away: `end` runs after `grace`, unless they are
    /// [`Away::back`] by then.
    pub fn left(
        self: &Arc<Self>,
        chat: &str,
        grace: Duration,
        end: impl Future<Output = ()> + Send + 'static,
    ) {
        let ticket = self.tickets.fetch_add(1, Ordering::Relaxed);
        self.chats().insert(chat.to_owned(), ticket);
        let (away, chat) = (self.clone(), chat.to_owned());
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            let gone = {
                let mut chats = away.chats();
                let gone = chats.get(&chat) == Some(&ticket);
                if gone {
                    chats.remove(&chat);
                }
                gone
            };
            if gone {
                end.await;
            }
        });
    }

    /// The visitor is back in chat `chat`: it is not ended.
    pub fn back(&self, chat: &str) {
        self.chats().remove(chat);
    }

    fn chats(&self) -> MutexGuard<'_, HashMap<String, u64>> {
        self.chats.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    /// How many ends ran, and an end that counts when it runs.
    fn counter() -> (
        Arc<AtomicUsize>,
        impl Fn() -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>>,
    ) {
        let ended = Arc::new(AtomicUsize::new(0));
        let count = ended.clone();
        (ended, move || {
            let count = count.clone();
            Box::pin(async move {
                count.fetch_add(1, Ordering::SeqCst);
            })
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_visitor_who_stays_away_ends_the_chat_once_the_grace_is_over() {
        let away = Arc::new(Away::default());
        let (ended, end) = counter();
        away.left("c-1", Duration::from_secs(30), end());
        tokio::time::sleep(Duration::from_secs(29)).await;
        assert_eq!(ended.load(Ordering::SeqCst), 0);
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(ended.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_visitor_back_in_time_keeps_the_chat_and_a_later_departure_counts_anew() {
        let away = Arc::new(Away::default());
        let (ended, end) = counter();
        away.left("c-1", Duration::from_secs(30), end());
        tokio::time::sleep(Duration::from_secs(10)).await;
        away.back("c-1");
        tokio::time::sleep(Duration::from_secs(15)).await;
        away.left("c-1", Duration::from_secs(30), end());
        tokio::time::sleep(Duration::from_secs(25)).await;
        assert_eq!(
            ended.load(Ordering::SeqCst),
            0,
            "the first departure was undone"
        );
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(ended.load(Ordering::SeqCst), 1, "the second one ends it");
    }
}
