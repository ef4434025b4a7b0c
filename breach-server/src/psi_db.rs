//! PSI sender databases built from the store: one per collection, each
//! item labeled with its breach count ([`Label`]).
//!
//! # Files
//!
//! Everything lives in `STORE/psi/` (mode 0700):
//!
//! | file | contents |
//! | --- | --- |
//! | `<collection>.oprf-key` | the collection's 32-byte OPRF key, mode 0600 |
//! | `<collection>.senderdb` | the built database (see below) |
//!
//! **One OPRF key per collection.** Keys are created once, on the first
//! build, and never rotated by this code (delete the key file to rotate:
//! the next build then re-creates it and rebuilds that collection from
//! scratch; clients notice nothing but a new parameter fingerprint only if
//! the parameters changed, since OPRF outputs are not visible to them
//! beyond their own items). Separate keys keep the collections independent:
//! an OPRF evaluation for one collection says nothing about the other, and
//! one can be rotated or rebuilt alone. Key bytes are never logged.
//!
//! A `.senderdb` file is `BRCHPSI\0`, a `u16` version, the store generation
//! it was built from, the sorted `(item, count)` snapshot it was built
//! from, the [`SenderDb::save`] bytes, and a SHA-256 of all of that. It is
//! written to a temporary file, synced, then renamed over the old one, so
//! a crash leaves either the old or the new database.
//!
//! # Staleness and incremental refresh
//!
//! A database is *stale* when the store's [generation](Store::generation)
//! of its collection differs from the one recorded in the file. Refreshing
//! a stale database is incremental when the parameters chosen for the new
//! size are the parameters in use:
//!
//! - the store is read once and merged against the snapshot;
//! - only new and re-counted items are OPRF-hashed and get a freshly
//!   encrypted label, items gone from the store are removed;
//! - only the bin bundles those items touch have their polynomials
//!   recomputed.
//!
//! What is *not* incremental: loading a saved database recomputes the
//! polynomials of every bundle (the file holds OPRF'd items and encrypted
//! labels, not plaintexts), so every `build` or `serve` start costs one
//! pass over all bundles, but never the OPRF of every item. A change of
//! parameters (the collection grew past what they hold), a missing or
//! unreadable database, a different OPRF key or `--force` rebuild the
//! collection from scratch. An up-to-date collection is left alone.

