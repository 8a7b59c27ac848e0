//! `rezef publish`: JSON Lines events to the server, in batches.

use std::fs::File;
use std::io::{BufReader, stdin};
use std::path::Path;

use anyhow::Context;
use rezef_adapter::jsonl;

pub async fn run(file: &Path, batch: usize, server: &str) -> anyhow::Result<()> {
    anyhow::ensure!(batch > 0, "--batch must be at least 1");
    let events = if file == Path::new("-") {
        jsonl::read_events(stdin().lock())?
    } else {
        let opened = File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
        jsonl::read_events(BufReader::new(opened))
            .with_context(|| format!("in {}", file.display()))?
    };
    let mut client = super::connect(server).await?;
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
        eprintln!(
            "published {count} events at offsets {}..{}",
            ack.first_offset,
            ack.first_offset + u64::from(ack.count)
        );
    }
    eprintln!("{published} of {total} events published; all are durable");
    Ok(())
}
