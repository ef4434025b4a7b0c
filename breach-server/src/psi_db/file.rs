//! The `.senderdb` file of a collection: everything `serve` needs for both
//! tiers, and what `build` needs to refresh them incrementally.
//!
//! # Layout (version 2)
//!
//! Integers are little-endian.
//!
//! | field | bytes |
//! | --- | --- |
//! | magic `BRCHPSI\0` | 8 |
//! | format version (`2`) | 2 |
//! | store generation the databases reflect | 8 |
//! | snapshot rows `S` | 8 |
//! | tier count `T`, then each tier's tag (`0` small, `1` full) | 1 + `T` |
//! | SHA-256 of the fields above | 32 |
//! | snapshot: `S` sorted `(item, count)` rows of the store, then their SHA-256 | `S` x 40 + 32 |
//! | each tier's sender database ([`SenderDb::save`], self-checksummed) | |
//!
//! Nothing follows the last database. The snapshot serves only incremental
//! refreshes; serving skips it (`read` with `with_snapshot = false`).
//! The file is written to a temporary file, synced, then renamed over the
//! old one, so a crash or a concurrent reader sees either the old or the
//! new file, never a mix, and both tiers always change together.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use psi_core::{OprfKey, SavedHeader, SenderDb};
use sha2::{Digest, Sha256};

use super::keys::copy_key;
use super::{Row, Tier, TierDb, sync_dir};
use crate::error::{Error, Result};
use crate::store::ITEM_LEN;

/// Magic bytes at the start of a `.senderdb` file.
const FILE_MAGIC: &[u8; 8] = b"BRCHPSI\0";
/// Version of the `.senderdb` layout.
pub(super) const FILE_VERSION: u16 = 2;
/// Bytes of one snapshot row.
const ROW_BYTES: u64 = ITEM_LEN as u64 + 8;
/// Read buffer: large sequential reads.
const READ_BUFFER: usize = 1 << 20;

/// The fixed part at the start of a file.
#[derive(Clone, Debug)]
pub(super) struct FileHeader {
    pub generation: u64,
    pub snapshot_rows: u64,
    pub tiers: Vec<Tier>,
}

/// Each tier's database header, in file order.
pub(super) type TierHeaders = Vec<(Tier, SavedHeader)>;

/// A file as read back.
pub(super) struct Saved {
    pub generation: u64,
    /// Empty unless asked for.
    pub snapshot: Vec<Row>,
    pub tiers: Vec<TierDb>,
}

fn bad(path: &Path, reason: impl Into<String>) -> Error {
    Error::BadSenderDb {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn read_io(path: &Path, e: io::Error) -> Error {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        bad(path, "file ends early (truncated)")
    } else {
        Error::io(path, e)
    }
}

fn psi(path: &Path, e: psi_core::Error) -> Error {
    match e {
        psi_core::Error::Io(m) => bad(path, format!("reading: {m}")),
        psi_core::Error::OutdatedDatabase { found, .. } => bad(
            path,
            format!(
                "written in an older format (sender database version {found}); run \
                 `breach-server build` to rebuild it"
            ),
        ),
        other => bad(path, other.to_string()),
    }
}

/// Opens the file of `path`; `None` if it does not exist.
fn open(path: &Path) -> Result<Option<BufReader<File>>> {
    match File::open(path) {
        Ok(f) => Ok(Some(BufReader::with_capacity(READ_BUFFER, f))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, e)),
    }
}

fn read_header(r: &mut impl Read, path: &Path) -> Result<FileHeader> {
    let mut fixed = [0u8; 8 + 2 + 8 + 8 + 1];
    r.read_exact(&mut fixed).map_err(|e| read_io(path, e))?;
    if &fixed[..8] != FILE_MAGIC {
        return Err(bad(path, "not a breach-server PSI database"));
    }
    let version = u16::from_le_bytes([fixed[8], fixed[9]]);
    if version != FILE_VERSION {
        return Err(bad(
            path,
            if version < FILE_VERSION {
                format!(
                    "written in an older format (version {version}); run `breach-server build` \
                     to rebuild it"
                )
            } else {
                format!("format version {version}; this build reads {FILE_VERSION}")
            },
        ));
    }
    let u64_at = |at: usize| u64::from_le_bytes(fixed[at..at + 8].try_into().expect("8 bytes"));
    let generation = u64_at(10);
    let snapshot_rows = u64_at(18);
    let count = fixed[26] as usize;
    if count == 0 || count > Tier::ALL.len() {
        return Err(bad(path, format!("{count} tiers")));
    }
    let mut tags = vec![0u8; count];
    r.read_exact(&mut tags).map_err(|e| read_io(path, e))?;
    let mut digest = [0u8; 32];
    r.read_exact(&mut digest).map_err(|e| read_io(path, e))?;
    let mut h = Sha256::new();
    h.update(fixed);
    h.update(&tags);
    if h.finalize()[..] != digest {
        return Err(bad(path, "checksum mismatch in the header"));
    }
    let tiers = tags
        .iter()
        .map(|&t| Tier::from_tag(t).ok_or_else(|| bad(path, format!("unknown tier tag {t}"))))
        .collect::<Result<Vec<_>>>()?;
    if tiers.windows(2).any(|w| w[0] >= w[1]) {
        return Err(bad(path, "tiers repeated or out of order"));
    }
    Ok(FileHeader {
        generation,
        snapshot_rows,
        tiers,
    })
}

