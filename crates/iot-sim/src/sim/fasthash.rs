//! The hash tables behind the simulator's indexes: `rustc-hash`'s Fx hasher, and hashbrown's `HashTable` for the
//! fleet index.
//!
//! std's SipHash was an eighth of a million-device fleet's start. Its resistance to chosen collisions buys
//! nothing here: every key these indexes hold comes from the simulator's own configuration (the fleet) or is an
//! id the simulator drew itself; requests only look keys up, and a lookup cannot degrade the table. The Fx hash
//! is also seedless, so the simulator's core stays free of randomness.

use std::hash::BuildHasher;

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;

use super::Device;

/// A `HashMap` with the Fx hasher.
pub(crate) type FastMap<K, V> = rustc_hash::FxHashMap<K, V>;
/// A `HashSet` with the Fx hasher.
pub(crate) type FastSet<T> = rustc_hash::FxHashSet<T>;

/// The fleet's positions by device id: a table of `u32` positions into the fleet, compared against the devices'
/// own ids, so the index holds no copy of an id (a few bytes a device instead of about 100).
#[derive(Clone, Debug, Default)]
pub(crate) struct DeviceIndex {
    table: HashTable<u32>,
}

impl DeviceIndex {
    fn hash(id: &str) -> u64 {
        FxBuildHasher.hash_one(id)
    }

    /// The id of the device at `pos`; the table only holds positions of devices already in the fleet.
    fn id_at(devices: &[Device], pos: u32) -> &str {
        devices.get(pos as usize).map_or("", |d| d.device_id.as_str())
    }

    /// The position of the device with this id in `devices`, the fleet the index was built over.
    pub(crate) fn find(&self, devices: &[Device], id: &str) -> Option<usize> {
        self.table.find(Self::hash(id), |&pos| Self::id_at(devices, pos) == id).map(|&pos| pos as usize)
    }

    /// Makes room for `more` devices beyond `devices` without growing again.
    pub(crate) fn reserve(&mut self, devices: &[Device], more: usize) {
        self.table.reserve(more, |&pos| Self::hash(Self::id_at(devices, pos)));
    }

    /// Indexes `id` at position `pos` (the next one after `devices`); `false`, changing nothing, when the id is
    /// already indexed.
    pub(crate) fn insert(&mut self, devices: &[Device], id: &str, pos: usize) -> bool {
        let Ok(pos) = u32::try_from(pos) else { return false };
        match self.table.entry(
            Self::hash(id),
            |&p| Self::id_at(devices, p) == id,
            |&p| Self::hash(Self::id_at(devices, p)),
        ) {
            hashbrown::hash_table::Entry::Occupied(_) => false,
            hashbrown::hash_table::Entry::Vacant(v) => {
                v.insert(pos);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_device_index_finds_every_device_and_refuses_duplicates() {
        let devices = super::super::FleetSpec::generate(3, 1000).devices;
        let mut index = DeviceIndex::default();
        for (pos, d) in devices.iter().enumerate() {
            assert!(index.insert(&devices[..pos], d.device_id.as_str(), pos));
        }
        for (pos, d) in devices.iter().enumerate() {
            assert_eq!(index.find(&devices, d.device_id.as_str()), Some(pos));
            assert!(!index.insert(&devices, d.device_id.as_str(), devices.len()));
        }
        assert_eq!(index.find(&devices, "no-such-device"), None);
    }
}
