//! AVX-512 kernels: eight 64-bit lanes.
//!
//! - [`wide`]: AVX-512F/DQ for primes up to 61 bits. The Shoup quotient
//!   `hi(x * w')` is built from four `vpmuludq` (32x32 -> 64) products;
//!   the low products use `vpmullq`.
//! - [`ifma`]: AVX-512 IFMA for primes up to 50 bits. Lazy values stay in
//!   `[0, 4p) < 2^52`, so `vpmadd52huq` with the 52-bit Shoup constant
//!   `floor(w * 2^52 / p)` gives the quotient and `vpmadd52luq` the low
//!   52 bits of `x * w - q * p`, which is the exact result as it is below
//!   `2p < 2^52`.
//!
//! Both share the load/store, lazy-reduction and transpose helpers below.

use core::arch::x86_64::*;

#[target_feature(enable = "avx512f")]
#[inline]
pub(super) fn splat(x: u64) -> __m512i {
    _mm512_set1_epi64(x as i64)
}

#[target_feature(enable = "avx512f")]
#[inline]
pub(super) fn load(a: &[u64; 8]) -> __m512i {
    // SAFETY: `a` is a reference to 64 readable bytes, `loadu` has no
    // alignment requirement, and avx512f is enabled on this function.
    unsafe { _mm512_loadu_si512(a.as_ptr().cast()) }
}

#[target_feature(enable = "avx512f")]
#[inline]
pub(super) fn store(a: &mut [u64; 8], v: __m512i) {
    // SAFETY: `a` is an exclusive reference to 64 writable bytes, `storeu`
    // has no alignment requirement, and avx512f is enabled on this function.
    unsafe { _mm512_storeu_si512(a.as_mut_ptr().cast(), v) }
}

#[target_feature(enable = "avx512f")]
#[inline]
pub(super) fn add(a: __m512i, b: __m512i) -> __m512i {
    _mm512_add_epi64(a, b)
}

#[target_feature(enable = "avx512f")]
#[inline]
pub(super) fn sub(a: __m512i, b: __m512i) -> __m512i {
    _mm512_sub_epi64(a, b)
}

/// `x - b` where `x >= b`, else `x` (unsigned: `x - b` wraps above `x`).
#[target_feature(enable = "avx512f")]
#[inline]
pub(super) fn csub(x: __m512i, b: __m512i) -> __m512i {
    _mm512_min_epu64(x, _mm512_sub_epi64(x, b))
}

/// Transposes the 8x8 matrix of 64-bit values held in `v` (row `i` in `v[i]`).
#[target_feature(enable = "avx512f")]
#[inline]
fn transpose(v: &mut [__m512i; 8]) {
    // Pairs of rows interleaved by 64-bit element.
    let t0 = _mm512_unpacklo_epi64(v[0], v[1]);
    let t1 = _mm512_unpackhi_epi64(v[0], v[1]);
    let t2 = _mm512_unpacklo_epi64(v[2], v[3]);
    let t3 = _mm512_unpackhi_epi64(v[2], v[3]);
    let t4 = _mm512_unpacklo_epi64(v[4], v[5]);
    let t5 = _mm512_unpackhi_epi64(v[4], v[5]);
    let t6 = _mm512_unpacklo_epi64(v[6], v[7]);
    let t7 = _mm512_unpackhi_epi64(v[6], v[7]);
    // Then by 128-bit pairs: even (0x88) and odd (0xdd) 128-bit lanes.
    let u0 = _mm512_shuffle_i64x2::<0x88>(t0, t2);
    let u1 = _mm512_shuffle_i64x2::<0x88>(t1, t3);
    let u2 = _mm512_shuffle_i64x2::<0xdd>(t0, t2);
    let u3 = _mm512_shuffle_i64x2::<0xdd>(t1, t3);
    let u4 = _mm512_shuffle_i64x2::<0x88>(t4, t6);
    let u5 = _mm512_shuffle_i64x2::<0x88>(t5, t7);
    let u6 = _mm512_shuffle_i64x2::<0xdd>(t4, t6);
    let u7 = _mm512_shuffle_i64x2::<0xdd>(t5, t7);
    v[0] = _mm512_shuffle_i64x2::<0x88>(u0, u4);
    v[1] = _mm512_shuffle_i64x2::<0x88>(u1, u5);
    v[2] = _mm512_shuffle_i64x2::<0x88>(u2, u6);
    v[3] = _mm512_shuffle_i64x2::<0x88>(u3, u7);
    v[4] = _mm512_shuffle_i64x2::<0xdd>(u0, u4);
    v[5] = _mm512_shuffle_i64x2::<0xdd>(u1, u5);
    v[6] = _mm512_shuffle_i64x2::<0xdd>(u2, u6);
    v[7] = _mm512_shuffle_i64x2::<0xdd>(u3, u7);
}

