//! Field elements of `Z_t` for a prime plaintext modulus `t < 2^61`:
//! primality, and the encodings of items and labels as field elements.
//!
//! # Items
//!
//! A 128-bit [`HashedItem`] is matched on its low `item_bits` bits only,
//! split little-endian into `felts_per_item` chunks of
//! `bits_per_felt = floor(log2 t)` bits (every chunk is then `< 2^bits_per_felt <= t`).
//! `item_bits = min(128, felts_per_item * bits_per_felt)` for the standard
//! parameters. Two different items whose low `item_bits` agree are
//! indistinguishable to the protocol: this truncation is the source of
//! false positives (see `PsiParams::false_positive_log2`).
//!
//! # Labels
//!
//! Label bytes are read as a little-endian bit stream and cut into
//! `bits`-bit field elements (`bits <= bits_per_felt`), the last one
//! zero-padded; [`felts_to_label`] reverses it.

use he_core::Modulus;

use crate::error::{Error, Result};
use crate::hashing::HashedItem;

/// Deterministic Miller-Rabin, exact for every `u64` (he-core's test).
pub use he_core::modulus::is_prime;

/// The modulus for a prime plaintext modulus `t` (`3 <= t < 2^61`).
pub fn prime_modulus(t: u64) -> Result<Modulus> {
    if t < 3 || !is_prime(t) {
        return Err(Error::NotPrime(t));
    }
    Modulus::new(t).map_err(|_| Error::NotPrime(t))
}

/// `floor(log2 t)`: the bits every field element can carry losslessly.
pub fn bits_per_felt(t: &Modulus) -> u32 {
    t.bits() - 1
}

/// Largest number of field elements [`label_to_felts`] produces.
pub const MAX_LABEL_FELTS: usize = 1 << 20;

/// Number of `bits`-bit field elements needed for `byte_count` bytes.
/// Returns 0 when `bits` is 0.
pub fn felts_for_bytes(byte_count: usize, bits: u32) -> usize {
    if bits == 0 {
        return 0;
    }
    byte_count.saturating_mul(8).div_ceil(bits as usize)
}

/// Splits items into field elements (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ItemEncoder {
    felts_per_item: usize,
    bits_per_felt: u32,
    item_bits: u32,
}

impl ItemEncoder {
    /// An encoder matching the low `item_bits` bits of each item over
    /// `felts_per_item` elements of `Z_t`.
    ///
    /// Errors with [`Error::InsufficientItemBits`] when
    /// `felts_per_item * floor(log2 t) < item_bits`, and with
    /// [`Error::InvalidParams`] when `item_bits` is 0 or above 128 or
    /// `felts_per_item` is 0.
    pub fn new(t: &Modulus, felts_per_item: usize, item_bits: u32) -> Result<Self> {
        if felts_per_item == 0 {
            return Err(Error::InvalidParams {
                field: "felts_per_item",
                reason: "must be positive".into(),
            });
        }
        if item_bits == 0 || item_bits > 128 {
            return Err(Error::InvalidParams {
                field: "item_bits",
                reason: format!("{item_bits} is outside 1..=128"),
            });
        }
        let bpf = bits_per_felt(t);
        let available = (felts_per_item as u64 * bpf as u64).min(128) as u32;
        if available < item_bits {
            return Err(Error::InsufficientItemBits {
                available,
                required: item_bits,
            });
        }
        Ok(Self {
            felts_per_item,
            bits_per_felt: bpf,
            item_bits,
        })
    }

    /// Number of field elements per item.
    pub fn felts_per_item(&self) -> usize {
        self.felts_per_item
    }

    /// Bits carried by each field element.
    pub fn bits_per_felt(&self) -> u32 {
        self.bits_per_felt
    }

    /// Item bits that are actually matched.
    pub fn item_bits(&self) -> u32 {
        self.item_bits
    }

    fn mask(&self) -> u128 {
        if self.item_bits >= 128 {
            u128::MAX
        } else {
            (1u128 << self.item_bits) - 1
        }
    }

    /// The item's field elements, low bits first (`felts_per_item` values,
    /// each `< 2^bits_per_felt`).
    pub fn encode(&self, item: &HashedItem) -> Vec<u64> {
        let mut v = item.as_u128() & self.mask();
        let chunk_mask = (1u128 << self.bits_per_felt) - 1;
        (0..self.felts_per_item)
            .map(|_| {
                let c = (v & chunk_mask) as u64;
                v = v.checked_shr(self.bits_per_felt).unwrap_or(0);
                c
            })
            .collect()
    }

