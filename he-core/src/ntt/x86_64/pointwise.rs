//! Element-wise modular kernels over residue vectors, on AVX-512F/DQ
//! (eight lanes) and AVX2 (four lanes): addition, subtraction, negation,
//! Shoup multiplication by a fixed operand and Shoup multiply-add.
//!
//! Every kernel takes fully reduced inputs (values in `[0, p)`; the
//! Shoup multiplicand `x` may be any `u64`) and returns fully reduced
//! outputs, so its results equal the scalar loops in
//! [`crate::ntt::pointwise`] bit for bit. Lengths that are not a multiple of
//! the lane count finish with those scalar loops.
//!
//! The kernels are private `#[target_feature]` functions. A [`Level`] can
//! only be obtained from [`detected`] or [`available`], both of which check
//! the CPU with `is_x86_feature_detected!`, so holding one proves that its
//! kernels can run.

use std::sync::OnceLock;

use crate::ntt::pointwise::scalar;

/// A SIMD instruction set the CPU was checked to support.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Level(Kind);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Avx512,
    Avx2,
}

impl Level {
    /// A short lowercase name, for test messages.
    #[cfg(test)]
    pub(crate) fn name(self) -> &'static str {
        match self.0 {
            Kind::Avx512 => "avx512",
            Kind::Avx2 => "avx2",
        }
    }
}

fn kind_available(kind: Kind) -> bool {
    match kind {
        Kind::Avx512 => is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512dq"),
        Kind::Avx2 => is_x86_feature_detected!("avx2"),
    }
}

/// Every level this CPU supports, widest first.
pub(crate) fn available() -> Vec<Level> {
    [Kind::Avx512, Kind::Avx2]
        .into_iter()
        .filter(|&k| kind_available(k))
        .map(Level)
        .collect()
}

/// The widest level this CPU supports, detected once and cached.
pub(crate) fn detected() -> Option<Level> {
    static LEVEL: OnceLock<Option<Level>> = OnceLock::new();
    *LEVEL.get_or_init(|| available().first().copied())
}

/// Whether the AVX-512 IFMA multiply-accumulate kernel ([`madd52`]) can
/// run, detected once and cached.
pub(crate) fn ifma_detected() -> bool {
    static IFMA: OnceLock<bool> = OnceLock::new();
    *IFMA.get_or_init(|| {
        is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512ifma")
    })
}

/// The 52-bit split multiply-accumulate on AVX-512 IFMA.
mod ifma {
    use core::arch::x86_64::*;

    use crate::ntt::x86_64::avx512::{load, store};

    const L: usize = 8;
    /// Vectors per block: `2 * R` accumulators stay in registers while
    /// every term streams through.
    const R: usize = 4;

    /// # Safety
    /// The CPU must support avx512f and avx512ifma.
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(super) unsafe fn madd52(lo: &mut [u64], hi: &mut [u64], xs: &[&[u64]], ys: &[&[u64]]) {
        let n = lo.len();
        let blocks = n / (L * R);
        let (lo_v, _) = lo.as_chunks_mut::<L>();
        let (hi_v, _) = hi.as_chunks_mut::<L>();
        for b in 0..blocks {
            let at = b * R;
            let mut al = [_mm512_setzero_si512(); R];
            let mut ah = [_mm512_setzero_si512(); R];
            for r in 0..R {
                al[r] = load(&lo_v[at + r]);
                ah[r] = load(&hi_v[at + r]);
            }
            for (x, y) in xs.iter().zip(ys) {
                let (xv, _) = x.as_chunks::<L>();
                let (yv, _) = y.as_chunks::<L>();
                for r in 0..R {
                    let (a, c) = (load(&xv[at + r]), load(&yv[at + r]));
                    al[r] = _mm512_madd52lo_epu64(al[r], a, c);
                    ah[r] = _mm512_madd52hi_epu64(ah[r], a, c);
                }
            }
            for r in 0..R {
                store(&mut lo_v[at + r], al[r]);
                store(&mut hi_v[at + r], ah[r]);
            }
        }
        let done = blocks * L * R;
        for (x, y) in xs.iter().zip(ys) {
            super::scalar::madd52(&mut lo[done..], &mut hi[done..], &x[done..], &y[done..]);
        }
    }
}

/// The modular dot product of residue vectors with constants on AVX-512
/// IFMA: split 52-bit sums in registers, then one Shoup reduction of each
/// half.
mod ifma_dot {
    use core::arch::x86_64::*;

