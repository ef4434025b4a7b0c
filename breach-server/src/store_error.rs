//! Store failures an operator can act on: a SQLite error of the store
//! named with the database file and said in plain words (disk full,
//! read-only file system, no permission, damaged file), instead of
//! SQLite's bare "disk I/O error" or "unable to open database file".

use std::fs::OpenOptions;
use std::io;
use std::path::Path;

use rusqlite::ErrorCode;

use crate::error::Error;
use crate::store::DB_FILE_NAME;

/// Turns a store SQLite error ([`Error::Sqlite`]) of the store at
/// `store_dir` into [`Error::StoreFile`], naming the database file and the
/// likely cause. Other errors pass through unchanged.
pub fn explain(store_dir: &Path, e: Error) -> Error {
    let Error::Sqlite(sqlite) = e else {
        return e;
    };
    let cause = match sqlite.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => "the disk is full".to_string(),
        Some(ErrorCode::SystemIoFailure) => match probe_write(store_dir) {
            Some(why) => format!("cannot write in the store's folder ({why})"),
            None => "writing the store failed: the disk is full, a file-size limit was \
                     reached, or the disk failed"
                .to_string(),
        },
        Some(ErrorCode::ReadOnly | ErrorCode::CannotOpen | ErrorCode::PermissionDenied) => {
            match probe_write(store_dir) {
                Some(why) => format!("cannot write in the store's folder ({why})"),
                None => "cannot open the store database for writing".to_string(),
            }
        }
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => {
            "the store database is damaged (restore it from a backup, or re-import the \
             dumps into a new store)"
                .to_string()
        }
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            "the store is locked by another process (an import or build still running?)".to_string()
        }
        _ => return Error::Sqlite(sqlite),
    };
    Error::StoreFile {
        path: store_dir.join(DB_FILE_NAME),
        cause,
        sqlite,
    }
}

/// Why a file cannot be created in `dir` (read-only file system, no
/// permission, no space), as the OS says it; `None` if it can.
fn probe_write(dir: &Path) -> Option<String> {
    let probe = dir.join(format!(".write-probe-{}", std::process::id()));
    let result = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .and_then(|mut f| io::Write::write_all(&mut f, b"x"));
    let _ = std::fs::remove_file(&probe);
    match result {
        Ok(()) => None,
        Err(e) if e.kind() == io::ErrorKind::ReadOnlyFilesystem => {
            Some(format!("the file system is read-only: {e}"))
        }
        Err(e) => Some(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_errors_name_the_file_and_the_cause() {
        let dir = tempfile::tempdir().unwrap();
        let full = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            None,
        );
        let e = explain(dir.path(), Error::Sqlite(full)).to_string();
        assert!(
            e.contains(DB_FILE_NAME) && e.contains("the disk is full"),
            "{e}"
        );
        let io = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_IOERR_WRITE),
            None,
        );
        let e = explain(dir.path(), Error::Sqlite(io)).to_string();
        assert!(e.contains("file-size limit"), "{e}");
        // A folder that does not exist cannot be written in: the OS says why.
        let gone = dir.path().join("gone");
        let open = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
            None,
        );
        let e = explain(&gone, Error::Sqlite(open)).to_string();
        assert!(e.contains("No such file or directory"), "{e}");
        // Other errors pass through.
        assert!(matches!(
            explain(dir.path(), Error::Config("x".into())),
            Error::Config(_)
        ));
    }
}
