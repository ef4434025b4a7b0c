//! he-core's BFV scheme for Python.
//!
//! Every object is immutable (`frozen`) and keeps the parameter set it
//! belongs to, so serialization needs no extra argument and operations
//! check that their operands match (he-core compares fingerprints).
//! Heavy calls (key generation, encoding, encryption, products,
//! serialization) run with the GIL released.

use std::sync::Arc;

use numpy::{IntoPyArray, PyArray1};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::convert;
use crate::errors::{self, Kind, raise};

type Params = Arc<he_core::BfvParameters>;

/// A named BFV parameter set. The multiplicative depth is what the test
/// suite checks still decrypts (`python/tests/test_bfv.py`).
struct Preset {
    name: &'static str,
    degree: usize,
    plaintext_modulus: Option<u64>,
    plaintext_bits: u32,
    moduli_bits: &'static [u32],
    special_bits: u32,
}

/// The presets, smallest first. All pass the 128-bit check.
const PRESETS: &[Preset] = &[
    // log q = 36 + 36 + 37 = 109 (the bound for 4096): one product (24 bits of
    // budget left), t = 65537.
    Preset {
        name: "n4096",
        degree: 4096,
        plaintext_modulus: Some(65537),
        plaintext_bits: 0,
        moduli_bits: &[36, 36],
        special_bits: 37,
    },
    // log q = 54 + 54 + 55 + 55 = 218 (the bound for 8192): 3 products deep at 20
    // bits of t (4 measured).
    Preset {
        name: "n8192",
        degree: 8192,
        plaintext_modulus: None,
        plaintext_bits: 20,
        moduli_bits: &[54, 54, 55],
        special_bits: 55,
    },
    // log q = 7 x 60 = 420 (bound 438): 8 products deep at 20 bits of t (10
    // measured).
    Preset {
        name: "n16384",
        degree: 16384,
        plaintext_modulus: None,
        plaintext_bits: 20,
        moduli_bits: &[60, 60, 60, 60, 60, 60],
        special_bits: 60,
    },
];

fn bytes<'py>(py: Python<'py>, v: &[u8]) -> Bound<'py, PyBytes> {
    PyBytes::new(py, v)
}

/// BFV parameters: ring degree, plaintext modulus, ciphertext primes and
/// the special prime for key switching, checked against the 128-bit bound.
#[pyclass(frozen, module = "breachcheck._native")]
pub struct BfvParameters {
    pub(crate) inner: Params,
}

