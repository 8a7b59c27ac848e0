//! `rezef.v1.Identities`: who an identity belongs to, and the links, merges and unmerges
//! that make many channel identities one customer. Each change is appended to the log as an
//! event after its rules were checked against an up-to-date projection; the projector
//! applies the same rules when it folds the event.

use rezef_events::event::{AssuranceLevel, VerificationMethod};
use rezef_events::{Channel, ChannelIdentity, CustomerId, CustomerRef, Payload, TenantId};
use rezef_proto::v1::{
    self, FindCustomersRequest, FindCustomersResponse, ForgetCustomerRequest,
    ForgetCustomerResponse, LinkIdentityRequest, LinkIdentityResponse, LinkOutcome,
    MergeCustomersRequest, MergeCustomersResponse, ResolveCustomerRequest, ResolveCustomerResponse,
    UnmergeCustomersRequest, UnmergeCustomersResponse, identities_client::IdentitiesClient,
    identities_server::Identities,
};
use tonic::{Request, Response, Status};
use tracing::{Instrument, info, info_span};

use crate::backbone::Backbone;
use crate::cluster::{FORWARDED_HEADER, Peer, Place, Topology, answer, forward};
use crate::convert::{Check, linked_identity_to_proto};
use crate::find::{self, Search};
use crate::forget;
use crate::own_event::OwnEvent;
use crate::{Error, Result};

/// The service: places each call on the node serving its customer's partition.
#[derive(Debug, Clone)]
pub struct IdentitiesService {
    topology: Topology,
}

/// The calls answered here, on one partition's backbone.
#[derive(Debug, Clone)]
struct Local {
    backbone: Backbone,
}

/// A customer id field, required.
fn customer_field(check: &mut Check, field: &str, value: String) -> Option<CustomerId> {
    check.id(field, value, true, CustomerId::new)
}

fn identity_field(
    check: &mut Check,
    field: &str,
    value: Option<v1::ChannelIdentity>,
) -> Option<ChannelIdentity> {
    match value {
        Some(identity) => check.identity(field, identity),
        None => {
            check.fail(field, "is required");
            None
        }
    }
}

fn requested_by_field(check: &mut Check, value: &str) {
    if value.is_empty() {
        check.fail("requested_by", "is required");
    }
}

impl IdentitiesService {
    pub fn new(topology: Topology) -> Self {
        Self { topology }
    }

    /// Where every partition is answered: backbones here and other nodes (each once). A
    /// forwarded call is answered by the partitions served here only.
    fn partitions(
        &self,
        metadata: &tonic::metadata::MetadataMap,
    ) -> Result<(Vec<Backbone>, Vec<Peer>)> {
        if metadata.contains_key(FORWARDED_HEADER) {
            let here = self
                .topology
                .local()
                .into_iter()
                .map(|(_, backbone)| backbone);
            return Ok((here.collect(), Vec::new()));
        }
        let (mut here, mut there) = (Vec::new(), Vec::<Peer>::new());
        for partition in 0..self.topology.partitioner().partitions() {
            match self.topology.place(partition, metadata)? {
                Place::Here(backbone) => here.push(backbone),
                Place::There(peer) if there.iter().all(|p| p.node() != peer.node()) => {
                    there.push(peer)
                }
                Place::There(_) => {}
            }
        }
        Ok((here, there))
    }

    /// Where a call about a customer (named by id or by identity) is answered. Only the
    /// fields placing it are checked here; the node answering checks the rest.
    fn place<T>(
        &self,
        request: &Request<T>,
        tenant: &str,
        customer: impl FnOnce(&mut Check) -> Option<CustomerRef>,
    ) -> Result<Place> {
        let mut check = self.topology.check();
        let tenant = check.tenant("tenant_id", tenant.to_owned());
        let customer = customer(&mut check);
        match check.finish(|| Some((tenant?, customer?))) {
            Ok((tenant, customer)) => {
                let partition = self.topology.partitioner().reference(&tenant, &customer);
                self.topology.place(partition, request.metadata())
            }
            Err(invalid) => (self.topology).place_invalid(request.metadata(), invalid.into()),
        }
    }

    fn by_id<T>(&self, request: &Request<T>, tenant: &str, field: &str, id: &str) -> Result<Place> {
        self.place(request, tenant, |check| {
            customer_field(check, field, id.to_owned()).map(CustomerRef::Id)
        })
    }
}

