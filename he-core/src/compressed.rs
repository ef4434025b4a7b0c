//! Compact encoding of ciphertexts that are only decrypted from here on
//! (results sent back to a key owner).
//!
//! A size-2 ciphertext `(c0, c1)` over `Q` (the primes of its level) is
//! modulus-switched to powers of two, as in LWE/Kyber ciphertext
//! compression: `c1' = round(c1 * 2^k1 / Q) mod 2^k1` and
//! `c0' = round(c0 * 2^k0 / Q) mod 2^k0` with `k0 <= k1`, and serialized at
//! `k0` and `k1` bits per coefficient. The key owner decrypts with
//! `m = round(t / 2^k1 * [c0' 2^(k1-k0) + c1' s]_{2^k1}) mod t`.
//!
//! The rounding adds noise: at most `2^(k1-k0-1) + 1/2` from `c0`, and
//! `sum_j e_j s_(i-j)` from `c1`, a sum of `||s||_1 <= n` independent
//! rounding errors in `[-1/2, 1/2]`, which stays below
//! `x = sqrt(22.5 (n + 1))` except with probability `2^-64` per coefficient
//! (Hoeffding). [`CompressionBits::for_params`] picks
//! `k1 = ceil(log2 t) + ceil(log2 x) + 5` and `k0 = ceil(log2 t) + 5`,
//! so the added noise stays below `3/32` of what decryption tolerates.
//!
//! ```
//! use he_core::*;
//! let params = BfvParametersBuilder::new().degree(4096).plaintext_bits(20)
//!     .moduli_bits(&[36, 36]).build()?;
//! let sk = SecretKey::random(&params)?;
//! let encoder = BatchEncoder::new(&params);
//! let ct = sk.encrypt_symmetric(&encoder.encode(&[1, 2, 3])?)?;
//! let small = Evaluator::new(&params).compress(&ct, CompressionBits::for_params(&params))?;
//! let bytes = small.to_bytes(&params)?;
//! assert!(bytes.len() < ct.to_bytes(&params)?.len());
//! let back = CompressedCiphertext::from_bytes(&bytes, &params)?;
//! let slots = encoder.decode(&Decryptor::new(&sk).decrypt_compressed(&back)?)?;
//! assert_eq!(&slots[..3], &[1, 2, 3]);
//! # Ok::<(), he_core::Error>(())
//! ```

use std::sync::Arc;

use zeroize::Zeroize;

use crate::ciphertext::Ciphertext;
use crate::encryption::Decryptor;
use crate::error::{Error, Result};
use crate::evaluator::Evaluator;
use crate::params::BfvParameters;
use crate::plaintext::Plaintext;
use crate::rns;
use crate::serialize::{Reader, Writer, packed_len, tag};

/// Largest bit width of a compressed coefficient.
pub const MAX_COMPRESSED_BITS: u32 = 62;

/// Extra bits above the noise bound (see the module docs): the rounding
/// noise stays below `2^-(MARGIN_BITS - 1)` of the decryption threshold
/// for `c1` and `2^-MARGIN_BITS` for `c0`.
const MARGIN_BITS: u32 = 5;

/// Bit widths of the two polynomials of a [`CompressedCiphertext`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CompressionBits {
    /// Bits per coefficient of `c0'`.
    pub c0: u32,
    /// Bits per coefficient of `c1'` (at least `c0`).
    pub c1: u32,
}

impl CompressionBits {
    /// The default widths for `params` (see the module docs): exact
    /// decryption whenever the ciphertext had a noise budget of at least
    /// one bit, keeping most of that budget.
    pub fn for_params(params: &BfvParameters) -> Self {
        let t = params.plaintext().value();
        let t_bits = 64 - (t - 1).leading_zeros();
        let x = (22.5 * (params.degree() as f64 + 1.0)).sqrt();
        let x_bits = x.log2().ceil() as u32;
        Self {
            c0: (t_bits + MARGIN_BITS).min(MAX_COMPRESSED_BITS),
            c1: (t_bits + x_bits + MARGIN_BITS).min(MAX_COMPRESSED_BITS),
        }
    }