#[pymethods]
impl BfvParameters {
    #[new]
    #[pyo3(signature = (degree, *, plaintext_modulus=None, plaintext_bits=None, moduli=None,
        moduli_bits=None, special_modulus=None, special_modulus_bits=None, key_switching=true,
        insecure_skip_security_check=false))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        degree: usize,
        plaintext_modulus: Option<u64>,
        plaintext_bits: Option<u32>,
        moduli: Option<Vec<u64>>,
        moduli_bits: Option<Vec<u32>>,
        special_modulus: Option<u64>,
        special_modulus_bits: Option<u32>,
        key_switching: bool,
        insecure_skip_security_check: bool,
    ) -> PyResult<Self> {
        let mut b = he_core::BfvParametersBuilder::new().degree(degree);
        if let Some(t) = plaintext_modulus {
            b = b.plaintext_modulus(t);
        }
        if let Some(bits) = plaintext_bits {
            b = b.plaintext_bits(bits);
        }
        match (moduli, moduli_bits) {
            (Some(_), Some(_)) => {
                return Err(raise(
                    Kind::Parameter,
                    "invalid parameters: give moduli or moduli_bits, not both",
                ));
            }
            (Some(m), None) => b = b.moduli(&m),
            (None, Some(bits)) => b = b.moduli_bits(&bits),
            (None, None) => {}
        }
        if let Some(p) = special_modulus {
            b = b.special_modulus(p);
        }
        if let Some(bits) = special_modulus_bits {
            b = b.special_modulus_bits(bits);
        }
        if !key_switching {
            b = b.without_key_switching();
        }
        if insecure_skip_security_check {
            b = b.insecure_skip_security_check_for_tests();
        }
        let inner = py.detach(|| b.build()).map_err(errors::he)?;
        Ok(Self { inner })
    }

    /// A named preset (see `preset_names()`).
    #[staticmethod]
    fn preset(py: Python<'_>, name: &str) -> PyResult<Self> {
        let Some(p) = PRESETS.iter().find(|p| p.name == name) else {
            let names: Vec<&str> = PRESETS.iter().map(|p| p.name).collect();
            return Err(raise(
                Kind::Parameter,
                format!("unknown BFV preset `{name}`; known: {}", names.join(", ")),
            ));
        };
        let mut b = he_core::BfvParametersBuilder::new()
            .degree(p.degree)
            .moduli_bits(p.moduli_bits)
            .special_modulus_bits(p.special_bits);
        b = match p.plaintext_modulus {
            Some(t) => b.plaintext_modulus(t),
            None => b.plaintext_bits(p.plaintext_bits),
        };
        let inner = py.detach(|| b.build()).map_err(errors::he)?;
        Ok(Self { inner })
    }

    /// Names of the presets, smallest first.
    #[staticmethod]
    fn preset_names() -> Vec<&'static str> {
        PRESETS.iter().map(|p| p.name).collect()
    }

    /// The largest log2(q) the 128-bit bound allows for `degree`, or None.
    #[staticmethod]
    fn max_log_q_128(degree: usize) -> Option<u32> {
        he_core::max_log_q_128(degree)
    }

    /// The exact primes, as a dict `from_dict` rebuilds identical parameters from.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        let p = &self.inner;
        d.set_item("degree", p.degree())?;
        d.set_item("plaintext_modulus", p.plaintext().value())?;
        d.set_item(
            "moduli",
            p.moduli().iter().map(|m| m.value()).collect::<Vec<_>>(),
        )?;
        d.set_item(
            "special_modulus",
            p.supports_key_switching()
                .then(|| p.special_modulus().value()),
        )?;
        d.set_item("key_switching", p.supports_key_switching())?;
        d.set_item("insecure", p.is_insecure())?;
        Ok(d)
    }

    /// Parameters from `to_dict()`'s output (checked again).
    #[staticmethod]
    fn from_dict(py: Python<'_>, d: &Bound<'_, PyDict>) -> PyResult<Self> {
        let get = |key: &str| -> PyResult<Bound<'_, PyAny>> {
            d.get_item(key)?.ok_or_else(|| {
                raise(
                    Kind::Parameter,
                    format!("invalid parameters: `{key}` missing"),
                )
            })
        };
        let key_switching: bool = get("key_switching")?.extract()?;
        let special: Option<u64> = get("special_modulus")?.extract()?;
        Self::new(
            py,
            get("degree")?.extract()?,
            Some(get("plaintext_modulus")?.extract()?),
            None,
            Some(get("moduli")?.extract()?),
            None,
            if key_switching { special } else { None },
            None,
            key_switching,
            get("insecure")?.extract()?,
        )
    }

    /// Ring degree n.
    #[getter]
    fn degree(&self) -> usize {
        self.inner.degree()
    }

    /// Number of batching slots (= n).
    #[getter]
    fn slot_count(&self) -> usize {
        self.inner.degree()
    }

    /// Plaintext modulus t.
    #[getter]
    fn plaintext_modulus(&self) -> u64 {
        self.inner.plaintext().value()
    }

    /// Ciphertext primes.
    #[getter]
    fn moduli(&self) -> Vec<u64> {
        self.inner.moduli().iter().map(|m| m.value()).collect()
    }

    /// Special prime (None without key switching).
    #[getter]
    fn special_modulus(&self) -> Option<u64> {
        self.inner
            .supports_key_switching()
            .then(|| self.inner.special_modulus().value())
    }

    /// Bits of the modulus checked against the security bound.
    #[getter]
    fn log_q(&self) -> u32 {
        self.inner.log_q()
    }

    /// Highest level (each modulus switch drops one prime).
    #[getter]
    fn max_level(&self) -> usize {
        self.inner.max_level()
    }

    /// Whether relinearization keys can be made.
    #[getter]
    fn supports_key_switching(&self) -> bool {
        self.inner.supports_key_switching()
    }

    /// Whether the security check was skipped.
    #[getter]
    fn is_insecure(&self) -> bool {
        self.inner.is_insecure()
    }

    /// 8-byte fingerprint stored in every serialized object.
    #[getter]
    fn fingerprint<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        bytes(py, &self.inner.fingerprint())
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<BfvParameters>()
            .is_ok_and(|o| o.get().inner.fingerprint() == self.inner.fingerprint())
    }

    fn __hash__(&self) -> u64 {
        u64::from_le_bytes(self.inner.fingerprint())
    }

    fn __repr__(&self) -> String {
        let p = &self.inner;
        format!(
            "BfvParameters(degree={}, plaintext_modulus={}, moduli={:?}, log_q={}{})",
            p.degree(),
            p.plaintext().value(),
            self.moduli(),
            p.log_q(),
            if p.is_insecure() { ", INSECURE" } else { "" }
        )
    }
}

