//! BFV parameters: ring degree, plaintext modulus, RNS ciphertext modulus,
//! special prime for key switching, the 128-bit security check, and the
//! per-level RNS constants every operation needs.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::bigint::BigUint;
use crate::error::{Error, Result};
use crate::modulus::{MAX_MODULUS_BITS, Modulus, generate_ntt_primes, is_prime};
use crate::ntt::NttPlan;

/// HomomorphicEncryption.org standard, 128-bit classical security, ternary
/// secret: the largest `log2(q)` (coefficient modulus including the special
/// prime) allowed for each ring degree.
pub const SECURITY_128: [(usize, u32); 6] = [
    (1024, 27),
    (2048, 54),
    (4096, 109),
    (8192, 218),
    (16384, 438),
    (32768, 881),
];

/// The 128-bit bound on `log2(q)` for degree `n`, if `n` is in the table.
pub fn max_log_q_128(n: usize) -> Option<u32> {
    SECURITY_128.iter().find(|(d, _)| *d == n).map(|(_, b)| *b)
}

/// Largest ciphertext size (number of polynomials) any operation produces
/// or any decoder accepts.
pub const MAX_CIPHERTEXT_SIZE: usize = 8;

/// Bit size of the auxiliary primes used by ciphertext multiplication:
/// the largest size, for the fewest primes.
const AUX_PRIME_BITS: u32 = 60;

/// Bit size of auxiliary primes the AVX-512 IFMA kernels take
/// ([`IFMA_MAX_BITS`](crate::ntt::IFMA_MAX_BITS)): used instead of
/// [`AUX_PRIME_BITS`] on CPUs with IFMA when the ciphertext primes are that
/// small too, so that the whole multiplication basis runs the IFMA
/// transforms, tensor and basis conversions, even when one more prime is
/// needed (a product at n = 4096 with 36-bit primes: 0.76 instead of 0.89
/// ms; four 43-bit primes at n = 8192: 5.3 instead of 6.0 ms); and
/// elsewhere when as few of them cover the basis. With larger ciphertext
/// primes the conversions cannot use IFMA, and the extra prime made a
/// product with 54-bit primes slower (5.3 instead of 4.0 ms). The
/// auxiliary primes live only inside multiplications: they change no key,
/// ciphertext or fingerprint, only which way a product's coefficient
/// within 1 of a half rounds.
const AUX_PRIME_BITS_IFMA: u32 = crate::ntt::IFMA_MAX_BITS;

/// How the coefficient modulus is given to the builder.
#[derive(Clone, Debug)]
enum ModuliSpec {
    Bits(Vec<u32>),
    Primes(Vec<u64>),
}

/// Builder for [`BfvParameters`].
///
/// ```
/// use he_core::BfvParametersBuilder;
/// let params = BfvParametersBuilder::new()
///     .degree(4096)
///     .plaintext_modulus(40961)
///     .moduli_bits(&[36, 36])
///     .build()
///     .unwrap();
/// assert_eq!(params.degree(), 4096);
/// ```
#[derive(Clone, Debug, Default)]
pub struct BfvParametersBuilder {
    degree: Option<usize>,
    plaintext: Option<u64>,
    plaintext_bits: Option<u32>,
    moduli: Option<ModuliSpec>,
    special: Option<u64>,
    special_bits: Option<u32>,
    no_key_switching: bool,
    insecure: bool,
    /// Bit size of the auxiliary primes instead of the automatic choice
    /// (tests compare the two multiplication bases).
    aux_prime_bits: Option<u32>,
}

impl BfvParametersBuilder {
    /// A builder with nothing set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Ring degree `n`: a power of two, 1024 to 32768 under the security check.
    pub fn degree(mut self, n: usize) -> Self {
        self.degree = Some(n);
        self
    }

    /// An explicit plaintext modulus `t`: prime, `t = 1 mod 2n` for batching.
    pub fn plaintext_modulus(mut self, t: u64) -> Self {
        self.plaintext = Some(t);
        self
    }

    /// Generate the plaintext modulus: the largest `bits`-bit prime `= 1 mod 2n`.
    pub fn plaintext_bits(mut self, bits: u32) -> Self {
        self.plaintext_bits = Some(bits);
        self
    }

    /// Ciphertext primes by bit size (generated, largest first, all distinct).
    pub fn moduli_bits(mut self, bits: &[u32]) -> Self {
        self.moduli = Some(ModuliSpec::Bits(bits.to_vec()));
        self
    }

