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

/// `--as-of`: a log offset, or an RFC 3339 time (`2026-12-07T09:30:00Z`).
pub fn parse_as_of(text: &str) -> Result<proto::AsOf, String> {
    use proto::as_of::Point;
    let point = match text.parse::<u64>() {
        Ok(offset) => Point::Offset(offset),
        Err(_) => {
            let time = humantime::parse_rfc3339_weak(text)
                .map_err(|e| format!("not an offset nor an RFC 3339 time: {e}"))?;
            Point::Time(prost_types::Timestamp::from(time))
        }
    };
    Ok(proto::AsOf { point: Some(point) })
}
