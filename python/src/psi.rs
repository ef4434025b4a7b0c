//! psi-core's labeled PSI for Python: parameters, the sender database, the
//! receiver, and the protocol steps as bytes in and bytes out (psi-core's
//! wire encoding), so any transport can carry them.
//!
//! The four messages, in order: the receiver's OPRF request
//! (`Receiver.oprf_request`), the sender's OPRF response
//! (`SenderDb.evaluate_oprf`), the receiver's encrypted query
//! (`Receiver.create_query`) and the sender's answer, a list of result
//! parts (`SenderDb.answer`); `Receiver.decode` turns the answer into one
//! `PsiMatch` per item. `run_in_process` does all of it in one call.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::sync::{Mutex, RwLock};

use psi_core::wire::Codec;
use psi_core::{OprfRequest, OprfResponse, Query, ResultPart};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::bfv::BfvParameters;
use crate::errors::{self, Kind, raise};

/// PSI parameters (table, hashing, bins, query powers, labels, BFV).
#[pyclass(frozen, module = "breachcheck._native")]
pub struct PsiParams {
    pub(crate) inner: psi_core::PsiParams,
}

#[pymethods]
impl PsiParams {
    /// A shipped preset by name (see `preset_names()`), e.g. "64K-1024-16":
    /// up to 2^16 sender items, 1024 items per query, 16-byte labels.
    #[staticmethod]
    fn preset(name: &str) -> PyResult<Self> {
        match psi_core::presets::PRESETS.iter().find(|p| p.name == name) {
            Some(p) => Ok(Self { inner: p.params() }),
            None => Err(raise(
                Kind::Parameter,
                format!(
                    "unknown PSI preset `{name}`; known: {}",
                    Self::preset_names().join(", ")
                ),
            )),
        }
    }

    /// Names of the shipped presets, smallest first.
    #[staticmethod]
    fn preset_names() -> Vec<&'static str> {
        psi_core::presets::PRESETS.iter().map(|p| p.name).collect()
    }

    /// The fastest parameters for these sizes: the smallest preset covering
    /// them, else a set designed for them.
    #[staticmethod]
    #[pyo3(signature = (sender_items, receiver_items, label_bytes=0))]
    fn for_sizes(
        py: Python<'_>,
        sender_items: u64,
        receiver_items: u64,
        label_bytes: usize,
    ) -> PyResult<Self> {
        let inner = py
            .detach(|| psi_core::PsiParams::for_sizes(sender_items, receiver_items, label_bytes))
            .map_err(errors::psi)?;
        Ok(Self { inner })
    }

    /// Parameters from their JSON form (validated).
    #[staticmethod]
    fn from_json(json: &str) -> PyResult<Self> {
        let inner = psi_core::PsiParams::from_json(json).map_err(errors::psi)?;
        inner.validate().map_err(errors::psi)?;
        Ok(Self { inner })
    }

    /// The JSON form.
    fn to_json(&self) -> String {
        self.inner.to_json()
    }

    /// log2 of the false-positive probability of a query of
    /// `receiver_items` against `sender_items`.
    fn false_positive_log2(&self, receiver_items: u64, sender_items: u64) -> f64 {
        self.inner.false_positive_log2(receiver_items, sender_items)
    }

    /// The BFV parameters these PSI parameters use.
    fn bfv_parameters(&self, py: Python<'_>) -> PyResult<BfvParameters> {
        let inner = py.detach(|| self.inner.he_params()).map_err(errors::psi)?;
        Ok(BfvParameters { inner })
    }

    /// Cuckoo table size (bins); also the most items one query holds.
    #[getter]
    fn table_size(&self) -> usize {
        self.inner.table_size
    }

    /// Hash functions of the cuckoo table.
    #[getter]
    fn hash_functions(&self) -> usize {
        self.inner.hash_functions
    }

    /// Most items of one bin bundle's bin.
    #[getter]
    fn max_items_per_bin(&self) -> usize {
        self.inner.max_items_per_bin
    }

    /// Field elements per item.
    #[getter]
    fn felts_per_item(&self) -> usize {
        self.inner.felts_per_item
    }

    /// Powers of the query the receiver encrypts.
    #[getter]
    fn query_powers(&self) -> Vec<u32> {
        self.inner.query_powers.clone()
    }

    /// Paterson-Stockmeyer low degree (0: none).
    #[getter]
    fn ps_low_degree(&self) -> u32 {
        self.inner.ps_low_degree
    }

    /// Label bytes (0: unlabeled).
    #[getter]
    fn label_byte_count(&self) -> usize {
        self.inner.label_byte_count
    }

    /// Nonce bytes of each encrypted label.
    #[getter]
    fn nonce_byte_count(&self) -> usize {
        self.inner.nonce_byte_count
    }

    /// SHA-256 fingerprint of the parameters (stamped on every query).
    #[getter]
    fn fingerprint<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.fingerprint())
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<PsiParams>()
            .is_ok_and(|o| o.get().inner.fingerprint() == self.inner.fingerprint())
    }

    fn __hash__(&self) -> u64 {
        let f = self.inner.fingerprint();
        u64::from_le_bytes([f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7]])
    }

    fn __repr__(&self) -> String {
        format!(
            "PsiParams(table_size={}, max_items_per_bin={}, label_byte_count={}, degree={})",
            self.inner.table_size,
            self.inner.max_items_per_bin,
            self.inner.label_byte_count,
            self.inner.bfv.poly_modulus_degree
        )
    }
}