    /// Explicit ciphertext primes.
    pub fn moduli(mut self, primes: &[u64]) -> Self {
        self.moduli = Some(ModuliSpec::Primes(primes.to_vec()));
        self
    }

    /// An explicit special prime for key switching. It may be smaller than
    /// the ciphertext primes, as in SEAL: relinearization then adds noise
    /// of about `q_max / p` times a fresh error, in exchange for more
    /// ciphertext bits under the security bound. That costs budget only
    /// where it exceeds the product's own noise: measured at `n = 8192`
    /// with 60-bit primes, nothing with a 38-bit special prime, 14 bits on
    /// the first product with a 20-bit one (APSI's `16M-1`).
    pub fn special_modulus(mut self, p: u64) -> Self {
        self.special = Some(p);
        self
    }

    /// Generate the special prime with this many bits (default: the
    /// largest ciphertext prime's size).
    pub fn special_modulus_bits(mut self, bits: u32) -> Self {
        self.special_bits = Some(bits);
        self
    }

    /// Parameters without key switching, as SEAL does for a single
    /// coefficient prime: relinearization keys cannot be generated or
    /// loaded, so the special prime never touches a key or ciphertext and
    /// the security bound counts the ciphertext primes alone (for example
    /// one 54-bit prime at `n = 2048`). Ciphertext products still work but
    /// stay at three polynomials.
    ///
    /// ```
    /// use he_core::BfvParametersBuilder;
    /// let params = BfvParametersBuilder::new()
    ///     .degree(2048)
    ///     .plaintext_modulus(12289)
    ///     .moduli_bits(&[54])
    ///     .without_key_switching()
    ///     .build()
    ///     .unwrap();
    /// assert!(!params.supports_key_switching());
    /// assert_eq!(params.log_q(), 54);
    /// ```
    pub fn without_key_switching(mut self) -> Self {
        self.no_key_switching = true;
        self
    }

    /// INSECURE: skip the 128-bit security bound. For tests and experiments
    /// with small rings only; never for data that matters.
    pub fn insecure_skip_security_check_for_tests(mut self) -> Self {
        self.insecure = true;
        self
    }

