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
//!
//! **Sharded deployments** share one key per collection across every
//! shard: `breach-server keygen --out DIR` makes them ([`keygen`]) and
//! `build --keys DIR` copies them into each shard's store
//! ([`install_keys`]).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use breach_proto::sharding::ROUTING_KEY_LEN;
use psi_core::OprfKey;
use rand_core::TryRngCore;
use zeroize::Zeroizing;

use super::{ensure_psi_dir, psi_dir, sync_dir};
use crate::error::{Error, Result};
use crate::store::Collection;

/// Path of the OPRF key file of `collection`.
pub fn key_path(store_dir: &Path, collection: Collection) -> PathBuf {
    psi_dir(store_dir).join(key_file_name(collection))
}

/// Reads an OPRF key file; `None` if it does not exist. Refuses a key file
/// readable or writable by group or others.
pub fn read_key(path: &Path) -> Result<Option<OprfKey>> {
    let Some(bytes) = read_secret(path)? else {
        return Ok(None);
    };
    OprfKey::from_bytes(&bytes)
        .map(Some)
        .map_err(|_| Error::BadKeyFile {
            path: path.to_path_buf(),
        })
}

/// Reads a secret file (a key); `None` if it does not exist. Refuses a
/// file readable or writable by group or others.
fn read_secret(path: &Path) -> Result<Option<Zeroizing<Vec<u8>>>> {
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
    Ok(Some(bytes))
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
    match write_secret(&path, key.to_bytes().as_slice()) {
        Ok(()) => {
            tracing::info!(%collection, path = %path.display(), "created OPRF key");
            Ok(key)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => read_key(&path)?
            .ok_or_else(|| Error::io(&path, io::Error::from(io::ErrorKind::NotFound))),
        Err(e) => Err(Error::io(&path, e)),
    }
}

/// Writes a new secret file, mode 0600, durably, atomically and only if
/// `path` does not exist yet (`AlreadyExists` otherwise: link() fails if
/// another process created it meanwhile, so two concurrent writers never
/// end up with different keys).
fn write_secret(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    let written = f.write_all(bytes).and_then(|()| f.sync_all());
    drop(f);
    let linked = written.and_then(|()| std::fs::hard_link(&tmp, path));
    std::fs::remove_file(&tmp)?;
    linked?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Name of the username-routing key file written by [`keygen`].
pub const ROUTING_KEY_FILE: &str = "username-routing.key";

/// Name of a collection's OPRF key file, in a store's `psi/` folder and in
/// a [`keygen`] folder alike.
pub fn key_file_name(collection: Collection) -> String {
    format!("{}.oprf-key", collection.name())
}

/// `breach-server keygen`: creates the keys one sharded deployment shares
/// in `out` (created with mode 0700): one OPRF key per collection and the
/// username-routing key, each 32 bytes from the OS CSPRNG, mode 0600.
/// Refuses to replace an existing key (a deployment whose shards had
/// different keys would answer nothing correctly), and a folder others
/// can read. Returns the files written.
pub fn keygen(out: &Path) -> Result<Vec<PathBuf>> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(out)
        .map_err(|e| Error::io(out, e))?;
    check_private_dir(out)?;
    let mut files: Vec<(PathBuf, Zeroizing<Vec<u8>>)> = Vec::new();
    for c in Collection::ALL {
        let key = OprfKey::generate()?;
        files.push((
            out.join(key_file_name(c)),
            Zeroizing::new(key.to_bytes().to_vec()),
        ));
    }
    let mut routing = Zeroizing::new(vec![0u8; ROUTING_KEY_LEN]);
    rand_core::OsRng
        .try_fill_bytes(&mut routing)
        .map_err(|e| Error::Config(format!("OS random number generator: {e}")))?;
    files.push((out.join(ROUTING_KEY_FILE), routing));
    if let Some((path, _)) = files.iter().find(|(p, _)| p.exists()) {
        return Err(Error::io(
            path,
            io::Error::new(
                io::ErrorKind::AlreadyExists,
                "a key already exists here; keys are never replaced (use another --out folder)",
            ),
        ));
    }
    for (path, bytes) in &files {
        write_secret(path, bytes).map_err(|e| Error::io(path, e))?;
    }
    Ok(files.into_iter().map(|(p, _)| p).collect())
}

/// Refuses a folder holding keys that group or others can enter or read.
fn check_private_dir(dir: &Path) -> Result<()> {
    let mode = fs::metadata(dir)
        .map_err(|e| Error::io(dir, e))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(Error::KeyPermissions {
            path: dir.to_path_buf(),
            mode: mode & 0o777,
        });
    }
    Ok(())
}

/// The username-routing key in a [`keygen`] folder.
pub fn read_routing_key(keys_dir: &Path) -> Result<[u8; ROUTING_KEY_LEN]> {
    let path = keys_dir.join(ROUTING_KEY_FILE);
    let bytes = read_secret(&path)?.ok_or_else(|| {
        Error::io(
            &path,
            io::Error::new(
                io::ErrorKind::NotFound,
                "no username-routing key (made by `breach-server keygen`)",
            ),
        )
    })?;
    <[u8; ROUTING_KEY_LEN]>::try_from(bytes.as_slice()).map_err(|_| Error::BadKeyFile { path })
}

/// What [`install_keys`] did with one collection's key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyInstall {
    /// The store had no key; the given one was copied in.
    Installed,
    /// The store already had this key.
    Same,
    /// The store had another key, replaced (with `force`): the
    /// collection's saved databases are unusable and must be rebuilt.
    Replaced,
}

/// `build --keys DIR`: puts the shared OPRF keys of a [`keygen`] folder
/// into the store's `psi/` folder (mode 0600), where `build` and `serve`
/// read them. A store key that differs is an error unless `force`.
pub fn install_keys(
    store_dir: &Path,
    keys_dir: &Path,
    force: bool,
) -> Result<Vec<(Collection, KeyInstall)>> {
    ensure_psi_dir(store_dir)?;
    let mut done = Vec::new();
    for c in Collection::ALL {
        let given = keys_dir.join(key_file_name(c));
        let key = read_key(&given)?.ok_or_else(|| {
            Error::io(
                &given,
                io::Error::new(
                    io::ErrorKind::NotFound,
                    "no OPRF key (made by `breach-server keygen --out DIR`)",
                ),
            )
        })?;
        let path = key_path(store_dir, c);
        let action = match read_key(&path)? {
            Some(k) if *k.to_bytes() == *key.to_bytes() => KeyInstall::Same,
            Some(_) if !force => {
                return Err(Error::KeyMismatch {
                    collection: c,
                    store_key: path,
                    given,
                });
            }
            Some(_) => {
                std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
                KeyInstall::Replaced
            }
            None => KeyInstall::Installed,
        };
        if action != KeyInstall::Same {
            write_secret(&path, key.to_bytes().as_slice()).map_err(|e| Error::io(&path, e))?;
            tracing::info!(collection = %c, path = %path.display(), ?action, "installed shared OPRF key");
        }
        done.push((c, action));
    }
    Ok(done)
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
