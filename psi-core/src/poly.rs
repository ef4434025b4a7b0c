//! Polynomials over `Z_t`, coefficients low degree first (`coeffs[i]` is the
//! coefficient of `x^i`). All inputs are reduced mod `t` first, so any
//! `u64` is accepted. The free functions cost `O(d^2)` multiplications mod
//! `t`; [`RootsProduct`] and the interpolators it makes use product trees
//! with NTT products, `O(d log^2 d)`.
//!
//! The sender uses [`RootsProduct`] (or [`from_roots`]) for the matching
//! polynomial of a bin (zero exactly at the bin's item parts) and
//! [`Interpolator`] (or [`interpolate`]) for the label polynomial (through
//! `(item part, label part)`).

use std::fmt;
use std::sync::{Arc, OnceLock};

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
/// demands up to the ring degree. Products larger than the largest NTT `t`
/// allows are cut into blocks of half that size, transformed once and
/// summed in the NTT domain; a `t` with no NTT above the leaves uses the
/// quadratic method. Every `t` gives the same result as [`from_roots`].
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
#[derive(Clone)]
pub struct RootsProduct {
    t: Modulus,
    /// The largest `k` with an NTT of size `2^k` for this `t` (`t = 1 mod
    /// 2^(k+1)`, at most he-core's largest), if that size is above the
    /// tree's leaves.
    max_k: Option<usize>,
    /// `plans[k]`, the NTT of size `2^k`, made on first use and shared by
    /// the clones, the interpolators made from this and their tree nodes.
    plans: Arc<[OnceLock<Option<Arc<NttPlan>>>]>,
}

impl fmt::Debug for RootsProduct {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RootsProduct")
            .field("t", &self.t.value())
            .field("largest_ntt", &self.max_k.map(|k| 1usize << k))
            .finish()
    }
}

impl RootsProduct {
    /// Prepares products over `Z_t`, making the NTTs for up to `max_roots`
    /// roots now (larger ones are made on first use).
    pub fn new(t: &Modulus, max_roots: usize) -> Self {
        let largest = he_core::ntt::MAX_DEGREE.trailing_zeros() as usize;
        // A negacyclic NTT of size 2^k needs 2^(k+1) | t - 1.
        let max_k = ((t.value() - 1).trailing_zeros() as usize)
            .checked_sub(1)
            .map(|k| k.min(largest))
            .filter(|&k| 1usize << k > TREE_LEAF_ROOTS);
        let product = Self {
            t: *t,
            max_k,
            plans: (0..=largest).map(|_| OnceLock::new()).collect(),
        };
        let hint = max_roots.saturating_add(1).min(he_core::ntt::MAX_DEGREE);
        for k in 0..=hint.next_power_of_two().trailing_zeros() as usize {
            product.plan(k);
        }
        product
    }

    /// Quadratic methods only (no NTT).
    fn quadratic(t: &Modulus) -> Self {
        Self {
            t: *t,
            max_k: None,
            plans: Arc::new([]),
        }
    }

    /// The NTT of size `2^k`, if `t` has one and the tree uses it.
    fn plan(&self, k: usize) -> Option<&Arc<NttPlan>> {
        if self.max_k? < k || 1usize << k <= TREE_LEAF_ROOTS {
            return None;
        }
        self.plans
            .get(k)?
            .get_or_init(|| NttPlan::new(1 << k, self.t.value()).ok().map(Arc::new))
            .as_ref()
    }

    /// The NTT that holds a product of `coeffs` coefficients without
    /// wrapping around, if there is one.
    fn plan_for(&self, coeffs: usize) -> Option<&Arc<NttPlan>> {
        self.plan(coeffs.next_power_of_two().trailing_zeros() as usize)
    }

    /// Whether `roots` roots are split in two halves (or multiplied out
    /// directly).
    fn splits(&self, roots: usize) -> bool {
        roots > TREE_LEAF_ROOTS && self.max_k.is_some()
    }

    /// The monic polynomial `prod (x - r)`, equal to [`from_roots`]`(t, roots)`.
    pub fn from_roots(&self, roots: &[u64]) -> Vec<u64> {
        if !self.splits(roots.len()) {
            return from_roots(&self.t, roots);
        }
        let (left, right) = roots.split_at(roots.len() / 2);
        self.multiply(self.from_roots(left), self.from_roots(right))
    }

