//! The partitions this node owns, each folded into a journey store of its own.
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

use std::collections::{BTreeSet, HashMap};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rezef_events::partition::Partitioner;
use rezef_events::policy::Policies;
use rezef_log::Log;
use rezef_log::kafka::{
    GroupSettings, KafkaConfig, KafkaLog, Membership, TopicSettings, TopicStatus, ensure_topic,
};
use rezef_routing::Routing;
use rezef_store::{CachedStore, Partitioning, Projector};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{Instrument, error, info, info_span, warn};

use super::directory::{Announcement, Directory, announce};
use super::reader::JourneyReader;
use super::relay::ClusterRelay;
use super::{Cluster, Member};
use crate::backbone::Backbone;
use crate::clock::Clock;
use crate::config::{Limits, ServerConfig};
use crate::projection;
use crate::routing::desk::Desk;
use crate::{Error, Result};

/// Attempts at opening a partition's store while its previous owner here lets go of it.
const OPEN_ATTEMPTS: u32 = 50;
/// How long the members topic keeps announcements (every node repeats its own).
const MEMBERS_RETENTION: Duration = Duration::from_secs(24 * 3600);
/// How far back a starting node reads the members topic.
const MEMBERS_LOOKBACK: Duration = Duration::from_secs(3600);

/// A partition served here, as calls see it.
#[derive(Debug, Clone)]
pub struct Replica {
    pub backbone: Backbone,
    /// Calls are served once the projection reaches this offset (the end at assignment).
    pub ready_at: u64,
    /// The routing of the tenants whose routing partition this is.
    pub desk: Arc<Desk>,
}

/// A partition served here, as the manager holds it.
#[derive(Debug)]
struct Served {
    replica: Replica,
    closing: watch::Sender<bool>,
    folding: Folding,
}

/// A partition's log and projector, ready to fold.
type Opened = (Arc<KafkaLog>, Projector);

/// A partition's log and projector, folding into its store in the background: one served
/// here, or a standby copy of one another node serves (Kafka Streams' standby replicas),
/// kept in the same store directory so that it is warm if the partition moves here.
#[derive(Debug)]
struct Folding {
    log: Arc<KafkaLog>,
    stop: oneshot::Sender<()>,
    projection: JoinHandle<()>,
}

impl Folding {
    fn start(log: Arc<KafkaLog>, projector: Projector, span: tracing::Span) -> Self {
        let (stop, stopped) = oneshot::channel::<()>();
        let projection = tokio::spawn(
            async move {
                let stopped = async {
                    let _ = stopped.await;
                };
                if let Err(error) = projector.run(stopped).await {
                    error!(%error, "the projector stopped");
                }
            }
            .instrument(span),
        );
        Self {
            log,
            stop,
            projection,
        }
    }

    async fn stop(self, partition: u32) {
        let _ = self.stop.send(());
        if let Err(e) = self.projection.await {
            error!(partition, error = %e, "the projector task failed");
        }
        self.log.close().await;
    }
}

#[derive(Debug, Default)]
pub struct Replicas {
    served: RwLock<HashMap<u32, Replica>>,
}

impl Replicas {
    pub fn get(&self, partition: u32) -> Option<Replica> {
        let served = self.served.read().unwrap_or_else(|p| p.into_inner());
        served.get(&partition).cloned()
    }

    pub fn any(&self) -> Option<Replica> {
        let served = self.served.read().unwrap_or_else(|p| p.into_inner());
        served.values().next().cloned()
    }

    pub fn all(&self) -> Vec<(u32, Backbone)> {
        let served = self.served.read().unwrap_or_else(|p| p.into_inner());
        let mut all: Vec<_> = served
            .iter()
            .map(|(p, r)| (*p, r.backbone.clone()))
            .collect();
        all.sort_by_key(|(p, _)| *p);
        all
    }

    /// Whether a partition served here has not caught up yet.
    fn catching_up(&self) -> bool {
        let served = self.served.read().unwrap_or_else(|p| p.into_inner());
        (served.values()).any(|r| r.backbone.projection.position() < r.ready_at)
    }