fn check_params(a: &Params, b: &Params, what: &str) -> PyResult<()> {
    if a.fingerprint() == b.fingerprint() {
        Ok(())
    } else {
        Err(raise(
            Kind::Mismatch,
            format!("parameter mismatch: {what} belongs to other parameters"),
        ))
    }
}

/// A BFV secret key (ternary). Never printed; `to_bytes()` is the only way out.
#[pyclass(frozen, module = "breachcheck._native")]
pub struct SecretKey {
    inner: he_core::SecretKey,
    params: Params,
}

#[pymethods]
impl SecretKey {
    /// A fresh random secret key (OS randomness).
    #[new]
    fn new(py: Python<'_>, params: &BfvParameters) -> PyResult<Self> {
        let p = params.inner.clone();
        let inner = py
            .detach(|| he_core::SecretKey::random(&p))
            .map_err(errors::he)?;
        Ok(Self { inner, params: p })
    }

    /// The parameters.
    #[getter]
    fn parameters(&self) -> BfvParameters {
        BfvParameters {
            inner: self.params.clone(),
        }
    }

    /// Symmetric (seeded) encryption: half the size of a public-key ciphertext.
    fn encrypt(&self, py: Python<'_>, plaintext: &Plaintext) -> PyResult<Ciphertext> {
        check_params(&self.params, &plaintext.params, "plaintext")?;
        let inner = py
            .detach(|| self.inner.encrypt_symmetric(&plaintext.inner))
            .map_err(errors::he)?;
        Ok(Ciphertext::wrap(inner, &self.params))
    }

    /// SECRET: the key's bytes. Store them as you would any private key.
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        let b = py.detach(|| self.inner.to_bytes());
        bytes(py, &b)
    }

    /// A key from `to_bytes()`'s output.
    #[staticmethod]
    fn from_bytes(py: Python<'_>, data: &[u8], params: &BfvParameters) -> PyResult<Self> {
        let p = params.inner.clone();
        let inner = py
            .detach(|| he_core::SecretKey::from_bytes(data, &p))
            .map_err(errors::he)?;
        Ok(Self { inner, params: p })
    }

    fn __repr__(&self) -> &'static str {
        "SecretKey(<redacted>)"
    }
}

/// A BFV public key, made from a secret key.
#[pyclass(frozen, module = "breachcheck._native")]
pub struct PublicKey {
    inner: he_core::PublicKey,
    params: Params,
}

#[pymethods]
impl PublicKey {
    /// The public key of `secret_key`.
    #[new]
    fn new(py: Python<'_>, secret_key: &SecretKey) -> PyResult<Self> {
        let inner = py
            .detach(|| he_core::PublicKey::new(&secret_key.inner))
            .map_err(errors::he)?;
        Ok(Self {
            inner,
            params: secret_key.params.clone(),
        })
    }

    /// Serialized form.
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let b = py
            .detach(|| self.inner.to_bytes(&self.params))
            .map_err(errors::he)?;
        Ok(bytes(py, &b))
    }

    /// A key from `to_bytes()`'s output (validated).
    #[staticmethod]
    fn from_bytes(py: Python<'_>, data: &[u8], params: &BfvParameters) -> PyResult<Self> {
        let p = params.inner.clone();
        let inner = py
            .detach(|| he_core::PublicKey::from_bytes(data, &p))
            .map_err(errors::he)?;
        Ok(Self { inner, params: p })
    }

    fn __repr__(&self) -> String {
        format!("PublicKey(degree={})", self.params.degree())
    }
}

/// Relinearization keys: bring a product (3 polynomials) back to 2.
#[pyclass(frozen, module = "breachcheck._native")]
pub struct RelinKeys {
    inner: he_core::RelinKeys,
    params: Params,
}

#[pymethods]
impl RelinKeys {
    /// The relinearization keys of `secret_key` (needs key switching).
    #[new]
    fn new(py: Python<'_>, secret_key: &SecretKey) -> PyResult<Self> {
        let inner = py
            .detach(|| he_core::RelinKeys::new(&secret_key.inner))
            .map_err(errors::he)?;
        Ok(Self {
            inner,
            params: secret_key.params.clone(),
        })
    }

    /// Serialized form.
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let b = py
            .detach(|| self.inner.to_bytes(&self.params))
            .map_err(errors::he)?;
        Ok(bytes(py, &b))
    }

    /// Keys from `to_bytes()`'s output (validated).
    #[staticmethod]
    fn from_bytes(py: Python<'_>, data: &[u8], params: &BfvParameters) -> PyResult<Self> {
        let p = params.inner.clone();
        let inner = py
            .detach(|| he_core::RelinKeys::from_bytes(data, &p))
            .map_err(errors::he)?;
        Ok(Self { inner, params: p })
    }

    fn __repr__(&self) -> String {
        format!("RelinKeys(degree={})", self.params.degree())
    }
}