    use crate::ntt::x86_64::avx512::{load, store};

    const L: usize = 8;
    /// Vectors per block.
    const R: usize = 2;

    /// `(a * b) mod 2^52` and `floor(a * b / 2^52)` for inputs below 2^52.
    #[target_feature(enable = "avx512f,avx512ifma")]
    #[inline]
    fn lo52(a: __m512i, b: __m512i) -> __m512i {
        _mm512_madd52lo_epu64(_mm512_setzero_si512(), a, b)
    }

    #[target_feature(enable = "avx512f,avx512ifma")]
    #[inline]
    fn hi52(a: __m512i, b: __m512i) -> __m512i {
        _mm512_madd52hi_epu64(_mm512_setzero_si512(), a, b)
    }

    /// `x * w mod p` in `[0, 2p)` for `x, w < 2^52`, `ws = floor(w 2^52 / p)`.
    #[target_feature(enable = "avx512f,avx512ifma")]
    #[inline]
    fn shoup52(x: __m512i, w: __m512i, ws: __m512i, p: __m512i, mask: __m512i) -> __m512i {
        let q = hi52(x, ws);
        _mm512_and_si512(_mm512_sub_epi64(lo52(x, w), lo52(q, p)), mask)
    }

    /// `a - m` where `a >= m`, else `a`.
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn csub(a: __m512i, m: __m512i) -> __m512i {
        _mm512_min_epu64(a, _mm512_sub_epi64(a, m))
    }

    /// Each slot's sum `S` of products gathers as `hi 2^52 + lo` with
    /// `hi + (lo >> 52) = floor(S / 2^52)`, below 2^52 when `S < 2^104`;
    /// both halves then take one Shoup reduction.
    ///
    /// # Safety
    /// The CPU must support avx512f and avx512ifma. Checked by the caller
    /// ([`super::dot52`]): `p < 2^50`, every weight below `p`, at most
    /// [`DOT52_MAX_TERMS`](crate::ntt::pointwise::DOT52_MAX_TERMS) terms,
    /// every input below 2^52 and each slot's sum below 2^104.
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(super) unsafe fn dot52(p: u64, dst: &mut [u64], xs: &[&[u64]], ws: &[u64]) {
        const MASK52: u64 = (1 << 52) - 1;
        let mut w = [_mm512_setzero_si512(); crate::ntt::pointwise::DOT52_MAX_TERMS];
        for (v, &x) in w.iter_mut().zip(ws) {
            *v = _mm512_set1_epi64(x as i64);
        }
        let w = &w[..ws.len()];
        let c = (1u128 << 52) % p as u128;
        let (cv, cs) = (
            _mm512_set1_epi64(c as i64),
            _mm512_set1_epi64(((c << 52) / p as u128) as i64),
        );
        let (one, ones) = (
            _mm512_set1_epi64(1),
            _mm512_set1_epi64(((1u128 << 52) / p as u128) as i64),
        );
        let (pv, p2, mask) = (
            _mm512_set1_epi64(p as i64),
            _mm512_set1_epi64(2 * p as i64),
            _mm512_set1_epi64(MASK52 as i64),
        );
        let n = dst.len();
        let blocks = n / (L * R);
        let (dv, _) = dst.as_chunks_mut::<L>();
        for b in 0..blocks {
            let at = b * R;
            let mut al = [_mm512_setzero_si512(); R];
            let mut ah = [_mm512_setzero_si512(); R];
            for (x, &wv) in xs.iter().zip(w) {
                let (xv, _) = x.as_chunks::<L>();
                for r in 0..R {
                    let a = load(&xv[at + r]);
                    al[r] = _mm512_madd52lo_epu64(al[r], a, wv);
                    ah[r] = _mm512_madd52hi_epu64(ah[r], a, wv);
                }
            }
            for r in 0..R {
                // sum = hi 2^52 + lo, with hi + (lo >> 52) < 2^52 (the sum
                // is below 2^104) and lo mod 2^52 both reduced by Shoup.
                let h = _mm512_add_epi64(ah[r], _mm512_srli_epi64::<52>(al[r]));
                let l = _mm512_and_si512(al[r], mask);
                let s = _mm512_add_epi64(
                    shoup52(h, cv, cs, pv, mask),
                    shoup52(l, one, ones, pv, mask),
                );
                store(&mut dv[at + r], csub(csub(s, p2), pv));
            }
        }
        let done = blocks * L * R;
        let tails: Vec<&[u64]> = xs.iter().map(|x| &x[done..]).collect();
        crate::ntt::pointwise::scalar::dot_u128(p, &mut dst[done..], &tails, ws);
    }
}

