//! `Identities/FindCustomers`: customers by an exact attribute value or by the start of an
//! identity, from the search indexes the projection keeps (`rezef_events::search`).
//!
//! Each partition answers the index entries after the page token (its *part*); the parts
//! are merged in key order. A part that has more entries than a page says how far it read,
//! and the page ends there, so that nothing a partition did not read is skipped by the next
//! page's token. One node is a cluster of one: its only partition is one part.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rezef_events::search::{self, Attribute, Scope};
use rezef_events::{ChannelIdentity, CustomerId, IdentityKind, TenantId};
use rezef_proto::v1::{self, FindCustomersRequest, find_customers_request::Query as ProtoQuery};
use rezef_store::Index;

use crate::backbone::Backbone;
use crate::convert::{Check, ProtoEnum, identity_to_proto, linked_identity_to_proto, timestamp};
use crate::{Error, Result};

/// Matches per page unless the request asks for another number.
const DEFAULT_PAGE: usize = 20;
/// The most matches a page holds.
const MAX_PAGE: usize = 100;

/// A checked request.
#[derive(Debug, Clone)]
pub struct Search {
    pub tenant: TenantId,
    query: Query,
    /// The index key the previous page ended at ("" for the first page).
    after: String,
    pub limit: usize,
}

#[derive(Debug, Clone)]
enum Query {
    Attribute(Attribute),
    /// An identity-index key prefix.
    Identity(String),
}

/// What one partition (or one other node) found: matches by index key (`None` for an entry
/// whose value the customer no longer has), and the key it stopped at if it has more.
#[derive(Debug, Default)]
pub struct Part {
    pub rows: Vec<(String, Option<v1::FoundCustomer>)>,
    pub more_after: Option<String>,
}

impl Query {
    fn index(&self) -> Index {
        match self {
            Self::Attribute(_) => Index::Attributes,
            Self::Identity(_) => Index::Identities,
        }
    }

    fn prefix(&self) -> String {
        match self {
            Self::Attribute(attribute) => attribute.prefix(),
            Self::Identity(prefix) => prefix.clone(),
        }
    }
}

impl Search {
    /// Checks a request (phone prefixes need no region: they are international).
    pub fn parse(mut check: Check, request: &FindCustomersRequest) -> Result<Self> {
        let tenant = check.tenant("tenant_id", request.tenant_id.clone());
        let query = match &request.query {
            Some(ProtoQuery::Attribute(attribute)) => attribute_query(&mut check, attribute),
            Some(ProtoQuery::IdentityPrefix(prefix)) => identity_query(&mut check, prefix),
            None => {
                check.fail("query", "must hold an attribute or an identity_prefix");
                None
            }
        };
        let after = match URL_SAFE_NO_PAD.decode(&request.page_token) {
            Ok(bytes) => String::from_utf8(bytes).ok(),
            Err(_) => None,
        };
        let after = match (after, &query) {
            (Some(after), Some(query))
                if after.is_empty() || after.starts_with(&query.prefix()) =>
            {
                Some(after)
            }
            (_, Some(_)) => {
                check.fail("page_token", "is not a next_page_token of this query");
                None
            }
            (_, None) => None,
        };
        let (tenant, query, after) = check.finish(|| Some((tenant?, query?, after?)))?;
        let limit = match request.page_size {
            0 => DEFAULT_PAGE,
            size => usize::try_from(size).map_or(MAX_PAGE, |size| size.min(MAX_PAGE)),
        };
        Ok(Self {
            tenant,
            query,
            after,
            limit,
        })
    }

    /// What this partition's store holds after the token, once everything logged before
    /// the call is projected.
    pub async fn here(&self, backbone: &Backbone, wait: std::time::Duration) -> Result<Part> {
        backbone.caught_up(wait).await?;
        let (index, prefix) = (self.query.index(), self.query.prefix());
        let mut entries =
            (backbone.store).scan(&self.tenant, index, &prefix, &self.after, self.limit + 1)?;
        let more_after = (entries.len() > self.limit).then(|| {
            entries.truncate(self.limit);
            entries
                .last()
                .map(|(key, _)| key.clone())
                .unwrap_or_default()
        });
        let mut rows = Vec::with_capacity(entries.len());
        for (key, matched) in entries {
            let found = self.found(backbone, &key, matched)?;
            rows.push((key, found));
        }
        Ok(Part { rows, more_after })
    }

