//! Arithmetic modulo word-sized primes: Barrett and Shoup multiplication,
//! lazy reduction, NTT-friendly prime generation and primitive roots.
//!
//! Every modulus handled here is below 2^61, so that values in `[0, 4p)`
//! (the range Harvey's lazy butterflies work in) fit a `u64` with room to
//! spare, and a product of two reduced values fits 122 bits.

use crate::error::{Error, Result};

/// Largest supported modulus bit size.
pub const MAX_MODULUS_BITS: u32 = 61;

/// A modulus `p` with `2 <= p < 2^61` and its precomputed Barrett constant.
///
/// Cheap to copy (three words). Arithmetic methods take and return values
/// in `[0, p)` unless the name says otherwise (`_lazy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Modulus {
    value: u64,
    /// `floor(2^128 / p)` as (low, high) words.
    ratio: (u64, u64),
    bits: u32,
}

impl Modulus {
    /// Builds a modulus. Errors when `p < 2` or `p >= 2^61`.
    pub fn new(p: u64) -> Result<Self> {
        if p < 2 || p >> MAX_MODULUS_BITS != 0 {
            return Err(Error::InvalidParameters(format!(
                "modulus {p} is outside [2, 2^{MAX_MODULUS_BITS})"
            )));
        }
        // floor(2^128 / p) = floor((2^128 - 1) / p) unless p divides 2^128,
        // which for p >= 2 only happens for powers of two: then add one.
        let mut r = u128::MAX / p as u128;
        if p.is_power_of_two() {
            r += 1;
        }
        Ok(Self {
            value: p,
            ratio: (r as u64, (r >> 64) as u64),
            bits: 64 - p.leading_zeros(),
        })
    }

    /// The modulus `p`.
    #[inline(always)]
    pub const fn value(&self) -> u64 {
        self.value
    }

    /// Number of significant bits of `p`.
    #[inline(always)]
    pub const fn bits(&self) -> u32 {
        self.bits
    }

    /// Reduces any `u64`.
    #[inline(always)]
    pub fn reduce(&self, x: u64) -> u64 {
        // q = floor(x * floor(2^128/p) / 2^128) computed from the high word
        // only: floor(x * r_hi / 2^64) underestimates the quotient by at
        // most 2, hence the correction loop below runs at most twice.
        let q = ((x as u128 * self.ratio.1 as u128) >> 64) as u64;
        let mut r = x.wrapping_sub(q.wrapping_mul(self.value));
        while r >= self.value {
            r -= self.value;
        }
        r
    }

    /// Barrett reduction of a 128-bit value below `2^128`.
    #[inline(always)]
    pub fn reduce_u128(&self, x: u128) -> u64 {
        let (xl, xh) = (x as u64, (x >> 64) as u64);
        let (rl, rh) = self.ratio;
        // High 128 bits of the 256-bit product x * ratio, up to carries
        // from the discarded low word (an underestimate by at most 1 unit).
        let carry = ((xl as u128 * rl as u128) >> 64) as u64;
        let t = xl as u128 * rh as u128 + carry as u128;
        let t2 = xh as u128 * rl as u128 + (t as u64) as u128;
        let q = xh
            .wrapping_mul(rh)
            .wrapping_add((t >> 64) as u64)
            .wrapping_add((t2 >> 64) as u64);
        let mut r = xl.wrapping_sub(q.wrapping_mul(self.value));
        while r >= self.value {
            r -= self.value;
        }
        r
    }

    /// `a + b mod p` for `a, b < p`.
    #[inline(always)]
    pub fn add(&self, a: u64, b: u64) -> u64 {
        let s = a + b;
        if s >= self.value { s - self.value } else { s }
    }

    /// `a - b mod p` for `a, b < p`.
    #[inline(always)]
    pub fn sub(&self, a: u64, b: u64) -> u64 {
        if a >= b { a - b } else { a + self.value - b }
    }

    /// `-a mod p` for `a < p`.
    #[inline(always)]
    pub fn neg(&self, a: u64) -> u64 {
        if a == 0 { 0 } else { self.value - a }
    }

    /// `a * b mod p` for any `a, b` whose product is below `2^128`.
    #[inline(always)]
    pub fn mul(&self, a: u64, b: u64) -> u64 {
        self.reduce_u128(a as u128 * b as u128)
    }

    /// The Shoup constant `floor(w * 2^64 / p)` of a fixed multiplicand `w < p`.
    #[inline(always)]
    pub fn shoup(&self, w: u64) -> u64 {
        debug_assert!(w < self.value);
        (((w as u128) << 64) / self.value as u128) as u64
    }

    /// `x * w mod p` in `[0, 2p)` for any `x < 2^64`, given `ws = shoup(w)`.
    #[inline(always)]
    pub fn mul_shoup_lazy(&self, x: u64, w: u64, ws: u64) -> u64 {
        let q = ((x as u128 * ws as u128) >> 64) as u64;
        x.wrapping_mul(w).wrapping_sub(q.wrapping_mul(self.value))
    }

