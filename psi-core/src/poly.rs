//! Polynomials over `Z_t`, coefficients low degree first (`coeffs[i]` is the
//! coefficient of `x^i`). All inputs are reduced mod `t` first, so any
//! `u64` is accepted. Costs are `O(d^2)` multiplications mod `t`, which is
//! fine for bin sizes in the hundreds to low thousands.
//!
//! The sender uses [`from_roots`] for the matching polynomial of a bin
//! (zero exactly at the bin's item parts) and [`interpolate`] for the label
//! polynomial (through `(item part, label part)`).

use he_core::Modulus;

use crate::error::{Error, Result};

/// The monic polynomial `prod (x - r)` over the given roots: `roots.len() + 1`
/// coefficients, the last one 1. `from_roots(&[])` is the constant 1.
pub fn from_roots(t: &Modulus, roots: &[u64]) -> Vec<u64> {
    let mut c = Vec::with_capacity(roots.len() + 1);
    c.push(1 % t.value());
    for &r in roots {
        let neg_r = t.neg(t.reduce(r));
        // Multiply by (x - r): new[i] = old[i-1] + (-r) * old[i].
        c.push(0);
        for i in (0..c.len()).rev() {
            let shifted = if i > 0 { c[i - 1] } else { 0 };
            c[i] = t.add(shifted, t.mul(neg_r, c[i]));
        }
    }
    c
}

/// Horner evaluation of `coeffs` at `x`. The empty polynomial is 0.
pub fn evaluate(t: &Modulus, coeffs: &[u64], x: u64) -> u64 {
    let x = t.reduce(x);
    coeffs
        .iter()
        .rev()
        .fold(0, |acc, &c| t.add(t.mul(acc, x), t.reduce(c)))
}

/// The unique polynomial of degree `< xs.len()` through the points
/// `(xs[i], ys[i])` (Newton divided differences, `O(d^2)`). Returns
/// `xs.len()` coefficients (the empty input gives the zero polynomial,
/// `vec![]`).
///
/// Errors on a length mismatch or on two equal `x` values mod `t`.
pub fn interpolate(t: &Modulus, xs: &[u64], ys: &[u64]) -> Result<Vec<u64>> {
    if xs.len() != ys.len() {
        return Err(Error::InterpolationLengthMismatch {
            xs: xs.len(),
            ys: ys.len(),
        });
    }
    let n = xs.len();
    let xs: Vec<u64> = xs.iter().map(|&x| t.reduce(x)).collect();
    // Divided differences in place: after round j, dd[i] = f[x_{i-j}..x_i].
    let mut dd: Vec<u64> = ys.iter().map(|&y| t.reduce(y)).collect();
    for j in 1..n {
        for i in (j..n).rev() {
            let den = t.sub(xs[i], xs[i - j]);
            let inv = t
                .inv_vt(den)
                .ok_or(Error::DuplicateInterpolationPoint { x: xs[i] })?;
            dd[i] = t.mul(t.sub(dd[i], dd[i - 1]), inv);
        }
    }
    // Expand the Newton form from the top: p = dd[n-1]; p = p*(x - x_i) + dd[i].
    let mut c = vec![0u64; n];
    for i in (0..n).rev() {
        // c <- c * (x - xs[i]) + dd[i], with deg c < n - i.
        let neg = t.neg(xs[i]);
        let mut carry = 0;
        for ck in c.iter_mut().take(n - i) {
            let old = *ck;
            *ck = t.add(carry, t.mul(neg, old));
            carry = old;
        }
        c[0] = t.add(c[0], dd[i]);
    }
    Ok(c)
}

/// Interpolation through a fixed set of points `xs` for many value vectors
/// `ys`, as the sender needs for the label parts of one slot: the setup
/// (the vanishing polynomial `M(x) = prod (x - x_i)` and the barycentric
/// weights `w_i = 1 / M'(x_i)`, with a single modular inversion) costs
/// `O(d^2)`, and each interpolation `L(x) = sum_i y_i w_i M(x) / (x - x_i)`
/// another `O(d^2)` multiplications with no inversion.
#[derive(Clone, Debug)]
pub struct Interpolator {
    t: Modulus,
    xs: Vec<u64>,
    vanishing: Vec<u64>,
    weights: Vec<u64>,
}

