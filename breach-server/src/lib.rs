//! # breach-server
//!
//! The breach-check service. This crate holds so far:
//!
//! - [`store`]: the SQLite store of breached credential and password items
//!   with their counts, change tracking for the PSI database builder.
//! - [`import`]: streaming, resumable, idempotent importers for combo
//!   (`username:password`), Pwned Passwords (`SHA1:COUNT`) and CSV dumps.
//! - [`cli`]: the `breach-server` command line (`import`, `stats`).
//!
//! Items are encoded with [`breach_proto::encoding`], the same code the
//! client uses.
#![forbid(unsafe_code)]

pub mod cli;
pub mod error;
pub mod import;
pub mod store;

pub use error::{Error, Result};
