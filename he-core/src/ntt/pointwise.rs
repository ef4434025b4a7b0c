//! Element-wise modular arithmetic over residue vectors, dispatched at run
//! time like the NTT: AVX-512F/DQ, then AVX2 (see
//! [`x86_64::pointwise`](super::x86_64::pointwise)), then the scalar loops
//! in [`scalar`]. Every path returns fully reduced values, so results are
//! the same bit for bit whichever runs.
//!
//! Operands are in `[0, p)` unless a function says otherwise, and the
//! modulus is below 2^61.

use crate::modulus::Modulus;

/// The portable loops, also the reference the SIMD kernels are tested against.
pub(crate) mod scalar {
    /// `a = a + b mod p`.
    #[inline]
    pub(crate) fn add_assign(p: u64, a: &mut [u64], b: &[u64]) {
        for (x, &y) in a.iter_mut().zip(b) {
            let s = *x + y;
            *x = if s >= p { s - p } else { s };
        }
    }

    /// `a = a - b mod p`.
    #[inline]
    pub(crate) fn sub_assign(p: u64, a: &mut [u64], b: &[u64]) {
        for (x, &y) in a.iter_mut().zip(b) {
            let d = *x + p - y;
            *x = if d >= p { d - p } else { d };
        }
    }

    /// `a = -a mod p`.
    #[inline]
    pub(crate) fn neg_assign(p: u64, a: &mut [u64]) {
        for x in a.iter_mut() {
            let d = p - *x;
            *x = if d >= p { d - p } else { d };
        }
    }

    /// `x * w mod p` in `[0, p)` from the Shoup constant `ws` of `w`.
    #[inline(always)]
    pub(crate) fn mul_shoup(p: u64, x: u64, w: u64, ws: u64) -> u64 {
        let q = ((x as u128 * ws as u128) >> 64) as u64;
        let r = x.wrapping_mul(w).wrapping_sub(q.wrapping_mul(p));
        if r >= p { r - p } else { r }
    }

    /// `a = a * w mod p` slot-wise.
    #[inline]
    pub(crate) fn mul_shoup_assign(p: u64, a: &mut [u64], w: &[u64], ws: &[u64]) {
        for ((x, &y), &s) in a.iter_mut().zip(w).zip(ws) {
            *x = mul_shoup(p, *x, y, s);
        }
    }

    /// `acc = acc + x * w mod p` slot-wise.
    #[inline]
    pub(crate) fn mul_shoup_add_assign(p: u64, acc: &mut [u64], x: &[u64], w: &[u64], ws: &[u64]) {
        for (((o, &a), &y), &s) in acc.iter_mut().zip(x).zip(w).zip(ws) {
            let r = *o + mul_shoup(p, a, y, s);
            *o = if r >= p { r - p } else { r };
        }
    }

    /// `a = a * w mod p` for one constant `w`.
    #[inline]
    pub(crate) fn mul_scalar_shoup_assign(p: u64, a: &mut [u64], w: u64, ws: u64) {
        for x in a.iter_mut() {
            *x = mul_shoup(p, *x, w, ws);
        }
    }

    /// `acc = acc + x * w mod p` for one constant `w`.
    #[inline]
    pub(crate) fn mul_scalar_shoup_add_assign(p: u64, acc: &mut [u64], x: &[u64], w: u64, ws: u64) {
        for (o, &a) in acc.iter_mut().zip(x) {
            let r = *o + mul_shoup(p, a, w, ws);
            *o = if r >= p { r - p } else { r };
        }
    }

    /// `dst = sum_k xs[k] * ws[k] mod p` in `u128` sums (the IFMA dot
    /// kernel's tail), for sums below 2^128.
    pub(crate) fn dot_u128(p: u64, dst: &mut [u64], xs: &[&[u64]], ws: &[u64]) {
        for (i, d) in dst.iter_mut().enumerate() {
            let s: u128 = xs
                .iter()
                .zip(ws)
                .map(|(x, &w)| x[i] as u128 * w as u128)
                .sum();
            *d = (s % p as u128) as u64;
        }
    }

    /// `lo += x * y mod 2^52`, `hi += floor(x * y / 2^52)` slot-wise.
    #[inline]
    pub(crate) fn madd52(lo: &mut [u64], hi: &mut [u64], x: &[u64], y: &[u64]) {
        for (((l, h), &a), &b) in lo.iter_mut().zip(hi.iter_mut()).zip(x).zip(y) {
            let prod = a as u128 * b as u128;
            *l += prod as u64 & super::MASK52;
            *h += (prod >> 52) as u64;
        }
    }

