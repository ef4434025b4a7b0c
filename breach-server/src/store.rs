//! The breach store: one SQLite database holding every breached credential
//! and password item with its occurrence count.
//!
//! A store is a directory; the database is `DIR/breach.sqlite3` in WAL mode
//! (`synchronous=NORMAL`: a killed process never loses a committed
//! transaction; a power cut may lose the last ones, but never half of one).
//!
//! # Schema (version [`SCHEMA_VERSION`])
//!
//! | table | columns |
//! | --- | --- |
//! | `meta` | `key TEXT PRIMARY KEY, value` (`schema_version`; `shard_index`, `shard_count`, `route_username_bits`, `route_key` of a sharded store; `sized_for.<collection>` from `build --expected-items`) |
//! | `credentials` | `item BLOB PRIMARY KEY` (32 bytes), `count INTEGER >= 1` |
//! | `passwords` | `item BLOB PRIMARY KEY` (32 bytes), `count INTEGER >= 1` |
//! | `generations` | `collection TEXT PRIMARY KEY, generation INTEGER` |
//! | `imports` | `content_sha256 BLOB PRIMARY KEY, file_name, format, file_bytes, byte_offset, lines, accepted, malformed, started_at, finished_at` |
//!
//! Items are produced by [`breach_proto::encoding`]. Counts are stored as
//! SQLite integers and saturate at `i64::MAX`.
//!
//! An `imports` row is written when an import starts and updated in the
//! same transaction as every batch it commits (`byte_offset`, `lines`,
//! ...), so an interrupted import resumes exactly after its last committed
//! batch. `finished_at` is set by the transaction of the last batch.
//!
//! Every transaction that changes a collection bumps that collection's
//! *generation*, so the PSI database builder can record the generation it
//! was built from and later ask [`Store::changed_since`].

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use breach_proto::sharding::{self, ShardSpec};
use rusqlite::{Connection, OptionalExtension, params};

use crate::error::{Error, Result};

/// Version of the schema this build reads and writes.
pub const SCHEMA_VERSION: i64 = 1;

/// File name of the database inside the store directory.
pub const DB_FILE_NAME: &str = "breach.sqlite3";

/// Length of a stored item (see [`breach_proto::encoding::ITEM_LEN`]).
pub const ITEM_LEN: usize = breach_proto::encoding::ITEM_LEN;

/// Username routing of credential pairs (see [`breach_proto::sharding`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsernameRouting {
    /// Bucket bits (1 to [`breach_proto::sharding::MAX_USERNAME_BITS`]).
    pub bits: u32,
    /// The HMAC key of the bucket hash (public: clients get it).
    pub key: [u8; breach_proto::sharding::ROUTING_KEY_LEN],
}

/// Where a store sits in a sharded deployment: which items it keeps.
/// The default is the single shard of an unsharded deployment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deployment {
    /// The shard.
    pub shard: ShardSpec,
    /// Username routing of credential pairs, if the deployment uses it.
    pub routing: Option<UsernameRouting>,
}

impl Default for Deployment {
    fn default() -> Self {
        Self {
            shard: ShardSpec::SINGLE,
            routing: None,
        }
    }
}

impl Deployment {
    /// Whether this shard keeps the credential pair `item` of `username`.
    pub fn keeps_credential(&self, username: &str, item: &[u8; ITEM_LEN]) -> bool {
        let n = self.shard.count;
        let shard = match &self.routing {
            Some(r) => {
                let bucket = sharding::username_bucket(&r.key, r.bits, username);
                sharding::routed_credential_shard(item, bucket, r.bits, n)
            }
            None if n == 1 => 0,
            None => sharding::item_shard(item, n),
        };
        shard == self.shard.index
    }

    /// Whether this shard keeps the password `item`.
    pub fn keeps_password(&self, item: &[u8; ITEM_LEN]) -> bool {
        self.shard.count == 1 || sharding::item_shard(item, self.shard.count) == self.shard.index
    }
}

impl fmt::Display for Deployment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.shard == ShardSpec::SINGLE {
            f.write_str("no shard (all items)")?;
        } else {
            write!(f, "shard {}", self.shard)?;
        }
        if let Some(r) = &self.routing {
            write!(f, ", credentials routed by {} username bits", r.bits)?;
        }
        Ok(())
    }
}

