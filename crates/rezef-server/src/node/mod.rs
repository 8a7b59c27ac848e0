//! The partitions this node serves, opened and closed as they are assigned to it: the
//! embedded log's (one by default), at start, for as long as the node runs (a cluster of
//! one); or a Kafka topic's as the consumer group gives and takes them (`group`). Each
//! is served the same way: its log folded into its store by a projector in the background,
//! a [`Backbone`] the services answer from, and the routing desk of the tenants whose
//! routing partition it is.

#[cfg(feature = "kafka")]
mod group;

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;

use rezef_events::partition::Partitioner;
use rezef_events::policy::Policies;
use rezef_log::Log;
use rezef_record::sealed::Sealing;
use rezef_routing::Routing;
use rezef_store::{CachedStore, CheckpointObserver, JourneyCache, Partitioning, Projector};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{Instrument, error, info, info_span};

use crate::backbone::Backbone;
use crate::clock::Clock;
use crate::cluster::directory::Directory;
use crate::cluster::{Cluster, ClusterRelay, Member, Replica, Topology};
use crate::config::{LogBackend, ServerConfig};
use crate::projection;
use crate::reader::JourneyReader;
use crate::routing::Desks;
use crate::routing::desk::Desk;
use crate::{Error, Result};

/// How partitions come to this node.
#[derive(Debug)]
pub enum Assignment {
    /// The embedded log's partitions and their stores, opened with the node, and the keys
    /// their records' personal values are sealed under.
    Embedded {
        partitions: Vec<(Arc<dyn Log>, Arc<CachedStore>)>,
        sealing: Sealing,
    },
    /// A Kafka topic's, as the consumer group assigns them once the node has joined.
    #[cfg(feature = "kafka")]
    Group,
}

impl Assignment {
    /// Opens what the node starts with: the embedded log first (it says plainly when another
    /// process holds the data directory), then its store.
    pub fn open(config: &ServerConfig, cache: &JourneyCache) -> Result<Self> {
        Ok(match config.log.backend {
            LogBackend::Embedded => {
                let logs = crate::log::embedded::open(config)?;
                let sealing = crate::log::embedded::sealing(config)?;
                let mut partitions = Vec::with_capacity(logs.len());
                for (partition, log) in (0..).zip(logs) {
                    let dir = config.embedded_store_dir(partition);
                    let store = projection::open_store(config, &dir, cache)?;
                    // Served at once, so warmed at once.
                    projection::warm(config, &store);
                    partitions.push((log, store));
                }
                Self::Embedded {
                    partitions,
                    sealing,
                }
            }
            #[cfg(feature = "kafka")]
            LogBackend::Kafka => Self::Group,
            #[cfg(not(feature = "kafka"))]
            LogBackend::Kafka => return Err(crate::log::no_kafka()),
        })
    }
}

/// What the node runs with, from the server.
#[derive(Debug, Clone)]
pub struct Settings {
    pub config: ServerConfig,
    /// The tenants' continuity rules, shared by every partition.
    pub policies: Arc<Policies>,
    /// The port actually bound (for the default advertised address).
    pub port: u16,
    /// Turns true when the server begins to shut down (open streams end).
    pub closing: watch::Receiver<bool>,
    /// Every tenant's routing starts with this configuration.
    pub routing: Option<Routing>,
    pub clock: Arc<dyn Clock>,
    /// Journeys read from every partition's store, within one memory budget (for the stores
    /// of partitions assigned after the start: Kafka's).
    #[cfg_attr(not(feature = "kafka"), allow(dead_code))]
    pub cache: JourneyCache,
    /// TLS for calls to `https://` nodes.
    pub peer_tls: Option<tonic::transport::ClientTlsConfig>,
    /// Told how long each checkpoint of every store takes (`crate::metrics`).
    pub checkpoints: Arc<dyn CheckpointObserver>,
}

