//! Polynomials over `Z_t`, coefficients low degree first (`coeffs[i]` is the
//! coefficient of `x^i`). All inputs are reduced mod `t` first, so any
//! `u64` is accepted. Costs are `O(d^2)` multiplications mod `t`, which is
//! fine for bin sizes in the hundreds to low thousands.
//!
//! The sender uses [`RootsProduct`] (or [`from_roots`]) for the matching
//! polynomial of a bin (zero exactly at the bin's item parts) and
//! [`Interpolator`] (or [`interpolate`]) for the label polynomial (through
//! `(item part, label part)`).

use std::sync::Arc;

use he_core::{Modulus, NttPlan};

use crate::error::{Error, Result};

/// The monic polynomial `prod (x - r)` over the given roots: `roots.len() + 1`
/// coefficients, the last one 1. `from_roots(&[])` is the constant 1.
/// `O(d^2)`: the method for a few dozen roots; [`RootsProduct`] is faster
/// above that.
pub fn from_roots(t: &Modulus, roots: &[u64]) -> Vec<u64> {
    let mut c = Vec::with_capacity(roots.len() + 1);
    c.push(1 % t.value());
    for &r in roots {
        let neg_r = t.neg(t.reduce(r));
        let neg_r_shoup = t.shoup(neg_r);
        // Multiply by (x - r): new[i] = old[i-1] + (-r) * old[i].
        c.push(0);
        for i in (1..c.len()).rev() {
            c[i] = t.add(c[i - 1], t.mul_shoup(c[i], neg_r, neg_r_shoup));
        }
        c[0] = t.mul_shoup(c[0], neg_r, neg_r_shoup);
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

/// At most this many roots [`RootsProduct`] multiplies out directly.
/// Measured with 768 roots mod 2277377: leaves of 16 take 58 us, of 32
/// 79 us, of 64 138 us (the quadratic method: 1.8 ms).
const TREE_LEAF_ROOTS: usize = 16;

/// `prod (x - r)` over `Z_t` for many root sets, as the sender needs for
/// every slot of every bundle: a product tree whose leaves use
/// [`from_roots`] and whose inner products use he-core's negacyclic NTT at
/// a size above the product's degree (so nothing wraps around), for
/// `O(d log^2 d)` instead of `O(d^2)`. With bins of 242 items this is about
/// 12 times faster, with 768 about 30 times. Its
/// [`interpolator`](Self::interpolator) interpolates on the same tree:
/// setting up for 256 points and interpolating three value vectors took
/// 165 us, against 618 us for [`Interpolator::new`] and 1.96 ms before
/// these trees (one core).
///
/// The NTT of size `m` needs `t = 1 mod 2m`, which BFV batching already
/// demands up to the ring degree; products too large for the roots `t`
/// has fall back to the quadratic method, so every `t` gives the same
/// result as [`from_roots`].
///
/// ```
/// use he_core::Modulus;
/// use psi_core::poly::{RootsProduct, from_roots};
///
/// let t = Modulus::new(65537)?;
/// let roots: Vec<u64> = (0..300).map(|i| i * i + 7).collect();
/// let product = RootsProduct::new(&t, roots.len());
/// assert_eq!(product.from_roots(&roots), from_roots(&t, &roots));
/// # Ok::<(), he_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct RootsProduct {
    t: Modulus,
    /// `plans[k]` is the NTT of size `2^k`, for the sizes the tree uses and
    /// `t` allows (shared by the interpolators made from this).
    plans: Arc<Vec<Option<NttPlan>>>,
}

impl RootsProduct {
    /// Prepares products of up to `max_roots` roots (more still work, above
    /// that size by the quadratic method).
    pub fn new(t: &Modulus, max_roots: usize) -> Self {
        // Larger products than he-core's largest NTT use the quadratic
        // method.
        let top = max_roots
            .saturating_add(1)
            .min(he_core::ntt::MAX_DEGREE)
            .next_power_of_two()
            .trailing_zeros() as usize;
        let plans = (0..=top)
            .map(|k| {
                let size = 1usize << k;
                // The smallest product the tree forms has more than
                // TREE_LEAF_ROOTS roots.
                if size <= TREE_LEAF_ROOTS || !(t.value() - 1).is_multiple_of(2 * size as u64) {
                    return None;
                }
                NttPlan::new(size, t.value()).ok()
            })
            .collect();
        Self {
            t: *t,
            plans: Arc::new(plans),
        }
    }

    /// Quadratic methods only (no NTT).
    fn quadratic(t: &Modulus) -> Self {
        Self {
            t: *t,
            plans: Arc::new(Vec::new()),
        }
    }

    /// The NTT that multiplies two halves of `roots` roots, if the tree
    /// splits there.
    fn split_plan(&self, roots: usize) -> Option<&NttPlan> {
        if roots <= TREE_LEAF_ROOTS {
            return None;
        }
        // The product has roots + 1 coefficients: the size must exceed its
        // degree.
        let k = (roots + 1).next_power_of_two().trailing_zeros() as usize;
        self.plans.get(k)?.as_ref()
    }

    /// The monic polynomial `prod (x - r)`, equal to [`from_roots`]`(t, roots)`.
    pub fn from_roots(&self, roots: &[u64]) -> Vec<u64> {
        let Some(plan) = self.split_plan(roots.len()) else {
            return from_roots(&self.t, roots);
        };
        let (left, right) = roots.split_at(roots.len() / 2);
        let mut a = self.from_roots(left);
        let mut b = self.from_roots(right);
        self.forward(plan, &mut a);
        self.forward(plan, &mut b);
        for (x, &y) in a.iter_mut().zip(&b) {
            *x = self.t.mul(*x, y);
        }
        plan.inverse(&mut a);
        a.truncate(roots.len() + 1);
        a
    }

    /// Prepares interpolation through `xs` on this product tree: the same
    /// results as [`Interpolator::new`], but each
    /// [`interpolate`](Interpolator::interpolate) costs `O(d log^2 d)`
    /// (the setup's weights still cost `O(d^2)`). Errors on a repeated
    /// point.
    pub fn interpolator(&self, xs: &[u64]) -> Result<Interpolator> {
        Interpolator::with_products(self.clone(), xs)
    }

    /// Zero-pads `a` to the plan's size and transforms it.
    fn forward(&self, plan: &NttPlan, a: &mut Vec<u64>) {
        a.resize(plan.degree(), 0);
        plan.forward(a);
    }

    /// The tree over `xs` (reduced) and its vanishing polynomial.
    fn tree(&self, xs: &[u64], start: usize) -> (Subtree, Vec<u64>) {
        let Some(plan) = self.split_plan(xs.len()) else {
            let vanishing = from_roots(&self.t, xs);
            let leaf = Subtree::Leaf {
                start,
                vanishing: vanishing.clone(),
            };
            return (leaf, vanishing);
        };
        let half = xs.len() / 2;
        let (left, mut left_ntt) = self.tree(&xs[..half], start);
        let (right, mut right_ntt) = self.tree(&xs[half..], start + half);
        self.forward(plan, &mut left_ntt);
        self.forward(plan, &mut right_ntt);
        let mut product: Vec<u64> = left_ntt
            .iter()
            .zip(&right_ntt)
            .map(|(&x, &y)| self.t.mul(x, y))
            .collect();
        plan.inverse(&mut product);
        product.truncate(xs.len() + 1);
        let node = Subtree::Node {
            len: xs.len(),
            left: Box::new(left),
            right: Box::new(right),
            left_ntt,
            right_ntt,
        };
        (node, product)
    }

    /// `sum_i scaled[i] * M(x) / (x - x_i)` over the subtree's points, where
    /// `M` is the subtree's vanishing polynomial: `len` coefficients.
    fn combine(&self, node: &Subtree, xs: &[u64], scaled: &[u64]) -> Vec<u64> {
        let t = &self.t;
        match node {
            Subtree::Leaf { start, vanishing } => {
                const LANES: usize = 8;
                let n = vanishing.len() - 1;
                let mut c = vec![0u64; n];
                let points = xs[*start..*start + n].chunks(LANES);
                let scales = scaled[*start..*start + n].chunks(LANES);
                for (x_chunk, s_chunk) in points.zip(scales) {
                    // Synthetic divisions M(x) / (x - x_j), highest
                    // coefficient first, for up to eight points at once
                    // (their multiplications overlap), with Shoup
                    // constants. Each quotient coefficient q stays below
                    // 3t < 2^63; each lazy product below 2t.
                    let mut x = [0u64; LANES];
                    let mut x_shoup = [0u64; LANES];
                    let mut s = [0u64; LANES];
                    let mut s_shoup = [0u64; LANES];
                    for (j, (&xj, &sj)) in x_chunk.iter().zip(s_chunk).enumerate() {
                        (x[j], x_shoup[j]) = (xj, t.shoup(xj));
                        (s[j], s_shoup[j]) = (sj, t.shoup(sj));
                    }
                    let mut q = [vanishing[n]; LANES]; // = 1
                    for k in (0..n).rev() {
                        let mut sum = 0u128;
                        for j in 0..LANES {
                            sum += t.mul_shoup_lazy(q[j], s[j], s_shoup[j]) as u128;
                            q[j] = t.mul_shoup_lazy(q[j], x[j], x_shoup[j]) + vanishing[k];
                        }
                        c[k] = t.add(c[k], t.reduce_u128(sum));
                    }
                }
                c
            }
            Subtree::Node {
                len,
                left,
                right,
                left_ntt,
                right_ntt,
            } => {
                // L = L_left * M_right + L_right * M_left.
                let plan = self
                    .split_plan(*len)
                    .expect("a node was built with this plan");
                let mut a = self.combine(left, xs, scaled);
                let mut b = self.combine(right, xs, scaled);
                self.forward(plan, &mut a);
                self.forward(plan, &mut b);
                for (((x, &y), &mr), &ml) in a.iter_mut().zip(&b).zip(right_ntt).zip(left_ntt) {
                    *x = t.add(t.mul(*x, mr), t.mul(y, ml));
                }
                plan.inverse(&mut a);
                a.truncate(*len);
                a
            }
        }
    }
}

/// `M'(x_i)` for every point, by Horner's rule on the derivative of `m`
/// (`m.len() - 1 = xs.len()`), eight points at a time so that their
/// multiplications overlap, with Shoup constants and lazy reduction:
/// still `O(d^2)`, but with no modular reduction in the loop, unlike the
/// products `prod_{j != i} (x_i - x_j)`.
fn derivative_at(t: &Modulus, m: &[u64], xs: &[u64]) -> Vec<u64> {
    const LANES: usize = 8;
    // M'(x) = sum_{k >= 1} k m_k x^(k-1).
    let derivative: Vec<u64> = m
        .iter()
        .enumerate()
        .skip(1)
        .map(|(k, &c)| t.mul(t.reduce(k as u64), c))
        .collect();
    let mut out = Vec::with_capacity(xs.len());
    for chunk in xs.chunks(LANES) {
        let mut x = [0u64; LANES];
        let mut x_shoup = [0u64; LANES];
        for (j, &xj) in chunk.iter().enumerate() {
            x[j] = xj;
            x_shoup[j] = t.shoup(xj);
        }
        // Each acc stays below 3t < 2^63 (t < 2^61): a lazy product is
        // below 2t, a coefficient below t.
        let mut acc = [0u64; LANES];
        for &c in derivative.iter().rev() {
            for j in 0..LANES {
                acc[j] = t.mul_shoup_lazy(acc[j], x[j], x_shoup[j]) + c;
            }
        }
        out.extend(acc[..chunk.len()].iter().map(|&a| t.reduce(a)));
    }
    out
}

/// A node of an interpolation tree over consecutive points.
#[derive(Clone, Debug)]
enum Subtree {
    /// Points `start..start + vanishing.len() - 1`, combined directly.
    Leaf { start: usize, vanishing: Vec<u64> },
    /// `len` points split in two halves, with the halves' vanishing
    /// polynomials transformed at the size that multiplies them.
    Node {
        len: usize,
        left: Box<Subtree>,
        right: Box<Subtree>,
        left_ntt: Vec<u64>,
        right_ntt: Vec<u64>,
    },
}

/// Interpolation through a fixed set of points `xs` for many value vectors
/// `ys`, as the sender needs for the label parts of one slot: the setup
/// (the vanishing polynomial `M(x) = prod (x - x_i)` and the barycentric
/// weights `w_i = 1 / M'(x_i)`, with a single modular inversion) costs
/// `O(d^2)`, and each interpolation `L(x) = sum_i y_i w_i M(x) / (x - x_i)`
/// another `O(d^2)` multiplications with no inversion, or `O(d log^2 d)`
/// when made by [`RootsProduct::interpolator`].
#[derive(Clone, Debug)]
pub struct Interpolator {
    products: RootsProduct,
    xs: Vec<u64>,
    tree: Subtree,
    vanishing: Vec<u64>,
    weights: Vec<u64>,
}

impl Interpolator {
    /// Prepares interpolation through `xs`; errors on a repeated point.
    pub fn new(t: &Modulus, xs: &[u64]) -> Result<Self> {
        Self::with_products(RootsProduct::quadratic(t), xs)
    }

    fn with_products(products: RootsProduct, xs: &[u64]) -> Result<Self> {
        let t = products.t;
        let xs: Vec<u64> = xs.iter().map(|&x| t.reduce(x)).collect();
        let (tree, vanishing) = products.tree(&xs, 0);
        // M'(x_i) = prod_{j != i} (x_i - x_j): zero for a repeated point.
        let derivs = derivative_at(&t, &vanishing, &xs);
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
            products,
            xs,
            tree,
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
        let t = &self.products.t;
        let n = self.xs.len();
        if ys.len() != n {
            return Err(Error::InterpolationLengthMismatch {
                xs: n,
                ys: ys.len(),
            });
        }
        let scaled: Vec<u64> = ys
            .iter()
            .zip(&self.weights)
            .map(|(&y, &w)| t.mul(t.reduce(y), w))
            .collect();
        Ok(self.products.combine(&self.tree, &self.xs, &scaled))
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

    proptest! {
        #[test]
        fn roots_product_equals_quadratic(
            roots in proptest::collection::vec(any::<u64>(), 0..700),
            // Negacyclic NTTs up to size 2^11, 2^13, 2^15 (some products
            // of 700 roots fall back), none above the leaves (97), and a
            // 60-bit prime.
            p in prop::sample::select(vec![12_289u64, 2_277_377, 65_537, 97, 1_152_921_504_606_584_833]),
            max in 0usize..800,
        ) {
            let t = m(p);
            let product = RootsProduct::new(&t, max);
            prop_assert_eq!(product.from_roots(&roots), from_roots(&t, &roots));
        }
    }

    proptest! {
        #[test]
        fn tree_interpolation_equals_newton(
            pts in proptest::collection::btree_map(0u64..2_277_377, any::<u64>(), 0..300),
            p in prop::sample::select(vec![2_277_377u64, 12_289, 97]),
        ) {
            let t = m(p);
            // Points distinct mod t.
            let mut seen = std::collections::BTreeSet::new();
            let (xs, ys): (Vec<u64>, Vec<u64>) =
                pts.into_iter().filter(|&(x, _)| seen.insert(x % p)).unzip();
            let it = RootsProduct::new(&t, xs.len()).interpolator(&xs).unwrap();
            prop_assert_eq!(it.vanishing().to_vec(), from_roots(&t, &xs));
            let c = it.interpolate(&ys).unwrap();
            prop_assert_eq!(&c, &interpolate(&t, &xs, &ys).unwrap());
            for (&x, &y) in xs.iter().zip(&ys) {
                prop_assert_eq!(evaluate(&t, &c, x), t.reduce(y));
            }
        }
    }

    #[test]
    fn tree_interpolator_at_bin_sizes() {
        let t = m(2_277_377);
        let product = RootsProduct::new(&t, 256);
        for len in [0, 1, 16, 17, 100, 255, 256, 300] {
            let xs: Vec<u64> = (0..len as u64).map(|i| i * 7919 + 3).collect();
            let tree = product.interpolator(&xs).unwrap();
            let quadratic = Interpolator::new(&t, &xs).unwrap();
            assert_eq!(tree.vanishing(), quadratic.vanishing());
            for seed in 0..3u64 {
                let ys: Vec<u64> = (0..len as u64)
                    .map(|i| (i * 31 + seed * 1000) % 2_277_377)
                    .collect();
                assert_eq!(
                    tree.interpolate(&ys).unwrap(),
                    quadratic.interpolate(&ys).unwrap(),
                    "{len} points"
                );
            }
            assert!(tree.interpolate(&[1; 2000]).is_err());
        }
        let mut dup: Vec<u64> = (0..40).collect();
        dup[30] = 2_277_377 + 5;
        assert_eq!(
            product.interpolator(&dup).unwrap_err(),
            Error::DuplicateInterpolationPoint { x: 5 }
        );
    }

    proptest! {
        #[test]
        fn derivative_is_the_product_of_differences(
            xs in proptest::collection::vec(any::<u64>(), 0..40),
            p in prop::sample::select(vec![97u64, 2_277_377, (1u64 << 61) - 1]),
        ) {
            // 2^61 - 1: the largest prime he-core accepts, for the lazy bound.
            let t = m(p);
            let xs: Vec<u64> = xs.iter().map(|&x| t.reduce(x)).collect();
            let got = derivative_at(&t, &from_roots(&t, &xs), &xs);
            for (i, &xi) in xs.iter().enumerate() {
                let want = xs.iter().enumerate().filter(|&(j, _)| j != i)
                    .fold(1u64, |acc, (_, &xj)| t.mul(acc, t.sub(xi, xj)));
                prop_assert_eq!(got[i], want);
            }
        }
    }

    #[test]
    fn roots_product_any_size_hint() {
        let t = m(65_537);
        let roots: Vec<u64> = (0..100).collect();
        for max in [0, 1, usize::MAX / 2, usize::MAX] {
            let product = RootsProduct::new(&t, max);
            assert_eq!(product.from_roots(&roots), from_roots(&t, &roots));
        }
    }

    #[test]
    fn roots_product_large_bins() {
        // The sizes the deep presets use, with repeated roots (an unlabeled
        // bin may hold two items sharing a part) and roots above t.
        let t = m(2_277_377);
        let product = RootsProduct::new(&t, 782);
        assert!(product.plans.iter().flatten().count() >= 4);
        for len in [49, 64, 65, 200, 511, 512, 768, 782, 1500] {
            let roots: Vec<u64> = (0..len as u64)
                .map(|i| (i * 2_654_435_761 + (i % 7) * 1000) % 3_000_000)
                .collect();
            let c = product.from_roots(&roots);
            assert_eq!(c, from_roots(&t, &roots), "{len} roots");
            for &r in &roots {
                assert_eq!(evaluate(&t, &c, r), 0);
            }
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
