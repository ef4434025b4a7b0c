//! # breachcheck (Python extension module `breachcheck._native`)
//!
//! PyO3 bindings, built with the stable ABI (abi3, CPython >= 3.9) by
//! maturin, over three crates of this workspace:
//!
//! - [`bfv`]: he-core's BFV scheme: parameters (presets or a builder with
//!   the 128-bit security check), keys, the batch encoder (integer lists or
//!   NumPy arrays), encryption, the evaluator and byte serialization;
//! - [`psi`]: psi-core's labeled PSI: parameters, the sender database, the
//!   receiver and the protocol steps as bytes in, bytes out;
//! - [`breach`]: breach-client's private breach check against a server,
//!   run on a Tokio runtime owned by the module.
//!
//! Every error becomes an exception of the hierarchy in
//! `breachcheck/errors.py` ([`errors`]); nothing reachable from Python
//! panics. Heavy calls release the GIL (`Python::detach`), so other
//! Python threads run meanwhile.
//!
//! The Python-facing API, its docstrings and types are in
//! `breachcheck/_native.pyi`; the package `breachcheck` re-exports it in
//! `bfv`, `psi` and `breach` submodules.
#![forbid(unsafe_code)]

use pyo3::prelude::*;

pub mod bfv;
pub mod breach;
mod convert;
pub mod errors;
pub mod psi;

/// The extension module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    bfv::register(m)?;
    psi::register(m)?;
    breach::register(m)?;
    Ok(())
}
