//! PSI sender databases built from the store: one file per collection,
//! holding the collection in two tiers, each item labeled with its breach
//! count ([`Label`]).
//!
//! # Tiers
//!
//! Every collection is served with two parameter sets built from the same
//! OPRF-hashed items (each item is OPRF-hashed once and inserted into
//! both): [`Tier::Small`] for queries of [`SMALL_RECEIVER_ITEMS`] item
//! (one password: small, fast queries) and [`Tier::Full`] for queries of
//! up to [`RECEIVER_ITEMS`] items (a vault). Clients pick the smallest
//! tier that fits; a query says which tier it was built for by its
//! parameter fingerprint ([`CollectionDb::tier_for_fingerprint`]).
//!
//! # Files
//!
//! Everything lives in `STORE/psi/` (mode 0700):
//!
//! | file | contents | module |
//! | --- | --- | --- |
//! | `<collection>.oprf-key` | the collection's 32-byte OPRF key, mode 0600 | [`keys`](mod@keys) |
//! | `<collection>.senderdb` | generation, snapshot and both tiers' databases | [`file`](mod@file) |
//!
//! [`refresh`] (module `refresh`) brings a collection's file up to date
//! with the store; [`load`] only reads it (what `serve` does, in seconds:
//! the file holds every bundle's plaintexts, nothing is recomputed).
//!
//! # Staleness and incremental refresh
//!
//! A database is *stale* when the store's [generation](Store::generation)
//! of its collection differs from the one recorded in the file. Refreshing
//! a stale database is incremental when the parameters chosen for the new
//! size are the parameters in use for both tiers:
//!
//! - the store is read once and merged against the snapshot;
//! - only new and re-counted items are OPRF-hashed (once for both tiers)
//!   and get a freshly encrypted label, items gone from the store are
//!   removed;
//! - only the bin bundles those items touch have their polynomials
//!   recomputed.
//!
//! A change of parameters (the collection grew past what they hold), a
//! missing or unreadable file (an older format included), a different OPRF
//! key or `--force` rebuild the collection from scratch. An up-to-date
//! collection is only read.

pub mod file;
pub mod keys;
mod progress;
mod refresh;
pub mod servable;

use std::fmt;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use breach_proto::encoding::Label;
use psi_core::{OprfRequest, OprfResponse, PsiParams, SavedHeader, SenderDb};

pub use keys::{
    KeyInstall, ROUTING_KEY_FILE, existing_key, install_keys, key_file_name, key_path, keygen,
    load_or_create_key, read_key, read_routing_key,
};
pub use refresh::{BuildAction, BuildOptions, BuildReport, TierReport, refresh};

use crate::error::{Error, Result};
use crate::store::{Collection, ITEM_LEN, Store};

/// Folder of the PSI files inside the store directory.
pub const PSI_DIR_NAME: &str = "psi";

/// One `(item, count)` row of the store, as the database was built from.
type Row = ([u8; ITEM_LEN], u64);

/// Items one query of the full tier may hold: a password-manager vault of
/// a few hundred entries fits one query per collection.
pub const RECEIVER_ITEMS: u64 = 1024;

/// Items one query of the small tier may hold. The small presets
/// (`64K-1-16`, `1M-1-16`, `16M-1-16`) use one hash function: the receiver
/// places each item in its one bin, so two items can collide and only a
/// single item is guaranteed to fit.
pub const SMALL_RECEIVER_ITEMS: u64 = 1;

/// A parameter tier of a collection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tier {
    /// Queries of [`SMALL_RECEIVER_ITEMS`] item (a single password).
    Small,
    /// Queries of up to [`RECEIVER_ITEMS`] items (a vault).
    Full,
}

impl Tier {
    /// Every tier, smallest first.
    pub const ALL: [Tier; 2] = [Tier::Small, Tier::Full];