/// The sender's OPRF key (ristretto255 scalar). Secret: never printed.
#[pyclass(frozen, module = "breachcheck._native")]
pub struct OprfKey {
    inner: psi_core::OprfKey,
}

impl OprfKey {
    /// A second handle on the same key (the key type is deliberately not `Clone`).
    fn duplicate(&self) -> PyResult<psi_core::OprfKey> {
        psi_core::OprfKey::from_bytes(&self.inner.to_bytes()[..]).map_err(errors::psi)
    }
}

#[pymethods]
impl OprfKey {
    /// A fresh random key (OS randomness).
    #[staticmethod]
    fn generate() -> PyResult<Self> {
        Ok(Self {
            inner: psi_core::OprfKey::generate().map_err(errors::psi)?,
        })
    }

    /// SECRET: the key's 32 bytes.
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.to_bytes()[..])
    }

    /// A key from 32 bytes (a canonical non-zero scalar).
    #[staticmethod]
    fn from_bytes(data: &[u8]) -> PyResult<Self> {
        Ok(Self {
            inner: psi_core::OprfKey::from_bytes(data).map_err(errors::psi)?,
        })
    }

    fn __repr__(&self) -> &'static str {
        "OprfKey(<redacted>)"
    }
}

fn item_refs(items: &[Vec<u8>]) -> Vec<&[u8]> {
    items.iter().map(Vec::as_slice).collect()
}

fn poisoned() -> PyErr {
    raise(
        Kind::Base,
        "internal error: the sender database's lock was poisoned by an earlier failure",
    )
}

/// The sender's database of items (bytes) and, when labeled, their labels.
/// Thread-safe: queries run concurrently (GIL released); inserts and
/// removals wait for them.
#[pyclass(frozen, module = "breachcheck._native")]
pub struct SenderDb {
    inner: RwLock<psi_core::SenderDb>,
}

#[pymethods]
impl SenderDb {
    /// A database for `params`, holding `items` (and `labels`, one per item,
    /// exactly when the parameters are labeled). A fresh OPRF key unless
    /// `oprf_key` is given.
    #[new]
    #[pyo3(signature = (params, items=None, labels=None, oprf_key=None))]
    fn new(
        py: Python<'_>,
        params: &PsiParams,
        items: Option<Vec<Vec<u8>>>,
        labels: Option<Vec<Vec<u8>>>,
        oprf_key: Option<&OprfKey>,
    ) -> PyResult<Self> {
        let key = match oprf_key {
            Some(k) => k.duplicate()?,
            None => psi_core::OprfKey::generate().map_err(errors::psi)?,
        };
        let p = params.inner.clone();
        let mut db = py
            .detach(|| psi_core::SenderDb::new(p, key))
            .map_err(errors::psi)?;
        if let Some(items) = items {
            insert_into(py, &mut db, &items, labels.as_deref())?;
        } else if labels.is_some() {
            return Err(raise(
                Kind::Label,
                "label error: labels given without items",
            ));
        }
        Ok(Self {
            inner: RwLock::new(db),
        })
    }

    /// Inserts items (replacing the labels of items already present).
    #[pyo3(signature = (items, labels=None))]
    fn insert(
        &self,
        py: Python<'_>,
        items: Vec<Vec<u8>>,
        labels: Option<Vec<Vec<u8>>>,
    ) -> PyResult<()> {
        py.detach(|| {
            let mut db = self.inner.write().map_err(|_| Poisoned)?;
            Ok::<_, Poisoned>(insert_checked(&mut db, &items, labels.as_deref()))
        })
        .map_err(|_| poisoned())?
        .map_err(InsertError::into_py)
    }

