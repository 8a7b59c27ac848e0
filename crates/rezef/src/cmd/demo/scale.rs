//! The demo's last part: a whole day at scale. The traffic simulator (`rezef-simulate`,
//! docs/simulate.md, what `rezef simulate` runs) makes a day of the demo's bank: arrivals
//! by hour over voice, chat, messaging and email, the IVR and the bot, agents with skills
//! and languages, abandons, callbacks and customers coming back on another channel.
//! Published to the demo's server, it gives the dashboard a full day to show beside the
//! story. Two days back: no report of the morning (the past two hours) reaches it, and
//! the agents it logs in and out are long gone when the demo's agents take calls.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use rezef_adapter::Client;
use rezef_simulate::{Config, simulate};

use super::TENANT;

/// A day the size of a small centre's, published in seconds.
const CONTACTS: u32 = 600;
const AGENTS: u32 = 12;
const DAY: Duration = Duration::from_secs(86_400);

/// Publishes the simulated day; the day, as the dashboard's `day` parameter reads it.
pub(super) async fn day_at_scale(client: &Client) -> anyhow::Result<String> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?;
    let midnight = UNIX_EPOCH + Duration::from_secs(now.as_secs() - now.as_secs() % 86_400);
    let start = midnight - 2 * DAY;
    let day = humantime::format_rfc3339(start).to_string()[..10].to_owned();
    println!("── 5. A day at scale ─ `rezef simulate`: {day}, {CONTACTS} needs, {AGENTS} agents");
    let config = Config::new(TENANT.to_owned(), start, CONTACTS, AGENTS);
    let simulated = simulate(&config).context("the simulation's settings")?;
    crate::cmd::simulate::publish_through(client.clone(), simulated.events, None).await?;
    for line in simulated.summary.to_string().lines() {
        println!("   {line}");
    }
    Ok(day)
}