/// The header of `path` alone (a few dozen bytes); `None` if there is no file.
pub(super) fn header(path: &Path) -> Result<Option<FileHeader>> {
    let Some(mut r) = open(path)? else {
        return Ok(None);
    };
    read_header(&mut r, path).map(Some)
}

/// The file's header and each tier's database header, without reading the
/// databases (seeks past them); `None` if there is no file.
pub(super) fn headers(path: &Path) -> Result<Option<(FileHeader, TierHeaders)>> {
    let Some(mut r) = open(path)? else {
        return Ok(None);
    };
    let header = read_header(&mut r, path)?;
    skip_snapshot(&mut r, &header, path)?;
    let mut tiers = Vec::with_capacity(header.tiers.len());
    for &tier in &header.tiers {
        let saved = SenderDb::skip_saved(&mut r).map_err(|e| psi(path, e))?;
        tiers.push((tier, saved));
    }
    Ok(Some((header, tiers)))
}

fn snapshot_bytes(header: &FileHeader, path: &Path) -> Result<u64> {
    header
        .snapshot_rows
        .checked_mul(ROW_BYTES)
        .ok_or_else(|| bad(path, "snapshot length out of range"))
}

fn skip_snapshot(r: &mut BufReader<File>, header: &FileHeader, path: &Path) -> Result<()> {
    let skip = snapshot_bytes(header, path)?
        .checked_add(32)
        .and_then(|s| i64::try_from(s).ok())
        .ok_or_else(|| bad(path, "snapshot length out of range"))?;
    r.seek(SeekFrom::Current(skip))
        .map_err(|e| Error::io(path, e))?;
    Ok(())
}

fn read_snapshot(r: &mut impl Read, header: &FileHeader, path: &Path) -> Result<Vec<Row>> {
    let len = snapshot_bytes(header, path)?;
    let mut bytes = Vec::new();
    r.by_ref()
        .take(len)
        .read_to_end(&mut bytes)
        .map_err(|e| read_io(path, e))?;
    if bytes.len() as u64 != len {
        return Err(bad(path, "file ends early (truncated)"));
    }
    let mut digest = [0u8; 32];
    r.read_exact(&mut digest).map_err(|e| read_io(path, e))?;
    if Sha256::digest(&bytes)[..] != digest {
        return Err(bad(path, "checksum mismatch in the snapshot"));
    }
    let rows: Vec<Row> = bytes
        .chunks_exact(ROW_BYTES as usize)
        .map(|c| {
            let item: [u8; ITEM_LEN] = c[..ITEM_LEN].try_into().expect("chunk size");
            let count = u64::from_le_bytes(c[ITEM_LEN..].try_into().expect("chunk size"));
            (item, count)
        })
        .collect();
    if rows.windows(2).any(|w| w[0].0 >= w[1].0) {
        return Err(bad(path, "snapshot is not sorted"));
    }
    Ok(rows)
}

/// Reads and validates the file of `path` with the collection's OPRF key:
/// every tier's database, and the snapshot when `with_snapshot`. `None`
/// if there is no file. Nothing is recomputed.
pub(super) fn read(path: &Path, key: &OprfKey, with_snapshot: bool) -> Result<Option<Saved>> {
    let Some(mut r) = open(path)? else {
        return Ok(None);
    };
    let header = read_header(&mut r, path)?;
    let snapshot = if with_snapshot {
        read_snapshot(&mut r, &header, path)?
    } else {
        skip_snapshot(&mut r, &header, path)?;
        Vec::new()
    };
    let mut tiers = Vec::with_capacity(header.tiers.len());
    for &tier in &header.tiers {
        let db = SenderDb::load_from(&mut r, copy_key(key)?).map_err(|e| psi(path, e))?;
        if db.item_count() != header.snapshot_rows {
            return Err(bad(
                path,
                format!("the {tier} tier's item count disagrees with the snapshot"),
            ));
        }
        tiers.push(TierDb { tier, db });
    }
    let mut probe = [0u8; 1];
    match r.read(&mut probe) {
        Ok(0) => {}
        Ok(_) => return Err(bad(path, "trailing bytes after the last database")),
        Err(e) => return Err(Error::io(path, e)),
    }
    Ok(Some(Saved {
        generation: header.generation,
        snapshot,
        tiers,
    }))
}

