//! `rezef`: the command line of the Rezef interaction-management backbone.
//!
//! One subcommand per file under `cmd/`. `serve` runs the backbone; `publish`, `journey`,
//! `resume`, `replay`, `explain`, `forget` and `simulate` are gRPC clients of a running server, with its API key (`--token`);
//! `keys` manages the keys in the server's key file; `rebuild` works on a stopped server's
//! data directory; `verify` checks the log of a data directory; `demo` runs the main job end to end in a temporary directory.

mod args;
mod cmd;
mod config;
mod customer;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "rezef", version, about = "Rezef: continuity across every channel", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where a client command finds the server, and the key it calls with.
#[derive(Debug, clap::Args)]
struct ServerAddr {
    /// The server's gRPC address.
    #[arg(long, env = "REZEF_SERVER", default_value = "http://127.0.0.1:50051")]
    server: String,
    /// The API key to call with (rzf_…, from `rezef keys create`), if the server wants one.
    /// Prefer the environment: a flag shows in the process list.
    #[arg(long, env = "REZEF_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// PEM CA certificates that signed the server's certificate, for an https:// server
    /// [default: the public web's roots].
    #[arg(long)]
    ca_cert: Option<PathBuf>,
    /// This client's PEM certificate, for a server that asks for one (mTLS).
    #[arg(long, requires = "client_key")]
    client_cert: Option<PathBuf>,
    /// The private key of --client-cert.
    #[arg(long, requires = "client_cert")]
    client_key: Option<PathBuf>,
    /// The name the server's certificate must carry, when not --server's host (a probe
    /// calling 127.0.0.1 with a certificate made for the Service's name).
    #[arg(long)]
    tls_domain: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the backbone: embedded log, projector and gRPC services.
    Serve(cmd::serve::Args),
    /// Publish events from a JSON Lines file (or standard input).
    Publish {
        /// A file of proto3-JSON events, one per line; `-` for standard input.
        #[arg(default_value = "-")]
        file: PathBuf,
        /// Events per batch.
        #[arg(long, default_value_t = 500)]
        batch: usize,
        #[command(flatten)]
        addr: ServerAddr,
    },
    /// Print a customer's journey as JSON.
    Journey {
        /// A customer id, or an identity: phone:+972501234567, email:a@b.c, visitor:ID,
        /// app:ID, crm:ID, messaging:ID, social:NETWORK:HANDLE.
        customer: String,
        #[arg(long, env = "REZEF_TENANT")]
        tenant: String,
        /// Wait until the event at this offset is projected (read-your-writes: the offsets
        /// `rezef publish` printed; on a partitioned log, of the customer's partition).
        #[arg(long)]
        min_offset: Option<u64>,
        /// The journey as the projection knew it then, for audits: a log offset (every
        /// record below it) or an RFC 3339 time (every record logged before it).
        #[arg(long, value_parser = args::as_of)]
        as_of: Option<rezef_adapter::proto::AsOf>,
        #[command(flatten)]
        addr: ServerAddr,
    },
    /// Ask what a channel asks when a contact arrives (ResumeConversation), as JSON.
    Resume(cmd::resume::Args),
    /// Print a tenant's original events as JSON Lines, in log order.
    Replay(cmd::replay::Args),
    /// Why a contact went where it went: each routing decision with the verdict of every
    /// agent it was about, run again on what the log recorded (Routing/ExplainDecision).
    Explain(cmd::explain::Args),
    /// Forget a customer (the right to erasure): their personal values can never be read
    /// again, in the log or its copies (Identities/ForgetCustomer; docs/audit.md).
    Forget(cmd::forget::Args),
    /// Create, list and revoke the API keys a server accepts (its key file).
    Keys(cmd::keys::Args),
    /// Delete the journey store and rebuild it from the log (the server must be stopped).
    Rebuild(cmd::rebuild::Args),
    /// Check the embedded log from start to end (checksums, offsets, hash chain): prints the
    /// first offset where it breaks (exit 1), or its head.
    Verify(cmd::verify::Args),
    /// Exit 0 when the server says it serves (grpc.health.v1), over TLS too: a probe.
    Health(cmd::health::Args),
    /// Simulate a contact centre's day (arrivals, IVR and bots, queues, agents, abandons,
    /// callbacks, returns on other channels) and publish it, or write it as JSON Lines.
    Simulate(cmd::simulate::Args),
    /// Show continuity end to end (a chat that continues on the phone), then a morning of
    /// calls measured both ways, on the dashboard too.
    Demo(cmd::demo::Args),
}

/// mimalloc, not glibc's malloc: the projection allocates and frees journeys at a high rate
/// (docs/architecture.md, "The projection").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                let default = if matches!(cli.command, Command::Serve(_)) {
                    "info"
                } else {
                    "warn"
                };
                tracing_subscriber::EnvFilter::new(default)
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => cmd::serve::run(args).await,
            Command::Publish { file, batch, addr } => cmd::publish::run(&file, batch, &addr).await,
            Command::Journey {
                customer,
                tenant,
                min_offset,
                as_of,
                addr,
            } => cmd::journey::run(&tenant, &customer, min_offset, as_of, &addr).await,
            Command::Resume(args) => cmd::resume::run(args).await,
            Command::Replay(args) => cmd::replay::run(args).await,
            Command::Explain(args) => cmd::explain::run(args).await,
            Command::Forget(args) => cmd::forget::run(args).await,
            Command::Keys(args) => cmd::keys::run(args),
            Command::Rebuild(args) => cmd::rebuild::run(args).await,
            Command::Verify(args) => cmd::verify::run(args),
            Command::Health(args) => cmd::health::run(args).await,
            Command::Simulate(args) => cmd::simulate::run(args).await,
            Command::Demo(args) => cmd::demo::run(args).await,
        }
    })
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    /// Clap checks a command line only as it parses one: two flags of one name in a
    /// subcommand (the API key's `--token` and another) would fail only when it is run.
    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }
}