    /// Removes items; returns how many were present.
    fn remove(&self, py: Python<'_>, items: Vec<Vec<u8>>) -> PyResult<usize> {
        py.detach(|| {
            let mut db = self.inner.write().map_err(|_| Poisoned)?;
            Ok::<_, Poisoned>(db.remove(&item_refs(&items)))
        })
        .map_err(|_| poisoned())?
        .map_err(errors::psi)
    }

    /// Distinct items.
    #[getter]
    fn item_count(&self) -> PyResult<u64> {
        Ok(self.inner.read().map_err(|_| poisoned())?.item_count())
    }

    fn __len__(&self) -> PyResult<usize> {
        Ok(self.item_count()? as usize)
    }

    /// Whether labels are stored.
    #[getter]
    fn is_labeled(&self) -> PyResult<bool> {
        Ok(self.inner.read().map_err(|_| poisoned())?.is_labeled())
    }

    /// The parameters.
    #[getter]
    fn params(&self) -> PyResult<PsiParams> {
        Ok(PsiParams {
            inner: self.inner.read().map_err(|_| poisoned())?.params().clone(),
        })
    }

    /// The OPRF key (secret; needed to load a saved database).
    #[getter]
    fn oprf_key(&self) -> PyResult<OprfKey> {
        let db = self.inner.read().map_err(|_| poisoned())?;
        let inner =
            psi_core::OprfKey::from_bytes(&db.oprf_key().to_bytes()[..]).map_err(errors::psi)?;
        Ok(OprfKey { inner })
    }

    /// Sizes: items, bundles, bundle_indices, bytes_in_memory.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = py
            .detach(|| self.inner.read().map(|db| db.stats()).map_err(|_| Poisoned))
            .map_err(|_| poisoned())?;
        let d = PyDict::new(py);
        d.set_item("items", s.items)?;
        d.set_item("bundles", s.bundles)?;
        d.set_item("bundle_indices", s.bundle_indices)?;
        d.set_item("bytes_in_memory", s.bytes_in_memory)?;
        Ok(d)
    }

    /// Writes the database to `path` (one versioned file; the OPRF key is
    /// not in it: keep `oprf_key` apart).
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        let file = File::create(&path)?;
        py.detach(|| {
            let db = self.inner.read().map_err(|_| Poisoned)?;
            let mut out = BufWriter::new(file);
            Ok::<_, Poisoned>(
                db.save(&mut out)
                    .and_then(|()| out.flush().map_err(|e| psi_core::Error::Io(e.to_string()))),
            )
        })
        .map_err(|_| poisoned())?
        .map_err(errors::psi)
    }

    /// Loads a database saved by `save`, built with `oprf_key`.
    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf, oprf_key: &OprfKey) -> PyResult<Self> {
        let file = File::open(&path)?;
        let key = oprf_key.duplicate()?;
        let db = py
            .detach(|| psi_core::SenderDb::load(BufReader::new(file), key))
            .map_err(errors::psi)?;
        Ok(Self {
            inner: RwLock::new(db),
        })
    }

    /// Protocol step 2: evaluates the OPRF on a receiver's request.
    fn evaluate_oprf<'py>(&self, py: Python<'py>, request: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        let r = py
            .detach(|| {
                let db = self.inner.read().map_err(|_| Poisoned)?;
                Ok::<_, Poisoned>(
                    OprfRequest::from_wire(request)
                        .and_then(|req| db.evaluate_oprf(&req))
                        .map(|resp| resp.to_wire()),
                )
            })
            .map_err(|_| poisoned())?
            .map_err(errors::psi)?;
        Ok(PyBytes::new(py, &r))
    }

    /// Protocol step 4: answers an encrypted query with its result parts.
    fn answer<'py>(&self, py: Python<'py>, query: &[u8]) -> PyResult<Vec<Bound<'py, PyBytes>>> {
        let parts = py
            .detach(|| {
                let db = self.inner.read().map_err(|_| Poisoned)?;
                Ok::<_, Poisoned>(
                    Query::from_wire(query)
                        .and_then(|q| db.answer_all(&q))
                        .map(|parts| parts.iter().map(Codec::to_wire).collect::<Vec<_>>()),
                )
            })
            .map_err(|_| poisoned())?
            .map_err(errors::psi)?;
        Ok(parts.iter().map(|p| PyBytes::new(py, p)).collect())
    }

    fn __repr__(&self) -> String {
        match self.inner.read() {
            Ok(db) => format!(
                "SenderDb(items={}, labeled={})",
                db.item_count(),
                db.is_labeled()
            ),
            Err(_) => "SenderDb(<poisoned>)".into(),
        }
    }
}

