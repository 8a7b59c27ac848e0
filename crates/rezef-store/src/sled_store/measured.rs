//! The measurement in sled (`m`, `f` in the key table): the partition's measurer under one
//! key, each bucket under its own, so a checkpoint writes only the buckets that changed.

use rezef_events::TenantId;
use rezef_measure::{BucketKey, Interval};

use super::{Writes, corrupt, key};
use crate::measurement::MeasureCheckpoint;
use crate::{Error, Result};

const MEASURER_KEY: &[u8] = b"m";

fn width_byte(width: Interval) -> u8 {
    match width {
        Interval::Quarter => b'q',
        Interval::Hour => b'h',
        Interval::Day => b'd',
    }
}

fn width_of(byte: u8) -> Option<Interval> {
    match byte {
        b'q' => Some(Interval::Quarter),
        b'h' => Some(Interval::Hour),
        b'd' => Some(Interval::Day),
        _ => None,
    }
}

fn encode(what: &'static str, value: &impl serde::Serialize) -> Result<Vec<u8>> {
    postcard::to_stdvec(value).map_err(|source| Error::Encode { what, source })
}

/// Adds a checkpoint's measurement to its writes.
pub(super) fn write(measure: &MeasureCheckpoint, writes: &mut Writes) -> Result<()> {
    writes.insert(MEASURER_KEY, encode("measurer", &measure.measurer)?);
    for (tenant, width, bucket, figures) in &measure.buckets {
        let bucket = encode("bucket key", bucket)?;
        let key = key(b'f', tenant, &[&[width_byte(*width)], &bucket]);
        writes.insert(key, encode("figures", figures)?);
    }
    Ok(())
}

/// The measurer and every bucket stored.
pub(super) fn read(db: &sled::Db) -> Result<MeasureCheckpoint> {
    let mut stored = MeasureCheckpoint::default();
    if let Some(value) = db.get(MEASURER_KEY)? {
        stored.measurer = postcard::from_bytes(&value).map_err(|_| corrupt(MEASURER_KEY))?;
    }
    for entry in db.scan_prefix([b'f']) {
        let (key, value) = entry?;
        let parsed = parse(&key).and_then(|(tenant, width, bucket)| {
            let figures = postcard::from_bytes(&value).ok()?;
            Some((tenant, width, bucket, figures))
        });
        stored.buckets.push(parsed.ok_or_else(|| corrupt(&key))?);
    }
    Ok(stored)
}

/// `f` tenant `\0` width `\0` bucket.
fn parse(key: &[u8]) -> Option<(TenantId, Interval, BucketKey)> {
    let rest = key.strip_prefix(b"f")?;
    let split = rest.iter().position(|b| *b == 0)?;
    let tenant = TenantId::new(std::str::from_utf8(&rest[..split]).ok()?).ok()?;
    let [width, 0, bucket @ ..] = &rest[split + 1..] else {
        return None;
    };
    Some((
        tenant,
        width_of(*width)?,
        postcard::from_bytes(bucket).ok()?,
    ))
}