    /// `x * w mod p` in `[0, p)` for any `x < 2^64`, given `ws = shoup(w)`.
    #[inline(always)]
    pub fn mul_shoup(&self, x: u64, w: u64, ws: u64) -> u64 {
        let r = self.mul_shoup_lazy(x, w, ws);
        if r >= self.value { r - self.value } else { r }
    }

    /// `a^e mod p` (square and multiply, variable time in `e`: public exponents only).
    pub fn pow_vt(&self, a: u64, mut e: u64) -> u64 {
        let mut base = self.reduce(a);
        let mut acc = 1 % self.value;
        while e > 0 {
            if e & 1 == 1 {
                acc = self.mul(acc, base);
            }
            base = self.mul(base, base);
            e >>= 1;
        }
        acc
    }

    /// Inverse of `a` modulo a prime `p` (Fermat), `None` for `a = 0 mod p`.
    pub fn inv_vt(&self, a: u64) -> Option<u64> {
        let a = self.reduce(a);
        if a == 0 {
            None
        } else {
            Some(self.pow_vt(a, self.value - 2))
        }
    }

    /// Maps `x < p` to its centered representative in `(-p/2, p/2]`.
    #[inline(always)]
    pub fn center(&self, x: u64) -> i64 {
        if x > self.value >> 1 {
            x as i64 - self.value as i64
        } else {
            x as i64
        }
    }

    /// Reduces a signed value.
    #[inline(always)]
    pub fn reduce_i64(&self, x: i64) -> u64 {
        if x >= 0 {
            self.reduce(x as u64)
        } else {
            self.neg(self.reduce(x.unsigned_abs()))
        }
    }
}

/// Deterministic Miller-Rabin primality test, exact for every `u64`.
pub fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    const SMALL: [u64; 12] = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37];
    for p in SMALL {
        if n.is_multiple_of(p) {
            return n == p;
        }
    }
    let d = (n - 1) >> (n - 1).trailing_zeros();
    let s = (n - 1).trailing_zeros();
    let mulmod = |a: u64, b: u64| ((a as u128 * b as u128) % n as u128) as u64;
    let powmod = |mut b: u64, mut e: u64| {
        let mut r = 1u64;
        while e > 0 {
            if e & 1 == 1 {
                r = mulmod(r, b);
            }
            b = mulmod(b, b);
            e >>= 1;
        }
        r
    };
    // These twelve bases are a proven deterministic witness set for n < 3.3e24.
    'witness: for a in SMALL {
        let mut x = powmod(a, d);
        if x == 1 || x == n - 1 {
            continue;
        }
        for _ in 1..s {
            x = mulmod(x, x);
            if x == n - 1 {
                continue 'witness;
            }
        }
        return false;
    }
    true
}

/// Generates `count` distinct primes of exactly `bits` bits with
/// `p = 1 mod 2n`, largest first, skipping any prime in `exclude`.
///
/// Deterministic: the same arguments always give the same primes.
pub fn generate_ntt_primes(bits: u32, count: usize, n: usize, exclude: &[u64]) -> Result<Vec<u64>> {
    if !(2..=MAX_MODULUS_BITS).contains(&bits) {
        return Err(Error::InvalidParameters(format!(
            "prime size {bits} bits is outside 2..={MAX_MODULUS_BITS}"
        )));
    }
    if !n.is_power_of_two() {
        return Err(Error::InvalidParameters(format!(
            "degree {n} is not a power of two"
        )));
    }
    let step = 2 * n as u64;
    let lower = 1u64 << (bits - 1);
    let upper = if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    // Largest candidate = 1 mod 2n that is below 2^bits.
    let mut candidate = upper - (upper % step) + 1;
    if candidate > upper {
        candidate -= step;
    }
    let mut primes = Vec::with_capacity(count);
    while primes.len() < count {
        if candidate < lower || candidate <= step {
            return Err(Error::InvalidParameters(format!(
                "not enough {bits}-bit primes = 1 mod {step} (found {} of {count})",
                primes.len()
            )));
        }
        if is_prime(candidate) && !exclude.contains(&candidate) {
            primes.push(candidate);
        }
        candidate -= step;
    }
    Ok(primes)
}

