//! # breach-server
//!
//! The breach-check service. This crate holds so far:
//!
//! - [`store`]: the SQLite store of breached credential and password items
//!   with their counts, change tracking for the PSI database builder.
//! - [`import`]: streaming, resumable, idempotent importers for combo
//!   (`username:password`), Pwned Passwords (`SHA1:COUNT`) and CSV dumps.
//! - [`psi_db`]: the PSI sender databases of each collection (a small and
//!   a full tier), built from the store, saved next to it, refreshed
//!   incrementally and loaded without recomputation; OPRF keys.
//! - [`service`]: the `breach.v1.BreachCheck` gRPC service and its limits.
//! - [`server`]: binding, serving (with gRPC health), graceful shutdown;
//!   [`server::serve`] returns a [`server::ServerHandle`] for tests and
//!   embedding.
//! - [`demo`]: the fixture corpus embedded in the binary, served when no
//!   store is given.
//! - [`cli`]: the `breach-server` command line (`import`, `build`,
//!   `serve`, `stats`).
//!
//! Items are encoded with [`breach_proto::encoding`], the same code the
//! client uses.
#![forbid(unsafe_code)]

pub mod cli;
pub mod demo;
pub mod error;
pub mod import;
pub mod psi_db;
pub mod server;
pub mod service;
pub mod store;

pub use error::{Error, Result};
