//! `rezef resume`: what a channel asks when a contact arrives (`ResumeConversation`), as
//! JSON; handy to see what an IVR or an agent desktop would get.

use rezef_adapter::{jsonl, proto};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Who is calling: a customer id or `kind:value`, as for `rezef journey`.
    customer: String,
    #[arg(long, env = "REZEF_TENANT")]
    tenant: String,
    /// The channel the contact arrives on: voice, ivr, webchat, email, sms, whatsapp, ...
    #[arg(long, default_value = "voice", value_parser = crate::args::channel)]
    channel: proto::Channel,
    /// A continuation token the customer gave (`--token` is the API key to call with).
    #[arg(long)]
    continuation_token: Option<String>,
    /// Transcript messages to return.
    #[arg(long)]
    transcript: Option<u32>,
    /// Wait until the event at this offset is projected (read-your-writes).
    #[arg(long)]
    min_offset: Option<u64>,
    /// What the channel would have been told then, for audits: a log offset or an RFC 3339
    /// time (docs/audit.md).
    #[arg(long, value_parser = crate::args::as_of, conflicts_with = "continuation_token")]
    as_of: Option<proto::AsOf>,
    #[command(flatten)]
    addr: crate::ServerAddr,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let client = super::connect(&args.addr).await?;
    let request = proto::ResumeConversationRequest {
        tenant_id: args.tenant,
        customer: Some(crate::customer::parse(&args.customer)),
        channel: args.channel as i32,
        continuation_token: args.continuation_token.unwrap_or_default(),
        transcript_limit: args.transcript,
        min_offset: args.min_offset,
        as_of: args.as_of,
        ..Default::default()
    };
    let answer = client
        .journeys()
        .resume_conversation(request)
        .await
        .map_err(rezef_adapter::Error::from)?
        .into_inner();
    println!("{}", jsonl::to_json(&answer));
    Ok(())
}