impl Local {
    /// The journey holding `customer`, or `NOT_FOUND`.
    fn journey_of(
        &self,
        tenant: &TenantId,
        customer: &CustomerId,
    ) -> Result<rezef_events::Journey> {
        self.backbone.journey_of(tenant, customer)?.ok_or_else(|| {
            Error::NotFound(format!(
                "customer {customer} is not known in tenant {tenant}"
            ))
        })
    }

    async fn resolve(
        &self,
        request: Request<ResolveCustomerRequest>,
    ) -> Result<ResolveCustomerResponse> {
        let wait = self.backbone.max_wait(&request);
        let request = request.into_inner();
        let mut check = self.backbone.check();
        let tenant = check.tenant("tenant_id", request.tenant_id);
        let identity = identity_field(&mut check, "identity", request.identity);
        let (tenant, identity) = check.finish(|| Some((tenant?, identity?)))?;
        if let Some(offset) = request.min_offset {
            self.backbone.wait_projected(offset, wait).await?;
        }
        let projected_offset = self.backbone.projection.position();
        let owner = self.backbone.owner(&tenant, &identity)?.ok_or_else(|| {
            Error::NotFound(format!(
                "no customer with identity {identity} in tenant {tenant}"
            ))
        })?;
        let journey = match self.journey_of(&tenant, &owner) {
            Ok(journey) => journey,
            // The identity's home knows its owner; the journey is kept on the owner's
            // partition, where a read by the id goes.
            Err(Error::Moved { customer, .. }) => {
                return Ok(ResolveCustomerResponse {
                    merged_customer_id: if owner == customer {
                        String::new()
                    } else {
                        owner.to_string()
                    },
                    customer_id: customer.to_string(),
                    identities: Vec::new(),
                    projected_offset,
                });
            }
            Err(error) => return Err(error),
        };
        Ok(ResolveCustomerResponse {
            merged_customer_id: if owner == journey.customer_id {
                String::new()
            } else {
                owner.to_string()
            },
            customer_id: journey.customer_id.to_string(),
            identities: journey
                .identities
                .iter()
                .map(linked_identity_to_proto)
                .collect(),
            projected_offset,
        })
    }

    async fn link(&self, request: Request<LinkIdentityRequest>) -> Result<LinkIdentityResponse> {
        let wait = self.backbone.max_wait(&request);
        let request = request.into_inner();
        let mut check = self.backbone.check();
        let tenant = check.tenant("tenant_id", request.tenant_id);
        let customer = customer_field(&mut check, "customer_id", request.customer_id);
        let identity = identity_field(&mut check, "identity", request.identity);
        let method = check.required::<VerificationMethod>("method", request.method);
        let assurance = check.required::<AssuranceLevel>("assurance", request.assurance);
        let channel = check.required::<Channel>("channel", request.channel);
        let expires_at = check.time("expires_at", request.expires_at);
        if request.source.is_empty() {
            check.fail("source", "is required");
        }
        let (tenant, customer, identity, method, assurance, channel) = check
            .finish(|| Some((tenant?, customer?, identity?, method?, assurance?, channel?)))?;
        self.backbone.caught_up(wait).await?;
        let journey = self.journey_of(&tenant, &customer)?;
        if !self.backbone.policy(&tenant).identifies(&identity) {
            return Err(Error::FailedPrecondition(format!(
                "identity {identity} identifies no one in tenant {tenant} (a withheld caller id \
                 or a number listed in non_identifying_numbers): it is never linked"
            )));
        }
        let owner = match self.backbone.owner(&tenant, &identity)? {
            Some(owner) => self
                .backbone
                .journey_of(&tenant, &owner)?
                .map(|j| j.customer_id),
            None => None,
        };
        let (outcome, merged_with) = match owner {
            None => (LinkOutcome::Linked, None),
            Some(owner) if owner == journey.customer_id => (LinkOutcome::AlreadyLinked, None),
            Some(owner) => {
                let policy = self.backbone.policy(&tenant);
                if let Err(refusal) = policy.may_merge(method, assurance, identity.kind()) {
                    return Err(Error::FailedPrecondition(format!(
                        "identity {identity} belongs to customer {owner}, and a {assurance} \
                         verification by {method} does not merge customers: {refusal}"
                    )));
                }
                (LinkOutcome::Merged, Some(owner))
            }
        };
        let payload = Payload::CustomerIdentified {
            method,
            assurance,
            identities: vec![identity],
            expires_at,
        };
        let event = OwnEvent::new(&tenant, &request.source, payload)
            .about(&journey.customer_id)
            .on(channel)
            .build();
        let offset = self.backbone.append(&[event]).await?;
        info!(%tenant, customer = %journey.customer_id, ?outcome, offset, "identity linked");
        Ok(LinkIdentityResponse {
            outcome: outcome as i32,
            merged_with_customer_id: merged_with.map(|c| c.to_string()).unwrap_or_default(),
            offset,
        })
    }