    /// `a = a mod p` for values below `2p`.
    #[inline]
    pub(crate) fn reduce_below_2p(p: u64, a: &mut [u64]) {
        for x in a.iter_mut() {
            if *x >= p {
                *x -= p;
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
use super::x86_64::pointwise as simd;

/// Runs the SIMD kernel `$f` when the CPU has one, else the scalar loop.
macro_rules! run {
    ($f:ident($($arg:expr),*)) => {{
        #[cfg(target_arch = "x86_64")]
        if let Some(level) = simd::detected() {
            return simd::$f(level, $($arg),*);
        }
        scalar::$f($($arg),*)
    }};
}

/// `a = a + b mod p` slot-wise.
pub(crate) fn add_assign(m: &Modulus, a: &mut [u64], b: &[u64]) {
    run!(add_assign(m.value(), a, b))
}

/// `a = a - b mod p` slot-wise.
pub(crate) fn sub_assign(m: &Modulus, a: &mut [u64], b: &[u64]) {
    run!(sub_assign(m.value(), a, b))
}

/// `a = -a mod p` slot-wise.
pub(crate) fn neg_assign(m: &Modulus, a: &mut [u64]) {
    run!(neg_assign(m.value(), a))
}

/// `a = a * w mod p` slot-wise, `ws` the Shoup constants of `w` (any `a < 2^64`).
pub(crate) fn mul_shoup_assign(m: &Modulus, a: &mut [u64], w: &[u64], ws: &[u64]) {
    run!(mul_shoup_assign(m.value(), a, w, ws))
}

/// `acc = acc + x * w mod p` slot-wise, `ws` the Shoup constants of `w`.
pub(crate) fn mul_shoup_add_assign(m: &Modulus, acc: &mut [u64], x: &[u64], w: &[u64], ws: &[u64]) {
    run!(mul_shoup_add_assign(m.value(), acc, x, w, ws))
}

/// `a = a * w mod p` for one constant `w < p` (any `a < 2^64`).
pub(crate) fn mul_scalar_assign(m: &Modulus, a: &mut [u64], w: u64) {
    let ws = m.shoup(w);
    run!(mul_scalar_shoup_assign(m.value(), a, w, ws))
}

/// `acc = acc + x * w mod p` for one constant `w < p` (any `x < 2^64`).
pub(crate) fn mul_scalar_add_assign(m: &Modulus, acc: &mut [u64], x: &[u64], w: u64) {
    let ws = m.shoup(w);
    run!(mul_scalar_shoup_add_assign(m.value(), acc, x, w, ws))
}

/// `a = a mod p` for values below `2p`.
pub(crate) fn reduce_below_2p(m: &Modulus, a: &mut [u64]) {
    run!(reduce_below_2p(m.value(), a))
}

/// `hi = (hi * 2^52 + lo) mod p` slot-wise, for any `lo, hi < 2^64`: split
/// sums ([`madd52`]) as residues.
fn fold52_into_hi(m: &Modulus, lo: &[u64], hi: &mut [u64]) {
    mul_scalar_assign(m, hi, m.reduce_u128(1 << 52));
    mul_scalar_add_assign(m, hi, lo, 1);
}

/// Folds split sums ([`madd52`]) to residues so that more terms can be
/// added: `lo = (hi * 2^52 + lo) mod p`, `hi = 0` (any `lo, hi < 2^64`).
pub(crate) fn fold52(m: &Modulus, lo: &mut [u64], hi: &mut [u64]) {
    fold52_into_hi(m, lo, hi);
    lo.copy_from_slice(hi);
    hi.fill(0);
}

/// `dst = dst + (hi * 2^52 + lo) mod p` slot-wise for split sums
/// ([`madd52`]; any `lo, hi < 2^64`, `dst < p`); `hi` is left scratch.
pub(crate) fn fold52_add(m: &Modulus, dst: &mut [u64], lo: &[u64], hi: &mut [u64]) {
    fold52_into_hi(m, lo, hi);
    add_assign(m, dst, hi);
}

const MASK52: u64 = (1 << 52) - 1;

/// Most terms the IFMA [`dot`] kernel sums in one pass (its register of
/// broadcast weights).
pub(crate) const DOT52_MAX_TERMS: usize = 16;

/// `dst = sum_k xs[k] * ws[k] mod p` slot-wise: a basis conversion's inner
/// step, one pass instead of one per term. Weights below `p`, every input
/// at most `max_input`. With `p < 2^50` and inputs below 2^52, AVX-512
/// IFMA sums the products in registers, as many terms per pass as keep
/// each slot's sum below 2^104 (the kernel's bound; 16 for inputs below
/// 2^50); otherwise the terms go one by one through Shoup passes, which
/// take any 64-bit inputs.
pub(crate) fn dot(m: &Modulus, dst: &mut [u64], xs: &[&[u64]], ws: &[u64], max_input: u64) {
    assert!(
        xs.len() == ws.len() && !xs.is_empty(),
        "dot takes one weight per input and at least one input"
    );
    #[cfg(target_arch = "x86_64")]
    if m.bits() <= 50 && max_input < 1 << 52 && simd::ifma_detected() {
        // A product is below max_input * (p - 1) < 2^102.
        let per_term = (max_input as u128 * (m.value() - 1) as u128).max(1);
        let terms = ((1u128 << 104) / per_term).min(DOT52_MAX_TERMS as u128) as usize;
        let mut part = Vec::new();
        for (pass, (x, w)) in xs.chunks(terms).zip(ws.chunks(terms)).enumerate() {
            if pass == 0 {
                simd::dot52(m.value(), dst, x, w, max_input);
            } else {
                part.resize(dst.len(), 0);
                simd::dot52(m.value(), &mut part, x, w, max_input);
                add_assign(m, dst, &part);
            }
        }
        return;
    }
    dst.copy_from_slice(xs[0]);
    mul_scalar_assign(m, dst, ws[0]);
    for (x, &w) in xs.iter().zip(ws).skip(1) {
        mul_scalar_add_assign(m, dst, x, w);
    }
}

/// Most terms one [`madd52`] call may sum: with inputs below 2^52 each
/// term adds less than 2^52 to either accumulator, so accumulators that
/// start below 2^52 stay below 2^64.
pub(crate) const MADD52_MAX_TERMS: usize = 4095;

/// Whether [`madd52`] runs in SIMD (AVX-512 IFMA) on this CPU. Without
/// it, 128-bit scalar accumulation is faster than the split form.
pub(crate) fn madd52_is_fast() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        simd::ifma_detected()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The sum over terms `k` of `xs[k][i] * ys[k][i]`, split at bit 52:
/// `lo[i] += Σ (x * y mod 2^52)` and `hi[i] += Σ floor(x * y / 2^52)`, so
/// the exact sum is `hi * 2^52 + lo`. All slices have `lo`'s length, the
/// inputs are below 2^52, and there are at most [`MADD52_MAX_TERMS`]
/// terms (starting from accumulators below 2^52).
pub(crate) fn madd52(lo: &mut [u64], hi: &mut [u64], xs: &[&[u64]], ys: &[&[u64]]) {
    assert!(
        xs.len() == ys.len() && xs.len() <= MADD52_MAX_TERMS,
        "madd52 takes at most {MADD52_MAX_TERMS} pairs of operands"
    );
    assert!(
        hi.len() == lo.len() && xs.iter().chain(ys).all(|v| v.len() == lo.len()),
        "operands of equal length"
    );
    #[cfg(target_arch = "x86_64")]
    if simd::ifma_detected() {
        return simd::madd52(lo, hi, xs, ys);
    }
    for (x, y) in xs.iter().zip(ys) {
        scalar::madd52(lo, hi, x, y);
    }
}

/// [`madd52`] for any number of terms: chunks of [`MADD52_MAX_TERMS`],
/// folded to residues mod `p` between chunks ([`fold52`]) so nothing
/// overflows. `lo` and `hi` start below 2^52 (zero, say); the result is
/// still split (finish with [`fold52_add`]).
pub(crate) fn madd52_mod(
    m: &Modulus,
    lo: &mut [u64],
    hi: &mut [u64],
    xs: &[&[u64]],
    ys: &[&[u64]],
) {
    let chunks = xs.chunks(MADD52_MAX_TERMS).zip(ys.chunks(MADD52_MAX_TERMS));
    for (k, (x, y)) in chunks.enumerate() {
        if k > 0 {
            fold52(m, lo, hi);
        }
        madd52(lo, hi, x, y);
    }
}

/// Shoup constants of a vector of multiplicands below `p`.
pub(crate) fn shoup_vec(m: &Modulus, w: &[u64]) -> Vec<u64> {
    w.iter().map(|&x| m.shoup(x)).collect()
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Primes of 20 to 61 bits (all NTT-friendly for small `n`, though any
    /// modulus works here).
    const PRIMES: [u64; 5] = [
        1_032_193,
        1_099_510_054_913,
        18_014_398_509_309_953,
        36_028_797_005_856_769,
        2_305_843_009_213_554_689,
    ];

    /// Vectors with the boundary values 0, 1, p-1, p-2 and random ones, of a
    /// length that leaves a scalar tail for every lane count.
    fn inputs(p: u64, seed: u64, len: usize) -> Vec<u64> {
        let mut s = seed | 1;
        (0..len)
            .map(|i| match i % 7 {
                0 => 0,
                1 => p - 1,
                2 => 1,
                3 => p - 2,
                _ => {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    s % p
                }
            })
            .collect()
    }

    fn check_all(p: u64, seed: u64, len: usize) {
        let m = Modulus::new(p).unwrap();
        let a = inputs(p, seed, len);
        let b = inputs(p, seed.rotate_left(17) ^ 0x9e37, len);
        let mut b2 = b.clone();
        b2.reverse();
        let ws = shoup_vec(&m, &b);
        let big: Vec<u64> = a
            .iter()
            .map(|&x| x.wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .collect();
        for level in simd::available() {
            let name = level.name();
            let mut x = a.clone();
            let mut y = a.clone();
            scalar::add_assign(p, &mut x, &b);
            simd::add_assign(level, p, &mut y, &b);
            assert_eq!(x, y, "add {name} p={p}");
            for (i, &v) in x.iter().enumerate() {
                assert_eq!(v, m.add(a[i], b[i]));
            }

            let (mut x, mut y) = (a.clone(), a.clone());
            scalar::sub_assign(p, &mut x, &b);
            simd::sub_assign(level, p, &mut y, &b);
            assert_eq!(x, y, "sub {name} p={p}");
            for (i, &v) in x.iter().enumerate() {
                assert_eq!(v, m.sub(a[i], b[i]));
            }

            let (mut x, mut y) = (a.clone(), a.clone());
            scalar::neg_assign(p, &mut x);
            simd::neg_assign(level, p, &mut y);
            assert_eq!(x, y, "neg {name} p={p}");
            for (i, &v) in x.iter().enumerate() {
                assert_eq!(v, m.neg(a[i]));
            }

            // Shoup products, from reduced and from arbitrary 64-bit inputs.
            for src in [&a, &big] {
                let (mut x, mut y) = (src.clone(), src.clone());
                scalar::mul_shoup_assign(p, &mut x, &b, &ws);
                simd::mul_shoup_assign(level, p, &mut y, &b, &ws);
                assert_eq!(x, y, "mul_shoup {name} p={p}");
                for (i, &v) in x.iter().enumerate() {
                    assert_eq!(v, m.mul(m.reduce(src[i]), b[i]));
                }

                let (mut x, mut y) = (b2.clone(), b2.clone());
                scalar::mul_shoup_add_assign(p, &mut x, src, &b, &ws);
                simd::mul_shoup_add_assign(level, p, &mut y, src, &b, &ws);
                assert_eq!(x, y, "mul_shoup_add {name} p={p}");
                for (i, &v) in x.iter().enumerate() {
                    assert_eq!(v, m.add(b2[i], m.mul(m.reduce(src[i]), b[i])));
                }

                for w in [0, 1, p - 1, b.get(5).copied().unwrap_or(3)] {
                    let (mut x, mut y) = (src.clone(), src.clone());
                    scalar::mul_scalar_shoup_assign(p, &mut x, w, m.shoup(w));
                    simd::mul_scalar_shoup_assign(level, p, &mut y, w, m.shoup(w));
                    assert_eq!(x, y, "mul_scalar {name} p={p}");
                    for (i, &v) in x.iter().enumerate() {
                        assert_eq!(v, m.mul(m.reduce(src[i]), w));
                    }
                    let (mut x, mut y) = (b2.clone(), b2.clone());
                    scalar::mul_scalar_shoup_add_assign(p, &mut x, src, w, m.shoup(w));
                    simd::mul_scalar_shoup_add_assign(level, p, &mut y, src, w, m.shoup(w));
                    assert_eq!(x, y, "mul_scalar_add {name} p={p}");
                    for (i, &v) in x.iter().enumerate() {
                        assert_eq!(v, m.add(b2[i], m.mul(m.reduce(src[i]), w)));
                    }
                }
            }

            let twice: Vec<u64> = a.iter().zip(&b).map(|(&x, &y)| x + y).collect();
            let (mut x, mut y) = (twice.clone(), twice.clone());
            scalar::reduce_below_2p(p, &mut x);
            simd::reduce_below_2p(level, p, &mut y);
            assert_eq!(x, y, "reduce {name} p={p}");
            for (i, &v) in x.iter().enumerate() {
                assert_eq!(v, twice[i] % p);
            }
        }
    }

    /// `madd52` (SIMD when the CPU has IFMA) against the scalar loop and
    /// against exact 128-bit sums, with operands up to `2^52 - 1`.
    fn check_madd52(seed: u64, len: usize, terms: usize) {
        let top = (1u64 << 52) - 1;
        let ops: Vec<Vec<u64>> = (0..2 * terms)
            .map(|k| {
                inputs(top, seed ^ (k as u64).wrapping_mul(0x9e37_79b9), len)
                    .into_iter()
                    .map(|v| if v == top - 1 { top } else { v })
                    .collect()
            })
            .collect();
        let xs: Vec<&[u64]> = ops[..terms].iter().map(Vec::as_slice).collect();
        let ys: Vec<&[u64]> = ops[terms..].iter().map(Vec::as_slice).collect();
        let start: Vec<u64> = inputs(top, seed ^ 0x5555, len);
        let (mut lo, mut hi) = (start.clone(), start.clone());
        madd52(&mut lo, &mut hi, &xs, &ys);
        let (mut lo2, mut hi2) = (start.clone(), start.clone());
        for (x, y) in xs.iter().zip(&ys) {
            scalar::madd52(&mut lo2, &mut hi2, x, y);
        }
        assert_eq!((&lo, &hi), (&lo2, &hi2), "madd52 len={len} terms={terms}");
        for i in 0..len {
            let exact: u128 = xs
                .iter()
                .zip(&ys)
                .map(|(x, y)| x[i] as u128 * y[i] as u128)
                .sum::<u128>()
                + ((start[i] as u128) << 52)
                + start[i] as u128;
            assert_eq!(((hi[i] as u128) << 52) + lo[i] as u128, exact, "slot {i}");
        }
    }

    #[test]
    fn madd52_matches_exact_sums() {
        for (len, terms) in [
            (0, 3),
            (1, 1),
            (7, 2),
            (31, 5),
            (32, 1),
            (64, 7),
            (100, 3),
            (512, 9),
        ] {
            check_madd52(len as u64 * 31 + terms as u64, len, terms);
        }
        // The largest term count from accumulators at 2^52 - 1 cannot overflow.
        check_madd52(99, 40, MADD52_MAX_TERMS);
    }

    /// `dot` (IFMA when the CPU has it, for primes below 2^50) equals the
    /// exact sums, for every term count to past one IFMA pass, inputs at
    /// their bound (below 2^50, below 2^52, where a pass takes fewer terms
    /// to keep its sums below 2^104, and any 64-bit value, which takes the
    /// Shoup passes), and lengths with scalar tails.
    #[test]
    fn dot_matches_exact_sums() {
        // The largest primes the IFMA kernel takes, as well.
        let big = crate::modulus::generate_ntt_primes(50, 2, 1024, &[]).unwrap();
        for p in PRIMES.into_iter().chain(big) {
            let m = Modulus::new(p).unwrap();
            for max_input in [(1u64 << 50) - 1, (1 << 52) - 1, u64::MAX] {
                for terms in [1, 2, 3, 5, 15, 16, 17, 33] {
                    for len in [0, 1, 7, 16, 17, 67] {
                        let seed = p ^ (terms * 1000 + len) as u64 ^ max_input;
                        let xs: Vec<Vec<u64>> = (0..terms)
                            .map(|k| {
                                let mut v: Vec<u64> = inputs(u64::MAX, seed ^ (k as u64) << 8, len)
                                    .into_iter()
                                    .map(|x| x % max_input.saturating_add(1).max(1))
                                    .collect();
                                if let Some(first) = v.first_mut() {
                                    *first = max_input;
                                }
                                v
                            })
                            .collect();
                        let ws: Vec<u64> = (0..terms as u64)
                            .map(|k| {
                                if k == 0 {
                                    p - 1
                                } else {
                                    (k * 0x9e37_79b9_7f4a) % p
                                }
                            })
                            .collect();
                        let refs: Vec<&[u64]> = xs.iter().map(Vec::as_slice).collect();
                        let exact: Vec<u64> = (0..len)
                            .map(|i| {
                                let s = refs.iter().zip(&ws).fold(0u128, |s, (x, &w)| {
                                    (s + x[i] as u128 * w as u128) % p as u128
                                });
                                s as u64
                            })
                            .collect();
                        let mut dst = vec![0u64; len];
                        dot(&m, &mut dst, &refs, &ws, max_input);
                        assert_eq!(dst, exact, "p={p} max={max_input} terms={terms} len={len}");
                    }
                }
            }
        }
    }

    /// `madd52_mod` over more terms than one `madd52` call takes, at the
    /// largest operands, gives the sums mod `p` once folded.
    #[test]
    fn madd52_mod_folds_between_chunks() {
        let top = (1u64 << 52) - 1;
        for p in [1_032_193u64, 1_099_510_054_913] {
            let m = Modulus::new(p).unwrap();
            for terms in [
                1,
                MADD52_MAX_TERMS,
                MADD52_MAX_TERMS + 1,
                2 * MADD52_MAX_TERMS + 3,
            ] {
                let len = 9;
                let ops: Vec<Vec<u64>> = (0..2 * terms)
                    .map(|k| {
                        let mut v = inputs(top, p ^ k as u64, len);
                        v[0] = top;
                        v
                    })
                    .collect();
                let xs: Vec<&[u64]> = ops[..terms].iter().map(Vec::as_slice).collect();
                let ys: Vec<&[u64]> = ops[terms..].iter().map(Vec::as_slice).collect();
                let (mut lo, mut hi) = (vec![0u64; len], vec![0u64; len]);
                madd52_mod(&m, &mut lo, &mut hi, &xs, &ys);
                let mut got = vec![0u64; len];
                fold52_add(&m, &mut got, &lo, &mut hi);
                for i in 0..len {
                    let want = xs.iter().zip(&ys).fold(0u128, |s, (x, y)| {
                        (s + x[i] as u128 * y[i] as u128) % p as u128
                    });
                    assert_eq!(got[i] as u128, want, "p={p} terms={terms} slot {i}");
                }
            }
        }
    }

    /// `fold52`/`fold52_add` equal `(hi * 2^52 + lo) mod p` (plus `dst`)
    /// for any 64-bit halves, the extremes included.
    #[test]
    fn fold52_reduces_split_sums() {
        for p in PRIMES {
            let m = Modulus::new(p).unwrap();
            for len in [0, 1, 7, 8, 9, 67] {
                let mut lo = inputs(u64::MAX, p ^ 0x77 ^ len as u64, len);
                let mut hi = inputs(u64::MAX, p ^ 0x99 ^ len as u64, len);
                if len > 0 {
                    (lo[0], hi[0]) = (u64::MAX, u64::MAX);
                    (lo[len - 1], hi[len - 1]) = (0, u64::MAX);
                }
                let dst = inputs(p - 1, p ^ len as u64, len);
                let want = |i: usize| {
                    let v = ((hi[i] as u128) << 52) + lo[i] as u128;
                    (v % p as u128) as u64
                };
                let mut sum = dst.clone();
                fold52_add(&m, &mut sum, &lo, &mut hi.clone());
                for i in 0..len {
                    assert_eq!(sum[i], (dst[i] + want(i)) % p, "fold52_add p={p} slot {i}");
                }
                let expect: Vec<u64> = (0..len).map(want).collect();
                fold52(&m, &mut lo, &mut hi);
                assert_eq!(lo, expect, "fold52 p={p}");
                assert!(hi.iter().all(|&h| h == 0), "fold52 clears hi, p={p}");
            }
        }
    }

    #[test]
    fn simd_matches_scalar_on_boundaries() {
        for p in PRIMES {
            for len in [0, 1, 3, 7, 8, 9, 31, 64, 67] {
                check_all(p, 12345 + len as u64, len);
            }
        }
    }

    proptest! {
        #[test]
        fn madd52_random(seed in any::<u64>(), len in 0usize..100, terms in 1usize..12) {
            check_madd52(seed, len, terms);
        }

        #[test]
        fn simd_matches_scalar_random(idx in 0usize..5, seed in any::<u64>(), len in 0usize..80) {
            check_all(PRIMES[idx], seed, len);
        }
    }
}
