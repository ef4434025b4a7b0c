//! Encryption (public-key and seeded symmetric) and decryption.

use std::sync::Arc;

use zeroize::Zeroize;

use crate::bigint::BigUint;
use crate::ciphertext::Ciphertext;
use crate::error::{Error, Result};
use crate::keys::{PublicKey, SecretKey};
use crate::params::BfvParameters;
use crate::plaintext::Plaintext;
use crate::rns;
use crate::sampling;

/// `round(Q_l * m / t)` in RNS coefficient form at `level`: the scaled
/// message BFV adds to a ciphertext.
pub(crate) fn scaled_message(
    params: &BfvParameters,
    level: usize,
    pt: &Plaintext,
) -> Result<Vec<u64>> {
    let ctx = params.level(level)?;
    let n = params.degree();
    let t = params.plaintext().value();
    let mut out = vec![0u64; ctx.k * n];
    // round([Q]_t * m / t) for each coefficient, shared by all primes.
    let corr: Vec<u64> = pt
        .coeffs
        .iter()
        .map(|&m| ((ctx.q_mod_t as u128 * m as u128 + (t as u128 >> 1)) / t as u128) as u64)
        .collect();
    for (i, chunk) in out.chunks_exact_mut(n).enumerate() {
        let qi = &params.moduli[i];
        let d = ctx.delta[i];
        let ds = qi.shoup(d);
        for ((o, &m), &c) in chunk.iter_mut().zip(&pt.coeffs).zip(&corr) {
            // c <= [Q]_t < t, below q_i for every prime in use.
            let c = if c < qi.value() { c } else { qi.reduce(c) };
            *o = qi.add(qi.mul_shoup(m, d, ds), c);
        }
    }
    Ok(out)
}

/// Public-key encryption.
///
/// ```
/// use he_core::*;
/// let params = BfvParametersBuilder::new().degree(4096).plaintext_bits(20)
///     .moduli_bits(&[36, 36]).build().unwrap();
/// let sk = SecretKey::random(&params).unwrap();
/// let pk = PublicKey::new(&sk).unwrap();
/// let rk = RelinKeys::new(&sk).unwrap();
/// let encoder = BatchEncoder::new(&params);
/// let encryptor = Encryptor::new(&params, &pk).unwrap();
/// let evaluator = Evaluator::new(&params);
/// let a = encryptor.encrypt(&encoder.encode(&[3, 4, 5]).unwrap()).unwrap();
/// let b = encryptor.encrypt(&encoder.encode(&[6, 7, 8]).unwrap()).unwrap();
/// let prod = evaluator.relinearize(&evaluator.multiply(&a, &b).unwrap(), &rk).unwrap();
/// let decryptor = Decryptor::new(&sk);
/// let slots = encoder.decode(&decryptor.decrypt(&prod).unwrap()).unwrap();
/// assert_eq!(&slots[..3], &[18, 28, 40]);
/// assert!(decryptor.noise_budget(&prod).unwrap() > 0);
/// ```
#[derive(Clone, Debug)]
pub struct Encryptor {
    params: Arc<BfvParameters>,
    pk: PublicKey,
}

impl Encryptor {
    /// An encryptor for `pk`; errors if the key belongs to other parameters.
    pub fn new(params: &Arc<BfvParameters>, pk: &PublicKey) -> Result<Self> {
        if pk.fingerprint != params.fingerprint() {
            return Err(Error::ParameterMismatch(
                "public key belongs to other parameters".into(),
            ));
        }
        Ok(Self {
            params: params.clone(),
            pk: pk.clone(),
        })
    }

