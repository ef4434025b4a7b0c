//! Ciphertexts.

use std::fmt;

use crate::error::{Error, Result};
use crate::params::BfvParameters;

/// A BFV ciphertext: `size` polynomials over the ciphertext primes of its
/// level, in coefficient or NTT form.
///
/// Fresh ciphertexts have size 2 and are at level 0, in coefficient form.
/// A product has size 3 until relinearized. Symmetric encryptions remember
/// the seed of their uniform half, and serialize at half size while that
/// half is untouched.
#[derive(Clone, PartialEq, Eq)]
pub struct Ciphertext {
    pub(crate) fingerprint: [u8; 8],
    pub(crate) level: usize,
    pub(crate) ntt: bool,
    pub(crate) polys: Vec<Vec<u64>>,
    pub(crate) seed: Option<[u8; 32]>,
}

impl fmt::Debug for Ciphertext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ciphertext")
            .field("level", &self.level)
            .field("size", &self.polys.len())
            .field("ntt", &self.ntt)
            .field("seeded", &self.seed.is_some())
            .finish_non_exhaustive()
    }
}

impl Ciphertext {
    /// Level: the number of primes dropped by modulus switching so far.
    pub fn level(&self) -> usize {
        self.level
    }

    /// Number of polynomials (2 after relinearization).
    pub fn size(&self) -> usize {
        self.polys.len()
    }

    /// Whether the polynomials are in NTT form.
    pub fn is_ntt(&self) -> bool {
        self.ntt
    }

    /// Whether the second polynomial is still the expansion of a public
    /// seed, so [`to_bytes`](Self::to_bytes) stores the seed instead.
    pub fn is_seeded(&self) -> bool {
        self.seed.is_some()
    }

    pub(crate) fn check(&self, params: &BfvParameters) -> Result<()> {
        if self.fingerprint != params.fingerprint() {
            return Err(Error::ParameterMismatch(
                "ciphertext belongs to other parameters".into(),
            ));
        }
        Ok(())
    }
}
