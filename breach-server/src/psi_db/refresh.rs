//! Bringing a collection's databases up to date with the store (`build`,
//! and `serve` at start-up): incremental when possible, see the
//! [module docs](super).

use std::path::Path;
use std::time::{Duration, Instant};

use breach_proto::encoding::Label;
use psi_core::{PreparedItem, SenderDb, SenderDbStats};

use super::file::{self, Saved};
use super::keys::{copy_key, load_or_create_key};
use super::progress::{bar, spinner};
use super::{CollectionDb, Row, Tier, TierDb, choose_params, db_path, loaded};
use crate::error::{Error, Result};
use crate::store::{Collection, Store};

/// Items OPRF-hashed per progress-bar step.
const PREPARE_CHUNK: usize = 4096;

/// What [`refresh`] did to a collection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BuildAction {
    /// The saved databases matched the store's generation; loaded as they are.
    UpToDate,
    /// Built from every item of the store.
    Full {
        /// Why a full build was needed.
        reason: String,
    },
    /// Applied the store's changes to the saved databases.
    Incremental {
        /// Items new in the store.
        added: u64,
        /// Items whose count changed.
        updated: u64,
        /// Items no longer in the store.
        removed: u64,
    },
}

/// Sizes of one tier after a [`refresh`].
#[derive(Clone, Debug)]
pub struct TierReport {
    /// The tier.
    pub tier: Tier,
    /// Sizes of its database.
    pub stats: SenderDbStats,
}

/// Report of one [`refresh`].
#[derive(Clone, Debug)]
pub struct BuildReport {
    /// The collection.
    pub collection: Collection,
    /// What was done.
    pub action: BuildAction,
    /// Store generation the databases now reflect.
    pub generation: u64,
    /// Distinct items.
    pub items: u64,
    /// Sizes of each tier, smallest first.
    pub tiers: Vec<TierReport>,
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
    /// Rebuild from scratch even if the databases are up to date.
    pub force: bool,
}