    fn check(self) -> Result<()> {
        if self.c0 == 0 || self.c0 > self.c1 || self.c1 > MAX_COMPRESSED_BITS {
            return Err(Error::InvalidValue(format!(
                "compression bits ({}, {}) must satisfy 1 <= c0 <= c1 <= {MAX_COMPRESSED_BITS}",
                self.c0, self.c1
            )));
        }
        Ok(())
    }
}

/// A size-2 ciphertext modulus-switched to `2^k` (see the module docs):
/// only decryptable, by [`Decryptor::decrypt_compressed`].
#[derive(Clone, PartialEq, Eq)]
pub struct CompressedCiphertext {
    fingerprint: [u8; 8],
    bits: CompressionBits,
    c0: Vec<u64>,
    c1: Vec<u64>,
}

impl std::fmt::Debug for CompressedCiphertext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompressedCiphertext")
            .field("bits", &self.bits)
            .finish_non_exhaustive()
    }
}

impl CompressedCiphertext {
    /// The bit widths.
    pub fn bits(&self) -> CompressionBits {
        self.bits
    }

    /// Serialized size in bytes for `params` and `bits`.
    pub fn byte_len(params: &BfvParameters, bits: CompressionBits) -> usize {
        10 + 2 + packed_len(params.degree(), bits.c0) + packed_len(params.degree(), bits.c1)
    }

    /// Serializes: the common 10-byte header, both widths, then `c0'` and
    /// `c1'` bit-packed at their widths.
    pub fn to_bytes(&self, params: &BfvParameters) -> Result<Vec<u8>> {
        self.check(params)?;
        let mut w = Writer::new(
            tag::COMPRESSED_CIPHERTEXT,
            params,
            Self::byte_len(params, self.bits),
        );
        w.u8(self.bits.c0 as u8);
        w.u8(self.bits.c1 as u8);
        w.packed(&self.c0, self.bits.c0);
        w.packed(&self.c1, self.bits.c1);
        Ok(w.into_bytes())
    }

    /// Decodes and validates a compressed ciphertext of `params`.
    pub fn from_bytes(bytes: &[u8], params: &Arc<BfvParameters>) -> Result<Self> {
        let mut r = Reader::new(bytes, tag::COMPRESSED_CIPHERTEXT, params)?;
        let bits = CompressionBits {
            c0: r.u8()? as u32,
            c1: r.u8()? as u32,
        };
        bits.check()?;
        let n = params.degree();
        let mut c0 = vec![0u64; n];
        let mut c1 = vec![0u64; n];
        r.packed_into(&mut c0, bits.c0, 1u64 << bits.c0)?;
        r.packed_into(&mut c1, bits.c1, 1u64 << bits.c1)?;
        r.finish()?;
        Ok(Self {
            fingerprint: params.fingerprint(),
            bits,
            c0,
            c1,
        })
    }

    fn check(&self, params: &BfvParameters) -> Result<()> {
        if self.fingerprint != params.fingerprint() {
            return Err(Error::ParameterMismatch(
                "compressed ciphertext belongs to other parameters".into(),
            ));
        }
        Ok(())
    }
}

/// `2^bits / q` as an integer part and a 128-bit fixed-point fraction.
fn pow2_over(q: u64, bits: u32) -> (u64, u128) {
    let num = 1u128 << bits;
    let int = (num / q as u128) as u64;
    let rem = num % q as u128;
    let hi = (rem << 64) / q as u128;
    let rem2 = (rem << 64) % q as u128;
    let lo = (rem2 << 64) / q as u128;
    (int, (hi << 64) | lo)
}

