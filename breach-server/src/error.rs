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
    // The variants that wrap another error print it in their message and
    // do not also return it from `source()`: a report that walks the chain
    // (anyhow's `{:#}`) would print the cause twice otherwise.
    /// SQLite failed (I/O, lock timeout, corruption, ...).
    #[error("store database error: {0}")]
    Sqlite(rusqlite::Error),

    /// A store database failure, with the file and its likely cause (see
    /// `store_error::explain`).
    #[error("{}: {cause} (SQLite: {sqlite})", path.display())]
    StoreFile {
        /// The store's database file.
        path: PathBuf,
        /// What it most likely means (disk full, read-only, ...).
        cause: String,
        /// SQLite's own error.
        sqlite: rusqlite::Error,
    },

    /// Reading or creating a file or directory failed.
    #[error("{}: {cause}", path.display())]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error (in the message, not the `source()` chain).
        cause: std::io::Error,
    },

    /// The CSV reader failed on an I/O error while reading a file.
    #[error("{}: reading CSV: {cause}", path.display())]
    Csv {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error (in the message, not the `source()` chain).
        cause: csv::Error,
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

    /// The store's `psi/` folder (keys and databases) is open to group or
    /// others.
    #[error(
        "{}: PSI folder has mode {mode:o}; it must be accessible by its owner only \
         (chmod 700 it, and consider its OPRF keys compromised if others could read them)",
        path.display()
    )]
    PsiDirPermissions {
        /// The folder.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },

    /// `serve --store` found a key or database it cannot serve as it is
    /// (missing, damaged, or built with another key). Serving never
    /// rebuilds or creates keys.
    #[error(
        "{}: {reason}; run `breach-server build --store {}` (serve never builds databases \
         or creates keys)",
        path.display(),
        store.display()
    )]
    NotServable {
        /// The key or database file (or the `psi/` folder).
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
        /// The store directory.
        store: PathBuf,
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

    /// No query slot became free within the admission wait, or the queue
    /// of waiting queries is full.
    #[error("server busy: {reason} ({limit} at once) is reached; retry in {retry_after_ms} ms")]
    Busy {
        /// Which slots were all taken (the client's or the server's).
        reason: crate::limits::Reason,
        /// Their number.
        limit: usize,
        /// Suggested wait before retrying (sent as `grpc-retry-pushback-ms`).
        retry_after_ms: u64,
    },

    /// A rate budget (the client's or the server's) has too few tokens.
    #[error("{reason}: {requested} {unit} asked; retry in {retry_after_ms} ms")]
    RateLimited {
        /// Which budget.
        reason: crate::limits::Reason,
        /// Tokens the request needs.
        requested: u64,
        /// What the tokens count (`OPRF elements`, `queries`).
        unit: &'static str,
        /// When enough tokens will be there (sent as
        /// `grpc-retry-pushback-ms`).
        retry_after_ms: u64,
    },

    /// The server is not configured to serve this collection.
    #[error("collection {collection} is not served here")]
    NotServed {
        /// The collection asked for.
        collection: crate::store::Collection,
    },

    /// The collection is served, but its database is still loading.
    #[error("collection {collection} is loading; retry shortly")]
    Loading {
        /// The collection asked for.
        collection: crate::store::Collection,
    },

    /// Invalid server configuration (limits, addresses, data directory).
    #[error("configuration: {0}")]
    Config(String),

    /// The gRPC transport failed (binding, serving).
    #[error("gRPC transport: {0}")]
    Transport(String),

    /// The listen address cannot be used (in use, not local, not resolvable).
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The address as given (host name or IP address, and port).
        addr: String,
        /// Why.
        reason: String,
    },

    /// A TLS certificate or key file is missing, unreadable, malformed,
    /// too widely readable, or does not match its counterpart.
    #[error("{}: {reason}", path.display())]
    Tls {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// A store belongs to another shard (or routing) than asked for, or
    /// holds data imported without sharding.
    #[error("{}: {reason}", store.display())]
    ShardMismatch {
        /// The store directory.
        store: PathBuf,
        /// What differs.
        reason: String,
    },

    /// The store already has an OPRF key for a collection, and `--keys`
    /// gives another one.
    #[error(
        "{}: this store's {collection} OPRF key differs from {} (its databases were built under another key); pass --force to replace the key and rebuild the collection",
        store_key.display(),
        given.display()
    )]
    KeyMismatch {
        /// The collection.
        collection: crate::store::Collection,
        /// The store's key file.
        store_key: PathBuf,
        /// The key file given.
        given: PathBuf,
    },

    /// A collection holds more items than the PSI parameters were sized
    /// for with `build --expected-items`.
    #[error(
        "{collection} has {items} items, more than the {sized_for} its parameters are sized for (--expected-items); every shard must serve the same parameters, so raise --expected-items on every shard and rebuild them all"
    )]
    Oversized {
        /// The collection.
        collection: crate::store::Collection,
        /// Items it holds.
        items: u64,
        /// Items the parameters are sized for.
        sized_for: u64,
    },

    /// A shard behind a front cannot answer, or disagrees with the others.
    #[error("shard {shard} ({url}): {reason}")]
    Shard {
        /// The shard's index.
        shard: u32,
        /// The shard's address.
        url: String,
        /// What went wrong.
        reason: String,
        /// Whether the shard is unreachable or not serving (UNAVAILABLE),
        /// rather than misconfigured (FAILED_PRECONDITION).
        unavailable: bool,
    },

    /// A worker answering a request failed without a result (it panicked
    /// or was dropped). Reported as `INTERNAL`; the text is only logged.
    #[error("worker failed: {0}")]
    WorkerFailed(String),

    /// The Prometheus metrics exporter could not start.
    #[error("metrics: {0}")]
    Metrics(String),
}

