//! The crate's error type.

use std::path::PathBuf;

/// Errors of the breach store, importers, PSI database builder and gRPC
/// service. Its `From<Error> for tonic::Status` implementation
/// decides the gRPC status code of every failed request.
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

    /// A PSI operation failed (building a database, decoding or answering
    /// a request).
    #[error(transparent)]
    Psi(#[from] psi_core::Error),

    /// An OPRF key file is readable or writable by group or others.
    #[error(
        "{}: OPRF key file has mode {mode:o}; it must be readable by its owner only \
         (chmod 600 it, and consider the key compromised if others could read it)",
        path.display()
    )]
    KeyPermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },

    /// An OPRF key file does not hold a valid key.
    #[error("{}: not a valid OPRF key", path.display())]
    BadKeyFile {
        /// The key file.
        path: PathBuf,
    },

    /// A saved PSI database is corrupt or of another format version.
    #[error("{}: unusable PSI database: {reason}", path.display())]
    BadSenderDb {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// A query was built for parameters no tier of the collection has
    /// (typically: the database was rebuilt with new parameters since the
    /// client fetched them).
    #[error(
        "the query was built for parameters this server no longer serves for {collection} (the \
         database was rebuilt); fetch the parameters again"
    )]
    StaleParameters {
        /// The collection queried.
        collection: crate::store::Collection,
    },

    /// A request is malformed or breaks a fixed limit (retrying it will
    /// not help).
    #[error("{0}")]
    InvalidRequest(String),

    /// The server is at its limit of concurrent queries.
    #[error("server busy: {limit} queries already running; retry later")]
    Busy {
        /// The concurrent-query limit.
        limit: usize,
    },

    /// The connection used up its OPRF rate.
    #[error(
        "OPRF rate limit: {requested} elements asked, {available} available on this \
         connection; retry in {retry_after_ms} ms"
    )]
    RateLimited {
        /// Elements in the request.
        requested: u64,
        /// Tokens left in the bucket.
        available: u64,
        /// When enough tokens will be there.
        retry_after_ms: u64,
    },

    /// Invalid server configuration (limits, addresses, data directory).
    #[error("configuration: {0}")]
    Config(String),

    /// The gRPC transport failed (binding, serving).
    #[error("gRPC transport: {0}")]
    Transport(String),
}

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for tonic::Status {
    /// The one place that decides status codes:
    ///
    /// - `INVALID_ARGUMENT`: malformed requests (bad collection, wrong
    ///   element sizes, undecodable messages, bad ciphertexts, too many
    ///   items);
    /// - `FAILED_PRECONDITION`: a well-formed query for other PSI
    ///   parameters (the client should call `GetParameters` again);
    /// - `RESOURCE_EXHAUSTED`: too many concurrent queries, OPRF rate limit
    ///   (message-size limits are remapped to it in
    ///   [`server`](crate::server));
    /// - `INTERNAL`: everything else, with a generic message; the details
    ///   go to the log, never to the client.
    fn from(e: Error) -> Self {
        use psi_core::Error as P;
        use tonic::Status;
        match &e {
            Error::UnknownCollection => {
                Status::invalid_argument("collection must be CREDENTIALS or PASSWORDS")
            }
            Error::InvalidRequest(m) => Status::invalid_argument(m.clone()),
            Error::StaleParameters { .. } => Status::failed_precondition(e.to_string()),
            Error::Busy { .. } | Error::RateLimited { .. } => {
                Status::resource_exhausted(e.to_string())
            }
            Error::Psi(p) => match p {
                P::ParameterMismatch => Status::failed_precondition(
                    "query was made for other PSI parameters; call GetParameters again",
                ),
                P::InvalidGroupElement { .. }
                | P::OprfBatchMismatch { .. }
                | P::TooShort { .. }
                | P::TrailingData { .. }
                | P::TooLarge { .. }
                | P::BadVersion { .. }
                | P::Malformed(_)
                | P::He(_) => Status::invalid_argument(format!("invalid request: {p}")),
                _ => internal(&e),
            },
            _ => internal(&e),
        }
    }
}

fn internal(e: &Error) -> tonic::Status {
    tracing::error!(error = %e, "internal error answering a request");
    tonic::Status::internal("internal server error")
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
