//! Protocol-independent building blocks of a labeled private set
//! intersection (APSI-style) over BFV:
//!
//! - [`oprf`]: RFC 9497 OPRF (ristretto255, SHA-512), batched, and the split
//!   of its output into a PSI item and a label key;
//! - [`hashing`]: the receiver's cuckoo table and the sender's simple hashing;
//! - [`field`] and [`poly`]: `Z_t` arithmetic helpers, item and label
//!   encodings as field elements, polynomials from roots and interpolation;
//! - [`label`]: label encryption under the OPRF-derived key;
//! - [`wire`]: a bounded binary reader/writer;
//! - [`params`]: PSI parameters, validation, false-positive estimate and the
//!   minimum-depth powers plan.
//!
//! Only `he_core::Modulus` is used from `he-core`; nothing here does I/O.

#![forbid(unsafe_code)]

pub mod error;
pub mod field;
pub mod hashing;
pub mod label;
pub mod messages;
pub mod oprf;
pub mod params;
pub mod poly;
pub mod presets;
pub mod receiver;
pub mod sender;
pub mod wire;

pub use error::{Error, Result};
pub use hashing::{CuckooTable, HashedItem};
pub use label::LabelKey;
pub use messages::{OprfRequest, OprfResponse, Query, ResultPart};
pub use oprf::{BlindedState, OprfClient, OprfKey, OprfOutput};
pub use params::{BfvSpec, PowersDag, PsiParams};
pub use receiver::{MatchResult, OprfPending, QueryState, Receiver};
pub use sender::{PreparedItem, PreparedQuery, SavedHeader, SenderDb, SenderDbStats};