/// `dst = sum_k xs[k] * ws[k] mod p` slot-wise on AVX-512 IFMA, for
/// inputs at most `max_input`; see [`crate::ntt::pointwise::dot`]. Only
/// call after [`ifma_detected`] returned true.
pub(crate) fn dot52(p: u64, dst: &mut [u64], xs: &[&[u64]], ws: &[u64], max_input: u64) {
    assert!(ifma_detected(), "dot52 needs avx512ifma");
    assert!(
        p < 1 << 50
            && max_input < 1 << 52
            && xs.len() == ws.len()
            && xs.len() <= crate::ntt::pointwise::DOT52_MAX_TERMS
            && ws.iter().all(|&w| w < p),
        "dot52 bounds"
    );
    assert!(
        (xs.len() as u128) * (max_input as u128) * (p as u128 - 1) < 1 << 104,
        "dot52 sums must stay below 2^104"
    );
    assert!(
        xs.iter().all(|x| x.len() == dst.len()),
        "operands of equal length"
    );
    debug_assert!(xs.iter().all(|x| x.iter().all(|&v| v <= max_input)));
    // SAFETY: `ifma_detected` confirmed avx512f and avx512ifma; the bounds
    // the kernel's arithmetic needs were asserted above (inputs at most
    // `max_input` are the caller's contract, checked in debug builds).
    unsafe { ifma_dot::dot52(p, dst, xs, ws) }
}

/// `lo += x * y mod 2^52` and `hi += floor(x * y / 2^52)` slot-wise, summed
/// over the terms; inputs below 2^52, at most
/// [`MADD52_MAX_TERMS`](crate::ntt::pointwise::MADD52_MAX_TERMS) terms.
/// Only call after [`ifma_detected`] returned true.
pub(crate) fn madd52(lo: &mut [u64], hi: &mut [u64], xs: &[&[u64]], ys: &[&[u64]]) {
    assert!(ifma_detected(), "madd52 needs avx512ifma");
    // SAFETY: `ifma_detected` confirmed avx512f and avx512ifma.
    unsafe { ifma::madd52(lo, hi, xs, ys) }
}

