//! Where each partition of the log is served: here, on another node, or nowhere yet.
//!
//! A node's view of the partitions is a [`Cluster`], whatever the log: on the embedded log it
//! is a cluster of one, whose one partition is served here; on a Kafka log the nodes share
//! the topic's partitions the way Kafka Streams instances do: the consumer group gives each
//! partition to one node, which folds it into a journey store of its own (`crate::node`) and
//! tells the others in the members topic (`directory`). Any node takes any call: it answers a
//! call about a partition it serves, forwards one about a partition another node owns, and
//! answers `UNAVAILABLE` with a retry hint while a partition has no owner or its owner is
//! still catching up, never stale data.
//!
//! A forwarded call carries [`FORWARDED_HEADER`] and is never forwarded again, so that two
//! nodes with different views of the members topic cannot bounce it between them. A client
//! that routes itself sends [`ROUTE_HEADER`]` = self` and gets the owner's address instead of
//! a forward (`x-rezef-owner`, and in the status's `ErrorInfo`).

pub mod directory;
pub mod figures;
mod relay;
mod replicas;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rezef_events::partition::Partitioner;
use tonic::metadata::{AsciiMetadataValue, MetadataMap};
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Request, Status};

use rezef_events::policy::Policies;

use crate::backbone::Backbone;
use crate::convert::Check;
use crate::{Error, Result};

pub use relay::{ClusterRelay, PartitionsService};
pub use replicas::{Replica, Replicas};

/// Marks a call one node forwarded to another.
pub const FORWARDED_HEADER: &str = "x-rezef-forwarded-by";
/// `self`: answer with the owner's address instead of forwarding.
pub const ROUTE_HEADER: &str = "x-rezef-route";

/// How long a client should wait before retrying a partition that is moving.
const RETRY_MOVING: Duration = Duration::from_millis(500);
/// How long before retrying when the owner did not answer.
const RETRY_UNREACHABLE: Duration = Duration::from_secs(1);
/// Longest wait for a connection to another node.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Where the log's partitions are served, as every service sees it.
pub type Topology = Arc<Cluster>;

/// Where one call goes: answered here, with what the partition (or the routing desk) here
/// answers it with, or forwarded to the node that serves it.
#[derive(Debug)]
pub enum Place<H = Backbone> {
    Here(H),
    There(Peer),
}

/// A node of the cluster as the members topic knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub node: String,
    pub url: String,
}

/// This node's view of the log's partitions: what it serves and who serves the rest.
#[derive(Debug)]
pub struct Cluster {
    me: Member,
    partitioner: Partitioner,
    replicas: Replicas,
    directory: Arc<directory::Directory>,
    peers: Mutex<HashMap<String, Channel>>,
    /// The largest message a forwarded call may carry.
    max_message_bytes: usize,
    /// The tenants' continuity rules, for checking the fields that place a call.
    policies: Arc<Policies>,
    /// `authorization` for the calls this node makes of its own (`[auth] node_key`).
    node_key: Option<AsciiMetadataValue>,
    /// TLS for calls to `https://` nodes (`[tls]`).
    tls: Option<ClientTlsConfig>,
}

impl Cluster {
    /// A node's view before it serves anything: `directory` says who serves what elsewhere
    /// (empty for a cluster of one).
    pub fn new(
        me: Member,
        partitioner: Partitioner,
        directory: Arc<directory::Directory>,
        max_message_bytes: usize,
        policies: Arc<Policies>,
    ) -> Self {
        Self {
            me,
            partitioner,
            replicas: Replicas::default(),
            directory,
            peers: Mutex::default(),
            node_key: None,
            tls: None,
            max_message_bytes,
            policies,
        }
    }

    /// This node.
    #[cfg(feature = "kafka")]
    pub fn me(&self) -> &Member {
        &self.me
    }

    pub fn partitioner(&self) -> Partitioner {
        self.partitioner
    }

    /// The partitions served here.
    pub fn replicas(&self) -> &Replicas {
        &self.replicas
    }

    /// Who serves which partition.
    #[cfg(feature = "kafka")]
    pub fn directory(&self) -> &directory::Directory {
        &self.directory
    }

    /// A check of the fields that place a call, under the tenants' rules: a phone number in a
    /// national form is read in the tenant's region here as on the node that answers.
    pub fn check(&self) -> Check {
        Check::under(self.policies())
    }