/// A breach collection held by the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Collection {
    /// Username + password pairs ([`breach_proto::encoding::credential_item`]).
    Credentials,
    /// Passwords alone ([`breach_proto::encoding::password_item`]).
    Passwords,
}

impl Collection {
    /// Every collection, in a fixed order.
    pub const ALL: [Collection; 2] = [Collection::Credentials, Collection::Passwords];

    /// Lower-case name, also the name of its table.
    pub fn name(self) -> &'static str {
        match self {
            Collection::Credentials => "credentials",
            Collection::Passwords => "passwords",
        }
    }
}

impl fmt::Display for Collection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl TryFrom<breach_proto::v1::Collection> for Collection {
    type Error = Error;

    fn try_from(c: breach_proto::v1::Collection) -> Result<Self> {
        match c {
            breach_proto::v1::Collection::Credentials => Ok(Collection::Credentials),
            breach_proto::v1::Collection::Passwords => Ok(Collection::Passwords),
            breach_proto::v1::Collection::Unspecified => Err(Error::UnknownCollection),
        }
    }
}

impl From<Collection> for breach_proto::v1::Collection {
    fn from(c: Collection) -> Self {
        match c {
            Collection::Credentials => breach_proto::v1::Collection::Credentials,
            Collection::Passwords => breach_proto::v1::Collection::Passwords,
        }
    }
}

/// Number of distinct items in each collection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Distinct credential pairs.
    pub credentials: u64,
    /// Distinct passwords.
    pub passwords: u64,
}

impl Counts {
    /// The count of one collection.
    pub fn get(&self, collection: Collection) -> u64 {
        match collection {
            Collection::Credentials => self.credentials,
            Collection::Passwords => self.passwords,
        }
    }
}

/// One row of the `imports` table: a file imported, or being imported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportRecord {
    /// SHA-256 of the whole file; identifies the import.
    pub content_sha256: [u8; 32],
    /// File name as given when the import started.
    pub file_name: String,
    /// Format the file was read as (`combo`, `hibp` or `csv`).
    pub format: String,
    /// Size of the file in bytes.
    pub file_bytes: u64,
    /// Byte offset up to which lines are committed.
    pub byte_offset: u64,
    /// Lines (CSV: physical lines) committed, empty lines included.
    pub lines: u64,
    /// Lines (records) accepted.
    pub accepted: u64,
    /// Lines (records) skipped as malformed.
    pub malformed: u64,
    /// Unix time (seconds) the import started.
    pub started_at: u64,
    /// Unix time (seconds) the import finished; `None` while unfinished
    /// (interrupted: re-run the import to resume it).
    pub finished_at: Option<u64>,
}

/// Progress of an import as committed with a batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Progress {
    pub byte_offset: u64,
    pub lines: u64,
    pub accepted: u64,
    pub malformed: u64,
}

/// The breach store (see the [module docs](self)).
///
/// ```
/// use breach_server::store::{Collection, Store};
/// let dir = tempfile::tempdir()?;
/// let store = Store::open(dir.path().join("store"))?;
/// assert_eq!(store.counts()?.credentials, 0);
/// assert_eq!(store.generation(Collection::Passwords)?, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Store {
    conn: Connection,
    dir: PathBuf,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").field("dir", &self.dir).finish()
    }
}

const SCHEMA: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY, value ANY NOT NULL) STRICT;
CREATE TABLE credentials (
    item BLOB PRIMARY KEY CHECK (length(item) = 32),
    count INTEGER NOT NULL CHECK (count >= 1)
) STRICT, WITHOUT ROWID;
CREATE TABLE passwords (
    item BLOB PRIMARY KEY CHECK (length(item) = 32),
    count INTEGER NOT NULL CHECK (count >= 1)
) STRICT, WITHOUT ROWID;
CREATE TABLE generations (
    collection TEXT PRIMARY KEY,
    generation INTEGER NOT NULL
) STRICT;
INSERT INTO generations (collection, generation) VALUES ('credentials', 0), ('passwords', 0);
CREATE TABLE imports (
    content_sha256 BLOB PRIMARY KEY CHECK (length(content_sha256) = 32),
    file_name TEXT NOT NULL,
    format TEXT NOT NULL,
    file_bytes INTEGER NOT NULL,
    byte_offset INTEGER NOT NULL,
    lines INTEGER NOT NULL,
    accepted INTEGER NOT NULL,
    malformed INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    finished_at INTEGER
) STRICT;
";

