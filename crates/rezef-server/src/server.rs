//! Assembles the backbone: opens the log and the journey store, starts the projector and
//! serves the gRPC services (with health and reflection) until shut down.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use http::HeaderValue;
use rezef_proto::cluster::v1::partitions_server::PartitionsServer;
use rezef_proto::v1::{
    audit_server::AuditServer, identities_server::IdentitiesServer, ingest_server::IngestServer,
    insights_server::InsightsServer, journeys_server::JourneysServer,
    routing_server::RoutingServer,
};
use rezef_store::JourneyCache;
use tokio::net::TcpListener;
use tonic::service::Routes;
use tower::util::{BoxCloneSyncService, MapResponseLayer, option_layer};
use tower::{Layer, ServiceBuilder};
use tracing::{info, warn};

use crate::audit::AuditService;
use crate::auth::Guard;
use crate::auth::layer::GuardLayer;
use crate::clock::{Clock, SystemClock};
use crate::cluster::PartitionsService;
use crate::config::ServerConfig;
use crate::dashboard::Dashboard;
use crate::identities::IdentitiesService;
use crate::ingest::IngestService;
use crate::insights::{InsightsService, Projections};
use crate::journeys::JourneysService;
use crate::metrics::{Calls, CallsLayer, Endpoint, Metrics, Scrape};
use crate::node::{self, Assignment};
use crate::projection::journey_cache;
use crate::routing::RoutingService;
use crate::shutdown;
use crate::tls::Tls;
use crate::{Error, Result};

/// A backbone ready to serve: storage open, listener bound.
#[derive(Debug)]
pub struct Server {
    config: ServerConfig,
    listener: TcpListener,
    /// The partitions the node starts with, or how it will be given them.
    assignment: Assignment,
    routing: Option<rezef_routing::Routing>,
    clock: Arc<dyn Clock>,
    /// The node's cache of journeys, for every store it opens.
    cache: JourneyCache,
    guard: Guard,
    /// TLS on the port, when configured.
    tls: Option<Tls>,
    metrics: Metrics,
    /// `/metrics`, bound when enabled.
    metrics_endpoint: Option<Endpoint>,
    /// The dashboard, bound when enabled.
    dashboard: Option<Dashboard>,
}