use std::fs::{self, File, OpenOptions};
use std::io::{self, IsTerminal, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use breach_proto::encoding::Label;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use psi_core::{OprfKey, PsiParams, SenderDb, SenderDbStats};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::store::{Collection, ITEM_LEN, Store};

/// Folder of the PSI files inside the store directory.
pub const PSI_DIR_NAME: &str = "psi";
/// Extension of a saved database file (`<collection>.senderdb`).
pub const DB_FILE_EXTENSION: &str = "senderdb";
/// Magic bytes at the start of a `.senderdb` file.
const FILE_MAGIC: &[u8; 8] = b"BRCHPSI\0";
/// Version of the `.senderdb` layout.
const FILE_VERSION: u16 = 1;
/// Items OPRF-hashed per progress-bar step.
const PREPARE_CHUNK: usize = 4096;

/// One `(item, count)` row of the store, as the database was built from.
type Row = ([u8; ITEM_LEN], u64);

/// Items one query may hold: a password-manager vault of a few hundred
/// entries fits one query per collection.
pub const RECEIVER_ITEMS: u64 = 1024;

/// The PSI parameters for `collection` holding `item_count` items: the
/// smallest shipped preset of `psi-core` covering the collection size,
/// queries of [`RECEIVER_ITEMS`] items and 8-byte labels
/// ([`Label::V1_LEN`]), i.e. `PsiParams::for_sizes`, with the label length
/// then set to exactly 8 bytes (fewer label field elements to evaluate and
/// download than the preset's 16). When a collection
/// grows past its preset, the next build picks a larger one and rebuilds
/// that collection in full.
pub fn choose_params(collection: Collection, item_count: u64) -> Result<PsiParams> {
    let _ = collection;
    let mut params = PsiParams::for_sizes(item_count, RECEIVER_ITEMS, Label::V1_LEN)?;
    params.label_byte_count = Label::V1_LEN;
    params.validate_for_sizes(RECEIVER_ITEMS, item_count)?;
    Ok(params)
}

/// The PSI folder of a store directory.
pub fn psi_dir(store_dir: &Path) -> PathBuf {
    store_dir.join(PSI_DIR_NAME)
}

/// Path of the OPRF key file of `collection`.
pub fn key_path(store_dir: &Path, collection: Collection) -> PathBuf {
    psi_dir(store_dir).join(format!("{}.oprf-key", collection.name()))
}

/// Path of the saved sender database of `collection`.
pub fn db_path(store_dir: &Path, collection: Collection) -> PathBuf {
    psi_dir(store_dir).join(format!("{}.{DB_FILE_EXTENSION}", collection.name()))
}

fn ensure_psi_dir(store_dir: &Path) -> Result<PathBuf> {
    let dir = psi_dir(store_dir);
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| Error::io(&dir, e))?;
    Ok(dir)
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
    let _ = fs::remove_file(&tmp);
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
        let linked = fs::hard_link(&tmp, &path);
        fs::remove_file(&tmp)?;
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

/// A saved database's header facts and, loaded with its key, its sizes.
#[derive(Clone, Debug)]
pub struct SavedDb {
    /// Header facts.
    pub info: SavedInfo,
    /// Sizes of the loaded database ([`SenderDb::stats`]).
    pub stats: SenderDbStats,
}

/// Loads the saved database of `collection` without changing anything
/// (no key is created, nothing is rebuilt) to report its sizes. `None`
/// when there is no saved database. Cost: recomputing every bundle.
pub fn inspect(store_dir: &Path, collection: Collection) -> Result<Option<SavedDb>> {
    let Some(info) = saved_info(store_dir, collection)? else {
        return Ok(None);
    };
    let kp = key_path(store_dir, collection);
    let key = read_key(&kp)?.ok_or(Error::BadKeyFile { path: kp })?;
    let saved =
        read_saved(&db_path(store_dir, collection), &key, false, collection)?.ok_or_else(|| {
            Error::BadSenderDb {
                path: db_path(store_dir, collection),
                reason: "disappeared while being read".into(),
            }
        })?;
    Ok(Some(SavedDb {
        info,
        stats: saved.db.stats(),
    }))
}

/// Loads the saved database of `collection` exactly as it is on disk: no
/// store access, nothing built or refreshed (what a serving process does
/// when a new generation appears). `None` when there is no saved database.
pub fn load(store_dir: &Path, collection: Collection) -> Result<Option<CollectionDb>> {
    let path = db_path(store_dir, collection);
    if !path.exists() {
        return Ok(None);
    }
    let kp = key_path(store_dir, collection);
    let key = read_key(&kp)?.ok_or(Error::BadKeyFile { path: kp })?;
    Ok(
        read_saved(&path, &key, false, collection)?.map(|s| CollectionDb {
            collection,
            db: s.db,
            generation: s.generation,
        }),
    )
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// A loaded sender database and the store generation it reflects.
#[derive(Debug)]
pub struct CollectionDb {
    /// The collection.
    pub collection: Collection,
    /// The PSI sender database, ready to answer.
    pub db: SenderDb,
    /// Store generation of the collection the database was built from.
    pub generation: u64,
}

/// What [`refresh`] did to a collection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BuildAction {
    /// The saved database matched the store's generation; loaded as is.
    UpToDate,
    /// Built from every item of the store.
    Full {
        /// Why a full build was needed.
        reason: String,
    },
    /// Applied the store's changes to the saved database.
    Incremental {
        /// Items new in the store.
        added: u64,
        /// Items whose count changed.
        updated: u64,
        /// Items no longer in the store.
        removed: u64,
    },
}

/// Report of one [`refresh`].
#[derive(Clone, Debug)]
pub struct BuildReport {
    /// The collection.
    pub collection: Collection,
    /// What was done.
    pub action: BuildAction,
    /// Store generation the database now reflects.
    pub generation: u64,
    /// Sizes of the database.
    pub stats: SenderDbStats,
    /// Bytes of the saved file.
    pub file_bytes: u64,
    /// Wall time spent.
    pub elapsed: Duration,
}

/// How [`refresh`] runs.
#[derive(Clone, Copy, Debug, Default)]
pub struct BuildOptions {
    /// Draw progress bars on stderr (only when it is a terminal).
    pub progress: bool,
    /// Rebuild from scratch even if the database is up to date.
    pub force: bool,
}

/// A saved database as read back.
struct Saved {
    generation: u64,
    snapshot: Vec<Row>,
    db: SenderDb,
}

/// Brings the sender database of `collection` up to date with the store
/// (see the [module docs](self) for what is incremental), saves it if it
/// changed, and returns it loaded.
///
/// Cost: reading the saved database recomputes all its bundles; a stale
/// one additionally costs a scan of the collection and the OPRF of every
/// changed item (every item on a full build).
pub fn refresh(
    store: &Store,
    collection: Collection,
    options: &BuildOptions,
) -> Result<(CollectionDb, BuildReport)> {
    let start = Instant::now();
    let dir = store.dir();
    let key = load_or_create_key(dir, collection)?;
    let path = db_path(dir, collection);
    let saved = if options.force {
        None
    } else {
        match read_saved(&path, &key, options.progress, collection) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(%collection, error = %e, "saved PSI database unusable; rebuilding it");
                None
            }
        }
    };
    let store_generation = store.generation(collection)?;
    if let Some(s) = &saved
        && s.generation == store_generation
    {
        let saved = saved.expect("checked Some above");
        let report = BuildReport {
            collection,
            action: BuildAction::UpToDate,
            generation: saved.generation,
            stats: saved.db.stats(),
            file_bytes: file_len(&path),
            elapsed: start.elapsed(),
        };
        let cdb = CollectionDb {
            collection,
            db: saved.db,
            generation: saved.generation,
        };
        return Ok((cdb, report));
    }

    let mut rows: Vec<Row> = Vec::new();
    let generation = store.for_each_item(collection, |item, count| rows.push((*item, count)))?;
    let params = choose_params(collection, rows.len() as u64)?;

    let (db, action) = match saved {
        Some(s) if s.db.params() == &params => {
            let mut db = s.db;
            let (added, updated, removed) =
                apply_changes(&mut db, &s.snapshot, &rows, options.progress, collection)?;
            (
                db,
                BuildAction::Incremental {
                    added,
                    updated,
                    removed,
                },
            )
        }
        other => {
            let reason = match other {
                _ if options.force => "forced".to_string(),
                Some(_) => "parameters changed".to_string(),
                None if path.exists() => "saved database unusable".to_string(),
                None => "no saved database".to_string(),
            };
            let mut db = SenderDb::new(params, key)?;
            insert_rows(&mut db, &rows, options.progress, collection)?;
            regenerate(&mut db, options.progress, collection)?;
            (db, BuildAction::Full { reason })
        }
    };
    write_saved(&path, generation, &rows, &db)?;
    let report = BuildReport {
        collection,
        action,
        generation,
        stats: db.stats(),
        file_bytes: file_len(&path),
        elapsed: start.elapsed(),
    };
    tracing::info!(
        %collection,
        generation,
        items = report.stats.items,
        bundles = report.stats.bundles,
        action = ?report.action,
        "PSI database saved"
    );
    Ok((
        CollectionDb {
            collection,
            db,
            generation,
        },
        report,
    ))
}

