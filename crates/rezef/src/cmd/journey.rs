//! `rezef journey`: a customer's journey as JSON.

use rezef_adapter::jsonl;

pub async fn run(tenant: &str, customer: &str, server: &str) -> anyhow::Result<()> {
    let mut client = super::connect(server).await?;
    let response = client
        .journey(tenant, crate::customer::parse(customer), None)
        .await?;
    println!("{}", jsonl::to_json(&response.journey.unwrap_or_default()));
    eprintln!("projected through offset {}", response.projected_offset);
    Ok(())
}