    /// The tenants' continuity rules.
    pub fn policies(&self) -> Arc<Policies> {
        self.policies.clone()
    }

    /// Whether there is more than one partition (calls are then placed per partition).
    pub fn is_partitioned(&self) -> bool {
        self.partitioner.partitions() > 1
    }

    /// Where to send a call whose placing fields are invalid, so that it is answered with
    /// every problem the full validation finds: any partition served here (validation
    /// comes before state is read), else another node, else `invalid` itself.
    pub fn place_invalid(&self, metadata: &MetadataMap, invalid: Error) -> Result<Place> {
        if let Some((_, backbone)) = self.local().into_iter().next() {
            return Ok(Place::Here(backbone));
        }
        match self.peers().into_iter().next() {
            Some(peer) if !metadata.contains_key(FORWARDED_HEADER) => Ok(Place::There(peer)),
            _ => Err(invalid),
        }
    }

    /// Where a call about `partition` is answered.
    pub fn place(&self, partition: u32, metadata: &MetadataMap) -> Result<Place> {
        if let Some(replica) = self.replicas.get(partition) {
            let (position, target) = (replica.backbone.projection.position(), replica.ready_at);
            return if position >= target {
                Ok(Place::Here(replica.backbone))
            } else {
                Err(Error::Retry {
                    message: format!(
                        "partition {partition} is catching up on node {} (at offset {position} \
                         of {target}); retry shortly",
                        self.me.node
                    ),
                    retry_after: RETRY_MOVING,
                    owner: None,
                })
            };
        }
        let owner = self.directory.owner(partition).filter(|o| *o != self.me);
        let Some(owner) = owner else {
            return Err(Error::Retry {
                message: format!("partition {partition} has no owner yet; retry shortly"),
                retry_after: RETRY_MOVING,
                owner: None,
            });
        };
        let route_self = metadata
            .get(ROUTE_HEADER)
            .is_some_and(|value| value == "self");
        if route_self || metadata.contains_key(FORWARDED_HEADER) {
            return Err(Error::Retry {
                message: format!(
                    "partition {partition} is served by node {} at {}",
                    owner.node, owner.url
                ),
                retry_after: RETRY_MOVING,
                owner: Some(owner.url),
            });
        }
        let channel = self.channel(&owner.url)?;
        Ok(Place::There(self.peer(owner, channel)))
    }

    /// Where events for `partition` are appended: by its owner, caught up or not, so that
    /// partitions relaying to each other never wait on each other's catch-up.
    fn place_writer(&self, partition: u32) -> Result<Place> {
        match self.replicas.get(partition) {
            Some(replica) => Ok(Place::Here(replica.backbone)),
            None => self.place(partition, &MetadataMap::new()),
        }
    }

    /// The answer to a call for a partition only its owner takes, on another node.
    pub fn not_served_here(&self, partition: u32) -> Error {
        let owner = self.directory.owner(partition).filter(|o| *o != self.me);
        Error::Retry {
            message: format!(
                "partition {partition} is not served by node {}",
                self.me.node
            ),
            retry_after: RETRY_MOVING,
            owner: owner.map(|o| o.url),
        }
    }

    /// A channel to another node, made once and reused (it reconnects by itself).
    fn channel(&self, url: &str) -> Result<Channel> {
        let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(channel) = peers.get(url) {
            return Ok(channel.clone());
        }
        let invalid = |e: tonic::transport::Error| {
            Error::Unavailable(format!("the owner's address {url} is invalid: {e}"))
        };
        let mut endpoint = (Endpoint::from_shared(url.to_owned()).map_err(invalid)?)
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true);
        if let Some(tls) = self.tls.as_ref().filter(|_| url.starts_with("https://")) {
            endpoint = endpoint.tls_config(tls.clone()).map_err(invalid)?;
        }
        let channel = endpoint.connect_lazy();
        peers.insert(url.to_owned(), channel.clone());
        Ok(channel)
    }

    /// Every other node known to own partitions, to ask when the partition is not known.
    pub fn peers(&self) -> Vec<Peer> {
        let others = self
            .directory
            .members()
            .into_iter()
            .filter(|m| *m != self.me);
        others
            .filter_map(|owner| {
                let channel = self.channel(&owner.url).ok()?;
                Some(self.peer(owner, channel))
            })
            .collect()
    }

    fn peer(&self, owner: Member, channel: Channel) -> Peer {
        Peer {
            channel,
            owner,
            forwarder: self.me.node.clone(),
            max_message_bytes: self.max_message_bytes,
            node_key: self.node_key.clone(),
        }
    }

    /// Calls this node makes of its own carry `key` (a key of all tenants with the `node`
    /// role); calls it forwards carry their caller's. A key that is not a header value is
    /// refused at start by `ServerConfig::validate`.
    #[must_use]
    pub fn with_node_key(mut self, key: Option<&str>) -> Self {
        self.node_key = key.and_then(|key| format!("Bearer {key}").parse().ok());
        self
    }

    /// Calls to `https://` nodes check their certificates with `tls` (and show this node's).
    #[must_use]
    pub fn with_tls(mut self, tls: Option<ClientTlsConfig>) -> Self {
        self.tls = tls;
        self
    }

    /// The backbones of the partitions served here, caught up or not.
    pub fn local(&self) -> Vec<(u32, Backbone)> {
        self.replicas.all()
    }
}

