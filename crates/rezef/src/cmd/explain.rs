//! `rezef explain`: why a contact went where it went (`Routing/ExplainDecision`): each
//! routing decision of the interaction with what the engine saw, every listed agent's
//! verdict, and whether the choice run again on the record reproduces it.

use std::fmt::Write as _;

use rezef_adapter::proto::{self, ExplainedDecision, SeenAgent, Verdict};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The contact: its interaction id, as routed.
    interaction: String,
    /// Whose contact it was: a customer id or `kind:value`, as for `rezef journey`
    /// [default: the customer routing decided the interaction for].
    #[arg(long)]
    customer: Option<String>,
    #[arg(long, env = "REZEF_TENANT")]
    tenant: String,
    #[command(flatten)]
    addr: crate::ServerAddr,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let client = super::connect(&args.addr).await?;
    let request = proto::ExplainDecisionRequest {
        tenant_id: args.tenant,
        customer: args.customer.as_deref().map(crate::customer::parse),
        interaction_id: args.interaction,
    };
    let response = client
        .routing()
        .explain_decision(request)
        .await?
        .into_inner();
    for decision in &response.decisions {
        print!("{}", describe(decision));
    }
    Ok(())
}

/// A decision as lines a person reads.
fn describe(explained: &ExplainedDecision) -> String {
    let mut out = String::new();
    let decision = explained.decision.clone().unwrap_or_default();
    let target = match proto::RoutingTarget::try_from(decision.target) {
        Ok(proto::RoutingTarget::Agent) => format!("offered to {}", decision.agent_id),
        Ok(proto::RoutingTarget::Queue) => "queued".to_owned(),
        Ok(proto::RoutingTarget::Bot) => format!("to bot {}", decision.bot_id),
        _ => "?".to_owned(),
    };
    let rule = match decision.rule.as_str() {
        "" => "the default queue".to_owned(),
        rule => format!("rule {rule}"),
    };
    let _ = writeln!(
        out,
        "offset {}: {target}, queue {} ({rule}), step {}, configuration version {}",
        explained.offset, decision.queue_id, decision.step, decision.config_version
    );
    if let Some(e) = &decision.explanation {
        let ageing = decision.priority - e.base_priority;
        let _ = write!(
            out,
            "  priority {:.2} = base {:.2} + ageing {ageing:.2} ({}/min)",
            decision.priority, e.base_priority, e.ageing_per_minute
        );
        match e.contacts_ahead {
            Some(ahead) => {
                let _ = writeln!(out, ", {ahead} contacts ahead");
            }
            None => out.push('\n'),
        }
        let requirements = match e.requirements.as_slice() {
            [] => "none".to_owned(),
            all => all.join(" AND "),
        };
        let language = if e.language.is_empty() {
            "any"
        } else {
            &e.language
        };
        let _ = writeln!(
            out,
            "  strategy {}, requirements {requirements}, language {language}",
            e.strategy
        );
        if !e.preferred_agent_id.is_empty() {
            let _ = writeln!(out, "  affinity to {}", e.preferred_agent_id);
        }
        for agent in &e.agents {
            let _ = writeln!(
                out,
                "    {:<20} {}",
                agent.agent_id,
                verdict(agent, &e.language)
            );
        }
        let _ = writeln!(
            out,
            "  not listed: {} qualified, {} not qualified, {} offline",
            e.unlisted_qualified, e.unlisted_unqualified, e.offline
        );
        if !e.taken_ahead.is_empty() {
            let _ = writeln!(
                out,
                "  taken by contacts ahead: {}",
                e.taken_ahead.join(", ")
            );
        }
    }
    if explained.reproduced {
        let _ = writeln!(out, "  re-run on the record: same decision");
    } else {
        let _ = writeln!(out, "  re-run on the record: NOT reproduced");
        for difference in &explained.differences {
            let _ = writeln!(out, "    {difference}");
        }
    }
    out
}

fn verdict(agent: &SeenAgent, language: &str) -> String {
    let presence = proto::Presence::try_from(agent.presence)
        .map_or("?".to_owned(), |p| p.as_str_name().to_lowercase());
    match Verdict::try_from(agent.verdict) {
        Ok(Verdict::Ranked) => format!(
            "ranked {} (idle since {}, {}/{} on the channel, load {}/{})",
            agent.rank + 1,
            agent.idle_since.map_or("?".to_owned(), |t| t.to_string()),
            agent.on_channel,
            agent.capacity,
            agent.load,
            agent.max_load
        ),
        Ok(Verdict::Held) => "not yet: a callback held until its time".to_owned(),
        Ok(Verdict::Unqualified) => format!("does not meet `{}`", agent.requirement),
        Ok(Verdict::NoLanguage) => format!("does not speak {language}"),
        Ok(Verdict::Unavailable) => format!("not available ({presence})"),
        Ok(Verdict::AtCapacity) => format!(
            "no room ({}/{} on the channel, load {}/{})",
            agent.on_channel, agent.capacity, agent.load, agent.max_load
        ),
        Ok(Verdict::Declined) => "declined this contact".to_owned(),
        Ok(Verdict::WaitsForPreferred) => "the contact waits for its preferred agent".to_owned(),
        Ok(Verdict::Unspecified) | Err(_) => "?".to_owned(),
    }
}
