//! # he-core
//!
//! BFV homomorphic encryption with batching, built for private set
//! intersection: word-sized RNS arithmetic, a negacyclic NTT dispatched at
//! run time to scalar, AVX2 or AVX-512 (IFMA) kernels, and compact,
//! validated serialization.
//!
//! ```
//! use he_core::*;
//! // n = 4096, log q = 72 + 36 (special prime) <= 109: 128-bit secure.
//! let params = BfvParametersBuilder::new()
//!     .degree(4096)
//!     .plaintext_bits(20)
//!     .moduli_bits(&[36, 36])
//!     .build()?;
//! let sk = SecretKey::random(&params)?;
//! let rk = RelinKeys::new(&sk)?;
//! let encoder = BatchEncoder::new(&params);
//! let evaluator = Evaluator::new(&params);
//! let x = sk.encrypt_symmetric(&encoder.encode(&[1, 2, 3, 4])?)?;
//! let y = sk.encrypt_symmetric(&encoder.encode(&[5, 6, 7, 8])?)?;
//! let xy = evaluator.multiply_relin(&x, &y, &rk)?;
//! let slots = encoder.decode(&Decryptor::new(&sk).decrypt(&xy)?)?;
//! assert_eq!(&slots[..4], &[5, 12, 21, 32]);
//! # Ok::<(), he_core::Error>(())
//! ```
#![deny(unsafe_code)]

mod bigint;
mod ciphertext;
mod compressed;
mod encryption;
pub mod error;
mod evaluator;
mod keys;
pub mod modulus;
pub mod ntt;
mod params;
mod plaintext;
mod rns;
mod sampling;
pub mod serialize;

pub use ciphertext::Ciphertext;
pub use compressed::{CompressedCiphertext, CompressionBits, MAX_COMPRESSED_BITS};
pub use encryption::{Decryptor, Encryptor};
pub use error::{Error, Result};
pub use evaluator::{Evaluator, LiftedCiphertext};
pub use keys::{PublicKey, RelinKeys, SecretKey};
pub use modulus::Modulus;
pub use ntt::{Backend, NttPlan};
pub use params::{
    BfvParameters, BfvParametersBuilder, MAX_CIPHERTEXT_SIZE, SECURITY_128, max_log_q_128,
};
pub use plaintext::{BatchEncoder, Plaintext, PlaintextNtt};
