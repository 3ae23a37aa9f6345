//! A fast, non-cryptographic hasher for the simulator's indexes (the multiply-and-rotate of rustc's FxHash).
//!
//! std's SipHash was an eighth of a million-device fleet's start. Its resistance to chosen collisions buys
//! nothing here: every key these indexes hold comes from the simulator's own configuration (the fleet) or is an
//! id the simulator drew itself; requests only look keys up, and a lookup cannot degrade the table.

use std::hash::{BuildHasherDefault, Hasher};

use super::Device;

/// The hasher; see the module documentation.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct FastHasher(u64);

impl FastHasher {
    const K: u64 = 0xf135_7aea_2e62_a9c5;

    fn add(&mut self, word: u64) {
        self.0 = self.0.wrapping_add(word).wrapping_mul(Self::K);
    }
}

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            let mut buf = [0u8; 8];
            buf.copy_from_slice(w);
            self.add(u64::from_le_bytes(buf));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut buf = [0u8; 8];
            buf[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(buf) ^ ((rest.len() as u64) << 59));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    fn write_u128(&mut self, i: u128) {
        self.add(i as u64);
        self.add((i >> 64) as u64);
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        // The product's entropy sits in its high bits; the table indexes by the low ones.
        self.0.rotate_left(26)
    }
}

/// A `HashMap` with [`FastHasher`].
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<FastHasher>>;
/// A `HashSet` with [`FastHasher`].
pub(crate) type FastSet<T> = std::collections::HashSet<T, BuildHasherDefault<FastHasher>>;

/// The fleet's positions by device id: an open-addressing table of `u32` positions into the fleet, compared
/// against the devices' own ids, so the index holds no copy of an id (8 bytes a device instead of about 100).
#[derive(Clone, Debug, Default)]
pub(crate) struct DeviceIndex {
    slots: Vec<u32>,
    len: usize,
}

/// A free slot of [`DeviceIndex`].
const FREE: u32 = u32::MAX;

impl DeviceIndex {
    fn home(&self, id: &str) -> usize {
        let mut h = FastHasher::default();
        h.write(id.as_bytes());
        (h.finish() as usize) & (self.slots.len() - 1)
    }

    /// The position of the device with this id in `devices`, the fleet the index was built over.
    pub(crate) fn find(&self, devices: &[Device], id: &str) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut i = self.home(id);
        loop {
            let slot = *self.slots.get(i)?;
            if slot == FREE {
                return None;
            }
            if devices.get(slot as usize).is_some_and(|d| d.device_id.as_str() == id) {
                return Some(slot as usize);
            }
            i = (i + 1) & mask;
        }
    }

    /// Makes room for `more` devices beyond `devices` without growing again.
    pub(crate) fn reserve(&mut self, devices: &[Device], more: usize) {
        let wanted = ((self.len + more) * 2).next_power_of_two().max(16);
        if wanted > self.slots.len() {
            self.slots = vec![FREE; wanted];
            let len = self.len;
            self.len = 0;
            for pos in 0..len {
                if let Some(d) = devices.get(pos) {
                    self.place(d.device_id.as_str(), pos);
                }
            }
        }
    }

    fn place(&mut self, id: &str, pos: usize) {
        let mask = self.slots.len() - 1;
        let mut i = self.home(id);
        while self.slots.get(i).is_some_and(|s| *s != FREE) {
            i = (i + 1) & mask;
        }
        if let Some(slot) = self.slots.get_mut(i) {
            *slot = pos as u32;
            self.len += 1;
        }
    }

    /// Indexes `id` at position `pos` (the next one after `devices`); `false`, changing nothing, when the id is
    /// already indexed. The table stays at most half full, so probes are short.
    pub(crate) fn insert(&mut self, devices: &[Device], id: &str, pos: usize) -> bool {
        if self.find(devices, id).is_some() {
            return false;
        }
        if (self.len + 1) * 2 > self.slots.len() {
            self.reserve(devices, self.len.max(8));
        }
        self.place(id, pos);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::{BuildHasher, Hash};

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

    #[test]
    fn equal_keys_hash_equal_and_near_keys_spread() {
        let b = BuildHasherDefault::<FastHasher>::default();
        assert_eq!(b.hash_one("device-0001"), b.hash_one("device-0001"));
        let low_bits: FastSet<u64> = (0..1000).map(|i| b.hash_one(format!("device-{i:04}")) & 0x3ff).collect();
        // 1000 keys over 1024 buckets: a good spread leaves well over half of them distinct.
        assert!(low_bits.len() > 550, "{}", low_bits.len());
        let mut h = FastHasher::default();
        "ab".hash(&mut h);
        let mut g = FastHasher::default();
        "a".hash(&mut g);
        "b".hash(&mut g);
        assert_ne!(h.finish(), g.finish());
    }
}
