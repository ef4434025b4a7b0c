//! The crate's error type.

use std::path::PathBuf;

/// Errors of the breach store and importers.
///
/// Malformed lines in an import are *not* errors: they are skipped and
/// reported in the [`ImportReport`](crate::import::ImportReport).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// SQLite failed (I/O, lock timeout, corruption, ...).
    #[error("store database error: {0}")]
    Sqlite(#[from] rusqlite::Error),

    /// Reading or creating a file or directory failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },

    /// The CSV reader failed on an I/O error while reading a file.
    #[error("{}: reading CSV: {source}", path.display())]
    Csv {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        source: csv::Error,
    },

    /// The store was written by a different schema version.
    #[error("store schema version {found} is not supported (this build reads version {supported})")]
    SchemaVersion {
        /// Version found in the store's `meta` table.
        found: i64,
        /// Version this build reads and writes.
        supported: i64,
    },

    /// A stored row does not have the expected shape (corrupt store).
    #[error("corrupt store: {0}")]
    Corrupt(String),

    /// A CSV file has no header with both a `username` and a `password`
    /// column.
    #[error("{}: CSV header must have `username` and `password` columns", path.display())]
    CsvHeader {
        /// The file concerned.
        path: PathBuf,
    },

    /// A partially imported file is being resumed with a different format
    /// than the one it was started with.
    #[error(
        "{}: an interrupted import of this file used format `{started}`; \
         re-run with `--format {started}` or `--format auto` to resume it",
        path.display()
    )]
    FormatMismatch {
        /// The file concerned.
        path: PathBuf,
        /// Format the interrupted import used.
        started: String,
        /// Format asked for now.
        requested: String,
    },

    /// The file changed between hashing and importing, or does not match
    /// the interrupted import recorded for its content hash.
    #[error("{}: file changed while it was being imported", path.display())]
    FileChanged {
        /// The file concerned.
        path: PathBuf,
    },

    /// The import stopped on purpose after committing the number of batches
    /// asked for by [`ImportOptions::abort_after_batches`](crate::import::ImportOptions::abort_after_batches).
    #[error("import aborted after {batches} committed batches (fault injection)")]
    Aborted {
        /// Batches committed before stopping.
        batches: u64,
    },

    /// No store exists at the given directory (for commands that only read
    /// a store).
    #[error("no store at {} (create one with `breach-server import --store DIR FILE...`)", path.display())]
    NoStore {
        /// The directory given.
        path: PathBuf,
    },

    /// A collection value that names no collection (e.g. `COLLECTION_UNSPECIFIED`).
    #[error("unknown or unspecified collection")]
    UnknownCollection,
}

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
