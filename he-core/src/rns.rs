//! Helpers over flat RNS polynomials: residues for the moduli listed in a
//! basis (indices into the parameters' moduli), `n` residues per modulus,
//! stored one modulus after another.

use crate::modulus::Modulus;
use crate::ntt::pointwise;
use crate::params::BfvParameters;

/// Indices of the ciphertext primes at `level`.
pub(crate) fn basis_q(params: &BfvParameters, level: usize) -> Vec<usize> {
    (0..params.moduli_count_at(level)).collect()
}

/// Ciphertext primes at `level` followed by the special prime.
pub(crate) fn basis_q_special(params: &BfvParameters, level: usize) -> Vec<usize> {
    let mut b = basis_q(params, level);
    b.push(params.special_index());
    b
}

pub(crate) fn moduli<'a>(params: &'a BfvParameters, basis: &[usize]) -> Vec<&'a Modulus> {
    basis.iter().map(|&i| &params.moduli[i]).collect()
}

/// Forward NTT of every residue polynomial.
pub(crate) fn forward(params: &BfvParameters, basis: &[usize], data: &mut [u64]) {
    let n = params.degree();
    for (&i, chunk) in basis.iter().zip(data.chunks_exact_mut(n)) {
        params.plans[i].forward(chunk);
    }
}

/// Inverse NTT of every residue polynomial.
pub(crate) fn inverse(params: &BfvParameters, basis: &[usize], data: &mut [u64]) {
    let n = params.degree();
    for (&i, chunk) in basis.iter().zip(data.chunks_exact_mut(n)) {
        params.plans[i].inverse(chunk);
    }
}

/// `a += b` residue-wise.
pub(crate) fn add_assign(params: &BfvParameters, basis: &[usize], a: &mut [u64], b: &[u64]) {
    let n = params.degree();
    for ((&i, ac), bc) in basis
        .iter()
        .zip(a.chunks_exact_mut(n))
        .zip(b.chunks_exact(n))
    {
        pointwise::add_assign(&params.moduli[i], ac, bc);
    }
}

/// `a -= b` residue-wise.
pub(crate) fn sub_assign(params: &BfvParameters, basis: &[usize], a: &mut [u64], b: &[u64]) {
    let n = params.degree();
    for ((&i, ac), bc) in basis
        .iter()
        .zip(a.chunks_exact_mut(n))
        .zip(b.chunks_exact(n))
    {
        pointwise::sub_assign(&params.moduli[i], ac, bc);
    }
}

/// `a = -a` residue-wise.
pub(crate) fn neg_assign(params: &BfvParameters, basis: &[usize], a: &mut [u64]) {
    let n = params.degree();
    for (&i, ac) in basis.iter().zip(a.chunks_exact_mut(n)) {
        pointwise::neg_assign(&params.moduli[i], ac);
    }
}

/// Shoup constants of every residue of `w` (a fixed multiplicand).
pub(crate) fn shoup(params: &BfvParameters, basis: &[usize], w: &[u64]) -> Vec<u64> {
    let n = params.degree();
    let mut out = Vec::with_capacity(w.len());
    for (&i, wc) in basis.iter().zip(w.chunks_exact(n)) {
        out.extend(pointwise::shoup_vec(&params.moduli[i], wc));
    }
    out
}

/// `a *= w` slot-wise for a fixed `w` with Shoup constants `ws` (see [`shoup`]).
pub(crate) fn mul_shoup_assign(
    params: &BfvParameters,
    basis: &[usize],
    a: &mut [u64],
    w: &[u64],
    ws: &[u64],
) {
    let n = params.degree();
    for (((&i, ac), wc), sc) in basis
        .iter()
        .zip(a.chunks_exact_mut(n))
        .zip(w.chunks_exact(n))
        .zip(ws.chunks_exact(n))
    {
        pointwise::mul_shoup_assign(&params.moduli[i], ac, wc, sc);
    }
}

/// `acc += x * w` slot-wise for a fixed `w` with Shoup constants `ws`.
pub(crate) fn mul_shoup_add_assign(
    params: &BfvParameters,
    basis: &[usize],
    acc: &mut [u64],
    x: &[u64],
    w: &[u64],
    ws: &[u64],
) {
    let n = params.degree();
    for ((((&i, cc), xc), wc), sc) in basis
        .iter()
        .zip(acc.chunks_exact_mut(n))
        .zip(x.chunks_exact(n))
        .zip(w.chunks_exact(n))
        .zip(ws.chunks_exact(n))
    {
        pointwise::mul_shoup_add_assign(&params.moduli[i], cc, xc, wc, sc);
    }
}

/// `a *= b` slot-wise (both in NTT form).
pub(crate) fn mul_assign(params: &BfvParameters, basis: &[usize], a: &mut [u64], b: &[u64]) {
    let n = params.degree();
    for ((&i, ac), bc) in basis
        .iter()
        .zip(a.chunks_exact_mut(n))
        .zip(b.chunks_exact(n))
    {
        let m = &params.moduli[i];
        for (x, &y) in ac.iter_mut().zip(bc) {
            *x = m.mul(*x, y);
        }
    }
}

/// `acc += a * b` slot-wise (NTT form).
pub(crate) fn mul_add_assign(
    params: &BfvParameters,
    basis: &[usize],
    acc: &mut [u64],
    a: &[u64],
    b: &[u64],
) {
    let n = params.degree();
    for (((&i, cc), ac), bc) in basis
        .iter()
        .zip(acc.chunks_exact_mut(n))
        .zip(a.chunks_exact(n))
        .zip(b.chunks_exact(n))
    {
        let m = &params.moduli[i];
        for ((c, &x), &y) in cc.iter_mut().zip(ac).zip(bc) {
            *c = m.add(*c, m.mul(x, y));
        }
    }
}

/// `out = [x]_src` centered in `(-src/2, src/2]` and reduced mod `dst`,
/// for every `x` of `x_src` (residues mod `src`).
pub(crate) fn centered_into(src: &Modulus, x_src: &[u64], dst: &Modulus, out: &mut [u64]) {
    let (s, d) = (src.value(), dst.value());
    let half = s >> 1;
    if half < d {
        // |centered| <= s/2 < d: a negative value -v maps to d - v.
        for (o, &x) in out.iter_mut().zip(x_src) {
            *o = if x > half { d - (s - x) } else { x };
        }
    } else {
        for (o, &x) in out.iter_mut().zip(x_src) {
            *o = dst.reduce_i64(src.center(x));
        }
    }
}

/// Copies the residues of `src` (over `src_basis`) that belong to `dst_basis`.
pub(crate) fn restrict(
    n: usize,
    src_basis: &[usize],
    src: &[u64],
    dst_basis: &[usize],
) -> Vec<u64> {
    let mut out = Vec::with_capacity(dst_basis.len() * n);
    for &d in dst_basis {
        let pos = src_basis
            .iter()
            .position(|&s| s == d)
            .expect("destination basis is a subset of the source basis");
        out.extend_from_slice(&src[pos * n..(pos + 1) * n]);
    }
    out
}
