//! `rezef journey`: a customer's journey as JSON, now or as of a point in the log's history.

use rezef_adapter::{jsonl, proto};

pub async fn run(
    tenant: &str,
    customer: &str,
    min_offset: Option<u64>,
    as_of: Option<proto::AsOf>,
    addr: &crate::ServerAddr,
) -> anyhow::Result<()> {
    let mut client = super::connect(addr).await?;
    let customer = crate::customer::parse(customer);
    let response = (client.journey_as_of(tenant, customer, min_offset, as_of)).await?;
    println!("{}", jsonl::to_json(&response.journey.unwrap_or_default()));
    eprintln!("projected through offset {}", response.projected_offset);
    Ok(())
}