/// The lock was poisoned (a panic while it was held).
struct Poisoned;

/// Why an insertion failed, before the GIL is taken back.
enum InsertError {
    Arguments(String),
    Psi(psi_core::Error),
}

impl InsertError {
    fn into_py(self) -> PyErr {
        match self {
            InsertError::Arguments(m) => raise(Kind::Label, format!("label error: {m}")),
            InsertError::Psi(e) => errors::psi(e),
        }
    }
}

fn insert_checked(
    db: &mut psi_core::SenderDb,
    items: &[Vec<u8>],
    labels: Option<&[Vec<u8>]>,
) -> Result<(), InsertError> {
    match (db.is_labeled(), labels) {
        (true, Some(labels)) => {
            if labels.len() != items.len() {
                return Err(InsertError::Arguments(format!(
                    "{} labels for {} items",
                    labels.len(),
                    items.len()
                )));
            }
            let pairs: Vec<(&[u8], &[u8])> = items
                .iter()
                .zip(labels)
                .map(|(i, l)| (i.as_slice(), l.as_slice()))
                .collect();
            db.insert(&pairs).map_err(InsertError::Psi)
        }
        (false, None) => db
            .insert_unlabeled(&item_refs(items))
            .map_err(InsertError::Psi),
        (true, None) => Err(InsertError::Arguments(
            "labeled database needs a label for every item".into(),
        )),
        (false, Some(_)) => Err(InsertError::Arguments(
            "unlabeled database takes no labels".into(),
        )),
    }
}

fn insert_into(
    py: Python<'_>,
    db: &mut psi_core::SenderDb,
    items: &[Vec<u8>],
    labels: Option<&[Vec<u8>]>,
) -> PyResult<()> {
    py.detach(|| insert_checked(db, items, labels))
        .map_err(InsertError::into_py)
}

/// Blinding state between `Receiver.oprf_request` and
/// `Receiver.create_query` (single use).
#[pyclass(frozen, module = "breachcheck._native")]
pub struct OprfPending {
    inner: Mutex<Option<psi_core::OprfPending>>,
}

#[pymethods]
impl OprfPending {
    fn __repr__(&self) -> &'static str {
        "OprfPending(<secret>)"
    }
}

/// Secret state between `Receiver.create_query` and `Receiver.decode`.
#[pyclass(frozen, module = "breachcheck._native")]
pub struct QueryState {
    inner: psi_core::QueryState,
}

#[pymethods]
impl QueryState {
    fn __repr__(&self) -> &'static str {
        "QueryState(<secret>)"
    }
}

/// What the receiver learned about one of its items.
#[pyclass(frozen, get_all, module = "breachcheck._native")]
pub struct PsiMatch {
    /// Whether the item is in the sender's set.
    matched: bool,
    /// Its label (zero-padded to the parameters' label length) when
    /// matched in a labeled set, else None.
    label: Option<Py<PyBytes>>,
}

#[pymethods]
impl PsiMatch {
    fn __eq__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> bool {
        let Ok(o) = other.cast::<PsiMatch>() else {
            return false;
        };
        let o = o.get();
        let label = |l: &Option<Py<PyBytes>>| l.as_ref().map(|b| b.as_bytes(py).to_vec());
        o.matched == self.matched && label(&o.label) == label(&self.label)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        match &self.label {
            Some(l) => format!(
                "PsiMatch(matched={}, label=<{} bytes>)",
                if self.matched { "True" } else { "False" },
                l.as_bytes(py).len()
            ),
            None => format!(
                "PsiMatch(matched={}, label=None)",
                if self.matched { "True" } else { "False" }
            ),
        }
    }
}

/// The receiver: fresh BFV keys (the secret key never leaves it).
#[pyclass(frozen, module = "breachcheck._native")]
pub struct Receiver {
    inner: psi_core::Receiver,
}

#[pymethods]
impl Receiver {
    /// A receiver for `params` (generates its keys).
    #[new]
    fn new(py: Python<'_>, params: &PsiParams) -> PyResult<Self> {
        let p = params.inner.clone();
        let inner = py
            .detach(|| psi_core::Receiver::new(p))
            .map_err(errors::psi)?;
        Ok(Self { inner })
    }