    async fn merge(
        &self,
        request: Request<MergeCustomersRequest>,
    ) -> Result<MergeCustomersResponse> {
        let wait = self.backbone.max_wait(&request);
        let request = request.into_inner();
        let mut check = self.backbone.check();
        let tenant = check.tenant("tenant_id", request.tenant_id);
        let survivor = customer_field(
            &mut check,
            "survivor_customer_id",
            request.survivor_customer_id,
        );
        let absorbed = customer_field(
            &mut check,
            "absorbed_customer_id",
            request.absorbed_customer_id,
        );
        requested_by_field(&mut check, &request.requested_by);
        let (tenant, survivor, absorbed) =
            check.finish(|| Some((tenant?, survivor?, absorbed?)))?;
        self.backbone.caught_up(wait).await?;
        let kept = self.journey_of(&tenant, &survivor)?;
        let taken = match self.journey_of(&tenant, &absorbed) {
            Ok(journey) => journey.customer_id,
            // Kept on another partition: the projectors hand it over (docs/scale-out.md §2),
            // and one that is not known there is passed over.
            Err(Error::Moved { customer, .. }) => customer,
            Err(error) => return Err(error),
        };
        if kept.customer_id == taken {
            return Err(Error::FailedPrecondition(format!(
                "customers {survivor} and {absorbed} are already one: {}",
                kept.customer_id
            )));
        }
        let payload = Payload::CustomersMerged {
            absorbed: taken.clone(),
            reason: request.reason,
            requested_by: request.requested_by,
        };
        let event = OwnEvent::new(&tenant, "rezef.identities", payload)
            .about(&kept.customer_id)
            .build();
        let offset = self.backbone.append(&[event]).await?;
        info!(%tenant, survivor = %kept.customer_id, absorbed = %taken, offset, "merge requested");
        Ok(MergeCustomersResponse { offset })
    }

    async fn forget(
        &self,
        request: Request<ForgetCustomerRequest>,
    ) -> Result<ForgetCustomerResponse> {
        let wait = self.backbone.max_wait(&request);
        let requested_by = forget::requester(&request);
        let request = request.into_inner();
        let mut check = self.backbone.check();
        let tenant = check.tenant("tenant_id", request.tenant_id);
        let customer = customer_field(&mut check, "customer_id", request.customer_id);
        forget::reason_field(&mut check, &request.reason);
        let (tenant, customer) = check.finish(|| Some((tenant?, customer?)))?;
        self.backbone.caught_up(wait).await?;
        let journey = self.journey_of(&tenant, &customer)?;
        let forgotten = (self.backbone)
            .forget(&journey, requested_by, request.reason)
            .await?;
        let (offset, keys) = (forgotten.offset, forgotten.keys_destroyed);
        info!(%tenant, customer = %journey.customer_id, offset, keys, "customer forgotten");
        // Answered once the live projection reads erased too.
        self.backbone.wait_projected(offset, wait).await?;
        Ok(ForgetCustomerResponse {
            offset,
            customer_id: journey.customer_id.to_string(),
            customer_ids: forget::customer_ids(&journey),
            keys_destroyed: u32::try_from(keys).unwrap_or(u32::MAX),
        })
    }

    async fn unmerge(
        &self,
        request: Request<UnmergeCustomersRequest>,
    ) -> Result<UnmergeCustomersResponse> {
        let wait = self.backbone.max_wait(&request);
        let request = request.into_inner();
        let mut check = self.backbone.check();
        let tenant = check.tenant("tenant_id", request.tenant_id);
        let customer = customer_field(&mut check, "customer_id", request.customer_id);
        let absorbed = customer_field(
            &mut check,
            "absorbed_customer_id",
            request.absorbed_customer_id,
        );
        requested_by_field(&mut check, &request.requested_by);
        let (tenant, customer, absorbed) =
            check.finish(|| Some((tenant?, customer?, absorbed?)))?;
        self.backbone.caught_up(wait).await?;
        let journey = self.journey_of(&tenant, &customer)?;
        if !journey.merged_customers().any(|m| m == &absorbed) {
            return Err(Error::FailedPrecondition(format!(
                "customer {absorbed} is not merged into {}",
                journey.customer_id
            )));
        }
        let payload = Payload::CustomersUnmerged {
            absorbed,
            reason: request.reason,
            requested_by: request.requested_by,
        };
        let event = OwnEvent::new(&tenant, "rezef.identities", payload)
            .about(&journey.customer_id)
            .build();
        let offset = self.backbone.append(&[event]).await?;
        Ok(UnmergeCustomersResponse { offset })
    }
}