/// Whether the saved database of `collection` is missing or older than the
/// store (cheap: reads only the file header).
pub fn is_stale(store: &Store, collection: Collection) -> Result<bool> {
    let path = db_path(store.dir(), collection);
    let mut header = [0u8; FILE_MAGIC.len() + 2 + 8];
    let read = File::open(&path).and_then(|mut f| f.read_exact(&mut header));
    match read {
        Ok(()) => {}
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::UnexpectedEof
            ) =>
        {
            return Ok(true);
        }
        Err(e) => return Err(Error::io(&path, e)),
    }
    if &header[..8] != FILE_MAGIC || header[8..10] != FILE_VERSION.to_le_bytes() {
        return Ok(true);
    }
    let generation = u64::from_le_bytes(header[10..18].try_into().expect("8 bytes"));
    Ok(generation != store.generation(collection)?)
}

/// Header facts of a saved database, without loading it.
#[derive(Clone, Debug)]
pub struct SavedInfo {
    /// Store generation it was built from.
    pub generation: u64,
    /// Items in it.
    pub items: u64,
    /// The parameters it uses.
    pub params: PsiParams,
    /// Bytes of the file.
    pub file_bytes: u64,
}

/// Reads the header of the saved database of `collection`, if any
/// (checks the file's checksum; does not need the OPRF key).
pub fn saved_info(store_dir: &Path, collection: Collection) -> Result<Option<SavedInfo>> {
    let path = db_path(store_dir, collection);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(&path, e)),
    };
    let parsed = parse_file(&bytes).map_err(|reason| Error::BadSenderDb {
        path: path.clone(),
        reason,
    })?;
    // The SenderDb bytes: magic(8) version(2) then a length-prefixed params blob.
    let params = (|| {
        let mut r = psi_core::wire::Reader::new(parsed.db_bytes);
        r.take(8)?;
        r.u16()?;
        let wire = r.bytes(1 << 16)?;
        <PsiParams as psi_core::wire::Codec>::from_wire(wire)
    })()
    .map_err(|e| Error::BadSenderDb {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    Ok(Some(SavedInfo {
        generation: parsed.generation,
        items: parsed.snapshot_len,
        params,
        file_bytes: bytes.len() as u64,
    }))
}

#[derive(Debug)]
struct ParsedFile<'a> {
    generation: u64,
    snapshot_len: u64,
    snapshot: &'a [u8],
    db_bytes: &'a [u8],
}

