//! Assembles the backbone: opens the log and the journey store, starts the projector and
//! serves the gRPC services (with health and reflection) until shut down.

use std::future::Future;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::Arc;

use http::HeaderValue;
use rezef_events::partition::Partitioner;
use rezef_log::kafka::{KafkaConfig, KafkaLog, TopicStatus, ensure_topic};
use rezef_log::{EmbeddedLog, EmbeddedLogConfig, Log};
use rezef_proto::cluster::v1::partitions_server::PartitionsServer;
use rezef_proto::v1::{
    audit_server::AuditServer, identities_server::IdentitiesServer, ingest_server::IngestServer,
    journeys_server::JourneysServer, routing_server::RoutingServer,
};
use rezef_store::{CachedStore, JourneyCache, Partitioning, Projector};
use tokio::net::TcpListener;
use tower::util::MapResponseLayer;
use tracing::{Instrument, error, info, info_span};

use crate::audit::AuditService;
use crate::backbone::Backbone;
use crate::clock::{Clock, SystemClock};
use crate::cluster::{self, AlreadySent, JourneyReader, PartitionsService, Topology};
use crate::config::{LogBackend, ServerConfig};
use crate::identities::IdentitiesService;
use crate::ingest::IngestService;
use crate::journeys::JourneysService;
use crate::projection::{self, journey_cache, open_store};
use crate::routing::desk::Desk;
use crate::routing::{Desks, RoutingService};
use crate::{Error, Result};

/// A backbone ready to serve: storage open, listener bound.
#[derive(Debug)]
pub struct Server {
    config: ServerConfig,
    listener: TcpListener,
    storage: Storage,
    routing: Option<rezef_routing::Routing>,
    clock: Arc<dyn Clock>,
    /// The node's cache of journeys, for every store it opens.
    cache: JourneyCache,
}

/// Where the events and the journeys are.
#[derive(Debug)]
enum Storage {
    /// The embedded log and one store, all here.
    Single {
        log: Arc<dyn Log>,
        store: Arc<CachedStore>,
    },
    /// A Kafka topic whose partitions this node shares with others; each partition it owns
    /// gets a store of its own when the group assigns it.
    Cluster,
}