#[tonic::async_trait]
impl Identities for IdentitiesService {
    async fn resolve_customer(
        &self,
        request: Request<ResolveCustomerRequest>,
    ) -> Result<Response<ResolveCustomerResponse>, Status> {
        let span = info_span!("resolve_customer", tenant = %request.get_ref().tenant_id);
        let message = request.get_ref();
        let identity = message.identity.clone();
        let place = self.place(&request, &message.tenant_id, |check| {
            identity_field(check, "identity", identity).map(CustomerRef::Identity)
        })?;
        answer!(
            span,
            place,
            |backbone| Local { backbone }.resolve(request),
            IdentitiesClient,
            resolve_customer,
            request
        )
    }

    async fn link_identity(
        &self,
        request: Request<LinkIdentityRequest>,
    ) -> Result<Response<LinkIdentityResponse>, Status> {
        let span = info_span!("link_identity", tenant = %request.get_ref().tenant_id);
        let message = request.get_ref();
        let place = self.by_id(
            &request,
            &message.tenant_id,
            "customer_id",
            &message.customer_id,
        )?;
        answer!(
            span,
            place,
            |backbone| Local { backbone }.link(request),
            IdentitiesClient,
            link_identity,
            request
        )
    }

    async fn merge_customers(
        &self,
        request: Request<MergeCustomersRequest>,
    ) -> Result<Response<MergeCustomersResponse>, Status> {
        let span = info_span!("merge_customers", tenant = %request.get_ref().tenant_id);
        let message = request.get_ref();
        // Decided on the survivor's partition; an absorbed customer on another one is handed
        // over by the projectors (docs/scale-out.md §2).
        let (tenant, survivor) = (&message.tenant_id, &message.survivor_customer_id);
        let place = self.by_id(&request, tenant, "survivor_customer_id", survivor)?;
        answer!(
            span,
            place,
            |backbone| Local { backbone }.merge(request),
            IdentitiesClient,
            merge_customers,
            request
        )
    }

    async fn unmerge_customers(
        &self,
        request: Request<UnmergeCustomersRequest>,
    ) -> Result<Response<UnmergeCustomersResponse>, Status> {
        let span = info_span!("unmerge_customers", tenant = %request.get_ref().tenant_id);
        let message = request.get_ref();
        let place = self.by_id(
            &request,
            &message.tenant_id,
            "customer_id",
            &message.customer_id,
        )?;
        answer!(
            span,
            place,
            |backbone| Local { backbone }.unmerge(request),
            IdentitiesClient,
            unmerge_customers,
            request
        )
    }

    async fn forget_customer(
        &self,
        request: Request<ForgetCustomerRequest>,
    ) -> Result<Response<ForgetCustomerResponse>, Status> {
        let span = info_span!("forget_customer", tenant = %request.get_ref().tenant_id);
        let message = request.get_ref();
        let place = self.by_id(
            &request,
            &message.tenant_id,
            "customer_id",
            &message.customer_id,
        )?;
        answer!(
            span,
            place,
            |backbone| Local { backbone }.forget(request),
            IdentitiesClient,
            forget_customer,
            request
        )
    }

    /// Asks every partition: the ones served here, and (unless this call was forwarded)
    /// each other node once, for the partitions it serves.
    async fn find_customers(
        &self,
        request: Request<FindCustomersRequest>,
    ) -> Result<Response<FindCustomersResponse>, Status> {
        let span = info_span!("find_customers", tenant = %request.get_ref().tenant_id);
        async move {
            let search = Search::parse(self.topology.check(), request.get_ref())?;
            let (here, there) = self.partitions(request.metadata())?;
            let mut parts = Vec::new();
            for backbone in here {
                parts.push(search.here(&backbone, backbone.max_wait(&request)).await?);
            }
            for peer in there {
                let forwarded = Request::from_parts(
                    request.metadata().clone(),
                    tonic::Extensions::default(),
                    request.get_ref().clone(),
                );
                let response = forward!(peer, IdentitiesClient, find_customers, forwarded)?;
                parts.push(search.part_of(response.into_inner())?);
            }
            Ok(Response::new(find::page(parts, search.limit)))
        }
        .instrument(span)
        .await
    }
}
