//! Maps keyed by tenant, then by an id, so that a lookup borrows both keys instead of
//! cloning them into a tuple: the projection looks journeys up several times per event, and
//! the clones were a measurable share of a rebuild. Hashed with foldhash (not SipHash:
//! these keys come from the log, folded once, and a map is never exposed to a caller).
//! hashbrown's maps, for [`ByTenant::entry`]: one lookup finds a journey to change or the
//! place to put one, where the standard map's borrow rules asked for two.

use std::borrow::Borrow;
use std::hash::Hash;

use hashbrown::hash_map::EntryRef;
use rezef_events::TenantId;

type Hasher = foldhash::fast::RandomState;
type Inner<K, V> = hashbrown::HashMap<K, V, Hasher>;

/// A map of other keys from the log, hashed the same way.
pub type HashMap<K, V> = std::collections::HashMap<K, V, Hasher>;

/// A key's entry in a [`ByTenant`]: its value, or the place to put one.
pub type Entry<'a, 'k, K, V> = EntryRef<'a, 'k, K, K, V, Hasher>;

/// `tenant → id → value`.
#[derive(Debug)]
pub struct ByTenant<K, V> {
    tenants: hashbrown::HashMap<TenantId, Inner<K, V>, Hasher>,
}

impl<K, V> Default for ByTenant<K, V> {
    fn default() -> Self {
        Self {
            tenants: hashbrown::HashMap::default(),
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

    /// The tenant's map, made if missing (the tenant is cloned only then).
    pub fn tenant(&mut self, tenant: &TenantId) -> &mut Inner<K, V> {
        self.tenants.entry_ref(tenant).or_default()
    }

    /// The entry of `key`: its value, or the place to put one (`key` is cloned only then).
    pub fn entry<'a, 'k>(&'a mut self, tenant: &TenantId, key: &'k K) -> Entry<'a, 'k, K, V>
    where
        K: Clone,
    {
        self.tenant(tenant).entry_ref(key)
    }

    pub fn insert(&mut self, tenant: &TenantId, key: K, value: V) -> Option<V> {
        self.tenant(tenant).insert(key, value)
    }

    /// How many entries, over all tenants.
    pub fn len(&self) -> usize {
        self.tenants.values().map(Inner::len).sum()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&TenantId, &K, &V)> {
        (self.tenants.iter()).flat_map(|(t, map)| map.iter().map(move |(k, v)| (t, k, v)))
    }

    pub fn into_iter(self) -> impl Iterator<Item = (TenantId, K, V)> {
        (self.tenants.into_iter())
            .flat_map(|(t, map)| map.into_iter().map(move |(k, v)| (t.clone(), k, v)))
    }
}