    /// Most items one query holds.
    #[getter]
    fn max_items(&self) -> usize {
        self.inner.max_items()
    }

    /// The parameters.
    #[getter]
    fn params(&self) -> PsiParams {
        PsiParams {
            inner: self.inner.params().clone(),
        }
    }

    /// Protocol step 1: blinds `items` for the sender's OPRF; returns the
    /// request bytes and the state `create_query` needs.
    fn oprf_request<'py>(
        &self,
        py: Python<'py>,
        items: Vec<Vec<u8>>,
    ) -> PyResult<(Bound<'py, PyBytes>, OprfPending)> {
        if items.len() > self.inner.max_items() {
            return Err(raise(
                Kind::InvalidValue,
                format!(
                    "{} items exceed the {} one query holds (the table size)",
                    items.len(),
                    self.inner.max_items()
                ),
            ));
        }
        let (req, pending) = py
            .detach(|| {
                let (req, pending) = self.inner.oprf_request(&item_refs(&items))?;
                Ok::<_, psi_core::Error>((req.to_wire(), pending))
            })
            .map_err(errors::psi)?;
        Ok((
            PyBytes::new(py, &req),
            OprfPending {
                inner: Mutex::new(Some(pending)),
            },
        ))
    }

    /// Protocol step 3: unblinds the sender's OPRF response and encrypts the
    /// query; returns the query bytes and the state `decode` needs.
    fn create_query<'py>(
        &self,
        py: Python<'py>,
        pending: &OprfPending,
        response: &[u8],
    ) -> PyResult<(Bound<'py, PyBytes>, QueryState)> {
        let taken = pending
            .inner
            .lock()
            .map_err(|_| poisoned())?
            .take()
            .ok_or_else(|| {
                raise(
                    Kind::InvalidValue,
                    "this OprfPending was already used for a query: call oprf_request again",
                )
            })?;
        let (query, state) = py
            .detach(|| {
                let resp = OprfResponse::from_wire(response)?;
                let (q, s) = self.inner.create_query(taken, &resp)?;
                Ok::<_, psi_core::Error>((q.to_wire(), s))
            })
            .map_err(errors::psi)?;
        Ok((PyBytes::new(py, &query), QueryState { inner: state }))
    }

    /// Decodes the sender's result parts: one `PsiMatch` per queried item,
    /// in query order.
    fn decode(
        &self,
        py: Python<'_>,
        state: &QueryState,
        parts: Vec<Vec<u8>>,
    ) -> PyResult<Vec<PsiMatch>> {
        let results = py
            .detach(|| {
                let parts = parts
                    .iter()
                    .map(|p| ResultPart::from_wire(p))
                    .collect::<psi_core::Result<Vec<_>>>()?;
                self.inner.decode(&state.inner, &parts)
            })
            .map_err(errors::psi)?;
        Ok(results
            .into_iter()
            .map(|r| PsiMatch {
                matched: r.matched,
                label: r.label.map(|l| PyBytes::new(py, &l).unbind()),
            })
            .collect())
    }
}

/// Runs the whole protocol in this process (tests, examples): a fresh
/// receiver queries `items` against `db`; one `PsiMatch` per item.
#[pyfunction]
fn run_in_process(py: Python<'_>, db: &SenderDb, items: Vec<Vec<u8>>) -> PyResult<Vec<PsiMatch>> {
    let params = db.params()?;
    let receiver = Receiver::new(py, &params)?;
    let (request, pending) = receiver.oprf_request(py, items)?;
    let response = db.evaluate_oprf(py, request.as_bytes())?;
    let (query, state) = receiver.create_query(py, &pending, response.as_bytes())?;
    let parts = db.answer(py, query.as_bytes())?;
    let parts: Vec<Vec<u8>> = parts.iter().map(|p| p.as_bytes().to_vec()).collect();
    receiver.decode(py, &state, parts)
}

/// Adds the PSI classes and functions to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PsiParams>()?;
    m.add_class::<OprfKey>()?;
    m.add_class::<SenderDb>()?;
    m.add_class::<OprfPending>()?;
    m.add_class::<QueryState>()?;
    m.add_class::<PsiMatch>()?;
    m.add_class::<Receiver>()?;
    m.add_function(wrap_pyfunction!(run_in_process, m)?)?;
    Ok(())
}