impl Server {
    /// Opens the data directory (recovering the log if the last run crashed) and binds the
    /// listen address (port 0 picks a free port; see [`Server::local_addr`]).
    pub async fn open(config: ServerConfig) -> Result<Self> {
        config.validate()?;
        let guard = Guard::open(&config)?;
        let tls = Tls::open(&config.tls)?;
        let routing = config
            .routing_config
            .as_deref()
            .map(load_routing)
            .transpose()?;
        let cache = journey_cache(&config);
        let assignment = Assignment::open(&config, &cache)?;
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| Error::Bind {
                addr: config.listen,
                source,
            })?;
        let metrics_endpoint = match config.metrics.enabled {
            true => Some(Endpoint::bind(config.metrics.listen).await?),
            false => None,
        };
        let dashboard = match config.dashboard.enabled {
            true => Some(Dashboard::bind(config.dashboard.listen).await?),
            false => None,
        };
        Ok(Self {
            dashboard,
            metrics: Metrics::new(),
            metrics_endpoint,
            config,
            listener,
            assignment,
            routing,
            clock: Arc::new(SystemClock),
            cache,
            guard,
            tls,
        })
    }

    /// The node's cache of journeys: [`JourneyCache::warming`] says whether the stores
    /// opened so far are still warming it.
    pub fn journey_cache(&self) -> &JourneyCache {
        &self.cache
    }

    /// Routing, and the current interval of `Insights/WatchInterval`, run on `clock` instead
    /// of the system's (a test's [`crate::ManualClock`]).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.config.listen)
    }

    /// Where `/metrics` is served, when enabled (`[metrics]`).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_endpoint
            .as_ref()
            .and_then(Endpoint::local_addr)
    }

    /// Where the dashboard is served, when enabled (`[dashboard]`).
    pub fn dashboard_addr(&self) -> Option<SocketAddr> {
        self.dashboard.as_ref().and_then(Dashboard::local_addr)
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
        let cache = self.cache;
        let settings = node::Settings {
            policies: Arc::new(self.config.continuity.clone()),
            config: self.config.clone(),
            port: addr.port(),
            closing: closing_watch.clone(),
            routing: self.routing,
            clock: self.clock.clone(),
            cache: cache.clone(),
            peer_tls: Some(crate::tls::peer_config(&self.config.tls)?),
            checkpoints: Arc::new(self.metrics.checkpoints.clone()),
        };
        let (topology, desks, running) = node::start(self.assignment, settings).await?;
        // Calls are counted only when someone can read the counts.
        let mut counted = None;
        if let Some(endpoint) = self.metrics_endpoint {
            let embedded = self.config.log.backend == crate::config::LogBackend::Embedded;
            let scrape = Scrape {
                topology: topology.clone(),
                desks: desks.clone(),
                cache: cache.clone(),
                store_dir: self.config.store_dir(),
                log_dir: embedded.then(|| self.config.log_dir()),
            };
            let calls = Calls::new()?;
            endpoint.serve(self.metrics.registry(&calls, scrape), closing_watch.clone());
            counted = Some(CallsLayer(calls));
        }
        tokio::spawn(self.guard.clone().follow(closing_watch.clone()));
        let closing_watch_tls = closing_watch.clone();
        let mut grace_over = closing_watch.clone();
        // Connections get `shutdown::GRACE` to take their last messages, then are dropped.
        let grace_over = async move {
            let _ = grace_over.wait_for(|closing| *closing).await;
            tokio::time::sleep(shutdown::GRACE).await;
        };

        // Each service's status follows the parts it needs (`crate::health`).
        let (health, health_service) = tonic_health::server::health_reporter();
        crate::health::follow(topology.clone(), health, closing_watch.clone()).await;
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
            closing_watch.clone(),
            self.metrics.ingest.clone(),
        ))
        .max_decoding_message_size(limit);
        let journeys = JourneysServer::new(JourneysService::new(topology.clone()))
            .max_decoding_message_size(limit);
        let identities = IdentitiesServer::new(IdentitiesService::new(topology.clone()))
            .max_decoding_message_size(limit);
        let audit =
            AuditServer::new(AuditService::new(topology.clone())).max_decoding_message_size(limit);
        let insights = InsightsService::new(topology.clone(), self.clock, closing_watch);
        let insights = InsightsServer::new(insights).max_decoding_message_size(limit);
        // Other nodes' projectors append to the partitions served here.
        let partitions = PartitionsServer::new(PartitionsService::new(topology.clone()))
            .max_decoding_message_size(limit);
        let routing =
            RoutingServer::new(RoutingService::new(desks)).max_decoding_message_size(limit);

        info!(%addr, data_dir = %self.config.data_dir.display(), tls = self.tls.is_some(), "rezef is serving");
        // One stack for every call, from the network or from the dashboard.
        let layers = ServiceBuilder::new()
            // Outermost: counts every call with the status the client gets.
            .layer(option_layer(counted))
            .layer(MapResponseLayer::new(oversize_is_resource_exhausted))
            .layer(GuardLayer(self.guard))
            .into_inner();
        let mut routes = Routes::builder();
        routes
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(ingest)
            .add_service(journeys)
            .add_service(identities)
            .add_service(audit)
            .add_service(insights)
            .add_service(routing)
            .add_service(partitions);
        let routes = routes.routes().prepare();
        if let Some(dashboard) = self.dashboard {
            let grpc = BoxCloneSyncService::new(layers.clone().layer(routes.clone()));
            let projections = Projections::new(topology.clone());
            dashboard.serve(grpc, projections, closing_watch_tls.clone());
        }
        let router = tonic::transport::Server::builder()
            .layer(layers)
            .add_routes(routes);
        match self.tls {
            Some(tls) => {
                tokio::spawn(tls.clone().follow(closing_watch_tls));
                let incoming = tls.incoming(self.listener);
                let serve = router.serve_with_incoming_shutdown(incoming, shutdown);
                bounded(serve, grace_over).await?;
            }
            None => {
                // Small responses must not wait for Nagle's algorithm (40 ms with delayed ACKs).
                let incoming = tonic::transport::server::TcpIncoming::from(self.listener)
                    .with_nodelay(Some(true));
                let serve = router.serve_with_incoming_shutdown(incoming, shutdown);
                bounded(serve, grace_over).await?;
            }
        }

        info!("shutting down");
        running.stop().await
    }
}

/// Serves until `serve` ends or, once shutdown began, its grace is over.
async fn bounded(
    serve: impl Future<Output = std::result::Result<(), tonic::transport::Error>>,
    grace_over: impl Future<Output = ()>,
) -> Result<()> {
    tokio::select! {
        served = serve => Ok(served?),
        () = grace_over => {
            warn!(grace = ?shutdown::GRACE, "connections still open after the grace: dropped");
            Ok(())
        }
    }
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
