//! `rezef replay`: a tenant's original events as JSON Lines.

use futures::StreamExt;
use rezef_adapter::{jsonl, proto};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long, env = "REZEF_TENANT")]
    tenant: String,
    /// Only this customer (an id or `kind:value`, as for `rezef journey`).
    #[arg(long)]
    customer: Option<String>,
    #[arg(long)]
    from_offset: Option<u64>,
    /// First offset not to include.
    #[arg(long)]
    to_offset: Option<u64>,
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
    let mut client = super::connect(&args.addr).await?;
    let request = proto::ReplayHistoryRequest {
        tenant_id: args.tenant,
        customer: args.customer.as_deref().map(crate::customer::parse),
        from_offset: args.from_offset,
        to_offset: args.to_offset,
        limit: args.limit,
        reveal_sensitive: args.reveal,
        ..Default::default()
    };
    let mut events = client.replay(request).await?;
    while let Some(replayed) = events.next().await {
        if let Some(event) = replayed?.event {
            println!("{}", jsonl::write_event(&event));
        }
    }
    Ok(())
}
