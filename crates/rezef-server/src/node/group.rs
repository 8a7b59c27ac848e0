//! A Kafka topic's partitions, as the consumer group assigns them to this node.
//!
//! A partition's state is its own sled store (`data_dir/store/p<N>`) holding the offset it
//! has folded to in the same atomic batch as the state, as on the embedded log: the store,
//! not the consumer group, is the truth about how far a partition is projected. When the
//! group gives this node a partition, it opens the partition's log and store (a store left by
//! an earlier ownership resumes where it stopped; none means folding from the log's start),
//! notes the partition's end offset at that moment, and serves calls for it once the
//! projection has reached that offset (`UNAVAILABLE` with a retry hint until then). When the
//! group takes a partition away, calls for it stop being served here first, then its
//! projector stops and its log closes; the store stays on disk for the next time.
//!
//! Every node seals records under the keys of one key store all of them share, the compacted
//! topic `<topic>.keys` (`rezef_keys::KafkaKeyStore`), opened before the node joins.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use rezef_events::partition::Partitioner;
use rezef_log::Log;
use rezef_log::kafka::{GroupSettings, KafkaConfig, KafkaLog, Membership, TopicSettings};
use rezef_record::sealed::Sealing;
use rezef_store::{CachedStore, Projector};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing::{Instrument, error, info, info_span, warn};

use super::{Folding, Node, Running, Settings, cluster, projector};
use crate::cluster::directory::{Announcement, Directory, announce};
use crate::cluster::{Member, Topology};
use crate::log::kafka;
use crate::routing::Desks;
use crate::{Error, Result, projection};

/// Attempts at opening a partition's store while its previous owner here lets go of it.
const OPEN_ATTEMPTS: u32 = 50;
/// How long the members topic keeps announcements (every node repeats its own).
const MEMBERS_RETENTION: Duration = Duration::from_secs(24 * 3600);
/// How far back a starting node reads the members topic.
const MEMBERS_LOOKBACK: Duration = Duration::from_secs(3600);

/// A partition's log and projector, ready to fold.
type Opened = (Arc<dyn Log>, Projector);

/// Joins the cluster: makes sure the topics exist, starts reading the members topic and
/// joins the ownership group.
pub async fn start(settings: Settings) -> Result<(Topology, Arc<Desks>, Running)> {
    let config = &settings.config;
    let kafka_settings = &config.log.kafka;
    let mut kafka = kafka::config(config);
    kafka.client_id = config.node_id();
    let partitions = kafka::topic_partitions(config, &kafka).await?;

    let mut members_config = kafka.clone();
    members_config.topic = format!("{}.members", kafka_settings.topic);
    let mut members_settings = TopicSettings::new(1, kafka_settings.replication);
    members_settings.retention = Some(MEMBERS_RETENTION);
    rezef_log::kafka::ensure_topic(&members_config, &members_settings).await?;
    let members: Arc<dyn Log> = KafkaLog::open(members_config).await?;
    let sealing = kafka::sealing(config, &kafka).await?;
    let directory = Arc::new(Directory::default());
    let lookback = i64::try_from(MEMBERS_LOOKBACK.as_millis()).unwrap_or(i64::MAX);
    let from = members.offset_for_time(now_ms() - lookback).await?;
    let following = directory.follow(members.clone(), from);

    let me = Member {
        node: config.node_id(),
        url: config.advertise_url(settings.port),
    };
    let membership = Membership::join(
        &kafka,
        &GroupSettings {
            group: kafka_settings.group.clone(),
            member: me.node.clone(),
            session_timeout: Duration::from_millis(kafka_settings.session_timeout_ms),
        },
    )?;
    info!(node = %me.node, url = %me.url, partitions, group = %kafka_settings.group, "joined the cluster");
    let session_timeout = Duration::from_millis(kafka_settings.session_timeout_ms);
    let cluster = cluster(me, Partitioner::new(partitions), directory, &settings);
    let node = Node::new(cluster.clone(), settings, sealing);
    let desks = node.desks.clone();
    let (stop, stopped) = oneshot::channel();
    let manager = Manager {
        node,
        kafka,
        members,
        standbys: HashMap::new(),
        opening: HashMap::new(),
        session_timeout,
        rejoined_at: None,
    };
    let task = tokio::spawn(
        manager
            .run(membership, stopped, following)
            .instrument(info_span!("cluster")),
    );
    Ok((cluster, desks, Running { stop, task }))
}

