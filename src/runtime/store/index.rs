//! The contact index: contact ids to record numbers.
//!
//! An open-addressing table of record numbers, each with 32 bits of its
//! id's hash (the ids themselves live in the records), probed linearly and
//! kept at most half full: a lookup reads about one slot and compares the
//! id of the one record whose hash bits match. The slot for a hash is known
//! without reading the table, which lets the engine prefetch a contact in
//! two steps, some events ahead: first the slot, then the record it names.

/// Record numbers by id hash; contacts are never removed.
#[derive(Clone, Debug, Default)]
pub struct IdIndex {
    /// Record number + 1 (0 for an empty slot) and the hash's low 32 bits;
    /// the length is 0 or a power of two.
    slots: Vec<(u32, u32)>,
    len: usize,
}

impl IdIndex {
    pub fn with_capacity(n: usize) -> IdIndex {
        IdIndex {
            slots: vec![(0, 0); (n * 2).next_power_of_two().max(16)],
            len: 0,
        }
    }

    /// The home slot of `hash` (Fibonacci hashing: the top bits of a
    /// multiplication, so all of the hash counts).
    fn home(&self, hash: u64) -> usize {
        let bits = self.slots.len().trailing_zeros();
        (hash.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - bits)) as usize
    }

    /// The record among those filed under `hash` for which `is` holds.
    pub fn find(&self, hash: u64, mut is: impl FnMut(u32) -> bool) -> Option<u32> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut at = self.home(hash);
        loop {
            match self.slots[at] {
                (0, _) => return None,
                (s, tag) if tag == hash as u32 && is(s - 1) => return Some(s - 1),
                _ => at = (at + 1) & mask,
            }
        }
    }

    /// Files `record` under `hash`; `rehash` gives the hash of a record
    /// already filed (to grow the table).
    pub fn insert(&mut self, hash: u64, record: u32, rehash: impl Fn(u32) -> u64) {
        if (self.len + 1) * 2 > self.slots.len() {
            let mut bigger = IdIndex::with_capacity((self.len + 1) * 2);
            for &(s, _) in &self.slots {
                if s != 0 {
                    bigger.put(rehash(s - 1), s - 1);
                }
            }
            *self = bigger;
        }
        self.put(hash, record);
    }

    fn put(&mut self, hash: u64, record: u32) {
        let mask = self.slots.len() - 1;
        let mut at = self.home(hash);
        while self.slots[at].0 != 0 {
            at = (at + 1) & mask;
        }
        self.slots[at] = (record + 1, hash as u32);
        self.len += 1;
    }

    /// The home slot of `hash`, to prefetch.
    pub fn home_slot(&self, hash: u64) -> Option<&(u32, u32)> {
        self.slots.get(self.home(hash))
    }

    /// The first record filed under `hash` whose hash bits match: almost
    /// always the one `find` will return, but unverified.
    pub fn likely(&self, hash: u64) -> Option<u32> {
        self.find(hash, |_| true)
    }
}

#[cfg(test)]
mod tests {
    use super::IdIndex;

    #[test]
    fn finds_every_record_through_collisions_and_growth() {
        // Every record hashes to one of 3 values: long probe runs.
        let hash = |r: u32| u64::from(r % 3);
        let mut index = IdIndex::default();
        for r in 0..1000 {
            index.insert(hash(r), r, hash);
        }
        for r in 0..1000 {
            assert_eq!(index.find(hash(r), |x| x == r), Some(r));
        }
        assert_eq!(index.find(hash(5), |x| x == 5000), None);
        assert!(index.slots.len() >= 2000);
    }
}
