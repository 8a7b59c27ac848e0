//! `rezef journey`: a customer's journey as JSON.

use rezef_adapter::jsonl;

pub async fn run(
    tenant: &str,
    customer: &str,
    min_offset: Option<u64>,
    addr: &crate::ServerAddr,
) -> anyhow::Result<()> {
    let mut client = super::connect(addr).await?;
    let response = client
        .journey(tenant, crate::customer::parse(customer), min_offset)
        .await?;
    println!("{}", jsonl::to_json(&response.journey.unwrap_or_default()));
    eprintln!("projected through offset {}", response.projected_offset);
    Ok(())
}
