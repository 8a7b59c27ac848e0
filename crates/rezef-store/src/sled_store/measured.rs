//! The measurement in sled (`m`, `f` in the key table): the partition's measurer under one
//! key, each bucket under its own, so a checkpoint writes only the buckets that changed. A
//! bucket's key sorts by tenant, width, then the start of its interval (big-endian), so the
//! buckets of a report's range are one range scan.

use std::ops::Range;

use rezef_events::{TenantId, Timestamp};
use rezef_measure::{BucketKey, Figures, Interval, Measurer, record::Dims};

use super::{Writes, corrupt, key};
use crate::measurement::{MeasureCheckpoint, StoredBucket, StoredKey};
use crate::{Error, Result};

const MEASURER_KEY: &[u8] = b"m";

fn width_byte(width: Interval) -> u8 {
    match width {
        Interval::Quarter => b'q',
        Interval::Hour => b'h',
        Interval::Day => b'd',
    }
}

fn encode(what: &'static str, value: &impl serde::Serialize) -> Result<Vec<u8>> {
    postcard::to_stdvec(value).map_err(|source| Error::Encode { what, source })
}

/// `f` tenant `\0` width start: where a tenant's buckets of `width` from `start` on begin.
/// The start is nanoseconds with the sign bit flipped, big-endian, so keys sort by time.
fn prefix(tenant: &TenantId, width: Interval, start: Timestamp) -> Vec<u8> {
    let ordered = (start.unix_nanos() as u64) ^ (1 << 63);
    let mut at = vec![width_byte(width)];
    at.extend_from_slice(&ordered.to_be_bytes());
    key(b'f', tenant, &[&at])
}

/// `f` tenant `\0` width start dims (postcard).
fn bucket_key(tenant: &TenantId, width: Interval, bucket: &BucketKey) -> Result<Vec<u8>> {
    let mut key = prefix(tenant, width, bucket.start);
    key.extend_from_slice(&encode("bucket dimensions", &bucket.dims)?);
    Ok(key)
}

/// Adds a checkpoint's measurement to its writes.
pub(super) fn write(measure: &MeasureCheckpoint, writes: &mut Writes) -> Result<()> {
    writes.insert(MEASURER_KEY, encode("measurer", &measure.measurer)?);
    for (tenant, width, bucket, figures) in &measure.buckets {
        let key = bucket_key(tenant, *width, bucket)?;
        writes.insert(key, encode("figures", figures)?);
    }
    Ok(())
}

/// The measurer stored (a new one if none).
pub(super) fn measurer(db: &sled::Db) -> Result<Measurer> {
    match db.get(MEASURER_KEY)? {
        Some(value) => postcard::from_bytes(&value).map_err(|_| corrupt(MEASURER_KEY)),
        None => Ok(Measurer::default()),
    }
}

/// One bucket's figures.
pub(super) fn bucket(db: &sled::Db, key: &StoredKey) -> Result<Option<Figures>> {
    let stored = bucket_key(&key.0, key.1, &key.2)?;
    let Some(value) = db.get(&stored)? else {
        return Ok(None);
    };
    Ok(Some(
        postcard::from_bytes(&value).map_err(|_| corrupt(&stored))?,
    ))
}

/// Every tenant with buckets stored, in key order (one seek per tenant).
fn tenants(db: sled::Db) -> impl Iterator<Item = Result<TenantId>> {
    let mut after = vec![b'f'];
    std::iter::from_fn(move || {
        let (key, _) = match db.range(after.clone()..).next()? {
            Ok(entry) => entry,
            Err(error) => return Some(Err(error.into())),
        };
        let rest = key.strip_prefix(b"f")?;
        let name = &rest[..rest.iter().position(|b| *b == 0).unwrap_or(rest.len())];
        let tenant = (std::str::from_utf8(name).ok()).and_then(|t| TenantId::new(t).ok());
        let Some(tenant) = tenant else {
            after = vec![b'g'];
            return Some(Err(corrupt(&key)));
        };
        // Past every key of this tenant: its name, then a byte above the separator.
        after = [b"f", name, &[1]].concat();
        Some(Ok(tenant))
    })
}

/// The buckets of `width` starting in `range`, of `tenant` (or every tenant), in order.
pub(super) fn buckets(
    db: sled::Db,
    tenant: Option<TenantId>,
    width: Interval,
    range: Range<Timestamp>,
) -> impl Iterator<Item = Result<StoredBucket>> {
    let tenants: Box<dyn Iterator<Item = Result<TenantId>>> = match tenant {
        Some(tenant) => Box::new(std::iter::once(Ok(tenant))),
        None => Box::new(tenants(db.clone())),
    };
    tenants.flat_map(
        move |tenant| -> Box<dyn Iterator<Item = Result<StoredBucket>>> {
            let tenant = match tenant {
                Ok(tenant) => tenant,
                Err(error) => return Box::new(std::iter::once(Err(error))),
            };
            let from = prefix(&tenant, width, range.start);
            let to = prefix(&tenant, width, range.end);
            // Every key of the scan: the prefix (ending in the start), then the dimensions.
            let dims_at = to.len();
            let scan = db.range(from..to).map(move |entry| {
                let (key, value) = entry?;
                let dims: Dims =
                    postcard::from_bytes(&key[dims_at..]).map_err(|_| corrupt(&key))?;
                let figures = postcard::from_bytes(&value).map_err(|_| corrupt(&key))?;
                let start = Timestamp::from_unix_nanos(start_of(&key[dims_at - 8..dims_at]));
                let bucket = BucketKey { start, dims };
                Ok((tenant.clone(), width, bucket, figures))
            });
            Box::new(scan)
        },
    )
}

fn start_of(bytes: &[u8]) -> i64 {
    let ordered = u64::from_be_bytes(bytes.try_into().unwrap_or_default());
    (ordered ^ (1 << 63)) as i64
}