/// A plaintext polynomial with coefficients in [0, t).
#[pyclass(frozen, module = "breachcheck._native")]
pub struct Plaintext {
    inner: he_core::Plaintext,
    params: Params,
}

#[pymethods]
impl Plaintext {
    /// A plaintext from polynomial coefficients (at most n, each below t).
    #[staticmethod]
    fn from_coeffs(params: &BfvParameters, coeffs: &Bound<'_, PyAny>) -> PyResult<Self> {
        let c = convert::unsigned(&convert::ints(coeffs)?)?;
        let inner = he_core::Plaintext::from_coeffs(&params.inner, &c).map_err(errors::he)?;
        Ok(Self {
            inner,
            params: params.inner.clone(),
        })
    }

    /// The n coefficients.
    #[getter]
    fn coeffs(&self) -> Vec<u64> {
        self.inner.coeffs().to_vec()
    }

    /// The parameters.
    #[getter]
    fn parameters(&self) -> BfvParameters {
        BfvParameters {
            inner: self.params.clone(),
        }
    }

    /// Serialized form.
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let b = py
            .detach(|| self.inner.to_bytes(&self.params))
            .map_err(errors::he)?;
        Ok(bytes(py, &b))
    }

    /// A plaintext from `to_bytes()`'s output (validated).
    #[staticmethod]
    fn from_bytes(py: Python<'_>, data: &[u8], params: &BfvParameters) -> PyResult<Self> {
        let p = params.inner.clone();
        let inner = py
            .detach(|| he_core::Plaintext::from_bytes(data, &p))
            .map_err(errors::he)?;
        Ok(Self { inner, params: p })
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.cast::<Plaintext>().is_ok_and(|o| {
            let o = o.get();
            o.params.fingerprint() == self.params.fingerprint()
                && o.inner.coeffs() == self.inner.coeffs()
        })
    }

    fn __repr__(&self) -> String {
        format!("Plaintext(degree={})", self.params.degree())
    }
}

/// A plaintext lifted to NTT form at one level, for repeated products
/// (`Evaluator.multiply_plain_ntt`, `Evaluator.multiply_plain_accumulate`).
#[pyclass(frozen, module = "breachcheck._native")]
pub struct PlaintextNtt {
    inner: he_core::PlaintextNtt,
    params: Params,
}

#[pymethods]
impl PlaintextNtt {
    /// The level it was lifted to.
    #[getter]
    fn level(&self) -> usize {
        self.inner.level()
    }

    /// Serialized form.
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let b = py
            .detach(|| self.inner.to_bytes(&self.params))
            .map_err(errors::he)?;
        Ok(bytes(py, &b))
    }

    /// A plaintext from `to_bytes()`'s output (validated).
    #[staticmethod]
    fn from_bytes(py: Python<'_>, data: &[u8], params: &BfvParameters) -> PyResult<Self> {
        let p = params.inner.clone();
        let inner = py
            .detach(|| he_core::PlaintextNtt::from_bytes(data, &p))
            .map_err(errors::he)?;
        Ok(Self { inner, params: p })
    }

    fn __repr__(&self) -> String {
        format!(
            "PlaintextNtt(degree={}, level={})",
            self.params.degree(),
            self.inner.level()
        )
    }
}

/// A BFV ciphertext. Arithmetic operators work between ciphertexts and
/// with plaintexts (`+`, `-`, `*`, unary `-`); a ciphertext product has
/// three polynomials until relinearized.
#[pyclass(frozen, module = "breachcheck._native")]
pub struct Ciphertext {
    inner: he_core::Ciphertext,
    params: Params,
}

impl Ciphertext {
    fn wrap(inner: he_core::Ciphertext, params: &Params) -> Self {
        Self {
            inner,
            params: params.clone(),
        }
    }

    fn evaluator(&self) -> he_core::Evaluator {
        he_core::Evaluator::new(&self.params)
    }
}