/// Generates the AVX-512 and AVX2 kernel modules from one set of bodies.
/// `$m` is the backend module providing `splat`, `load`, `store`, `add`,
/// `sub`, `csub` and `mul_lazy`/`consts`.
macro_rules! pointwise_kernels {
    ($name:ident, feature = $feat:literal, lanes = $lanes:literal, vector = $v:ty, mulmod = $mm:path, lazy = $lazy:path, consts = $consts:path, helpers = $h:path) => {
        mod $name {
            use core::arch::x86_64::*;

            use $h::{add, csub, load, splat, store, sub};

            use super::scalar;

            const L: usize = $lanes;

            /// `a + b mod p`.
            #[target_feature(enable = $feat)]
            #[inline]
            fn addmod(a: $v, b: $v, p: $v) -> $v {
                csub(add(a, b), p)
            }

            /// `a - b mod p` (as `a + p - b`, then one conditional subtraction).
            #[target_feature(enable = $feat)]
            #[inline]
            fn submod(a: $v, b: $v, p: $v) -> $v {
                csub(sub(add(a, p), b), p)
            }

            /// `x * w mod p` in `[0, p)` from the Shoup constant `ws`.
            #[target_feature(enable = $feat)]
            #[inline]
            fn mulmod(c: &$mm, x: $v, w: $v, ws: $v, p: $v) -> $v {
                csub($lazy(c, x, w, ws), p)
            }

            /// # Safety
            /// The CPU must support the target features of this function.
            #[target_feature(enable = $feat)]
            pub(super) unsafe fn add_assign(p: u64, a: &mut [u64], b: &[u64]) {
                let pv = splat(p);
                let (av, at) = a.as_chunks_mut::<L>();
                let (bv, bt) = b.as_chunks::<L>();
                for (x, y) in av.iter_mut().zip(bv) {
                    store(x, addmod(load(x), load(y), pv));
                }
                scalar::add_assign(p, at, bt);
            }

            /// # Safety
            /// The CPU must support the target features of this function.
            #[target_feature(enable = $feat)]
            pub(super) unsafe fn sub_assign(p: u64, a: &mut [u64], b: &[u64]) {
                let pv = splat(p);
                let (av, at) = a.as_chunks_mut::<L>();
                let (bv, bt) = b.as_chunks::<L>();
                for (x, y) in av.iter_mut().zip(bv) {
                    store(x, submod(load(x), load(y), pv));
                }
                scalar::sub_assign(p, at, bt);
            }

            /// # Safety
            /// The CPU must support the target features of this function.
            #[target_feature(enable = $feat)]
            pub(super) unsafe fn neg_assign(p: u64, a: &mut [u64]) {
                let pv = splat(p);
                let (av, at) = a.as_chunks_mut::<L>();
                for x in av.iter_mut() {
                    // p - x lies in (0, p] and only x = 0 gives p.
                    store(x, csub(sub(pv, load(x)), pv));
                }
                scalar::neg_assign(p, at);
            }

            /// # Safety
            /// The CPU must support the target features of this function.
            #[target_feature(enable = $feat)]
            pub(super) unsafe fn mul_shoup_assign(p: u64, a: &mut [u64], w: &[u64], ws: &[u64]) {
                let c = $consts(p);
                let pv = splat(p);
                let (av, at) = a.as_chunks_mut::<L>();
                let (wv, wt) = w.as_chunks::<L>();
                let (sv, st) = ws.as_chunks::<L>();
                for ((x, y), s) in av.iter_mut().zip(wv).zip(sv) {
                    store(x, mulmod(&c, load(x), load(y), load(s), pv));
                }
                scalar::mul_shoup_assign(p, at, wt, st);
            }

            /// # Safety
            /// The CPU must support the target features of this function.
            #[target_feature(enable = $feat)]
            pub(super) unsafe fn mul_shoup_add_assign(
                p: u64,
                acc: &mut [u64],
                x: &[u64],
                w: &[u64],
                ws: &[u64],
            ) {
                let c = $consts(p);
                let pv = splat(p);
                let (cv, ct) = acc.as_chunks_mut::<L>();
                let (xv, xt) = x.as_chunks::<L>();
                let (wv, wt) = w.as_chunks::<L>();
                let (sv, st) = ws.as_chunks::<L>();
                for (((o, a), y), s) in cv.iter_mut().zip(xv).zip(wv).zip(sv) {
                    let prod = mulmod(&c, load(a), load(y), load(s), pv);
                    store(o, addmod(load(o), prod, pv));
                }
                scalar::mul_shoup_add_assign(p, ct, xt, wt, st);
            }

            /// # Safety
            /// The CPU must support the target features of this function.
            #[target_feature(enable = $feat)]
            pub(super) unsafe fn mul_scalar_shoup_assign(p: u64, a: &mut [u64], w: u64, ws: u64) {
                let c = $consts(p);
                let pv = splat(p);
                let (wv, sv) = (splat(w), splat(ws));
                let (av, at) = a.as_chunks_mut::<L>();
                for x in av.iter_mut() {
                    store(x, mulmod(&c, load(x), wv, sv, pv));
                }
                scalar::mul_scalar_shoup_assign(p, at, w, ws);
            }

            /// # Safety
            /// The CPU must support the target features of this function.
            #[target_feature(enable = $feat)]
            pub(super) unsafe fn mul_scalar_shoup_add_assign(
                p: u64,
                acc: &mut [u64],
                x: &[u64],
                w: u64,
                ws: u64,
            ) {
                let c = $consts(p);
                let pv = splat(p);
                let (wv, sv) = (splat(w), splat(ws));
                let (cv, ct) = acc.as_chunks_mut::<L>();
                let (xv, xt) = x.as_chunks::<L>();
                for (o, a) in cv.iter_mut().zip(xv) {
                    let prod = mulmod(&c, load(a), wv, sv, pv);
                    store(o, addmod(load(o), prod, pv));
                }
                scalar::mul_scalar_shoup_add_assign(p, ct, xt, w, ws);
            }

            /// Reduces values below `2p` (`p < 2^62`).
            ///
            /// # Safety
            /// The CPU must support the target features of this function.
            #[target_feature(enable = $feat)]
            pub(super) unsafe fn reduce_below_2p(p: u64, a: &mut [u64]) {
                let pv = splat(p);
                let (av, at) = a.as_chunks_mut::<L>();
                for x in av.iter_mut() {
                    store(x, csub(load(x), pv));
                }
                scalar::reduce_below_2p(p, at);
            }
        }
    };
}