    /// Whether two items agree on at least one field element (the sender
    /// keeps such items apart in labeled bundles). No allocation.
    pub fn shares_felt(&self, a: &HashedItem, b: &HashedItem) -> bool {
        let x = (a.as_u128() ^ b.as_u128()) & self.mask();
        let chunk = (1u128 << self.bits_per_felt) - 1;
        (0..self.felts_per_item).any(|i| {
            let shift = i as u32 * self.bits_per_felt;
            shift >= 128 || (x >> shift) & chunk == 0
        })
    }

    /// Reassembles the matched bits from field elements (the inverse of
    /// [`encode`](Self::encode) on the low `item_bits` bits).
    pub fn decode(&self, felts: &[u64]) -> Result<u128> {
        if felts.len() != self.felts_per_item {
            return Err(Error::FeltCountMismatch {
                expected: self.felts_per_item,
                got: felts.len(),
            });
        }
        let mut v = 0u128;
        for (i, &f) in felts.iter().enumerate() {
            if f >> self.bits_per_felt != 0 {
                return Err(Error::FeltOutOfRange {
                    value: f,
                    bits: self.bits_per_felt,
                });
            }
            let shift = i as u32 * self.bits_per_felt;
            if shift < 128 {
                v |= (f as u128) << shift;
            }
        }
        Ok(v & self.mask())
    }
}

/// Packs `label` into `felts_count` field elements of `bits` bits each
/// (`1 <= bits <= 60`). Errors when the label does not fit.
pub fn label_to_felts(label: &[u8], felts_count: usize, bits: u32) -> Result<Vec<u64>> {
    check_bits(bits)?;
    if felts_count > MAX_LABEL_FELTS {
        return Err(Error::TooLarge {
            len: felts_count as u64,
            max: MAX_LABEL_FELTS as u64,
        });
    }
    let capacity = felts_count as u128 * bits as u128;
    if label.len() as u128 * 8 > capacity {
        return Err(Error::LabelTooLong {
            len: label.len(),
            max: (capacity / 8) as usize,
        });
    }
    let mut out = Vec::with_capacity(felts_count);
    let mut acc: u128 = 0;
    let mut acc_bits = 0u32;
    let mut bytes = label.iter();
    let mask = (1u128 << bits) - 1;
    for _ in 0..felts_count {
        while acc_bits < bits {
            match bytes.next() {
                Some(&b) => {
                    acc |= (b as u128) << acc_bits;
                    acc_bits += 8;
                }
                None => break,
            }
        }
        out.push((acc & mask) as u64);
        acc >>= bits;
        acc_bits = acc_bits.saturating_sub(bits);
    }
    Ok(out)
}

/// Unpacks `byte_count` label bytes from `bits`-bit field elements.
/// Errors when an element exceeds `bits` bits or there are too few.
pub fn felts_to_label(felts: &[u64], byte_count: usize, bits: u32) -> Result<Vec<u8>> {
    check_bits(bits)?;
    let needed = felts_for_bytes(byte_count, bits);
    if needed > MAX_LABEL_FELTS {
        return Err(Error::TooLarge {
            len: needed as u64,
            max: MAX_LABEL_FELTS as u64,
        });
    }
    if felts.len() < needed {
        return Err(Error::FeltCountMismatch {
            expected: needed,
            got: felts.len(),
        });
    }
    let mut out = Vec::with_capacity(byte_count);
    let mut acc: u128 = 0;
    let mut acc_bits = 0u32;
    let mut it = felts.iter();
    while out.len() < byte_count {
        while acc_bits < 8 {
            match it.next() {
                Some(&f) => {
                    if f >> bits != 0 {
                        return Err(Error::FeltOutOfRange { value: f, bits });
                    }
                    acc |= (f as u128) << acc_bits;
                    acc_bits += bits;
                }
                None => {
                    return Err(Error::FeltCountMismatch {
                        expected: needed,
                        got: felts.len(),
                    });
                }
            }
        }
        out.push(acc as u8);
        acc >>= 8;
        acc_bits -= 8;
    }
    Ok(out)
}