/// Writes the file of `path` (temporary file, fsync, rename, fsync of the
/// folder). The temporary file is named after the process, so a `build`
/// and a `serve` building the same collection never write into one file:
/// each renames a complete file of its own, and the last rename wins.
pub(super) fn write(path: &Path, generation: u64, rows: &[Row], tiers: &[TierDb]) -> Result<()> {
    remove_abandoned_temp_files(path);
    let tmp = path.with_extension(format!("senderdb.{}.tmp", std::process::id()));
    let write = || -> Result<()> {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| Error::io(&tmp, e))?;
        let mut w = BufWriter::with_capacity(READ_BUFFER, file);
        let mut head = Vec::new();
        head.extend_from_slice(FILE_MAGIC);
        head.extend_from_slice(&FILE_VERSION.to_le_bytes());
        head.extend_from_slice(&generation.to_le_bytes());
        head.extend_from_slice(&(rows.len() as u64).to_le_bytes());
        head.push(tiers.len() as u8);
        head.extend(tiers.iter().map(|t| t.tier.tag()));
        let io = |e: io::Error| Error::io(&tmp, e);
        w.write_all(&head).map_err(io)?;
        w.write_all(&Sha256::digest(&head)).map_err(io)?;
        let mut h = Sha256::new();
        for (item, count) in rows {
            w.write_all(item).map_err(io)?;
            w.write_all(&count.to_le_bytes()).map_err(io)?;
            h.update(item);
            h.update(count.to_le_bytes());
        }
        w.write_all(&h.finalize()).map_err(io)?;
        for t in tiers {
            t.db.save(&mut w).map_err(|e| psi(&tmp, e))?;
        }
        let file = w.into_inner().map_err(|e| io(e.into_error()))?;
        file.sync_all().map_err(io)?;
        fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
        sync_dir(path.parent().unwrap_or(Path::new("."))).map_err(|e| Error::io(path, e))
    };
    let result = write();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Removes the temporary files of `path` left by builds that died before
/// their rename (`kill -9`, out of memory, power loss): each is named
/// after its process (`<collection>.senderdb.<pid>.tmp`), and one whose
/// process no longer runs will never be finished. A file of a process that
/// still runs (a concurrent build) is left alone. Best effort: failures
/// are logged, never fatal.
fn remove_abandoned_temp_files(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return;
    };
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let prefix = format!("{name}.");
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(pid) = file_name
            .to_str()
            .and_then(|n| n.strip_prefix(&prefix))
            .and_then(|rest| rest.strip_suffix(".tmp"))
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() || Path::new("/proc").join(pid.to_string()).exists() {
            continue;
        }
        let tmp = entry.path();
        match fs::remove_file(&tmp) {
            Ok(()) => {
                tracing::info!(file = %tmp.display(), "removed the temporary file of an interrupted build")
            }
            Err(e) => {
                tracing::warn!(file = %tmp.display(), error = %e, "cannot remove the temporary file of an interrupted build")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abandoned_temp_files_are_removed_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("passwords.senderdb");
        // pid_max is at most 2^22: this process cannot exist.
        let dead = dir.path().join("passwords.senderdb.4194305.tmp");
        let live = dir
            .path()
            .join(format!("passwords.senderdb.{}.tmp", std::process::id()));
        let init = dir.path().join("passwords.senderdb.1.tmp");
        let other = dir.path().join("credentials.senderdb.4194305.tmp");
        for f in [&dead, &live, &init, &other] {
            fs::write(f, b"partial").unwrap();
        }
        remove_abandoned_temp_files(&path);
        assert!(!dead.exists());
        assert!(live.exists() && init.exists() && other.exists());
    }

    #[test]
    fn damaged_headers_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.senderdb");
        fs::write(&path, b"short").unwrap();
        assert!(header(&path).unwrap_err().to_string().contains("truncated"));
        let mut head = FILE_MAGIC.to_vec();
        head.extend_from_slice(&1u16.to_le_bytes());
        head.extend_from_slice(&[0; 17]);
        fs::write(&path, &head).unwrap();
        let e = header(&path).unwrap_err().to_string();
        assert!(e.contains("breach-server build"), "{e}");
        let mut head = FILE_MAGIC.to_vec();
        head.extend_from_slice(&FILE_VERSION.to_le_bytes());
        head.extend_from_slice(&7u64.to_le_bytes());
        head.extend_from_slice(&0u64.to_le_bytes());
        head.extend_from_slice(&[1, 1]);
        let mut bytes = head.clone();
        bytes.extend_from_slice(&Sha256::digest(&head));
        fs::write(&path, &bytes).unwrap();
        let h = header(&path).unwrap().unwrap();
        assert_eq!((h.generation, h.tiers.clone()), (7, vec![Tier::Full]));
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(&path, &bytes).unwrap();
        assert!(header(&path).unwrap_err().to_string().contains("checksum"));
        assert!(header(&dir.path().join("none")).unwrap().is_none());
    }
}