    /// Encrypts at level 0 with fresh OS randomness: `(p0 u + e1 + Δm, p1 u + e2)`.
    pub fn encrypt(&self, pt: &Plaintext) -> Result<Ciphertext> {
        let params = &self.params;
        pt.check(params)?;
        let n = params.degree();
        let basis = rns::basis_q(params, 0);
        let mods = rns::moduli(params, &basis);
        let mut rng = sampling::os_rng()?;
        let mut u_small = sampling::ternary(&mut rng, n);
        let mut u = vec![0u64; basis.len() * n];
        sampling::small_to_rns(&u_small, &mods, &mut u);
        u_small.zeroize();
        rns::forward(params, &basis, &mut u);
        let mut c0 = u.clone();
        let mut c1 = u;
        rns::mul_shoup_assign(params, &basis, &mut c0, &self.pk.c0, &self.pk.c0_shoup);
        rns::mul_shoup_assign(params, &basis, &mut c1, &self.pk.c1, &self.pk.c1_shoup);
        rns::inverse(params, &basis, &mut c0);
        rns::inverse(params, &basis, &mut c1);
        let mut e = vec![0u64; basis.len() * n];
        let mut e_small = sampling::cbd(&mut rng, n);
        sampling::small_to_rns(&e_small, &mods, &mut e);
        rns::add_assign(params, &basis, &mut c0, &e);
        e_small = sampling::cbd(&mut rng, n);
        sampling::small_to_rns(&e_small, &mods, &mut e);
        e_small.zeroize();
        rns::add_assign(params, &basis, &mut c1, &e);
        e.zeroize();
        let dm = scaled_message(params, 0, pt)?;
        rns::add_assign(params, &basis, &mut c0, &dm);
        Ok(Ciphertext {
            fingerprint: params.fingerprint(),
            level: 0,
            ntt: false,
            polys: vec![c0, c1],
            seed: None,
        })
    }
}

impl SecretKey {
    /// Symmetric encryption at level 0: `(-(a s) + e + Δm, a)` with `a`
    /// expanded from a fresh public seed, so the ciphertext serializes at
    /// about half size while it is untouched.
    pub fn encrypt_symmetric(&self, pt: &Plaintext) -> Result<Ciphertext> {
        let params = &self.params;
        pt.check(params)?;
        let n = params.degree();
        let basis = rns::basis_q(params, 0);
        let seed = sampling::fresh_seed()?;
        let (c0, c1) = symmetric_from_seed(self, &seed, pt)?;
        debug_assert_eq!(c0.len(), basis.len() * n);
        Ok(Ciphertext {
            fingerprint: params.fingerprint(),
            level: 0,
            ntt: false,
            polys: vec![c0, c1],
            seed: Some(seed),
        })
    }
}

fn symmetric_from_seed(
    sk: &SecretKey,
    seed: &[u8; 32],
    pt: &Plaintext,
) -> Result<(Vec<u64>, Vec<u64>)> {
    let params = &sk.params;
    let n = params.degree();
    let basis = rns::basis_q(params, 0);
    let mods = rns::moduli(params, &basis);
    let mut a = sampling::expand_uniform(seed, &mods, n);
    let kn = basis.len() * n;
    let mut c0 = a.clone();
    rns::mul_shoup_assign(params, &basis, &mut c0, &sk.ntt[..kn], &sk.ntt_shoup[..kn]);
    rns::neg_assign(params, &basis, &mut c0);
    rns::inverse(params, &basis, &mut c0);
    let mut rng = sampling::os_rng()?;
    let mut e_small = sampling::cbd(&mut rng, n);
    let mut e = vec![0u64; basis.len() * n];
    sampling::small_to_rns(&e_small, &mods, &mut e);
    e_small.zeroize();
    rns::add_assign(params, &basis, &mut c0, &e);
    e.zeroize();
    let dm = scaled_message(params, 0, pt)?;
    rns::add_assign(params, &basis, &mut c0, &dm);
    rns::inverse(params, &basis, &mut a);
    Ok((c0, a))
}

/// Regenerates the uniform half of a seeded symmetric ciphertext.
pub(crate) fn expand_seeded_c1(params: &BfvParameters, seed: &[u8; 32]) -> Vec<u64> {
    let basis = rns::basis_q(params, 0);
    let mut a = sampling::expand_uniform(seed, &rns::moduli(params, &basis), params.degree());
    rns::inverse(params, &basis, &mut a);
    a
}

/// Decryption and noise measurement with a secret key.
#[derive(Debug)]
pub struct Decryptor<'a> {
    sk: &'a SecretKey,
}

impl<'a> Decryptor<'a> {
    /// A decryptor borrowing the secret key.
    pub fn new(sk: &'a SecretKey) -> Self {
        Self { sk }
    }

    pub(crate) fn secret_key(&self) -> &SecretKey {
        self.sk
    }

