//! The members topic: who owns which partition, and where to reach them.
//!
//! Kafka's group protocol tells each member only its own partitions, so every node also
//! appends its assignment to a one-partition topic (`<events topic>.members`) whenever it
//! changes, and every node reads that topic from the start into a map of partition → owner.
//! The latest claim of a partition wins; a node's later announcement without a partition
//! withdraws its claim. A node killed outright never withdraws, but the group gives its
//! partitions to others, whose claims come later and replace it; until then a forward to it
//! fails and the caller is told to retry.
//!
//! Nodes repeat their announcement as a heartbeat, so the directory also knows when each was
//! last heard of (by the record's timestamp): a node silent for longer than the group's
//! session timeout is presumed dead, and the others start a rebalance to evict it (see
//! `crate::node`) on brokers that do not expire sessions by themselves.

// Without the `kafka` feature there is no members topic: the directory stays empty and what
// reads and writes the topic goes unused.
#![cfg_attr(not(feature = "kafka"), allow(dead_code))]

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use rezef_log::{Log, tail};
use serde::{Deserialize, Serialize};
use tracing::{Instrument, debug, info_span, warn};

use super::Member;
use crate::Result;

/// One node's assignment, as appended to the members topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announcement {
    pub node: String,
    pub url: String,
    pub partitions: Vec<u32>,
}

/// The partition → owner map read from the members topic.
#[derive(Debug, Default)]
pub struct Directory {
    owners: RwLock<HashMap<u32, Member>>,
    /// When each node last announced itself (ms since the epoch, the record's timestamp).
    heard: RwLock<HashMap<String, i64>>,
}

impl Directory {
    pub fn owner(&self, partition: u32) -> Option<Member> {
        let owners = self.owners.read().unwrap_or_else(|p| p.into_inner());
        owners.get(&partition).cloned()
    }

    /// Every node that owns a partition, once each.
    pub fn members(&self) -> Vec<Member> {
        let owners = self.owners.read().unwrap_or_else(|p| p.into_inner());
        let mut members: Vec<Member> = owners.values().cloned().collect();
        members.sort_by(|a, b| a.node.cmp(&b.node));
        members.dedup();
        members
    }

    /// Nodes owning partitions that nobody has heard of since `since_ms`.
    pub fn silent_since(&self, since_ms: i64) -> Vec<Member> {
        let heard = self.heard.read().unwrap_or_else(|p| p.into_inner());
        let mut silent: Vec<Member> = self
            .members()
            .into_iter()
            .filter(|m| heard.get(&m.node).is_none_or(|&at| at < since_ms))
            .collect();
        silent.dedup();
        silent
    }

    /// The nodes heard of since `since_ms`.
    pub fn heard_since(&self, since_ms: i64) -> Vec<String> {
        let heard = self.heard.read().unwrap_or_else(|p| p.into_inner());
        let mut nodes: Vec<String> = heard
            .iter()
            .filter(|(_, at)| **at >= since_ms)
            .map(|(node, _)| node.clone())
            .collect();
        nodes.sort();
        nodes
    }

    fn apply(&self, announcement: Announcement, at_ms: i64) {
        {
            let mut heard = self.heard.write().unwrap_or_else(|p| p.into_inner());
            let last = heard.entry(announcement.node.clone()).or_insert(at_ms);
            *last = (*last).max(at_ms);
        }
        let member = Member {
            node: announcement.node,
            url: announcement.url,
        };
        let mut owners = self.owners.write().unwrap_or_else(|p| p.into_inner());
        owners.retain(|partition, owner| {
            owner.node != member.node || announcement.partitions.contains(partition)
        });
        for partition in announcement.partitions {
            owners.insert(partition, member.clone());
        }
    }

    /// Reads the members topic from `from`, for as long as it is open.
    pub fn follow(
        self: &Arc<Self>,
        members: Arc<dyn Log>,
        from: u64,
    ) -> tokio::task::JoinHandle<()> {
        let directory = Arc::clone(self);
        tokio::spawn(
            async move {
                let mut records = tail(members, from, 256);
                loop {
                    let batch = match records.next_batch().await {
                        Ok(batch) => batch,
                        Err(rezef_log::Error::Closed) => return,
                        Err(error) => {
                            warn!(%error, "reading the members topic failed; retrying");
                            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                            continue;
                        }
                    };
                    for record in batch {
                        match serde_json::from_slice::<Announcement>(&record.payload) {
                            Ok(announcement) => {
                                debug!(?announcement, "member announced");
                                directory.apply(announcement, record.timestamp_ms);
                            }
                            Err(error) => {
                                warn!(offset = record.offset, %error, "unreadable announcement")
                            }
                        }
                    }
                }
            }
            .instrument(info_span!("members")),
        )
    }
}

/// Appends this node's assignment to the members topic.
pub async fn announce(members: &dyn Log, announcement: &Announcement) -> Result<()> {
    let payload = serde_json::to_vec(announcement)
        .map_err(|e| crate::Error::Unavailable(format!("encoding the member announcement: {e}")))?;
    members.append(vec![Bytes::from(payload)]).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn said(node: &str, partitions: &[u32]) -> Announcement {
        Announcement {
            node: node.into(),
            url: format!("http://{node}:50051"),
            partitions: partitions.to_vec(),
        }
    }

    fn owner(directory: &Directory, partition: u32) -> Option<String> {
        directory.owner(partition).map(|m| m.node)
    }

    #[test]
    fn the_latest_claim_wins_and_a_release_withdraws_only_its_own() {
        let directory = Directory::default();
        directory.apply(said("a", &[0, 1, 2]), 0);
        directory.apply(said("b", &[2, 3]), 0);
        assert_eq!(owner(&directory, 2).as_deref(), Some("b"));
        // a, late with its release of 2, must not take it from b.
        directory.apply(said("a", &[0, 1]), 0);
        assert_eq!(owner(&directory, 2).as_deref(), Some("b"));
        // A dead node's claims stand until others claim its partitions.
        directory.apply(said("c", &[1]), 0);
        assert_eq!(owner(&directory, 0).as_deref(), Some("a"));
        assert_eq!(owner(&directory, 1).as_deref(), Some("c"));
        directory.apply(said("b", &[]), 0);
        assert_eq!(owner(&directory, 3), None);
    }

    #[test]
    fn owners_not_heard_of_lately_are_silent() {
        let directory = Directory::default();
        directory.apply(said("a", &[0]), 1_000);
        directory.apply(said("b", &[1]), 1_000);
        directory.apply(said("c", &[]), 1_000);
        directory.apply(said("a", &[0]), 9_000);
        let silent: Vec<String> = directory
            .silent_since(5_000)
            .into_iter()
            .map(|m| m.node)
            .collect();
        // c owns nothing: its silence changes nothing.
        assert_eq!(silent, ["b"]);
        assert_eq!(directory.heard_since(5_000), ["a"]);
    }
}