    /// `a * b`, coefficients reduced: one NTT product when it fits, else
    /// blocks of half the largest NTT, else schoolbook.
    fn multiply(&self, mut a: Vec<u64>, mut b: Vec<u64>) -> Vec<u64> {
        let t = &self.t;
        if a.is_empty() || b.is_empty() {
            return Vec::new();
        }
        let len = a.len() + b.len() - 1;
        if let Some(plan) = self.plan_for(len) {
            self.forward(plan, &mut a);
            self.forward(plan, &mut b);
            return self.product_of_transforms(plan, &a, &b, len);
        }
        let Some(plan) = self.max_k.and_then(|k| self.plan(k)) else {
            let mut out = vec![0u64; len];
            for (i, &x) in a.iter().enumerate() {
                for (o, &y) in out[i..].iter_mut().zip(&b) {
                    *o = t.add(*o, t.mul(x, y));
                }
            }
            return out;
        };
        // Blocks of half the size: a block product has fewer coefficients
        // than the size, so it does not wrap; the products that land at the
        // same offset are summed before one inverse transform.
        let size = plan.degree();
        let half = size / 2;
        let blocks = |p: &[u64]| -> Vec<Vec<u64>> {
            p.chunks(half)
                .map(|c| {
                    let mut v = c.to_vec();
                    self.forward(plan, &mut v);
                    v
                })
                .collect()
        };
        let (fa, fb) = (blocks(&a), blocks(&b));
        let mut out = vec![0u64; len];
        for offset in 0..fa.len() + fb.len() - 1 {
            let mut acc = vec![0u64; size];
            let first = offset.saturating_sub(fb.len() - 1);
            for i in first..=offset.min(fa.len() - 1) {
                for ((c, &x), &y) in acc.iter_mut().zip(&fa[i]).zip(&fb[offset - i]) {
                    *c = t.add(*c, t.mul(x, y));
                }
            }
            plan.inverse(&mut acc);
            for (o, &c) in out[offset * half..].iter_mut().zip(&acc) {
                *o = t.add(*o, c);
            }
        }
        out
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

    /// The first `len` coefficients of the product whose factors `plan`
    /// transformed.
    fn product_of_transforms(&self, plan: &NttPlan, a: &[u64], b: &[u64], len: usize) -> Vec<u64> {
        let mut product: Vec<u64> = a.iter().zip(b).map(|(&x, &y)| self.t.mul(x, y)).collect();
        plan.inverse(&mut product);
        product.truncate(len);
        product
    }

    /// The tree over `xs` (reduced) and its vanishing polynomial.
    fn tree(&self, xs: &[u64], start: usize) -> (Subtree, Vec<u64>) {
        if !self.splits(xs.len()) {
            let vanishing = from_roots(&self.t, xs);
            let leaf = Subtree::Leaf {
                start,
                vanishing: vanishing.clone(),
            };
            return (leaf, vanishing);
        }
        let half = xs.len() / 2;
        let (left, mut left_m) = self.tree(&xs[..half], start);
        let (right, mut right_m) = self.tree(&xs[half..], start + half);
        let plan = self.plan_for(xs.len() + 1).cloned();
        let product = match &plan {
            Some(plan) => {
                self.forward(plan, &mut left_m);
                self.forward(plan, &mut right_m);
                self.product_of_transforms(plan, &left_m, &right_m, xs.len() + 1)
            }
            None => self.multiply(left_m.clone(), right_m.clone()),
        };
        let node = Subtree::Node {
            len: xs.len(),
            left: Box::new(left),
            right: Box::new(right),
            left_m,
            right_m,
            plan,
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
                left_m,
                right_m,
                plan,
            } => {
                // L = L_left * M_right + L_right * M_left.
                let mut a = self.combine(left, xs, scaled);
                let mut b = self.combine(right, xs, scaled);
                let Some(plan) = plan else {
                    let mut sum = self.multiply(a, right_m.clone());
                    for (x, y) in sum.iter_mut().zip(self.multiply(b, left_m.clone())) {
                        *x = t.add(*x, y);
                    }
                    sum.truncate(*len);
                    return sum;
                };
                self.forward(plan, &mut a);
                self.forward(plan, &mut b);
                for (((x, &y), &mr), &ml) in a.iter_mut().zip(&b).zip(right_m).zip(left_m) {
                    // Both products below 2^122: one reduction.
                    *x = t.reduce_u128(*x as u128 * mr as u128 + y as u128 * ml as u128);
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
#[derive(Clone)]
enum Subtree {
    /// Points `start..start + vanishing.len() - 1`, combined directly.
    Leaf { start: usize, vanishing: Vec<u64> },
    /// `len` points split in two halves, with the halves' vanishing
    /// polynomials, transformed by `plan` (the NTT that multiplies them)
    /// if there is one, else as coefficients.
    Node {
        len: usize,
        left: Box<Subtree>,
        right: Box<Subtree>,
        left_m: Vec<u64>,
        right_m: Vec<u64>,
        plan: Option<Arc<NttPlan>>,
    },
}

/// Interpolation through a fixed set of points `xs` for many value vectors
/// `ys`, as the sender needs for the label parts of one slot: the setup
/// (the vanishing polynomial `M(x) = prod (x - x_i)` and the barycentric
/// weights `w_i = 1 / M'(x_i)`, with a single modular inversion) costs
/// `O(d^2)`, and each interpolation `L(x) = sum_i y_i w_i M(x) / (x - x_i)`
/// another `O(d^2)` multiplications with no inversion, or `O(d log^2 d)`
/// when made by [`RootsProduct::interpolator`].
#[derive(Clone)]
pub struct Interpolator {
    products: RootsProduct,
    xs: Vec<u64>,
    tree: Subtree,
    vanishing: Vec<u64>,
    weights: Vec<u64>,
}

impl fmt::Debug for Interpolator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Interpolator")
            .field("products", &self.products)
            .field("points", &self.xs.len())
            .finish()
    }
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
            // Negacyclic NTTs up to size 2^8 (blocked products above),
            // 2^11, 2^13, 2^15, none above the leaves (97), and a 60-bit
            // prime; `max` only decides which NTTs are made up front.
            p in prop::sample::select(vec![
                7681u64, 12_289, 2_277_377, 65_537, 97, 1_152_921_504_606_584_833,
            ]),
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
            p in prop::sample::select(vec![
                2_277_377u64, 12_289, 7681, 97,
                1_152_921_504_606_584_833, 2_305_843_009_213_554_689,
            ]),
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

    fn depth(node: &Subtree) -> usize {
        match node {
            Subtree::Leaf { .. } => 0,
            Subtree::Node { left, right, .. } => 1 + depth(left).max(depth(right)),
        }
    }

    /// Nodes multiplied by one NTT, and all nodes.
    fn transformed(node: &Subtree) -> (usize, usize) {
        match node {
            Subtree::Leaf { .. } => (0, 0),
            Subtree::Node {
                left, right, plan, ..
            } => {
                let (l, r) = (self::transformed(left), self::transformed(right));
                (l.0 + r.0 + usize::from(plan.is_some()), l.1 + r.1 + 1)
            }
        }
    }

    #[test]
    fn ntt_paths_are_taken() {
        let points: Vec<u64> = (0..782).map(|i| i * 7 + 1).collect();
        // Every size the deep presets' bins need has an NTT mod 2277377, and
        // a 782-point tree multiplies every node by one.
        let t = m(2_277_377);
        let product = RootsProduct::new(&t, 782);
        assert_eq!(product.max_k, Some(13));
        for n in 17..=782 {
            assert!(product.plan_for(n + 1).is_some(), "{n} roots");
        }
        let it = product.interpolator(&points).unwrap();
        assert!(depth(&it.tree) >= 5);
        let (ntt, all) = transformed(&it.tree);
        assert_eq!(ntt, all);
        // Mod 7681 the largest NTT has size 256: the nodes above it are
        // multiplied in blocks, the ones below by one NTT, whatever the hint.
        let t = m(7681);
        let product = RootsProduct::new(&t, 10);
        assert_eq!(product.max_k, Some(8));
        assert!(product.plan_for(257).is_none());
        let it = product.interpolator(&points).unwrap();
        assert!(depth(&it.tree) >= 5);
        let (ntt, all) = transformed(&it.tree);
        assert!(0 < ntt && ntt < all, "{ntt} of {all}");
        let ys: Vec<u64> = points.iter().map(|&x| x * x % 7681).collect();
        assert_eq!(
            it.interpolate(&ys).unwrap(),
            Interpolator::new(&t, &points)
                .unwrap()
                .interpolate(&ys)
                .unwrap()
        );
        // Mod 97 (NTTs only up to 16, the leaves' size) there is no tree.
        let t = m(97);
        let product = RootsProduct::new(&t, 782);
        assert_eq!(product.max_k, None);
        let it = product.interpolator(&points[..90]).unwrap();
        assert_eq!(depth(&it.tree), 0);
    }

    proptest! {
        #[test]
        fn blocked_products_equal_schoolbook(
            a in proptest::collection::vec(0u64..7681, 1..1200),
            b in proptest::collection::vec(0u64..7681, 1..700),
        ) {
            let t = m(7681);
            let product = RootsProduct::new(&t, 0);
            prop_assert_eq!(
                product.multiply(a.clone(), b.clone()),
                naive_mul(&t, &a, &b)
            );
        }
    }

    #[test]
    fn boundary_sizes_repeated_roots_and_zero_values() {
        for p in [2_277_377u64, 7681, 12_289, 1_152_921_504_606_584_833] {
            let t = m(p);
            let product = RootsProduct::new(&t, 1025);
            for k in 4..=10 {
                for len in [(1usize << k) - 1, 1 << k, (1 << k) + 1] {
                    let xs: Vec<u64> = (0..len as u64).map(|i| i * 3 + 11).collect();
                    assert_eq!(product.from_roots(&xs), from_roots(&t, &xs), "{p}: {len}");
                    let ys: Vec<u64> = xs.iter().map(|&x| x ^ 0x5555).collect();
                    let it = product.interpolator(&xs).unwrap();
                    assert_eq!(
                        it.interpolate(&ys).unwrap(),
                        interpolate(&t, &xs, &ys).unwrap(),
                        "{p}: {len}"
                    );
                    assert_eq!(it.interpolate(&vec![0; len]).unwrap(), vec![0; len]);
                }
            }
            // One root 700 times: (x - r)^700, and zero 700 times: x^700.
            let same = vec![12_345u64; 700];
            assert_eq!(product.from_roots(&same), from_roots(&t, &same));
            let mut power = vec![0u64; 701];
            power[700] = 1;
            assert_eq!(product.from_roots(&[0; 700]), power);
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