impl Server {
    /// Opens the data directory (recovering the log if the last run crashed) and binds the
    /// listen address (port 0 picks a free port; see [`Server::local_addr`]).
    pub async fn open(config: ServerConfig) -> Result<Self> {
        config.validate()?;
        let routing = config
            .routing_config
            .as_deref()
            .map(load_routing)
            .transpose()?;
        let cache = journey_cache(&config);
        let storage = match config.log.backend {
            LogBackend::Embedded => {
                // The log first: it says plainly when another process holds the data dir.
                let log = open_log(&config)?;
                let store = open_store(&config, &config.store_dir(), &cache)?;
                projection::warm(&config, &store);
                Storage::Single { log, store }
            }
            LogBackend::Kafka => Storage::Cluster,
        };
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| Error::Bind {
                addr: config.listen,
                source,
            })?;
        Ok(Self {
            config,
            listener,
            storage,
            routing,
            clock: Arc::new(SystemClock),
            cache,
        })
    }

    /// The node's cache of journeys: [`JourneyCache::warming`] says whether the stores
    /// opened so far are still warming it.
    pub fn journey_cache(&self) -> &JourneyCache {
        &self.cache
    }

    /// Routing runs on `clock` instead of the system's (a test's [`crate::ManualClock`]).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.config.listen)
    }

    /// Serves until `shutdown` resolves, then stops the projector(s) and closes the log.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<()> {
        let addr = self.local_addr();
        let (closing, closing_watch) = tokio::sync::watch::channel(false);
        // Open streams (watches, replays) end when shutdown begins, so that the graceful
        // shutdown does not wait for clients that never hang up.
        let shutdown = async move {
            shutdown.await;
            closing.send_replace(true);
        };
        let (topology, background) = match self.storage {
            Storage::Single { log, store } => {
                let policies = Arc::new(self.config.continuity.clone());
                let projector = projection::projector(&self.config, log.clone(), store.clone())?
                    .with_policies(policies.clone());
                let backbone = Backbone {
                    log: log.clone(),
                    store,
                    projection: projector.watch(),
                    limits: self.config.limits.clone(),
                    policies,
                    reveal_keys: Arc::new(self.config.reveal_keys.clone()),
                    closing: closing_watch.clone(),
                    partition: None,
                };
                let background = Background::Single(SingleProjection::start(projector, log));
                (Topology::Single(backbone), background)
            }
            Storage::Cluster => {
                let (cluster, running) = cluster::start(
                    &self.config,
                    self.cache.clone(),
                    addr.port(),
                    closing_watch.clone(),
                    self.routing.clone(),
                    self.clock.clone(),
                )
                .await?;
                (Topology::Cluster(cluster), Background::Cluster(running))
            }
        };

        let (health, health_service) = tonic_health::server::health_reporter();
        health.set_serving::<IngestServer<IngestService>>().await;
        health
            .set_serving::<JourneysServer<JourneysService>>()
            .await;
        health.set_serving::<AuditServer<AuditService>>().await;
        health
            .set_serving::<IdentitiesServer<IdentitiesService>>()
            .await;
        // Both versions: grpcurl and Postman speak v1; grpcio's own reflection client and other
        // older tools speak only v1alpha.
        let reflection = || {
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(rezef_proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        };
        let reflection_error = |e| Error::Config(format!("reflection: {e}"));
        let reflection_v1 = reflection().build_v1().map_err(reflection_error)?;
        let reflection_v1alpha = reflection().build_v1alpha().map_err(reflection_error)?;

        let limit = self.config.limits.max_message_bytes;
        let ingest = IngestServer::new(IngestService::new(
            topology.clone(),
            self.config.limits.clone(),
            closing_watch,
        ))
        .max_decoding_message_size(limit);
        let journeys = JourneysServer::new(JourneysService::new(topology.clone()))
            .max_decoding_message_size(limit);
        let identities = IdentitiesServer::new(IdentitiesService::new(topology.clone()))
            .max_decoding_message_size(limit);
        let audit =
            AuditServer::new(AuditService::new(topology.clone())).max_decoding_message_size(limit);
        // Other nodes' projectors append to the partitions served here.
        let partitions = match &topology {
            Topology::Cluster(cluster) => Some(
                PartitionsServer::new(PartitionsService::new(cluster.clone()))
                    .max_decoding_message_size(limit),
            ),
            Topology::Single(_) => None,
        };
        let (desks, timer) = match &topology {
            Topology::Single(backbone) => {
                let reader = JourneyReader::Here(backbone.clone());
                let desk = Desk::new(backbone.clone(), reader, self.routing, self.clock);
                let timer = desk.spawn();
                (Desks::Single(desk), Some(timer))
            }
            // Each partition served here runs its own desk (cluster/replicas.rs).
            Topology::Cluster(cluster) => (Desks::Cluster(cluster.clone()), None),
        };
        let routing =
            RoutingServer::new(RoutingService::new(desks)).max_decoding_message_size(limit);
        health.set_serving::<RoutingServer<RoutingService>>().await;

        // Small responses must not wait for Nagle's algorithm (40 ms with delayed ACKs).
        let incoming =
            tonic::transport::server::TcpIncoming::from(self.listener).with_nodelay(Some(true));
        info!(%addr, data_dir = %self.config.data_dir.display(), "rezef is serving");
        let router = tonic::transport::Server::builder()
            .layer(MapResponseLayer::new(oversize_is_resource_exhausted))
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(ingest)
            .add_service(journeys)
            .add_service(identities)
            .add_service(audit)
            .add_service(routing)
            .add_optional_service(partitions);
        router
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await?;

        info!("shutting down");
        if let Some(timer) = timer {
            timer.abort();
        }
        match background {
            Background::Single(projection) => projection.stop().await,
            Background::Cluster(running) => {
                running.stop().await;
                Ok(())
            }
        }
    }
}

/// What runs beside the gRPC server.
enum Background {
    Single(SingleProjection),
    Cluster(cluster::Running),
}

/// The projector of the embedded log, running.
struct SingleProjection {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<rezef_store::Result<()>>,
    log: Arc<dyn Log>,
}