fn parse_file(bytes: &[u8]) -> std::result::Result<ParsedFile<'_>, String> {
    const HEAD: usize = 8 + 2 + 8 + 8;
    if bytes.len() < HEAD + 32 {
        return Err("file too short".into());
    }
    let (body, digest) = bytes.split_at(bytes.len() - 32);
    if Sha256::digest(body)[..] != *digest {
        return Err("checksum mismatch".into());
    }
    if &body[..8] != FILE_MAGIC {
        return Err("not a breach-server PSI database".into());
    }
    let version = u16::from_le_bytes([body[8], body[9]]);
    if version != FILE_VERSION {
        return Err(format!(
            "format version {version}, this build reads {FILE_VERSION}"
        ));
    }
    let generation = u64::from_le_bytes(body[10..18].try_into().expect("8 bytes"));
    let snapshot_len = u64::from_le_bytes(body[18..26].try_into().expect("8 bytes"));
    let row = (ITEM_LEN + 8) as u64;
    let snap_bytes = snapshot_len
        .checked_mul(row)
        .filter(|&b| b <= (body.len() - HEAD) as u64)
        .ok_or("snapshot length exceeds the file")? as usize;
    Ok(ParsedFile {
        generation,
        snapshot_len,
        snapshot: &body[HEAD..HEAD + snap_bytes],
        db_bytes: &body[HEAD + snap_bytes..],
    })
}

fn read_saved(
    path: &Path,
    key: &OprfKey,
    progress: bool,
    collection: Collection,
) -> Result<Option<Saved>> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    let bad = |reason: String| Error::BadSenderDb {
        path: path.to_path_buf(),
        reason,
    };
    let parsed = parse_file(&bytes).map_err(bad)?;
    let snapshot: Vec<Row> = parsed
        .snapshot
        .chunks_exact(ITEM_LEN + 8)
        .map(|c| {
            let item: [u8; ITEM_LEN] = c[..ITEM_LEN].try_into().expect("chunk size");
            let count = u64::from_le_bytes(c[ITEM_LEN..].try_into().expect("chunk size"));
            (item, count)
        })
        .collect();
    if snapshot.windows(2).any(|w| w[0].0 >= w[1].0) {
        return Err(bad("snapshot is not sorted".into()));
    }
    let bar = spinner(
        progress,
        format!("{collection}: loading saved PSI database"),
    );
    let key = copy_key(key)?;
    let db = SenderDb::load(parsed.db_bytes, key)?;
    bar.finish_and_clear();
    if db.stats().items != snapshot.len() as u64 {
        return Err(bad(
            "snapshot and database disagree on the item count".into()
        ));
    }
    Ok(Some(Saved {
        generation: parsed.generation,
        snapshot,
        db,
    }))
}

fn copy_key(key: &OprfKey) -> Result<OprfKey> {
    Ok(OprfKey::from_bytes(key.to_bytes().as_slice())?)
}

