//! Which partition of a partitioned log (Kafka) an event belongs to.
//!
//! Every node, every adapter and every tool must agree on it, so the function is fixed here
//! rather than left to a client library: the partition of a key is Kafka's own default,
//! `murmur2(key) & 0x7fffffff mod partitions` (the Java client's partitioner, librdkafka's
//! `murmur2`), over key bytes Rezef defines:
//!
//! | what | key bytes |
//! |---|---|
//! | a customer | `tenant \0 customer_id` |
//! | an identity never linked | its customer's: `customer_id_for(tenant, identity)` |
//! | a continuation token | `tenant \0 # token` (tokens are issued so that this is their customer's partition) |
//! | the tenant's routing, agents | `tenant \0` |
//!
//! An event goes to the partition of the journey a projector forwarded it to (see
//! `handover`), else of the token it continues with, else of the customer it names, else (agent presence, routing configuration) of its tenant's routing. All events of
//! one customer therefore land on one partition, in order; docs/scale-out.md has the rest.

use std::num::NonZeroU32;

use crate::fold::{continuation_token, customer_id_for};
use crate::{CustomerId, CustomerRef, Event, TenantId};

/// Kafka's murmur2 (`org.apache.kafka.common.utils.Utils.murmur2`), bit for bit.
pub fn murmur2(data: &[u8]) -> u32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h = SEED ^ (data.len() as u32);
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        for (i, &byte) in rest.iter().enumerate().rev() {
            h ^= u32::from(byte) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

/// Maps keys to the partitions of a topic with a fixed number of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partitioner {
    partitions: NonZeroU32,
}

impl Partitioner {
    pub fn new(partitions: NonZeroU32) -> Self {
        Self { partitions }
    }

    /// How many partitions there are.
    pub fn partitions(&self) -> u32 {
        self.partitions.get()
    }

    fn of(&self, tenant: &TenantId, marker: &str, value: &str) -> u32 {
        let mut key = Vec::with_capacity(tenant.as_str().len() + 1 + marker.len() + value.len());
        key.extend_from_slice(tenant.as_str().as_bytes());
        key.push(0);
        key.extend_from_slice(marker.as_bytes());
        key.extend_from_slice(value.as_bytes());
        (murmur2(&key) & 0x7fff_ffff) % self.partitions.get()
    }

    /// The partition holding a customer's journey.
    pub fn customer(&self, tenant: &TenantId, customer: &CustomerId) -> u32 {
        self.of(tenant, "", customer.as_str())
    }

    /// The partition a reference leads to: an identity's is that of the customer it makes
    /// when first seen.
    pub fn reference(&self, tenant: &TenantId, customer: &CustomerRef) -> u32 {
        match customer {
            CustomerRef::Id(id) => self.customer(tenant, id),
            CustomerRef::Identity(identity) => {
                self.customer(tenant, &customer_id_for(tenant, identity))
            }
        }
    }

    /// The partition of a continuation token.
    pub fn token(&self, tenant: &TenantId, token: &str) -> u32 {
        self.of(tenant, "#", token)
    }

    /// The partition of a tenant's routing (queues, agents, offers).
    pub fn routing(&self, tenant: &TenantId) -> u32 {
        self.of(tenant, "", "")
    }

    /// The partition an event is appended to.
    pub fn event(&self, event: &Event) -> u32 {
        let tenant = &event.tenant_id;
        if let Some(forward) = &event.forward {
            return self.customer(tenant, &forward.journey);
        }
        if let Some(token) = continuation_token(event) {
            return self.token(tenant, token);
        }
        match &event.customer {
            Some(customer) => self.reference(tenant, customer),
            None => self.routing(tenant),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::EventBuilder;

    /// The values of Kafka's own `UtilsTest.testMurmur2`.
    #[test]
    fn murmur2_is_kafkas() {
        let cases: [(&str, i32); 6] = [
            ("21", -973_932_308),
            ("foobar", -790_332_482),
            ("a-little-bit-long-string", -985_981_536),
            ("a-little-bit-longer-string", -1_486_304_829),
            (
                "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            ("abc", 479_470_107),
        ];
        for (input, expected) in cases {
            assert_eq!(murmur2(input.as_bytes()) as i32, expected, "{input}");
        }
    }

    fn partitioner(n: u32) -> Partitioner {
        Partitioner::new(NonZeroU32::new(n).expect("non-zero"))
    }

    #[test]
    fn one_customers_events_share_a_partition() {
        let p = partitioner(12);
        let mut chat = EventBuilder::visitor("acme", "visitor-1");
        let started = chat.started();
        let intent = chat.intent("billing", 0.9);
        assert_eq!(p.event(&started), p.event(&intent));
        let Some(CustomerRef::Identity(identity)) = &started.customer else {
            panic!("a visitor is named by identity");
        };
        let customer = customer_id_for(&started.tenant_id, identity);
        assert_eq!(p.event(&started), p.customer(&started.tenant_id, &customer));
    }

    #[test]
    fn keys_spread_over_every_partition() {
        let p = partitioner(8);
        let tenant = TenantId::new("acme").expect("valid");
        let mut seen = [0u32; 8];
        for i in 0..800 {
            let customer = CustomerId::new(format!("c-{i}")).expect("valid");
            seen[p.customer(&tenant, &customer) as usize] += 1;
        }
        assert!(seen.iter().all(|&n| n > 50), "{seen:?}");
        assert_eq!(partitioner(1).routing(&tenant), 0);
    }
}