    /// Checks everything and precomputes the NTT plans and RNS constants.
    pub fn build(self) -> Result<Arc<BfvParameters>> {
        let n = self
            .degree
            .ok_or_else(|| Error::InvalidParameters("degree not set".into()))?;
        if !n.is_power_of_two() || !(crate::ntt::MIN_DEGREE..=crate::ntt::MAX_DEGREE).contains(&n) {
            return Err(Error::InvalidParameters(format!(
                "degree {n} is not a supported power of two"
            )));
        }
        let two_n = 2 * n as u64;
        let t = match (self.plaintext, self.plaintext_bits) {
            (Some(t), None) => t,
            (None, Some(bits)) => generate_ntt_primes(bits, 1, n, &[])?[0],
            _ => {
                return Err(Error::InvalidParameters(
                    "set exactly one of plaintext_modulus and plaintext_bits".into(),
                ));
            }
        };
        if !is_prime(t) || t % two_n != 1 {
            return Err(Error::InvalidParameters(format!(
                "plaintext modulus {t} must be a prime = 1 mod 2n = {two_n} for batching"
            )));
        }
        let q: Vec<u64> = match self.moduli {
            None => {
                return Err(Error::InvalidParameters(
                    "coefficient moduli not set".into(),
                ));
            }
            Some(ModuliSpec::Primes(p)) => p,
            Some(ModuliSpec::Bits(bits)) => {
                let mut primes: Vec<u64> = Vec::new();
                let mut sorted = bits.clone();
                sorted.sort_unstable();
                sorted.dedup();
                // Generate per size, then restore the caller's order.
                let mut pool: Vec<(u32, Vec<u64>)> = Vec::new();
                for b in sorted {
                    let count = bits.iter().filter(|&&x| x == b).count();
                    pool.push((b, generate_ntt_primes(b, count, n, &[t])?));
                }
                for b in &bits {
                    let entry = pool.iter_mut().find(|(x, _)| x == b).expect("pooled above");
                    primes.push(entry.1.remove(0));
                }
                primes
            }
        };
        if q.is_empty() || q.len() > 64 {
            return Err(Error::InvalidParameters(
                "need 1 to 64 ciphertext primes".into(),
            ));
        }
        for (i, &qi) in q.iter().enumerate() {
            if qi >> MAX_MODULUS_BITS != 0 || !is_prime(qi) || qi % two_n != 1 {
                return Err(Error::InvalidParameters(format!(
                    "ciphertext modulus {qi} must be a prime = 1 mod {two_n} below 2^{MAX_MODULUS_BITS}"
                )));
            }
            if qi <= t {
                return Err(Error::InvalidParameters(format!(
                    "ciphertext prime {qi} must exceed the plaintext modulus {t}"
                )));
            }
            if q[..i].contains(&qi) {
                return Err(Error::InvalidParameters(format!(
                    "ciphertext prime {qi} repeated"
                )));
            }
        }
        let max_q_bits = q
            .iter()
            .map(|p| 64 - p.leading_zeros())
            .max()
            .expect("non-empty");
        if self.no_key_switching && (self.special.is_some() || self.special_bits.is_some()) {
            return Err(Error::InvalidParameters(
                "a special prime was set on parameters without key switching".into(),
            ));
        }
        let special = match (self.special, self.special_bits) {
            (Some(p), None) => p,
            (None, bits) => {
                let mut excl = q.clone();
                excl.push(t);
                generate_ntt_primes(bits.unwrap_or(max_q_bits), 1, n, &excl)?[0]
            }
            _ => {
                return Err(Error::InvalidParameters(
                    "set at most one of special_modulus and special_modulus_bits".into(),
                ));
            }
        };
        if !is_prime(special) || special % two_n != 1 || special >> MAX_MODULUS_BITS != 0 {
            return Err(Error::InvalidParameters(format!(
                "special modulus {special} must be a prime = 1 mod {two_n} below 2^{MAX_MODULUS_BITS}"
            )));
        }
        if q.contains(&special) || special == t {
            return Err(Error::InvalidParameters(
                "special prime repeats another modulus".into(),
            ));
        }
        // Without key switching the special prime is internal only (no key
        // or ciphertext is ever formed modulo it): the bound covers q alone.
        let counted = if self.no_key_switching {
            None
        } else {
            Some(&special)
        };
        let mut full = BigUint::one();
        for &p in q.iter().chain(counted) {
            full = full.mul_u64(p);
        }
        let log_q = full.bits();
        if !self.insecure {
            match max_log_q_128(n) {
                Some(max) if log_q <= max => {}
                Some(max) => {
                    return Err(Error::InsecureParameters {
                        n,
                        log_q,
                        max_log_q: max,
                    });
                }
                None => {
                    return Err(Error::InvalidParameters(format!(
                        "degree {n} has no 128-bit security bound; use 1024..=32768"
                    )));
                }
            }
        }
        BfvParameters::assemble(
            n,
            t,
            q,
            special,
            Options {
                key_switching: !self.no_key_switching,
                log_q,
                insecure: self.insecure,
                aux_prime_bits: self.aux_prime_bits,
            },
        )
    }

    /// Uses auxiliary primes of `bits` bits for multiplication instead of
    /// the automatic choice. Products do not depend on it.
    #[cfg(test)]
    pub(crate) fn aux_prime_bits(mut self, bits: u32) -> Self {
        self.aux_prime_bits = Some(bits);
        self
    }
}

/// The builder's checked choices besides the primes.
struct Options {
    key_switching: bool,
    log_q: u32,
    insecure: bool,
    aux_prime_bits: Option<u32>,
}

/// Precomputed constants for one level (a prefix `q_0 .. q_{k-1}` of the
/// ciphertext primes).
#[derive(Debug)]
pub(crate) struct LevelContext {
    /// Number of ciphertext primes at this level.
    pub k: usize,
    /// The product of the level's primes.
    pub q_big: BigUint,
    /// `[(Q/q_i)^-1]_{q_i}` with Shoup constants.
    pub q_hat_inv: Vec<(u64, u64)>,
    /// `floor(t * 2^128 / q_i)`: the fixed-point fraction `t / q_i`.
    pub t_over_q: Vec<u128>,
    /// `[floor(Q/t)]_{q_i}` and `[Q]_t`, for scaling plaintexts by `Q/t`.
    pub delta: Vec<u64>,
    pub q_mod_t: u64,
    /// Multiplication: indices of the auxiliary primes used at this level.
    pub aux_count: usize,
    pub mul: MulContext,
    /// Modulus switching to the next level: `[q_last^-1]_{q_i}` (Shoup).
    pub q_last_inv: Vec<(u64, u64)>,
    /// Key switching: `[p_s^-1]_{q_i}` (Shoup).
    pub special_inv: Vec<(u64, u64)>,
}

