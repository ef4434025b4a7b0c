//! Plaintexts and the batch encoder.

use std::fmt;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::params::BfvParameters;
use crate::rns;

/// A plaintext polynomial with coefficients mod `t`.
#[derive(Clone, PartialEq, Eq)]
pub struct Plaintext {
    pub(crate) fingerprint: [u8; 8],
    pub(crate) coeffs: Vec<u64>,
}

impl fmt::Debug for Plaintext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plaintext")
            .field("degree", &self.coeffs.len())
            .finish_non_exhaustive()
    }
}

impl Plaintext {
    /// A plaintext from raw coefficients (each below `t`, at most `n` of them).
    pub fn from_coeffs(params: &BfvParameters, coeffs: &[u64]) -> Result<Self> {
        let t = params.plaintext().value();
        if coeffs.len() > params.degree() {
            return Err(Error::InvalidValue(format!(
                "{} coefficients for degree {}",
                coeffs.len(),
                params.degree()
            )));
        }
        if let Some(c) = coeffs.iter().find(|&&c| c >= t) {
            return Err(Error::InvalidValue(format!(
                "coefficient {c} is not below t = {t}"
            )));
        }
        let mut v = coeffs.to_vec();
        v.resize(params.degree(), 0);
        Ok(Self {
            fingerprint: params.fingerprint(),
            coeffs: v,
        })
    }

    /// The coefficients, mod `t`.
    pub fn coeffs(&self) -> &[u64] {
        &self.coeffs
    }

    pub(crate) fn check(&self, params: &BfvParameters) -> Result<()> {
        if self.fingerprint != params.fingerprint() {
            return Err(Error::ParameterMismatch(
                "plaintext belongs to other parameters".into(),
            ));
        }
        Ok(())
    }
}

/// A plaintext lifted to the ciphertext primes of one level and transformed
/// to NTT form, ready to multiply NTT-form ciphertexts at that level.
///
/// Building one costs one NTT per prime; multiplying by it afterwards is a
/// slot-wise product. Build once, reuse many times.
#[derive(Clone, PartialEq, Eq)]
pub struct PlaintextNtt {
    pub(crate) fingerprint: [u8; 8],
    pub(crate) level: usize,
    pub(crate) data: Vec<u64>,
    /// Shoup constants of `data` (derived, not serialized); empty for a
    /// [compact](Self::new_compact) plaintext.
    pub(crate) shoup: Vec<u64>,
}

impl fmt::Debug for PlaintextNtt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlaintextNtt")
            .field("level", &self.level)
            .finish_non_exhaustive()
    }
}

impl PlaintextNtt {
    /// Lifts `pt` (coefficients centered in `(-t/2, t/2]`, which keeps the
    /// noise growth of a plain product smallest) and transforms it.
    pub fn new(params: &BfvParameters, pt: &Plaintext, level: usize) -> Result<Self> {
        pt.check(params)?;
        params.level(level)?;
        let basis = rns::basis_q(params, level);
        let data = lift_centered(params, &basis, &pt.coeffs, true);
        Ok(Self::assemble(params, level, data))
    }

    /// Like [`new`](Self::new) but without the precomputed Shoup constants:
    /// half the memory. [`Evaluator::multiply_plain_accumulate`](crate::Evaluator::multiply_plain_accumulate)
    /// is as fast with it (it reduces lazily in 128 bits);
    /// [`Evaluator::multiply_plain_ntt`](crate::Evaluator::multiply_plain_ntt)
    /// falls back to Barrett reduction, about 1.7x slower. For databases of
    /// many plaintexts, such as a PSI sender's.
    pub fn new_compact(params: &BfvParameters, pt: &Plaintext, level: usize) -> Result<Self> {
        pt.check(params)?;
        params.level(level)?;
        let basis = rns::basis_q(params, level);
        Ok(Self {
            fingerprint: params.fingerprint(),
            level,
            data: lift_centered(params, &basis, &pt.coeffs, true),
            shoup: Vec::new(),
        })
    }

    /// Heap bytes held (residues and, unless compact, Shoup constants).
    pub fn heap_bytes(&self) -> usize {
        (self.data.capacity() + self.shoup.capacity()) * 8
    }