/// Metadata key of the retry hint on `RESOURCE_EXHAUSTED` (gRPC A6 retry
/// pushback): a decimal integer of milliseconds to wait before retrying.
pub const RETRY_PUSHBACK_KEY: &str = "grpc-retry-pushback-ms";

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
    /// - `UNAVAILABLE`: the collection's database is still loading;
    /// - `RESOURCE_EXHAUSTED`: no query slot free, a rate limit (OPRF
    ///   elements or queries, per client or server-wide), each with the
    ///   suggested wait in milliseconds as [`RETRY_PUSHBACK_KEY`] metadata;
    ///   message-size limits are remapped to it in
    ///   [`server`](crate::server) (no hint: retrying will not help);
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
            Error::NotServed { .. } => Status::invalid_argument(e.to_string()),
            Error::Loading { .. } => Status::unavailable(e.to_string()),
            Error::Shard {
                unavailable: true, ..
            } => Status::unavailable(e.to_string()),
            Error::Shard { .. } => Status::failed_precondition(e.to_string()),
            Error::StaleParameters { .. } => Status::failed_precondition(e.to_string()),
            Error::Busy { retry_after_ms, .. } | Error::RateLimited { retry_after_ms, .. } => {
                let mut status = Status::resource_exhausted(e.to_string());
                status.metadata_mut().insert(
                    RETRY_PUSHBACK_KEY,
                    tonic::metadata::MetadataValue::from(*retry_after_ms),
                );
                status
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
                // The sender's own failure on a well-formed request.
                P::Internal(_) => internal(&e),
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

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Self::Sqlite(e)
    }
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, cause: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            cause,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A report that walks the `source()` chain (as `anyhow`'s `{:#}` does)
    /// names each cause once.
    #[test]
    fn causes_are_printed_once() {
        let not_found = || std::io::Error::from(std::io::ErrorKind::NotFound);
        let cases = [
            Error::io("/nowhere/x", not_found()),
            Error::Csv {
                path: "/nowhere/x.csv".into(),
                cause: csv::Error::from(not_found()),
            },
            Error::from(rusqlite::Error::InvalidQuery),
        ];
        for e in cases {
            let shown = e.to_string();
            let report = format!("{:#}", anyhow::Error::from(e));
            assert_eq!(report, shown, "the chain adds nothing the message lacks");
        }
        let io = format!(
            "{:#}",
            anyhow::Error::from(Error::io("/nowhere/x", not_found()))
        );
        assert_eq!(io.matches("entity not found").count(), 1, "{io}");
        assert!(io.starts_with("/nowhere/x: "), "{io}");
    }
}