/// AVX-512F/DQ kernels for primes up to 61 bits.
pub(super) mod wide {
    use super::*;

    /// Broadcast constants of one modulus.
    #[derive(Clone, Copy)]
    pub(in crate::ntt::x86_64) struct Consts {
        p: __m512i,
        two_p: __m512i,
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    pub(in crate::ntt::x86_64) fn consts(p: u64) -> Consts {
        Consts {
            p: splat(p),
            two_p: splat(2 * p),
        }
    }

    /// `x * w mod p` in `[0, 2p)` for `x < 2^64`, `ws = floor(w * 2^64 / p)`.
    #[target_feature(enable = "avx512f,avx512dq")]
    #[inline]
    pub(in crate::ntt::x86_64) fn mul_lazy(
        c: &Consts,
        x: __m512i,
        w: __m512i,
        ws: __m512i,
    ) -> __m512i {
        // q ~ hi64(x * ws) from three 32x32 -> 64 products: leaving out the
        // low x low product and the carries of the middle sums makes q at
        // most 2 too small, so x * w - q * p lands in [0, 4p) (instead of
        // Shoup's [0, 2p)) and one conditional subtraction finishes.
        // High halves by a 32-bit swap rather than a shift: LLVM recognizes
        // the shift form as part of a 64x64 high product and scalarizes it.
        let xh = _mm512_shuffle_epi32::<0xb1>(x);
        let wsh = _mm512_shuffle_epi32::<0xb1>(ws);
        let lh = _mm512_mul_epu32(x, wsh);
        let hl = _mm512_mul_epu32(xh, ws);
        let hh = _mm512_mul_epu32(xh, wsh);
        let q = _mm512_add_epi64(
            hh,
            _mm512_add_epi64(_mm512_srli_epi64::<32>(lh), _mm512_srli_epi64::<32>(hl)),
        );
        let r = _mm512_sub_epi64(_mm512_mullo_epi64(x, w), _mm512_mullo_epi64(q, c.p));
        csub(r, c.two_p)
    }

    #[cfg(test)]
    fn detected() -> bool {
        is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512dq")
    }

    ntt_kernels!(
        feature = "avx512f,avx512dq",
        lanes = 8,
        vector = __m512i,
        halves = [4, 2, 1],
        rev = [1, 2, 4],
        radix8 = true
    );
}

/// AVX-512 IFMA kernels for primes up to 50 bits.
pub(super) mod ifma {
    use super::*;

    /// Broadcast constants of one modulus.
    #[derive(Clone, Copy)]
    struct Consts {
        p: __m512i,
        two_p: __m512i,
        /// `-p mod 2^52` (IFMA reads the low 52 bits).
        neg_p: __m512i,
        lo52: __m512i,
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    fn consts(p: u64) -> Consts {
        Consts {
            p: splat(p),
            two_p: splat(2 * p),
            neg_p: splat(p.wrapping_neg()),
            lo52: splat((1 << 52) - 1),
        }
    }

    /// `x * w mod p` in `[0, 2p)` for `x < 2^52`, `ws = floor(w * 2^52 / p)`.
    #[target_feature(enable = "avx512f,avx512ifma")]
    #[inline]
    fn mul_lazy(c: &Consts, x: __m512i, w: __m512i, ws: __m512i) -> __m512i {
        let zero = _mm512_setzero_si512();
        let q = _mm512_madd52hi_epu64(zero, x, ws);
        let r = _mm512_madd52lo_epu64(_mm512_madd52lo_epu64(zero, x, w), q, c.neg_p);
        _mm512_and_si512(r, c.lo52)
    }

    #[cfg(test)]
    fn detected() -> bool {
        is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512dq")
            && is_x86_feature_detected!("avx512ifma")
    }

    ntt_kernels!(
        feature = "avx512f,avx512dq,avx512ifma",
        lanes = 8,
        vector = __m512i,
        halves = [4, 2, 1],
        rev = [1, 2, 4],
        radix8 = true
    );
}