/// Brings the databases of `collection` (every [`Tier`]) up to date with
/// the store (see the [module docs](super) for what is incremental), saves
/// them if they changed, and returns them loaded.
///
/// Cost: reading the saved file (no recomputation); a stale one
/// additionally costs a scan of the collection, the OPRF of every changed
/// item (every item on a full build) and the polynomials of the bundles
/// they touch.
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
        let bar = spinner(
            options.progress,
            format!("{collection}: loading saved PSI databases"),
        );
        let read = file::read(&path, &key, true);
        bar.finish_and_clear();
        match read {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(%collection, error = %e, "saved PSI databases unusable; rebuilding them");
                None
            }
        }
    };
    let store_generation = store.generation(collection)?;
    if let Some(s) = saved
        .as_ref()
        .filter(|s| s.generation == store_generation && has_every_tier(s))
    {
        let _ = s;
        let saved = saved.expect("checked Some above");
        let cdb = CollectionDb {
            collection,
            generation: saved.generation,
            tiers: saved.tiers,
        };
        loaded(&cdb, start);
        let report = report(&cdb, BuildAction::UpToDate, &path, start);
        return Ok((cdb, report));
    }

    let mut rows: Vec<Row> = Vec::new();
    let generation = store.for_each_item(collection, |item, count| rows.push((*item, count)))?;
    // Sharded deployments size every shard's parameters for the same
    // number of items (`build --expected-items`), so all shards serve
    // identical parameters; otherwise they fit the items held.
    let items = rows.len() as u64;
    let size_for = match store.sized_for(collection)? {
        Some(sized_for) if items > sized_for => {
            return Err(Error::Oversized {
                collection,
                items,
                sized_for,
            });
        }
        Some(sized_for) => sized_for,
        None => items,
    };
    let params = Tier::ALL
        .iter()
        .map(|&t| choose_params(collection, t, size_for))
        .collect::<Result<Vec<_>>>()?;

    let same_params = |s: &Saved| {
        has_every_tier(s) && s.tiers.iter().zip(&params).all(|(t, p)| t.db.params() == p)
    };
    let (tiers, action) = match saved {
        Some(s) if same_params(&s) => {
            let mut tiers = s.tiers;
            let (added, updated, removed) =
                apply_changes(&mut tiers, &s.snapshot, &rows, options.progress, collection)?;
            (
                tiers,
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
            let mut tiers = Tier::ALL
                .iter()
                .zip(params)
                .map(|(&tier, p)| {
                    Ok(TierDb {
                        tier,
                        db: SenderDb::new(p, copy_key(&key)?)?,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            insert_rows(&mut tiers, &rows, options.progress, collection)?;
            regenerate(&mut tiers, options.progress, collection)?;
            (tiers, BuildAction::Full { reason })
        }
    };
    let bar = spinner(
        options.progress,
        format!("{collection}: writing {}", path.display()),
    );
    file::write(&path, generation, &rows, &tiers)?;
    bar.finish_and_clear();
    let cdb = CollectionDb {
        collection,
        generation,
        tiers,
    };
    cdb.record_metrics();
    let report = report(&cdb, action, &path, start);
    tracing::info!(
        %collection,
        generation,
        items = report.items,
        bundles = ?report.tiers.iter().map(|t| (t.tier.name(), t.stats.bundles)).collect::<Vec<_>>(),
        action = ?report.action,
        "PSI databases saved"
    );
    Ok((cdb, report))
}

fn has_every_tier(s: &Saved) -> bool {
    s.tiers.iter().map(|t| t.tier).eq(Tier::ALL)
}

fn report(cdb: &CollectionDb, action: BuildAction, path: &Path, start: Instant) -> BuildReport {
    BuildReport {
        collection: cdb.collection,
        action,
        generation: cdb.generation,
        items: cdb.items(),
        tiers: cdb
            .tiers
            .iter()
            .map(|t| TierReport {
                tier: t.tier,
                stats: t.db.stats(),
            })
            .collect(),
        file_bytes: std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
        elapsed: start.elapsed(),
    }
}

fn label(count: u64) -> [u8; Label::V1_LEN] {
    Label { count }.to_bytes()
}

/// OPRF-hashes `rows` with their labels once and inserts them into every
/// tier, in chunks so the progress bar moves.
fn insert_rows(
    tiers: &mut [TierDb],
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
        let Some((first, rest)) = tiers.split_first_mut() else {
            break;
        };
        let prepared = first.db.prepare(&items)?;
        for t in rest {
            let own;
            let p: Vec<PreparedItem> = if same_labels(&first.db, &t.db) {
                prepared.clone()
            } else {
                own = t.db.prepare(&items)?;
                own
            };
            t.db.insert_prepared(p)?;
        }
        first.db.insert_prepared(prepared)?;
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    Ok(())
}

/// Whether items prepared by `a` fit `b` (same key by construction, same
/// label and nonce sizes).
fn same_labels(a: &SenderDb, b: &SenderDb) -> bool {
    let (p, q) = (a.params(), b.params());
    p.label_byte_count == q.label_byte_count && p.nonce_byte_count == q.nonce_byte_count
}

fn regenerate(tiers: &mut [TierDb], progress: bool, collection: Collection) -> Result<()> {
    for t in tiers {
        let bar = bar(
            progress,
            0,
            format!("{collection}: {} tier bin bundles", t.tier),
        );
        t.db.regenerate(|done, total| {
            bar.set_length(total);
            bar.set_position(done);
        })?;
        bar.finish_and_clear();
    }
    Ok(())
}

/// Applies the difference between `old` (what the tiers hold) and `new`
/// (the store now), both sorted by item. Returns (added, updated, removed).
fn apply_changes(
    tiers: &mut [TierDb],
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
        for t in tiers.iter_mut() {
            // `remove` regenerates the bundles it touched itself.
            t.db.remove(&removed)?;
        }
    }
    insert_rows(tiers, &upserts, progress, collection)?;
    regenerate(tiers, progress, collection)?;
    Ok((added, updated, removed_count))
}
