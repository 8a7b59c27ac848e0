//! A tenant's measurement figures over every partition of the log, wherever each is served
//! (docs/measurement.md, "A cluster's report"). Figures are sums and sparse spreads, which
//! merge exactly in any order; percentiles do not. So a report gathers the *figures* of every
//! partition (here for the partitions this node serves, through the owner's
//! `rezef.cluster.v1.Partitions/ReadFigures` for the others, one call per owner), merges them,
//! and only then turns them into rows. A partition with no owner, still catching up, or whose
//! owner does not answer makes the whole read `UNAVAILABLE`: a part is never given as the
//! whole. On the embedded log every partition is here and no call is made.
//!
//! Between nodes the query and the figures travel in the encoding the store keeps buckets in
//! (postcard of `rezef_measure`'s types), versioned by the store's `MEASURE_FORMAT`: a change
//! of those types bumps it, and a node refuses figures of another format.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::time::Duration;

use futures::future::try_join_all;
use rezef_events::{TenantId, Timestamp};
use rezef_measure::{BucketKey, Figures, Grouping};
use rezef_proto::cluster::v1::partitions_client::PartitionsClient;
use rezef_proto::cluster::v1::{ReadFiguresRequest, ReadFiguresResponse};
use serde::{Deserialize, Serialize};
use tonic::Request;
use tonic::metadata::MetadataMap;

use super::{Cluster, Peer, Place};
use crate::backbone::Backbone;
use crate::{Error, Result};

/// Figures by bucket, merged.
pub type ByBucket = BTreeMap<BucketKey, Figures>;

/// The layout of a query and of figures between nodes.
pub const FORMAT: u32 = rezef_store::MEASURE_FORMAT;

/// The longest wait for another node's figures.
const PEER_WAIT: Duration = Duration::from_secs(30);

/// What a report reads: the range of bucket starts and the grouping of a checked request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Query {
    pub range: Range<Timestamp>,
    pub grouping: Grouping,
}

/// `tenant`'s figures for `query`, merged over every partition of the log.
pub async fn across(cluster: &Cluster, tenant: &TenantId, query: &Query) -> Result<ByBucket> {
    let mut here = Vec::new();
    // Each owner once, with the partitions it is asked for.
    let mut there: BTreeMap<String, (Peer, Vec<u32>)> = BTreeMap::new();
    for partition in 0..cluster.partitioner().partitions() {
        match cluster
            .place(partition, &MetadataMap::new())
            .map_err(whole)?
        {
            Place::Here(backbone) => here.push(backbone),
            Place::There(peer) => {
                let node = peer.node().to_owned();
                there
                    .entry(node)
                    .or_insert((peer, Vec::new()))
                    .1
                    .push(partition);
            }
        }
    }
    let asked = there
        .into_values()
        .map(|(peer, partitions)| read_there(peer, tenant, query, partitions));
    let (mut merged, theirs) = tokio::try_join!(
        merged_here(here, tenant.clone(), query.clone()),
        try_join_all(asked)
    )?;
    for figures in theirs {
        merge(&mut merged, figures);
    }
    Ok(merged)
}

/// Names what a report lacks when a partition cannot be read now.
fn whole(error: Error) -> Error {
    match error {
        Error::Retry {
            message,
            retry_after,
            owner,
        } => Error::Retry {
            message: format!("a report needs every partition: {message}"),
            retry_after,
            owner,
        },
        other => other,
    }
}

fn merge(into: &mut ByBucket, figures: ByBucket) {
    for (key, figures) in figures {
        into.entry(key).or_default().merge(&figures);
    }
}

/// The figures of `backbones`' partitions, merged (off the async runtime: a long report
/// merges many buckets).
pub async fn merged_here(
    backbones: Vec<Backbone>,
    tenant: TenantId,
    query: Query,
) -> Result<ByBucket> {
    tokio::task::spawn_blocking(move || -> Result<_> {
        let mut merged = ByBucket::new();
        for backbone in backbones {
            let figures = (backbone.store).report(&tenant, query.range.clone(), query.grouping)?;
            merge(&mut merged, figures);
        }
        Ok(merged)
    })
    .await
    .map_err(|e| Error::Unavailable(format!("the report's task failed: {e}")))?
}

/// Asks `peer` for the figures of its `partitions`.
async fn read_there(
    peer: Peer,
    tenant: &TenantId,
    query: &Query,
    partitions: Vec<u32>,
) -> Result<ByBucket> {
    let request = Request::new(ReadFiguresRequest {
        tenant_id: tenant.to_string(),
        partitions,
        format: FORMAT,
        query: encode("query", query)?,
    });
    let call = async {
        let mut client = PartitionsClient::new(peer.channel())
            .max_decoding_message_size(peer.max_message_bytes())
            .max_encoding_message_size(peer.max_message_bytes());
        (client.read_figures(peer.forward(request)).await)
            .map_err(|status| peer.failed(unreached(status)))
    };
    let response = match tokio::time::timeout(PEER_WAIT, call).await {
        Ok(answer) => answer.map_err(Error::Forwarded)?.into_inner(),
        Err(_) => {
            let status = tonic::Status::unavailable(format!("no answer within {PEER_WAIT:?}"));
            return Err(Error::Forwarded(peer.failed(status)));
        }
    };
    let node = peer.node();
    if response.format != FORMAT {
        return Err(Error::Unavailable(format!(
            "node {node} answered figures in format {}, this node reads {FORMAT}: a report \
             needs every node on one measurement format",
            response.format
        )));
    }
    let rows: Vec<(BucketKey, Figures)> = postcard::from_bytes(&response.figures)
        .map_err(|e| Error::Unavailable(format!("node {node} answered unreadable figures: {e}")))?;
    Ok(rows.into_iter().collect())
}