fn write_saved(path: &Path, generation: u64, rows: &[Row], db: &SenderDb) -> Result<()> {
    let mut body = Vec::with_capacity(26 + rows.len() * (ITEM_LEN + 8));
    body.extend_from_slice(FILE_MAGIC);
    body.extend_from_slice(&FILE_VERSION.to_le_bytes());
    body.extend_from_slice(&generation.to_le_bytes());
    body.extend_from_slice(&(rows.len() as u64).to_le_bytes());
    for (item, count) in rows {
        body.extend_from_slice(item);
        body.extend_from_slice(&count.to_le_bytes());
    }
    db.save(&mut body)?;
    let digest = Sha256::digest(&body);
    let tmp = path.with_extension("senderdb.tmp");
    let write = || -> io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&body)?;
        f.write_all(&digest)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        sync_dir(path.parent().unwrap_or(Path::new(".")))
    };
    write().map_err(|e| Error::io(path, e))
}

fn file_len(path: &Path) -> u64 {
    fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

fn label(count: u64) -> [u8; Label::V1_LEN] {
    Label { count }.to_bytes()
}

/// OPRF-hashes `rows` with their labels and inserts them, in chunks so the
/// progress bar moves.
fn insert_rows(
    db: &mut SenderDb,
    rows: &[Row],
    progress: bool,
    collection: Collection,
) -> Result<()> {
    let bar = bar(
        progress,
        rows.len() as u64,
        format!("{collection}: OPRF + labels"),
    );
    for chunk in rows.chunks(PREPARE_CHUNK) {
        let items: Vec<(&[u8], Option<[u8; Label::V1_LEN]>)> = chunk
            .iter()
            .map(|(item, count)| (item.as_slice(), Some(label(*count))))
            .collect();
        let prepared = db.prepare(&items)?;
        db.insert_prepared(prepared)?;
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    Ok(())
}

fn regenerate(db: &mut SenderDb, progress: bool, collection: Collection) -> Result<()> {
    let bar = bar(progress, 0, format!("{collection}: bin bundles"));
    db.regenerate(|done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })?;
    bar.finish_and_clear();
    Ok(())
}

/// Applies the difference between `old` (what `db` holds) and `new` (the
/// store now), both sorted by item. Returns (added, updated, removed).
fn apply_changes(
    db: &mut SenderDb,
    old: &[Row],
    new: &[Row],
    progress: bool,
    collection: Collection,
) -> Result<(u64, u64, u64)> {
    let mut upserts: Vec<Row> = Vec::new();
    let mut removed: Vec<&[u8]> = Vec::new();
    let (mut added, mut updated) = (0u64, 0u64);
    let (mut i, mut j) = (0, 0);
    while i < old.len() || j < new.len() {
        match (old.get(i), new.get(j)) {
            (Some(o), Some(n)) if o.0 == n.0 => {
                if o.1 != n.1 {
                    upserts.push(*n);
                    updated += 1;
                }
                i += 1;
                j += 1;
            }
            (Some(o), Some(n)) if o.0 < n.0 => {
                removed.push(&o.0);
                i += 1;
            }
            (Some(o), None) => {
                removed.push(&o.0);
                i += 1;
            }
            (_, Some(n)) => {
                upserts.push(*n);
                added += 1;
                j += 1;
            }
            (None, None) => unreachable!("loop condition"),
        }
    }
    let removed_count = removed.len() as u64;
    if !removed.is_empty() {
        // `remove` regenerates the bundles it touched itself.
        db.remove(&removed)?;
    }
    insert_rows(db, &upserts, progress, collection)?;
    regenerate(db, progress, collection)?;
    Ok((added, updated, removed_count))
}

fn bar(wanted: bool, len: u64, message: String) -> ProgressBar {
    if !wanted || !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "{msg} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} (eta {eta})",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(message);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn spinner(wanted: bool, message: String) -> ProgressBar {
    if !wanted || !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_message(message);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_are_valid_and_labeled_for_counts() {
        let p = choose_params(Collection::Passwords, 5000).unwrap();
        assert_eq!(p.label_byte_count, Label::V1_LEN);
        p.validate().unwrap();
    }

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

    #[test]
    fn corrupt_files_are_rejected() {
        assert!(parse_file(b"short").is_err());
        let mut body = FILE_MAGIC.to_vec();
        body.extend_from_slice(&FILE_VERSION.to_le_bytes());
        body.extend_from_slice(&7u64.to_le_bytes());
        body.extend_from_slice(&u64::MAX.to_le_bytes());
        let mut bytes = body.clone();
        bytes.extend_from_slice(&Sha256::digest(&body));
        assert!(parse_file(&bytes).unwrap_err().contains("snapshot length"));
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert!(parse_file(&bytes).unwrap_err().contains("checksum"));
    }
}
