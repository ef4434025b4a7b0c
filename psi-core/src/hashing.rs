//! Hashing PSI items into bins: the receiver's cuckoo table and the
//! sender's simple hashing.
//!
//! # Hash functions
//!
//! There are up to [`MAX_HASH_FUNCTIONS`] hash functions. Function `i`
//! (0-based) has a public 16-byte seed
//! `seed_i = SHA-512("psi-core/hash-seed/v1" || u8(i))[..16]`; the seeds are
//! fixed constants of the protocol, so sender and receiver always agree.
//!
//! `bin_index(item, i, table_size)` XORs the item with `seed_i`, mixes the
//! two 64-bit halves with the MurmurHash3/SplitMix 64-bit finalizer and
//! reduces to `[0, table_size)` with Lemire's multiply-shift. This is not a
//! cryptographic hash and does not need to be: PSI items are OPRF outputs,
//! uniformly random to anyone without the server's key, so nobody can aim
//! items at chosen bins; the seeds only make the functions distinct.
//!
//! # Cuckoo table (receiver)
//!
//! Each bin holds at most one item. Insertion tries the item's candidate
//! bins in order; when all are full it runs a random walk (evict a random
//! candidate's occupant, move it to another of its candidates, ...) for at
//! most `max_evictions` steps. The walk's randomness comes from a ChaCha8
//! stream seeded deterministically from the public seeds and the table size,
//! so a given input always produces the same table.
//!
//! There is **no stash**: if the walk fails, insertion returns
//! [`Error::CuckooInsertFailed`] and the table is rolled back to its state
//! before that insertion. With `h = 3` and a load factor below ~0.9 failures
//! are vanishingly rare; the parameter chooser should keep the load lower.

use std::collections::HashMap;
use std::sync::OnceLock;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha512};

use crate::error::{Error, Result};

/// Maximum number of hash functions.
pub const MAX_HASH_FUNCTIONS: usize = 8;

/// Length in bytes of a [`HashedItem`].
pub const HASHED_ITEM_BYTES: usize = 16;

/// A 128-bit PSI item: the first part of an OPRF output.
///
/// Pseudorandom to anyone without the OPRF key. Only its low
/// `item_bit_count` bits take part in matching (see `field::ItemEncoder`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Default)]
pub struct HashedItem(pub [u8; HASHED_ITEM_BYTES]);

impl HashedItem {
    /// The item as a little-endian 128-bit integer.
    pub fn as_u128(&self) -> u128 {
        u128::from_le_bytes(self.0)
    }

    /// Builds an item from a little-endian 128-bit integer.
    pub fn from_u128(v: u128) -> Self {
        Self(v.to_le_bytes())
    }
}

fn derive_seed(i: usize) -> u128 {
    let mut h = Sha512::new();
    h.update(b"psi-core/hash-seed/v1");
    h.update([i as u8]);
    let d = h.finalize();
    let mut s = [0u8; 16];
    s.copy_from_slice(&d[..16]);
    u128::from_le_bytes(s)
}

fn seeds() -> &'static [u128; MAX_HASH_FUNCTIONS] {
    static SEEDS: OnceLock<[u128; MAX_HASH_FUNCTIONS]> = OnceLock::new();
    SEEDS.get_or_init(|| core::array::from_fn(derive_seed))
}

/// The public 16-byte seed of hash function `i`. The protocol uses
/// `i < MAX_HASH_FUNCTIONS`; any other `i` is still well defined (seed of
/// `i mod 256`) so that no index can panic.
pub fn hash_seed(i: usize) -> [u8; 16] {
    seed_u128(i).to_le_bytes()
}

fn seed_u128(i: usize) -> u128 {
    match seeds().get(i) {
        Some(s) => *s,
        None => derive_seed(i % 256),
    }
}

#[inline]
fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

/// Bin of `item` under hash function `i` in a table of `table_size` bins.
///
/// Returns a value in `[0, table_size)` (0 when `table_size` is 0, which
/// callers must reject). Cost: a few multiplications.
#[inline]
pub fn bin_index(item: &HashedItem, i: usize, table_size: usize) -> usize {
    let x = item.as_u128() ^ seed_u128(i);
    let lo = x as u64;
    let hi = (x >> 64) as u64;
    let v = fmix64(lo ^ fmix64(hi).rotate_left(31));
    ((v as u128 * table_size as u128) >> 64) as usize
}

fn check_hash_count(hash_count: usize) -> Result<()> {
    if hash_count == 0 || hash_count > MAX_HASH_FUNCTIONS {
        return Err(Error::InvalidHashFunctionCount(hash_count));
    }
    Ok(())
}