/// A call the connection dropped (an owner killed while it answered: `CANCELLED` with no
/// details) as one never answered, which [`Peer::failed`] makes `UNAVAILABLE` naming the node.
fn unreached(status: tonic::Status) -> tonic::Status {
    match status.code() == tonic::Code::Cancelled && status.details().is_empty() {
        true => tonic::Status::unavailable(status.message()),
        false => status,
    }
}

/// The owner's side of `ReadFigures`: the figures of the partitions named, every one served
/// and caught up here.
pub(super) async fn read_here(
    cluster: &Cluster,
    request: ReadFiguresRequest,
) -> Result<ReadFiguresResponse> {
    if request.format != FORMAT {
        return Err(Error::FailedPrecondition(format!(
            "this node reads figures in format {FORMAT}, the call's are in format {}",
            request.format
        )));
    }
    let tenant = TenantId::new(request.tenant_id).map_err(|e| Error::invalid("tenant_id", e))?;
    let query: Query =
        postcard::from_bytes(&request.query).map_err(|e| Error::invalid("query", e.to_string()))?;
    if request.partitions.is_empty() {
        return Err(Error::invalid("partitions", "at least one is required"));
    }
    let count = cluster.partitioner().partitions();
    let mut named = BTreeSet::new();
    for (i, partition) in request.partitions.iter().enumerate() {
        if *partition >= count {
            return Err(Error::invalid(
                format!("partitions[{i}]"),
                format!("must be below {count}"),
            ));
        }
        if !named.insert(*partition) {
            return Err(Error::invalid(
                format!("partitions[{i}]"),
                "names a partition twice",
            ));
        }
    }
    let mut backbones = Vec::with_capacity(named.len());
    for partition in named {
        // Caught up here (else UNAVAILABLE with a retry hint), or not served here at all.
        match cluster.place(partition, &MetadataMap::new())? {
            Place::Here(backbone) => backbones.push(backbone),
            Place::There(_) => return Err(cluster.not_served_here(partition)),
        }
    }
    let merged = merged_here(backbones, tenant, query).await?;
    let rows: Vec<_> = merged.iter().collect();
    Ok(ReadFiguresResponse {
        format: FORMAT,
        figures: encode("figures", &rows)?,
    })
}

fn encode(what: &str, value: &impl Serialize) -> Result<Vec<u8>> {
    postcard::to_stdvec(value)
        .map_err(|e| Error::Unavailable(format!("the {what} could not be encoded: {e}")))
}

#[cfg(test)]
mod tests {
    use rezef_measure::Interval;
    use rezef_measure::record::Dims;

    use super::*;

    #[test]
    fn figures_travel_in_the_stores_encoding_and_merge_as_they_were() {
        let key = BucketKey {
            start: Timestamp::from_unix_millis(1_796_601_600_000),
            dims: Dims {
                queue: Some("billing".into()),
                ..Dims::default()
            },
        };
        let mut figures = Figures {
            contacts: 3,
            resolved: 1,
            ..Figures::default()
        };
        (figures.classic.in_target, figures.classic.counted) = (2, 3);
        let rows = vec![(&key, &figures)];
        let bytes = encode("figures", &rows).expect("encodes");
        let back: Vec<(BucketKey, Figures)> = postcard::from_bytes(&bytes).expect("decodes");
        assert_eq!(back, vec![(key.clone(), figures.clone())]);
        // The store writes a bucket's figures with the same codec.
        let stored = postcard::to_stdvec(&figures).expect("encodes");
        assert!(bytes.windows(stored.len()).any(|w| w == stored));
        let mut merged = ByBucket::from([(key.clone(), figures.clone())]);
        merge(&mut merged, back.into_iter().collect());
        assert_eq!(merged[&key].contacts, 6);
        assert_eq!(merged[&key].classic.in_target, 4);
    }

    #[test]
    fn a_query_travels_whole() {
        let query = Query {
            range: Timestamp::from_unix_millis(0)..Timestamp::from_unix_millis(900_000),
            grouping: Grouping {
                interval: Some(Interval::Quarter),
                queue: true,
                channel: false,
                intent: true,
            },
        };
        let bytes = encode("query", &query).expect("encodes");
        let back: Query = postcard::from_bytes(&bytes).expect("decodes");
        assert_eq!(back, query);
        assert!(postcard::from_bytes::<Query>(&bytes[..bytes.len() - 1]).is_err());
    }
}