/// Constants of the HPS-style multiplication at one level: lift Q -> P,
/// scale by t/Q into P, lift P -> Q.
#[derive(Debug, Default)]
pub(crate) struct MulContext {
    /// `[Q/q_i]_{p_j}`, row-major by j.
    pub q_hat_mod_p: Vec<u64>,
    /// `[Q]_{p_j}`.
    pub q_mod_p: Vec<u64>,
    /// `1 / q_i` as f64.
    pub q_inv_f64: Vec<f64>,
    /// `[(QP/q_i)^-1]_{q_i}` (Shoup).
    pub qp_hat_inv_q: Vec<(u64, u64)>,
    /// `floor(([t P]_{q_i}) * 2^64 / q_i)`: fractional parts of `t P / q_i`.
    pub tp_frac: Vec<u64>,
    /// `[floor(t P / q_i)]_{p_j}`, row-major by j.
    pub tp_int_mod_p: Vec<u64>,
    /// `[t Q^-1]_{p_j}`.
    pub t_q_inv_mod_p: Vec<u64>,
    /// `[(P/p_j)^-1]_{p_j}` (Shoup).
    pub p_hat_inv: Vec<(u64, u64)>,
    /// `[P/p_j]_{q_i}`, row-major by i.
    pub p_hat_mod_q: Vec<u64>,
    /// `[P]_{q_i}`.
    pub p_mod_q: Vec<u64>,
    /// `1 / p_j` as f64.
    pub p_inv_f64: Vec<f64>,
}

/// A checked BFV parameter set with all precomputation. Shared as
/// `Arc<BfvParameters>`; every object records the [fingerprint](Self::fingerprint)
/// of the set it belongs to.
#[derive(Debug)]
pub struct BfvParameters {
    n: usize,
    t: Modulus,
    t_plan: NttPlan,
    /// Ciphertext primes, then the special prime, then the auxiliary primes.
    pub(crate) moduli: Vec<Modulus>,
    pub(crate) plans: Vec<NttPlan>,
    k: usize,
    aux: usize,
    log_q: u32,
    key_switching: bool,
    insecure: bool,
    fingerprint: [u8; 8],
    pub(crate) levels: Vec<LevelContext>,
    /// Slot `i` of the batch encoder lives at NTT index `slot_index[i]`.
    pub(crate) slot_index: Vec<usize>,
}

fn shoup_pair(m: &Modulus, w: u64) -> (u64, u64) {
    (w, m.shoup(w))
}