/// `round(2^bits * x / Q) mod 2^bits` for every coefficient of a
/// coefficient-form RNS polynomial over the `k` primes of `level`:
/// `2^bits x / Q = sum_i x'_i 2^bits / q_i (mod 2^bits)` with
/// `x'_i = [x_i (Q/q_i)^-1]_{q_i}`, each `2^bits / q_i` held as an integer
/// and a 128-bit fraction (as in decryption).
fn switch_to_pow2(
    params: &BfvParameters,
    level: usize,
    poly: &[u64],
    bits: u32,
) -> Result<Vec<u64>> {
    let ctx = params.level(level)?;
    let n = params.degree();
    let consts: Vec<(u64, u128)> = (0..ctx.k)
        .map(|i| pow2_over(params.moduli[i].value(), bits))
        .collect();
    let mask = (1u64 << bits) - 1;
    let mut out = vec![0u64; n];
    for (c, o) in out.iter_mut().enumerate() {
        let mut int_sum = 0u64;
        let mut frac_sum = 0u128;
        for (i, &(int, frac)) in consts.iter().enumerate() {
            let qi = &params.moduli[i];
            let (w, ws) = ctx.q_hat_inv[i];
            let x = qi.mul_shoup(poly[i * n + c], w, ws);
            let lo = x as u128 * (frac as u64) as u128;
            let hi = x as u128 * (frac >> 64);
            let mid = (hi as u64) as u128 + (lo >> 64);
            int_sum = int_sum
                .wrapping_add(x.wrapping_mul(int))
                .wrapping_add(((hi >> 64) + (mid >> 64)) as u64);
            frac_sum += mid as u64 as u128;
        }
        let rounded = int_sum.wrapping_add(((frac_sum + (1u128 << 63)) >> 64) as u64);
        *o = rounded & mask;
    }
    Ok(out)
}

impl Evaluator {
    /// Compresses a size-2 ciphertext at any level, in either form (see
    /// the module docs); no modulus switching is needed first. The result
    /// can only be decrypted.
    pub fn compress(&self, ct: &Ciphertext, bits: CompressionBits) -> Result<CompressedCiphertext> {
        let params = self.parameters();
        ct.check(params)?;
        bits.check()?;
        if ct.size() != 2 {
            return Err(Error::InvalidValue(format!(
                "compression takes a size-2 ciphertext, not size {}: relinearize first",
                ct.size()
            )));
        }
        let coeff;
        let ct = if ct.is_ntt() {
            let mut c = ct.clone();
            self.transform_from_ntt(&mut c)?;
            coeff = c;
            &coeff
        } else {
            ct
        };
        Ok(CompressedCiphertext {
            fingerprint: params.fingerprint(),
            bits,
            c0: switch_to_pow2(params, ct.level(), &ct.polys[0], bits.c0)?,
            c1: switch_to_pow2(params, ct.level(), &ct.polys[1], bits.c1)?,
        })
    }
}

