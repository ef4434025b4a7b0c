//! AVX2 kernels: four 64-bit lanes, primes up to 61 bits.
//!
//! AVX2 has no 64x64-bit multiply: the Shoup quotient `hi(x * w')` and the
//! low products `x * w - q * p` are built from `vpmuludq` (32x32 -> 64)
//! pieces. Lazy values stay below `4p < 2^63`, so a signed compare (the
//! sign bit of `x - b`) decides the conditional subtractions.

use core::arch::x86_64::*;

/// Broadcast constants of one modulus.
#[derive(Clone, Copy)]
pub(super) struct Consts {
    p: __m256i,
    two_p: __m256i,
    p_hi: __m256i,
}

#[target_feature(enable = "avx2")]
#[inline]
pub(super) fn consts(p: u64) -> Consts {
    Consts {
        p: splat(p),
        two_p: splat(2 * p),
        p_hi: splat(p >> 32),
    }
}

#[target_feature(enable = "avx2")]
#[inline]
pub(super) fn splat(x: u64) -> __m256i {
    _mm256_set1_epi64x(x as i64)
}

#[target_feature(enable = "avx2")]
#[inline]
pub(super) fn load(a: &[u64; 4]) -> __m256i {
    // SAFETY: `a` is a reference to 32 readable bytes, `loadu` has no
    // alignment requirement, and avx2 is enabled on this function.
    unsafe { _mm256_loadu_si256(a.as_ptr().cast()) }
}

#[target_feature(enable = "avx2")]
#[inline]
pub(super) fn store(a: &mut [u64; 4], v: __m256i) {
    // SAFETY: `a` is an exclusive reference to 32 writable bytes, `storeu`
    // has no alignment requirement, and avx2 is enabled on this function.
    unsafe { _mm256_storeu_si256(a.as_mut_ptr().cast(), v) }
}

#[target_feature(enable = "avx2")]
#[inline]
pub(super) fn add(a: __m256i, b: __m256i) -> __m256i {
    _mm256_add_epi64(a, b)
}

#[target_feature(enable = "avx2")]
#[inline]
pub(super) fn sub(a: __m256i, b: __m256i) -> __m256i {
    _mm256_sub_epi64(a, b)
}

/// `x - b` where `x >= b`, else `x`; needs `x < 2b` and `b < 2^63`.
#[target_feature(enable = "avx2")]
#[inline]
pub(super) fn csub(x: __m256i, b: __m256i) -> __m256i {
    let d = _mm256_sub_epi64(x, b);
    // The sign bit of `d` is set exactly when `x < b` (both below 2^63).
    _mm256_castpd_si256(_mm256_blendv_pd(
        _mm256_castsi256_pd(d),
        _mm256_castsi256_pd(x),
        _mm256_castsi256_pd(d),
    ))
}

/// `x * w mod p` in `[0, 2p)` for `x < 2^64`, `ws = floor(w * 2^64 / p)`.
#[target_feature(enable = "avx2")]
#[inline]
pub(super) fn mul_lazy(c: &Consts, x: __m256i, w: __m256i, ws: __m256i) -> __m256i {
    // q ~ hi64(x * ws) from three 32x32 -> 64 products: leaving out the low
    // x low product and the carries of the middle sums makes q at most 2
    // too small, so x * w - q * p lands in [0, 4p) (instead of Shoup's
    // [0, 2p)) and one conditional subtraction finishes.
    // High halves by a 32-bit swap rather than a shift: LLVM recognizes the
    // shift form as part of a 64x64 high product and scalarizes it.
    let xh = _mm256_shuffle_epi32::<0xb1>(x);
    let wsh = _mm256_shuffle_epi32::<0xb1>(ws);
    let lh = _mm256_mul_epu32(x, wsh);
    let hl = _mm256_mul_epu32(xh, ws);
    let hh = _mm256_mul_epu32(xh, wsh);
    let q = _mm256_add_epi64(
        hh,
        _mm256_add_epi64(_mm256_srli_epi64::<32>(lh), _mm256_srli_epi64::<32>(hl)),
    );
    // x * w - q * p mod 2^64, from the low and cross products.
    let wh = _mm256_shuffle_epi32::<0xb1>(w);
    let qh = _mm256_shuffle_epi32::<0xb1>(q);
    let low = _mm256_sub_epi64(_mm256_mul_epu32(x, w), _mm256_mul_epu32(q, c.p));
    let cross = _mm256_sub_epi64(
        _mm256_add_epi64(_mm256_mul_epu32(x, wh), _mm256_mul_epu32(xh, w)),
        _mm256_add_epi64(_mm256_mul_epu32(q, c.p_hi), _mm256_mul_epu32(qh, c.p)),
    );
    csub(
        _mm256_add_epi64(low, _mm256_slli_epi64::<32>(cross)),
        c.two_p,
    )
}

/// Transposes the 4x4 matrix of 64-bit values held in `v` (row `i` in `v[i]`).
#[target_feature(enable = "avx2")]
#[inline]
fn transpose(v: &mut [__m256i; 4]) {
    let t0 = _mm256_unpacklo_epi64(v[0], v[1]);
    let t1 = _mm256_unpackhi_epi64(v[0], v[1]);
    let t2 = _mm256_unpacklo_epi64(v[2], v[3]);
    let t3 = _mm256_unpackhi_epi64(v[2], v[3]);
    v[0] = _mm256_permute2x128_si256::<0x20>(t0, t2);
    v[1] = _mm256_permute2x128_si256::<0x20>(t1, t3);
    v[2] = _mm256_permute2x128_si256::<0x31>(t0, t2);
    v[3] = _mm256_permute2x128_si256::<0x31>(t1, t3);
}

#[cfg(test)]
fn detected() -> bool {
    is_x86_feature_detected!("avx2")
}

ntt_kernels!(
    feature = "avx2",
    lanes = 4,
    vector = __m256i,
    halves = [2, 1],
    rev = [1, 2],
    radix8 = false
);