/// Opens and closes partitions as the group assigns them, announces them, and starts a
/// rebalance when an owner has gone silent.
struct Manager {
    node: Node,
    kafka: KafkaConfig,
    members: Arc<dyn Log>,
    /// Standby copies kept here (never of a partition served here).
    standbys: HashMap<u32, Folding>,
    /// Standby copies being opened, off the manager's loop so that its heartbeats go on
    /// while a slow broker takes its time.
    opening: HashMap<u32, JoinHandle<Result<Opened>>>,
    session_timeout: Duration,
    /// When this node last asked for a rebalance.
    rejoined_at: Option<tokio::time::Instant>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Manager {
    /// Follows the group's assignment until stopped; then closes every partition and copy
    /// here and leaves the group. Projector failures were logged as they happened.
    async fn run(
        mut self,
        membership: Membership,
        mut stopped: oneshot::Receiver<()>,
        following: JoinHandle<()>,
    ) -> Result<()> {
        let mut owned = membership.owned();
        let mut heartbeat = tokio::time::interval(self.session_timeout / 3);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut closing = self.node.settings.closing.clone();
        let mut assigned = true;
        loop {
            if std::mem::take(&mut assigned) {
                let partitions: BTreeSet<u32> = owned
                    .borrow_and_update()
                    .partitions
                    .iter()
                    .filter_map(|&p| u32::try_from(p).ok())
                    .collect();
                self.reconcile(&partitions).await;
            }
            tokio::select! {
                changed = owned.changed() => match changed {
                    Ok(()) => assigned = true,
                    Err(_) => break,
                },
                _ = heartbeat.tick() => {
                    self.announce().await;
                    self.keep_standbys().await;
                    if self.should_rejoin() {
                        membership.rejoin();
                    }
                }
                () = async { let _ = closing.wait_for(|closing| *closing).await; } => {
                    // Open streams end now; the partitions close once the server drained.
                    self.node.closing();
                    let _ = (&mut stopped).await;
                    break;
                }
                _ = &mut stopped => break,
            }
        }
        let _ = self.node.close_all().await;
        let all: Vec<u32> = self
            .standbys
            .keys()
            .chain(self.opening.keys())
            .copied()
            .collect();
        for partition in all {
            self.drop_standby(partition).await;
        }
        membership.leave().await;
        self.members.close().await;
        following.abort();
        Ok(())
    }

    fn cluster(&self) -> &Topology {
        &self.node.cluster
    }

    fn serves(&self, partition: u32) -> bool {
        self.node.served.contains_key(&partition)
    }

    /// Closes what is no longer owned, opens what is newly owned, and says so.
    async fn reconcile(&mut self, owned: &BTreeSet<u32>) {
        let gone: Vec<u32> = (self.node.served.keys())
            .filter(|p| !owned.contains(p))
            .copied()
            .collect();
        for partition in gone {
            let _ = self.node.close(partition).await;
        }
        let new: Vec<u32> = owned
            .iter()
            .filter(|&&p| !self.serves(p))
            .copied()
            .collect();
        // A standby copy becomes the served one: its store is warm.
        for &partition in &new {
            self.drop_standby(partition).await;
        }
        let opened = futures::future::join_all(new.iter().map(|&p| self.open(p))).await;
        for (partition, result) in new.into_iter().zip(opened) {
            match result {
                Ok((log, store, projector)) => {
                    let ready_at = log.end_offset();
                    self.warm_when_caught_up(partition, &store, &projector, ready_at);
                    self.node.serve(partition, log, store, projector, ready_at);
                }
                Err(error) => error!(partition, %error, "could not open an owned partition"),
            }
        }
        self.announce().await;
    }

    /// Warms the cache from a partition's store once every partition served here has caught
    /// up (a standby copy only folds): catching up comes first, it is what a failover waits
    /// for.
    fn warm_when_caught_up(
        &self,
        partition: u32,
        store: &Arc<CachedStore>,
        projector: &Projector,
        ready_at: u64,
    ) {
        let warm = {
            let (watch, store) = (projector.watch(), Arc::downgrade(store));
            let (cluster, config) = (
                Arc::downgrade(self.cluster()),
                self.node.settings.config.clone(),
            );
            async move {
                if ready_at > 0 && !watch.wait_past(ready_at - 1).await {
                    return;
                }
                while cluster
                    .upgrade()
                    .is_some_and(|c| c.replicas().catching_up())
                {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                if let Some(store) = store.upgrade() {
                    projection::warm(&config, &store);
                }
            }
        };
        tokio::spawn(warm.instrument(info_span!("caught_up", partition)));
    }

    /// Says which partitions this node serves (on every change, and as a heartbeat).
    async fn announce(&self) {
        let mut partitions: Vec<u32> = self.node.served.keys().copied().collect();
        partitions.sort_unstable();
        let me = self.cluster().me();
        let announcement = Announcement {
            node: me.node.clone(),
            url: me.url.clone(),
            partitions,
        };
        if let Err(error) = announce(self.members.as_ref(), &announcement).await {
            warn!(%error, "could not announce this node's partitions");
        }
    }

    /// Whether to start a rebalance: an owner of partitions has been silent for longer than
    /// the session timeout (killed, or cut off), and this node is the first of those still
    /// heard of (the others wait, so that one rebalance does it), or the first has not
    /// managed within another session timeout. At most once per session timeout.
    fn should_rejoin(&mut self) -> bool {
        let timeout = self.session_timeout;
        if self.rejoined_at.is_some_and(|at| at.elapsed() < timeout) {
            return false;
        }
        let timeout_ms = i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX);
        let directory = self.cluster().directory();
        let since = now_ms() - timeout_ms;
        let silent = directory.silent_since(since);
        if silent.is_empty() {
            return false;
        }
        let long_silent = !directory.silent_since(since - timeout_ms).is_empty();
        let first = directory.heard_since(since).into_iter().next();
        if first.as_deref() != Some(self.cluster().me().node.as_str()) && !long_silent {
            return false;
        }
        let nodes: Vec<&str> = silent.iter().map(|m| m.node.as_str()).collect();
        info!(?nodes, "owners went silent; starting a rebalance");
        self.rejoined_at = Some(tokio::time::Instant::now());
        true
    }

    async fn open(&self, partition: u32) -> Result<(Arc<dyn Log>, Arc<CachedStore>, Projector)> {
        let (settings, sealing) = (&self.node.settings, &self.node.sealing);
        fold(self.cluster(), settings, sealing, &self.kafka, partition).await
    }

    /// The partitions this node keeps a standby copy of: of each partition, the
    /// `standby_replicas` live nodes after its owner in node-id order keep one.
    fn standby_partitions(&self) -> BTreeSet<u32> {
        let mut wanted = BTreeSet::new();
        let directory = self.cluster().directory();
        let timeout_ms = i64::try_from(self.session_timeout.as_millis()).unwrap_or(i64::MAX);
        let live = directory.heard_since(now_ms() - timeout_ms);
        let copies = usize::try_from(self.node.settings.config.cluster.standby_replicas)
            .unwrap_or(usize::MAX)
            .min(live.len().saturating_sub(1));
        for partition in 0..self.cluster().partitioner().partitions() {
            let Some(owner) = directory.owner(partition) else {
                continue;
            };
            let Some(at) = live.iter().position(|node| *node == owner.node) else {
                continue;
            };
            let keeps =
                (1..=copies).any(|i| live[(at + i) % live.len()] == self.cluster().me().node);
            if keeps && !self.serves(partition) {
                wanted.insert(partition);
            }
        }
        wanted
    }

    /// Starts opening the standby copies this node should keep, starts those opened, and
    /// stops the others.
    async fn keep_standbys(&mut self) {
        let wanted = self.standby_partitions();
        let finished: Vec<u32> = self
            .opening
            .iter()
            .filter(|(_, task)| task.is_finished())
            .map(|(p, _)| *p)
            .collect();
        for partition in finished {
            let Some(opened) = self.settle_opening(partition).await else {
                continue;
            };
            if wanted.contains(&partition) && !self.serves(partition) {
                let span = info_span!("standby", partition);
                let (log, projector) = opened;
                self.standbys
                    .insert(partition, Folding::start(log, projector, span));
                info!(partition, "keeping a standby copy");
            } else {
                opened.0.close().await;
            }
        }
        let unwanted: Vec<u32> = self
            .standbys
            .keys()
            .filter(|p| !wanted.contains(p))
            .copied()
            .collect();
        for partition in unwanted {
            self.drop_standby(partition).await;
        }
        for partition in wanted {
            if self.standbys.contains_key(&partition) || self.opening.contains_key(&partition) {
                continue;
            }
            let (cluster, settings) = (self.cluster().clone(), self.node.settings.clone());
            let (sealing, kafka) = (self.node.sealing.clone(), self.kafka.clone());
            let opening = tokio::spawn(async move {
                let (log, _, projector) =
                    fold(&cluster, &settings, &sealing, &kafka, partition).await?;
                Ok((log, projector))
            });
            self.opening.insert(partition, opening);
        }
    }

    /// Waits for a standby copy being opened; what it opened, if it did.
    async fn settle_opening(&mut self, partition: u32) -> Option<Opened> {
        let task = self.opening.remove(&partition)?;
        match task.await {
            Ok(Ok(opened)) => Some(opened),
            Ok(Err(error)) => {
                warn!(partition, %error, "could not open a standby copy");
                None
            }
            Err(error) => {
                error!(partition, %error, "opening a standby copy failed");
                None
            }
        }
    }

    /// Stops the standby copy of a partition (or its opening), e.g. to serve it here from
    /// the warm store.
    async fn drop_standby(&mut self, partition: u32) {
        if let Some((log, _)) = self.settle_opening(partition).await {
            log.close().await;
        }
        if let Some(standby) = self.standbys.remove(&partition) {
            if let Err(error) = standby.stop().await {
                error!(partition, %error, "the standby copy's projector failed");
            }
            info!(partition, "stopped keeping a standby copy");
        }
    }
}

/// A partition's log, store (in `data_dir/store/p<N>`) and projector, which opens the
/// records' sealed values with the cluster's keys.
async fn fold(
    cluster: &Topology,
    settings: &Settings,
    sealing: &Sealing,
    kafka: &KafkaConfig,
    partition: u32,
) -> Result<(Arc<dyn Log>, Arc<CachedStore>, Projector)> {
    let log = kafka::partition(kafka, partition).await?;
    let store = open_store(settings, partition).await?;
    // A standby relays too: what it sends is what the owner sends, under the same ids, so a
    // copy is a duplicate; and nothing is lost when the owner died before sending.
    let projector = projector(
        cluster,
        settings,
        log.clone(),
        store.clone(),
        Some(partition),
    )?
    .with_sealing(sealing.clone());
    Ok((log, store, projector))
}

/// The partition's store. A previous ownership of it here may still be letting go (a call
/// in flight holds it): sled then refuses the lock for a moment.
async fn open_store(settings: &Settings, partition: u32) -> Result<Arc<CachedStore>> {
    let dir = settings.config.partition_store_dir(partition);
    let mut attempt = 0;
    loop {
        let path = dir.clone();
        let (config, cache) = (settings.config.clone(), settings.cache.clone());
        let opened =
            tokio::task::spawn_blocking(move || projection::open_store(&config, &path, &cache))
                .await
                .map_err(|e| Error::Unavailable(format!("opening the store: {e}")))?;
        match opened {
            Ok(store) => return Ok(store),
            Err(error) if attempt < OPEN_ATTEMPTS => {
                attempt += 1;
                tracing::debug!(partition, %error, "the store is still held; retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => return Err(error),
        }
    }
}