/// The right operand of an arithmetic operator. Anything else fails to
/// extract, which PyO3 turns into `NotImplemented` (so Python raises
/// `TypeError`).
#[derive(FromPyObject)]
enum Operand<'py> {
    Cipher(Bound<'py, Ciphertext>),
    Plain(Bound<'py, Plaintext>),
}

#[pymethods]
impl Ciphertext {
    /// Level (0 = all primes; each modulus switch adds one).
    #[getter]
    fn level(&self) -> usize {
        self.inner.level()
    }

    /// Number of polynomials (2 fresh, 3 after a product).
    #[getter]
    fn size(&self) -> usize {
        self.inner.size()
    }

    /// Whether it is in NTT form.
    #[getter]
    fn is_ntt(&self) -> bool {
        self.inner.is_ntt()
    }

    /// Whether it is a seeded symmetric ciphertext (half size on the wire).
    #[getter]
    fn is_seeded(&self) -> bool {
        self.inner.is_seeded()
    }

    /// The parameters.
    #[getter]
    fn parameters(&self) -> BfvParameters {
        BfvParameters {
            inner: self.params.clone(),
        }
    }

    /// Serialized form (compact, versioned, with the parameters' fingerprint).
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let b = py
            .detach(|| self.inner.to_bytes(&self.params))
            .map_err(errors::he)?;
        Ok(bytes(py, &b))
    }

    /// A ciphertext from `to_bytes()`'s output (validated).
    #[staticmethod]
    fn from_bytes(py: Python<'_>, data: &[u8], params: &BfvParameters) -> PyResult<Self> {
        let p = params.inner.clone();
        let inner = py
            .detach(|| he_core::Ciphertext::from_bytes(data, &p))
            .map_err(errors::he)?;
        Ok(Self { inner, params: p })
    }

    fn __add__(&self, py: Python<'_>, other: Operand<'_>) -> PyResult<Self> {
        let ev = self.evaluator();
        let r = match &other {
            Operand::Cipher(c) => {
                let c = c.get();
                py.detach(|| ev.add(&self.inner, &c.inner))
            }
            Operand::Plain(p) => {
                let p = p.get();
                py.detach(|| ev.add_plain(&self.inner, &p.inner))
            }
        };
        Ok(Self::wrap(r.map_err(errors::he)?, &self.params))
    }

    fn __radd__(&self, py: Python<'_>, other: Operand<'_>) -> PyResult<Self> {
        self.__add__(py, other)
    }

    fn __sub__(&self, py: Python<'_>, other: Operand<'_>) -> PyResult<Self> {
        let ev = self.evaluator();
        let r = match &other {
            Operand::Cipher(c) => {
                let c = c.get();
                py.detach(|| ev.sub(&self.inner, &c.inner))
            }
            Operand::Plain(p) => {
                let p = p.get();
                py.detach(|| ev.sub_plain(&self.inner, &p.inner))
            }
        };
        Ok(Self::wrap(r.map_err(errors::he)?, &self.params))
    }

    /// `plaintext - ciphertext`, as `-(ciphertext - plaintext)`.
    fn __rsub__(&self, py: Python<'_>, other: Bound<'_, Plaintext>) -> PyResult<Self> {
        let ev = self.evaluator();
        let p = other.get();
        let r = py.detach(|| {
            let d = ev.sub_plain(&self.inner, &p.inner)?;
            ev.negate(&d)
        });
        Ok(Self::wrap(r.map_err(errors::he)?, &self.params))
    }

    fn __mul__(&self, py: Python<'_>, other: Operand<'_>) -> PyResult<Self> {
        let ev = self.evaluator();
        let r = match &other {
            Operand::Cipher(c) => {
                let c = c.get();
                py.detach(|| ev.multiply(&self.inner, &c.inner))
            }
            Operand::Plain(p) => {
                let p = p.get();
                py.detach(|| ev.multiply_plain(&self.inner, &p.inner))
            }
        };
        Ok(Self::wrap(r.map_err(errors::he)?, &self.params))
    }

    fn __rmul__(&self, py: Python<'_>, other: Operand<'_>) -> PyResult<Self> {
        self.__mul__(py, other)
    }

    fn __neg__(&self, py: Python<'_>) -> PyResult<Self> {
        let ev = self.evaluator();
        let r = py.detach(|| ev.negate(&self.inner)).map_err(errors::he)?;
        Ok(Self::wrap(r, &self.params))
    }

    fn __repr__(&self) -> String {
        format!(
            "Ciphertext(degree={}, level={}, size={}{}{})",
            self.params.degree(),
            self.inner.level(),
            self.inner.size(),
            if self.inner.is_ntt() { ", ntt" } else { "" },
            if self.inner.is_seeded() {
                ", seeded"
            } else {
                ""
            },
        )
    }
}

/// Batch encoding: a vector of n integers mod t (two rows of n/2 slots)
/// to a plaintext whose products are slot-wise.
#[pyclass(frozen, module = "breachcheck._native")]
pub struct BatchEncoder {
    inner: he_core::BatchEncoder,
    params: Params,
}

