//! breach-client's private breach check for Python.
//!
//! The check is async (tokio + tonic); the module owns one multi-threaded
//! Tokio runtime, started on first use, and blocks on it with the GIL
//! released. While it waits, it looks for Python signals every 100 ms,
//! so Ctrl-C stops a check (the task is aborted and `KeyboardInterrupt`
//! raised). Results come back as plain dicts; `breachcheck.breach` turns
//! them into dataclasses.

use std::future::Future;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use breach_client::{CheckOptions, Password, RetryPolicy, VaultFormat};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use tokio::runtime::Runtime;

use crate::errors::{self, Kind, raise};

/// How often a waiting check looks for Python signals (Ctrl-C).
const SIGNAL_POLL: Duration = Duration::from_millis(100);

static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();

fn runtime() -> PyResult<&'static Runtime> {
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_name("breachcheck-io")
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| raise(Kind::Base, format!("cannot start the Tokio runtime: {e}")))
}

/// Runs `fut` on the module's runtime with the GIL released, stopping it
/// when a Python signal handler raises (Ctrl-C).
fn run<T, F>(py: Python<'_>, fut: F) -> PyResult<T>
where
    T: Send + 'static,
    F: Future<Output = PyResult<T>> + Send + 'static,
{
    let rt = runtime()?;
    let mut handle = rt.spawn(fut);
    loop {
        // The timer is created inside `block_on`: it needs the runtime's context.
        let waited = py
            .detach(|| rt.block_on(async { tokio::time::timeout(SIGNAL_POLL, &mut handle).await }));
        match waited {
            Ok(Ok(result)) => return result,
            Ok(Err(join)) => {
                return Err(raise(
                    Kind::Base,
                    format!("internal error: the check task failed: {join}"),
                ));
            }
            Err(_elapsed) => {
                if let Err(e) = py.check_signals() {
                    handle.abort();
                    return Err(e);
                }
            }
        }
    }
}

fn seconds(name: &str, value: f64) -> PyResult<Duration> {
    if value > 0.0 {
        Duration::try_from_secs_f64(value)
            .map_err(|e| raise(Kind::InvalidValue, format!("{name} = {value} s: {e}")))
    } else {
        Err(raise(
            Kind::InvalidValue,
            format!("{name} must be a positive number of seconds, got {value}"),
        ))
    }
}

fn options(
    timeout: Option<f64>,
    call_timeout: f64,
    retry: bool,
    ca_certificate: Option<Vec<u8>>,
    max_items_per_round: Option<usize>,
) -> PyResult<CheckOptions> {
    if max_items_per_round == Some(0) {
        return Err(raise(
            Kind::InvalidValue,
            "max_items_per_round must be at least 1",
        ));
    }
    Ok(CheckOptions {
        timeout: timeout.map(|t| seconds("timeout", t)).transpose()?,
        call_timeout: seconds("call_timeout", call_timeout)?,
        retry: if retry {
            RetryPolicy::default()
        } else {
            RetryPolicy::never()
        },
        ca_certificate,
        max_items_per_round,
        progress: None,
    })
}

/// Checks every login of the password-manager export at `path` against
/// `server`; returns the report as a dict (`checked`, `results`, `skipped`).
#[pyfunction]
#[pyo3(signature = (path, server, *, format=None, timeout=None, call_timeout=60.0, retry=true,
    ca_certificate=None, max_items_per_round=None))]
#[allow(clippy::too_many_arguments)]
fn check_vault<'py>(
    py: Python<'py>,
    path: PathBuf,
    server: String,
    format: Option<&str>,
    timeout: Option<f64>,
    call_timeout: f64,
    retry: bool,
    ca_certificate: Option<Vec<u8>>,
    max_items_per_round: Option<usize>,
) -> PyResult<Bound<'py, PyDict>> {
    let format = format
        .map(|f| f.parse::<VaultFormat>())
        .transpose()
        .map_err(|e| raise(Kind::InvalidValue, e.to_string()))?;
    let opts = options(
        timeout,
        call_timeout,
        retry,
        ca_certificate,
        max_items_per_round,
    )?;
    let vault = py
        .detach(|| breach_client::read_vault_file(&path, format))
        .map_err(errors::vault)?;
    let report = run(py, async move {
        breach_client::check_vault(&server, &vault, &opts)
            .await
            .map_err(errors::check)
    })?;
    let results = report
        .results
        .iter()
        .map(|r| {
            let d = PyDict::new(py);
            d.set_item("entry", r.entry)?;
            d.set_item("url", &r.url)?;
            d.set_item("username", &r.username)?;
            d.set_item("credential_breached", r.credential_breached)?;
            d.set_item("breach_count", r.breach_count)?;
            d.set_item("password_breached", r.password_breached)?;
            d.set_item("password_seen", r.password_seen)?;
            Ok(d)
        })
        .collect::<PyResult<Vec<_>>>()?;
    let skipped = PyDict::new(py);
    skipped.set_item("empty_password", report.skipped.empty_password)?;
    skipped.set_item("not_a_login", report.skipped.not_a_login)?;
    let d = PyDict::new(py);
    d.set_item("checked", report.checked)?;
    d.set_item("results", results)?;
    d.set_item("skipped", skipped)?;
    Ok(d)
}

/// Checks one password against `server`'s passwords collection; returns
/// a dict (`password_breached`, `password_seen`).
#[pyfunction]
#[pyo3(signature = (password, server, *, timeout=None, call_timeout=60.0, retry=true,
    ca_certificate=None))]
fn check_password<'py>(
    py: Python<'py>,
    password: String,
    server: String,
    timeout: Option<f64>,
    call_timeout: f64,
    retry: bool,
    ca_certificate: Option<Vec<u8>>,
) -> PyResult<Bound<'py, PyDict>> {
    // Wiped from memory when dropped.
    let password = Password::new(password);
    let opts = options(timeout, call_timeout, retry, ca_certificate, None)?;
    let report = run(py, async move {
        breach_client::check_password(&server, password.expose(), &opts)
            .await
            .map_err(errors::check)
    })?;
    let d = PyDict::new(py);
    d.set_item("password_breached", report.password_breached)?;
    d.set_item("password_seen", report.password_seen)?;
    Ok(d)
}

/// Adds the breach-check functions to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(check_vault, m)?)?;
    m.add_function(wrap_pyfunction!(check_password, m)?)?;
    Ok(())
}
