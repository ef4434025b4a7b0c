//! Secret, public and relinearization keys.

use std::fmt;
use std::sync::Arc;

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::{Error, Result};
use crate::params::BfvParameters;
use crate::rns;
use crate::sampling;

/// A ternary secret key.
///
/// Zeroized on drop, redacted in `Debug`, deliberately not `Clone`. Keep it
/// on the client: nothing in a protocol ever needs to send it.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct SecretKey {
    #[zeroize(skip)]
    pub(crate) params: Arc<BfvParameters>,
    /// Coefficients in {-1, 0, 1}.
    pub(crate) coeffs: Vec<i8>,
    /// NTT form over the ciphertext primes and the special prime.
    pub(crate) ntt: Vec<u64>,
    /// Shoup constants of `ntt`, for fast products by `s`.
    pub(crate) ntt_shoup: Vec<u64>,
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey([REDACTED])")
    }
}

impl SecretKey {
    /// Samples a fresh key from the OS CSPRNG.
    pub fn random(params: &Arc<BfvParameters>) -> Result<Self> {
        let mut rng = sampling::os_rng()?;
        let coeffs = sampling::ternary(&mut rng, params.degree());
        Ok(Self::from_coeffs(params, coeffs))
    }

    pub(crate) fn from_coeffs(params: &Arc<BfvParameters>, coeffs: Vec<i8>) -> Self {
        let basis = rns::basis_q_special(params, 0);
        let mut ntt = vec![0u64; basis.len() * params.degree()];
        sampling::small_to_rns(&coeffs, &rns::moduli(params, &basis), &mut ntt);
        rns::forward(params, &basis, &mut ntt);
        let ntt_shoup = rns::shoup(params, &basis, &ntt);
        Self {
            params: params.clone(),
            coeffs,
            ntt,
            ntt_shoup,
        }
    }

    /// The parameters the key belongs to.
    pub fn parameters(&self) -> &Arc<BfvParameters> {
        &self.params
    }
}

/// A public encryption key `(-(a s + e), a)` in NTT form over the ciphertext primes.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub(crate) fingerprint: [u8; 8],
    pub(crate) c0: Vec<u64>,
    pub(crate) c1: Vec<u64>,
    /// The public seed `a` was expanded from.
    pub(crate) seed: [u8; 32],
    /// Shoup constants of `c0` and `c1` (derived, not serialized).
    pub(crate) c0_shoup: Vec<u64>,
    pub(crate) c1_shoup: Vec<u64>,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl PublicKey {
    /// Derives a public key from the secret key (fresh randomness from the OS).
    pub fn new(sk: &SecretKey) -> Result<Self> {
        let params = &sk.params;
        let seed = sampling::fresh_seed()?;
        let (c0, c1) = key_switch_row(sk, &seed, &rns::basis_q(params, 0), None)?;
        Ok(Self::assemble(params, c0, c1, seed))
    }

    /// A key from its polynomials, with the Shoup constants computed.
    pub(crate) fn assemble(
        params: &BfvParameters,
        c0: Vec<u64>,
        c1: Vec<u64>,
        seed: [u8; 32],
    ) -> Self {
        let basis = rns::basis_q(params, 0);
        Self {
            fingerprint: params.fingerprint(),
            c0_shoup: rns::shoup(params, &basis, &c0),
            c1_shoup: rns::shoup(params, &basis, &c1),
            c0,
            c1,
            seed,
        }
    }
}

