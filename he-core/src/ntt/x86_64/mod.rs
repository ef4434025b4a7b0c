//! x86-64 SIMD NTT backends, chosen at run time.
//!
//! The kernels (`avx2.rs`, `avx512.rs`) are private `#[target_feature]`
//! functions; this module checks the CPU before calling them.

use super::{Backend, NttPlan};

/// Whether the CPU supports a SIMD backend.
pub(crate) fn is_available(backend: Backend) -> bool {
    // The SIMD kernels are not wired in yet: report them unavailable so the
    // plan never selects them.
    let _ = backend;
    false
}

/// Tables the SIMD kernels precompute for themselves.
#[derive(Clone, Debug)]
pub(crate) struct SimdTables;

impl SimdTables {
    pub(crate) fn new(_plan: &NttPlan) -> Option<Self> {
        None
    }
}

pub(crate) fn forward(plan: &NttPlan, a: &mut [u64]) {
    super::scalar::forward(plan, a)
}

pub(crate) fn inverse(plan: &NttPlan, a: &mut [u64]) {
    super::scalar::inverse(plan, a)
}
