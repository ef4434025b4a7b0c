//! What `serve --store` checks before it serves a store as it is.
//!
//! Serving never builds a database and never creates a key: rebuilding is
//! `build`'s job and keys are `keygen`'s (or the first `build`'s). A key
//! that silently replaced a deleted or damaged one would split a sharded
//! deployment (every shard of a collection shares one OPRF key), and a
//! rebuild started by `serve` would take minutes with no progress shown.
//! So a missing or damaged key or database, or a `psi/` folder others can
//! read, stops `serve` with the file named and the command to run. A
//! database older than the store is served as it is, with a warning.
//!
//! Cost: reads the key files and each database's headers (a few kilobytes,
//! checksums included); the full load, which checks every section, follows
//! in the reloader.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::{db_path, file, key_path, psi_dir, read_key};
use crate::error::{Error, Result};
use crate::store::{Collection, Store};

/// A database served although the store changed since it was built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaleDb {
    /// The collection.
    pub collection: Collection,
    /// Store generation the database was built from.
    pub built_from: u64,
    /// The store's generation now.
    pub store: u64,
}

/// Checks that every collection of `collections` can be served from the
/// store at `store_dir` as it is: the `psi/` folder is private (no group or
/// other permission bits), each key file exists, is private and holds a
/// valid key, and each database file exists, has intact headers and was
/// built with that key. Returns the databases that are older than the
/// store (served, with a warning).
///
/// Errors: [`Error::PsiDirPermissions`], [`Error::KeyPermissions`], or
/// [`Error::NotServable`] naming the file and what is wrong with it.
pub fn check(store_dir: &Path, collections: &[Collection]) -> Result<Vec<StaleDb>> {
    let dir = psi_dir(store_dir);
    let not_servable = |path: &Path, reason: &str| Error::NotServable {
        path: path.to_path_buf(),
        reason: reason.to_string(),
        store: store_dir.to_path_buf(),
    };
    let meta = match fs::metadata(&dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(not_servable(&dir, "no PSI databases (folder missing)"));
        }
        Err(e) => return Err(Error::io(&dir, e)),
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(Error::PsiDirPermissions { path: dir, mode });
    }
    // A store on a read-only volume may not open (SQLite's WAL needs its
    // shared-memory file): the databases still serve, unchecked for age.
    let store = match Store::open(store_dir) {
        Ok(store) => Some(store),
        Err(e) => {
            tracing::warn!(error = %e, "cannot open the store to compare generations; serving the databases without checking their age");
            None
        }
    };
    let mut stale = Vec::new();
    for &collection in collections {
        let key_file = key_path(store_dir, collection);
        let key = match read_key(&key_file) {
            Ok(Some(key)) => key,
            Ok(None) => return Err(not_servable(&key_file, "OPRF key file missing")),
            Err(Error::BadKeyFile { .. }) => {
                return Err(not_servable(
                    &key_file,
                    "not a valid OPRF key (damaged or truncated)",
                ));
            }
            Err(e) => return Err(e),
        };
        let db_file = db_path(store_dir, collection);
        let (header, tiers) = match file::headers(&db_file) {
            Ok(Some(h)) => h,
            Ok(None) => return Err(not_servable(&db_file, "PSI database file missing")),
            Err(Error::BadSenderDb { reason, .. }) => return Err(not_servable(&db_file, &reason)),
            Err(e) => return Err(e),
        };
        if tiers.iter().any(|(_, saved)| !saved.built_with(&key)) {
            return Err(not_servable(
                &db_file,
                &format!(
                    "built with another OPRF key than {} (the key changed, or the file is \
                     another store's)",
                    key_file.display()
                ),
            ));
        }
        let Some(store) = &store else { continue };
        let now = store.generation(collection)?;
        if header.generation != now {
            stale.push(StaleDb {
                collection,
                built_from: header.generation,
                store: now,
            });
        }
    }
    Ok(stale)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::psi_db::{BuildOptions, refresh};

    fn built_store() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let file = dir.path().join("combo.txt");
        fs::write(&file, "alice:pw1\nbob:pw2\n").unwrap();
        crate::import::import_file(&mut store, &file, &Default::default()).unwrap();
        let options = BuildOptions {
            progress: false,
            force: false,
        };
        for c in Collection::ALL {
            refresh(&store, c, &options).unwrap();
        }
        dir
    }

    fn reason(e: Error) -> String {
        match e {
            Error::NotServable { reason, .. } => reason,
            other => panic!("expected NotServable, got {other}"),
        }
    }

    #[test]
    fn refuses_damage_and_reports_staleness() {
        let dir = built_store();
        let s = dir.path();
        assert_eq!(check(s, &Collection::ALL).unwrap(), []);

        // A more open psi/ folder.
        fs::set_permissions(psi_dir(s), fs::Permissions::from_mode(0o750)).unwrap();
        assert!(matches!(
            check(s, &Collection::ALL),
            Err(Error::PsiDirPermissions { mode: 0o750, .. })
        ));
        fs::set_permissions(psi_dir(s), fs::Permissions::from_mode(0o700)).unwrap();

        // A key with one byte changed: another valid key, not the one the
        // database was built with.
        let key = key_path(s, Collection::Passwords);
        let original = fs::read(&key).unwrap();
        let mut changed = original.clone();
        changed[0] ^= 1;
        fs::write(&key, &changed).unwrap();
        assert!(reason(check(s, &Collection::ALL).unwrap_err()).contains("another OPRF key"));
        fs::write(&key, &original[..31]).unwrap();
        assert!(reason(check(s, &Collection::ALL).unwrap_err()).contains("not a valid OPRF key"));
        fs::remove_file(&key).unwrap();
        assert!(reason(check(s, &Collection::ALL).unwrap_err()).contains("missing"));
        fs::write(&key, &original).unwrap();
        // Re-created with the umask's mode: refused until private again.
        assert!(matches!(
            check(s, &Collection::ALL),
            Err(Error::KeyPermissions { .. })
        ));
        fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(check(s, &Collection::ALL).unwrap(), []);

        // A damaged database header.
        let db = db_path(s, Collection::Credentials);
        let original = fs::read(&db).unwrap();
        let mut bad = original.clone();
        bad[12] ^= 0xff;
        fs::write(&db, &bad).unwrap();
        let e = check(s, &Collection::ALL).unwrap_err();
        assert!(e.to_string().contains("credentials.senderdb"), "{e}");
        assert!(e.to_string().contains("breach-server build"), "{e}");
        fs::remove_file(&db).unwrap();
        assert!(reason(check(s, &Collection::ALL).unwrap_err()).contains("missing"));
        fs::write(&db, &original).unwrap();

        // The store moves on: stale, still servable.
        let mut store = Store::open(s).unwrap();
        let more = s.join("more.txt");
        fs::write(&more, "carol:pw3\n").unwrap();
        crate::import::import_file(&mut store, &more, &Default::default()).unwrap();
        let stale = check(s, &Collection::ALL).unwrap();
        assert_eq!(stale.len(), 2, "{stale:?}");
        assert!(stale.iter().all(|d| d.store > d.built_from));
    }
}
