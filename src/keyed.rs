//! A map of boxed values that each carry their own key.
//!
//! The pipeline keeps one state per device and the transit book one record per open transit,
//! a hundred thousand of each at the scale Caravan is built for. In a `HashMap<K, Box<V>>`
//! every slot holds the key beside the pointer, and a table keeps up to twice as many slots
//! as entries: with ids of 16 bytes, 24 bytes a slot. The value already holds its id, so the
//! slot here is the pointer alone (8 bytes), and the key is read through it.
//!
//! Keys are hashed with the standard library's `RandomState` (SipHash, keyed per process):
//! device and transit ids come from outside, and a fixed hash would let a sender choose ids
//! that collide.

use std::borrow::Borrow;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash};

use hashbrown::hash_table::{Entry, HashTable};

/// A value that names itself.
pub trait HasKey {
    type Key: Hash + Eq;

    fn key(&self) -> &Self::Key;
}

/// Boxed values found by their own key.
pub struct Keyed<V> {
    table: HashTable<Box<V>>,
    hasher: RandomState,
}

impl<V> Default for Keyed<V> {
    fn default() -> Self {
        Self {
            table: HashTable::new(),
            hasher: RandomState::new(),
        }
    }
}

impl<V: HasKey> Keyed<V> {
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            table: HashTable::with_capacity(capacity),
            hasher: RandomState::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    fn hash<Q: Hash + ?Sized>(&self, key: &Q) -> u64 {
        self.hasher.hash_one(key)
    }

    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        V::Key: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.table
            .find(self.hash(key), |v| v.key().borrow() == key)
            .map(|v| &**v)
    }

    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        V::Key: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash(key);
        self.table
            .find_mut(hash, |v| v.key().borrow() == key)
            .map(|v| &mut **v)
    }

    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        V::Key: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.get(key).is_some()
    }

    /// Holds `value` under its key; the value it replaces, if any.
    pub fn insert(&mut self, value: Box<V>) -> Option<Box<V>> {
        let hash = self.hash(value.key());
        let hasher = &self.hasher;
        match self.table.entry(
            hash,
            |v| v.key() == value.key(),
            |v| hasher.hash_one(v.key()),
        ) {
            Entry::Occupied(mut held) => Some(std::mem::replace(held.get_mut(), value)),
            Entry::Vacant(slot) => {
                slot.insert(value);
                None
            }
        }
    }

    pub fn remove<Q>(&mut self, key: &Q) -> Option<Box<V>>
    where
        V::Key: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash(key);
        self.table
            .find_entry(hash, |v| v.key().borrow() == key)
            .ok()
            .map(|held| held.remove().0)
    }

    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.table.iter().map(|v| &**v)
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.table.iter_mut().map(|v| &mut **v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Truck {
        id: String,
        km: u32,
    }

    impl HasKey for Truck {
        type Key = String;

        fn key(&self) -> &String {
            &self.id
        }
    }

    fn truck(id: &str, km: u32) -> Box<Truck> {
        Box::new(Truck { id: id.into(), km })
    }

    #[test]
    fn values_are_found_replaced_and_removed_by_the_key_they_hold() {
        let mut trucks = Keyed::default();
        assert_eq!(trucks.insert(truck("KG-1", 10)), None);
        assert_eq!(trucks.insert(truck("KG-2", 20)), None);
        assert_eq!(trucks.get("KG-1").map(|t| t.km), Some(10));
        assert!(!trucks.contains_key("KG-3"));
        // A second value of the same key replaces the first, which is handed back.
        assert_eq!(trucks.insert(truck("KG-1", 11)), Some(truck("KG-1", 10)));
        assert_eq!(trucks.len(), 2);
        if let Some(t) = trucks.get_mut("KG-2") {
            t.km += 1;
        }
        assert_eq!(trucks.remove("KG-2"), Some(truck("KG-2", 21)));
        assert_eq!(trucks.remove("KG-2"), None);
        let kms: Vec<u32> = trucks.values().map(|t| t.km).collect();
        assert_eq!(kms, [11]);
    }

    #[test]
    fn many_values_stay_reachable_as_the_table_grows_and_shrinks() {
        let mut trucks = Keyed::with_capacity(4);
        for n in 0..10_000 {
            trucks.insert(truck(&format!("T-{n}"), n));
        }
        for n in (0..10_000).step_by(2) {
            assert!(trucks.remove(format!("T-{n}").as_str()).is_some());
        }
        assert_eq!(trucks.len(), 5_000);
        assert!((0..10_000).all(|n| trucks.contains_key(format!("T-{n}").as_str()) == (n % 2 == 1)));
        for t in trucks.values_mut() {
            t.km = 0;
        }
        assert!(trucks.values().all(|t| t.km == 0));
    }
}