/// The smallest primitive `2n`-th root of unity modulo the prime `p`
/// (`n` a power of two, `p = 1 mod 2n`).
pub fn minimal_primitive_root(p: &Modulus, n: usize) -> Result<u64> {
    let two_n = 2 * n as u64;
    let pv = p.value();
    if !n.is_power_of_two() || !(pv - 1).is_multiple_of(two_n) || !is_prime(pv) {
        return Err(Error::InvalidParameters(format!(
            "{pv} is not a prime = 1 mod {two_n}"
        )));
    }
    let exp = (pv - 1) / two_n;
    // A 2n-th root r is primitive iff r^n = -1 (2n is a power of two).
    let mut root = None;
    for x in 2..pv {
        let r = p.pow_vt(x, exp);
        if p.pow_vt(r, n as u64) == pv - 1 {
            root = Some(r);
            break;
        }
    }
    let root =
        root.ok_or_else(|| Error::InvalidParameters(format!("no primitive root mod {pv}")))?;
    // Among the primitive roots (the odd powers of `root`) pick the smallest,
    // so plans are canonical whatever generator was found first.
    let sq = p.mul(root, root);
    let mut best = root;
    let mut cur = root;
    for _ in 0..n {
        cur = p.mul(cur, sq);
        best = best.min(cur);
    }
    Ok(best)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const PRIMES: [u64; 5] = [
        1_073_479_681,             // 30 bits
        1_099_510_054_913,         // 40 bits
        1_125_899_902_124_033,     // 50 bits
        36_028_797_005_856_769,    // 55 bits
        1_152_921_504_606_584_833, // 60 bits
    ];

    #[test]
    fn known_primes_are_prime_and_ntt_friendly() {
        for p in PRIMES {
            assert!(is_prime(p), "{p}");
            assert_eq!((p - 1) % (2 * 32768), 0, "{p}");
        }
        assert!(!is_prime(1));
        assert!(!is_prime(561)); // Carmichael
        assert!(!is_prime(3_215_031_751)); // strong pseudoprime to 2,3,5,7
        assert!(is_prime(2));
        assert!(is_prime((1 << 61) - 1));
        assert!(!is_prime(u64::MAX));
    }

    #[test]
    fn generated_primes_are_deterministic_and_exclusive() {
        let a = generate_ntt_primes(50, 3, 8192, &[]).unwrap();
        let b = generate_ntt_primes(50, 3, 8192, &[a[0]]).unwrap();
        assert_eq!(a[1], b[0]);
        for p in &a {
            assert!(is_prime(*p));
            assert_eq!(64 - p.leading_zeros(), 50);
            assert_eq!(p % 16384, 1);
        }
        assert!(generate_ntt_primes(14, 5, 8192, &[]).is_err());
    }

    #[test]
    fn primitive_root_has_order_2n() {
        for p in PRIMES {
            let m = Modulus::new(p).unwrap();
            for n in [1024usize, 32768] {
                let r = minimal_primitive_root(&m, n).unwrap();
                assert_eq!(m.pow_vt(r, n as u64), p - 1);
                assert_eq!(m.pow_vt(r, 2 * n as u64), 1);
            }
        }
    }

    #[test]
    fn boundary_values() {
        for p in PRIMES {
            let m = Modulus::new(p).unwrap();
            let top = p - 1;
            assert_eq!(m.mul(top, top), 1);
            assert_eq!(m.add(top, 1), 0);
            assert_eq!(m.sub(0, 1), top);
            assert_eq!(m.neg(0), 0);
            assert_eq!(m.reduce(u64::MAX), (u64::MAX % p));
            assert_eq!(m.reduce_u128(u128::MAX), (u128::MAX % p as u128) as u64);
            let ws = m.shoup(top);
            assert_eq!(m.mul_shoup(top, top, ws), 1);
            assert_eq!(
                m.mul_shoup(u64::MAX, top, ws),
                m.mul(m.reduce(u64::MAX), top)
            );
            assert_eq!(m.inv_vt(0), None);
            assert_eq!(m.mul(m.inv_vt(top).unwrap(), top), 1);
        }
        assert!(Modulus::new(1).is_err());
        assert!(Modulus::new(1 << 61).is_err());
    }

    proptest! {
        #[test]
        fn barrett_and_shoup_match_u128(idx in 0usize..5, a in any::<u64>(), b in any::<u64>(), x in any::<u128>()) {
            let p = PRIMES[idx];
            let m = Modulus::new(p).unwrap();
            let (ar, br) = (a % p, b % p);
            prop_assert_eq!(m.mul(ar, br), ((ar as u128 * br as u128) % p as u128) as u64);
            prop_assert_eq!(m.reduce_u128(x), (x % p as u128) as u64);
            prop_assert_eq!(m.reduce(a), a % p);
            let lazy = m.mul_shoup_lazy(a, br, m.shoup(br));
            prop_assert!(lazy < 2 * p);
            prop_assert_eq!(lazy % p, ((a as u128 * br as u128) % p as u128) as u64);
            prop_assert_eq!(m.add(ar, br), ((ar as u128 + br as u128) % p as u128) as u64);
            prop_assert_eq!(m.sub(ar, br), ((ar as u128 + p as u128 - br as u128) % p as u128) as u64);
        }
    }
}
