//! Randomness: the OS-seeded CSPRNG, and samplers for secrets, errors and
//! uniform polynomials.
//!
//! Fresh randomness always comes from [`os_rng`]: a ChaCha20 stream keyed
//! from the operating system's CSPRNG for each operation. Seeded ChaCha20
//! streams are used only to expand a *public* 32-byte seed into the uniform
//! half of a ciphertext or key (see [`expand_uniform`]).

use rand::{RngCore, SeedableRng, TryRngCore};
use rand_chacha::ChaCha20Rng;
use zeroize::Zeroize;

use crate::error::{Error, Result};
use crate::modulus::Modulus;

/// A ChaCha20 generator keyed from the OS CSPRNG.
pub(crate) fn os_rng() -> Result<ChaCha20Rng> {
    let mut seed = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut seed)
        .map_err(|e| Error::Randomness(e.to_string()))?;
    let rng = ChaCha20Rng::from_seed(seed);
    seed.zeroize();
    Ok(rng)
}

/// A fresh public seed from the OS CSPRNG.
pub(crate) fn fresh_seed() -> Result<[u8; 32]> {
    let mut seed = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut seed)
        .map_err(|e| Error::Randomness(e.to_string()))?;
    Ok(seed)
}

/// Uniform ternary coefficients in {-1, 0, 1}.
pub(crate) fn ternary(rng: &mut impl RngCore, n: usize) -> Vec<i8> {
    let mut out = Vec::with_capacity(n);
    let mut buf = [0u8; 64];
    while out.len() < n {
        rng.fill_bytes(&mut buf);
        for &b in &buf {
            // 255 is rejected so that b % 3 is exactly uniform.
            if b < 255 && out.len() < n {
                out.push((b % 3) as i8 - 1);
            }
        }
    }
    buf.zeroize();
    out
}

/// Centered binomial errors with eta = 21: variance 10.5 (sigma ~ 3.24, as
/// SEAL's sigma = 3.2), support [-21, 21].
pub(crate) fn cbd(rng: &mut impl RngCore, n: usize) -> Vec<i8> {
    const MASK: u64 = (1 << 21) - 1;
    (0..n)
        .map(|_| {
            let x = rng.next_u64();
            ((x & MASK).count_ones() as i32 - ((x >> 21) & MASK).count_ones() as i32) as i8
        })
        .collect()
}

/// Uniform residues for each modulus in turn, by rejection sampling of
/// 64-bit words (accept below the largest multiple of `p`).
pub(crate) fn uniform_into(rng: &mut impl RngCore, moduli: &[&Modulus], n: usize, out: &mut [u64]) {
    for (m, chunk) in moduli.iter().zip(out.chunks_exact_mut(n)) {
        let p = m.value();
        let bound = u64::MAX - (u64::MAX % p) - 1;
        for x in chunk.iter_mut() {
            loop {
                let r = rng.next_u64();
                if r <= bound {
                    *x = r % p;
                    break;
                }
            }
        }
    }
}

/// Deterministically expands a public seed: the documented way the uniform
/// `a` polynomials of seeded ciphertexts and keys are regenerated.
/// ChaCha20 keyed with the seed, residues drawn per modulus in order.
pub(crate) fn expand_uniform(seed: &[u8; 32], moduli: &[&Modulus], n: usize) -> Vec<u64> {
    let mut rng = ChaCha20Rng::from_seed(*seed);
    let mut out = vec![0u64; moduli.len() * n];
    uniform_into(&mut rng, moduli, n, &mut out);
    out
}

/// Lifts a small signed polynomial into RNS form over `moduli`.
pub(crate) fn small_to_rns(small: &[i8], moduli: &[&Modulus], out: &mut [u64]) {
    let n = small.len();
    for (m, chunk) in moduli.iter().zip(out.chunks_exact_mut(n)) {
        let p = m.value();
        if p > 128 {
            // |s| <= 128 < p: a negative s maps to p + s, by a masked add.
            for (o, &s) in chunk.iter_mut().zip(small) {
                let v = s as i64;
                *o = (v + ((v >> 63) & p as i64)) as u64;
            }
        } else {
            for (o, &s) in chunk.iter_mut().zip(small) {
                *o = m.reduce_i64(s as i64);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samplers_have_the_right_support_and_moments() {
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let t = ternary(&mut rng, 30000);
        assert!(t.iter().all(|&x| (-1..=1).contains(&x)));
        for v in -1..=1 {
            let c = t.iter().filter(|&&x| x == v).count();
            assert!((9000..11000).contains(&c), "{v}: {c}");
        }
        let e = cbd(&mut rng, 100000);
        assert!(e.iter().all(|&x| (-21..=21).contains(&x)));
        let var = e.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / e.len() as f64;
        assert!((var - 10.5).abs() < 0.3, "{var}");
        let m = Modulus::new(97).unwrap();
        let u = expand_uniform(&[7; 32], &[&m], 1000);
        assert_eq!(u, expand_uniform(&[7; 32], &[&m], 1000));
        assert!(u.iter().all(|&x| x < 97));
    }
}