    fn set(&self, partition: u32, replica: Option<Replica>) {
        let mut served = self.served.write().unwrap_or_else(|p| p.into_inner());
        match replica {
            Some(replica) => served.insert(partition, replica),
            None => served.remove(&partition),
        };
    }
}

/// The node's part in the cluster, running: stop it after the gRPC server has drained.
#[derive(Debug)]
pub struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Running {
    /// Closes every partition served here, leaves the group and closes the members topic.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        if let Err(e) = self.task.await {
            error!(error = %e, "the cluster task failed");
        }
    }
}

/// What every partition's backbone shares.
#[derive(Debug, Clone)]
struct Common {
    limits: Limits,
    policies: Arc<Policies>,
    reveal_keys: Arc<Vec<String>>,
    config: ServerConfig,
    kafka: KafkaConfig,
    /// Every tenant's routing starts with this configuration.
    routing: Option<Routing>,
    clock: Arc<dyn Clock>,
    /// Journeys read from every partition's store, within one memory budget.
    cache: rezef_store::JourneyCache,
}

/// Joins the cluster: makes sure the topics exist, starts reading the members topic and
/// joins the ownership group. `port` is the port actually bound (for the default advertised
/// address); `closing` turns true when the server begins to shut down (open streams end).
pub async fn start(
    config: &ServerConfig,
    cache: rezef_store::JourneyCache,
    port: u16,
    closing: watch::Receiver<bool>,
    routing: Option<Routing>,
    clock: Arc<dyn Clock>,
) -> Result<(Arc<Cluster>, Running)> {
    let settings = &config.log.kafka;
    let mut kafka = KafkaConfig::new(&settings.brokers, &settings.topic, 0);
    kafka.request_timeout = Duration::from_millis(settings.request_timeout_ms);
    kafka.client_id = config.node_id();
    let topic = config.topic_settings();
    let partitions = match ensure_topic(&kafka, &topic).await? {
        TopicStatus::Created => topic.partitions,
        TopicStatus::Existed { partitions } => partitions,
    };
    let partitions = u32::try_from(partitions)
        .ok()
        .and_then(NonZeroU32::new)
        .ok_or_else(|| Error::Config(format!("topic {} has no partitions", settings.topic)))?;

    let mut members_config = kafka.clone();
    members_config.topic = format!("{}.members", settings.topic);
    let mut members_settings = TopicSettings::new(1, settings.replication);
    members_settings.retention = Some(MEMBERS_RETENTION);
    ensure_topic(&members_config, &members_settings).await?;
    let members: Arc<dyn Log> = KafkaLog::open(members_config).await?;
    let directory = Arc::new(Directory::default());
    let lookback = i64::try_from(MEMBERS_LOOKBACK.as_millis()).unwrap_or(i64::MAX);
    let from = members.offset_for_time(now_ms() - lookback).await?;
    let following = directory.follow(members.clone(), from);

    let me = Member {
        node: config.node_id(),
        url: config.advertise_url(port),
    };
    let membership = Membership::join(
        &kafka,
        &GroupSettings {
            group: settings.group.clone(),
            member: me.node.clone(),
            session_timeout: Duration::from_millis(settings.session_timeout_ms),
        },
    )?;
    info!(node = %me.node, url = %me.url, partitions, group = %settings.group, "joined the cluster");
    let cluster = Arc::new(Cluster {
        me,
        partitioner: Partitioner::new(partitions),
        replicas: Replicas::default(),
        directory,
        peers: Mutex::default(),
        max_message_bytes: config.limits.max_message_bytes,
        policies: Arc::new(config.continuity.clone()),
    });
    let common = Common {
        limits: config.limits.clone(),
        policies: Arc::new(config.continuity.clone()),
        reveal_keys: Arc::new(config.reveal_keys.clone()),
        config: config.clone(),
        kafka,
        routing,
        clock,
        cache,
    };
    let (stop, stopped) = oneshot::channel();
    let manager = Manager {
        cluster: Arc::clone(&cluster),
        common,
        members,
        served: HashMap::new(),
        standbys: HashMap::new(),
        opening: HashMap::new(),
        session_timeout: Duration::from_millis(settings.session_timeout_ms),
        rejoined_at: None,
    };
    let task = tokio::spawn(
        manager
            .run(membership, closing, stopped, following)
            .instrument(info_span!("cluster")),
    );
    Ok((cluster, Running { stop, task }))
}

