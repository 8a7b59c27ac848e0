//! `rezef-soak`: long runs of the real `rezef serve`, as a child process on a temp data
//! directory, for what a test suite cannot afford to run every time.
//!
//! - `kill`: the `kill -9` scenario of `tests/crash.rs` a thousand times over. Concurrent
//!   publishers record every acknowledged event; at a random moment of each iteration the
//!   server gets SIGKILL and restarts on the same directory; at the end (and every
//!   `--verify-every` crashes) the log is replayed and every journey read, and nothing
//!   acknowledged may be lost, moved, doubled or counted twice. Exits non-zero if it was.
//! - `steady`: a fixed, moderate rate of publishes and reads for half an hour, with the
//!   server's resident memory sampled, to show it stays flat (its trend) and what the calls
//!   cost meanwhile.
//!
//! Both stop on their own (iterations and seconds; minutes). `scripts/soak` builds and runs
//! this; RELIABILITY.md records runs. Layout: `kill`, `steady`, and `memory` (the resident
//! set of a process and its trend).

mod kill;
mod memory;
mod steady;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "rezef-soak",
    about = "Soak runs of the real `rezef serve`: repeated kill -9 under publishing, a steady load"
)]
struct Cli {
    /// Where the temp data directories go (default: $TMPDIR).
    #[arg(long, global = true, env = "SOAK_DIR")]
    dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Random SIGKILLs during concurrent publishing, then every acknowledged event checked.
    Kill(kill::KillArgs),
    /// A steady load for a while, with the server's resident memory sampled.
    Steady(steady::SteadyArgs),
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let dir = cli.dir.unwrap_or_else(std::env::temp_dir);
    let outcome: Result<bool> = match cli.command {
        Command::Kill(args) => kill::run(&args, &dir).await,
        Command::Steady(args) => steady::run(&args, &dir).await,
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("rezef-soak: {error:#}");
            ExitCode::FAILURE
        }
    }
}