impl Interpolator {
    /// Prepares interpolation through `xs`; errors on a repeated point.
    pub fn new(t: &Modulus, xs: &[u64]) -> Result<Self> {
        let xs: Vec<u64> = xs.iter().map(|&x| t.reduce(x)).collect();
        let vanishing = from_roots(t, &xs);
        // M'(x_i) = prod_{j != i} (x_i - x_j).
        let derivs: Vec<u64> = xs
            .iter()
            .enumerate()
            .map(|(i, &xi)| {
                xs.iter()
                    .enumerate()
                    .filter(|&(j, _)| j != i)
                    .fold(1 % t.value(), |acc, (_, &xj)| t.mul(acc, t.sub(xi, xj)))
            })
            .collect();
        // Batch inversion (Montgomery's trick): one inversion for all.
        let mut prefix = Vec::with_capacity(derivs.len());
        let mut acc = 1 % t.value();
        for &d in &derivs {
            prefix.push(acc);
            acc = t.mul(acc, d);
        }
        let mut inv = match t.inv_vt(acc) {
            Some(v) => v,
            None if xs.is_empty() => 1,
            None => {
                let dup = xs
                    .iter()
                    .enumerate()
                    .find(|&(i, x)| xs[..i].contains(x))
                    .map_or(0, |(_, &x)| x);
                return Err(Error::DuplicateInterpolationPoint { x: dup });
            }
        };
        let mut weights = vec![0u64; derivs.len()];
        for i in (0..derivs.len()).rev() {
            weights[i] = t.mul(inv, prefix[i]);
            inv = t.mul(inv, derivs[i]);
        }
        Ok(Self {
            t: *t,
            xs,
            vanishing,
            weights,
        })
    }

    /// The vanishing polynomial `prod (x - x_i)` (monic).
    pub fn vanishing(&self) -> &[u64] {
        &self.vanishing
    }

