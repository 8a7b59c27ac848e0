//! `ExplainDecision`: why a contact went where it went. The interaction's `RoutingDecided`
//! records are found among its customer's events in the log (the projection's customer
//! index, as `Audit/ReplayHistory` finds a customer's history), and the engine's choice is
//! run again on what each recorded (`rezef_routing::choice::rerun`).

use rezef_events::{Event, InteractionId, Payload, TenantId, mask};
use rezef_proto::v1::{
    CustomerRef, ExplainDecisionRequest, ExplainDecisionResponse, ExplainedDecision, customer_ref,
};
use rezef_record::check::timestamp;
use rezef_routing::choice::{self, Recorded};
use tonic::Request;

use super::recover;
use crate::backbone::Backbone;
use crate::convert::event_to_proto;
use crate::{Error, Result};

pub(super) async fn explain(
    backbone: &Backbone,
    request: Request<ExplainDecisionRequest>,
) -> Result<ExplainDecisionResponse> {
    let wait = backbone.max_wait(&request);
    let request = request.into_inner();
    let mut check = backbone.check();
    let tenant = check.tenant("tenant_id", request.tenant_id);
    let customer = check.required_customer("customer", request.customer);
    let interaction = check.id(
        "interaction_id",
        request.interaction_id,
        true,
        InteractionId::new,
    );
    let (tenant, customer, interaction) =
        check.finish(|| Some((tenant?, customer?, interaction?)))?;
    let log = &backbone.log;
    let (start, end) = (log.start_offset(), log.end_offset());
    // The customer index is part of the projection: let it reach the log's end.
    if let Some(last) = end.checked_sub(1) {
        backbone.wait_projected(last, wait).await?;
    }
    // A merged customer's history is its own and every member's.
    let journey = backbone.journey(&tenant, &customer)?;
    let offsets = backbone.history_offsets(&tenant, &journey, start, end)?;
    let mut decisions = Vec::new();
    for offset in offsets {
        for record in log.read(offset, 1).await? {
            if record.offset != offset {
                continue;
            }
            let event = rezef_record::decode(&record.payload)
                .map_err(|source| Error::Undecodable { offset, source })?;
            if is_decision(&event, &tenant, &interaction) {
                decisions.push(explained(backbone, offset, event));
            }
        }
    }
    if decisions.is_empty() {
        return Err(Error::NotFound(format!(
            "no routing decision is recorded for interaction {interaction} of customer {}",
            journey.customer_id
        )));
    }
    Ok(ExplainDecisionResponse { decisions })
}

/// The customer of an interaction routing decided, from the projection of the tenant's
/// routing partition (where its decisions are logged), for a request that names none.
pub(super) async fn customer_of(
    backbone: &Backbone,
    request: &Request<ExplainDecisionRequest>,
) -> Result<CustomerRef> {
    let wait = backbone.max_wait(request);
    let message = request.get_ref();
    let mut check = backbone.check();
    let tenant = check.tenant("tenant_id", message.tenant_id.clone());
    let interaction = check.id(
        "interaction_id",
        message.interaction_id.clone(),
        true,
        InteractionId::new,
    );
    let (tenant, interaction) = check.finish(|| Some((tenant?, interaction?)))?;
    backbone.caught_up(wait).await?;
    match backbone.store.decided_customer(&tenant, &interaction)? {
        Some(customer) => Ok(CustomerRef {
            r#ref: Some(customer_ref::Ref::CustomerId(customer.to_string())),
        }),
        None => Err(Error::NotFound(format!(
            "no routing decision is recorded for interaction {interaction} (name its \
             `customer` for a decision a store built before this index holds)"
        ))),
    }
}

fn is_decision(event: &Event, tenant: &TenantId, interaction: &InteractionId) -> bool {
    &event.tenant_id == tenant
        && event.interaction_id.as_ref() == Some(interaction)
        && matches!(event.payload, Payload::RoutingDecided { .. })
}

/// The decision at `offset` with its re-run, masked as every read is.
fn explained(backbone: &Backbone, offset: u64, event: Event) -> ExplainedDecision {
    let differences = rerun(&event);
    let masked = mask::event(&event, backbone.policy(&event.tenant_id));
    let decided_at = event.occurred_at;
    let decision = match event_to_proto(masked.as_ref().unwrap_or(&event), None).payload {
        Some(rezef_proto::v1::event::Payload::RoutingDecided(decision)) => Some(decision),
        _ => None,
    };
    ExplainedDecision {
        offset,
        decided_at: Some(timestamp(decided_at)),
        decision,
        reproduced: differences.is_empty(),
        differences,
    }
}

/// The choice run again on what the decision recorded: what differs (none: reproduced).
fn rerun(event: &Event) -> Vec<String> {
    let Payload::RoutingDecided {
        explanation: Some(explanation),
        input: Some(input),
        candidates,
        agent_id,
        ..
    } = &event.payload
    else {
        return vec![
            "the decision recorded no explanation (a bot, or logged before explanations were)"
                .to_owned(),
        ];
    };
    let (Some(interaction), Some(channel)) = (&event.interaction_id, event.channel) else {
        return vec!["the decision names no interaction or channel".to_owned()];
    };
    let request = recover::request_from(interaction, channel, (**input).clone());
    choice::rerun(&Recorded {
        explanation,
        contact: &request.attributes(event.occurred_at),
        candidates,
        offered: agent_id.as_ref(),
    })
}