    /// A plaintext from its NTT-form residues, with the Shoup constants computed.
    pub(crate) fn assemble(params: &BfvParameters, level: usize, data: Vec<u64>) -> Self {
        let shoup = rns::shoup(params, &rns::basis_q(params, level), &data);
        Self {
            fingerprint: params.fingerprint(),
            level,
            data,
            shoup,
        }
    }

    /// The level whose primes this plaintext is lifted to.
    pub fn level(&self) -> usize {
        self.level
    }
}

/// Lifts coefficients mod `t` to `basis`, centered, optionally in NTT form.
pub(crate) fn lift_centered(
    params: &BfvParameters,
    basis: &[usize],
    coeffs: &[u64],
    ntt: bool,
) -> Vec<u64> {
    let n = params.degree();
    let t = params.plaintext();
    let mut out = vec![0u64; basis.len() * n];
    for (&i, chunk) in basis.iter().zip(out.chunks_exact_mut(n)) {
        let m = &params.moduli[i];
        for (o, &c) in chunk.iter_mut().zip(coeffs) {
            *o = m.reduce_i64(t.center(c));
        }
    }
    if ntt {
        rns::forward(params, basis, &mut out);
    }
    out
}

/// Encodes vectors of integers mod `t` into the `n` slots of a plaintext:
/// two rows of `n/2`, slot-wise addition and multiplication under
/// homomorphic operations.
///
/// ```
/// use he_core::{BfvParametersBuilder, BatchEncoder};
/// let params = BfvParametersBuilder::new().degree(4096).plaintext_bits(20)
///     .moduli_bits(&[36, 36]).build().unwrap();
/// let encoder = BatchEncoder::new(&params);
/// let pt = encoder.encode(&[1, 2, 3]).unwrap();
/// assert_eq!(&encoder.decode(&pt).unwrap()[..4], &[1, 2, 3, 0]);
/// ```
#[derive(Clone, Debug)]
pub struct BatchEncoder {
    params: Arc<BfvParameters>,
}

impl BatchEncoder {
    /// An encoder for `params`.
    pub fn new(params: &Arc<BfvParameters>) -> Self {
        Self {
            params: params.clone(),
        }
    }

    /// Number of slots (`n`).
    pub fn slot_count(&self) -> usize {
        self.params.degree()
    }

    /// Encodes up to `n` values, each below `t`; missing slots are zero.
    pub fn encode(&self, values: &[u64]) -> Result<Plaintext> {
        let n = self.params.degree();
        let t = self.params.plaintext().value();
        if values.len() > n {
            return Err(Error::InvalidValue(format!(
                "{} values for {n} slots",
                values.len()
            )));
        }
        let mut eval = vec![0u64; n];
        for (i, &v) in values.iter().enumerate() {
            if v >= t {
                return Err(Error::InvalidValue(format!(
                    "slot value {v} is not below t = {t}"
                )));
            }
            eval[self.params.slot_index[i]] = v;
        }
        self.params.plaintext_plan().inverse(&mut eval);
        Ok(Plaintext {
            fingerprint: self.params.fingerprint(),
            coeffs: eval,
        })
    }

    /// Encodes signed values in `[-(t-1)/2, (t-1)/2]`.
    pub fn encode_signed(&self, values: &[i64]) -> Result<Plaintext> {
        let t = self.params.plaintext();
        let half = (t.value() - 1) / 2;
        let mut v = Vec::with_capacity(values.len());
        for &x in values {
            if x.unsigned_abs() > half {
                return Err(Error::InvalidValue(format!(
                    "signed slot value {x} exceeds (t-1)/2 = {half}"
                )));
            }
            v.push(t.reduce_i64(x));
        }
        self.encode(&v)
    }

    /// Decodes all `n` slots.
    pub fn decode(&self, pt: &Plaintext) -> Result<Vec<u64>> {
        pt.check(&self.params)?;
        let mut eval = pt.coeffs.clone();
        self.params.plaintext_plan().forward(&mut eval);
        Ok(self.params.slot_index.iter().map(|&i| eval[i]).collect())
    }

    /// Decodes all `n` slots as centered signed values.
    pub fn decode_signed(&self, pt: &Plaintext) -> Result<Vec<i64>> {
        let t = self.params.plaintext();
        Ok(self.decode(pt)?.into_iter().map(|x| t.center(x)).collect())
    }
}
