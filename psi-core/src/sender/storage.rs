//! Storage: items placed in bins by simple hashing, bins cut into bin
//! bundles, and inserting, relabeling and removing items.

use std::collections::HashSet;
use std::sync::Arc;

use rayon::prelude::*;

use super::SenderDb;
use super::cache::BundleCache;
use crate::error::{Error, Result};
use crate::hashing::{HashedItem, simple_hash_bins};
use crate::label::encrypt_label;
use crate::oprf::{DIRECT_BATCH, OprfOutput};

/// An item ready to insert: its OPRF-derived PSI item and encrypted label.
#[derive(Clone, Debug)]
pub struct PreparedItem {
    item: HashedItem,
    label: Option<Arc<[u8]>>,
}

#[derive(Clone, Debug, PartialEq)]
pub(super) struct Entry {
    pub(super) item: u128,
    pub(super) label: Option<Arc<[u8]>>,
}

/// A bin bundle: `bins_per_bundle` bins of at most `max_items_per_bin`
/// items each, and its cached plaintexts.
#[derive(Debug, PartialEq)]
pub(super) struct BinBundle {
    pub(super) bins: Vec<Vec<Entry>>,
    pub(super) cache: Option<BundleCache>,
}

impl SenderDb {
    /// OPRF-hashes items and encrypts their labels, in parallel. Labels must
    /// be given exactly when the database is labeled, each at most
    /// `label_byte_count` bytes.
    pub fn prepare<I: AsRef<[u8]> + Sync, L: AsRef<[u8]> + Sync>(
        &self,
        items: &[(I, Option<L>)],
    ) -> Result<Vec<PreparedItem>> {
        let labeled = self.is_labeled();
        let outputs = self.oprf_outputs(items.iter().map(|(item, _)| item.as_ref()))?;
        items
            .par_iter()
            .zip(outputs)
            .map(|((_, label), out)| {
                let (hashed, key) = out.item_and_label_key();
                let label = match (labeled, label) {
                    (true, Some(l)) => Some(Arc::from(encrypt_label(
                        &key,
                        l.as_ref(),
                        self.params.label_byte_count,
                        self.params.nonce_byte_count,
                    )?)),
                    (false, None) => None,
                    (true, None) => {
                        return Err(Error::LabelMismatch(
                            "labeled database needs a label for every item".into(),
                        ));
                    }
                    (false, Some(_)) => {
                        return Err(Error::LabelMismatch(
                            "unlabeled database takes no labels".into(),
                        ));
                    }
                };
                Ok(PreparedItem {
                    item: hashed,
                    label,
                })
            })
            .collect()
    }

    /// Inserts items with labels (labeled database), replacing the label of
    /// items already present. Regenerates the touched bundles.
    pub fn insert(&mut self, items: &[(&[u8], &[u8])]) -> Result<()> {
        let v: Vec<(&[u8], Option<&[u8]>)> = items.iter().map(|(i, l)| (*i, Some(*l))).collect();
        let prepared = self.prepare(&v)?;
        self.insert_prepared(prepared)?;
        self.regenerate(|_, _| {})
    }

    /// Inserts items without labels (unlabeled database). Regenerates the touched bundles.
    pub fn insert_unlabeled(&mut self, items: &[&[u8]]) -> Result<()> {
        let v: Vec<(&[u8], Option<&[u8]>)> = items.iter().map(|i| (*i, None)).collect();
        let prepared = self.prepare(&v)?;
        self.insert_prepared(prepared)?;
        self.regenerate(|_, _| {})
    }

    /// The item index, built from the bins on first use after a load.
    pub(super) fn index(&mut self) -> &mut HashSet<u128> {
        let bundles = &self.bundles;
        let items = self.items as usize;
        self.index.get_or_insert_with(|| {
            let mut index = HashSet::with_capacity(items);
            index.extend(
                bundles
                    .iter()
                    .flatten()
                    .flat_map(|b| b.bins.iter().flatten())
                    .map(|e| e.item),
            );
            index
        })
    }

    fn bin_location(&self, bin: usize) -> (usize, usize) {
        let bpb = self.params.bins_per_bundle();
        (bin / bpb, bin % bpb)
    }

