//! # he-core
//!
//! BFV homomorphic encryption with batching, built for private set
//! intersection: word-sized RNS arithmetic, a negacyclic NTT dispatched at
//! run time to scalar, AVX2 or AVX-512 (IFMA) kernels, and compact,
//! validated serialization.
#![deny(unsafe_code)]

pub mod error;
pub mod modulus;
pub mod ntt;

pub use error::{Error, Result};
pub use modulus::Modulus;
pub use ntt::{Backend, NttPlan};
