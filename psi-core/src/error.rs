//! The crate's single error type.

use thiserror::Error;

/// Result alias used throughout `psi-core`.
pub type Result<T> = core::result::Result<T, Error>;

/// Everything that can go wrong in `psi-core`.
///
/// Variants are precise so that callers (and the gRPC layer above) can map
/// them to clear messages; none carries secret data.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum Error {
    // ---- OPRF -------------------------------------------------------------
    /// An OPRF input is longer than RFC 9497 allows (`2^16 - 1` bytes).
    #[error("OPRF input {index} is {len} bytes long; RFC 9497 allows at most 65535")]
    OprfInputTooLong {
        /// Position of the input in the batch.
        index: usize,
        /// Its length in bytes.
        len: usize,
    },
    /// A received group element is not a canonical ristretto255 encoding or
    /// is the identity.
    #[error("element {index} is not a canonical, non-identity ristretto255 point")]
    InvalidGroupElement {
        /// Position of the element in the batch.
        index: usize,
    },
    /// OPRF key bytes are not a canonical non-zero ristretto255 scalar.
    #[error("OPRF key bytes are not a canonical non-zero scalar")]
    InvalidOprfKey,
    /// The server answered with a different number of elements than asked.
    #[error("expected {expected} evaluated elements, got {got}")]
    OprfBatchMismatch {
        /// Number of blinded elements sent.
        expected: usize,
        /// Number of evaluated elements received.
        got: usize,
    },
    /// The operating system's random number generator failed.
    #[error("the OS random number generator failed")]
    Rng,

    // ---- hashing ----------------------------------------------------------
    /// The number of hash functions is outside `1..=MAX_HASH_FUNCTIONS`.
    #[error("hash function count {0} is outside 1..=8")]
    InvalidHashFunctionCount(usize),
    /// A hash table needs at least one bin.
    #[error("hash table size must be positive")]
    EmptyTable,
    /// Cuckoo insertion gave up after the allowed number of evictions.
    /// The table is left exactly as it was before the failed insertion.
    #[error("cuckoo insertion of input {input_index} failed after {evictions} evictions")]
    CuckooInsertFailed {
        /// Index (in the caller's input) of the item that could not be placed.
        input_index: usize,
        /// Evictions performed before giving up.
        evictions: usize,
    },

    // ---- field / polynomials ----------------------------------------------
    /// The plaintext modulus is not a prime below `2^61`.
    #[error("plain modulus {0} is not a prime in [3, 2^61)")]
    NotPrime(u64),
    /// Two interpolation points share the same x coordinate (mod t).
    #[error("duplicate interpolation point x = {x}")]
    DuplicateInterpolationPoint {
        /// The repeated x value, reduced mod t.
        x: u64,
    },
    /// Interpolation got different numbers of x and y values.
    #[error("interpolation needs as many y values ({ys}) as x values ({xs})")]
    InterpolationLengthMismatch {
        /// Number of x values.
        xs: usize,
        /// Number of y values.
        ys: usize,
    },
    /// Not enough field-element bits to hold the item bits the parameters ask for.
    #[error("{available} item bits available (felts * bits per felt), {required} required")]
    InsufficientItemBits {
        /// `felts_per_item * bits_per_felt`, capped at 128.
        available: u32,
        /// Bits the parameters require.
        required: u32,
    },
    /// A field element does not fit the expected bit width.
    #[error("field element {value} does not fit in {bits} bits")]
    FeltOutOfRange {
        /// The offending value.
        value: u64,
        /// The bit width it should fit.
        bits: u32,
    },
    /// A wrong number of field elements was given.
    #[error("expected {expected} field elements, got {got}")]
    FeltCountMismatch {
        /// Expected count.
        expected: usize,
        /// Given count.
        got: usize,
    },

    // ---- labels -----------------------------------------------------------
    /// A label is longer than the configured label size.
    #[error("label is {len} bytes; the maximum is {max}")]
    LabelTooLong {
        /// Label length.
        len: usize,
        /// Configured `label_byte_count`.
        max: usize,
    },
    /// An encrypted label has the wrong length for the parameters.
    #[error("encrypted label is {got} bytes; expected {expected}")]
    EncryptedLabelLength {
        /// `nonce_byte_count + label_byte_count`.
        expected: usize,
        /// Actual length.
        got: usize,
    },
    /// The nonce length is outside the supported range.
    #[error("nonce length {0} is outside 0..=64")]
    InvalidNonceLength(usize),

    // ---- wire -------------------------------------------------------------
    /// The input ended before a complete value was read.
    #[error("message too short: needed {needed} more bytes, {available} left")]
    TooShort {
        /// Bytes the next value needs.
        needed: usize,
        /// Bytes left in the input.
        available: usize,
    },
    /// Bytes were left over after a complete message.
    #[error("{remaining} trailing bytes after the message")]
    TrailingData {
        /// Number of unread bytes.
        remaining: usize,
    },
    /// A length prefix exceeds the caller's limit.
    #[error("length {len} exceeds the limit {max}")]
    TooLarge {
        /// Length announced by the input.
        len: u64,
        /// Largest length accepted.
        max: u64,
    },
    /// A message has an unknown format version.
    #[error("unsupported format version {got} (expected {expected})")]
    BadVersion {
        /// Version this code understands.
        expected: u16,
        /// Version found in the input.
        got: u16,
    },
    /// A serialized object belongs to different parameters.
    #[error("object was made for different PSI parameters")]
    ParameterMismatch,

    // ---- parameters ---------------------------------------------------------
    /// A parameter value is invalid.
    #[error("invalid parameter {field}: {reason}")]
    InvalidParams {
        /// Name of the offending field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A needed power cannot be computed from the query powers.
    #[error("power {power} cannot be computed from the query powers")]
    UnreachablePower {
        /// The unreachable power.
        power: u32,
    },
    /// The false-positive probability is too high for the parameters.
    #[error("false-positive probability 2^{log2_fp:.1} exceeds 2^-40 for {receiver_items} items")]
    FalsePositiveRateTooHigh {
        /// Number of receiver items considered.
        receiver_items: u64,
        /// `log2` of the estimated probability.
        log2_fp: f64,
    },
    /// The JSON form of the parameters could not be parsed.
    #[error("parameter JSON: {0}")]
    Json(String),

    // ---- protocol -----------------------------------------------------------
    /// A homomorphic-encryption error (malformed ciphertext, wrong parameters, ...).
    /// Its message includes he-core's, so it is not also given as the
    /// `source` (error reports would print it twice).
    #[error("homomorphic encryption: {0}")]
    He(he_core::Error),
    /// A query or answer does not fit the parameters (shape, counts, bundle indices).
    #[error("malformed message: {0}")]
    Malformed(String),
    /// A saved sender database is corrupt, truncated or from another version.
    #[error("corrupt sender database: {0}")]
    CorruptDatabase(String),
    /// A saved sender database is of an older format version that this
    /// build no longer reads: rebuild it from its items.
    #[error(
        "saved sender database is format version {found}; this build reads version {expected}: rebuild the database from its items"
    )]
    OutdatedDatabase {
        /// Version found in the file.
        found: u16,
        /// Version this build reads.
        expected: u16,
    },
    /// Reading or writing a sender database failed.
    #[error("I/O: {0}")]
    Io(String),
    /// The sender failed on a request that was well formed: its own
    /// database or code is at fault (a bundle without its cache, an
    /// evaluation that cannot fail on valid inputs failing). A server
    /// reports it as an internal error with a generic message and logs
    /// this text, which describes sender state, never request contents.
    #[error("internal sender error: {0}")]
    Internal(String),
    /// A label was given for an unlabeled database, or is missing for a labeled one.
    #[error("label error: {0}")]
    LabelMismatch(String),
}

impl From<he_core::Error> for Error {
    fn from(e: he_core::Error) -> Self {
        Error::He(e)
    }
}