impl Store {
    /// Opens the store in directory `dir`, creating the directory and an
    /// empty database if needed. Fails on a database of another schema
    /// version.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let mut conn = Connection::open(dir.join(DB_FILE_NAME))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        // journal_mode returns a row, so read it rather than execute.
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::Corrupt(format!(
                "could not switch the database to WAL mode (got {mode})"
            )));
        }
        conn.pragma_update(None, "synchronous", "NORMAL")?;

        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let has_meta: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'meta')",
            [],
            |r| r.get(0),
        )?;
        if has_meta {
            let found: Option<i64> = tx
                .query_row(
                    "SELECT value FROM meta WHERE key = 'schema_version'",
                    [],
                    |r| r.get(0),
                )
                .optional()?;
            match found {
                Some(SCHEMA_VERSION) => {}
                Some(found) => {
                    return Err(Error::SchemaVersion {
                        found,
                        supported: SCHEMA_VERSION,
                    });
                }
                None => return Err(Error::Corrupt("meta has no schema_version".into())),
            }
        } else {
            tx.execute_batch(SCHEMA)?;
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)",
                [SCHEMA_VERSION],
            )?;
        }
        tx.commit()?;
        Ok(Self { conn, dir })
    }

    /// The shard this store holds, and the username routing its
    /// credential pairs were split by (see [`Deployment`]).
    pub fn deployment(&self) -> Result<Deployment> {
        let get = |key: &str| -> Result<Option<rusqlite::types::Value>> {
            Ok(self
                .conn
                .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                .optional()?)
        };
        use rusqlite::types::Value;
        let int = |key: &str| -> Result<Option<u32>> {
            match get(key)? {
                None => Ok(None),
                Some(Value::Integer(v)) => u32::try_from(v)
                    .map(Some)
                    .map_err(|_| Error::Corrupt(format!("meta {key} = {v}"))),
                Some(other) => Err(Error::Corrupt(format!("meta {key} = {other:?}"))),
            }
        };
        let shard = match (int("shard_index")?, int("shard_count")?) {
            (None, None) => ShardSpec::SINGLE,
            (Some(i), Some(n)) => ShardSpec::new(i, n).map_err(Error::Corrupt)?,
            _ => return Err(Error::Corrupt("meta has half a shard".into())),
        };
        let routing = match (int("route_username_bits")?, get("route_key")?) {
            (None, None) => None,
            (Some(bits), Some(Value::Blob(key))) => Some(UsernameRouting {
                bits,
                key: key
                    .try_into()
                    .map_err(|_| Error::Corrupt("meta route_key is not 32 bytes".into()))?,
            }),
            _ => return Err(Error::Corrupt("meta has half a username routing".into())),
        };
        Ok(Deployment { shard, routing })
    }

    /// Records the deployment this store belongs to, before its first
    /// import. Refuses to change it once set, and to shard a store that
    /// already holds data imported without one (its items would belong to
    /// other shards).
    pub fn set_deployment(&mut self, wanted: &Deployment) -> Result<()> {
        let has = self.deployment()?;
        if has == *wanted {
            return Ok(());
        }
        let mismatch = |reason: String| Error::ShardMismatch {
            store: self.dir.clone(),
            reason,
        };
        let configured = has != Deployment::default();
        if configured {
            return Err(mismatch(format!(
                "this store holds {has}; it cannot be re-imported as {wanted} (use a fresh store \
                 directory per shard)"
            )));
        }
        if !self.imports()?.is_empty() {
            return Err(mismatch(format!(
                "this store already holds data imported as {has}; import {wanted} into a fresh \
                 store directory"
            )));
        }
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('shard_index', ?1), ('shard_count', ?2)",
            params![wanted.shard.index, wanted.shard.count],
        )?;
        if let Some(r) = &wanted.routing {
            tx.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('route_username_bits', ?1), \
                 ('route_key', ?2)",
                params![r.bits, &r.key[..]],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Items the PSI parameters of `collection` are sized for (`build
    /// --expected-items`), if set.
    pub fn sized_for(&self, collection: Collection) -> Result<Option<u64>> {
        let v: Option<i64> = self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = ?1",
                [format!("sized_for.{}", collection.name())],
                |r| r.get(0),
            )
            .optional()?;
        v.map(to_u64).transpose()
    }

    /// Sets (or with `None` clears) what [`Store::sized_for`] returns.
    pub fn set_sized_for(&mut self, collection: Collection, items: Option<u64>) -> Result<()> {
        let key = format!("sized_for.{}", collection.name());
        match items {
            Some(n) => self.conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
                params![key, to_i64(n)],
            )?,
            None => self
                .conn
                .execute("DELETE FROM meta WHERE key = ?1", [key])?,
        };
        Ok(())
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of the SQLite database file.
    pub fn db_path(&self) -> PathBuf {
        self.dir.join(DB_FILE_NAME)
    }

    /// Bytes the store takes on disk (database plus WAL and shared-memory
    /// files).
    pub fn size_bytes(&self) -> Result<u64> {
        let mut total = 0;
        for suffix in ["", "-wal", "-shm"] {
            let path = self.dir.join(format!("{DB_FILE_NAME}{suffix}"));
            match std::fs::metadata(&path) {
                Ok(m) => total += m.len(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(path, e)),
            }
        }
        Ok(total)
    }

    /// Distinct items per collection. Cost: one scan of each table's index.
    pub fn counts(&self) -> Result<Counts> {
        let count = |c: Collection| -> Result<u64> {
            let n: i64 =
                self.conn
                    .query_row(&format!("SELECT COUNT(*) FROM {}", c.name()), [], |r| {
                        r.get(0)
                    })?;
            to_u64(n)
        };
        let tx = self.conn.unchecked_transaction()?;
        let counts = Counts {
            credentials: count(Collection::Credentials)?,
            passwords: count(Collection::Passwords)?,
        };
        tx.finish()?;
        Ok(counts)
    }

    /// Occurrence count of `item` in `collection`, or `None` if absent.
    pub fn lookup(&self, collection: Collection, item: &[u8; ITEM_LEN]) -> Result<Option<u64>> {
        let n: Option<i64> = self
            .conn
            .query_row(
                &format!("SELECT count FROM {} WHERE item = ?1", collection.name()),
                [&item[..]],
                |r| r.get(0),
            )
            .optional()?;
        n.map(to_u64).transpose()
    }

    /// Current generation of `collection`: 0 for a new store, bumped by
    /// every committed transaction that changed the collection.
    pub fn generation(&self, collection: Collection) -> Result<u64> {
        generation(&self.conn, collection)
    }

    /// Whether `collection` changed after generation `generation` (as
    /// returned by [`Store::generation`] or [`Store::for_each_item`]).
    pub fn changed_since(&self, collection: Collection, generation: u64) -> Result<bool> {
        Ok(self.generation(collection)? > generation)
    }

    /// Calls `f(item, count)` for every item of `collection` in ascending
    /// item (byte) order, and returns the generation of the data seen.
    ///
    /// All rows come from one read transaction (a consistent snapshot, even
    /// while an import runs in another process) and are streamed from
    /// SQLite, so memory use does not grow with the collection.
    pub fn for_each_item<F>(&self, collection: Collection, mut f: F) -> Result<u64>
    where
        F: FnMut(&[u8; ITEM_LEN], u64),
    {
        let tx = self.conn.unchecked_transaction()?;
        let generation = generation(&tx, collection)?;
        {
            let mut stmt = tx.prepare(&format!(
                "SELECT item, count FROM {} ORDER BY item",
                collection.name()
            ))?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let item = row.get_ref(0)?.as_blob().map_err(rusqlite::Error::from)?;
                let item: &[u8; ITEM_LEN] = item.try_into().map_err(|_| {
                    Error::Corrupt(format!("{collection} item of {} bytes", item.len()))
                })?;
                let count = to_u64(row.get(1)?)?;
                f(item, count);
            }
        }
        tx.finish()?;
        Ok(generation)
    }

    /// Every import recorded, finished or not, oldest first.
    pub fn imports(&self) -> Result<Vec<ImportRecord>> {
        let mut stmt = self.conn.prepare(
            "SELECT content_sha256, file_name, format, file_bytes, byte_offset, lines, \
             accepted, malformed, started_at, finished_at FROM imports \
             ORDER BY started_at, file_name",
        )?;
        let rows = stmt.query_map([], read_import_row)?;
        rows.map(|r| r?).collect()
    }

    /// The import recorded for a file content hash, if any.
    pub fn import_record(&self, content_sha256: &[u8; 32]) -> Result<Option<ImportRecord>> {
        self.conn
            .query_row(
                "SELECT content_sha256, file_name, format, file_bytes, byte_offset, lines, \
                 accepted, malformed, started_at, finished_at FROM imports \
                 WHERE content_sha256 = ?1",
                [&content_sha256[..]],
                read_import_row,
            )
            .optional()?
            .transpose()
    }

    /// Records the start of an import. If an unfinished row for the same
    /// content exists but committed nothing yet, its name and format are
    /// replaced (so a failed start, e.g. a forced wrong format, can be
    /// retried with another format); otherwise an existing row is kept.
    pub(crate) fn begin_import(
        &mut self,
        content_sha256: &[u8; 32],
        file_name: &str,
        format: &str,
        file_bytes: u64,
    ) -> Result<()> {
        self.conn.execute(
            "INSERT INTO imports (content_sha256, file_name, format, file_bytes, byte_offset, \
             lines, accepted, malformed, started_at, finished_at) \
             VALUES (?1, ?2, ?3, ?4, 0, 0, 0, 0, ?5, NULL) \
             ON CONFLICT (content_sha256) DO UPDATE SET file_name = excluded.file_name, \
             format = excluded.format \
             WHERE byte_offset = 0 AND finished_at IS NULL",
            params![
                &content_sha256[..],
                file_name,
                format,
                to_i64(file_bytes),
                to_i64(unix_now())
            ],
        )?;
        Ok(())
    }

    /// Adds one batch of counts and records the import's progress, all in
    /// one transaction; with `finished`, also marks the import finished.
    /// The batch slices must be sorted by item (for B-tree locality; not
    /// required for correctness).
    pub(crate) fn commit_batch(
        &mut self,
        content_sha256: &[u8; 32],
        credentials: &[([u8; ITEM_LEN], u64)],
        passwords: &[([u8; ITEM_LEN], u64)],
        progress: Progress,
        finished: bool,
    ) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        for (collection, items) in [
            (Collection::Credentials, credentials),
            (Collection::Passwords, passwords),
        ] {
            if items.is_empty() {
                continue;
            }
            {
                // Saturating add: SQLite would turn an overflowing sum into a
                // REAL, which the STRICT table rejects.
                let mut stmt = tx.prepare_cached(&format!(
                    "INSERT INTO {} (item, count) VALUES (?1, ?2) \
                     ON CONFLICT (item) DO UPDATE SET count = CASE \
                       WHEN count > 9223372036854775807 - excluded.count \
                       THEN 9223372036854775807 ELSE count + excluded.count END",
                    collection.name()
                ))?;
                for (item, count) in items {
                    stmt.execute(params![&item[..], to_i64(*count)])?;
                }
            }
            tx.execute(
                "UPDATE generations SET generation = generation + 1 WHERE collection = ?1",
                [collection.name()],
            )?;
        }
        let changed = tx.execute(
            "UPDATE imports SET byte_offset = ?2, lines = ?3, accepted = ?4, malformed = ?5, \
             finished_at = ?6 WHERE content_sha256 = ?1 AND finished_at IS NULL",
            params![
                &content_sha256[..],
                to_i64(progress.byte_offset),
                to_i64(progress.lines),
                to_i64(progress.accepted),
                to_i64(progress.malformed),
                finished.then(|| to_i64(unix_now())),
            ],
        )?;
        if changed != 1 {
            // Another process finished (or removed) this import meanwhile;
            // dropping the transaction rolls the batch back.
            return Err(Error::Corrupt(
                "import record vanished or was finished by another process".into(),
            ));
        }
        tx.commit()?;
        Ok(())
    }
}