fn check_bits(bits: u32) -> Result<()> {
    if bits == 0 || bits > 60 {
        return Err(Error::InvalidParams {
            field: "bits",
            reason: format!("{bits} is outside 1..=60"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn primality() {
        let primes = [
            2u64,
            3,
            65537,
            40961,
            786433,
            1_152_921_504_606_584_833,
            (1 << 61) - 1,
        ];
        for p in primes {
            assert!(is_prime(p), "{p}");
        }
        let composites = [
            0u64,
            1,
            4,
            65535,
            561,
            3_215_031_751,
            1 << 60,
            4_294_967_297,
        ];
        for c in composites {
            assert!(!is_prime(c), "{c}");
        }
        // Cross-check against trial division for small numbers.
        for n in 0u64..3000 {
            let naive = n >= 2 && (2..n).take_while(|d| d * d <= n).all(|d| n % d != 0);
            assert_eq!(is_prime(n), naive, "{n}");
        }
        assert!(prime_modulus(65537).is_ok());
        assert_eq!(prime_modulus(65535).unwrap_err(), Error::NotPrime(65535));
        assert_eq!(prime_modulus(2).unwrap_err(), Error::NotPrime(2));
    }

    #[test]
    fn item_encoder_limits() {
        let t = prime_modulus(65537).unwrap(); // 16 bits per felt
        assert_eq!(bits_per_felt(&t), 16);
        assert!(ItemEncoder::new(&t, 8, 128).is_ok());
        assert_eq!(
            ItemEncoder::new(&t, 4, 80).unwrap_err(),
            Error::InsufficientItemBits {
                available: 64,
                required: 80
            }
        );
        assert!(ItemEncoder::new(&t, 0, 8).is_err());
        assert!(ItemEncoder::new(&t, 9, 129).is_err());
    }

    #[test]
    fn item_encoding_layout() {
        let t = prime_modulus(65537).unwrap();
        let e = ItemEncoder::new(&t, 3, 40).unwrap();
        let item = HashedItem::from_u128(0x1234_5678_9abc_def0_1122_3344_5566_7788);
        // low 40 bits: 0x44_5566_7788
        assert_eq!(e.encode(&item), vec![0x7788, 0x5566, 0x44]);
        assert_eq!(e.decode(&e.encode(&item)).unwrap(), 0x44_5566_7788);
        assert_eq!(
            e.decode(&[0x10000, 0, 0]).unwrap_err(),
            Error::FeltOutOfRange {
                value: 0x10000,
                bits: 16
            }
        );
    }

    #[test]
    fn label_packing_examples() {
        assert_eq!(felts_for_bytes(3, 16), 2);
        assert_eq!(
            label_to_felts(&[1, 2, 3], 2, 16).unwrap(),
            vec![0x0201, 0x03]
        );
        assert_eq!(
            felts_to_label(&[0x0201, 0x03], 3, 16).unwrap(),
            vec![1, 2, 3]
        );
        assert!(matches!(
            label_to_felts(&[1, 2, 3], 1, 16),
            Err(Error::LabelTooLong { .. })
        ));
        assert!(matches!(
            felts_to_label(&[0x10000, 0], 3, 16),
            Err(Error::FeltOutOfRange { .. })
        ));
        assert!(matches!(
            felts_to_label(&[1], 3, 16),
            Err(Error::FeltCountMismatch { .. })
        ));
        assert!(label_to_felts(&[], 0, 0).is_err());
    }

    proptest! {
        #[test]
        fn item_round_trip(v in any::<u128>(), bits_t in prop::sample::select(vec![65537u64, 1_032_193, 4_295_049_217, 1_152_921_504_606_584_833]), felts in 1usize..10) {
            let t = prime_modulus(bits_t).unwrap();
            let bpf = bits_per_felt(&t);
            let avail = ((felts as u32) * bpf).min(128);
            let e = ItemEncoder::new(&t, felts, avail).unwrap();
            let f = e.encode(&HashedItem::from_u128(v));
            prop_assert_eq!(f.len(), felts);
            for &x in &f { prop_assert!(x < t.value()); }
            let mask = if avail == 128 { u128::MAX } else { (1u128 << avail) - 1 };
            prop_assert_eq!(e.decode(&f).unwrap(), v & mask);
        }

        #[test]
        fn label_round_trip(label in proptest::collection::vec(any::<u8>(), 0..100), bits in 1u32..=60) {
            let n = felts_for_bytes(label.len(), bits);
            let f = label_to_felts(&label, n, bits).unwrap();
            prop_assert_eq!(f.len(), n);
            for &x in &f { prop_assert!(x >> bits == 0); }
            prop_assert_eq!(felts_to_label(&f, label.len(), bits).unwrap(), label);
        }

        #[test]
        fn felts_to_label_never_panics(felts in proptest::collection::vec(any::<u64>(), 0..20), n in 0usize..200, bits in 0u32..70) {
            let _ = felts_to_label(&felts, n, bits);
        }
    }
}