/// All candidate bins of `item` (sender side, simple hashing): the bins of
/// hash functions `0..hash_count`, in function order, with repeats removed
/// (two functions can land on the same bin). `hash_count` is clamped to
/// [`MAX_HASH_FUNCTIONS`].
pub fn simple_hash_bins(
    item: &HashedItem,
    hash_count: usize,
    table_size: usize,
) -> impl Iterator<Item = usize> + use<> {
    let mut bins = [0usize; MAX_HASH_FUNCTIONS];
    let mut len = 0;
    for i in 0..hash_count.min(MAX_HASH_FUNCTIONS) {
        let b = bin_index(item, i, table_size);
        if !bins[..len].contains(&b) {
            bins[len] = b;
            len += 1;
        }
    }
    bins.into_iter().take(len)
}

/// Default bound on evictions for one insertion: `500 * ceil(log2(table_size))`
/// (at least 500).
pub fn default_max_evictions(table_size: usize) -> usize {
    let log = (usize::BITS - table_size.saturating_sub(1).leading_zeros()).max(1) as usize;
    500 * log
}

/// An occupied cuckoo bin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CuckooEntry {
    /// The item stored in the bin.
    pub item: HashedItem,
    /// Which hash function placed it here.
    pub hash_function: usize,
}

/// The receiver's cuckoo hash table: every distinct item sits in exactly
/// one of its candidate bins, one item per bin.
///
/// ```
/// use psi_core::hashing::{CuckooTable, HashedItem};
/// let items: Vec<HashedItem> = (0..100u128).map(|i| HashedItem::from_u128(i * 7919)).collect();
/// let table = CuckooTable::build(&items, 256, 3).unwrap();
/// for (i, item) in items.iter().enumerate() {
///     let bin = table.location_of_input(i).unwrap();
///     assert_eq!(table.bin(bin).unwrap().item, *item);
/// }
/// ```
#[derive(Clone, Debug)]
pub struct CuckooTable {
    table_size: usize,
    hash_count: usize,
    max_evictions: usize,
    bins: Vec<Option<CuckooEntry>>,
    locations: HashMap<HashedItem, usize>,
    inputs: Vec<(usize, HashedItem)>,
    input_items: HashMap<usize, HashedItem>,
    rng: ChaCha8Rng,
}

impl CuckooTable {
    /// An empty table of `table_size` bins using `hash_count` hash functions
    /// and the default eviction bound.
    pub fn new(table_size: usize, hash_count: usize) -> Result<Self> {
        check_hash_count(hash_count)?;
        if table_size == 0 {
            return Err(Error::EmptyTable);
        }
        let mut h = Sha512::new();
        h.update(b"psi-core/cuckoo-walk/v1");
        for i in 0..hash_count {
            h.update(hash_seed(i));
        }
        h.update((table_size as u64).to_le_bytes());
        let d = h.finalize();
        let mut seed = [0u8; 32];
        seed.copy_from_slice(&d[..32]);
        Ok(Self {
            table_size,
            hash_count,
            max_evictions: default_max_evictions(table_size),
            bins: vec![None; table_size],
            locations: HashMap::new(),
            inputs: Vec::new(),
            input_items: HashMap::new(),
            rng: ChaCha8Rng::from_seed(seed),
        })
    }

    /// Sets the bound on evictions per insertion.
    pub fn with_max_evictions(mut self, max_evictions: usize) -> Self {
        self.max_evictions = max_evictions;
        self
    }

    /// Builds a table holding `items`, the input index of each being its
    /// position in the slice.
    pub fn build(items: &[HashedItem], table_size: usize, hash_count: usize) -> Result<Self> {
        let mut t = Self::new(table_size, hash_count)?;
        for (i, item) in items.iter().enumerate() {
            t.insert(*item, i)?;
        }
        Ok(t)
    }