impl BfvParameters {
    fn assemble(
        n: usize,
        t: u64,
        q: Vec<u64>,
        special: u64,
        options: Options,
    ) -> Result<Arc<Self>> {
        let Options {
            key_switching,
            log_q,
            insecure,
            aux_prime_bits,
        } = options;
        let k = q.len();
        let t_mod = Modulus::new(t)?;
        // Auxiliary base for multiplication: P > 4 * t * size * n * Q with
        // margin, at the top level; lower levels use a prefix of it.
        let log_t = 64 - t.leading_zeros();
        let needed_bits = |qbits: u32| qbits + log_t + n.trailing_zeros() + 3 + 3 + 4;
        let q_bits_total: u32 = {
            let mut b = BigUint::one();
            for &p in &q {
                b = b.mul_u64(p);
            }
            b.bits()
        };
        // A b-bit prime exceeds 2^(b-1): count b - 1 bits for each.
        let aux_for = |bits: u32, needed: u32| needed.div_ceil(bits - 1) as usize;
        let aux_bits = match aux_prime_bits {
            Some(bits) => bits,
            None if crate::ntt::pointwise::madd52_is_fast()
                && q.iter()
                    .all(|&p| 64 - p.leading_zeros() <= AUX_PRIME_BITS_IFMA) =>
            {
                AUX_PRIME_BITS_IFMA
            }
            None if aux_for(AUX_PRIME_BITS_IFMA, needed_bits(q_bits_total))
                <= aux_for(AUX_PRIME_BITS, needed_bits(q_bits_total)) =>
            {
                AUX_PRIME_BITS_IFMA
            }
            None => AUX_PRIME_BITS,
        };
        let aux = aux_for(aux_bits, needed_bits(q_bits_total));
        let mut excl = q.clone();
        excl.push(special);
        excl.push(t);
        let aux_primes = generate_ntt_primes(aux_bits, aux, n, &excl)?;
        let mut moduli = Vec::with_capacity(k + 1 + aux);
        for &p in q
            .iter()
            .chain(std::iter::once(&special))
            .chain(aux_primes.iter())
        {
            moduli.push(Modulus::new(p)?);
        }
        let plans = moduli
            .iter()
            .map(|m| NttPlan::new(n, m.value()))
            .collect::<Result<Vec<_>>>()?;
        let t_plan = NttPlan::new(n, t)?;

        let mut hasher = Sha256::new();
        hasher.update(b"he-core/bfv/parameters/v1");
        hasher.update((n as u64).to_le_bytes());
        hasher.update(t.to_le_bytes());
        hasher.update((k as u64).to_le_bytes());
        for p in &q {
            hasher.update(p.to_le_bytes());
        }
        hasher.update(special.to_le_bytes());
        if !key_switching {
            hasher.update(b"no key switching");
        }
        let digest = hasher.finalize();
        let mut fingerprint = [0u8; 8];
        fingerprint.copy_from_slice(&digest[..8]);

        let mut levels = Vec::with_capacity(k);
        for level in 0..k {
            let kl = k - level;
            levels.push(Self::level_context(&moduli, kl, k, aux, &t_mod, |qb| {
                aux_for(aux_bits, needed_bits(qb))
            })?);
        }
        Ok(Arc::new(Self {
            n,
            t: t_mod,
            t_plan,
            moduli,
            plans,
            k,
            aux,
            log_q,
            key_switching,
            insecure,
            fingerprint,
            levels,
            slot_index: slot_index_map(n),
        }))
    }

