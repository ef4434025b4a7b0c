//! The crate's error type.

use crate::ntt::Backend;

/// Everything that can go wrong in `he-core`.
///
/// Decoding hostile bytes, mixing objects of different parameter sets or
/// levels, and asking for an unavailable SIMD backend all end up here; no
/// input reaches a panic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Parameters that cannot work (not a power of two, not prime, ...).
    #[error("invalid parameters: {0}")]
    InvalidParameters(String),
    /// Parameters above the 128-bit HomomorphicEncryption.org bound.
    #[error(
        "insecure parameters: log2(q) = {log_q} bits exceeds the 128-bit bound of {max_log_q} bits for n = {n}"
    )]
    InsecureParameters {
        /// Ring degree.
        n: usize,
        /// Bit size of the full coefficient modulus (including the special prime).
        log_q: u32,
        /// The bound for `n`.
        max_log_q: u32,
    },
    /// The requested NTT backend is not supported by this CPU.
    #[error("NTT backend {0:?} is not available on this CPU")]
    BackendUnavailable(Backend),
    /// The requested NTT backend cannot handle this modulus.
    #[error("NTT backend {backend:?} does not support the {bits}-bit modulus")]
    BackendUnsupportedModulus {
        /// Backend asked for.
        backend: Backend,
        /// Bit size of the modulus.
        bits: u32,
    },
    /// Objects from different parameter sets were combined.
    #[error("parameter mismatch: {0}")]
    ParameterMismatch(String),
    /// Objects at different levels were combined, or no level is left.
    #[error("level mismatch: {0}")]
    LevelMismatch(String),
    /// An operation needs its operand in the other representation (NTT or coefficient form).
    #[error("representation mismatch: {0}")]
    FormMismatch(String),
    /// A value does not fit (slot count, coefficient range, ...).
    #[error("invalid value: {0}")]
    InvalidValue(String),
    /// Input ended early.
    #[error("truncated input: needed {needed} more bytes")]
    TooShort {
        /// Bytes missing.
        needed: usize,
    },
    /// Bytes left over after a complete object.
    #[error("{0} trailing bytes after the object")]
    TrailingData(usize),
    /// Unknown serialization version.
    #[error("unsupported serialization version {0}")]
    BadVersion(u8),
    /// The serialized object is of another kind than expected.
    #[error("wrong object tag: expected {expected}, found {found}")]
    BadTag {
        /// Tag expected.
        expected: u8,
        /// Tag found.
        found: u8,
    },
    /// A declared size exceeds what the parameters allow.
    #[error("declared size too large: {0}")]
    TooLarge(String),
    /// A serialized coefficient is not below its modulus.
    #[error("coefficient out of range for modulus {modulus}")]
    CoefficientOutOfRange {
        /// The modulus it had to be below.
        modulus: u64,
    },
    /// The operating system's randomness source failed.
    #[error("OS randomness unavailable: {0}")]
    Randomness(String),
}

/// `Result` with the crate's error.
pub type Result<T> = std::result::Result<T, Error>;