impl SingleProjection {
    fn start(projector: Projector, log: Arc<dyn Log>) -> Self {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(
            async move {
                let result = projector
                    .run(async {
                        let _ = stopped.await;
                    })
                    .await;
                if let Err(error) = &result {
                    error!(%error, "the projector stopped");
                }
                result
            }
            .instrument(info_span!("projection")),
        );
        Self { stop, task, log }
    }

    /// Stops the projector, then closes the log.
    async fn stop(self) -> Result<()> {
        let _ = self.stop.send(());
        let projected = self.task.await;
        self.log.close().await;
        match projected {
            Ok(result) => result.map_err(Error::from),
            Err(panic) => std::panic::resume_unwind(panic.into_panic()),
        }
    }
}

/// One partition of the log, for `rezef rebuild`.
#[derive(Debug)]
pub struct LogPartition {
    pub log: Arc<dyn Log>,
    /// Where its journey store lives.
    pub store_dir: PathBuf,
    /// Its place among the partitions of a Kafka topic (`None`: the embedded log).
    pub partitioning: Option<Partitioning>,
}

/// Every partition of the configured log: the embedded log is one; a Kafka topic has as
/// many as it was created with (created here if missing).
pub async fn open_partitions(config: &ServerConfig) -> Result<Vec<LogPartition>> {
    let settings = &config.log.kafka;
    match config.log.backend {
        LogBackend::Embedded => Ok(vec![LogPartition {
            log: open_log(config)?,
            store_dir: config.store_dir(),
            partitioning: None,
        }]),
        LogBackend::Kafka => {
            let mut kafka = KafkaConfig::new(&settings.brokers, &settings.topic, 0);
            kafka.request_timeout = std::time::Duration::from_millis(settings.request_timeout_ms);
            let settings = config.topic_settings();
            let partitions = match ensure_topic(&kafka, &settings).await? {
                TopicStatus::Created => settings.partitions,
                TopicStatus::Existed { partitions } => partitions,
            };
            let count = NonZeroU32::new(partitions.unsigned_abs())
                .ok_or_else(|| Error::Config("the topic has no partitions".into()))?;
            let mut opened = Vec::new();
            for partition in 0..partitions {
                kafka.partition = partition;
                let log: Arc<dyn Log> = KafkaLog::open(kafka.clone()).await?;
                let partition = partition.unsigned_abs();
                opened.push(LogPartition {
                    log,
                    store_dir: config.partition_store_dir(partition),
                    partitioning: Some(Partitioning {
                        partitioner: Partitioner::new(count),
                        partition,
                        relay: Arc::new(AlreadySent),
                    }),
                });
            }
            Ok(opened)
        }
    }
}

/// The embedded log under the data directory.
fn open_log(config: &ServerConfig) -> Result<Arc<dyn Log>> {
    Ok(EmbeddedLog::open(EmbeddedLogConfig {
        segment_bytes: config.log.segment_bytes,
        ..EmbeddedLogConfig::new(config.log_dir())
    })?)
}

/// Reads and compiles the routing file; every mistake is reported.
fn load_routing(path: &std::path::Path) -> Result<rezef_routing::Routing> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Config(format!("routing_config {}: {e}", path.display())))?;
    rezef_routing::RoutingConfig::from_toml(&text).map_err(|errors| {
        let listed: Vec<String> = errors.iter().map(ToString::to_string).collect();
        Error::Config(format!(
            "routing_config {}: {}",
            path.display(),
            listed.join("; ")
        ))
    })
}

/// tonic answers a message over the size limit with `OUT_OF_RANGE`; gRPC's own guidance
/// (and clients' retry logic) expects `RESOURCE_EXHAUSTED`. Rewrites that one status.
fn oversize_is_resource_exhausted<B>(mut response: http::Response<B>) -> http::Response<B> {
    let headers = response.headers_mut();
    let out_of_range = headers
        .get("grpc-status")
        .is_some_and(|status| status == "11");
    let too_large = headers
        .get("grpc-message")
        .and_then(|message| message.to_str().ok())
        .is_some_and(|message| message.contains("too%20large") || message.contains("too large"));
    if out_of_range && too_large {
        headers.insert("grpc-status", HeaderValue::from_static("8"));
    }
    response
}