#[pymethods]
impl BatchEncoder {
    /// An encoder for `params`.
    #[new]
    fn new(params: &BfvParameters) -> Self {
        Self {
            inner: he_core::BatchEncoder::new(&params.inner),
            params: params.inner.clone(),
        }
    }

    /// Number of slots (n).
    #[getter]
    fn slot_count(&self) -> usize {
        self.inner.slot_count()
    }

    /// Encodes up to n values in [0, t) (a list of ints or an integer
    /// NumPy array); missing slots are zero.
    fn encode(&self, py: Python<'_>, values: &Bound<'_, PyAny>) -> PyResult<Plaintext> {
        let v = convert::unsigned(&convert::ints(values)?)?;
        let inner = py.detach(|| self.inner.encode(&v)).map_err(errors::he)?;
        Ok(Plaintext {
            inner,
            params: self.params.clone(),
        })
    }

    /// Encodes up to n signed values in (-t/2, t/2).
    fn encode_signed(&self, py: Python<'_>, values: &Bound<'_, PyAny>) -> PyResult<Plaintext> {
        let v = convert::signed(&convert::ints(values)?)?;
        let inner = py
            .detach(|| self.inner.encode_signed(&v))
            .map_err(errors::he)?;
        Ok(Plaintext {
            inner,
            params: self.params.clone(),
        })
    }

    /// The plaintext whose every slot holds `value` (a constant polynomial:
    /// no transform). `value` may be negative (taken mod t).
    fn encode_scalar(&self, value: i128) -> PyResult<Plaintext> {
        let t = self.params.plaintext().value() as i128;
        let c = value.rem_euclid(t) as u64;
        let inner = he_core::Plaintext::from_coeffs(&self.params, &[c]).map_err(errors::he)?;
        Ok(Plaintext {
            inner,
            params: self.params.clone(),
        })
    }

    /// The n slots, in [0, t) (or centered in (-t/2, t/2) with `signed=True`), as a list.
    #[pyo3(signature = (plaintext, signed=false))]
    fn decode<'py>(
        &self,
        py: Python<'py>,
        plaintext: &Plaintext,
        signed: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        check_params(&self.params, &plaintext.params, "plaintext")?;
        if signed {
            let v = py
                .detach(|| self.inner.decode_signed(&plaintext.inner))
                .map_err(errors::he)?;
            Ok(v.into_pyobject(py)?.into_any())
        } else {
            let v = py
                .detach(|| self.inner.decode(&plaintext.inner))
                .map_err(errors::he)?;
            Ok(v.into_pyobject(py)?.into_any())
        }
    }

    /// Like `decode`, as a NumPy array (uint64, or int64 with `signed=True`).
    #[pyo3(signature = (plaintext, signed=false))]
    fn decode_array<'py>(
        &self,
        py: Python<'py>,
        plaintext: &Plaintext,
        signed: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        check_params(&self.params, &plaintext.params, "plaintext")?;
        convert::require_numpy(py)?;
        if signed {
            let v = py
                .detach(|| self.inner.decode_signed(&plaintext.inner))
                .map_err(errors::he)?;
            let a: Bound<'py, PyArray1<i64>> = v.into_pyarray(py);
            Ok(a.into_any())
        } else {
            let v = py
                .detach(|| self.inner.decode(&plaintext.inner))
                .map_err(errors::he)?;
            let a: Bound<'py, PyArray1<u64>> = v.into_pyarray(py);
            Ok(a.into_any())
        }
    }
}

/// Public-key encryption.
#[pyclass(frozen, module = "breachcheck._native")]
pub struct Encryptor {
    inner: he_core::Encryptor,
    params: Params,
}

#[pymethods]
impl Encryptor {
    /// An encryptor for `public_key`.
    #[new]
    fn new(params: &BfvParameters, public_key: &PublicKey) -> PyResult<Self> {
        let inner =
            he_core::Encryptor::new(&params.inner, &public_key.inner).map_err(errors::he)?;
        Ok(Self {
            inner,
            params: params.inner.clone(),
        })
    }

    /// Encrypts at level 0 with fresh randomness.
    fn encrypt(&self, py: Python<'_>, plaintext: &Plaintext) -> PyResult<Ciphertext> {
        check_params(&self.params, &plaintext.params, "plaintext")?;
        let inner = py
            .detach(|| self.inner.encrypt(&plaintext.inner))
            .map_err(errors::he)?;
        Ok(Ciphertext::wrap(inner, &self.params))
    }
}

/// Decryption and the noise budget, with a secret key.
#[pyclass(frozen, module = "breachcheck._native")]
pub struct Decryptor {
    sk: Py<SecretKey>,
}

