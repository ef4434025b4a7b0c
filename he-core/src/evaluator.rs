//! Homomorphic operations on ciphertexts.

use std::sync::Arc;

use crate::ciphertext::Ciphertext;
use crate::encryption::scaled_message;
use crate::error::{Error, Result};
use crate::keys::RelinKeys;
use crate::ntt::pointwise;
use crate::params::{BfvParameters, MAX_CIPHERTEXT_SIZE};
use crate::plaintext::{Plaintext, PlaintextNtt, lift_centered};
use crate::rns;

/// How many 122-bit products a `u128` accumulator absorbs before it must
/// be reduced.
const LAZY_PRODUCTS: usize = 60;
/// Coefficients per tile in [`Evaluator::multiply_plain_accumulate`]:
/// two 128-bit accumulators of this many fit in L1 with the operand tiles.
const ACCUMULATE_TILE: usize = 512;

/// Evaluates additions, multiplications, relinearization and modulus
/// switching. Stateless apart from the shared parameters; `Sync`.
///
/// Binary operations require both operands at the same level and in the
/// same representation (coefficient or NTT form) and return a
/// [`Error::LevelMismatch`] / [`Error::FormMismatch`] otherwise.
#[derive(Clone, Debug)]
pub struct Evaluator {
    params: Arc<BfvParameters>,
}

/// `size` when a product of that many polynomials is allowed.
fn check_product_size(size: usize) -> Result<usize> {
    if size > MAX_CIPHERTEXT_SIZE {
        return Err(Error::InvalidValue(format!(
            "product would have {size} polynomials (at most {MAX_CIPHERTEXT_SIZE}); relinearize first"
        )));
    }
    Ok(size)
}

/// Two operands of a tensor product: their polynomials over `Q_l` and the
/// auxiliary primes, NTT form.
type TensorPair<'a> = (&'a [Vec<u64>], &'a [Vec<u64>]);

/// The largest residue modulo any of `moduli` (0 for none): a bound on the
/// inputs of a basis conversion from them.
fn max_residue<'a>(moduli: impl IntoIterator<Item = &'a crate::Modulus>) -> u64 {
    moduli.into_iter().map(|q| q.value() - 1).max().unwrap_or(0)
}

/// The products `(i, j, doubled)` that make output `o` of the tensor of
/// operands of sizes `sa` and `sb` (`i + j = o`). For a square each cross
/// product is listed once, `doubled`.
fn tensor_terms(
    o: usize,
    sa: usize,
    sb: usize,
    square: bool,
) -> impl Iterator<Item = (usize, usize, bool)> {
    (0..sa).filter_map(move |i| {
        let j = o.checked_sub(i).filter(|&j| j < sb)?;
        (!square || j >= i).then_some((i, j, square && j > i))
    })
}

/// A ciphertext lifted to the multiplication basis (`Q_l` and the
/// auxiliary primes) in NTT form: an operand of
/// [`Evaluator::multiply_sum`], made by [`Evaluator::lift`]. In memory only;
/// about `1 + aux / k` times the ciphertext's size.
#[derive(Clone)]
pub struct LiftedCiphertext {
    fingerprint: [u8; 8],
    level: usize,
    polys: Vec<Vec<u64>>,
}

impl LiftedCiphertext {
    /// Level of the ciphertext it was lifted from.
    pub fn level(&self) -> usize {
        self.level
    }

    /// Number of polynomials.
    pub fn size(&self) -> usize {
        self.polys.len()
    }
}

impl std::fmt::Debug for LiftedCiphertext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiftedCiphertext")
            .field("level", &self.level)
            .field("size", &self.polys.len())
            .finish_non_exhaustive()
    }
}

impl Evaluator {
    /// An evaluator for `params`.
    pub fn new(params: &Arc<BfvParameters>) -> Self {
        Self {
            params: params.clone(),
        }
    }

    /// The parameters.
    pub fn parameters(&self) -> &Arc<BfvParameters> {
        &self.params
    }

    fn check_pair(&self, a: &Ciphertext, b: &Ciphertext) -> Result<()> {
        a.check(&self.params)?;
        b.check(&self.params)?;
        if a.level != b.level {
            return Err(Error::LevelMismatch(format!(
                "operands at levels {} and {}",
                a.level, b.level
            )));
        }
        if a.ntt != b.ntt {
            return Err(Error::FormMismatch(
                "one operand is in NTT form, the other is not".into(),
            ));
        }
        Ok(())
    }

