//! `rezef replay`: a tenant's or a customer's original events as JSON Lines, for audits
//! (docs/audit.md), chained by a hash so that `rezef verify --export` checks them later
//! ([`rezef_adapter::export`]), with a progress bar on standard error (on a terminal).

use std::time::Duration;

use futures::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rezef_adapter::export::ExportWriter;
use rezef_adapter::proto;
use rezef_server::{REPLAY_FROM_HEADER, REPLAY_TO_HEADER};

/// How often the bar's clock moves while no event comes.
const TICK: Duration = Duration::from_millis(500);

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long, env = "REZEF_TENANT")]
    tenant: String,
    /// Only this customer (an id or `kind:value`, as for `rezef journey`).
    #[arg(long)]
    customer: Option<String>,
    /// Only this conversation of the customer (needs `--customer`).
    #[arg(long, requires = "customer")]
    conversation: Option<String>,
    /// Only events on this channel: voice, ivr, webchat, email, sms, whatsapp, ...
    #[arg(long, value_parser = crate::args::channel)]
    channel: Option<proto::Channel>,
    #[arg(long)]
    from_offset: Option<u64>,
    /// First offset not to include.
    #[arg(long)]
    to_offset: Option<u64>,
    /// Only events the log recorded at or after this RFC 3339 time.
    #[arg(long, value_parser = crate::args::time)]
    from_time: Option<prost_types::Timestamp>,
    /// Only events the log recorded before this RFC 3339 time.
    #[arg(long, value_parser = crate::args::time)]
    to_time: Option<prost_types::Timestamp>,
    /// At most this many events (0: all).
    #[arg(long, default_value_t = 0)]
    limit: u32,
    /// Events as published, sensitive values included: needs a key with the `auditor` role,
    /// and the server records the reveal in the log before serving it.
    #[arg(long)]
    reveal: bool,
    /// Have the server check its log's hash chain while it replays: the export then ends with
    /// what it proved (the log's head), or the command fails naming where the chain breaks.
    #[arg(long)]
    verify: bool,
    #[command(flatten)]
    addr: crate::ServerAddr,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let client = super::connect(&args.addr).await?;
    let what = describe(&args);
    let request = proto::ReplayHistoryRequest {
        tenant_id: args.tenant,
        customer: args.customer.as_deref().map(crate::customer::parse),
        from_offset: args.from_offset,
        to_offset: args.to_offset,
        from_time: args.from_time,
        to_time: args.to_time,
        limit: args.limit,
        reveal_sensitive: args.reveal,
        conversation_id: args.conversation.unwrap_or_default(),
        channel: args.channel.map_or(0, |channel| channel as i32),
        verify_chain: args.verify,
        ..Default::default()
    };
    let response =
        (client.audit().replay_history(request).await).map_err(rezef_adapter::Error::from)?;
    let headers = response.metadata();
    let bar = progress(headers);
    let (mut export, header) = ExportWriter::new(&format!(
        "{what}, offsets {}..{}",
        offset(headers, REPLAY_FROM_HEADER),
        offset(headers, REPLAY_TO_HEADER)
    ));
    println!("{header}");
    let mut events = response.into_inner();
    let mut exported = 0u64;
    let mut verified = None;
    while let Some(replayed) = events.next().await {
        let replayed = match replayed {
            Ok(replayed) => replayed,
            Err(status) => {
                bar.finish_and_clear();
                eprintln!("{exported} events exported before the replay failed");
                return Err(rezef_adapter::Error::from(status).into());
            }
        };
        if let Some(event) = &replayed.event {
            println!("{}", export.event(replayed.offset, event));
            exported += 1;
        }
        if let Some(proof) = &replayed.verified {
            println!("{}", export.verified(proof));
            verified = Some(proof.clone());
        }
        bar.set_position(replayed.offset);
        bar.set_message(format!("{exported} events"));
    }
    bar.finish_and_clear();
    let end = export.end();
    println!("{end}");
    eprintln!(
        "{exported} events exported; {}",
        end.trim_start_matches("# end: ")
    );
    match verified {
        Some(proof) => eprintln!(
            "the server's log checks out from offset {} to {}, head {}",
            proof.start_offset,
            proof.end_offset,
            if proof.head.is_empty() {
                "none"
            } else {
                &proof.head
            }
        ),
        None if args.verify => anyhow::bail!("the replay ended without the server's verification"),
        None => {}
    }
    Ok(())
}

/// What the export holds, for its first line: the request, without its address.
fn describe(args: &Args) -> String {
    let mut what = format!("tenant {}", args.tenant);
    let mut add = |name: &str, value: Option<String>| {
        if let Some(value) = value {
            what.push_str(&format!(", {name} {value}"));
        }
    };
    add("customer", args.customer.clone());
    add("conversation", args.conversation.clone());
    add("channel", args.channel.map(|c| c.as_str_name().to_owned()));
    add("from time", args.from_time.map(|t| t.to_string()));
    add("to time", args.to_time.map(|t| t.to_string()));
    add("limit", (args.limit > 0).then(|| args.limit.to_string()));
    add("revealed", args.reveal.then(|| "yes".to_owned()));
    what
}

/// An offset the response's headers give (0 when absent).
fn offset(headers: &tonic::metadata::MetadataMap, name: &str) -> u64 {
    (headers.get(name))
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok())
        .unwrap_or(0)
}

/// A bar over the offsets the server says the replay runs over, drawn on standard error
/// only when it is a terminal (indicatif's rule), so that a redirected export stays clean.
fn progress(headers: &tonic::metadata::MetadataMap) -> ProgressBar {
    let (from, to) = (
        offset(headers, REPLAY_FROM_HEADER),
        offset(headers, REPLAY_TO_HEADER),
    );
    let bar = ProgressBar::with_draw_target(Some(to), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:40}] offset {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_position(from);
    bar.reset_elapsed();
    bar.enable_steady_tick(TICK);
    bar
}