#[pymethods]
impl Decryptor {
    /// A decryptor holding `secret_key`.
    #[new]
    fn new(secret_key: Py<SecretKey>) -> Self {
        Self { sk: secret_key }
    }

    /// Decrypts (any level, size and form).
    fn decrypt(&self, py: Python<'_>, ciphertext: &Ciphertext) -> PyResult<Plaintext> {
        let sk = self.sk.get();
        check_params(&sk.params, &ciphertext.params, "ciphertext")?;
        let inner = py
            .detach(|| he_core::Decryptor::new(&sk.inner).decrypt(&ciphertext.inner))
            .map_err(errors::he)?;
        Ok(Plaintext {
            inner,
            params: sk.params.clone(),
        })
    }

    /// Bits of noise budget left; 0 means the ciphertext no longer decrypts correctly.
    fn noise_budget(&self, py: Python<'_>, ciphertext: &Ciphertext) -> PyResult<u32> {
        let sk = self.sk.get();
        check_params(&sk.params, &ciphertext.params, "ciphertext")?;
        py.detach(|| he_core::Decryptor::new(&sk.inner).noise_budget(&ciphertext.inner))
            .map_err(errors::he)
    }
}

/// Homomorphic operations. Every method returns a new ciphertext.
#[pyclass(frozen, module = "breachcheck._native")]
pub struct Evaluator {
    inner: he_core::Evaluator,
    params: Params,
}

impl Evaluator {
    fn out(&self, r: he_core::Result<he_core::Ciphertext>) -> PyResult<Ciphertext> {
        Ok(Ciphertext::wrap(r.map_err(errors::he)?, &self.params))
    }
}

#[pymethods]
impl Evaluator {
    /// An evaluator for `params`.
    #[new]
    fn new(params: &BfvParameters) -> Self {
        Self {
            inner: he_core::Evaluator::new(&params.inner),
            params: params.inner.clone(),
        }
    }

    /// a + b.
    fn add(&self, py: Python<'_>, a: &Ciphertext, b: &Ciphertext) -> PyResult<Ciphertext> {
        self.out(py.detach(|| self.inner.add(&a.inner, &b.inner)))
    }

    /// a - b.
    fn sub(&self, py: Python<'_>, a: &Ciphertext, b: &Ciphertext) -> PyResult<Ciphertext> {
        self.out(py.detach(|| self.inner.sub(&a.inner, &b.inner)))
    }

    /// -a.
    fn negate(&self, py: Python<'_>, a: &Ciphertext) -> PyResult<Ciphertext> {
        self.out(py.detach(|| self.inner.negate(&a.inner)))
    }

    /// The sum of one or more ciphertexts of one level and form.
    fn add_many(&self, py: Python<'_>, cts: Vec<PyRef<'_, Ciphertext>>) -> PyResult<Ciphertext> {
        let refs: Vec<&he_core::Ciphertext> = cts.iter().map(|c| &c.inner).collect();
        let Some((first, rest)) = refs.split_first() else {
            return Err(raise(Kind::InvalidValue, "add_many of no ciphertexts"));
        };
        self.out(py.detach(|| {
            let mut acc = (*first).clone();
            for c in rest {
                self.inner.add_assign(&mut acc, c)?;
            }
            Ok(acc)
        }))
    }

    /// ct + pt.
    fn add_plain(&self, py: Python<'_>, ct: &Ciphertext, pt: &Plaintext) -> PyResult<Ciphertext> {
        self.out(py.detach(|| self.inner.add_plain(&ct.inner, &pt.inner)))
    }

    /// ct - pt.
    fn sub_plain(&self, py: Python<'_>, ct: &Ciphertext, pt: &Plaintext) -> PyResult<Ciphertext> {
        self.out(py.detach(|| self.inner.sub_plain(&ct.inner, &pt.inner)))
    }

    /// ct * pt (slot-wise for batch-encoded plaintexts).
    fn multiply_plain(
        &self,
        py: Python<'_>,
        ct: &Ciphertext,
        pt: &Plaintext,
    ) -> PyResult<Ciphertext> {
        self.out(py.detach(|| self.inner.multiply_plain(&ct.inner, &pt.inner)))
    }

    /// ct * pt with both in NTT form at the same level.
    fn multiply_plain_ntt(
        &self,
        py: Python<'_>,
        ct: &Ciphertext,
        pt: &PlaintextNtt,
    ) -> PyResult<Ciphertext> {
        self.out(py.detach(|| self.inner.multiply_plain_ntt(&ct.inner, &pt.inner)))
    }