    /// `a + b`.
    pub fn add(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext> {
        let mut out = a.clone();
        self.add_assign(&mut out, b)?;
        Ok(out)
    }

    /// `a += b`.
    pub fn add_assign(&self, a: &mut Ciphertext, b: &Ciphertext) -> Result<()> {
        self.combine_assign(a, b, rns::add_assign)
    }

    /// Applies `op` polynomial by polynomial (`a` grows to `b`'s size with
    /// zero polynomials first).
    fn combine_assign(
        &self,
        a: &mut Ciphertext,
        b: &Ciphertext,
        op: fn(&BfvParameters, &[usize], &mut [u64], &[u64]),
    ) -> Result<()> {
        self.check_pair(a, b)?;
        let basis = rns::basis_q(&self.params, a.level);
        let len = basis.len() * self.params.degree();
        while a.polys.len() < b.polys.len() {
            a.polys.push(vec![0u64; len]);
        }
        for (x, y) in a.polys.iter_mut().zip(&b.polys) {
            op(&self.params, &basis, x, y);
        }
        a.seed = None;
        Ok(())
    }

    /// `a - b`.
    pub fn sub(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext> {
        let mut out = a.clone();
        self.sub_assign(&mut out, b)?;
        Ok(out)
    }

    /// `a -= b`.
    pub fn sub_assign(&self, a: &mut Ciphertext, b: &Ciphertext) -> Result<()> {
        self.combine_assign(a, b, rns::sub_assign)
    }

    /// `-a`.
    pub fn negate(&self, a: &Ciphertext) -> Result<Ciphertext> {
        let mut out = a.clone();
        self.negate_assign(&mut out)?;
        Ok(out)
    }

    /// `a = -a`.
    pub fn negate_assign(&self, a: &mut Ciphertext) -> Result<()> {
        a.check(&self.params)?;
        let basis = rns::basis_q(&self.params, a.level);
        for x in a.polys.iter_mut() {
            rns::neg_assign(&self.params, &basis, x);
        }
        a.seed = None;
        Ok(())
    }

    fn scaled_plain_in_form(&self, ct: &Ciphertext, pt: &Plaintext) -> Result<Vec<u64>> {
        pt.check(&self.params)?;
        let mut dm = scaled_message(&self.params, ct.level, pt)?;
        if ct.ntt {
            rns::forward(&self.params, &rns::basis_q(&self.params, ct.level), &mut dm);
        }
        Ok(dm)
    }

    /// Applies `op` to the first polynomial and the scaled plaintext `Δ pt`
    /// (in the ciphertext's representation).
    fn plain_assign(
        &self,
        ct: &mut Ciphertext,
        pt: &Plaintext,
        op: fn(&BfvParameters, &[usize], &mut [u64], &[u64]),
    ) -> Result<()> {
        ct.check(&self.params)?;
        let dm = self.scaled_plain_in_form(ct, pt)?;
        op(
            &self.params,
            &rns::basis_q(&self.params, ct.level),
            &mut ct.polys[0],
            &dm,
        );
        Ok(())
    }

    /// `ct + pt`.
    pub fn add_plain(&self, ct: &Ciphertext, pt: &Plaintext) -> Result<Ciphertext> {
        let mut out = ct.clone();
        self.add_plain_assign(&mut out, pt)?;
        Ok(out)
    }

    /// `ct += pt` (touches only the first polynomial: a seeded ciphertext stays seeded).
    pub fn add_plain_assign(&self, ct: &mut Ciphertext, pt: &Plaintext) -> Result<()> {
        self.plain_assign(ct, pt, rns::add_assign)
    }

    /// `ct - pt`.
    pub fn sub_plain(&self, ct: &Ciphertext, pt: &Plaintext) -> Result<Ciphertext> {
        let mut out = ct.clone();
        self.sub_plain_assign(&mut out, pt)?;
        Ok(out)
    }

    /// `ct -= pt`.
    pub fn sub_plain_assign(&self, ct: &mut Ciphertext, pt: &Plaintext) -> Result<()> {
        self.plain_assign(ct, pt, rns::sub_assign)
    }

    /// Transforms every polynomial to NTT form (no-op if already there).
    pub fn transform_to_ntt(&self, ct: &mut Ciphertext) -> Result<()> {
        ct.check(&self.params)?;
        if !ct.ntt {
            let basis = rns::basis_q(&self.params, ct.level);
            for p in ct.polys.iter_mut() {
                rns::forward(&self.params, &basis, p);
            }
            ct.ntt = true;
            ct.seed = None;
        }
        Ok(())
    }

    /// Transforms every polynomial back to coefficient form (no-op if already there).
    pub fn transform_from_ntt(&self, ct: &mut Ciphertext) -> Result<()> {
        ct.check(&self.params)?;
        if ct.ntt {
            let basis = rns::basis_q(&self.params, ct.level);
            for p in ct.polys.iter_mut() {
                rns::inverse(&self.params, &basis, p);
            }
            ct.ntt = false;
        }
        Ok(())
    }

    /// Lifts `pt` to NTT form at `level`: the form [`multiply_plain_ntt`](Self::multiply_plain_ntt) takes.
    pub fn plain_to_ntt(&self, pt: &Plaintext, level: usize) -> Result<PlaintextNtt> {
        PlaintextNtt::new(&self.params, pt, level)
    }

    /// `ct * pt` for a plaintext in coefficient form; the result keeps the
    /// ciphertext's representation. Costs the plaintext's transform; to
    /// multiply by the same plaintext often, use [`plain_to_ntt`](Self::plain_to_ntt) once.
    pub fn multiply_plain(&self, ct: &Ciphertext, pt: &Plaintext) -> Result<Ciphertext> {
        ct.check(&self.params)?;
        pt.check(&self.params)?;
        let basis = rns::basis_q(&self.params, ct.level);
        let p = lift_centered(&self.params, &basis, &pt.coeffs, true);
        let mut out = ct.clone();
        let was_ntt = out.ntt;
        self.transform_to_ntt(&mut out)?;
        for x in out.polys.iter_mut() {
            rns::mul_assign(&self.params, &basis, x, &p);
        }
        if !was_ntt {
            self.transform_from_ntt(&mut out)?;
        }
        out.seed = None;
        Ok(out)
    }

    fn check_plain_ntt(&self, ct: &Ciphertext, pt: &PlaintextNtt) -> Result<()> {
        ct.check(&self.params)?;
        if pt.fingerprint != self.params.fingerprint() {
            return Err(Error::ParameterMismatch(
                "plaintext belongs to other parameters".into(),
            ));
        }
        if !ct.ntt {
            return Err(Error::FormMismatch(
                "multiply_plain_ntt needs the ciphertext in NTT form (transform_to_ntt)".into(),
            ));
        }
        if ct.level != pt.level {
            return Err(Error::LevelMismatch(format!(
                "ciphertext at level {}, plaintext at level {}",
                ct.level, pt.level
            )));
        }
        Ok(())
    }

    /// `ct * pt` with both in NTT form: one slot-wise product per polynomial and prime.
    pub fn multiply_plain_ntt(&self, ct: &Ciphertext, pt: &PlaintextNtt) -> Result<Ciphertext> {
        let mut out = ct.clone();
        self.multiply_plain_ntt_assign(&mut out, pt)?;
        Ok(out)
    }

    /// `ct *= pt` with both in NTT form.
    pub fn multiply_plain_ntt_assign(&self, ct: &mut Ciphertext, pt: &PlaintextNtt) -> Result<()> {
        self.check_plain_ntt(ct, pt)?;
        let basis = rns::basis_q(&self.params, ct.level);
        for x in ct.polys.iter_mut() {
            if pt.shoup.is_empty() {
                rns::mul_assign(&self.params, &basis, x, &pt.data);
            } else {
                rns::mul_shoup_assign(&self.params, &basis, x, &pt.data, &pt.shoup);
            }
        }
        ct.seed = None;
        Ok(())
    }

    /// `sum_j ct_j * pt_j` over NTT-form ciphertexts of one level and size,
    /// with 128-bit lazy accumulation: one modular reduction per slot for up
    /// to 60 products instead of one per product.
    pub fn multiply_plain_accumulate(
        &self,
        pairs: &[(&Ciphertext, &PlaintextNtt)],
    ) -> Result<Ciphertext> {
        let cts: Vec<&Ciphertext> = pairs.iter().map(|(ct, _)| *ct).collect();
        let row: Vec<Option<&PlaintextNtt>> = pairs.iter().map(|(_, pt)| Some(*pt)).collect();
        self.multiply_plain_accumulate_many(&cts, &[row])?
            .pop()
            .ok_or_else(|| Error::InvalidValue("multiply_plain_accumulate of no terms".into()))
    }

    /// Several sums over the same ciphertexts: output `o` is
    /// `sum_j cts[j] * rows[o][j]`, a missing plaintext counting as zero
    /// (a matrix of plaintexts times a vector of ciphertexts). Each
    /// ciphertext tile is read once for every output while it is in cache,
    /// which is what makes this faster than one
    /// [`multiply_plain_accumulate`](Self::multiply_plain_accumulate) per
    /// output. Ciphertexts in NTT form, of one level and size; each row has
    /// one entry per ciphertext and at least one plaintext.
    pub fn multiply_plain_accumulate_many(
        &self,
        cts: &[&Ciphertext],
        rows: &[Vec<Option<&PlaintextNtt>>],
    ) -> Result<Vec<Ciphertext>> {
        let Some(first) = cts.first() else {
            return Err(Error::InvalidValue(
                "multiply_plain_accumulate of no terms".into(),
            ));
        };
        let size = first.polys.len();
        for ct in cts {
            if ct.level != first.level || ct.polys.len() != size {
                return Err(Error::LevelMismatch("terms differ in level or size".into()));
            }
        }
        for row in rows {
            if row.len() != cts.len() {
                return Err(Error::InvalidValue(format!(
                    "a row of {} plaintexts for {} ciphertexts",
                    row.len(),
                    cts.len()
                )));
            }
            if row.iter().all(Option::is_none) {
                return Err(Error::InvalidValue(
                    "multiply_plain_accumulate of no terms".into(),
                ));
            }
            for (ct, pt) in cts.iter().zip(row) {
                if let Some(pt) = pt {
                    self.check_plain_ntt(ct, pt)?;
                }
            }
        }
        let params = &self.params;
        let n = params.degree();
        let kl = params.moduli_count_at(first.level);
        let mut outs = vec![vec![vec![0u64; kl * n]; size]; rows.len()];
        if pointwise::madd52_is_fast() && params.moduli[..kl].iter().all(|m| m.bits() <= 52) {
            self.accumulate_split52(cts, rows, kl, &mut outs);
        } else {
            self.accumulate_u128(cts, rows, kl, &mut outs);
        }
        Ok(outs
            .into_iter()
            .map(|polys| Ciphertext {
                fingerprint: params.fingerprint(),
                level: first.level,
                ntt: true,
                polys,
                seed: None,
            })
            .collect())
    }

    /// The sums of [`Self::multiply_plain_accumulate_many`] in `u128`
    /// accumulators, reduced every [`LAZY_PRODUCTS`] terms.
    fn accumulate_u128(
        &self,
        cts: &[&Ciphertext],
        rows: &[Vec<Option<&PlaintextNtt>>],
        kl: usize,
        outs: &mut [Vec<Vec<u64>>],
    ) {
        let params = &self.params;
        let n = params.degree();
        let size = cts[0].polys.len();
        // Tiles of coefficients keep the accumulators in L1 while every
        // term streams through; each plaintext tile serves all polynomials.
        let tile = ACCUMULATE_TILE.min(n);
        let mut acc = vec![0u128; size * tile];
        for i in 0..kl {
            let m = &params.moduli[i];
            for start in (0..n).step_by(tile) {
                let range = i * n + start..i * n + start + tile;
                for (row, polys) in rows.iter().zip(outs.iter_mut()) {
                    acc.fill(0);
                    let mut pending = 0;
                    for (ct, pt) in cts.iter().zip(row) {
                        let Some(pt) = pt else { continue };
                        if pending == LAZY_PRODUCTS {
                            for a in acc.iter_mut() {
                                *a = m.reduce_u128(*a) as u128;
                            }
                            pending = 0;
                        }
                        pending += 1;
                        let p = &pt.data[range.clone()];
                        for (a, poly) in acc.chunks_exact_mut(tile).zip(&ct.polys) {
                            for ((a, &x), &y) in a.iter_mut().zip(&poly[range.clone()]).zip(p) {
                                *a += x as u128 * y as u128;
                            }
                        }
                    }
                    for (a, out) in acc.chunks_exact(tile).zip(polys.iter_mut()) {
                        for (o, &a) in out[range.clone()].iter_mut().zip(a) {
                            *o = m.reduce_u128(a);
                        }
                    }
                }
            }
        }
    }

    /// The sums of [`Self::multiply_plain_accumulate_many`] for residues
    /// below 2^52, with products split at bit 52 into two `u64`
    /// accumulators (AVX-512 IFMA), each sum reduced once per chunk of
    /// terms. A tile of every ciphertext stays in L2 while the outputs'
    /// plaintext tiles stream past it.
    fn accumulate_split52(
        &self,
        cts: &[&Ciphertext],
        rows: &[Vec<Option<&PlaintextNtt>>],
        kl: usize,
        outs: &mut [Vec<Vec<u64>>],
    ) {
        // Two polynomials of 128 ciphertexts in tiles of 256 coefficients
        // take 512 KiB.
        const TILE: usize = 256;
        let n = self.params.degree();
        let tile = TILE.min(n);
        let (mut lo, mut hi) = (vec![0u64; tile], vec![0u64; tile]);
        let mut xs: Vec<&[u64]> = Vec::with_capacity(cts.len());
        let mut ys: Vec<&[u64]> = Vec::with_capacity(cts.len());
        // Each row's present terms.
        let row_terms: Vec<Vec<(&Ciphertext, &PlaintextNtt)>> = rows
            .iter()
            .map(|row| {
                cts.iter()
                    .zip(row)
                    .filter_map(|(ct, pt)| pt.map(|pt| (*ct, pt)))
                    .collect()
            })
            .collect();
        for i in 0..kl {
            let m = &self.params.moduli[i];
            for start in (0..n).step_by(tile) {
                let range = i * n + start..i * n + start + tile;
                for (terms, polys) in row_terms.iter().zip(outs.iter_mut()) {
                    ys.clear();
                    ys.extend(terms.iter().map(|(_, pt)| &pt.data[range.clone()]));
                    for (j, out) in polys.iter_mut().enumerate() {
                        lo.fill(0);
                        hi.fill(0);
                        xs.clear();
                        xs.extend(terms.iter().map(|(ct, _)| &ct.polys[j][range.clone()]));
                        pointwise::madd52_mod(m, &mut lo, &mut hi, &xs, &ys);
                        // `out` is still zero here.
                        pointwise::fold52_add(m, &mut out[range.clone()], &lo, &mut hi);
                    }
                }
            }
        }
    }

    /// Basis Q_l followed by the auxiliary primes P_l.
    fn basis_qp(&self, level: usize) -> Result<Vec<usize>> {
        let ctx = self.params.level(level)?;
        let mut b = rns::basis_q(&self.params, level);
        let start = self.params.aux_index();
        b.extend(start..start + ctx.aux_count);
        Ok(b)
    }

    /// Exact lift of a coefficient-form polynomial from Q_l to Q_l ∪ P_l
    /// (centered representative), returned in NTT form.
    ///
    /// Column-wise over the coefficients, so every step but the
    /// floating-point rounding is a vectorized pass over one residue.
    /// With `ntt_q`, the polynomial's NTT form over `Q_l`, only the
    /// auxiliary residues are transformed.
    fn extend_to_qp_ntt(
        &self,
        level: usize,
        poly: &[u64],
        ntt_q: Option<&[u64]>,
        basis_qp: &[usize],
    ) -> Result<Vec<u64>> {
        let params = &self.params;
        let ctx = params.level(level)?;
        let n = params.degree();
        let (k, m) = (ctx.k, ctx.aux_count);
        let mc = &ctx.mul;
        let aux = &params.moduli[params.aux_index()..params.aux_index() + m];
        let mut out = vec![0u64; (k + m) * n];
        let (oq, op) = out.split_at_mut(k * n);
        // x_i = [poly_i * (Q/q_i)^-1]_{q_i}.
        let mut xs = poly[..k * n].to_vec();
        for (i, xi) in xs.chunks_exact_mut(n).enumerate() {
            pointwise::mul_scalar_assign(&params.moduli[i], xi, ctx.q_hat_inv[i].0);
        }
        // v = round(sum_i x_i / q_i): how many times Q wraps in sum_i x_i Q/q_i.
        let mut v = vec![0u64; n];
        for (c, vc) in v.iter_mut().enumerate() {
            let mut vf = 0f64;
            for i in 0..k {
                vf += xs[i * n + c] as f64 * mc.q_inv_f64[i];
            }
            // vf >= 0: adding 1/2 and truncating rounds, without a libm call.
            *vc = (vf + 0.5) as u64;
        }
        // Over p_j: sum_i x_i (Q/q_i mod p_j) - v (Q mod p_j).
        // Inputs: v <= k and residues mod q_i.
        let max_input = max_residue(&params.moduli[..k]).max(k as u64);
        let inputs: Vec<&[u64]> = std::iter::once(v.as_slice())
            .chain(xs.chunks_exact(n))
            .collect();
        let mut weights = vec![0u64; k + 1];
        for (j, (pj, dst)) in aux.iter().zip(op.chunks_exact_mut(n)).enumerate() {
            weights[0] = pj.neg(mc.q_mod_p[j]);
            weights[1..].copy_from_slice(&mc.q_hat_mod_p[j * k..(j + 1) * k]);
            pointwise::dot(pj, dst, &inputs, &weights, max_input);
        }
        match ntt_q {
            Some(q) => {
                oq.copy_from_slice(&q[..k * n]);
                rns::forward(params, &basis_qp[k..], op);
            }
            None => {
                oq.copy_from_slice(&poly[..k * n]);
                rns::forward(params, basis_qp, &mut out);
            }
        }
        Ok(out)
    }

    /// From a coefficient-form tensor over Q_l ∪ P_l, computes
    /// `round(t/Q_l * x)` and returns it over Q_l (column-wise, like
    /// [`extend_to_qp_ntt`](Self::extend_to_qp_ntt)).
    fn scale_down_qp(&self, level: usize, x: &[u64]) -> Result<Vec<u64>> {
        let params = &self.params;
        let ctx = params.level(level)?;
        let n = params.degree();
        let (k, m) = (ctx.k, ctx.aux_count);
        let mc = &ctx.mul;
        let aux = &params.moduli[params.aux_index()..params.aux_index() + m];
        // Scale: y = round(t x / Q) over P (see the derivation in DESIGN notes of params.rs).
        let mut xs = x[..k * n].to_vec();
        for (i, xi) in xs.chunks_exact_mut(n).enumerate() {
            pointwise::mul_scalar_assign(&params.moduli[i], xi, mc.qp_hat_inv_q[i].0);
        }
        // The rounded fractional part sum_i x_i * frac(t P / q_i), as an integer.
        let mut rounded = vec![0u64; n];
        for (c, rc) in rounded.iter_mut().enumerate() {
            let mut frac_hi = 0u128;
            let mut frac_lo = 0u128;
            for i in 0..k {
                let prod = xs[i * n + c] as u128 * mc.tp_frac[i] as u128;
                frac_hi += prod >> 64;
                frac_lo += prod as u64 as u128;
            }
            *rc = (frac_hi + ((frac_lo + (1u128 << 63)) >> 64)) as u64;
        }
        // y_j = (rounded + sum_i x_i tp_int_ij + x_(k+j) t_q_inv_j) p_hat_inv_j
        // over p_j, one dot product with the last factor in the weights.
        // Inputs: residues mod q_i and p_j, and `rounded`, below
        // sum_i q_i (each x_i times a fraction below 1, plus 1).
        let max_input = max_residue(params.moduli[..k].iter().chain(aux)).max(
            params.moduli[..k]
                .iter()
                .fold(0u64, |a, q| a.saturating_add(q.value())),
        );
        let mut ys = vec![0u64; m * n];
        let mut inputs: Vec<&[u64]> = std::iter::once(rounded.as_slice())
            .chain(xs.chunks_exact(n))
            .collect();
        let mut weights = vec![0u64; k + 2];
        for (j, (pj, y)) in aux.iter().zip(ys.chunks_exact_mut(n)).enumerate() {
            let scale = mc.p_hat_inv[j].0;
            weights[0] = scale;
            for (w, &c) in weights[1..=k]
                .iter_mut()
                .zip(&mc.tp_int_mod_p[j * k..(j + 1) * k])
            {
                *w = pj.mul(c, scale);
            }
            weights[k + 1] = pj.mul(mc.t_q_inv_mod_p[j], scale);
            inputs.truncate(k + 1);
            inputs.push(&x[(k + j) * n..(k + j + 1) * n]);
            pointwise::dot(pj, y, &inputs, &weights, max_input);
        }
        // Lift y (|y| << P/2, so the rounding of v is exact) from P to Q.
        let v = &mut rounded;
        for (c, vc) in v.iter_mut().enumerate() {
            let mut vf = 0f64;
            for j in 0..m {
                vf += ys[j * n + c] as f64 * mc.p_inv_f64[j];
            }
            // vf >= 0: adding 1/2 and truncating rounds, without a libm call.
            *vc = (vf + 0.5) as u64;
        }
        // Over q_i: sum_j y_j (P/p_j mod q_i) - v (P mod q_i).
        // Inputs: v <= m and residues mod p_j.
        let max_input = max_residue(aux).max(m as u64);
        let mut out = vec![0u64; k * n];
        let inputs: Vec<&[u64]> = std::iter::once(v.as_slice())
            .chain(ys.chunks_exact(n))
            .collect();
        let mut weights = vec![0u64; m + 1];
        for (i, dst) in out.chunks_exact_mut(n).enumerate() {
            let qi = &params.moduli[i];
            weights[0] = qi.neg(mc.p_mod_q[i]);
            weights[1..].copy_from_slice(&mc.p_hat_mod_q[i * m..(i + 1) * m]);
            pointwise::dot(qi, dst, &inputs, &weights, max_input);
        }
        Ok(out)
    }

    /// `a * b` (tensor product, RNS BFV with an auxiliary base, HPS-style
    /// exact lifts and scaling). The result has size `a.size() + b.size() - 1`
    /// and is in coefficient form; relinearize it to get back to size 2.
    pub fn multiply(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext> {
        self.check_pair_any_form(a, b)?;
        self.tensor(a, Some(b))
    }

    /// `a *= b`.
    pub fn multiply_assign(&self, a: &mut Ciphertext, b: &Ciphertext) -> Result<()> {
        *a = self.multiply(a, b)?;
        Ok(())
    }

    /// `a^2`, cheaper than `multiply(a, a)`.
    pub fn square(&self, a: &Ciphertext) -> Result<Ciphertext> {
        a.check(&self.params)?;
        self.tensor(a, None)
    }

    /// `a = a^2`.
    pub fn square_assign(&self, a: &mut Ciphertext) -> Result<()> {
        *a = self.square(a)?;
        Ok(())
    }

    /// `a * b` followed by relinearization.
    pub fn multiply_relin(
        &self,
        a: &Ciphertext,
        b: &Ciphertext,
        rk: &RelinKeys,
    ) -> Result<Ciphertext> {
        let mut out = self.multiply(a, b)?;
        self.relinearize_assign(&mut out, rk)?;
        Ok(out)
    }

    fn check_pair_any_form(&self, a: &Ciphertext, b: &Ciphertext) -> Result<()> {
        a.check(&self.params)?;
        b.check(&self.params)?;
        if a.level != b.level {
            return Err(Error::LevelMismatch(format!(
                "operands at levels {} and {}",
                a.level, b.level
            )));
        }
        Ok(())
    }

    fn coeff_polys<'c>(&self, ct: &'c Ciphertext) -> std::borrow::Cow<'c, [Vec<u64>]> {
        if ct.ntt {
            let basis = rns::basis_q(&self.params, ct.level);
            let mut polys = ct.polys.clone();
            for p in polys.iter_mut() {
                rns::inverse(&self.params, &basis, p);
            }
            std::borrow::Cow::Owned(polys)
        } else {
            std::borrow::Cow::Borrowed(&ct.polys)
        }
    }

    fn tensor(&self, a: &Ciphertext, b: Option<&Ciphertext>) -> Result<Ciphertext> {
        let params = &self.params;
        let level = a.level;
        let sa = a.polys.len();
        let sb = b.map_or(sa, |b| b.polys.len());
        let out_size = check_product_size(sa + sb - 1)?;
        let basis = self.basis_qp(level)?;
        let ea = self.lift(a)?.polys;
        let eb_owned;
        let eb: &[Vec<u64>] = match b {
            Some(b) => {
                eb_owned = self.lift(b)?.polys;
                &eb_owned
            }
            None => &ea,
        };
        let mut out = vec![vec![0u64; basis.len() * params.degree()]; out_size];
        self.tensor_accumulate(&basis, &[(&ea, eb)], b.is_none(), &mut out);
        self.finish_tensor(level, &basis, out)
    }

    /// Adds `sum_pairs a (x) b` (the tensor products, over the basis `Q_l`
    /// and the auxiliary primes, NTT form) into `out`. With `square`, each
    /// pair is `(a, a)` and its cross terms are doubled instead of computed
    /// twice. Products gather in `u128` accumulators over tiles of
    /// coefficients, reduced every [`LAZY_PRODUCTS`] products.
    fn tensor_accumulate(
        &self,
        basis: &[usize],
        pairs: &[TensorPair<'_>],
        square: bool,
        out: &mut [Vec<u64>],
    ) {
        const TILE: usize = 1024;
        let params = &self.params;
        if pointwise::madd52_is_fast() && basis.iter().all(|&mi| params.moduli[mi].bits() <= 52) {
            return self.tensor_accumulate_split52(basis, pairs, square, out);
        }
        let n = params.degree();
        let tile = TILE.min(n);
        let out_size = out.len();
        let mut acc = vec![0u128; out_size * tile];
        let fold = |acc: &mut [u128],
                    out: &mut [Vec<u64>],
                    m: &crate::Modulus,
                    r: &std::ops::Range<usize>| {
            for (o, dst) in out.iter_mut().enumerate() {
                let a = &mut acc[o * tile..o * tile + r.len()];
                for (d, x) in dst[r.clone()].iter_mut().zip(a.iter_mut()) {
                    *d = m.add(*d, m.reduce_u128(*x));
                    *x = 0;
                }
            }
        };
        for (pi, &mi) in basis.iter().enumerate() {
            let m = &params.moduli[mi];
            for start in (0..n).step_by(tile) {
                let r = pi * n + start..pi * n + start + tile;
                // Products (of at most 122 bits; a doubled cross term
                // counts twice) in the accumulators since the last fold.
                let mut pending = 0usize;
                for (ea, eb) in pairs {
                    // A coefficient gathers at most min(sa, sb) products
                    // (a doubled cross term counting as two).
                    let weight = ea.len().min(eb.len());
                    if pending + weight > LAZY_PRODUCTS {
                        fold(&mut acc, out, m, &r);
                        pending = 0;
                    }
                    pending += weight;
                    for o in 0..out_size {
                        let acc_o = &mut acc[o * tile..(o + 1) * tile];
                        for (i, j, doubled) in tensor_terms(o, ea.len(), eb.len(), square) {
                            let shift = u32::from(doubled);
                            let (x, y) = (&ea[i][r.clone()], &eb[j][r.clone()]);
                            for ((a, &x), &y) in acc_o.iter_mut().zip(x).zip(y) {
                                *a += (x as u128 * y as u128) << shift;
                            }
                        }
                    }
                }
                fold(&mut acc, out, m, &r);
            }
        }
    }

    /// [`tensor_accumulate`](Self::tensor_accumulate) for a basis of primes
    /// below 2^52 (AVX-512 IFMA): each output coefficient's products are
    /// split at bit 52 into two `u64` sums, reduced once per
    /// [`MADD52_MAX_TERMS`](pointwise::MADD52_MAX_TERMS) products. A doubled
    /// cross term of a square enters twice.
    fn tensor_accumulate_split52(
        &self,
        basis: &[usize],
        pairs: &[TensorPair<'_>],
        square: bool,
        out: &mut [Vec<u64>],
    ) {
        const TILE: usize = 1024;
        let params = &self.params;
        let n = params.degree();
        let tile = TILE.min(n);
        let (mut lo, mut hi) = (vec![0u64; tile], vec![0u64; tile]);
        // The (a, b) polynomial indices of each output's products.
        let terms: Vec<Vec<(usize, usize, usize)>> = (0..out.len())
            .map(|o| {
                let mut t = Vec::new();
                for (pi, (ea, eb)) in pairs.iter().enumerate() {
                    for (i, j, doubled) in tensor_terms(o, ea.len(), eb.len(), square) {
                        t.push((pi, i, j));
                        if doubled {
                            t.push((pi, i, j));
                        }
                    }
                }
                t
            })
            .collect();
        let mut xs: Vec<&[u64]> = Vec::new();
        let mut ys: Vec<&[u64]> = Vec::new();
        for (pos, &mi) in basis.iter().enumerate() {
            let m = &params.moduli[mi];
            for start in (0..n).step_by(tile) {
                let r = pos * n + start..pos * n + start + tile;
                for (dst, terms) in out.iter_mut().zip(&terms) {
                    lo.fill(0);
                    hi.fill(0);
                    xs.clear();
                    ys.clear();
                    for &(pi, i, j) in terms {
                        xs.push(&pairs[pi].0[i][r.clone()]);
                        ys.push(&pairs[pi].1[j][r.clone()]);
                    }
                    pointwise::madd52_mod(m, &mut lo, &mut hi, &xs, &ys);
                    pointwise::fold52_add(m, &mut dst[r.clone()], &lo, &mut hi);
                }
            }
        }
    }

    /// Inverse transform of a tensor over `Q_l` and the auxiliary primes,
    /// then `round(t/Q_l * x)`: the product ciphertext in coefficient form.
    fn finish_tensor(
        &self,
        level: usize,
        basis: &[usize],
        out: Vec<Vec<u64>>,
    ) -> Result<Ciphertext> {
        let params = &self.params;
        let mut polys = Vec::with_capacity(out.len());
        for mut p in out {
            rns::inverse(params, basis, &mut p);
            polys.push(self.scale_down_qp(level, &p)?);
        }
        Ok(Ciphertext {
            fingerprint: params.fingerprint(),
            level,
            ntt: false,
            polys,
            seed: None,
        })
    }

    /// Lifts `ct` to the multiplication basis (`Q_l` and the auxiliary
    /// primes) in NTT form, for [`multiply_sum`](Self::multiply_sum). Lifting
    /// an operand once saves its lift in every product it enters (the
    /// high powers of Paterson-Stockmeyer enter one per polynomial).
    pub fn lift(&self, ct: &Ciphertext) -> Result<LiftedCiphertext> {
        ct.check(&self.params)?;
        let level = ct.level;
        let basis = self.basis_qp(level)?;
        let coeff = self.coeff_polys(ct);
        let polys = coeff
            .iter()
            .zip(&ct.polys)
            .map(|(c, orig)| self.extend_to_qp_ntt(level, c, ct.ntt.then_some(orig), &basis))
            .collect::<Result<_>>()?;
        Ok(LiftedCiphertext {
            fingerprint: self.params.fingerprint(),
            level,
            polys,
        })
    }

    /// Most pairs of size-2 operands [`multiply_sum`](Self::multiply_sum)
    /// adds at `level`: the auxiliary primes must hold `t/Q` times the
    /// summed tensor, so the sum is bounded by their headroom.
    pub fn multiply_sum_capacity(&self, level: usize) -> Result<usize> {
        let params = &self.params;
        let ctx = params.level(level)?;
        let start = params.aux_index();
        // Lower bounds on log2 P, upper bounds on log2 Q_l, t and n.
        let p_bits: u32 = params.moduli[start..start + ctx.aux_count]
            .iter()
            .map(|p| p.bits() - 1)
            .sum();
        let q_bits = ctx.q_big.bits();
        let t_bits = params.plaintext().bits();
        let n_bits = params.degree().trailing_zeros();
        // |t/Q * sum| <= terms * n * t * Q / 4 must stay below P / 16: the
        // rounding of the lift back to Q is exact with that margin.
        let spare = p_bits.saturating_sub(q_bits + t_bits + n_bits + 2);
        // Each size-2 pair puts up to two products in a coefficient.
        Ok((1usize << spare.min(usize::BITS - 2)) / 2)
    }

    /// `sum_i a_i * b_i`: the tensor products added before the one scaling
    /// by `t/Q` (and the one inverse transform) a separate
    /// [`multiply`](Self::multiply) per pair would each pay. Same result up
    /// to rounding, with less noise. Operands of one level; the result has
    /// the largest size of the products, in coefficient form. At most
    /// [`multiply_sum_capacity`](Self::multiply_sum_capacity) pairs (counted
    /// for size 2; larger operands count more).
    pub fn multiply_sum(
        &self,
        pairs: &[(&LiftedCiphertext, &LiftedCiphertext)],
    ) -> Result<Ciphertext> {
        let Some((first, _)) = pairs.first() else {
            return Err(Error::InvalidValue("multiply_sum of no pairs".into()));
        };
        let level = first.level;
        let fingerprint = self.params.fingerprint();
        let mut out_size = 0;
        let mut weight = 0usize;
        for (a, b) in pairs {
            for x in [a, b] {
                if x.fingerprint != fingerprint {
                    return Err(Error::ParameterMismatch(
                        "lifted ciphertext belongs to other parameters".into(),
                    ));
                }
                if x.level != level {
                    return Err(Error::LevelMismatch(format!(
                        "operands at levels {} and {level}",
                        x.level
                    )));
                }
            }
            out_size = out_size.max(a.polys.len() + b.polys.len() - 1);
            weight += a.polys.len().min(b.polys.len()).div_ceil(2);
        }
        check_product_size(out_size)?;
        let capacity = self.multiply_sum_capacity(level)?;
        if weight > capacity {
            return Err(Error::InvalidValue(format!(
                "a sum of {weight} products exceeds the {capacity} the multiplication basis holds; split it"
            )));
        }
        let basis = self.basis_qp(level)?;
        let slices: Vec<TensorPair<'_>> = pairs
            .iter()
            .map(|(a, b)| (a.polys.as_slice(), b.polys.as_slice()))
            .collect();
        let mut out = vec![vec![0u64; basis.len() * self.params.degree()]; out_size];
        self.tensor_accumulate(&basis, &slices, false, &mut out);
        self.finish_tensor(level, &basis, out)
    }

    /// Relinearizes a size-3 ciphertext back to size 2 (key switching from
    /// `s^2` to `s` with the special prime); size 2 is returned unchanged.
    /// The result is in coefficient form.
    pub fn relinearize(&self, ct: &Ciphertext, rk: &RelinKeys) -> Result<Ciphertext> {
        let mut out = ct.clone();
        self.relinearize_assign(&mut out, rk)?;
        Ok(out)
    }

    /// In-place [`relinearize`](Self::relinearize).
    pub fn relinearize_assign(&self, ct: &mut Ciphertext, rk: &RelinKeys) -> Result<()> {
        ct.check(&self.params)?;
        rk.check(&self.params)?;
        match ct.polys.len() {
            2 => return Ok(()),
            3 => {}
            s => {
                return Err(Error::InvalidValue(format!(
                    "relinearization takes a size-3 ciphertext, not size {s}"
                )));
            }
        }
        self.transform_from_ntt(ct)?;
        let params = &self.params;
        let n = params.degree();
        let level = ct.level;
        let ctx = params.level(level)?;
        let kl = ctx.k;
        let k = params.moduli().len();
        let basis = rns::basis_q_special(params, level);
        let c2 = ct.polys.pop().expect("size checked above");
        let mut acc0 = vec![0u64; basis.len() * n];
        let mut acc1 = vec![0u64; basis.len() * n];
        let mut d = vec![0u64; basis.len() * n];
        // Position of basis entry p inside a key row (over q_0..q_{k-1}, special).
        let key_chunk = |p: usize| if p < kl { p } else { k };
        for i in 0..kl {
            let src = &c2[i * n..(i + 1) * n];
            let qi = params.moduli[i].value();
            for (p, &mi) in basis.iter().enumerate() {
                let m = &params.moduli[mi];
                let dst = &mut d[p * n..(p + 1) * n];
                dst.copy_from_slice(src);
                if p == i || qi <= m.value() {
                    // Already reduced.
                } else if qi <= 2 * m.value() {
                    pointwise::reduce_below_2p(m, dst);
                } else {
                    dst.iter_mut().for_each(|x| *x = m.reduce(*x));
                }
            }
            rns::forward(params, &basis, &mut d);
            let (b_row, a_row) = &rk.rows[i];
            let (b_shoup, a_shoup) = &rk.shoup[i];
            for (p, &mi) in basis.iter().enumerate() {
                let m = &params.moduli[mi];
                let key = (key_chunk(p) * n)..(key_chunk(p) + 1) * n;
                let slot = p * n..(p + 1) * n;
                let dd = &d[slot.clone()];
                pointwise::mul_shoup_add_assign(
                    m,
                    &mut acc0[slot.clone()],
                    dd,
                    &b_row[key.clone()],
                    &b_shoup[key.clone()],
                );
                pointwise::mul_shoup_add_assign(
                    m,
                    &mut acc1[slot],
                    dd,
                    &a_row[key.clone()],
                    &a_shoup[key],
                );
            }
        }
        rns::inverse(params, &basis, &mut acc0);
        rns::inverse(params, &basis, &mut acc1);
        let special = params.special_modulus();
        for (acc, target) in [(&mut acc0, 0usize), (&mut acc1, 1usize)] {
            let (head, sp) = acc.split_at_mut(kl * n);
            let out = &mut ct.polys[target];
            for j in 0..kl {
                let qj = &params.moduli[j];
                // out_j += (acc_j - [sp]_centered) * p^-1 mod q_j.
                rns::centered_into(special, sp, qj, &mut d[..n]);
                let aj = &mut head[j * n..(j + 1) * n];
                pointwise::sub_assign(qj, aj, &d[..n]);
                pointwise::mul_scalar_assign(qj, aj, ctx.special_inv[j].0);
                pointwise::add_assign(qj, &mut out[j * n..(j + 1) * n], aj);
            }
        }
        ct.seed = None;
        Ok(())
    }

    /// Switches to the next level: drops the last prime `q_l` and divides
    /// by it with rounding, shrinking the ciphertext and its noise together.
    /// Keeps the ciphertext's representation.
    pub fn mod_switch_to_next(&self, ct: &Ciphertext) -> Result<Ciphertext> {
        let mut out = ct.clone();
        self.mod_switch_to_next_assign(&mut out)?;
        Ok(out)
    }

    /// In-place [`mod_switch_to_next`](Self::mod_switch_to_next).
    pub fn mod_switch_to_next_assign(&self, ct: &mut Ciphertext) -> Result<()> {
        ct.check(&self.params)?;
        if ct.level >= self.params.max_level() {
            return Err(Error::LevelMismatch(
                "already at the last level: no prime left to drop".into(),
            ));
        }
        let was_ntt = ct.ntt;
        self.transform_from_ntt(ct)?;
        let params = &self.params;
        let n = params.degree();
        let ctx = params.level(ct.level)?;
        let last = ctx.k - 1;
        let q_last = &params.moduli[last];
        let mut delta = vec![0u64; n];
        for poly in ct.polys.iter_mut() {
            let (head, tail) = poly.split_at_mut(last * n);
            for j in 0..last {
                let qj = &params.moduli[j];
                // x_j = (x_j - [x_last]_centered) * q_last^-1 mod q_j.
                rns::centered_into(q_last, tail, qj, &mut delta);
                let xj = &mut head[j * n..(j + 1) * n];
                pointwise::sub_assign(qj, xj, &delta);
                pointwise::mul_scalar_assign(qj, xj, ctx.q_last_inv[j].0);
            }
            poly.truncate(last * n);
        }
        ct.level += 1;
        ct.seed = None;
        if was_ntt {
            self.transform_to_ntt(ct)?;
        }
        Ok(())
    }

    /// Switches down to `level` (repeated [`mod_switch_to_next`](Self::mod_switch_to_next)).
    pub fn mod_switch_to_level(&self, ct: &Ciphertext, level: usize) -> Result<Ciphertext> {
        if level < ct.level || level > self.params.max_level() {
            return Err(Error::LevelMismatch(format!(
                "cannot switch from level {} to level {level}",
                ct.level
            )));
        }
        let mut out = ct.clone();
        while out.level < level {
            self.mod_switch_to_next_assign(&mut out)?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SecretKey;
    use crate::params::BfvParametersBuilder;
    use crate::plaintext::BatchEncoder;

    /// Test parameters (no security check) at `n = 1024`, `t = 12289`.
    fn small_params(
        q_bits: &[u32],
        special_bits: u32,
        aux_bits: Option<u32>,
    ) -> Arc<BfvParameters> {
        test_params(1024, 12289, q_bits, special_bits, aux_bits)
    }

    /// Test parameters (no security check), with auxiliary primes of
    /// `aux_bits` bits or the automatic choice.
    fn test_params(
        degree: usize,
        t: u64,
        q_bits: &[u32],
        special_bits: u32,
        aux_bits: Option<u32>,
    ) -> Arc<BfvParameters> {
        let b = BfvParametersBuilder::new()
            .degree(degree)
            .plaintext_modulus(t)
            .moduli_bits(q_bits)
            .special_modulus_bits(special_bits)
            .insecure_skip_security_check_for_tests();
        match aux_bits {
            Some(bits) => b.aux_prime_bits(bits),
            None => b,
        }
        .build()
        .unwrap()
    }

    /// Products round `t/Q` times the exact tensor, so the auxiliary primes
    /// only change which way a coefficient within 1 of a half rounds: 50-bit
    /// ones (the automatic choice here, whose tensor takes the IFMA split
    /// sums where the CPU has them) and 60-bit ones (`u128` sums) give
    /// products at most 1 apart in every coefficient, and both decrypt
    /// right through relinearization and a second product.
    #[test]
    fn products_do_not_depend_on_the_multiplication_basis() {
        const T: u64 = 1_032_193;
        let build = |aux: Option<u32>| test_params(4096, T, &[50, 50, 50], 50, aux);
        let (auto, wide) = (build(None), build(Some(60)));
        let aux_bits = |p: &BfvParameters| {
            p.moduli[p.aux_index()..]
                .iter()
                .map(|m| m.bits())
                .collect::<Vec<_>>()
        };
        assert_eq!(aux_bits(&auto), vec![50; 4]);
        assert_eq!(aux_bits(&wide), vec![60; 4]);
        assert_eq!(auto.fingerprint(), wide.fingerprint());

        let sk = SecretKey::random(&auto).unwrap();
        let rk = crate::keys::RelinKeys::new(&sk).unwrap();
        let enc = BatchEncoder::new(&auto);
        let dec = crate::encryption::Decryptor::new(&sk);
        let slots = |seed: u64| -> Vec<u64> {
            (0..4096u64)
                .map(|i| (i * 7919 + seed * 104_729 + i * i * seed) % T)
                .collect()
        };
        let mul = |x: &[u64], y: &[u64]| -> Vec<u64> {
            x.iter().zip(y).map(|(a, b)| a * b % T).collect()
        };
        let (va, vb, vc) = (slots(1), slots(2), slots(3));
        let [a, b, c] =
            [&va, &vb, &vc].map(|v| sk.encrypt_symmetric(&enc.encode(v).unwrap()).unwrap());
        let (ea, ew) = (Evaluator::new(&auto), Evaluator::new(&wide));
        // Coefficients (in RNS) at most 1 apart, as integers mod Q_l.
        let near = |x: &Ciphertext, y: &Ciphertext| {
            assert_eq!((x.level, x.polys.len()), (y.level, y.polys.len()));
            let n = auto.degree();
            let kl = auto.moduli_count_at(x.level);
            for (px, py) in x.polys.iter().zip(&y.polys) {
                for i in 0..n {
                    let d: Vec<u64> = (0..kl)
                        .map(|j| {
                            let q = auto.moduli[j].value();
                            let d = (px[j * n + i] + q - py[j * n + i]) % q;
                            if d == q - 1 { u64::MAX } else { d }
                        })
                        .collect();
                    assert!(
                        d.iter().all(|&e| e == d[0]) && (d[0] <= 1 || d[0] == u64::MAX),
                        "coefficient {i} differs by more than 1: {d:?}"
                    );
                }
            }
        };
        for level in 0..=1 {
            let [a, b, c] = [&a, &b, &c].map(|x| ea.mod_switch_to_level(x, level).unwrap());
            let run = |ev: &Evaluator| {
                let lifted = [&a, &b, &c].map(|x| ev.lift(x).unwrap());
                let sum = ev
                    .multiply_sum(&[(&lifted[0], &lifted[1]), (&lifted[2], &lifted[2])])
                    .unwrap();
                let ab = ev.multiply(&a, &b).unwrap();
                let ab_relin = ev.relinearize(&ab, &rk).unwrap();
                let abc = ev.multiply_relin(&ab_relin, &c, &rk).unwrap();
                (vec![ev.square(&a).unwrap(), ab, sum], abc)
            };
            let ((first_a, abc_a), (first_w, abc_w)) = (run(&ea), run(&ew));
            for (x, y) in first_a.iter().zip(&first_w) {
                near(x, y);
            }
            let open = |x: &Ciphertext| enc.decode(&dec.decrypt(x).unwrap()).unwrap();
            let ab = mul(&va, &vb);
            let sum: Vec<u64> = ab
                .iter()
                .zip(mul(&vc, &vc))
                .map(|(x, y)| (x + y) % T)
                .collect();
            for first in [&first_a, &first_w] {
                assert_eq!(open(&first[0]), mul(&va, &va), "level {level}");
                assert_eq!(open(&first[1]), ab, "level {level}");
                assert_eq!(open(&first[2]), sum, "level {level}");
            }
            assert_eq!(open(&abc_a), mul(&ab, &vc), "level {level}");
            assert_eq!(open(&abc_w), mul(&ab, &vc), "level {level}");
        }
    }

    /// A sum of more products than the auxiliary primes hold is refused
    /// before any work; at the capacity it runs.
    #[test]
    fn multiply_sum_refuses_more_than_its_capacity() {
        let params = small_params(&[40, 40], 40, Some(60));
        let sk = SecretKey::random(&params).unwrap();
        let ev = Evaluator::new(&params);
        let ct = sk
            .encrypt_symmetric(&BatchEncoder::new(&params).encode(&[1, 2, 3]).unwrap())
            .unwrap();
        let a = ev.lift(&ct).unwrap();
        let capacity = ev.multiply_sum_capacity(0).unwrap();
        assert!((1024..=1 << 20).contains(&capacity), "capacity {capacity}");
        let pairs = vec![(&a, &a); capacity + 1];
        assert!(matches!(
            ev.multiply_sum(&pairs),
            Err(Error::InvalidValue(_))
        ));
        assert!(ev.multiply_sum(&pairs[..capacity]).is_ok());
    }

    /// A ciphertext lifts to the same polynomials from coefficient or NTT
    /// form (the NTT form skips the transforms of its `Q` part), at the top
    /// level and below it.
    #[test]
    fn lift_is_the_same_from_either_form() {
        let params = small_params(&[40, 40, 40], 40, None);
        let sk = SecretKey::random(&params).unwrap();
        let enc = BatchEncoder::new(&params);
        let ev = Evaluator::new(&params);
        let values: Vec<u64> = (0..1024u64).map(|i| i * 7919 % 12289).collect();
        let ct = sk.encrypt_symmetric(&enc.encode(&values).unwrap()).unwrap();
        for level in 0..=1 {
            let coeff = ev.mod_switch_to_level(&ct, level).unwrap();
            let mut ntt = coeff.clone();
            ev.transform_to_ntt(&mut ntt).unwrap();
            let (a, b) = (ev.lift(&coeff).unwrap(), ev.lift(&ntt).unwrap());
            assert_eq!(a.level(), level);
            assert_eq!(a.size(), 2);
            assert_eq!(a.polys, b.polys, "level {level}");
            // Q part in NTT form, then one residue per auxiliary prime.
            let basis = ev.basis_qp(level).unwrap();
            assert_eq!(a.polys[0].len(), basis.len() * 1024);
            assert_eq!(&a.polys[0][..(3 - level) * 1024], &ntt.polys[0][..]);
        }
    }

    /// The split 52-bit path (IFMA, or its scalar loop) and the `u128` path
    /// give the same residues, for more terms than one lazy chunk of either.
    #[test]
    fn accumulate_paths_agree() {
        let params = small_params(&[50, 52], 52, None);
        let sk = SecretKey::random(&params).unwrap();
        let enc = BatchEncoder::new(&params);
        let ev = Evaluator::new(&params);
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut slots = || {
            (0..1024)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed % 12289
                })
                .collect::<Vec<u64>>()
        };
        let cts: Vec<Ciphertext> = (0..3)
            .map(|_| {
                let mut ct = sk
                    .encrypt_symmetric(&enc.encode(&slots()).unwrap())
                    .unwrap();
                ev.transform_to_ntt(&mut ct).unwrap();
                ct
            })
            .collect();
        let pts: Vec<PlaintextNtt> = (0..130)
            .map(|_| PlaintextNtt::new_compact(&params, &enc.encode(&slots()).unwrap(), 0).unwrap())
            .collect();
        // 130 terms (past the u128 path's fold every 60), three outputs:
        // every plaintext, every third one missing, only the last one.
        let terms: Vec<&Ciphertext> = (0..130).map(|i| &cts[i % 3]).collect();
        let rows: Vec<Vec<Option<&PlaintextNtt>>> = vec![
            pts.iter().map(Some).collect(),
            pts.iter()
                .enumerate()
                .map(|(i, p)| (i % 3 != 1).then_some(p))
                .collect(),
            (0..130).map(|i| (i == 129).then_some(&pts[129])).collect(),
        ];
        let kl = params.moduli_count_at(0);
        let mut a = vec![vec![vec![0u64; kl * 1024]; 2]; rows.len()];
        let mut b = a.clone();
        ev.accumulate_u128(&terms, &rows, kl, &mut a);
        ev.accumulate_split52(&terms, &rows, kl, &mut b);
        assert_eq!(a, b);
        let many = ev.multiply_plain_accumulate_many(&terms, &rows).unwrap();
        for ((row, out), expect) in rows.iter().zip(&many).zip(&a) {
            assert_eq!(&out.polys, expect);
            // Against products added one by one, and the one-output entry point.
            let pairs: Vec<(&Ciphertext, &PlaintextNtt)> = terms
                .iter()
                .zip(row)
                .filter_map(|(ct, pt)| pt.map(|pt| (*ct, pt)))
                .collect();
            let mut sum = ev.multiply_plain_ntt(pairs[0].0, pairs[0].1).unwrap();
            for (ct, pt) in &pairs[1..] {
                ev.add_assign(&mut sum, &ev.multiply_plain_ntt(ct, pt).unwrap())
                    .unwrap();
            }
            assert_eq!(&sum.polys, expect);
            assert_eq!(&ev.multiply_plain_accumulate(&pairs).unwrap().polys, expect);
        }
        // Malformed calls are errors.
        assert!(ev.multiply_plain_accumulate_many(&[], &[]).is_err());
        assert!(
            ev.multiply_plain_accumulate_many(&terms, &[vec![None; 130]])
                .is_err()
        );
        assert!(
            ev.multiply_plain_accumulate_many(&terms, &[vec![Some(&pts[0])]])
                .is_err()
        );
    }
}
