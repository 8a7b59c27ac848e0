//! `rezef verify`: checks the embedded log of a data directory from its first record to its
//! last (every frame's checksum, the offsets, the hash chain) and prints where it breaks, or
//! its head: the last offset and chain hash, to keep outside the server so that a rewrite of
//! the whole log shows later (docs/audit.md, "Tamper evidence"). With `--export`, it checks
//! an export made by `rezef replay` the same way, by the chain the export carries.
//!
//! It reads the files and changes nothing, so it needs no lock: it runs on a stopped
//! server's data directory, or beside a running server, when it checks the log as it was
//! while it read.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rezef_adapter::export::{self, ExportVerdict};
use rezef_log::{BreakKind, Verdict, Verified};
use rezef_server::LogBackend;

use crate::config::{self, Overrides};

/// A verification beside a running server may catch a frame half written: read again this
/// many times, this far apart, before calling the tail broken.
const TAIL_RETRIES: u32 = 3;
const TAIL_PAUSE: Duration = Duration::from_millis(200);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The server's data directory, as for `rezef serve` [default: ./rezef-data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The server's TOML configuration file, as for `rezef serve`.
    #[arg(long, env = "REZEF_CONFIG")]
    config: Option<PathBuf>,
    /// An export written by `rezef replay` to check instead of a data directory.
    #[arg(long, conflicts_with = "data_dir")]
    export: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if let Some(path) = &args.export {
        return verify_export(path);
    }
    let config = config::load(
        args.config.as_deref(),
        Overrides {
            data_dir: args.data_dir,
            ..Overrides::default()
        },
    )?;
    anyhow::ensure!(
        config.log.backend == LogBackend::Embedded,
        "the log is a Kafka topic: its records are the broker's, checked by Kafka's per-batch \
         CRCs, not chained by Rezef; rezef verify checks the embedded log (docs/audit.md, \
         \"Tamper evidence\")"
    );
    let log_dir = config.log_dir();
    anyhow::ensure!(
        log_dir.is_dir(),
        "no log in {}: nothing to verify",
        config.data_dir.display()
    );
    let mut broken = Vec::new();
    for dir in partition_dirs(&log_dir)? {
        if let Some(offset) = verify_one(&dir)? {
            broken.push(format!("{} at offset {offset}", dir.display()));
        }
    }
    anyhow::ensure!(
        broken.is_empty(),
        "the log is broken: {}",
        broken.join(", ")
    );
    Ok(())
}

/// The directories of the log's partitions: `p<N>` under `log_dir`, or `log_dir` itself.
fn partition_dirs(log_dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut partitions: Vec<(u32, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(log_dir)? {
        let path = entry?.path();
        let number = (path.file_name().and_then(|n| n.to_str()))
            .and_then(|n| n.strip_prefix('p'))
            .and_then(|n| n.parse().ok());
        if let Some(number) = number.filter(|_| path.is_dir()) {
            partitions.push((number, path));
        }
    }
    partitions.sort();
    Ok(match partitions.is_empty() {
        true => vec![log_dir.to_path_buf()],
        false => partitions.into_iter().map(|(_, path)| path).collect(),
    })
}

/// Verifies one partition's log and prints the verdict; the offset where it breaks, if it
/// does.
fn verify_one(dir: &Path) -> anyhow::Result<Option<u64>> {
    let in_use = rezef_log::in_use(dir)?;
    if in_use {
        eprintln!(
            "note: a server has {} open (its LOCK is held): verifying the files as they are \
             now; records appended meanwhile are not covered. Stop the server for a \
             verification of everything it wrote.",
            dir.display()
        );
    }
    let mut verdict = rezef_log::verify(dir)?;
    for _ in 0..TAIL_RETRIES {
        match &verdict {
            Verdict::Broken(b) if in_use && matches!(b.kind, BreakKind::Incomplete { .. }) => {
                std::thread::sleep(TAIL_PAUSE);
                verdict = rezef_log::verify(dir)?;
            }
            _ => break,
        }
    }
    match verdict {
        Verdict::Intact(verified) => {
            print_intact(dir, &verified);
            Ok(None)
        }
        Verdict::Broken(broken) => {
            println!("{}: BROKEN at offset {}", dir.display(), broken.offset);
            println!(
                "  {} byte {}: {}",
                broken.segment.display(),
                broken.position,
                broken.kind
            );
            println!(
                "  records from offset {} on are not proven to be the ones appended",
                broken.offset
            );
            if matches!(broken.kind, BreakKind::Incomplete { .. }) && !in_use {
                println!(
                    "  if the server crashed, starting it cuts this tail (it was never \
                     acknowledged); run rezef verify again then"
                );
            }
            Ok(Some(broken.offset))
        }
    }
}

fn print_intact(dir: &Path, v: &Verified) {
    println!("{}: intact", dir.display());
    println!(
        "  offsets {}..{}: {} frames, {} segment file(s)",
        v.start_offset, v.end_offset, v.frames, v.segments
    );
    if v.unchained_frames > 0 {
        println!(
            "  {} frames written before the hash chain (format version 1): checked by CRC \
             and offsets only",
            v.unchained_frames
        );
    }
    let Some(head) = v.head else {
        println!("  no chained frames: no head");
        return;
    };
    if let Some(from) = v.chained_from {
        let predecessor = match v.predecessor == rezef_log::ChainHash::GENESIS {
            true => "the genesis value".to_string(),
            false => format!(
                "{} (as its first frame states: the segments before were deleted)",
                v.predecessor
            ),
        };
        println!("  chained from offset {from}, after {predecessor}");
    }
    println!(
        "  head: offset {} chain {head}",
        v.end_offset.saturating_sub(1)
    );
    println!(
        "  keep the head outside the server: only a copy kept elsewhere shows a log \
         rewritten from an earlier point with every hash recomputed"
    );
}

/// Checks an export of `rezef replay` by its chain and prints the verdict.
fn verify_export(path: &Path) -> anyhow::Result<()> {
    let file = std::fs::File::open(path)
        .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
    match export::check(std::io::BufReader::new(file))? {
        ExportVerdict::Intact {
            what,
            events,
            log_verified,
            head,
        } => {
            println!("{}: intact", path.display());
            println!("  {what}");
            println!("  {events} events, head {head}");
            match log_verified {
                Some(proof) => println!("  the server's log checked out when exported: {proof}"),
                None => println!("  the server's log was not checked when exported (no --verify)"),
            }
            println!(
                "  keep the head outside the export: only a copy kept elsewhere shows an export \
                 rewritten with every hash recomputed"
            );
            Ok(())
        }
        ExportVerdict::Broken(broken) => {
            println!("{}: BROKEN at {broken}", path.display());
            anyhow::bail!("the export is broken at {broken}")
        }
    }
}
