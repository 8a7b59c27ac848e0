//! Which event ids were applied recently, so that a retried publish is applied once.
//!
//! An index of every event id ever applied would cost a store write per event and grow with
//! the log forever. Instead the projector remembers a window of the most recent ids, as
//! 128-bit BLAKE3 digests of `tenant \0 event_id` (a cryptographic hash: nobody can craft an
//! id that collides with another's), in a few *generations*: the newest fills up, and when
//! it is full the oldest is forgotten. So at least `window` of the latest applied ids are
//! always remembered (up to a third more), the promise documented on `Event.event_id` and
//! in docs/architecture.md. The same idea as EventStoreDB's idempotency cache or Azure
//! Service Bus's duplicate-detection window, persisted here with each checkpoint: every
//! checkpoint writes the digests it applied as one value per generation, and forgetting a
//! generation deletes its values.

use std::collections::VecDeque;

use rezef_events::{EventId, TenantId};

use rezef_events::by_tenant::HashMap;

/// Live generations (the window is split over all but the newest, which is filling).
const GENERATIONS: u64 = 4;

/// The digest an event id is remembered by.
pub fn digest(tenant: &TenantId, event: &EventId) -> u128 {
    let mut hasher = blake3::Hasher::new();
    hasher.update(tenant.as_str().as_bytes());
    hasher.update(&[0]);
    hasher.update(event.as_str().as_bytes());
    let bytes = hasher.finalize();
    let mut first = [0u8; 16];
    first.copy_from_slice(&bytes.as_bytes()[..16]);
    u128::from_be_bytes(first)
}

/// Digests applied in one generation, as a store keeps them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppliedIds {
    pub generation: u64,
    pub digests: Vec<u128>,
}

/// What the window changed since it was last asked: digests to persist, generations to
/// delete.
#[derive(Debug, Default)]
pub struct WindowChanges {
    pub applied: Vec<AppliedIds>,
    pub forgotten: Vec<u64>,
}

/// The recent-ids window of one projection: one map from digest to generation, so that
/// an event costs one lookup, however many generations are live.
#[derive(Debug)]
pub struct DedupWindow {
    per_generation: usize,
    /// Keyed by the digest's bytes: an array aligns an entry to 8 bytes, where a `u128`
    /// would pad it to 32.
    seen: HashMap<[u8; 16], u64>,
    /// The live generations, oldest first, and how many digests each holds.
    generations: VecDeque<(u64, usize)>,
    changes: WindowChanges,
}

impl DedupWindow {
    /// A window remembering at least `window` ids, loaded with what a store kept.
    pub fn new(window: usize, stored: Vec<AppliedIds>) -> Self {
        let per_generation = window.div_ceil(GENERATIONS as usize - 1).max(1);
        let mut stored = stored;
        stored.sort_by_key(|chunk| chunk.generation);
        let mut window = Self {
            per_generation,
            seen: HashMap::default(),
            generations: VecDeque::new(),
            changes: WindowChanges::default(),
        };
        for chunk in stored {
            if window
                .generations
                .back()
                .is_none_or(|(g, _)| *g != chunk.generation)
            {
                window.generations.push_back((chunk.generation, 0));
            }
            for digest in chunk.digests {
                window.remember(chunk.generation, digest);
            }
        }
        if window.generations.is_empty() {
            window.generations.push_back((0, 0));
        }
        // A smaller window than the stored one was configured: forget the surplus now.
        while window.generations.len() as u64 > GENERATIONS {
            window.forget_oldest();
        }
        window
    }

    fn remember(&mut self, generation: u64, digest: u128) {
        if self.seen.insert(digest.to_le_bytes(), generation).is_none()
            && let Some((_, count)) = self.generations.back_mut()
        {
            *count += 1;
        }
    }

    /// Whether an id with this digest was applied within the window.
    pub fn contains(&self, digest: u128) -> bool {
        self.seen.contains_key(&digest.to_le_bytes())
    }

