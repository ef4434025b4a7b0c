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
//! - [`live`]: the databases in service, swapped without downtime when
//!   `build` writes a new generation.
//! - [`service`]: the `breach.v1.BreachCheck` gRPC service and its limits.
//! - [`server`]: binding (host names too), serving (with gRPC health and
//!   reflection), graceful shutdown; [`server::serve`] returns a
//!   [`server::ServerHandle`] for tests and embedding.
//! - [`answering`]: query answers on their own pool, a window of parts
//!   pulled by the transport, send timeouts and deadlines.
//! - [`bounds`]: connection, call and request-size bounds against hostile
//!   clients.
//! - [`limits`]: per-client (IPv4 address, IPv6 /64) and server-wide rate
//!   budgets and concurrent-query slots; who a request is charged to.
//! - [`tls`]: server TLS and mutual TLS from PEM files, development
//!   certificates (`dev-cert`).
//! - [`health`]: what `grpc.health.v1.Health` reports, per collection.
//! - [`metrics`]: the Prometheus exporter, metric names and descriptions,
//!   request counting.
//! - [`logging`]: text or JSON logs.
//! - [`demo`]: the fixture corpus embedded in the binary, served when no
//!   store is given.
//! - [`cli`]: the `breach-server` command line (`import`, `build`,
//!   `serve`, `stats`, `dev-cert`).
//!
//! Items are encoded with [`breach_proto::encoding`], the same code the
//! client uses.
#![forbid(unsafe_code)]

pub mod answering;
pub mod bounds;
pub mod cli;
pub mod demo;
pub mod error;
pub mod front;
pub mod health;
pub mod import;
pub mod limits;
pub mod live;
pub mod logging;
pub mod metrics;
pub mod psi_db;
pub mod server;
pub mod service;
pub mod store;
pub mod store_error;
pub mod tls;

pub use error::{Error, Result};