    /// Its name (`small`, `full`), as announced in `GetParameters`.
    pub fn name(self) -> &'static str {
        match self {
            Tier::Small => "small",
            Tier::Full => "full",
        }
    }

    /// Most items one query of this tier may hold.
    pub fn max_query_items(self) -> u64 {
        match self {
            Tier::Small => SMALL_RECEIVER_ITEMS,
            Tier::Full => RECEIVER_ITEMS,
        }
    }

    fn tag(self) -> u8 {
        match self {
            Tier::Small => 0,
            Tier::Full => 1,
        }
    }

    fn from_tag(tag: u8) -> Option<Self> {
        match tag {
            0 => Some(Tier::Small),
            1 => Some(Tier::Full),
            _ => None,
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The PSI parameters of `tier` for `collection` holding `item_count`
/// items: the smallest shipped preset of `psi-core` covering the
/// collection size, queries of [`Tier::max_query_items`] items and 8-byte
/// labels ([`Label::V1_LEN`]), i.e. `PsiParams::for_sizes`, with the label
/// length then set to exactly 8 bytes (fewer label field elements to
/// evaluate and download than the preset's 16). When a collection grows
/// past its preset, the next build picks a larger one and rebuilds that
/// collection in full.
pub fn choose_params(collection: Collection, tier: Tier, item_count: u64) -> Result<PsiParams> {
    let _ = collection;
    let receiver = tier.max_query_items();
    let mut params = PsiParams::for_sizes(item_count, receiver, Label::V1_LEN)?;
    params.label_byte_count = Label::V1_LEN;
    params.validate_for_sizes(receiver, item_count)?;
    Ok(params)
}

/// One tier's database.
#[derive(Debug)]
pub struct TierDb {
    /// The tier.
    pub tier: Tier,
    /// Its sender database, ready to answer.
    pub db: SenderDb,
}

/// A collection's loaded databases (every tier) and the store generation
/// they reflect.
#[derive(Debug)]
pub struct CollectionDb {
    /// The collection.
    pub collection: Collection,
    /// Store generation of the collection the databases were built from.
    pub generation: u64,
    /// Its tiers, smallest first (at least one).
    pub tiers: Vec<TierDb>,
}

impl CollectionDb {
    /// The database of `tier`, if served.
    pub fn tier(&self, tier: Tier) -> Option<&TierDb> {
        self.tiers.iter().find(|t| t.tier == tier)
    }

    /// The tier whose parameters have this fingerprint (a query carries
    /// the fingerprint of the parameters it was built for).
    pub fn tier_for_fingerprint(&self, fingerprint: &[u8]) -> Option<&TierDb> {
        self.tiers
            .iter()
            .find(|t| t.db.params().fingerprint().as_slice() == fingerprint)
    }

    /// Evaluates blinded OPRF elements (every tier shares the collection's
    /// OPRF key).
    pub fn evaluate_oprf(&self, request: &OprfRequest) -> Result<OprfResponse> {
        let first = self
            .tiers
            .first()
            .ok_or_else(|| Error::Config(format!("collection {} has no tier", self.collection)))?;
        Ok(first.db.evaluate_oprf(request)?)
    }

    /// Distinct items (the same in every tier).
    pub fn items(&self) -> u64 {
        self.tiers.first().map_or(0, |t| t.db.item_count())
    }

    /// Sets the `breach_db_*` gauges of this collection (no-ops without a
    /// metrics recorder).
    fn record_metrics(&self) {
        let collection = self.collection.name();
        metrics::gauge!("breach_db_generation", "collection" => collection)
            .set(self.generation as f64);
        for t in &self.tiers {
            metrics::gauge!("breach_db_items", "collection" => collection, "tier" => t.tier.name())
                .set(t.db.item_count() as f64);
        }
    }
}

/// The PSI folder of a store directory.
pub fn psi_dir(store_dir: &Path) -> PathBuf {
    store_dir.join(PSI_DIR_NAME)
}

/// Extension of a saved database file (`<collection>.senderdb`).
pub const DB_FILE_EXTENSION: &str = "senderdb";

/// Path of the saved databases of `collection`.
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

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Loads the saved databases of `collection` as they are: reads and
/// validates the file (header, every tier's bundles and plaintexts), with
/// no store scan, no OPRF and no recomputation. `Ok(None)` when the
/// collection has no saved file. For `serve`, and for loading a new
/// generation beside the one being served. Logs the load time and sets
/// the `breach_db_*` gauges.
pub fn load(store_dir: &Path, collection: Collection) -> Result<Option<CollectionDb>> {
    let started = Instant::now();
    let path = db_path(store_dir, collection);
    if file::header(&path)?.is_none() {
        return Ok(None);
    }
    let key = existing_key(store_dir, collection)?;
    let Some(saved) = file::read(&path, &key, false)? else {
        return Ok(None);
    };
    let db = CollectionDb {
        collection,
        generation: saved.generation,
        tiers: saved.tiers,
    };
    loaded(&db, started);
    Ok(Some(db))
}

/// Logs and records a database just loaded.
fn loaded(db: &CollectionDb, started: Instant) {
    let elapsed = started.elapsed();
    tracing::info!(
        collection = %db.collection,
        generation = db.generation,
        items = db.items(),
        tiers = db.tiers.len(),
        elapsed = ?elapsed,
        "PSI databases loaded"
    );
    db.record_metrics();
    metrics::gauge!("breach_db_load_seconds", "collection" => db.collection.name())
        .set(elapsed.as_secs_f64());
}

/// The store generation recorded in the saved file of `collection`
/// (reads its first few dozen bytes); `None` when there is no file.
pub fn saved_generation(store_dir: &Path, collection: Collection) -> Result<Option<u64>> {
    Ok(file::header(&db_path(store_dir, collection))?.map(|h| h.generation))
}

/// Whether the saved database of `collection` is missing, unreadable or
/// older than the store (cheap: reads only the file header).
pub fn is_stale(store: &Store, collection: Collection) -> Result<bool> {
    match saved_generation(store.dir(), collection) {
        Ok(Some(g)) => Ok(g != store.generation(collection)?),
        Ok(None) | Err(Error::BadSenderDb { .. }) => Ok(true),
        Err(e) => Err(e),
    }
}

/// Header facts of a saved file, without loading its databases.
#[derive(Clone, Debug)]
pub struct SavedInfo {
    /// Store generation it was built from.
    pub generation: u64,
    /// Each tier's database header (parameters, items, bundles, ...).
    pub tiers: Vec<(Tier, SavedHeader)>,
    /// Bytes of the file.
    pub file_bytes: u64,
}

/// Reads the headers of the saved file of `collection`, if any: the file's
/// and each tier database's (checking their checksums), seeking past
/// everything else. Needs no key; reads a few kilobytes.
pub fn saved_info(store_dir: &Path, collection: Collection) -> Result<Option<SavedInfo>> {
    let path = db_path(store_dir, collection);
    let Some((header, tiers)) = file::headers(&path)? else {
        return Ok(None);
    };
    Ok(Some(SavedInfo {
        generation: header.generation,
        tiers,
        file_bytes: fs::metadata(&path).map(|m| m.len()).unwrap_or(0),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_are_valid_and_labeled_for_counts() {
        for tier in Tier::ALL {
            for count in [5, 5000, 1 << 20] {
                let p = choose_params(Collection::Passwords, tier, count).unwrap();
                assert_eq!(p.label_byte_count, Label::V1_LEN);
                p.validate_for_sizes(tier.max_query_items(), count).unwrap();
            }
        }
        // Both tiers share label sizes: one OPRF pass fills both.
        let s = choose_params(Collection::Passwords, Tier::Small, 1 << 20).unwrap();
        let f = choose_params(Collection::Passwords, Tier::Full, 1 << 20).unwrap();
        assert_eq!(s.nonce_byte_count, f.nonce_byte_count);
        assert_ne!(s.fingerprint(), f.fingerprint());
    }

    #[test]
    fn tier_tags_round_trip() {
        for t in Tier::ALL {
            assert_eq!(Tier::from_tag(t.tag()), Some(t));
        }
        assert_eq!(Tier::from_tag(9), None);
    }
}
