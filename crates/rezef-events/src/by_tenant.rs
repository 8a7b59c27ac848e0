//! Maps keyed by tenant, then by an id, so that a lookup borrows both keys instead of
//! cloning them into a tuple: the projection looks journeys up several times per event, and
//! the clones were a measurable share of a rebuild. Hashed with foldhash (not SipHash:
//! these keys come from the log, folded once, and a map is never exposed to a caller).
//! hashbrown's maps, for [`ByTenant::entry`]: one lookup finds a journey to change or the
//! place to put one, where the standard map's borrow rules asked for two.
//!
//! The measurer keeps its open interactions and pending resolutions in them too, and
//! checkpoints them: the serde form is the `((tenant, id), value)` pairs in key order, the
//! same as an ordered map of pairs, so that a checkpoint's bytes do not depend on hashing.

use std::borrow::Borrow;
use std::hash::Hash;

use hashbrown::hash_map::EntryRef;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::TenantId;

type Hasher = foldhash::fast::RandomState;
type Inner<K, V> = hashbrown::HashMap<K, V, Hasher>;

/// A map of other keys from the log, hashed the same way.
pub type HashMap<K, V> = std::collections::HashMap<K, V, Hasher>;

/// A key's entry in a [`ByTenant`]: its value, or the place to put one.
pub type Entry<'a, 'k, K, V> = EntryRef<'a, 'k, K, K, V, Hasher>;

/// `tenant → id → value`.
#[derive(Debug, Clone)]
pub struct ByTenant<K, V> {
    tenants: hashbrown::HashMap<TenantId, Inner<K, V>, Hasher>,
}

impl<K: Eq + Hash, V: PartialEq> PartialEq for ByTenant<K, V> {
    fn eq(&self, other: &Self) -> bool {
        self.tenants == other.tenants
    }
}

impl<K: Eq + Hash, V: Eq> Eq for ByTenant<K, V> {}

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

    /// Takes the entry of `key` out (and the tenant's map, once empty).
    pub fn remove<Q>(&mut self, tenant: &TenantId, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let map = self.tenants.get_mut(tenant)?;
        let removed = map.remove(key);
        if map.is_empty() {
            self.tenants.remove(tenant);
        }
        removed
    }

    /// Keeps only the entries `keep` says to (which may change them).
    pub fn retain(&mut self, mut keep: impl FnMut(&mut V) -> bool) {
        for map in self.tenants.values_mut() {
            map.retain(|_, value| keep(value));
        }
        self.tenants.retain(|_, map| !map.is_empty());
    }

    pub fn is_empty(&self) -> bool {
        self.tenants.values().all(Inner::is_empty)
    }

    /// How many entries, over all tenants.
    pub fn len(&self) -> usize {
        self.tenants.values().map(Inner::len).sum()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&TenantId, &K, &V)> {
        (self.tenants.iter()).flat_map(|(t, map)| map.iter().map(move |(k, v)| (t, k, v)))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&TenantId, &K, &mut V)> {
        (self.tenants.iter_mut()).flat_map(|(t, map)| map.iter_mut().map(move |(k, v)| (t, k, v)))
    }

    /// One tenant's entries.
    pub fn of(&self, tenant: &TenantId) -> impl Iterator<Item = (&K, &V)> {
        self.tenants.get(tenant).into_iter().flatten()
    }

    pub fn into_entries(self) -> impl Iterator<Item = (TenantId, K, V)> {
        (self.tenants.into_iter())
            .flat_map(|(t, map)| map.into_iter().map(move |(k, v)| (t.clone(), k, v)))
    }
}

impl<K: Eq + Hash + Ord + Serialize, V: Serialize> Serialize for ByTenant<K, V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut pairs: Vec<_> = self.iter().map(|(t, k, v)| ((t, k), v)).collect();
        pairs.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        serializer.collect_seq(pairs)
    }
}

impl<'de, K, V> Deserialize<'de> for ByTenant<K, V>
where
    K: Eq + Hash + Deserialize<'de>,
    V: Deserialize<'de>,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut map = Self::default();
        for ((tenant, key), value) in Vec::<((TenantId, K), V)>::deserialize(deserializer)? {
            map.insert(&tenant, key, value);
        }
        Ok(map)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn tenant(name: &str) -> TenantId {
        TenantId::new(name).expect("valid")
    }

    #[test]
    fn given_entries_when_encoded_then_as_the_ordered_pairs_and_back() {
        let mut map = ByTenant::default();
        let mut ordered = BTreeMap::new();
        for (t, key, value) in [("b", "x", 1), ("a", "z", 2), ("a", "y", 3), ("b", "a", 4)] {
            map.insert(&tenant(t), key.to_owned(), value);
            ordered.insert((tenant(t), key.to_owned()), value);
        }
        let pairs: Vec<_> = ordered.into_iter().collect();
        let bytes = postcard::to_stdvec(&map).expect("encodes");
        assert_eq!(bytes, postcard::to_stdvec(&pairs).expect("encodes"));
        let back: ByTenant<String, i32> = postcard::from_bytes(&bytes).expect("decodes");
        assert_eq!(back, map);
    }

    #[test]
    fn given_a_tenant_s_last_entry_when_removed_or_dropped_then_its_map_goes_too() {
        let mut map = ByTenant::default();
        map.insert(&tenant("a"), "x".to_owned(), 1);
        map.insert(&tenant("b"), "y".to_owned(), 2);
        assert_eq!(map.remove(&tenant("a"), "x"), Some(1));
        assert_eq!(map.remove(&tenant("a"), "x"), None);
        map.retain(|value| *value != 2);
        assert!(map.is_empty());
        assert_eq!(map, ByTenant::default());
    }
}
