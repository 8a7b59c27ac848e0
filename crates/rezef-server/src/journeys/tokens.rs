//! `IssueContinuationToken`: a code or a link token for a conversation, limited to the
//! channels it is for, recorded as a `ContinuationTokenIssued` event on the customer's
//! partition. What makes a token hard to guess is in `rezef_events::token` (its form and
//! life) and `crate::token_tries` (how many wrong ones a caller may give).

use std::time::Duration;

use rezef_events::token::TokenFormat;
use rezef_events::{Channel, ConversationId, CustomerId, Payload, TenantId, Timestamp};
use rezef_proto::v1::{IssueContinuationTokenRequest, IssueContinuationTokenResponse};
use tonic::Request;

use super::Local;
use crate::convert::timestamp;
use crate::own_event::OwnEvent;
use crate::{Error, Result};

/// How many fresh tokens are drawn before giving up on finding one no live token has.
const DRAWS: usize = 32;

impl Local {
    pub(super) async fn issue_token(
        &self,
        request: Request<IssueContinuationTokenRequest>,
    ) -> Result<IssueContinuationTokenResponse> {
        let wait = self.backbone.max_wait(&request);
        let request = request.into_inner();
        let mut check = self.backbone.check();
        let tenant = check.tenant("tenant_id", request.tenant_id);
        let customer = check.required_customer("customer", request.customer);
        let channel = check.required::<Channel>("channel", request.channel);
        let format = check
            .optional::<TokenFormat>("format", request.format)
            .unwrap_or(TokenFormat::Code);
        let redeem_on: Vec<Channel> = (request.redeem_on.iter().enumerate())
            .filter_map(|(i, c)| check.required::<Channel>(&format!("redeem_on[{i}]"), *c))
            .collect();
        let conversation = check.id(
            "conversation_id",
            request.conversation_id,
            false,
            ConversationId::new,
        );
        let ttl = match request.ttl {
            None => None,
            // Well formed as protobuf defines it: no negative part (a normalised
            // `{5s, -1ns}` is not a lifetime anyone meant).
            Some(ttl) if ttl.seconds < 0 || !(0..1_000_000_000).contains(&ttl.nanos) => {
                check.fail(
                    "ttl",
                    "must have seconds and nanos of 0 or more (nanos below 1e9)",
                );
                None
            }
            Some(ttl) => match Duration::try_from(ttl) {
                Ok(ttl) if !ttl.is_zero() && ttl <= format.max_ttl() => Some(ttl),
                _ => {
                    let most = match format {
                        TokenFormat::Code => "24 hours for a code",
                        TokenFormat::Link => "30 days for a link token",
                    };
                    check.fail("ttl", format!("must be positive and at most {most}"));
                    None
                }
            },
        };
        let (tenant, customer, channel) = check.finish(|| Some((tenant?, customer?, channel?)))?;
        self.backbone.caught_up(wait).await?;
        let journey = self.backbone.journey(&tenant, &customer)?;
        // A compacted conversation may be named: the token's event brings it back whole.
        let conversation = match &conversation {
            Some(id) => journey.conversation_id(id).ok_or_else(|| {
                Error::NotFound(format!(
                    "conversation {id} is not one of customer {}'s",
                    journey.customer_id
                ))
            })?,
            None => &journey
                .open_conversation()
                .ok_or_else(|| {
                    Error::FailedPrecondition(format!(
                        "customer {} has no open conversation to continue; name one in conversation_id",
                        journey.customer_id
                    ))
                })?
                .id,
        };
        let token = self.free_token(&tenant, &journey.customer_id, format)?;
        let policy = self.backbone.policy(&tenant);
        let ttl = ttl.unwrap_or_else(|| format.default_ttl(policy));
        let now = Timestamp::now();
        let expires_at = now.plus(ttl);
        let payload = Payload::ContinuationTokenIssued {
            token: token.clone(),
            expires_at,
            redeem_on,
        };
        let event = OwnEvent::new(&tenant, "rezef.journeys", payload)
            .about(&journey.customer_id)
            .on(channel)
            .in_conversation(conversation.clone())
            .at(now)
            .build();
        let offset = self.backbone.append(&[event]).await?;
        Ok(IssueContinuationTokenResponse {
            token,
            conversation_id: conversation.to_string(),
            expires_at: Some(timestamp(expires_at)),
            offset,
        })
    }

    /// A random token no live token of the tenant has, on the customer's partition (so
    /// that an event continuing with it is appended where the customer's journey is).
    fn free_token(
        &self,
        tenant: &TenantId,
        customer: &CustomerId,
        format: TokenFormat,
    ) -> Result<String> {
        let now = Timestamp::now();
        let policy = self.backbone.policy(tenant);
        let partition = self.partitioner.customer(tenant, customer);
        let mut draws = 0;
        while draws < DRAWS {
            let mut random = [0u8; 32];
            getrandom::fill(&mut random)
                .map_err(|e| Error::Unavailable(format!("no randomness for a token: {e}")))?;
            let token = format.make(policy, random);
            if self.partitioner.token(tenant, &token) != partition {
                continue;
            }
            draws += 1;
            let live = self.backbone.store.token(tenant, &token)?;
            if live.is_none_or(|grant| grant.expires_at <= now) {
                return Ok(token);
            }
        }
        Err(Error::Unavailable(
            "no free continuation token was found; try again".into(),
        ))
    }
}