/// Starts serving: the embedded partitions at once, or a Kafka topic's as they are assigned.
pub async fn start(
    assignment: Assignment,
    settings: Settings,
) -> Result<(Topology, Arc<Desks>, Running)> {
    match assignment {
        Assignment::Embedded {
            partitions,
            sealing,
        } => {
            let me = Member {
                node: settings.config.node_id(),
                url: settings.config.advertise_url(settings.port),
            };
            let count = u32::try_from(partitions.len())
                .ok()
                .and_then(NonZeroU32::new);
            let count = count.ok_or_else(|| Error::Config("the log has no partitions".into()))?;
            let partitioner = Partitioner::new(count);
            let cluster = cluster(me, partitioner, Arc::new(Directory::default()), &settings);
            let mut node = Node::new(cluster.clone(), settings, sealing);
            for (partition, (log, store)) in (0..).zip(partitions) {
                // One partition: all is here, nothing to relay.
                let place = (count.get() > 1).then_some(partition);
                let projector =
                    projector(&cluster, &node.settings, log.clone(), store.clone(), place)?
                        .with_sealing(node.sealing.clone());
                // No other node serves it: calls are answered while it catches up.
                node.serve(partition, log, store, projector, 0);
            }
            let desks = node.desks.clone();
            let (stop, stopped) = oneshot::channel();
            let serving = async move {
                node.wait_until_stopped(stopped).await;
                node.close_all().await
            };
            let task = tokio::spawn(serving.instrument(info_span!("node")));
            Ok((cluster, desks, Running { stop, task }))
        }
        #[cfg(feature = "kafka")]
        Assignment::Group => group::start(settings).await,
    }
}

/// A node's view of its partitions before it serves any; `directory` says who serves the
/// others.
fn cluster(
    me: Member,
    partitioner: Partitioner,
    directory: Arc<Directory>,
    settings: &Settings,
) -> Topology {
    let max_message_bytes = settings.config.limits.max_message_bytes;
    let policies = settings.policies.clone();
    let cluster = Cluster::new(me, partitioner, directory, max_message_bytes, policies)
        .with_node_key(settings.config.auth.node_key.as_deref())
        .with_tls(settings.peer_tls.clone());
    Arc::new(cluster)
}

/// The projector of a partition's `log` into its `store`. On a partitioned log it relays what
/// other partitions must decide; on the embedded log (`partition` `None`) all is here.
fn projector(
    cluster: &Topology,
    settings: &Settings,
    log: Arc<dyn Log>,
    store: Arc<CachedStore>,
    partition: Option<u32>,
) -> Result<Projector> {
    store.observe_checkpoints(settings.checkpoints.clone());
    let partitioning = partition.map(|partition| Partitioning {
        partitioner: cluster.partitioner(),
        partition,
        relay: Arc::new(ClusterRelay::new(cluster)),
    });
    Ok(projection::projector(&settings.config, log, store)?
        .with_policies(settings.policies.clone())
        .with_partitioning(partitioning))
}

/// The node's partitions, running: stop them after the gRPC server has drained.
#[derive(Debug)]
pub struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<()>>,
}

impl Running {
    /// Closes every partition served here (a Kafka node then leaves the group); the first
    /// projector failure, if any.
    pub async fn stop(self) -> Result<()> {
        let _ = self.stop.send(());
        match self.task.await {
            Ok(result) => result,
            Err(e) => Err(Error::Unavailable(format!("the node's task failed: {e}"))),
        }
    }
}

/// A partition served here.
#[derive(Debug)]
struct Served {
    closing: watch::Sender<bool>,
    folding: Folding,
}

/// A partition's log and projector folding into its store in the background: one served
/// here, or (on Kafka) a standby copy of one another node serves, kept warm in case the
/// partition moves here.
#[derive(Debug)]
struct Folding {
    log: Arc<dyn Log>,
    stop: oneshot::Sender<()>,
    projection: JoinHandle<rezef_store::Result<()>>,
}

impl Folding {
    fn start(log: Arc<dyn Log>, projector: Projector, span: tracing::Span) -> Self {
        let (stop, stopped) = oneshot::channel::<()>();
        let projection = tokio::spawn(
            async move {
                let stopped = async {
                    let _ = stopped.await;
                };
                let result = projector.run(stopped).await;
                if let Err(error) = &result {
                    error!(%error, "the projector stopped");
                }
                result
            }
            .instrument(span),
        );
        Self {
            log,
            stop,
            projection,
        }
    }