    /// Inserts prepared items (sequential, cheap: the costly part is
    /// [`regenerate`](Self::regenerate)). Existing items get the new label.
    ///
    /// Items prepared by another database are accepted when it has the
    /// same OPRF key and label sizes (so one OPRF pass can fill databases
    /// of several parameter sets); labels of another size are an error,
    /// and nothing is inserted then.
    pub fn insert_prepared(&mut self, items: Vec<PreparedItem>) -> Result<()> {
        let label_len = if self.is_labeled() {
            Some(self.params.label_byte_count + self.params.nonce_byte_count)
        } else {
            None
        };
        if items
            .iter()
            .any(|p| p.label.as_ref().map(|l| l.len()) != label_len)
        {
            return Err(Error::LabelMismatch(
                "prepared items were made for other label sizes".into(),
            ));
        }
        let h = self.params.hash_functions;
        let table = self.params.table_size;
        self.index().reserve(items.len());
        for p in items {
            let item = p.item.as_u128();
            let bins: Vec<usize> = simple_hash_bins(&p.item, h, table).collect();
            if !self.index().insert(item) {
                self.replace_label(item, &bins, &p.label);
                continue;
            }
            for b in bins {
                let (bi, pos) = self.bin_location(b);
                self.place(
                    bi,
                    pos,
                    Entry {
                        item,
                        label: p.label.clone(),
                    },
                );
            }
            self.items += 1;
        }
        Ok(())
    }

    /// Sets the label of `item` (present) in every copy.
    fn replace_label(&mut self, item: u128, bins: &[usize], label: &Option<Arc<[u8]>>) {
        for &b in bins {
            let (bi, pos) = self.bin_location(b);
            for bundle in self.bundles[bi].iter_mut() {
                if let Some(e) = bundle.bins[pos].iter_mut().find(|e| e.item == item)
                    && e.label.as_deref() != label.as_deref()
                {
                    e.label = label.clone();
                    bundle.cache = None;
                }
            }
        }
    }

    fn place(&mut self, bi: usize, pos: usize, entry: Entry) {
        let new_item = HashedItem::from_u128(entry.item);
        let max = self.params.max_items_per_bin;
        let labeled = self.is_labeled();
        let encoder = self.encoder;
        let fits = |bundle: &BinBundle| {
            let bin = &bundle.bins[pos];
            bin.len() < max
                && (!labeled
                    || bin.iter().all(|e| {
                        // Interpolation needs distinct x in every slot.
                        !encoder.shares_felt(&HashedItem::from_u128(e.item), &new_item)
                    }))
        };
        let bundles = &mut self.bundles[bi];
        let idx = match bundles.iter().position(fits) {
            Some(i) => i,
            None => {
                bundles.push(BinBundle {
                    bins: vec![Vec::new(); self.params.bins_per_bundle()],
                    cache: None,
                });
                bundles.len() - 1
            }
        };
        bundles[idx].bins[pos].push(entry);
        bundles[idx].cache = None;
    }

    /// The OPRF outputs of `items`, in batches across threads; an over-long
    /// item is reported with its position.
    fn oprf_outputs<'a>(&self, items: impl Iterator<Item = &'a [u8]>) -> Result<Vec<OprfOutput>> {
        let items: Vec<&[u8]> = items.collect();
        let batches = items
            .par_chunks(DIRECT_BATCH)
            .enumerate()
            .map(|(b, chunk)| {
                self.oprf_key
                    .evaluate_direct_batch(chunk)
                    .map_err(|e| match e {
                        Error::OprfInputTooLong { index, len } => Error::OprfInputTooLong {
                            index: b * DIRECT_BATCH + index,
                            len,
                        },
                        other => other,
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(batches.into_iter().flatten().collect())
    }

    /// Removes items (raw bytes, OPRF-hashed here); returns how many were present.
    pub fn remove(&mut self, items: &[&[u8]]) -> Result<usize> {
        let hashed: Vec<HashedItem> = self
            .oprf_outputs(items.iter().copied())?
            .iter()
            .map(|out| out.item_and_label_key().0)
            .collect();
        let mut removed = 0;
        for h in hashed {
            let item = h.as_u128();
            if !self.index().remove(&item) {
                continue;
            }
            let mut found = false;
            for b in simple_hash_bins(&h, self.params.hash_functions, self.params.table_size) {
                let (bi, pos) = self.bin_location(b);
                for bundle in self.bundles[bi].iter_mut() {
                    let before = bundle.bins[pos].len();
                    bundle.bins[pos].retain(|e| e.item != item);
                    if bundle.bins[pos].len() != before {
                        bundle.cache = None;
                        found = true;
                    }
                }
                self.bundles[bi].retain(|bb| bb.bins.iter().any(|bin| !bin.is_empty()));
            }
            if found {
                removed += 1;
                self.items -= 1;
            }
        }
        self.regenerate(|_, _| {})?;
        Ok(removed)
    }
}