/// Opens and closes partitions as the group assigns them, announces them, and starts a
/// rebalance when an owner has gone silent.
struct Manager {
    cluster: Arc<Cluster>,
    common: Common,
    members: Arc<dyn Log>,
    served: HashMap<u32, Served>,
    /// Standby copies kept here (never of a partition in `served`).
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
    async fn run(
        mut self,
        membership: Membership,
        mut closing: watch::Receiver<bool>,
        mut stopped: oneshot::Receiver<()>,
        following: JoinHandle<()>,
    ) {
        let mut owned = membership.owned();
        let mut heartbeat = tokio::time::interval(self.session_timeout / 3);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
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
                _ = async { let _ = closing.wait_for(|closing| *closing).await; } => {
                    // Open streams end now; the partitions close once the server drained.
                    for served in self.served.values() {
                        served.closing.send_replace(true);
                    }
                    let _ = (&mut stopped).await;
                    break;
                }
                _ = &mut stopped => break,
            }
        }
        let all: Vec<u32> = self.served.keys().copied().collect();
        for partition in all {
            self.close(partition).await;
        }
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
    }

    /// Closes what is no longer owned, opens what is newly owned, and says so.
    async fn reconcile(&mut self, owned: &BTreeSet<u32>) {
        let gone: Vec<u32> = self
            .served
            .keys()
            .filter(|p| !owned.contains(p))
            .copied()
            .collect();
        for partition in gone {
            self.close(partition).await;
        }
        let new: Vec<u32> = owned
            .iter()
            .filter(|p| !self.served.contains_key(p))
            .copied()
            .collect();
        // A standby copy becomes the served one: its store is warm.
        for &partition in &new {
            self.drop_standby(partition).await;
        }
        let opened = futures::future::join_all(new.iter().map(|&p| self.open(p))).await;
        for (partition, result) in new.into_iter().zip(opened) {
            match result {
                Ok(served) => {
                    self.cluster
                        .replicas
                        .set(partition, Some(served.replica.clone()));
                    self.served.insert(partition, served);
                }
                Err(error) => error!(partition, %error, "could not open an owned partition"),
            }
        }
        self.announce().await;
    }

    /// Says which partitions this node serves (on every change, and as a heartbeat).
    async fn announce(&self) {
        let mut partitions: Vec<u32> = self.served.keys().copied().collect();
        partitions.sort_unstable();
        let announcement = Announcement {
            node: self.cluster.me.node.clone(),
            url: self.cluster.me.url.clone(),
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
        let directory = &self.cluster.directory;
        let since = now_ms() - timeout_ms;
        let silent = directory.silent_since(since);
        if silent.is_empty() {
            return false;
        }
        let long_silent = !directory.silent_since(since - timeout_ms).is_empty();
        let first = directory.heard_since(since).into_iter().next();
        if first.as_deref() != Some(self.cluster.me.node.as_str()) && !long_silent {
            return false;
        }
        let nodes: Vec<&str> = silent.iter().map(|m| m.node.as_str()).collect();
        info!(?nodes, "owners went silent; starting a rebalance");
        self.rejoined_at = Some(tokio::time::Instant::now());
        true
    }

    async fn open(&self, partition: u32) -> Result<Served> {
        let (log, store, projector) = fold(&self.cluster, &self.common, partition).await?;
        let ready_at = log.end_offset();
        // A served partition answers calls once caught up, and its cache is warmed once every
        // partition served here has (a standby copy only folds): catching up comes first.
        let warm = {
            let (watch, store) = (projector.watch(), Arc::downgrade(&store));
            let (cluster, config) = (Arc::downgrade(&self.cluster), self.common.config.clone());
            async move {
                if ready_at > 0 && !watch.wait_past(ready_at - 1).await {
                    return;
                }
                while cluster.upgrade().is_some_and(|c| c.replicas.catching_up()) {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                if let Some(store) = store.upgrade() {
                    projection::warm(&config, &store);
                }
            }
        };
        tokio::spawn(warm.instrument(info_span!("caught_up", partition)));
        let (closing, closing_watch) = watch::channel(false);
        let backbone = Backbone {
            log: log.clone(),
            store,
            projection: projector.watch(),
            limits: self.common.limits.clone(),
            policies: self.common.policies.clone(),
            reveal_keys: self.common.reveal_keys.clone(),
            closing: closing_watch,
            partition: Some((self.cluster.partitioner, partition)),
        };
        let folding = Folding::start(log, projector, info_span!("projection", partition));
        info!(partition, ready_at, "serving a partition once caught up");
        let reader = JourneyReader::Cluster(Arc::downgrade(&self.cluster));
        let desk = Desk::new(
            backbone.clone(),
            reader,
            self.common.routing.clone(),
            self.common.clock.clone(),
        );
        // Ends when the partition closes (its backbone's `closing`), with its sessions.
        desk.spawn();
        Ok(Served {
            replica: Replica {
                backbone,
                ready_at,
                desk,
            },
            closing,
            folding,
        })
    }

    /// The partitions this node keeps a standby copy of: of each partition, the
    /// `standby_replicas` live nodes after its owner in node-id order keep one.
    fn standby_partitions(&self) -> BTreeSet<u32> {
        let mut wanted = BTreeSet::new();
        let directory = &self.cluster.directory;
        let timeout_ms = i64::try_from(self.session_timeout.as_millis()).unwrap_or(i64::MAX);
        let live = directory.heard_since(now_ms() - timeout_ms);
        let copies = usize::try_from(self.common.config.cluster.standby_replicas)
            .unwrap_or(usize::MAX)
            .min(live.len().saturating_sub(1));
        for partition in 0..self.cluster.partitioner.partitions() {
            let Some(owner) = directory.owner(partition) else {
                continue;
            };
            let Some(at) = live.iter().position(|node| *node == owner.node) else {
                continue;
            };
            let keeps = (1..=copies).any(|i| live[(at + i) % live.len()] == self.cluster.me.node);
            if keeps && !self.served.contains_key(&partition) {
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
            if wanted.contains(&partition) && !self.served.contains_key(&partition) {
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
            let (cluster, common) = (self.cluster.clone(), self.common.clone());
            let opening = tokio::spawn(async move {
                let (log, _, projector) = fold(&cluster, &common, partition).await?;
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
            standby.stop(partition).await;
            info!(partition, "stopped keeping a standby copy");
        }
    }

    async fn close(&mut self, partition: u32) {
        self.cluster.replicas.set(partition, None);
        let Some(served) = self.served.remove(&partition) else {
            return;
        };
        served.closing.send_replace(true);
        served.folding.stop(partition).await;
        info!(partition, "stopped serving a partition");
    }
}

/// A partition's log, store (in `data_dir/store/p<N>`) and projector.
async fn fold(
    cluster: &Arc<Cluster>,
    common: &Common,
    partition: u32,
) -> Result<(Arc<KafkaLog>, Arc<CachedStore>, Projector)> {
    let mut kafka = common.kafka.clone();
    kafka.partition = i32::try_from(partition).unwrap_or(i32::MAX);
    let log = KafkaLog::open(kafka).await?;
    let store = open_store(common, partition).await?;
    let dyn_log: Arc<dyn Log> = log.clone();
    // A standby relays too: what it sends is what the owner sends, under the same ids, so a
    // copy is a duplicate; and nothing is lost when the owner died before sending.
    let projector = projection::projector(&common.config, dyn_log, store.clone())?
        .with_policies(common.policies.clone())
        .with_partitioning(Some(Partitioning {
            partitioner: cluster.partitioner,
            partition,
            relay: Arc::new(ClusterRelay {
                cluster: Arc::downgrade(cluster),
            }),
        }));
    Ok((log, store, projector))
}

/// The partition's store. A previous ownership of it here may still be letting go (a call
/// in flight holds it): sled then refuses the lock for a moment.
async fn open_store(common: &Common, partition: u32) -> Result<Arc<CachedStore>> {
    let dir = common.config.partition_store_dir(partition);
    let mut attempt = 0;
    loop {
        let path = dir.clone();
        let (config, cache) = (common.config.clone(), common.cache.clone());
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