pointwise_kernels!(
    k512,
    feature = "avx512f,avx512dq",
    lanes = 8,
    vector = __m512i,
    mulmod = crate::ntt::x86_64::avx512::wide::Consts,
    lazy = crate::ntt::x86_64::avx512::wide::mul_lazy,
    consts = crate::ntt::x86_64::avx512::wide::consts,
    helpers = crate::ntt::x86_64::avx512
);

pointwise_kernels!(
    k256,
    feature = "avx2",
    lanes = 4,
    vector = __m256i,
    mulmod = crate::ntt::x86_64::avx2::Consts,
    lazy = crate::ntt::x86_64::avx2::mul_lazy,
    consts = crate::ntt::x86_64::avx2::consts,
    helpers = crate::ntt::x86_64::avx2
);

/// Dispatches one kernel call on a checked [`Level`].
macro_rules! dispatch {
    ($level:expr, $f:ident($($arg:expr),*)) => {
        match $level.0 {
            // SAFETY: a `Level` is only built by `available`/`detected`
            // after `is_x86_feature_detected!` confirmed avx512f and avx512dq.
            Kind::Avx512 => unsafe { k512::$f($($arg),*) },
            // SAFETY: a `Level` is only built by `available`/`detected`
            // after `is_x86_feature_detected!` confirmed avx2.
            Kind::Avx2 => unsafe { k256::$f($($arg),*) },
        }
    };
}

/// `a = a + b mod p`; inputs in `[0, p)`, `p < 2^62`.
pub(crate) fn add_assign(level: Level, p: u64, a: &mut [u64], b: &[u64]) {
    assert_eq!(a.len(), b.len(), "operands of equal length");
    dispatch!(level, add_assign(p, a, b))
}

/// `a = a - b mod p`; inputs in `[0, p)`, `p < 2^62`.
pub(crate) fn sub_assign(level: Level, p: u64, a: &mut [u64], b: &[u64]) {
    assert_eq!(a.len(), b.len(), "operands of equal length");
    dispatch!(level, sub_assign(p, a, b))
}

/// `a = -a mod p`; input in `[0, p)`.
pub(crate) fn neg_assign(level: Level, p: u64, a: &mut [u64]) {
    dispatch!(level, neg_assign(p, a))
}

/// `a = a * w mod p` with Shoup constants `ws` of `w` (`w < p`, `p < 2^61`).
pub(crate) fn mul_shoup_assign(level: Level, p: u64, a: &mut [u64], w: &[u64], ws: &[u64]) {
    assert!(
        a.len() == w.len() && a.len() == ws.len(),
        "operands of equal length"
    );
    dispatch!(level, mul_shoup_assign(p, a, w, ws))
}

/// `acc = acc + x * w mod p` with Shoup constants `ws` of `w`.
pub(crate) fn mul_shoup_add_assign(
    level: Level,
    p: u64,
    acc: &mut [u64],
    x: &[u64],
    w: &[u64],
    ws: &[u64],
) {
    assert!(
        acc.len() == x.len() && acc.len() == w.len() && acc.len() == ws.len(),
        "operands of equal length"
    );
    dispatch!(level, mul_shoup_add_assign(p, acc, x, w, ws))
}

/// `a = a * w mod p` for one constant `w < p` with Shoup constant `ws`.
pub(crate) fn mul_scalar_shoup_assign(level: Level, p: u64, a: &mut [u64], w: u64, ws: u64) {
    dispatch!(level, mul_scalar_shoup_assign(p, a, w, ws))
}

/// `acc = acc + x * w mod p` for one constant `w < p` with Shoup constant `ws`.
pub(crate) fn mul_scalar_shoup_add_assign(
    level: Level,
    p: u64,
    acc: &mut [u64],
    x: &[u64],
    w: u64,
    ws: u64,
) {
    assert_eq!(acc.len(), x.len(), "operands of equal length");
    dispatch!(level, mul_scalar_shoup_add_assign(p, acc, x, w, ws))
}

/// `a = a mod p` for values below `2p`.
pub(crate) fn reduce_below_2p(level: Level, p: u64, a: &mut [u64]) {
    dispatch!(level, reduce_below_2p(p, a))
}
