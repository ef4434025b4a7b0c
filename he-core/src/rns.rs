//! Helpers over flat RNS polynomials: residues for the moduli listed in a
//! basis (indices into the parameters' moduli), `n` residues per modulus,
//! stored one modulus after another.

use crate::modulus::Modulus;
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
        let m = &params.moduli[i];
        for (x, &y) in ac.iter_mut().zip(bc) {
            *x = m.add(*x, y);
        }
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
        let m = &params.moduli[i];
        for (x, &y) in ac.iter_mut().zip(bc) {
            *x = m.sub(*x, y);
        }
    }
}

/// `a = -a` residue-wise.
pub(crate) fn neg_assign(params: &BfvParameters, basis: &[usize], a: &mut [u64]) {
    let n = params.degree();
    for (&i, ac) in basis.iter().zip(a.chunks_exact_mut(n)) {
        let m = &params.moduli[i];
        for x in ac.iter_mut() {
            *x = m.neg(*x);
        }
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
