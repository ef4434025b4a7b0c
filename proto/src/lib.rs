//! # breach-proto
//!
//! The contract between the breach-check client and server:
//!
//! - [`v1`]: prost messages and tonic client/server code generated from
//!   `proto/breach/v1/breach.proto` (service `breach.v1.BreachCheck`).
//! - [`FILE_DESCRIPTOR_SET`]: the encoded schema, for gRPC server reflection.
//! - [`encoding`]: the canonical encoding of a username/password pair or a
//!   password into a 32-byte PSI item, and of a match [`Label`](encoding::Label).
//!   Its module docs give the exact byte layout and test vectors.
//! - [`sharding`]: which shard holds an item, and the optional username
//!   buckets of a sharded deployment.
//!
//! ```
//! use breach_proto::encoding::{credential_item, password_item};
//! use breach_proto::v1::{Collection, QueryRequest};
//!
//! let item = credential_item("alice@example.com", "hunter2");
//! assert_eq!(item.len(), 32);
//! let req = QueryRequest { collection: Collection::Credentials as i32, query: vec![], username_bucket: None };
//! assert_eq!(req.collection(), Collection::Credentials);
//! # let _ = password_item("hunter2");
//! ```
#![forbid(unsafe_code)]

pub mod encoding;
pub mod sharding;

/// Generated code for package `breach.v1` (messages, the `BreachCheck`
/// client in [`v1::breach_check_client`] and server trait in
/// [`v1::breach_check_server`]).
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod v1 {
    tonic::include_proto!("breach.v1");
}

/// The encoded `google.protobuf.FileDescriptorSet` of
/// `breach/v1/breach.proto` (with its comments), for gRPC server
/// reflection (`tonic_reflection`'s `register_encoded_file_descriptor_set`)
/// and other tools that need the schema at run time.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/breach_v1_descriptor.bin"));

/// Errors of this crate's decoders.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A label had the wrong number of bytes for its version.
    #[error("label has {got} bytes, expected {expected}")]
    LabelLength {
        /// Bytes a label of this version has.
        expected: usize,
        /// Bytes received.
        got: usize,
    },
}