    fn level_context(
        moduli: &[Modulus],
        kl: usize,
        k: usize,
        aux_total: usize,
        t: &Modulus,
        aux_for_bits: impl Fn(u32) -> usize,
    ) -> Result<LevelContext> {
        let qs = &moduli[..kl];
        let special = &moduli[k];
        let mut q_big = BigUint::one();
        for m in qs {
            q_big = q_big.mul_u64(m.value());
        }
        let aux_count = aux_for_bits(q_big.bits()).min(aux_total);
        let ps = &moduli[k + 1..k + 1 + aux_count];
        let inv = |m: &Modulus, x: u64| {
            m.inv_vt(x)
                .ok_or_else(|| Error::InvalidParameters("moduli are not coprime".into()))
        };
        // [Q/q_i]_{m} for any modulus m: product of the other primes.
        let q_hat_mod = |i: usize, m: &Modulus| {
            qs.iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .fold(1u64, |acc, (_, qj)| m.mul(acc, m.reduce(qj.value())))
        };
        let prod_mod = |set: &[Modulus], m: &Modulus| {
            set.iter()
                .fold(1u64, |acc, x| m.mul(acc, m.reduce(x.value())))
        };

        let mut q_hat_inv = Vec::with_capacity(kl);
        let mut t_over_q = Vec::with_capacity(kl);
        let mut delta = Vec::with_capacity(kl);
        let q_mod_t = prod_mod(qs, t);
        for (i, qi) in qs.iter().enumerate() {
            q_hat_inv.push(shoup_pair(qi, inv(qi, q_hat_mod(i, qi))?));
            let tv = t.value() as u128;
            let hi = (tv << 64) / qi.value() as u128;
            let rem = (tv << 64) % qi.value() as u128;
            let lo = (rem << 64) / qi.value() as u128;
            t_over_q.push((hi << 64) | lo);
            // floor(Q/t) = (Q - [Q]_t)/t = -[Q]_t * t^-1 mod q_i.
            let t_inv = inv(qi, t.value())?;
            delta.push(qi.mul(qi.neg(qi.reduce(q_mod_t)), t_inv));
        }

        // Multiplication constants.
        let mut mul = MulContext::default();
        let p_prod_mod = |m: &Modulus| prod_mod(ps, m);
        for pj in ps {
            for i in 0..kl {
                mul.q_hat_mod_p.push(q_hat_mod(i, pj));
            }
            mul.q_mod_p.push(prod_mod(qs, pj));
        }
        mul.q_inv_f64 = qs.iter().map(|q| 1.0 / q.value() as f64).collect();
        for (i, qi) in qs.iter().enumerate() {
            let qp_hat = qi.mul(q_hat_mod(i, qi), p_prod_mod(qi));
            mul.qp_hat_inv_q.push(shoup_pair(qi, inv(qi, qp_hat)?));
            let r = qi.mul(qi.reduce(t.value()), p_prod_mod(qi));
            mul.tp_frac
                .push((((r as u128) << 64) / qi.value() as u128) as u64);
        }
        for pj in ps {
            for qi in qs {
                // floor(tP/q_i) = (tP - r_i)/q_i = -r_i * q_i^-1 mod p_j.
                let r = qi.mul(qi.reduce(t.value()), p_prod_mod(qi));
                let qinv = inv(pj, pj.reduce(qi.value()))?;
                mul.tp_int_mod_p.push(pj.mul(pj.neg(pj.reduce(r)), qinv));
            }
            let qinv = inv(pj, prod_mod(qs, pj))?;
            mul.t_q_inv_mod_p.push(pj.mul(pj.reduce(t.value()), qinv));
        }
        let p_hat_mod = |j: usize, m: &Modulus| {
            ps.iter()
                .enumerate()
                .filter(|(l, _)| *l != j)
                .fold(1u64, |acc, (_, pl)| m.mul(acc, m.reduce(pl.value())))
        };
        for (j, pj) in ps.iter().enumerate() {
            mul.p_hat_inv
                .push(shoup_pair(pj, inv(pj, p_hat_mod(j, pj))?));
        }
        for qi in qs {
            for j in 0..ps.len() {
                mul.p_hat_mod_q.push(p_hat_mod(j, qi));
            }
            mul.p_mod_q.push(p_prod_mod(qi));
        }
        mul.p_inv_f64 = ps.iter().map(|p| 1.0 / p.value() as f64).collect();

        let last = &qs[kl - 1];
        let q_last_inv = qs[..kl - 1]
            .iter()
            .map(|qi| Ok(shoup_pair(qi, inv(qi, qi.reduce(last.value()))?)))
            .collect::<Result<Vec<_>>>()?;
        let special_inv = qs
            .iter()
            .map(|qi| Ok(shoup_pair(qi, inv(qi, qi.reduce(special.value()))?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(LevelContext {
            k: kl,
            q_big,
            q_hat_inv,
            t_over_q,
            delta,
            q_mod_t,
            aux_count,
            mul,
            q_last_inv,
            special_inv,
        })
    }

    /// Ring degree `n` (also the number of batching slots).
    pub fn degree(&self) -> usize {
        self.n
    }

    /// The plaintext modulus `t`.
    pub fn plaintext(&self) -> &Modulus {
        &self.t
    }

    pub(crate) fn plaintext_plan(&self) -> &NttPlan {
        &self.t_plan
    }

    /// The ciphertext primes `q_0 .. q_{k-1}` (level 0 uses all of them).
    pub fn moduli(&self) -> &[Modulus] {
        &self.moduli[..self.k]
    }

    /// The special prime used only inside key switching.
    pub fn special_modulus(&self) -> &Modulus {
        &self.moduli[self.k]
    }

    /// Number of auxiliary primes used inside ciphertext multiplication
    /// (it depends on the CPU: 50-bit primes where AVX-512 IFMA runs and
    /// the ciphertext primes are that small).
    pub fn auxiliary_moduli_count(&self) -> usize {
        self.aux
    }

    /// Whether relinearization (key switching) is available; see
    /// [`BfvParametersBuilder::without_key_switching`].
    pub fn supports_key_switching(&self) -> bool {
        self.key_switching
    }

    /// Bit size of the modulus checked against the security bound: `q *
    /// p_special`, or `q` alone without key switching.
    pub fn log_q(&self) -> u32 {
        self.log_q
    }

    /// Whether the security check was skipped.
    pub fn is_insecure(&self) -> bool {
        self.insecure
    }

    /// The highest level: each modulus switch drops one prime, down to one.
    pub fn max_level(&self) -> usize {
        self.k - 1
    }

    /// Number of ciphertext primes at `level`.
    pub fn moduli_count_at(&self, level: usize) -> usize {
        self.k - level
    }

    /// Stable 8-byte fingerprint of `(n, t, q, special prime)`, stored in
    /// every serialized object.
    pub fn fingerprint(&self) -> [u8; 8] {
        self.fingerprint
    }

    pub(crate) fn level(&self, level: usize) -> Result<&LevelContext> {
        self.levels.get(level).ok_or_else(|| {
            Error::LevelMismatch(format!("level {level} exceeds the maximum {}", self.k - 1))
        })
    }

    /// Index of the special prime in the internal moduli list.
    pub(crate) fn special_index(&self) -> usize {
        self.k
    }

    /// An error unless key switching is available.
    pub(crate) fn require_key_switching(&self) -> Result<()> {
        if self.key_switching {
            Ok(())
        } else {
            Err(Error::InvalidParameters(
                "these parameters have no key switching (built without a special prime): \
                 relinearization keys cannot be generated or loaded"
                    .into(),
            ))
        }
    }

    /// Index of the first auxiliary prime in the internal moduli list.
    pub(crate) fn aux_index(&self) -> usize {
        self.k + 1
    }
}

/// SEAL's slot layout: slot `i` of row 0 sits at the NTT evaluation point
/// `psi^(3^i)`, row 1 at `psi^-(3^i)`, both in bit-reversed NTT order.
fn slot_index_map(n: usize) -> Vec<usize> {
    let log_n = n.trailing_zeros();
    let row = n / 2;
    let m = 2 * n as u64;
    let mut map = vec![0usize; n];
    let mut pos = 1u64;
    for i in 0..row {
        let index1 = ((pos - 1) >> 1) as usize;
        let index2 = ((m - pos - 1) >> 1) as usize;
        map[i] = crate::ntt::bit_reverse(index1, log_n);
        map[row + i] = crate::ntt::bit_reverse(index2, log_n);
        pos = (pos * 3) & (m - 1);
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn security_bound_is_enforced() {
        let err = BfvParametersBuilder::new()
            .degree(4096)
            .plaintext_bits(20)
            .moduli_bits(&[50, 50])
            .special_modulus_bits(50)
            .build()
            .unwrap_err();
        assert!(matches!(
            err,
            Error::InsecureParameters {
                n: 4096,
                max_log_q: 109,
                ..
            }
        ));
        let ok = BfvParametersBuilder::new()
            .degree(4096)
            .plaintext_bits(20)
            .moduli_bits(&[50, 50])
            .special_modulus_bits(50)
            .insecure_skip_security_check_for_tests()
            .build()
            .unwrap();
        assert!(ok.is_insecure());
        let ok = BfvParametersBuilder::new()
            .degree(8192)
            .plaintext_bits(20)
            .moduli_bits(&[54, 54, 55])
            .special_modulus_bits(55)
            .build()
            .unwrap();
        assert!(ok.log_q() <= 218);
        assert!(
            BfvParametersBuilder::new()
                .degree(512)
                .plaintext_bits(12)
                .moduli_bits(&[20])
                .build()
                .is_err()
        );
    }

    #[test]
    fn bad_parameters_are_rejected() {
        let b = || BfvParametersBuilder::new().degree(4096);
        assert!(
            b().plaintext_modulus(12289)
                .moduli_bits(&[50])
                .build()
                .is_err()
        ); // 65537 != 1 mod 8192
        assert!(
            b().plaintext_modulus(40961)
                .moduli(&[40961 * 2 + 1])
                .build()
                .is_err()
        );
        assert!(b().plaintext_modulus(40961).build().is_err());
        assert!(
            BfvParametersBuilder::new()
                .degree(3000)
                .plaintext_bits(20)
                .moduli_bits(&[50])
                .build()
                .is_err()
        );
        let q = generate_ntt_primes(40, 1, 4096, &[]).unwrap()[0];
        assert!(
            b().plaintext_modulus(40961)
                .moduli(&[q, q])
                .build()
                .is_err()
        );
        assert!(
            b().plaintext_modulus(40961)
                .moduli(&[q])
                .special_modulus(q)
                .build()
                .is_err()
        );
    }

    #[test]
    fn fingerprint_is_stable_and_distinguishes() {
        let mk = |bits: u32| {
            BfvParametersBuilder::new()
                .degree(4096)
                .plaintext_bits(bits)
                .moduli_bits(&[36, 36])
                .build()
                .unwrap()
                .fingerprint()
        };
        assert_eq!(mk(20), mk(20));
        assert_ne!(mk(20), mk(21));
    }
}
