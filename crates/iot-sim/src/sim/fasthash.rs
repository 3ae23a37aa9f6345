//! A fast, non-cryptographic hasher for the simulator's indexes (the multiply-and-rotate of rustc's FxHash).
//!
//! std's SipHash was an eighth of a million-device fleet's start. Its resistance to chosen collisions buys
//! nothing here: every key these indexes hold comes from the simulator's own configuration (the fleet) or is an
//! id the simulator drew itself; requests only look keys up, and a lookup cannot degrade the table.

use std::hash::{BuildHasherDefault, Hasher};

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::{BuildHasher, Hash};

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