    /// Remembers an applied id.
    pub fn insert(&mut self, digest: u128) {
        let full =
            (self.generations.back()).is_some_and(|(_, count)| *count >= self.per_generation);
        if full {
            let next = self.generations.back().map_or(0, |(g, _)| g + 1);
            self.generations.push_back((next, 0));
            if self.generations.len() as u64 > GENERATIONS {
                self.forget_oldest();
            }
        }
        let Some(&(generation, _)) = self.generations.back() else {
            return;
        };
        self.remember(generation, digest);
        match self.changes.applied.last_mut() {
            Some(chunk) if chunk.generation == generation => chunk.digests.push(digest),
            _ => self.changes.applied.push(AppliedIds {
                generation,
                digests: vec![digest],
            }),
        }
    }

    /// Forgets the oldest generation: one pass over the map for a generation's worth of
    /// inserts.
    fn forget_oldest(&mut self) {
        if let Some((generation, _)) = self.generations.pop_front() {
            self.seen.retain(|_, g| *g != generation);
            self.changes.applied.retain(|c| c.generation != generation);
            self.changes.forgotten.push(generation);
        }
    }

    /// What changed since the last call, for the next store write.
    pub fn take_changes(&mut self) -> WindowChanges {
        std::mem::take(&mut self.changes)
    }

    /// Ids remembered now.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> u128 {
        digest(
            &TenantId::new("acme").expect("valid"),
            &EventId::new(format!("e-{n}")).expect("valid"),
        )
    }

    #[test]
    fn digests_separate_tenants_and_ids() {
        let acme = TenantId::new("acme").expect("valid");
        let globex = TenantId::new("globex").expect("valid");
        let e = EventId::new("e-1").expect("valid");
        assert_eq!(digest(&acme, &e), digest(&acme, &e));
        assert_ne!(digest(&acme, &e), digest(&globex, &e));
        let joined = TenantId::new("acmee").expect("valid");
        let rest = EventId::new("-1").expect("valid");
        assert_ne!(digest(&acme, &e), digest(&joined, &rest));
    }

    #[test]
    fn at_least_the_window_is_remembered_and_older_ids_are_forgotten() {
        let mut window = DedupWindow::new(300, Vec::new());
        for n in 0..2000 {
            window.insert(id(n));
            // Every one of the latest 300 is still known.
            let from = n.saturating_sub(299);
            assert!((from..=n).all(|m| window.contains(id(m))), "at {n}");
        }
        assert!(!window.contains(id(0)), "long forgotten");
        assert!(
            window.len() <= 400,
            "at most a third more: {}",
            window.len()
        );
    }

    #[test]
    fn a_window_reloaded_from_its_changes_knows_the_same_ids() {
        let mut window = DedupWindow::new(30, Vec::new());
        let mut stored: Vec<AppliedIds> = Vec::new();
        for n in 0..100 {
            window.insert(id(n));
            if n % 7 == 0 {
                let changes = window.take_changes();
                stored.retain(|c| !changes.forgotten.contains(&c.generation));
                stored.extend(changes.applied);
            }
        }
        let changes = window.take_changes();
        stored.retain(|c| !changes.forgotten.contains(&c.generation));
        stored.extend(changes.applied);
        let reloaded = DedupWindow::new(30, stored);
        for n in 0..100 {
            assert_eq!(reloaded.contains(id(n)), window.contains(id(n)), "id {n}");
        }
    }

    #[test]
    fn a_smaller_window_forgets_the_surplus_on_load() {
        let stored = (0..10)
            .map(|g| AppliedIds {
                generation: g,
                digests: vec![id(g)],
            })
            .collect();
        let mut window = DedupWindow::new(3, stored);
        assert!(!window.contains(id(0)));
        assert!(window.contains(id(9)));
        assert_eq!(window.take_changes().forgotten, vec![0, 1, 2, 3, 4, 5]);
    }
}