    /// Inserts `item`, recording `input_index` as the caller's position for
    /// it. An item already present is not placed again; the new input index
    /// is recorded and maps to the existing bin.
    ///
    /// On [`Error::CuckooInsertFailed`] the table is unchanged.
    pub fn insert(&mut self, item: HashedItem, input_index: usize) -> Result<()> {
        if self.locations.contains_key(&item) {
            self.record_input(input_index, item);
            return Ok(());
        }
        // Try every candidate bin first.
        for f in 0..self.hash_count {
            let b = bin_index(&item, f, self.table_size);
            if self.bins[b].is_none() {
                self.place(b, item, f);
                self.record_input(input_index, item);
                return Ok(());
            }
        }
        // Random walk, with an undo log so failure leaves the table intact.
        let mut undo: Vec<(usize, Option<CuckooEntry>)> = Vec::new();
        let mut current = CuckooEntry {
            item,
            hash_function: usize::MAX,
        };
        for eviction in 0..=self.max_evictions {
            // Empty candidate for the current item?
            for f in 0..self.hash_count {
                let b = bin_index(&current.item, f, self.table_size);
                if self.bins[b].is_none() {
                    undo.push((b, None));
                    self.place(b, current.item, f);
                    self.record_input(input_index, item);
                    return Ok(());
                }
            }
            if eviction == self.max_evictions {
                break;
            }
            // Evict the occupant of a random candidate other than the bin the
            // current item just came from.
            let mut f = self.rng.random_range(0..self.hash_count);
            if f == current.hash_function && self.hash_count > 1 {
                f = (f + 1 + self.rng.random_range(0..self.hash_count - 1)) % self.hash_count;
            }
            let b = bin_index(&current.item, f, self.table_size);
            let previous = self.bins[b].take();
            undo.push((b, previous.clone()));
            self.place(b, current.item, f);
            match previous {
                Some(p) => current = p,
                None => {
                    self.record_input(input_index, item);
                    return Ok(());
                }
            }
        }
        // Roll back in reverse order.
        for (b, prev) in undo.into_iter().rev() {
            if let Some(e) = &self.bins[b] {
                self.locations.remove(&e.item);
            }
            if let Some(p) = &prev {
                self.locations.insert(p.item, b);
            }
            self.bins[b] = prev;
        }
        Err(Error::CuckooInsertFailed {
            input_index,
            evictions: self.max_evictions,
        })
    }

    fn record_input(&mut self, input_index: usize, item: HashedItem) {
        self.inputs.push((input_index, item));
        self.input_items.entry(input_index).or_insert(item);
    }

    fn place(&mut self, b: usize, item: HashedItem, f: usize) {
        self.bins[b] = Some(CuckooEntry {
            item,
            hash_function: f,
        });
        self.locations.insert(item, b);
    }

    /// Number of bins.
    pub fn table_size(&self) -> usize {
        self.table_size
    }

    /// Number of hash functions.
    pub fn hash_count(&self) -> usize {
        self.hash_count
    }

    /// Number of distinct items stored.
    pub fn len(&self) -> usize {
        self.locations.len()
    }

    /// True when no item is stored.
    pub fn is_empty(&self) -> bool {
        self.locations.is_empty()
    }

    /// Fraction of occupied bins.
    pub fn load_factor(&self) -> f64 {
        self.len() as f64 / self.table_size as f64
    }

    /// The bins, `None` for empty ones.
    pub fn bins(&self) -> &[Option<CuckooEntry>] {
        &self.bins
    }

    /// The entry of bin `b`, `None` when empty or out of range.
    pub fn bin(&self, b: usize) -> Option<&CuckooEntry> {
        self.bins.get(b).and_then(Option::as_ref)
    }

    /// The bin holding `item`, if present.
    pub fn location(&self, item: &HashedItem) -> Option<usize> {
        self.locations.get(item).copied()
    }

    /// The bin holding the item inserted with `input_index` (the first one
    /// recorded when the same index was used twice).
    pub fn location_of_input(&self, input_index: usize) -> Option<usize> {
        self.location(self.input_items.get(&input_index)?)
    }