    /// The match an index entry names, with its customer as it is now.
    fn found(
        &self,
        backbone: &Backbone,
        key: &str,
        matched: CustomerId,
    ) -> Result<Option<v1::FoundCustomer>> {
        let identity = match &self.query {
            Query::Identity(_) => match search::identity_of(key) {
                Some(identity) if backbone.policy(&self.tenant).identifies(&identity) => {
                    Some(identity)
                }
                _ => return Ok(None),
            },
            Query::Attribute(_) => None,
        };
        let mut found = v1::FoundCustomer {
            customer_id: matched.to_string(),
            matched_customer_id: matched.to_string(),
            identity: identity.as_ref().map(identity_to_proto),
            ..Default::default()
        };
        let journey = match backbone.journey_of(&self.tenant, &matched) {
            Ok(journey) => journey,
            // Kept on another partition: its id is all this one knows.
            Err(Error::Moved { customer, .. }) => {
                found.customer_id = customer.to_string();
                return Ok(Some(found));
            }
            Err(error) => return Err(error),
        };
        let Some(journey) = journey else {
            return Ok(Some(found));
        };
        if let Query::Attribute(attribute) = &self.query
            && !attribute.holds(&journey)
        {
            return Ok(None);
        }
        found.customer_id = journey.customer_id.to_string();
        found.identities = (journey.identities.iter())
            .map(linked_identity_to_proto)
            .collect();
        found.attributes = Some(v1::CustomerAttributes {
            tier: journey.attributes.tier.clone().unwrap_or_default(),
            preferred_language: (journey.attributes.preferred_language.clone()).unwrap_or_default(),
        });
        found.last_seen_at = Some(timestamp(journey.last_seen_at));
        Ok(Some(found))
    }

    /// What another node answered, as a part: its matches with their index keys, and where
    /// it stopped.
    pub fn part_of(&self, response: v1::FindCustomersResponse) -> Result<Part> {
        let more_after = match response.next_page_token.as_str() {
            "" => None,
            token => Some(decode(token).ok_or_else(|| {
                Error::Unavailable("another node answered an unreadable page token".into())
            })?),
        };
        let rows = (response.customers.into_iter())
            .map(|found| (self.key_of(&found), Some(found)))
            .collect();
        Ok(Part { rows, more_after })
    }

    /// The index key a match stands at.
    fn key_of(&self, found: &v1::FoundCustomer) -> String {
        match &self.query {
            Query::Attribute(attribute) => attribute.prefix() + &found.matched_customer_id,
            Query::Identity(_) => {
                let identity = found.identity.as_ref();
                let kind = identity.and_then(|i| IdentityKind::from_proto(i.kind).ok().flatten());
                match (identity, kind) {
                    (Some(identity), Some(kind)) => {
                        let network =
                            (!identity.network.is_empty()).then(|| identity.network.clone());
                        ChannelIdentity::stored(kind, identity.value.clone(), network).index_key()
                    }
                    _ => String::new(),
                }
            }
        }
    }
}

/// The page the parts make: every match up to where the first part that has more stopped,
/// or the first `limit` entries, whichever ends sooner; and the token of the next page.
pub fn page(parts: Vec<Part>, limit: usize) -> v1::FindCustomersResponse {
    let mut rows: Vec<_> = parts.iter().flat_map(|part| part.rows.iter()).collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    rows.dedup_by(|a, b| a.0 == b.0);
    let mut end = parts
        .iter()
        .filter_map(|part| part.more_after.clone())
        .min();
    if rows.len() > limit {
        let last = rows[limit - 1].0.clone();
        end = Some(end.map_or(last.clone(), |end| end.min(last)));
    }
    let customers = (rows.into_iter())
        .filter(|(key, _)| end.as_ref().is_none_or(|end| key <= end))
        .filter_map(|(_, found)| found.clone())
        .collect();
    v1::FindCustomersResponse {
        customers,
        next_page_token: end
            .map(|end| URL_SAFE_NO_PAD.encode(end))
            .unwrap_or_default(),
    }
}

fn decode(token: &str) -> Option<String> {
    String::from_utf8(URL_SAFE_NO_PAD.decode(token).ok()?).ok()
}

fn attribute_query(check: &mut Check, attribute: &v1::AttributeMatch) -> Option<Query> {
    let scope = match v1::AttributeScope::try_from(attribute.scope) {
        Ok(v1::AttributeScope::Context) => Some(Scope::Context),
        Ok(v1::AttributeScope::Profile) => Some(Scope::Profile),
        _ => {
            check.fail("attribute.scope", "must be CONTEXT or PROFILE");
            None
        }
    };
    let name = attribute.name.as_str();
    if name.is_empty() {
        check.fail("attribute.name", "is required");
    } else if scope == Some(Scope::Profile)
        && ![search::TIER, search::PREFERRED_LANGUAGE].contains(&name)
    {
        check.fail(
            "attribute.name",
            "must be tier or preferred_language for PROFILE",
        );
    }
    let value = match (scope, name) {
        (Some(Scope::Profile), search::PREFERRED_LANGUAGE) => {
            check.language("attribute.value", attribute.value.clone())
        }
        _ => Some(attribute.value.clone()).filter(|v| !v.is_empty()),
    };
    let Some(value) = value else {
        if attribute.value.is_empty() {
            check.fail("attribute.value", "is required");
        }
        return None;
    };
    let query = Attribute::new(scope?, name, value);
    if !query.indexable() {
        check.fail(
            "attribute.value",
            format!(
                "is never indexed: values longer than {} bytes or with control characters are not",
                search::MAX_INDEXED_VALUE_LEN
            ),
        );
        return None;
    }
    Some(Query::Attribute(query))
}