/// Builds `(-(a s) + e + extra, a)` in NTT form over `basis`, with `a`
/// expanded from `seed`.
fn key_switch_row(
    sk: &SecretKey,
    seed: &[u8; 32],
    basis: &[usize],
    extra: Option<&[u64]>,
) -> Result<(Vec<u64>, Vec<u64>)> {
    let params = &sk.params;
    let n = params.degree();
    let mods = rns::moduli(params, basis);
    let a = sampling::expand_uniform(seed, &mods, n);
    let mut rng = sampling::os_rng()?;
    let mut e_small = sampling::cbd(&mut rng, n);
    let mut c0 = vec![0u64; basis.len() * n];
    sampling::small_to_rns(&e_small, &mods, &mut c0);
    e_small.zeroize();
    rns::forward(params, basis, &mut c0);
    let full = rns::basis_q_special(params, 0);
    let s = rns::restrict(n, &full, &sk.ntt, basis);
    let mut as_ = a.clone();
    rns::mul_assign(params, basis, &mut as_, &s);
    rns::sub_assign(params, basis, &mut c0, &as_);
    if let Some(x) = extra {
        rns::add_assign(params, basis, &mut c0, x);
    }
    Ok((c0, a))
}

/// Relinearization keys: key-switching keys from `s^2` to `s`, one row per
/// ciphertext prime (RNS decomposition), over the ciphertext primes and the
/// special prime, in NTT form.
#[derive(Clone, PartialEq, Eq)]
pub struct RelinKeys {
    pub(crate) fingerprint: [u8; 8],
    /// Row `i`: `(b_i, a_i)`, each over `q_0..q_{k-1}, p_special`.
    pub(crate) rows: Vec<(Vec<u64>, Vec<u64>)>,
    /// Per-row public seeds of the `a_i`.
    pub(crate) seeds: Vec<[u8; 32]>,
    /// Shoup constants of each row's `(b_i, a_i)` (derived, not serialized).
    pub(crate) shoup: Vec<(Vec<u64>, Vec<u64>)>,
}

impl fmt::Debug for RelinKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RelinKeys")
            .field("fingerprint", &self.fingerprint)
            .field("rows", &self.rows.len())
            .finish_non_exhaustive()
    }
}

impl RelinKeys {
    /// Generates relinearization keys (fresh randomness from the OS).
    ///
    /// Fails on parameters built
    /// [without key switching](crate::BfvParametersBuilder::without_key_switching).
    pub fn new(sk: &SecretKey) -> Result<Self> {
        let params = &sk.params;
        params.require_key_switching()?;
        let n = params.degree();
        let basis = rns::basis_q_special(params, 0);
        let k = params.moduli().len();
        let special = params.special_modulus().value();
        let mut s2 = sk.ntt.clone();
        rns::mul_assign(params, &basis, &mut s2, &sk.ntt);
        let mut rows = Vec::with_capacity(k);
        let mut seeds = Vec::with_capacity(k);
        for i in 0..k {
            // Gadget row i: p_special * s^2 at prime q_i, zero elsewhere.
            let mut extra = vec![0u64; basis.len() * n];
            let qi = &params.moduli[i];
            let ps = qi.reduce(special);
            let ps_shoup = qi.shoup(ps);
            for (o, &x) in extra[i * n..(i + 1) * n]
                .iter_mut()
                .zip(&s2[i * n..(i + 1) * n])
            {
                *o = qi.mul_shoup(x, ps, ps_shoup);
            }
            let seed = sampling::fresh_seed()?;
            rows.push(key_switch_row(sk, &seed, &basis, Some(&extra))?);
            extra.zeroize();
            seeds.push(seed);
        }
        s2.zeroize();
        Ok(Self::assemble(params, rows, seeds))
    }

    /// Keys from their rows, with the Shoup constants computed.
    pub(crate) fn assemble(
        params: &BfvParameters,
        rows: Vec<(Vec<u64>, Vec<u64>)>,
        seeds: Vec<[u8; 32]>,
    ) -> Self {
        let basis = rns::basis_q_special(params, 0);
        let shoup = rows
            .iter()
            .map(|(b, a)| (rns::shoup(params, &basis, b), rns::shoup(params, &basis, a)))
            .collect();
        Self {
            fingerprint: params.fingerprint(),
            rows,
            seeds,
            shoup,
        }
    }

    pub(crate) fn check(&self, params: &BfvParameters) -> Result<()> {
        if self.fingerprint != params.fingerprint() {
            return Err(Error::ParameterMismatch(
                "relinearization keys belong to other parameters".into(),
            ));
        }
        Ok(())
    }
}
