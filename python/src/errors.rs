//! Errors of the three wrapped crates as Python exceptions.
//!
//! The exception classes are defined in Python (`breachcheck/errors.py`),
//! so that they can also derive from the matching built-in exception
//! (`ValueError`, `ConnectionError`, `TimeoutError`); this module decides
//! which class each Rust error becomes. Messages are the crates' own
//! `Display` text, which never carries a secret (keys, passwords, items).

use std::error::Error as _;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyType;

/// The Python exception classes of `breachcheck.errors`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `BreachCheckError`: the base class; also failures of the OS
    /// randomness source and internal errors.
    Base,
    /// `ParameterError`: parameters that cannot work.
    Parameter,
    /// `InsecureParametersError`: above the 128-bit security bound.
    InsecureParameters,
    /// `MismatchError`: objects of different parameter sets, levels or
    /// representations combined.
    Mismatch,
    /// `InvalidValueError`: an argument out of range.
    InvalidValue,
    /// `DecodeError`: malformed bytes.
    Decode,
    /// `LabelError`: a label too long, missing or unexpected.
    Label,
    /// `PsiError`: a PSI step failed (cuckoo hashing, field arithmetic).
    Psi,
    /// `DatabaseError`: a saved sender database is corrupt, outdated or
    /// could not be read or written.
    Database,
    /// `VaultError`: a password-manager export could not be read.
    Vault,
    /// `ServerConnectionError`: no usable connection to the breach server.
    ServerConnection,
    /// `CheckTimeoutError`: a deadline passed.
    CheckTimeout,
    /// `ServerError`: the server refused or broke the protocol.
    Server,
}

impl Kind {
    fn class_name(self) -> &'static str {
        match self {
            Kind::Base => "BreachCheckError",
            Kind::Parameter => "ParameterError",
            Kind::InsecureParameters => "InsecureParametersError",
            Kind::Mismatch => "MismatchError",
            Kind::InvalidValue => "InvalidValueError",
            Kind::Decode => "DecodeError",
            Kind::Label => "LabelError",
            Kind::Psi => "PsiError",
            Kind::Database => "DatabaseError",
            Kind::Vault => "VaultError",
            Kind::ServerConnection => "ServerConnectionError",
            Kind::CheckTimeout => "CheckTimeoutError",
            Kind::Server => "ServerError",
        }
    }
}

/// A Python exception of class `kind` with `message`.
pub fn raise(kind: Kind, message: impl Into<String>) -> PyErr {
    let message = message.into();
    Python::attach(|py| match class(py, kind) {
        Ok(cls) => PyErr::from_type(cls, message),
        // The package's errors module is missing (the extension module
        // imported on its own): still an exception, never a crash.
        Err(e) => {
            PyRuntimeError::new_err(format!("{message} (breachcheck.errors unavailable: {e})"))
        }
    })
}

fn class(py: Python<'_>, kind: Kind) -> PyResult<Bound<'_, PyType>> {
    Ok(py
        .import("breachcheck.errors")?
        .getattr(kind.class_name())?
        .cast_into::<PyType>()?)
}

/// he-core's error as an exception.
pub fn he(e: he_core::Error) -> PyErr {
    use he_core::Error as E;
    let kind = match &e {
        E::InvalidParameters(_)
        | E::BackendUnavailable(_)
        | E::BackendUnsupportedModulus { .. } => Kind::Parameter,
        E::InsecureParameters { .. } => Kind::InsecureParameters,
        E::ParameterMismatch(_) | E::LevelMismatch(_) | E::FormMismatch(_) => Kind::Mismatch,
        E::InvalidValue(_) => Kind::InvalidValue,
        E::TooShort { .. }
        | E::TrailingData(_)
        | E::BadVersion(_)
        | E::BadTag { .. }
        | E::TooLarge(_)
        | E::CoefficientOutOfRange { .. } => Kind::Decode,
        _ => Kind::Base,
    };
    raise(kind, e.to_string())
}

/// psi-core's error as an exception.
pub fn psi(e: psi_core::Error) -> PyErr {
    use psi_core::Error as E;
    let kind = match &e {
        E::He(inner) => return he(inner.clone()),
        E::TooShort { .. }
        | E::TrailingData { .. }
        | E::TooLarge { .. }
        | E::BadVersion { .. }
        | E::Json(_)
        | E::Malformed(_)
        | E::InvalidGroupElement { .. }
        | E::OprfBatchMismatch { .. } => Kind::Decode,
        E::ParameterMismatch => Kind::Mismatch,
        E::InvalidParams { .. }
        | E::UnreachablePower { .. }
        | E::FalsePositiveRateTooHigh { .. }
        | E::InvalidHashFunctionCount(_)
        | E::EmptyTable
        | E::NotPrime(_)
        | E::InsufficientItemBits { .. }
        | E::InvalidNonceLength(_) => Kind::Parameter,
        E::OprfInputTooLong { .. } | E::InvalidOprfKey => Kind::InvalidValue,
        E::LabelTooLong { .. } | E::EncryptedLabelLength { .. } | E::LabelMismatch(_) => {
            Kind::Label
        }
        E::CorruptDatabase(_) | E::OutdatedDatabase { .. } | E::Io(_) => Kind::Database,
        E::CuckooInsertFailed { .. }
        | E::DuplicateInterpolationPoint { .. }
        | E::InterpolationLengthMismatch { .. }
        | E::FeltOutOfRange { .. }
        | E::FeltCountMismatch { .. } => Kind::Psi,
        _ => Kind::Base,
    };
    raise(kind, e.to_string())
}

/// breach-client's check error as an exception.
pub fn check(e: breach_client::Error) -> PyErr {
    use breach_client::Error as E;
    let kind = match &e {
        E::InvalidUrl { .. } | E::EmptyPassword => Kind::InvalidValue,
        E::Connect { .. }
        | E::Tls { .. }
        | E::UntrustedCertificate { .. }
        | E::WrongScheme { .. } => Kind::ServerConnection,
        E::CallTimeout { .. } | E::Timeout(_) => Kind::CheckTimeout,
        E::GaveUp { .. }
        | E::StaleParameters { .. }
        | E::Rpc { .. }
        | E::MissingCollection(_)
        | E::Parameters { .. }
        | E::Protocol { .. }
        | E::QueryTooLarge { .. } => Kind::Server,
        E::Psi { .. } => Kind::Psi,
        _ => Kind::Base,
    };
    raise(kind, e.to_string())
}

/// A vault (export) reading error as an exception, with its I/O cause.
pub fn vault(e: breach_client::VaultError) -> PyErr {
    let message = match e.source() {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    };
    raise(Kind::Vault, message)
}