fn generation(conn: &Connection, collection: Collection) -> Result<u64> {
    let g: i64 = conn.query_row(
        "SELECT generation FROM generations WHERE collection = ?1",
        [collection.name()],
        |r| r.get(0),
    )?;
    to_u64(g)
}

fn read_import_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<ImportRecord>> {
    let hash: Vec<u8> = r.get(0)?;
    let finished_at: Option<i64> = r.get(9)?;
    let ints = [
        r.get::<_, i64>(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
    ];
    let file_name: String = r.get(1)?;
    let format: String = r.get(2)?;
    Ok((|| {
        let content_sha256 = hash
            .as_slice()
            .try_into()
            .map_err(|_| Error::Corrupt("import hash is not 32 bytes".into()))?;
        let [
            file_bytes,
            byte_offset,
            lines,
            accepted,
            malformed,
            started_at,
        ] = ints.map(to_u64);
        Ok(ImportRecord {
            content_sha256,
            file_name,
            format,
            file_bytes: file_bytes?,
            byte_offset: byte_offset?,
            lines: lines?,
            accepted: accepted?,
            malformed: malformed?,
            started_at: started_at?,
            finished_at: finished_at.map(to_u64).transpose()?,
        })
    })())
}

fn to_u64(n: i64) -> Result<u64> {
    u64::try_from(n).map_err(|_| Error::Corrupt(format!("negative value {n}")))
}

/// Saturating conversion for values written to SQLite.
fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_creates_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b");
        {
            let store = Store::open(&path).unwrap();
            assert_eq!(store.counts().unwrap(), Counts::default());
        }
        assert!(path.join(DB_FILE_NAME).exists());
        let store = Store::open(&path).unwrap();
        assert_eq!(store.generation(Collection::Credentials).unwrap(), 0);
        assert!(store.imports().unwrap().is_empty());
    }

    #[test]
    fn rejects_other_schema_version() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path()).unwrap());
        let conn = Connection::open(dir.path().join(DB_FILE_NAME)).unwrap();
        conn.execute(
            "UPDATE meta SET value = 99 WHERE key = 'schema_version'",
            [],
        )
        .unwrap();
        drop(conn);
        assert!(matches!(
            Store::open(dir.path()),
            Err(Error::SchemaVersion {
                found: 99,
                supported: 1
            })
        ));
    }

    #[test]
    fn batches_add_bump_generation_and_iterate_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let h = [7u8; 32];
        store.begin_import(&h, "f", "combo", 10).unwrap();
        let a = [1u8; 32];
        let b = [2u8; 32];
        let p = Progress {
            byte_offset: 5,
            lines: 1,
            accepted: 1,
            malformed: 0,
        };
        store
            .commit_batch(&h, &[(b, 1), (a, 2)], &[], p, false)
            .unwrap();
        assert_eq!(store.generation(Collection::Credentials).unwrap(), 1);
        assert_eq!(store.generation(Collection::Passwords).unwrap(), 0);
        assert!(store.changed_since(Collection::Credentials, 0).unwrap());
        assert!(!store.changed_since(Collection::Credentials, 1).unwrap());
        store
            .commit_batch(&h, &[(a, u64::MAX)], &[(b, 3)], p, true)
            .unwrap();
        assert_eq!(
            store.lookup(Collection::Credentials, &a).unwrap(),
            Some(i64::MAX as u64),
            "counts saturate"
        );
        assert_eq!(store.lookup(Collection::Passwords, &b).unwrap(), Some(3));
        assert_eq!(store.lookup(Collection::Passwords, &a).unwrap(), None);
        let mut seen = Vec::new();
        let g = store
            .for_each_item(Collection::Credentials, |item, count| {
                seen.push((*item, count))
            })
            .unwrap();
        assert_eq!(g, 2);
        assert_eq!(seen, vec![(a, i64::MAX as u64), (b, 1)]);
        let rec = store.import_record(&h).unwrap().unwrap();
        assert!(rec.finished_at.is_some());
        // A finished import takes no more batches.
        assert!(store.commit_batch(&h, &[], &[], p, false).is_err());
    }

    #[test]
    fn proto_collection_conversion() {
        use breach_proto::v1::Collection as P;
        assert_eq!(
            Collection::try_from(P::Passwords).unwrap(),
            Collection::Passwords
        );
        assert!(Collection::try_from(P::Unspecified).is_err());
        assert_eq!(P::from(Collection::Credentials), P::Credentials);
    }
}