    /// The polynomial of degree `< len(xs)` through `(x_i, ys[i])`.
    pub fn interpolate(&self, ys: &[u64]) -> Result<Vec<u64>> {
        let t = &self.t;
        let n = self.xs.len();
        if ys.len() != n {
            return Err(Error::InterpolationLengthMismatch {
                xs: n,
                ys: ys.len(),
            });
        }
        let mut c = vec![0u64; n];
        let m = &self.vanishing;
        for ((&xi, &wi), &yi) in self.xs.iter().zip(&self.weights).zip(ys) {
            let scale = t.mul(t.reduce(yi), wi);
            if scale == 0 {
                continue;
            }
            // Synthetic division M(x) / (x - x_i), highest coefficient first.
            let mut q = m[n]; // = 1
            for k in (0..n).rev() {
                c[k] = t.add(c[k], t.mul(scale, q));
                q = t.add(m[k], t.mul(xi, q));
            }
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn m(p: u64) -> Modulus {
        Modulus::new(p).unwrap()
    }

    #[test]
    fn from_roots_small() {
        let t = m(65537);
        // (x - 1)(x - 2) = x^2 - 3x + 2
        assert_eq!(from_roots(&t, &[1, 2]), vec![2, 65537 - 3, 1]);
        assert_eq!(from_roots(&t, &[]), vec![1]);
        // Roots are reduced.
        assert_eq!(from_roots(&t, &[65538]), vec![65536, 1]);
    }

    #[test]
    fn interpolate_small() {
        let t = m(65537);
        // y = 3x + 5 through (1, 8), (2, 11).
        assert_eq!(interpolate(&t, &[1, 2], &[8, 11]).unwrap(), vec![5, 3]);
        assert_eq!(interpolate(&t, &[4], &[9]).unwrap(), vec![9]);
        assert_eq!(interpolate(&t, &[], &[]).unwrap(), Vec::<u64>::new());
        assert_eq!(
            interpolate(&t, &[1, 2, 65538], &[1, 2, 3]).unwrap_err(),
            Error::DuplicateInterpolationPoint { x: 1 }
        );
        assert_eq!(
            interpolate(&t, &[1, 2], &[1]).unwrap_err(),
            Error::InterpolationLengthMismatch { xs: 2, ys: 1 }
        );
    }

    fn naive_mul(t: &Modulus, a: &[u64], b: &[u64]) -> Vec<u64> {
        let mut r = vec![0; a.len() + b.len() - 1];
        for (i, &x) in a.iter().enumerate() {
            for (j, &y) in b.iter().enumerate() {
                r[i + j] = t.add(r[i + j], t.mul(x, y));
            }
        }
        r
    }

    proptest! {
        #[test]
        fn roots_are_roots(roots in proptest::collection::vec(any::<u64>(), 0..40),
                           p in prop::sample::select(vec![65537u64, 1_032_193, 1_152_921_504_606_584_833]),
                           z in any::<u64>()) {
            let t = m(p);
            let c = from_roots(&t, &roots);
            prop_assert_eq!(c.len(), roots.len() + 1);
            prop_assert_eq!(*c.last().unwrap(), 1);
            for &r in &roots {
                prop_assert_eq!(evaluate(&t, &c, r), 0);
            }
            // Matches the product of linear factors evaluated directly.
            let direct = roots.iter().fold(1u64, |acc, &r| t.mul(acc, t.sub(t.reduce(z), t.reduce(r))));
            prop_assert_eq!(evaluate(&t, &c, z), direct);
            // And the naive product of linear factors.
            let naive = roots.iter().fold(vec![1u64], |acc, &r| naive_mul(&t, &acc, &[t.neg(t.reduce(r)), 1]));
            prop_assert_eq!(c, naive);
        }

        #[test]
        fn interpolation_passes_through_points(
            pts in proptest::collection::btree_map(0u64..1_000_000, any::<u64>(), 0..40),
            p in prop::sample::select(vec![1_032_193u64, 1_152_921_504_606_584_833]),
        ) {
            let t = m(p);
            let xs: Vec<u64> = pts.keys().copied().collect();
            let ys: Vec<u64> = pts.values().copied().collect();
            let c = interpolate(&t, &xs, &ys).unwrap();
            prop_assert_eq!(c.len(), xs.len());
            for (&x, &y) in xs.iter().zip(&ys) {
                prop_assert_eq!(evaluate(&t, &c, x), t.reduce(y));
            }
        }

        #[test]
        fn interpolation_recovers_polynomial(coeffs in proptest::collection::vec(0u64..65537, 1..30)) {
            let t = m(65537);
            let xs: Vec<u64> = (0..coeffs.len() as u64).map(|i| i * 7 + 3).collect();
            let ys: Vec<u64> = xs.iter().map(|&x| evaluate(&t, &coeffs, x)).collect();
            prop_assert_eq!(interpolate(&t, &xs, &ys).unwrap(), coeffs);
        }
    }

    #[test]
    fn interpolator_matches_newton() {
        let t = Modulus::new(1_032_193).unwrap();
        let xs: Vec<u64> = (0..40).map(|i| i * 7919 + 3).collect();
        let it = Interpolator::new(&t, &xs).unwrap();
        assert_eq!(it.vanishing(), from_roots(&t, &xs).as_slice());
        for seed in 0..3u64 {
            let ys: Vec<u64> = (0..40)
                .map(|i| (i * 31 + seed * 1000) % 1_032_193)
                .collect();
            assert_eq!(
                it.interpolate(&ys).unwrap(),
                interpolate(&t, &xs, &ys).unwrap()
            );
        }
        assert!(Interpolator::new(&t, &[5, 9, 5]).is_err());
        assert_eq!(
            Interpolator::new(&t, &[])
                .unwrap()
                .interpolate(&[])
                .unwrap(),
            Vec::<u64>::new()
        );
        assert!(it.interpolate(&[1]).is_err());
    }
}