/// The owner of a partition this node does not serve, ready to take a forwarded call.
#[derive(Debug)]
pub struct Peer {
    channel: Channel,
    owner: Member,
    forwarder: String,
    max_message_bytes: usize,
    node_key: Option<AsciiMetadataValue>,
}

impl Peer {
    /// The node it is.
    pub fn node(&self) -> &str {
        &self.owner.node
    }

    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// The largest message the forwarded call may carry, either way.
    pub fn max_message_bytes(&self) -> usize {
        self.max_message_bytes
    }

    /// What the caller gets when the forwarded call failed: the owner's own answer, or
    /// `UNAVAILABLE` with a retry hint when the owner could not be reached.
    pub fn failed(&self, status: Status) -> Status {
        let reached = !status.details().is_empty() || status.code() != Code::Unavailable;
        if reached {
            return status;
        }
        Error::Retry {
            message: format!(
                "node {} at {} did not answer: {}",
                self.owner.node,
                self.owner.url,
                status.message()
            ),
            retry_after: RETRY_UNREACHABLE,
            owner: Some(self.owner.url.clone()),
        }
        .into()
    }
}

impl Peer {
    /// The call to send on: the caller's metadata (deadline, key) and the forwarding mark;
    /// the node's own key when there is no caller's.
    pub fn forward<T>(&self, request: Request<T>) -> Request<T> {
        let (mut metadata, _, message) = request.into_parts();
        if let Ok(value) = self.forwarder.parse() {
            metadata.insert(FORWARDED_HEADER, value);
        }
        if let Some(key) = &self.node_key
            && !metadata.contains_key("authorization")
        {
            metadata.insert("authorization", key.clone());
        }
        Request::from_parts(metadata, tonic::Extensions::default(), message)
    }
}

/// Sends `$request` on to the owner `$peer` with `$client::$method` and answers with the
/// owner's response (see [`Peer::failed`] for an owner that does not answer).
macro_rules! forward {
    ($peer:expr, $client:ident, $method:ident, $request:expr) => {{
        let peer = $peer;
        $client::new(peer.channel())
            .max_decoding_message_size(peer.max_message_bytes())
            .max_encoding_message_size(peer.max_message_bytes())
            .$method(peer.forward($request))
            .await
            .map_err(|status| peer.failed(status))
    }};
}
pub(crate) use forward;

/// Answers a unary call in `$span`: placed by `$place`, then here with `$local` made of what
/// answers it here (a future of the response message), or by forwarding it with
/// `$client::$method`.
macro_rules! answer {
    ($span:expr, $place:expr, |$here:ident| $local:expr, $client:ident, $method:ident, $request:expr) => {
        tracing::Instrument::instrument(
            async {
                match $place {
                    $crate::cluster::Place::Here($here) => {
                        Ok::<_, tonic::Status>(tonic::Response::new($local.await?))
                    }
                    $crate::cluster::Place::There(peer) => {
                        $crate::cluster::forward!(peer, $client, $method, $request)
                    }
                }
            },
            $span,
        )
        .await
    };
}
pub(crate) use answer;

/// Forwards a streaming call with `$client::$method` and answers with the owner's stream.
macro_rules! forward_stream {
    ($peer:expr, $client:ident, $method:ident, $request:expr) => {{
        let response = $crate::cluster::forward!($peer, $client, $method, $request)?;
        Ok(tonic::Response::new(Box::pin(response.into_inner())))
    }};
}
pub(crate) use forward_stream;