    /// `[c_0 + c_1 s + c_2 s^2 + ...]_{Q_l}` in coefficient form.
    fn phase(&self, ct: &Ciphertext) -> Result<Vec<u64>> {
        let params = &self.sk.params;
        ct.check(params)?;
        let basis = rns::basis_q(params, ct.level);
        let kn = basis.len() * params.degree();
        // The ciphertext primes at any level are a prefix of the key's basis.
        let (s, s_shoup) = (&self.sk.ntt[..kn], &self.sk.ntt_shoup[..kn]);
        // c_0 + sum_{j>=1} c_j s^j: the sum is formed in NTT form; c_0 joins
        // in whatever form the ciphertext is in, which spares its transforms.
        let mut acc = if ct.ntt {
            ct.polys[0].clone()
        } else {
            vec![0u64; kn]
        };
        let mut s_pow: Vec<u64> = Vec::new();
        let mut c = Vec::new();
        for (j, poly) in ct.polys.iter().enumerate().skip(1) {
            let x: &[u64] = if ct.ntt {
                poly
            } else {
                c.clear();
                c.extend_from_slice(poly);
                rns::forward(params, &basis, &mut c);
                &c
            };
            if j == 1 {
                rns::mul_shoup_add_assign(params, &basis, &mut acc, x, s, s_shoup);
            } else {
                if j == 2 {
                    s_pow = s.to_vec();
                }
                rns::mul_shoup_assign(params, &basis, &mut s_pow, s, s_shoup);
                rns::mul_add_assign(params, &basis, &mut acc, x, &s_pow);
            }
        }
        s_pow.zeroize();
        c.zeroize();
        rns::inverse(params, &basis, &mut acc);
        if !ct.ntt {
            rns::add_assign(params, &basis, &mut acc, &ct.polys[0]);
        }
        Ok(acc)
    }

    /// Decrypts: `m = round(t/Q_l * [c(s)]_{Q_l}) mod t`.
    pub fn decrypt(&self, ct: &Ciphertext) -> Result<Plaintext> {
        let params = &self.sk.params;
        let mut phase = self.phase(ct)?;
        let ctx = params.level(ct.level)?;
        let n = params.degree();
        let t = params.plaintext();
        let mut coeffs = vec![0u64; n];
        for (c, out) in coeffs.iter_mut().enumerate() {
            // t*x/Q = sum_i x_i * t/q_i (mod t), x_i = [x * (Q/q_i)^-1]_{q_i};
            // t/q_i is held as a 128-bit fixed-point fraction.
            let mut int_sum = 0u128;
            let mut frac_sum = 0u128;
            for i in 0..ctx.k {
                let qi = &params.moduli[i];
                let (w, ws) = ctx.q_hat_inv[i];
                let x = qi.mul_shoup(phase[i * n + c], w, ws) as u128;
                let tq = ctx.t_over_q[i];
                let lo = x * (tq as u64) as u128;
                let hi = x * (tq >> 64);
                let mid = (hi as u64) as u128 + (lo >> 64);
                int_sum += (hi >> 64) + (mid >> 64);
                frac_sum += mid as u64 as u128;
            }
            let rounded = int_sum + ((frac_sum + (1u128 << 63)) >> 64);
            *out = t.reduce_u128(rounded);
        }
        phase.zeroize();
        Ok(Plaintext {
            fingerprint: params.fingerprint(),
            coeffs,
        })
    }

    /// The invariant noise budget in bits: how many more bits of noise the
    /// ciphertext tolerates before decryption fails; 0 means it no longer
    /// decrypts correctly. Exact (multi-precision), not on a hot path.
    pub fn noise_budget(&self, ct: &Ciphertext) -> Result<u32> {
        let params = &self.sk.params;
        let mut phase = self.phase(ct)?;
        let ctx = params.level(ct.level)?;
        let n = params.degree();
        let t = params.plaintext().value();
        let q_big = &ctx.q_big;
        let half_q = q_big.half();
        // Q/q_i as big integers.
        let q_hat: Vec<BigUint> = (0..ctx.k)
            .map(|i| {
                (0..ctx.k)
                    .filter(|&j| j != i)
                    .fold(BigUint::one(), |acc, j| {
                        acc.mul_u64(params.moduli[j].value())
                    })
            })
            .collect();
        let mut max = BigUint::zero();
        for c in 0..n {
            // CRT-compose [t * phase]_Q, then center it.
            let mut v = BigUint::zero();
            for i in 0..ctx.k {
                let qi = &params.moduli[i];
                let (w, ws) = ctx.q_hat_inv[i];
                let tx = qi.mul(phase[i * n + c], qi.reduce(t));
                let x = qi.mul_shoup(tx, w, ws);
                v = v.add(&q_hat[i].mul_u64(x));
            }
            while v >= *q_big {
                v = v.sub(q_big);
            }
            if v > half_q {
                v = q_big.sub(&v);
            }
            if v > max {
                max = v;
            }
        }
        phase.zeroize();
        Ok(q_big.bits().saturating_sub(max.bits()).saturating_sub(1))
    }
}
