//! The embedded demo store: the fixture breach corpus
//! (`fixtures/data/breach/`) compiled into the binary, imported on first
//! use into `DATA_DIR/demo`, so `breach-server serve` works from any
//! directory with no setup.
//!
//! `DATA_DIR` is `--data-dir` if given, else `$XDG_DATA_HOME/breach-check`,
//! else `$HOME/.local/share/breach-check`.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::import::{self, Format, ImportOptions};
use crate::store::Store;

/// The bundled corpus: file name, format, content.
pub const DEMO_CORPUS: [(&str, Format, &[u8]); 3] = [
    (
        "combo-1.txt",
        Format::Combo,
        include_bytes!("../../fixtures/data/breach/combo-1.txt"),
    ),
    (
        "combo-2.txt",
        Format::Combo,
        include_bytes!("../../fixtures/data/breach/combo-2.txt"),
    ),
    (
        "pwned-passwords.txt",
        Format::Hibp,
        include_bytes!("../../fixtures/data/breach/pwned-passwords.txt"),
    ),
];

/// The default data directory (see the [module docs](self)).
pub fn default_data_dir() -> Result<PathBuf> {
    let non_empty = |v: std::ffi::OsString| (!v.is_empty()).then(|| PathBuf::from(v));
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").and_then(non_empty) {
        return Ok(xdg.join("breach-check"));
    }
    if let Some(home) = std::env::var_os("HOME").and_then(non_empty) {
        return Ok(home.join(".local/share/breach-check"));
    }
    Err(Error::Config(
        "no data directory: set --data-dir, XDG_DATA_HOME or HOME".into(),
    ))
}

/// Makes sure `data_dir/demo` holds a store with the bundled corpus and
/// returns its path. Files already imported are recognised by their
/// content hash and skipped, so this is cheap after the first run.
pub fn ensure_demo_store(data_dir: &Path) -> Result<PathBuf> {
    let store_dir = data_dir.join("demo");
    let corpus = store_dir.join("corpus");
    fs::create_dir_all(&corpus).map_err(|e| Error::io(&corpus, e))?;
    let mut store = Store::open(&store_dir)?;
    for (name, format, bytes) in DEMO_CORPUS {
        let path = corpus.join(name);
        if fs::read(&path).ok().as_deref() != Some(bytes) {
            fs::write(&path, bytes).map_err(|e| Error::io(&path, e))?;
        }
        let options = ImportOptions {
            format: Some(format),
            ..ImportOptions::default()
        };
        let report = import::import_file(&mut store, &path, &options)?;
        tracing::debug!(file = name, outcome = ?report.outcome, "demo corpus");
    }
    Ok(store_dir)
}
