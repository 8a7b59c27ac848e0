//! `rezef publish`: JSON Lines events to the server, in batches.

use std::fs::File;
use std::io::{BufReader, stdin};
use std::path::Path;

use std::collections::BTreeMap;

use anyhow::Context;
use rezef_adapter::{jsonl, proto};

pub async fn run(file: &Path, batch: usize, addr: &crate::ServerAddr) -> anyhow::Result<()> {
    anyhow::ensure!(batch > 0, "--batch must be at least 1");
    let events = if file == Path::new("-") {
        jsonl::read_events(stdin().lock())?
    } else {
        let opened = File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
        jsonl::read_events(BufReader::new(opened))
            .with_context(|| format!("in {}", file.display()))?
    };
    let mut client = super::connect(addr).await?;
    let total = events.len();
    let mut published = 0;
    let mut chunks = events.into_iter().peekable();
    while chunks.peek().is_some() {
        let chunk: Vec<_> = chunks.by_ref().take(batch).collect();
        let count = chunk.len();
        let ack = client.publish(chunk).await.with_context(|| {
            format!(
                "events {}..{} were not published",
                published + 1,
                published + count
            )
        })?;
        published += count;
        eprintln!("published {count} events at {}", offsets(&ack.positions));
    }
    eprintln!("{published} of {total} events published; all are durable");
    Ok(())
}

/// Where a batch went: `offsets 3..5`, or on a partitioned log (where an offset counts in
/// its partition) `partition 0 offsets 3..5, partition 1 offsets 0..2`.
fn offsets(positions: &[proto::EventPosition]) -> String {
    let mut ranges: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
    for position in positions {
        let range = ranges.entry(position.partition).or_insert((u64::MAX, 0));
        *range = (
            range.0.min(position.offset),
            range.1.max(position.offset + 1),
        );
    }
    let range = |(first, end): (u64, u64)| format!("offsets {first}..{end}");
    match ranges.into_iter().collect::<Vec<_>>().as_slice() {
        [(0, only)] => range(*only),
        parts => (parts.iter())
            .map(|(partition, part)| format!("partition {partition} {}", range(*part)))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(partition: u32, offset: u64) -> proto::EventPosition {
        proto::EventPosition { partition, offset }
    }

    #[test]
    fn one_partition_prints_its_offsets_and_several_print_each() {
        assert_eq!(offsets(&[at(0, 3), at(0, 4)]), "offsets 3..5");
        assert_eq!(
            offsets(&[at(1, 0), at(0, 3), at(1, 1), at(0, 4)]),
            "partition 0 offsets 3..5, partition 1 offsets 0..2"
        );
    }
}
