//! Maps keyed by tenant, then by an id, so that a lookup borrows both keys instead of
//! cloning them into a tuple: the projection looks journeys up several times per event, and
//! the clones were a measurable share of a rebuild. Hashed with foldhash (not SipHash:
//! these keys come from the log, folded once, and a map is never exposed to a caller).

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;

use rezef_events::TenantId;

type Inner<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// `tenant → id → value`.
#[derive(Debug)]
pub struct ByTenant<K, V> {
    tenants: HashMap<TenantId, Inner<K, V>, foldhash::fast::RandomState>,
}

impl<K, V> Default for ByTenant<K, V> {
    fn default() -> Self {
        Self {
            tenants: HashMap::default(),
        }
    }
}

impl<K: Eq + Hash, V> ByTenant<K, V> {
    pub fn get<Q>(&self, tenant: &TenantId, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.tenants.get(tenant)?.get(key)
    }

    pub fn get_mut<Q>(&mut self, tenant: &TenantId, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.tenants.get_mut(tenant)?.get_mut(key)
    }

    pub fn contains<Q>(&self, tenant: &TenantId, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.get(tenant, key).is_some()
    }

    /// The tenant's map, made if missing (the tenant is cloned only then).
    pub fn tenant(&mut self, tenant: &TenantId) -> &mut Inner<K, V> {
        if !self.tenants.contains_key(tenant) {
            self.tenants.insert(tenant.clone(), HashMap::default());
        }
        self.tenants
            .get_mut(tenant)
            .unwrap_or_else(|| unreachable!("inserted above"))
    }

    pub fn insert(&mut self, tenant: &TenantId, key: K, value: V) -> Option<V> {
        self.tenant(tenant).insert(key, value)
    }

    /// How many entries, over all tenants.
    pub fn len(&self) -> usize {
        self.tenants.values().map(HashMap::len).sum()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&TenantId, &K, &V)> {
        (self.tenants.iter()).flat_map(|(t, map)| map.iter().map(move |(k, v)| (t, k, v)))
    }

    pub fn into_iter(self) -> impl Iterator<Item = (TenantId, K, V)> {
        (self.tenants.into_iter())
            .flat_map(|(t, map)| map.into_iter().map(move |(k, v)| (t.clone(), k, v)))
    }
}
