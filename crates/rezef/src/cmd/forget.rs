//! `rezef forget`: the right to erasure (`Identities/ForgetCustomer`): the customer's person
//! forgotten by destroying the keys their personal values are sealed under.

use rezef_adapter::proto;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Any customer id of the person (`rezef journey` shows it); merged customers are one.
    customer_id: String,
    /// Why, e.g. the data-protection request's reference (logged: no personal data here).
    #[arg(long)]
    reason: String,
    #[arg(long, env = "REZEF_TENANT")]
    tenant: String,
    #[command(flatten)]
    addr: crate::ServerAddr,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let client = super::connect(&args.addr).await?;
    let request = proto::ForgetCustomerRequest {
        tenant_id: args.tenant,
        customer_id: args.customer_id,
        reason: args.reason,
    };
    let forgotten = (client.identities().forget_customer(request).await?).into_inner();
    println!(
        "forgot customer {} ({}): {} key(s) destroyed, recorded at offset {}",
        forgotten.customer_id,
        forgotten.customer_ids.join(", "),
        forgotten.keys_destroyed,
        forgotten.offset
    );
    Ok(())
}
