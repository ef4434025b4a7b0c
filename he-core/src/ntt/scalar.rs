//! Portable NTT kernel: Harvey's lazy butterflies with Shoup twiddles.
//!
//! Forward (Cooley-Tukey, decimation in time) keeps values in `[0, 4p)`
//! between layers; inverse (Gentleman-Sande) keeps them in `[0, 2p)`. Both
//! finish with a full reduction to `[0, p)`, so the output is canonical and
//! every backend can be compared bit for bit against this one.

use super::NttPlan;

/// Forward negacyclic NTT, natural order in, bit-reversed order out.
pub(super) fn forward(plan: &NttPlan, a: &mut [u64]) {
    let p = plan.modulus.value();
    let two_p = 2 * p;
    let n = plan.n;
    let mut t = n;
    let mut m = 1;
    while m < n {
        t >>= 1;
        for i in 0..m {
            let w = plan.fwd[m + i];
            let ws = plan.fwd_shoup[m + i];
            let (lo, hi) = a[2 * i * t..2 * i * t + 2 * t].split_at_mut(t);
            for (x, y) in lo.iter_mut().zip(hi.iter_mut()) {
                let mut u = *x;
                if u >= two_p {
                    u -= two_p;
                }
                let v = plan.modulus.mul_shoup_lazy(*y, w, ws);
                *x = u + v;
                *y = u + two_p - v;
            }
        }
        m <<= 1;
    }
    for x in a.iter_mut() {
        let mut v = *x;
        if v >= two_p {
            v -= two_p;
        }
        if v >= p {
            v -= p;
        }
        *x = v;
    }
}

/// Inverse negacyclic NTT with the `1/n` factor, bit-reversed order in,
/// natural order out. The factor is folded into the last stage (`w / n`
/// for the difference, `1 / n` for the sum), which also reduces fully.
pub(super) fn inverse(plan: &NttPlan, a: &mut [u64]) {
    let p = plan.modulus.value();
    let two_p = 2 * p;
    let n = plan.n;
    let mut t = 1;
    let mut m = n;
    while m > 2 {
        let h = m >> 1;
        for i in 0..h {
            let w = plan.inv[h + i];
            let ws = plan.inv_shoup[h + i];
            let (lo, hi) = a[2 * i * t..2 * i * t + 2 * t].split_at_mut(t);
            for (x, y) in lo.iter_mut().zip(hi.iter_mut()) {
                let (u, v) = (*x, *y);
                let mut s = u + v;
                if s >= two_p {
                    s -= two_p;
                }
                *x = s;
                *y = plan.modulus.mul_shoup_lazy(u + two_p - v, w, ws);
            }
        }
        t <<= 1;
        m = h;
    }
    let wn = plan.modulus.mul(plan.inv[1], plan.n_inv);
    let wns = plan.modulus.shoup(wn);
    let (lo, hi) = a.split_at_mut(n / 2);
    for (x, y) in lo.iter_mut().zip(hi.iter_mut()) {
        let (u, v) = (*x, *y);
        *x = plan.modulus.mul_shoup(u + v, plan.n_inv, plan.n_inv_shoup);
        *y = plan.modulus.mul_shoup(u + two_p - v, wn, wns);
    }
}
