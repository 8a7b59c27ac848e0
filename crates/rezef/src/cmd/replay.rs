//! `rezef replay`: a tenant's or a customer's original events as JSON Lines, for audits
//! (docs/audit.md), with a progress bar on standard error (when it is a terminal).

use std::time::Duration;

use futures::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rezef_adapter::{jsonl, proto};
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
    #[command(flatten)]
    addr: crate::ServerAddr,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let client = super::connect(&args.addr).await?;
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
        ..Default::default()
    };
    let response =
        (client.audit().replay_history(request).await).map_err(rezef_adapter::Error::from)?;
    let bar = progress(response.metadata());
    let mut events = response.into_inner();
    let mut exported = 0u64;
    while let Some(replayed) = events.next().await {
        let replayed = replayed.map_err(rezef_adapter::Error::from)?;
        if let Some(event) = &replayed.event {
            println!("{}", jsonl::write_event(event));
            exported += 1;
        }
        bar.set_position(replayed.offset);
        bar.set_message(format!("{exported} events"));
    }
    bar.finish_and_clear();
    eprintln!("{exported} events exported");
    Ok(())
}

/// A bar over the offsets the server says the replay runs over, drawn on standard error
/// only when it is a terminal (indicatif's rule), so that a redirected export stays clean.
fn progress(headers: &tonic::metadata::MetadataMap) -> ProgressBar {
    let offset = |name| {
        (headers.get(name))
            .and_then(|value| value.to_str().ok()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let (from, to) = (offset(REPLAY_FROM_HEADER), offset(REPLAY_TO_HEADER));
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