fn identity_query(check: &mut Check, prefix: &v1::IdentityPrefix) -> Option<Query> {
    let kind = check.required::<IdentityKind>("identity_prefix.kind", prefix.kind)?;
    let network = (!prefix.network.is_empty()).then_some(prefix.network.as_str());
    search::identity_prefix(kind, network, &prefix.value_prefix)
        .map_err(|error| check.fail(format!("identity_prefix.{}", error.field), error.reason))
        .ok()
        .map(Query::Identity)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(customer: &str) -> Option<v1::FoundCustomer> {
        Some(v1::FoundCustomer {
            customer_id: customer.into(),
            ..Default::default()
        })
    }

    fn ids(response: &v1::FindCustomersResponse) -> Vec<&str> {
        (response.customers.iter())
            .map(|f| f.customer_id.as_str())
            .collect()
    }

    #[test]
    fn a_page_ends_where_a_part_with_more_stopped() {
        // Given one part that read "b" and has more, and one that read everything
        let parts = vec![
            Part {
                rows: vec![("a".into(), found("a")), ("b".into(), found("b"))],
                more_after: Some("b".into()),
            },
            Part {
                rows: vec![("c".into(), found("c")), ("a2".into(), found("a2"))],
                more_after: None,
            },
        ];
        // When the page is made
        let page = page(parts, 10);
        // Then "c" waits for the next page, after "b"
        assert_eq!(ids(&page), ["a", "a2", "b"]);
        assert_eq!(decode(&page.next_page_token).as_deref(), Some("b"));
    }

    #[test]
    fn a_page_holds_at_most_its_size_and_filtered_entries_count() {
        let part = Part {
            rows: vec![
                ("a".into(), found("a")),
                ("b".into(), None),
                ("c".into(), found("c")),
            ],
            more_after: None,
        };
        let first = page(vec![part], 2);
        assert_eq!(ids(&first), ["a"]);
        assert_eq!(decode(&first.next_page_token).as_deref(), Some("b"));
        let last = page(vec![Part::default()], 2);
        assert!(last.customers.is_empty() && last.next_page_token.is_empty());
    }

    proptest::proptest! {
        /// Given index entries spread over partitions, some left out, some partitions on other
        /// nodes (whose answers hold only what they show), when pages are asked for one
        /// token after another, then every match comes once, in key order.
        #[test]
        fn paging_over_partitions_yields_every_match_once_in_order(
            keys in proptest::collection::btree_map("[a-e]{1,3}", (0u8..4, proptest::bool::ANY), 0..40),
            partitions in 1u8..4,
            remote in proptest::collection::vec(proptest::bool::ANY, 4),
            limit in 1usize..6,
        ) {
            let part_of = |(_, (p, _)): &(&String, &(u8, bool))| p % partitions;
            let mut pages = 0;
            let (mut seen, mut after) = (Vec::new(), String::new());
            loop {
                let parts = (0..partitions).map(|p| {
                    let mut rows: Vec<_> = (keys.iter())
                        .filter(|entry| part_of(entry) == p && *entry.0 > after)
                        .map(|(key, (_, shown))| (key.clone(), shown.then(|| found(key)).flatten()))
                        .take(limit + 1)
                        .collect();
                    let more_after = (rows.len() > limit).then(|| {
                        rows.truncate(limit);
                        rows[limit - 1].0.clone()
                    });
                    if remote[usize::from(p)] {
                        rows.retain(|(_, found)| found.is_some());
                    }
                    Part { rows, more_after }
                });
                let page = page(parts.collect(), limit);
                proptest::prop_assert!(page.customers.len() <= limit);
                seen.extend(page.customers.into_iter().map(|f| f.customer_id));
                pages += 1;
                proptest::prop_assert!(pages <= keys.len() + 1, "paging never ends");
                match decode(&page.next_page_token) {
                    Some(token) if !page.next_page_token.is_empty() => after = token,
                    _ => break,
                }
            }
            let shown: Vec<_> = (keys.iter())
                .filter(|(_, (_, shown))| *shown)
                .map(|(key, _)| key.clone())
                .collect();
            proptest::prop_assert_eq!(seen, shown);
        }
    }
}
