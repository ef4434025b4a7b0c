//! Negacyclic number-theoretic transform over `Z_p[X]/(X^n + 1)`.
//!
//! An [`NttPlan`] holds the twiddle factors of one `(n, p)` pair and the
//! backend chosen for it. [`NttPlan::forward`] maps coefficients (natural
//! order) to evaluations at the odd powers of a primitive `2n`-th root `psi`
//! in bit-reversed order, so a negacyclic product is a slot-wise product in
//! between. [`NttPlan::inverse`] undoes it, including the `1/n` factor.
//!
//! The scalar kernel uses Harvey's lazy butterflies with Shoup constants;
//! the SIMD kernels (module `x86_64`) compute exactly the same values (every
//! backend is tested against scalar), so the choice of backend never
//! changes a result, only its speed.

pub(crate) mod pointwise;
mod scalar;
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
pub(crate) mod x86_64;

use std::sync::OnceLock;

use crate::error::{Error, Result};
use crate::modulus::{Modulus, minimal_primitive_root};

/// Smallest supported ring degree.
pub const MIN_DEGREE: usize = 8;
/// Largest supported ring degree.
pub const MAX_DEGREE: usize = 1 << 17;

/// An NTT implementation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backend {
    /// Portable code (Harvey butterflies, Shoup twiddles).
    Scalar,
    /// AVX2, four 64-bit lanes.
    Avx2,
    /// AVX-512F/DQ, eight 64-bit lanes, for primes up to 61 bits.
    Avx512,
    /// AVX-512 IFMA (`vpmadd52luq/huq`), eight lanes, for primes below 2^50.
    Avx512Ifma,
}

/// Largest prime bit size the IFMA kernel accepts: lazy values in `[0, 4p)`
/// must fit the 52-bit multiplier inputs.
pub const IFMA_MAX_BITS: u32 = 50;

impl Backend {
    /// Every backend, fastest first.
    pub const ALL: [Backend; 4] = [
        Backend::Avx512Ifma,
        Backend::Avx512,
        Backend::Avx2,
        Backend::Scalar,
    ];

    /// Whether this CPU can run the backend (for some modulus).
    pub fn is_available(self) -> bool {
        match self {
            Backend::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            other => x86_64::is_available(other),
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// Whether the backend can transform modulo a prime of `bits` bits.
    pub fn supports_bits(self, bits: u32) -> bool {
        match self {
            Backend::Avx512Ifma => bits <= IFMA_MAX_BITS,
            _ => bits <= crate::modulus::MAX_MODULUS_BITS,
        }
    }

    /// The backends this CPU can run, fastest first.
    pub fn available() -> Vec<Backend> {
        Self::ALL.into_iter().filter(|b| b.is_available()).collect()
    }

    /// The fastest backend for a prime of `bits` bits, detected once and cached.
    pub fn best_for_bits(bits: u32) -> Backend {
        static AVAILABLE: OnceLock<Vec<Backend>> = OnceLock::new();
        AVAILABLE
            .get_or_init(Backend::available)
            .iter()
            .copied()
            .find(|b| b.supports_bits(bits))
            .unwrap_or(Backend::Scalar)
    }

    /// A short lowercase name (`scalar`, `avx2`, `avx512`, `avx512ifma`).
    pub fn name(self) -> &'static str {
        match self {
            Backend::Scalar => "scalar",
            Backend::Avx2 => "avx2",
            Backend::Avx512 => "avx512",
            Backend::Avx512Ifma => "avx512ifma",
        }
    }
}

/// Precomputed tables for the negacyclic NTT of one `(n, p)` pair.
///
/// Building a plan costs `O(n)` modular multiplications plus the search
/// for the root; transforms cost `O(n log n)`. Plans are immutable and
/// `Sync`: share them.
#[derive(Clone, Debug)]
pub struct NttPlan {
    pub(crate) n: usize,
    pub(crate) modulus: Modulus,
    pub(crate) backend: Backend,
    /// `psi^bitrev(i)` for `i < n` (entry 0 unused by the butterflies).
    pub(crate) fwd: Vec<u64>,
    pub(crate) fwd_shoup: Vec<u64>,
    /// `psi^-bitrev(i)`: inverse twiddles for Gentleman-Sande butterflies.
    pub(crate) inv: Vec<u64>,
    pub(crate) inv_shoup: Vec<u64>,
    /// `n^-1 mod p` and its Shoup constant.
    pub(crate) n_inv: u64,
    pub(crate) n_inv_shoup: u64,
    /// Tables the SIMD kernels precompute for themselves.
    #[cfg(target_arch = "x86_64")]
    pub(crate) simd: Option<x86_64::SimdTables>,
}

pub(crate) fn bit_reverse(x: usize, bits: u32) -> usize {
    if bits == 0 {
        0
    } else {
        x.reverse_bits() >> (usize::BITS - bits)
    }
}

impl NttPlan {
    /// A plan for degree `n` (a power of two in `8..=2^17`) and prime
    /// `p = 1 mod 2n` below 2^61, using the fastest backend for `p`.
    pub fn new(n: usize, p: u64) -> Result<Self> {
        let bits = 64 - p.leading_zeros();
        Self::with_backend(n, p, Backend::best_for_bits(bits))
    }