    /// A matrix of NTT plaintexts times a vector of NTT ciphertexts:
    /// output o is sum_j cts[j] * rows[o][j] (None counts as zero). Each
    /// row has one entry per ciphertext, at least one not None. The dense
    /// layer of a network in one call, with lazy reduction.
    fn multiply_plain_accumulate(
        &self,
        py: Python<'_>,
        cts: Vec<PyRef<'_, Ciphertext>>,
        rows: Vec<Vec<Option<PyRef<'_, PlaintextNtt>>>>,
    ) -> PyResult<Vec<Ciphertext>> {
        let c: Vec<&he_core::Ciphertext> = cts.iter().map(|c| &c.inner).collect();
        let r: Vec<Vec<Option<&he_core::PlaintextNtt>>> = rows
            .iter()
            .map(|row| row.iter().map(|p| p.as_ref().map(|p| &p.inner)).collect())
            .collect();
        let out = py
            .detach(|| self.inner.multiply_plain_accumulate_many(&c, &r))
            .map_err(errors::he)?;
        Ok(out
            .into_iter()
            .map(|ct| Ciphertext::wrap(ct, &self.params))
            .collect())
    }

    /// a * b without relinearization (the result has size(a) + size(b) - 1 polynomials).
    fn multiply(&self, py: Python<'_>, a: &Ciphertext, b: &Ciphertext) -> PyResult<Ciphertext> {
        self.out(py.detach(|| self.inner.multiply(&a.inner, &b.inner)))
    }

    /// a * a without relinearization.
    fn square(&self, py: Python<'_>, a: &Ciphertext) -> PyResult<Ciphertext> {
        self.out(py.detach(|| self.inner.square(&a.inner)))
    }

    /// a * b, relinearized to two polynomials.
    fn multiply_relin(
        &self,
        py: Python<'_>,
        a: &Ciphertext,
        b: &Ciphertext,
        relin_keys: &RelinKeys,
    ) -> PyResult<Ciphertext> {
        self.out(py.detach(|| {
            self.inner
                .multiply_relin(&a.inner, &b.inner, &relin_keys.inner)
        }))
    }

    /// A size-3 ciphertext back to size 2.
    fn relinearize(
        &self,
        py: Python<'_>,
        ct: &Ciphertext,
        relin_keys: &RelinKeys,
    ) -> PyResult<Ciphertext> {
        self.out(py.detach(|| self.inner.relinearize(&ct.inner, &relin_keys.inner)))
    }

    /// Drops the last prime (level + 1): smaller and cheaper, same message.
    fn mod_switch_to_next(&self, py: Python<'_>, ct: &Ciphertext) -> PyResult<Ciphertext> {
        self.out(py.detach(|| self.inner.mod_switch_to_next(&ct.inner)))
    }

    /// Modulus switches down to `level`.
    fn mod_switch_to_level(
        &self,
        py: Python<'_>,
        ct: &Ciphertext,
        level: usize,
    ) -> PyResult<Ciphertext> {
        self.out(py.detach(|| self.inner.mod_switch_to_level(&ct.inner, level)))
    }

    /// The ciphertext in NTT form.
    fn transform_to_ntt(&self, py: Python<'_>, ct: &Ciphertext) -> PyResult<Ciphertext> {
        self.out(py.detach(|| {
            let mut c = ct.inner.clone();
            self.inner.transform_to_ntt(&mut c)?;
            Ok(c)
        }))
    }

    /// The ciphertext in coefficient form.
    fn transform_from_ntt(&self, py: Python<'_>, ct: &Ciphertext) -> PyResult<Ciphertext> {
        self.out(py.detach(|| {
            let mut c = ct.inner.clone();
            self.inner.transform_from_ntt(&mut c)?;
            Ok(c)
        }))
    }

    /// `pt` lifted to NTT form at `level`.
    #[pyo3(signature = (pt, level=0))]
    fn plain_to_ntt(&self, py: Python<'_>, pt: &Plaintext, level: usize) -> PyResult<PlaintextNtt> {
        let inner = py
            .detach(|| self.inner.plain_to_ntt(&pt.inner, level))
            .map_err(errors::he)?;
        Ok(PlaintextNtt {
            inner,
            params: self.params.clone(),
        })
    }
}

/// Adds the BFV classes to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<BfvParameters>()?;
    m.add_class::<SecretKey>()?;
    m.add_class::<PublicKey>()?;
    m.add_class::<RelinKeys>()?;
    m.add_class::<Plaintext>()?;
    m.add_class::<PlaintextNtt>()?;
    m.add_class::<Ciphertext>()?;
    m.add_class::<BatchEncoder>()?;
    m.add_class::<Encryptor>()?;
    m.add_class::<Decryptor>()?;
    m.add_class::<Evaluator>()?;
    Ok(())
}
