//! The OPRF key file of each collection: `STORE/psi/<collection>.oprf-key`,
//! 32 bytes, mode 0600, created once from the OS CSPRNG.
//!
//! **One OPRF key per collection.** Keys are created on the first build
//! and never rotated by this code (delete the key file to rotate: the next
//! build then re-creates it and rebuilds that collection from scratch).
//! Separate keys keep the collections independent: an OPRF evaluation for
//! one collection says nothing about the other, and one can be rotated or
//! rebuilt alone. Both tiers of a collection share its key. Key bytes are
//! never logged.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use psi_core::OprfKey;
use zeroize::Zeroizing;

use super::{ensure_psi_dir, psi_dir, sync_dir};
use crate::error::{Error, Result};
use crate::store::Collection;

/// Path of the OPRF key file of `collection`.
pub fn key_path(store_dir: &Path, collection: Collection) -> PathBuf {
    psi_dir(store_dir).join(format!("{}.oprf-key", collection.name()))
}

/// Reads an OPRF key file; `None` if it does not exist. Refuses a key file
/// readable or writable by group or others.
pub fn read_key(path: &Path) -> Result<Option<OprfKey>> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    let mode = file
        .metadata()
        .map_err(|e| Error::io(path, e))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(Error::KeyPermissions {
            path: path.to_path_buf(),
            mode: mode & 0o777,
        });
    }
    let mut bytes = Zeroizing::new(Vec::new());
    file.read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    OprfKey::from_bytes(&bytes)
        .map(Some)
        .map_err(|_| Error::BadKeyFile {
            path: path.to_path_buf(),
        })
}

/// Reads the OPRF key of `collection`, which must exist.
pub fn existing_key(store_dir: &Path, collection: Collection) -> Result<OprfKey> {
    let path = key_path(store_dir, collection);
    read_key(&path)?.ok_or(Error::BadKeyFile { path })
}

/// Loads the OPRF key of `collection`, creating it (mode 0600, from the OS
/// CSPRNG) if there is none (see [`read_key`]).
pub fn load_or_create_key(store_dir: &Path, collection: Collection) -> Result<OprfKey> {
    ensure_psi_dir(store_dir)?;
    let path = key_path(store_dir, collection);
    if let Some(key) = read_key(&path)? {
        return Ok(key);
    }
    let key = OprfKey::generate()?;
    let tmp = path.with_extension("oprf-key.tmp");
    let _ = std::fs::remove_file(&tmp);
    let write = || -> io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(key.to_bytes().as_slice())?;
        f.sync_all()?;
        // link() fails if another process created the key meanwhile, so
        // two concurrent builds never end up with different keys.
        let linked = std::fs::hard_link(&tmp, &path);
        std::fs::remove_file(&tmp)?;
        linked?;
        sync_dir(path.parent().unwrap_or(Path::new(".")))
    };
    match write() {
        Ok(()) => {
            tracing::info!(%collection, path = %path.display(), "created OPRF key");
            Ok(key)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => read_key(&path)?
            .ok_or_else(|| Error::io(&path, io::Error::from(io::ErrorKind::NotFound))),
        Err(e) => Err(Error::io(&path, e)),
    }
}

/// A copy of a key (keys are not `Clone`, to keep copies deliberate).
pub(super) fn copy_key(key: &OprfKey) -> Result<OprfKey> {
    Ok(OprfKey::from_bytes(key.to_bytes().as_slice())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn key_is_created_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create_key(dir.path(), Collection::Credentials).unwrap();
        let path = key_path(dir.path(), Collection::Credentials);
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let b = load_or_create_key(dir.path(), Collection::Credentials).unwrap();
        assert_eq!(*a.to_bytes(), *b.to_bytes());
        let c = load_or_create_key(dir.path(), Collection::Passwords).unwrap();
        assert_ne!(*a.to_bytes(), *c.to_bytes());
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            load_or_create_key(dir.path(), Collection::Credentials),
            Err(Error::KeyPermissions { .. })
        ));
    }
}
