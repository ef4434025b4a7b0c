//! Conversions of Python arguments: integer sequences and NumPy arrays.

use numpy::{PyArrayDescrMethods, PyReadonlyArray1, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;

use crate::errors::{Kind, raise};

/// The integers of a 1-D sequence of Python ints or a 1-D NumPy array of
/// an integer dtype (any width, signed or not). Floats, booleans and other
/// dtypes are a `TypeError`: silently truncating them would encrypt
/// something else than the caller meant.
pub fn ints(obj: &Bound<'_, PyAny>) -> PyResult<Vec<i128>> {
    // Without NumPy loaded the object cannot be an array, and asking the
    // numpy crate would try (and fail) to import NumPy's C API.
    if numpy_loaded(obj.py())?
        && let Ok(array) = obj.cast::<PyUntypedArray>()
    {
        if array.ndim() != 1 {
            return Err(raise(
                Kind::InvalidValue,
                format!("expected a 1-D array, got {} dimensions", array.ndim()),
            ));
        }
        let kind = array.dtype().kind();
        return match kind {
            b'u' => {
                let a = obj.call_method1("astype", ("uint64",))?;
                let a: PyReadonlyArray1<'_, u64> = a.extract()?;
                Ok(a.as_array().iter().map(|&v| v as i128).collect())
            }
            b'i' => {
                let a = obj.call_method1("astype", ("int64",))?;
                let a: PyReadonlyArray1<'_, i64> = a.extract()?;
                Ok(a.as_array().iter().map(|&v| v as i128).collect())
            }
            other => Err(PyTypeError::new_err(format!(
                "expected an integer array, got dtype kind '{}'",
                other as char
            ))),
        };
    }
    if obj.is_instance_of::<pyo3::types::PyString>() || obj.is_instance_of::<pyo3::types::PyBytes>()
    {
        return Err(PyTypeError::new_err(
            "expected a sequence of integers, got str or bytes",
        ));
    }
    obj.extract::<Vec<i128>>().map_err(|_| {
        PyTypeError::new_err("expected a sequence of integers or a 1-D integer NumPy array")
    })
}

/// `values` as `u64`, each in `[0, 2^64)`.
pub fn unsigned(values: &[i128]) -> PyResult<Vec<u64>> {
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            u64::try_from(v).map_err(|_| {
                raise(
                    Kind::InvalidValue,
                    format!("value {v} at index {i} is negative or too large (use encode_signed for negative values)"),
                )
            })
        })
        .collect()
}

/// `values` as `i64`.
pub fn signed(values: &[i128]) -> PyResult<Vec<i64>> {
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            i64::try_from(v).map_err(|_| {
                raise(
                    Kind::InvalidValue,
                    format!("value {v} at index {i} does not fit in 64 signed bits"),
                )
            })
        })
        .collect()
}

/// Whether NumPy is already imported (then objects may be arrays).
fn numpy_loaded(py: Python<'_>) -> PyResult<bool> {
    py.import("sys")?.getattr("modules")?.contains("numpy")
}

/// Imports NumPy, or raises `ImportError` with a hint: the numpy crate
/// would otherwise panic when NumPy is not installed.
pub fn require_numpy(py: Python<'_>) -> PyResult<()> {
    py.import("numpy").map(|_| ()).map_err(|e| {
        pyo3::exceptions::PyImportError::new_err(format!(
            "NumPy arrays need NumPy (pip install numpy): {e}"
        ))
    })
}