    /// Stops the projector, then closes the log; how the projector ended.
    async fn stop(self) -> Result<()> {
        let _ = self.stop.send(());
        let projected = self.projection.await;
        self.log.close().await;
        match projected {
            Ok(result) => result.map_err(Error::from),
            Err(e) => {
                error!(error = %e, "the projector task failed");
                Err(Error::Unavailable(format!(
                    "the projector task failed: {e}"
                )))
            }
        }
    }
}

/// Opens and closes the partitions served here.
#[derive(Debug)]
struct Node {
    cluster: Topology,
    desks: Arc<Desks>,
    settings: Settings,
    /// Keys allowed to see sensitive values, shared by every partition.
    reveal_keys: Arc<Vec<String>>,
    /// Wrong continuation tokens, counted across the partitions the node serves.
    token_tries: Arc<crate::token_tries::TokenTries>,
    /// The keys the records of the partitions served here are sealed under: the data
    /// directory's key store, or on Kafka the cluster's key topic.
    sealing: Sealing,
    served: HashMap<u32, Served>,
}

impl Node {
    fn new(cluster: Topology, settings: Settings, sealing: Sealing) -> Self {
        Self {
            sealing,
            desks: Arc::new(Desks::new(cluster.clone())),
            cluster,
            reveal_keys: Arc::new(settings.config.reveal_keys.clone()),
            token_tries: Arc::default(),
            settings,
            served: HashMap::new(),
        }
    }

    /// Serves `partition`: folds its log into its store and answers calls about it once the
    /// projection has reached `ready_at`.
    fn serve(
        &mut self,
        partition: u32,
        log: Arc<dyn Log>,
        store: Arc<CachedStore>,
        projector: Projector,
        ready_at: u64,
    ) {
        let (closing, closing_watch) = watch::channel(false);
        let backbone = Backbone {
            log: log.clone(),
            store,
            projection: projector.watch(),
            limits: self.settings.config.limits.clone(),
            policies: self.settings.policies.clone(),
            reveal_keys: self.reveal_keys.clone(),
            closing: closing_watch,
            partition: (self.cluster.partitioner(), partition),
            token_tries: self.token_tries.clone(),
            sealing: self.sealing.clone(),
        };
        let folding = Folding::start(log, projector, info_span!("projection", partition));
        let desk = Desk::new(
            backbone.clone(),
            JourneyReader::new(&self.cluster),
            self.settings.routing.clone(),
            self.settings.clock.clone(),
        );
        // Ends when the partition closes (its backbone's `closing`), with its sessions.
        desk.spawn();
        // The desk first: a call placed here finds it.
        self.desks.set(partition, Some(desk));
        let replica = Replica { backbone, ready_at };
        self.cluster.replicas().set(partition, Some(replica));
        self.served.insert(partition, Served { closing, folding });
        info!(partition, ready_at, "serving a partition once caught up");
    }

    /// Ends open streams on every partition served here (the server is shutting down).
    fn closing(&self) {
        for served in self.served.values() {
            served.closing.send_replace(true);
        }
    }

    /// Resolves when the node is told to stop, having ended open streams as soon as the
    /// server began to shut down.
    async fn wait_until_stopped(&self, mut stopped: oneshot::Receiver<()>) {
        let mut closing = self.settings.closing.clone();
        tokio::select! {
            () = async { let _ = closing.wait_for(|closing| *closing).await; } => {
                self.closing();
                let _ = stopped.await;
            }
            _ = &mut stopped => {}
        }
    }

    /// Stops serving `partition`: calls stop finding it first, then its projector stops and
    /// its log closes; how its projector ended.
    async fn close(&mut self, partition: u32) -> Result<()> {
        self.cluster.replicas().set(partition, None);
        self.desks.set(partition, None);
        let Some(served) = self.served.remove(&partition) else {
            return Ok(());
        };
        served.closing.send_replace(true);
        let stopped = served.folding.stop().await;
        info!(partition, "stopped serving a partition");
        stopped
    }

    /// Closes every partition served here; the first projector failure, if any.
    async fn close_all(&mut self) -> Result<()> {
        let mut all: Vec<u32> = self.served.keys().copied().collect();
        all.sort_unstable();
        let mut result = Ok(());
        for partition in all {
            let closed = self.close(partition).await;
            if result.is_ok() {
                result = closed;
            }
        }
        result
    }
}