impl Decryptor<'_> {
    /// `[c0' 2^(k1-k0) + c1' s]_{2^k1}`, each value in `[0, 2^k1)`.
    ///
    /// The product `c1' s` is computed exactly over the integers with the
    /// NTT modulo one or two of the key's primes (enough that their product
    /// exceeds `2 n 2^k1`), then reduced mod `2^k1`.
    fn compressed_phase(&self, ct: &CompressedCiphertext) -> Result<Vec<u64>> {
        let sk = self.secret_key();
        let params = &sk.params;
        ct.check(params)?;
        let n = params.degree();
        let k1 = ct.bits.c1;
        let needed = k1 + n.trailing_zeros() + 2;
        // Key basis: the level-0 ciphertext primes then the special prime,
        // laid out in that order in `sk.ntt`.
        let key_basis = rns::basis_q_special(params, 0);
        let bits_of = |pos: usize| params.moduli[key_basis[pos]].bits() - 1;
        let chosen: Vec<usize> = if let Some(pos) =
            (0..key_basis.len()).find(|&p| bits_of(p) >= needed)
        {
            vec![pos]
        } else {
            let mut order: Vec<usize> = (0..key_basis.len()).collect();
            order.sort_by_key(|&p| std::cmp::Reverse(bits_of(p)));
            if order.len() < 2 || bits_of(order[0]) + bits_of(order[1]) < needed {
                return Err(Error::InvalidValue(format!(
                    "the key's primes cannot hold the {needed}-bit products of {k1}-bit coefficients"
                )));
            }
            vec![order[0], order[1]]
        };
        let mut residues: Vec<Vec<u64>> = Vec::with_capacity(chosen.len());
        for &pos in &chosen {
            let idx = key_basis[pos];
            let m = &params.moduli[idx];
            let mut x: Vec<u64> = ct.c1.iter().map(|&c| m.reduce(c)).collect();
            let basis = [idx];
            rns::forward(params, &basis, &mut x);
            rns::mul_shoup_assign(
                params,
                &basis,
                &mut x,
                &sk.ntt[pos * n..(pos + 1) * n],
                &sk.ntt_shoup[pos * n..(pos + 1) * n],
            );
            rns::inverse(params, &basis, &mut x);
            residues.push(x);
        }
        let mask = (1u64 << k1) - 1;
        let shift = k1 - ct.bits.c0;
        let mut phase = vec![0u64; n];
        match chosen.as_slice() {
            [pos] => {
                let m = &params.moduli[key_basis[*pos]];
                for ((p, &r), &c0) in phase.iter_mut().zip(&residues[0]).zip(&ct.c0) {
                    *p = (m.center(r) as u64).wrapping_add(c0 << shift) & mask;
                }
            }
            [p0, p1] => {
                let (m0, m1) = (
                    &params.moduli[key_basis[*p0]],
                    &params.moduli[key_basis[*p1]],
                );
                let inv = m1
                    .inv_vt(m0.value())
                    .ok_or_else(|| Error::InvalidValue("equal key primes".into()))?;
                let inv_s = m1.shoup(inv);
                let big = m0.value() as u128 * m1.value() as u128;
                for (i, p) in phase.iter_mut().enumerate() {
                    let (x0, x1) = (residues[0][i], residues[1][i]);
                    let d = m1.mul_shoup(m1.sub(x1, m1.reduce(x0)), inv, inv_s);
                    let v = x0 as u128 + m0.value() as u128 * d as u128;
                    // Centered: subtracting P wraps correctly mod 2^k1.
                    let v = if v > big >> 1 {
                        (v as u64).wrapping_sub(big as u64)
                    } else {
                        v as u64
                    };
                    *p = v.wrapping_add(ct.c0[i] << shift) & mask;
                }
            }
            _ => unreachable!("one or two primes are chosen above"),
        }
        for r in residues.iter_mut() {
            r.zeroize();
        }
        Ok(phase)
    }

    /// Decrypts a [`CompressedCiphertext`]:
    /// `m = round(t / 2^k1 * phase) mod t`.
    pub fn decrypt_compressed(&self, ct: &CompressedCiphertext) -> Result<Plaintext> {
        let mut phase = self.compressed_phase(ct)?;
        let params = &self.secret_key().params;
        let t = params.plaintext();
        let k1 = ct.bits.c1;
        let coeffs = phase
            .iter()
            .map(|&p| {
                let v = (t.value() as u128 * p as u128 + (1u128 << (k1 - 1))) >> k1;
                t.reduce_u128(v)
            })
            .collect();
        phase.zeroize();
        Ok(Plaintext {
            fingerprint: params.fingerprint(),
            coeffs,
        })
    }

    /// The noise budget of a compressed ciphertext in bits, defined as for
    /// [`noise_budget`](Self::noise_budget) with `2^k1` in place of `q`:
    /// `k1 - bits(max |[t phase]_{2^k1}|) - 1`; 0 means it may not decrypt.
    pub fn compressed_noise_budget(&self, ct: &CompressedCiphertext) -> Result<u32> {
        let mut phase = self.compressed_phase(ct)?;
        let t = self.secret_key().params.plaintext().value();
        let k1 = ct.bits.c1;
        let mask = (1u128 << k1) - 1;
        let max = phase
            .iter()
            .map(|&p| {
                let v = (t as u128 * p as u128) & mask;
                if v >= 1u128 << (k1 - 1) {
                    (1u128 << k1) - v
                } else {
                    v
                }
            })
            .max()
            .unwrap_or(0);
        phase.zeroize();
        let bits = 128 - max.leading_zeros();
        Ok(k1.saturating_sub(bits).saturating_sub(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BatchEncoder, BfvParametersBuilder, Encryptor, PublicKey, RelinKeys, SecretKey};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn params_4096() -> Arc<BfvParameters> {
        BfvParametersBuilder::new()
            .degree(4096)
            .plaintext_bits(20)
            .moduli_bits(&[36, 36])
            .build()
            .unwrap()
    }

    fn params_8192() -> Arc<BfvParameters> {
        BfvParametersBuilder::new()
            .degree(8192)
            .plaintext_modulus(1_032_193)
            .moduli_bits(&[54, 54, 55])
            .special_modulus_bits(55)
            .build()
            .unwrap()
    }

    fn random_slots(rng: &mut ChaCha8Rng, params: &BfvParameters) -> Vec<u64> {
        let t = params.plaintext().value();
        (0..params.degree())
            .map(|_| rng.random_range(0..t))
            .collect()
    }

    /// Fresh, public-key, product and plain-product ciphertexts all
    /// decrypt exactly after compression, and keep a noise budget.
    fn exact_after_compression(params: Arc<BfvParameters>, rounds: usize, cases: usize) {
        let mut rng = ChaCha8Rng::seed_from_u64(params.degree() as u64);
        let sk = SecretKey::random(&params).unwrap();
        let pk = PublicKey::new(&sk).unwrap();
        let rk = RelinKeys::new(&sk).unwrap();
        let enc = Encryptor::new(&params, &pk).unwrap();
        let ev = Evaluator::new(&params);
        let encoder = BatchEncoder::new(&params);
        let dec = Decryptor::new(&sk);
        let bits = CompressionBits::for_params(&params);
        let t = *params.plaintext();
        for round in 0..rounds {
            let a = random_slots(&mut rng, &params);
            let b = random_slots(&mut rng, &params);
            let ca = sk.encrypt_symmetric(&encoder.encode(&a).unwrap()).unwrap();
            let cb = enc.encrypt(&encoder.encode(&b).unwrap()).unwrap();
            let (ct, expected): (Ciphertext, Vec<u64>) = match round % cases {
                0 => (ca, a.clone()),
                1 => (
                    ev.multiply_relin(&ca, &cb, &rk).unwrap(),
                    a.iter().zip(&b).map(|(&x, &y)| t.mul(x, y)).collect(),
                ),
                _ => {
                    let mut c = ev.multiply_relin(&ca, &cb, &rk).unwrap();
                    ev.transform_to_ntt(&mut c).unwrap();
                    let p = ev.plain_to_ntt(&encoder.encode(&b).unwrap(), 0).unwrap();
                    ev.multiply_plain_ntt_assign(&mut c, &p).unwrap();
                    let e = a
                        .iter()
                        .zip(&b)
                        .map(|(&x, &y)| t.mul(t.mul(x, y), y))
                        .collect();
                    (c, e)
                }
            };
            let before = dec.noise_budget(&ct).unwrap();
            assert!(
                before > 0,
                "round {round}: test ciphertext already too noisy"
            );
            // Alternate between the ciphertext's level and the last one
            // (when the switch leaves a budget).
            let ct = match ev.mod_switch_to_level(&ct, params.max_level()) {
                Ok(low) if round % 2 == 1 && dec.noise_budget(&low).unwrap() > 0 => low,
                _ => ct,
            };
            let before = dec.noise_budget(&ct).unwrap();
            assert!(
                before > 0,
                "round {round}: test ciphertext already too noisy"
            );
            let small = ev.compress(&ct, bits).unwrap();
            let bytes = small.to_bytes(&params).unwrap();
            assert_eq!(bytes.len(), CompressedCiphertext::byte_len(&params, bits));
            let back = CompressedCiphertext::from_bytes(&bytes, &params).unwrap();
            assert_eq!(back, small);
            let slots = encoder
                .decode(&dec.decrypt_compressed(&back).unwrap())
                .unwrap();
            assert_eq!(slots, expected, "round {round}");
            let after = dec.compressed_noise_budget(&back).unwrap();
            assert!(after <= before + 1, "round {round}: {after} > {before}");
            // The rounding noise is below 3/32 of the threshold: a budget
            // of 3 bits or more keeps at least 2.
            assert!(
                after + 1 >= before.min(3),
                "round {round}: budget {before} -> {after}"
            );
        }
    }

    #[test]
    fn decrypts_exactly_n4096() {
        // Too little modulus for a product followed by a plain product.
        exact_after_compression(params_4096(), 30, 2);
    }

    #[test]
    fn decrypts_exactly_n8192() {
        exact_after_compression(params_8192(), 12, 3);
    }

    #[test]
    fn default_bits_and_size() {
        let p = params_8192();
        let bits = CompressionBits::for_params(&p);
        // t < 2^20, sqrt(22.5 * 8193) < 2^9.
        assert_eq!(bits, CompressionBits { c0: 25, c1: 34 });
        let full = 10 + 3 + 2 * 8192 * 54 / 8;
        assert!(CompressedCiphertext::byte_len(&p, bits) * 100 < full * 58);
    }

    #[test]
    fn too_few_bits_fail_and_are_reported() {
        // With far too few bits the rounding noise destroys the message and
        // the budget says so.
        let params = params_4096();
        let sk = SecretKey::random(&params).unwrap();
        let ev = Evaluator::new(&params);
        let encoder = BatchEncoder::new(&params);
        let dec = Decryptor::new(&sk);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let a = random_slots(&mut rng, &params);
        let ct = sk.encrypt_symmetric(&encoder.encode(&a).unwrap()).unwrap();
        let small = ev
            .compress(&ct, CompressionBits { c0: 21, c1: 22 })
            .unwrap();
        assert_eq!(dec.compressed_noise_budget(&small).unwrap(), 0);
        assert_ne!(
            encoder
                .decode(&dec.decrypt_compressed(&small).unwrap())
                .unwrap(),
            a
        );
    }

    #[test]
    fn rejects_bad_input() {
        let params = params_4096();
        let sk = SecretKey::random(&params).unwrap();
        let rk = RelinKeys::new(&sk).unwrap();
        let ev = Evaluator::new(&params);
        let encoder = BatchEncoder::new(&params);
        let ct = sk
            .encrypt_symmetric(&encoder.encode(&[5]).unwrap())
            .unwrap();
        let bits = CompressionBits::for_params(&params);
        for bad in [
            CompressionBits { c0: 0, c1: 10 },
            CompressionBits { c0: 11, c1: 10 },
            CompressionBits { c0: 10, c1: 63 },
        ] {
            assert!(ev.compress(&ct, bad).is_err());
        }
        let product = ev.multiply(&ct, &ct).unwrap();
        assert!(ev.compress(&product, bits).is_err());
        assert!(
            ev.compress(&ev.relinearize(&product, &rk).unwrap(), bits)
                .is_ok()
        );
        let bytes = ev.compress(&ct, bits).unwrap().to_bytes(&params).unwrap();
        for len in 0..bytes.len() {
            assert!(CompressedCiphertext::from_bytes(&bytes[..len], &params).is_err());
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(CompressedCiphertext::from_bytes(&long, &params).is_err());
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        for _ in 0..500 {
            let mut b = bytes.clone();
            let i = rng.random_range(0..b.len());
            b[i] = rng.random();
            let _ = CompressedCiphertext::from_bytes(&b, &params);
        }
        // Bits in the header out of range.
        let mut b = bytes.clone();
        b[11] = 63;
        assert!(CompressedCiphertext::from_bytes(&b, &params).is_err());
        // Other parameters.
        let other = params_8192();
        assert!(CompressedCiphertext::from_bytes(&bytes, &other).is_err());
        // A plain ciphertext is not a compressed one.
        assert!(CompressedCiphertext::from_bytes(&ct.to_bytes(&params).unwrap(), &params).is_err());
    }
}