    /// A plan on an explicit backend; errors when the CPU lacks it or it
    /// cannot handle a prime of this size.
    pub fn with_backend(n: usize, p: u64, backend: Backend) -> Result<Self> {
        if !n.is_power_of_two() || !(MIN_DEGREE..=MAX_DEGREE).contains(&n) {
            return Err(Error::InvalidParameters(format!(
                "NTT degree {n} is not a power of two in {MIN_DEGREE}..={MAX_DEGREE}"
            )));
        }
        let modulus = Modulus::new(p)?;
        if !backend.is_available() {
            return Err(Error::BackendUnavailable(backend));
        }
        if !backend.supports_bits(modulus.bits()) {
            return Err(Error::BackendUnsupportedModulus {
                backend,
                bits: modulus.bits(),
            });
        }
        let psi = minimal_primitive_root(&modulus, n)?;
        let psi_inv = modulus.inv_vt(psi).expect("a root of unity is invertible");
        let log_n = n.trailing_zeros();
        let mut fwd = vec![0u64; n];
        let mut inv = vec![0u64; n];
        let (mut pw, mut ipw) = (1u64, 1u64);
        for i in 0..n {
            let r = bit_reverse(i, log_n);
            fwd[r] = pw;
            inv[r] = ipw;
            pw = modulus.mul(pw, psi);
            ipw = modulus.mul(ipw, psi_inv);
        }
        let fwd_shoup = fwd.iter().map(|&w| modulus.shoup(w)).collect();
        let inv_shoup = inv.iter().map(|&w| modulus.shoup(w)).collect();
        let n_inv = modulus
            .inv_vt(n as u64)
            .expect("n is invertible mod an odd prime");
        let mut plan = Self {
            n,
            modulus,
            backend,
            fwd,
            fwd_shoup,
            inv,
            inv_shoup,
            n_inv,
            n_inv_shoup: modulus.shoup(n_inv),
            #[cfg(target_arch = "x86_64")]
            simd: None,
        };
        #[cfg(target_arch = "x86_64")]
        {
            plan.simd = x86_64::SimdTables::new(&plan);
        }
        Ok(plan)
    }

    /// Ring degree `n`.
    pub fn degree(&self) -> usize {
        self.n
    }

    /// The prime modulus.
    pub fn modulus(&self) -> &Modulus {
        &self.modulus
    }

    /// The backend this plan runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// In-place forward transform. Input coefficients in `[0, p)`, natural
    /// order; output evaluations in `[0, p)`, bit-reversed order.
    ///
    /// # Panics
    /// If `a.len() != n` (a programming error, not an input error).
    pub fn forward(&self, a: &mut [u64]) {
        assert_eq!(
            a.len(),
            self.n,
            "NTT input length must equal the plan's degree"
        );
        match self.backend {
            Backend::Scalar => scalar::forward(self, a),
            #[cfg(target_arch = "x86_64")]
            _ => x86_64::forward(self, a),
            #[cfg(not(target_arch = "x86_64"))]
            _ => scalar::forward(self, a),
        }
    }

    /// In-place inverse transform including the `1/n` factor: undoes
    /// [`forward`](Self::forward). Input in `[0, p)`, output in `[0, p)`.
    ///
    /// # Panics
    /// If `a.len() != n`.
    pub fn inverse(&self, a: &mut [u64]) {
        assert_eq!(
            a.len(),
            self.n,
            "NTT input length must equal the plan's degree"
        );
        match self.backend {
            Backend::Scalar => scalar::inverse(self, a),
            #[cfg(target_arch = "x86_64")]
            _ => x86_64::inverse(self, a),
            #[cfg(not(target_arch = "x86_64"))]
            _ => scalar::inverse(self, a),
        }
    }
}

#[cfg(test)]
mod tests;