    /// `(input_index, bin)` for every successful insertion, duplicates
    /// included, in insertion order.
    pub fn placements(&self) -> Vec<(usize, usize)> {
        self.inputs
            .iter()
            .filter_map(|(i, item)| self.location(item).map(|b| (*i, b)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn items(n: usize, salt: u64) -> Vec<HashedItem> {
        (0..n)
            .map(|i| {
                let mut h = Sha512::new();
                h.update(salt.to_le_bytes());
                h.update((i as u64).to_le_bytes());
                let d = h.finalize();
                let mut b = [0u8; 16];
                b.copy_from_slice(&d[..16]);
                HashedItem(b)
            })
            .collect()
    }

    #[test]
    fn seeds_are_distinct_and_stable() {
        let s: Vec<_> = (0..MAX_HASH_FUNCTIONS).map(hash_seed).collect();
        for i in 0..s.len() {
            for j in 0..i {
                assert_ne!(s[i], s[j]);
            }
        }
        assert_eq!(hash_seed(3), hash_seed(3));
        assert_eq!(
            hash_seed(3).to_vec(),
            Sha512::digest(b"psi-core/hash-seed/v1\x03")[..16].to_vec()
        );
    }

    #[test]
    fn bin_index_in_range_and_spread() {
        let its = items(20_000, 1);
        let size = 1000;
        let mut counts = vec![0usize; size];
        for it in &its {
            for f in 0..3 {
                let b = bin_index(it, f, size);
                assert!(b < size);
                counts[b] += 1;
            }
        }
        // 60 per bin on average; a decent hash never gets near 0 or 150.
        assert!(counts.iter().all(|&c| c > 20 && c < 120), "{counts:?}");
        assert_eq!(bin_index(&its[0], 0, 0), 0);
    }

    #[test]
    fn invalid_construction() {
        assert_eq!(
            CuckooTable::new(10, 0).unwrap_err(),
            Error::InvalidHashFunctionCount(0)
        );
        assert_eq!(
            CuckooTable::new(10, 9).unwrap_err(),
            Error::InvalidHashFunctionCount(9)
        );
        assert_eq!(CuckooTable::new(0, 3).unwrap_err(), Error::EmptyTable);
    }

    #[test]
    fn receiver_location_among_sender_candidates() {
        for h in 1..=4 {
            let its = items(300, h as u64);
            // Keep the load below each h's threshold (h = 2: 0.5, h = 3: 0.92).
            let size = match h {
                1 => 100_000,
                2 => 2048,
                _ => 512,
            };
            let t = CuckooTable::build(&its, size, h).unwrap();
            assert_eq!(t.len(), its.len());
            for (i, it) in its.iter().enumerate() {
                let b = t.location_of_input(i).unwrap();
                let entry = t.bin(b).unwrap();
                assert_eq!(entry.item, *it);
                assert_eq!(bin_index(it, entry.hash_function, size), b);
                assert!(simple_hash_bins(it, h, size).any(|c| c == b));
            }
        }
    }

    #[test]
    fn high_load_succeeds_with_three_functions() {
        // 85% load with h = 3 is well under the ~91.8% threshold.
        let size = 4096;
        let its = items(size * 85 / 100, 7);
        let t = CuckooTable::build(&its, size, 3).unwrap();
        assert!((t.load_factor() - 0.85).abs() < 0.01);
        let occupied = t.bins().iter().filter(|b| b.is_some()).count();
        assert_eq!(occupied, its.len());
    }

    #[test]
    fn overfull_fails_cleanly_and_rolls_back() {
        let size = 64;
        let its = items(80, 9);
        let mut t = CuckooTable::new(size, 3).unwrap().with_max_evictions(50);
        let mut failed = None;
        for (i, it) in its.iter().enumerate() {
            let before: Vec<_> = t.bins().to_vec();
            match t.insert(*it, i) {
                Ok(()) => {}
                Err(e) => {
                    assert!(
                        matches!(e, Error::CuckooInsertFailed { input_index, evictions: 50 } if input_index == i)
                    );
                    assert_eq!(t.bins(), &before[..]);
                    failed = Some(i);
                    break;
                }
            }
        }
        let failed = failed.expect("more items than bins must fail");
        assert!(failed <= size);
        // Everything inserted before is still findable and consistent.
        for (i, it) in its[..failed].iter().enumerate() {
            let b = t.location_of_input(i).unwrap();
            assert_eq!(t.bin(b).unwrap().item, *it);
        }
        assert_eq!(t.location(&its[failed]), None);
    }

    #[test]
    fn duplicates_placed_once_mapped_for_all() {
        let mut its = items(50, 3);
        its.push(its[10]);
        its.push(its[10]);
        let t = CuckooTable::build(&its, 128, 3).unwrap();
        assert_eq!(t.len(), 50);
        let b = t.location_of_input(10).unwrap();
        assert_eq!(t.location_of_input(50), Some(b));
        assert_eq!(t.location_of_input(51), Some(b));
        assert_eq!(t.placements().len(), 52);
        assert_eq!(t.bins().iter().filter(|e| e.is_some()).count(), 50);
    }

    #[test]
    fn deterministic() {
        let its = items(900, 5);
        let a = CuckooTable::build(&its, 1024, 3).unwrap();
        let b = CuckooTable::build(&its, 1024, 3).unwrap();
        assert_eq!(a.bins(), b.bins());
        assert_eq!(a.placements(), b.placements());
    }

    #[test]
    fn default_evictions() {
        assert_eq!(default_max_evictions(1), 500);
        assert_eq!(default_max_evictions(1024), 5000);
        assert_eq!(default_max_evictions(1025), 5500);
    }

    proptest! {
        #[test]
        fn simple_hash_bins_dedup(v in any::<u128>(), h in 1usize..=8, size in 1usize..50) {
            let item = HashedItem::from_u128(v);
            let bins: Vec<_> = simple_hash_bins(&item, h, size).collect();
            let mut sorted = bins.clone();
            sorted.sort_unstable();
            sorted.dedup();
            prop_assert_eq!(sorted.len(), bins.len());
            for f in 0..h {
                prop_assert!(bins.contains(&bin_index(&item, f, size)));
            }
        }
    }
}
