//! The sender: its database of (item, label) pairs organised in bin
//! bundles, and the answer to a query.
//!
//! Every item is OPRF-hashed with the sender's key, inserted into each of its
//! `h` candidate bins (simple hashing), and stored in the first bin bundle
//! whose bin has room (and, for labels, no item part colliding with it in
//! any slot). For each bundle and slot the sender keeps the matching
//! polynomial `r * prod(y - x_i)` (a random non-zero `r` per slot hides the
//! values at non-roots) and, per label part, the interpolating polynomial
//! through `(x_i, label_i)` plus a random multiple of the matching
//! polynomial (so non-matching slots see noise, never a label). Coefficients
//! of equal degree across slots are batched into plaintexts held in NTT form.

pub mod persist;

pub use persist::SavedHeader;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::mpsc;

use he_core::{
    BatchEncoder, BfvParameters, Ciphertext, CompressionBits, Evaluator, LiftedCiphertext,
    Plaintext, PlaintextNtt, RelinKeys,
};
use rand::Rng;
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::field::{ItemEncoder, bits_per_felt, felts_for_bytes, label_to_felts, prime_modulus};
use crate::hashing::{HashedItem, simple_hash_bins};
use crate::label::encrypt_label;
use crate::messages::{OprfRequest, OprfResponse, Query, ResultPart};
use crate::oprf::{DIRECT_BATCH, OprfKey, OprfOutput};
use crate::params::{PowersDag, PsiParams};
use crate::poly::RootsProduct;

/// An item ready to insert: its OPRF-derived PSI item and encrypted label.
#[derive(Clone, Debug)]
pub struct PreparedItem {
    item: HashedItem,
    label: Option<Arc<[u8]>>,
}

#[derive(Clone, Debug, PartialEq)]
struct Entry {
    item: u128,
    label: Option<Arc<[u8]>>,
}

/// Batched polynomial coefficients of one polynomial family of a bundle:
/// `ntt[j]` for degree `j >= 1` (None when zero in every slot) and the
/// constant term as a plain plaintext.
#[derive(Debug, PartialEq)]
struct PolyPlaintexts {
    constant: Plaintext,
    ntt: Vec<Option<PlaintextNtt>>,
}

#[derive(Debug, PartialEq)]
struct BundleCache {
    matching: PolyPlaintexts,
    labels: Vec<PolyPlaintexts>,
}

/// A bin bundle: `bins_per_bundle` bins of at most `max_items_per_bin`
/// items each, and its cached plaintexts.
#[derive(Debug, PartialEq)]
struct BinBundle {
    bins: Vec<Vec<Entry>>,
    cache: Option<BundleCache>,
}

/// Sizes of a [`SenderDb`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SenderDbStats {
    /// Distinct items.
    pub items: u64,
    /// Bin bundles (each answered with one result part).
    pub bundles: u64,
    /// Bundle indices (plaintext rows of the table).
    pub bundle_indices: u64,
    /// Approximate heap bytes of items, labels and cached plaintexts.
    pub bytes_in_memory: u64,
}

/// The sender's database. Build it, then answer OPRF requests and queries;
/// `&self` methods are thread-safe.
///
/// ```
/// use psi_core::{OprfKey, PsiParams, Receiver, SenderDb};
/// let params = PsiParams::from_json(include_str!("../../params/test-small.json")).unwrap();
/// let mut db = SenderDb::new(params.clone(), OprfKey::generate().unwrap()).unwrap();
/// db.insert(&[(b"alice".as_slice(), b"label-a".as_slice()), (b"bob", b"label-b")]).unwrap();
/// let receiver = Receiver::new(params).unwrap();
/// let (request, pending) = receiver.oprf_request(&[b"bob".as_slice(), b"carol"]).unwrap();
/// let response = db.evaluate_oprf(&request).unwrap();
/// let (query, state) = receiver.create_query(pending, &response).unwrap();
/// let parts = db.answer_all(&query).unwrap();
/// let results = receiver.decode(&state, &parts).unwrap();
/// // Labels come back zero-padded to the parameters' label length.
/// assert_eq!(&results[0].label.as_ref().unwrap()[..7], b"label-b");
/// assert!(!results[1].matched);
/// ```
#[derive(Debug)]
pub struct SenderDb {
    params: PsiParams,
    he: Arc<BfvParameters>,
    dag: PowersDag,
    oprf_key: OprfKey,
    encoder: ItemEncoder,
    bits_per_felt: u32,
    label_parts: usize,
    bundles: Vec<Vec<BinBundle>>,
    items: u64,
    /// Every item present, so inserting a new item needs no scan of its
    /// bins' bundles for an older copy. Not saved: `None` after a load,
    /// built from the bins on the first change ([`Self::index`]), so a
    /// database loaded only to answer never pays for it.
    index: Option<HashSet<u128>>,
}

impl SenderDb {
    /// An empty database; validates the parameters first.
    pub fn new(params: PsiParams, oprf_key: OprfKey) -> Result<Self> {
        let dag = params.validate()?;
        let he = params.he_params()?;
        let t = prime_modulus(params.bfv.plain_modulus)?;
        let encoder = ItemEncoder::new(&t, params.felts_per_item, params.item_bit_count())?;
        let bpf = bits_per_felt(&t);
        let label_parts = if params.label_byte_count == 0 {
            0
        } else {
            felts_for_bytes(params.label_byte_count + params.nonce_byte_count, bpf)
                .div_ceil(params.felts_per_item)
        };
        let bundles = (0..params.bundle_index_count())
            .map(|_| Vec::new())
            .collect();
        Ok(Self {
            params,
            he,
            dag,
            oprf_key,
            encoder,
            bits_per_felt: bpf,
            label_parts,
            bundles,
            items: 0,
            index: Some(HashSet::new()),
        })
    }

    /// The parameters.
    pub fn params(&self) -> &PsiParams {
        &self.params
    }

    /// The OPRF key (secret; for persisting next to the database).
    pub fn oprf_key(&self) -> &OprfKey {
        &self.oprf_key
    }

    /// Distinct items (cheap, unlike [`stats`](Self::stats), which walks
    /// every bin).
    pub fn item_count(&self) -> u64 {
        self.items
    }

    /// Whether labels are stored.
    pub fn is_labeled(&self) -> bool {
        self.params.label_byte_count > 0
    }

    /// Answers a batch of blinded OPRF elements (invalid points are errors).
    pub fn evaluate_oprf(&self, request: &OprfRequest) -> Result<OprfResponse> {
        Ok(OprfResponse {
            elements: self.oprf_key.evaluate_batch(&request.elements)?,
        })
    }

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
    fn index(&mut self) -> &mut HashSet<u128> {
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

    /// Recomputes the cached plaintexts of every bundle touched since the
    /// last call, in parallel; `progress(done, total)` is called as bundles finish.
    pub fn regenerate(&mut self, progress: impl Fn(u64, u64) + Sync) -> Result<()> {
        let dirty: Vec<&mut BinBundle> = self
            .bundles
            .iter_mut()
            .flatten()
            .filter(|b| b.cache.is_none())
            .collect();
        let total = dirty.len() as u64;
        let done = std::sync::atomic::AtomicU64::new(0);
        let ctx = CacheContext {
            params: &self.params,
            he: &self.he,
            encoder: &self.encoder,
            bits_per_felt: self.bits_per_felt,
            label_parts: self.label_parts,
            roots: RootsProduct::new(self.he.plaintext(), self.params.max_items_per_bin),
        };
        dirty.into_par_iter().try_for_each(|bundle| -> Result<()> {
            bundle.cache = Some(ctx.build(&bundle.bins)?);
            let d = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            progress(d, total);
            Ok(())
        })
    }

    /// Sizes and memory.
    pub fn stats(&self) -> SenderDbStats {
        let mut bytes = 0u64;
        let mut bundles = 0u64;
        for b in self.bundles.iter().flatten() {
            bundles += 1;
            for bin in &b.bins {
                bytes += (bin.capacity() * std::mem::size_of::<Entry>()) as u64;
                // Labels are shared by the h copies of an item.
                bytes += bin
                    .iter()
                    .filter_map(|e| e.label.as_ref())
                    .map(|l| l.len() as u64)
                    .sum::<u64>()
                    / self.params.hash_functions.max(1) as u64;
            }
            if let Some(c) = &b.cache {
                for p in std::iter::once(&c.matching).chain(&c.labels) {
                    bytes += (p.constant.coeffs().len() * 8) as u64;
                    bytes += p
                        .ntt
                        .iter()
                        .flatten()
                        .map(|x| x.heap_bytes() as u64)
                        .sum::<u64>();
                }
            }
        }
        // The item index: a 16-byte key and a control byte per bucket.
        bytes += (self.index.as_ref().map_or(0, HashSet::capacity) * 17) as u64;
        SenderDbStats {
            items: self.items,
            bundles,
            bundle_indices: self.bundles.len() as u64,
            bytes_in_memory: bytes,
        }
    }

    /// Number of result parts a query is answered with.
    pub fn result_part_count(&self) -> usize {
        self.bundles.iter().map(Vec::len).sum()
    }

    fn check_query(&self, query: &Query) -> Result<(Option<RelinKeys>, Vec<Vec<Ciphertext>>)> {
        if query.params_fingerprint != self.params.fingerprint() {
            return Err(Error::ParameterMismatch);
        }
        let bic = self.params.bundle_index_count();
        let qp = self.params.query_powers.len();
        if query.powers.len() != bic || query.powers.iter().any(|r| r.len() != qp) {
            return Err(Error::Malformed(format!(
                "query must hold {bic} bundle indices of {qp} ciphertexts"
            )));
        }
        // Expanding the seeded halves is the costly part of decoding: the
        // keys and every ciphertext are decoded in parallel.
        let (rk, cts) = rayon::join(
            || {
                query
                    .relin_keys
                    .as_ref()
                    .map(|b| RelinKeys::from_bytes(b, &self.he))
                    .transpose()
            },
            || {
                query
                    .powers
                    .par_iter()
                    .map(|row| {
                        row.par_iter()
                            .map(|b| {
                                let ct = Ciphertext::from_bytes(b, &self.he)?;
                                if ct.level() != 0 || ct.size() != 2 || ct.is_ntt() {
                                    return Err(Error::Malformed(
                                        "query ciphertexts must be fresh (level 0, size 2, coefficient form)".into(),
                                    ));
                                }
                                Ok(ct)
                            })
                            .collect::<Result<Vec<_>>>()
                    })
                    .collect::<Result<Vec<_>>>()
            },
        );
        Ok((rk?, cts?))
    }

    /// Answers a query, calling `emit` with each result part as soon as it
    /// is ready (computation runs on the rayon pool meanwhile). If `emit`
    /// fails, the computation stops and the error is returned.
    pub fn answer(
        &self,
        query: &Query,
        mut emit: impl FnMut(ResultPart) -> Result<()>,
    ) -> Result<()> {
        let (rk, cts) = self.check_query(query)?;
        let total = self.result_part_count() as u32;
        let (tx, rx) = mpsc::sync_channel::<Result<ResultPart>>(4);
        std::thread::scope(|s| {
            let rk = rk.as_ref();
            let worker = s.spawn(move || {
                let _ = cts
                    .into_par_iter()
                    .enumerate()
                    .filter(|(bi, _)| !self.bundles[*bi].is_empty())
                    .try_for_each_with(tx, |tx, (bi, row)| {
                        let result = self.answer_bundle_index(bi, row, rk, total, tx);
                        match result {
                            Ok(()) => Ok(()),
                            Err(e) => tx.send(Err(e)).map_err(|_| ()),
                        }
                    });
            });
            let mut outcome = Ok(());
            for part in rx.iter() {
                if let Err(e) = part.and_then(&mut emit) {
                    outcome = Err(e);
                    break;
                }
            }
            // Dropping the receiver (end of scope) makes the workers' sends
            // fail, so they stop early after an error.
            drop(rx);
            let _ = worker.join();
            outcome
        })
    }

    /// Answers a query and collects every part.
    pub fn answer_all(&self, query: &Query) -> Result<Vec<ResultPart>> {
        let mut parts = Vec::new();
        self.answer(query, |p| {
            parts.push(p);
            Ok(())
        })?;
        Ok(parts)
    }

    fn answer_bundle_index(
        &self,
        bi: usize,
        sources: Vec<Ciphertext>,
        rk: Option<&RelinKeys>,
        total: u32,
        tx: &mpsc::SyncSender<Result<ResultPart>>,
    ) -> std::result::Result<(), Error> {
        let ev = Evaluator::new(&self.he);
        let bits = CompressionBits::for_params(&self.he);
        // Relinearizing below the top level adds key-switching noise of about
        // sqrt(n) q_i sigma / special; with a special prime as large as the
        // ciphertext primes that is a few bits, far below the rounding noise
        // (about t sqrt(n)) the switch itself adds. A smaller special prime
        // relinearizes at the top, where switching divides that noise away.
        let q_bits = self.params.ciphertext_prime_bits().iter().max().copied();
        let leaf_level = match (self.params.special_prime_bits(), q_bits) {
            (Some(special), Some(q)) if special >= q => plain_level(&self.he),
            _ => 0,
        };
        let powers = compute_powers(
            &ev,
            &self.dag,
            &self.params.query_powers,
            sources,
            rk,
            leaf_level,
        )?;
        let l = self.params.ps_low_degree as usize;
        let level = plain_level(&self.he);
        // Every power in NTT form for plain products (at the plaintexts'
        // level, see `plain_level`); Paterson-Stockmeyer also multiplies by
        // the high powers (multiples of L + 1), lifted once here for every
        // polynomial's products.
        let (ntt_powers, high_powers): (Vec<Option<Ciphertext>>, Vec<Option<LiftedCiphertext>>) =
            powers
                .into_par_iter()
                .enumerate()
                .map(|(p, ct)| -> Result<_> {
                    let Some(mut c) = ct else {
                        return Ok((None, None));
                    };
                    if level > 0 {
                        c = ev.mod_switch_to_level(&c, level)?;
                    }
                    let high = (l > 0 && p > 0 && p % (l + 1) == 0)
                        .then(|| ev.lift(&c))
                        .transpose()?;
                    ev.transform_to_ntt(&mut c)?;
                    Ok((Some(c), high))
                })
                .collect::<Result<Vec<_>>>()?
                .into_iter()
                .unzip();
        let result: Result<()> = self.bundles[bi].par_iter().try_for_each(|bundle| {
            let cache = bundle
                .cache
                .as_ref()
                .ok_or_else(|| Error::Malformed("bundle cache missing: call regenerate".into()))?;
            let polys: Vec<&PolyPlaintexts> = std::iter::once(&cache.matching)
                .chain(&cache.labels)
                .collect();
            let cts = if l == 0 {
                eval_direct(&ev, &ntt_powers, &polys)?
            } else {
                let rk = rk.ok_or_else(|| {
                    Error::Malformed(
                        "the query lacks the relinearization keys these parameters need".into(),
                    )
                })?;
                // The matching and label polynomials are independent.
                polys
                    .par_iter()
                    .map(|poly| {
                        eval_paterson_stockmeyer(&ev, &ntt_powers, &high_powers, poly, l, rk)
                    })
                    .collect::<Result<Vec<_>>>()?
            };
            // Switched to the last level and compressed: the receiver only
            // decrypts them.
            let mut polys: Vec<Vec<u8>> = cts
                .par_iter()
                .map(|ct| Ok(ev.compress(ct, bits)?.to_bytes(&self.he)?))
                .collect::<Result<_>>()?;
            let labels = polys.split_off(1);
            let part = ResultPart {
                bundle_index: bi as u32,
                total_parts: total,
                matching: polys.pop().expect("the matching polynomial comes first"),
                labels,
            };
            tx.send(Ok(part))
                .map_err(|_| Error::Malformed("answer consumer stopped".into()))
        });
        result
    }
}

/// The level at which the sender multiplies the powers by its plaintexts
/// and stores those plaintexts: one prime above the last (the powers are
/// switched down to it after they are computed, which keeps their relative
/// noise), so each stored plaintext and each plain product costs one
/// prime less than at the top level: a third less memory and work with
/// three ciphertext primes. With only two primes, the top level.
///
/// Paterson-Stockmeyer's block products run there too. Measured at
/// `n = 8192` with 29 blocks of 27 plain terms: 60-bit primes, low powers
/// at depth 2 and high ones at depth 3 leave 18 bits at the top level and
/// 18 one prime lower; the 54- and 55-bit set (depths 1 and 2) 19 bits one
/// prime lower.
fn plain_level(he: &BfvParameters) -> usize {
    he.max_level().saturating_sub(1)
}

/// Everything needed to turn a bundle's entries into plaintexts.
struct CacheContext<'a> {
    params: &'a PsiParams,
    he: &'a Arc<BfvParameters>,
    encoder: &'a ItemEncoder,
    bits_per_felt: u32,
    label_parts: usize,
    /// Matching and label polynomials.
    roots: RootsProduct,
}

impl CacheContext<'_> {
    fn build(&self, bins: &[Vec<Entry>]) -> Result<BundleCache> {
        let n = self.he.degree();
        let f = self.params.felts_per_item;
        let t = *self.he.plaintext();
        let degree = bins.iter().map(Vec::len).max().unwrap_or(0);
        let label_felt_count = self.label_parts * f;
        let mut rng = rand::rng();
        // coeffs[j][slot]
        let mut matching = vec![vec![0u64; n]; degree + 1];
        let mut labels = vec![vec![vec![0u64; n]; degree + 1]; self.label_parts];
        for c in matching[0].iter_mut() {
            *c = 1; // empty slots: the constant polynomial 1 has no root.
        }
        for (pos, bin) in bins.iter().enumerate() {
            if bin.is_empty() {
                continue;
            }
            let felts: Vec<Vec<u64>> = bin
                .iter()
                .map(|e| self.encoder.encode(&HashedItem::from_u128(e.item)))
                .collect();
            let label_felts: Vec<Vec<u64>> = bin
                .iter()
                .map(|e| match &e.label {
                    Some(l) => label_to_felts(l, label_felt_count, self.bits_per_felt),
                    None => Ok(Vec::new()),
                })
                .collect::<Result<_>>()?;
            for fi in 0..f {
                let slot = pos * f + fi;
                let xs: Vec<u64> = felts.iter().map(|v| v[fi]).collect();
                // Labeled bundles never hold two items sharing a slot value
                // (see `place`), so interpolation is well defined; unlabeled
                // ones may, which only repeats a root.
                let interpolator = if self.label_parts > 0 {
                    Some(self.roots.interpolator(&xs)?)
                } else {
                    None
                };
                let owned_roots;
                let roots: &[u64] = match &interpolator {
                    Some(i) => i.vanishing(),
                    None => {
                        owned_roots = self.roots.from_roots(&xs);
                        &owned_roots
                    }
                };
                let r: u64 = rng.random_range(1..t.value());
                for (j, &c) in roots.iter().enumerate() {
                    matching[j][slot] = t.mul(c, r);
                }
                for (part, poly) in labels.iter_mut().enumerate() {
                    let ys: Vec<u64> = label_felts.iter().map(|v| v[part * f + fi]).collect();
                    let interp = interpolator
                        .as_ref()
                        .expect("labeled bundles have an interpolator")
                        .interpolate(&ys)?;
                    // Adding s * prod(y - x_i) keeps the values at the roots
                    // and turns every other value into noise.
                    let s: u64 = rng.random_range(1..t.value());
                    for (j, row) in poly.iter_mut().enumerate() {
                        let a = interp.get(j).copied().unwrap_or(0);
                        let b = roots.get(j).copied().unwrap_or(0);
                        row[slot] = t.add(a, t.mul(b, s));
                    }
                }
            }
        }
        Ok(BundleCache {
            matching: self.batch(&matching)?,
            labels: labels
                .iter()
                .map(|l| self.batch(l))
                .collect::<Result<_>>()?,
        })
    }

    fn batch(&self, coeffs: &[Vec<u64>]) -> Result<PolyPlaintexts> {
        let encoder = BatchEncoder::new(self.he);
        let constant = encoder.encode(&coeffs[0])?;
        let level = plain_level(self.he);
        let mut ntt = vec![None];
        for row in &coeffs[1..] {
            if row.iter().all(|&c| c == 0) {
                ntt.push(None);
            } else {
                let pt = encoder.encode(row)?;
                ntt.push(Some(PlaintextNtt::new_compact(self.he, &pt, level)?));
            }
        }
        Ok(PolyPlaintexts { constant, ntt })
    }
}

/// Computes every target power of the DAG from the query's source powers,
/// relinearizing each product. Returns `powers[p]` for `p` up to the
/// largest target. The DAG is evaluated depth by depth, with every product
/// of one depth computed in parallel (a product only reads shallower powers).
///
/// A product no other product reads is switched to `leaf_level` (the level
/// where the caller takes every power, or 0 to stay at the top) before its
/// relinearization, which costs less there: key switching over fewer
/// primes.
fn compute_powers(
    ev: &Evaluator,
    dag: &PowersDag,
    query_powers: &[u32],
    sources: Vec<Ciphertext>,
    rk: Option<&RelinKeys>,
    leaf_level: usize,
) -> Result<Vec<Option<Ciphertext>>> {
    let max = dag.nodes().last().map_or(0, |n| n.power as usize);
    let mut powers: Vec<Option<Ciphertext>> = vec![None; max + 1];
    for (p, ct) in query_powers.iter().zip(sources) {
        powers[*p as usize] = Some(ct);
    }
    // Each operand of a product of two different powers is lifted to the
    // extended basis once (a product would lift both of its operands), and
    // dropped after the last depth that uses it.
    let mut last_use = vec![0u32; max + 1];
    let mut is_parent = vec![false; max + 1];
    for n in dag.nodes() {
        let Some((a, b)) = n.parents else { continue };
        for x in [a as usize, b as usize] {
            is_parent[x] = true;
            if a != b {
                last_use[x] = last_use[x].max(n.depth);
            }
        }
    }
    let mut lifted: Vec<Option<LiftedCiphertext>> = vec![None; max + 1];
    for depth in 1..=dag.depth() {
        let level: Vec<(u32, u32, u32)> = dag
            .nodes()
            .iter()
            .filter(|n| n.depth == depth)
            .filter_map(|n| n.parents.map(|(a, b)| (n.power, a, b)))
            .collect();
        if level.is_empty() {
            continue;
        }
        let rk = rk.ok_or_else(|| {
            Error::Malformed(
                "the query lacks the relinearization keys these parameters need".into(),
            )
        })?;
        let mut to_lift: Vec<u32> = level
            .iter()
            .filter(|(_, a, b)| a != b)
            .flat_map(|&(_, a, b)| [a, b])
            .filter(|&x| lifted[x as usize].is_none())
            .collect();
        to_lift.sort_unstable();
        to_lift.dedup();
        let get = |x: u32| {
            powers[x as usize]
                .as_ref()
                .ok_or(Error::UnreachablePower { power: x })
        };
        let new_lifts: Vec<(u32, LiftedCiphertext)> = to_lift
            .par_iter()
            .map(|&x| Ok((x, ev.lift(get(x)?)?)))
            .collect::<Result<_>>()?;
        for (x, l) in new_lifts {
            lifted[x as usize] = Some(l);
        }
        let computed: Vec<(u32, Ciphertext)> = level
            .par_iter()
            .map(|&(p, a, b)| {
                let mut ct = if a == b {
                    ev.square(get(a)?)?
                } else {
                    let lifted_of = |x: u32| {
                        lifted[x as usize]
                            .as_ref()
                            .ok_or(Error::UnreachablePower { power: x })
                    };
                    ev.multiply_sum(&[(lifted_of(a)?, lifted_of(b)?)])?
                };
                if !is_parent[p as usize] && leaf_level > ct.level() {
                    ct = ev.mod_switch_to_level(&ct, leaf_level)?;
                }
                ev.relinearize_assign(&mut ct, rk)?;
                Ok((p, ct))
            })
            .collect::<Result<_>>()?;
        for (p, ct) in computed {
            powers[p as usize] = Some(ct);
        }
        for (x, l) in lifted.iter_mut().enumerate() {
            if last_use[x] <= depth {
                *l = None;
            }
        }
    }
    Ok(powers)
}

/// `sum_j c_j y^j + c_0` for each polynomial, with every power in NTT
/// form, in one pass over the powers
/// ([`Evaluator::multiply_plain_accumulate_many`]).
fn eval_direct(
    ev: &Evaluator,
    ntt_powers: &[Option<Ciphertext>],
    polys: &[&PolyPlaintexts],
) -> Result<Vec<Ciphertext>> {
    let degree = polys.iter().map(|p| p.ntt.len()).max().unwrap_or(0);
    // The powers some polynomial has a (non-zero) coefficient for.
    let used: Vec<usize> = (1..degree)
        .filter(|&j| polys.iter().any(|p| matches!(p.ntt.get(j), Some(Some(_)))))
        .collect();
    if polys
        .iter()
        .any(|p| p.ntt.iter().skip(1).all(Option::is_none))
    {
        return Err(Error::Malformed(
            "polynomial without a non-constant term".into(),
        ));
    }
    let cts = used
        .iter()
        .map(|&j| {
            ntt_powers
                .get(j)
                .and_then(Option::as_ref)
                .ok_or(Error::UnreachablePower { power: j as u32 })
        })
        .collect::<Result<Vec<_>>>()?;
    let rows: Vec<Vec<Option<&PlaintextNtt>>> = polys
        .iter()
        .map(|p| {
            used.iter()
                .map(|&j| p.ntt.get(j).and_then(Option::as_ref))
                .collect()
        })
        .collect();
    let mut sums = ev.multiply_plain_accumulate_many(&cts, &rows)?;
    for (sum, poly) in sums.iter_mut().zip(polys) {
        ev.add_plain_assign(sum, &poly.constant)?;
    }
    Ok(sums)
}

/// Paterson-Stockmeyer: with block size `L + 1`, the polynomial is
/// `sum_i inner_i(y) * y^(i (L+1))` where each `inner_i` has degree `<= L`
/// and is evaluated with plain multiplications of the low powers; each
/// block then costs one ciphertext product with a high power, all summed
/// before one scaling ([`Evaluator::multiply_sum`]) and one
/// relinearization. `ntt_powers` holds every power in NTT form,
/// `high_powers` the high ones lifted for products.
fn eval_paterson_stockmeyer(
    ev: &Evaluator,
    ntt_powers: &[Option<Ciphertext>],
    high_powers: &[Option<LiftedCiphertext>],
    poly: &PolyPlaintexts,
    l: usize,
    rk: &RelinKeys,
) -> Result<Ciphertext> {
    let degree = poly.ntt.len() - 1;
    let block = l + 1;
    fn power<T>(v: &[Option<T>], p: usize) -> Result<&T> {
        v.get(p)
            .and_then(Option::as_ref)
            .ok_or(Error::UnreachablePower { power: p as u32 })
    }
    let add = |acc: &mut Option<Ciphertext>, x: Ciphertext| -> Result<()> {
        match acc {
            None => *acc = Some(x),
            Some(a) => ev.add_assign(a, &x)?,
        }
        Ok(())
    };
    // Lifted inner sums with their high powers, and plain terms (NTT form).
    let mut blocks: Vec<(LiftedCiphertext, &LiftedCiphertext)> = Vec::new();
    let mut plain_terms: Option<Ciphertext> = None;
    for i in 0..=degree / block {
        let base = i * block;
        let mut pairs = Vec::new();
        for j in 1..=l {
            if let Some(Some(pt)) = poly.ntt.get(base + j) {
                pairs.push((power(ntt_powers, j)?, pt));
            }
        }
        let inner = if pairs.is_empty() {
            None
        } else {
            Some(ev.multiply_plain_accumulate(&pairs)?)
        };
        if i == 0 {
            if let Some(x) = inner {
                add(&mut plain_terms, x)?;
            }
            continue;
        }
        if let Some(x) = inner {
            blocks.push((ev.lift(&x)?, power(high_powers, base)?));
        }
        if let Some(Some(c)) = poly.ntt.get(base) {
            add(
                &mut plain_terms,
                ev.multiply_plain_ntt(power(ntt_powers, base)?, c)?,
            )?;
        }
    }
    // Summed in as few multiply_sum calls as the auxiliary primes allow
    // (every operand here has two polynomials: one unit of capacity).
    let mut products: Option<Ciphertext> = None;
    if let Some((first, _)) = blocks.first() {
        let capacity = ev.multiply_sum_capacity(first.level())?;
        if capacity == 0 {
            return Err(Error::Malformed(
                "these parameters leave no room to sum Paterson-Stockmeyer products".into(),
            ));
        }
        let pairs: Vec<(&LiftedCiphertext, &LiftedCiphertext)> =
            blocks.iter().map(|(x, h)| (x, *h)).collect();
        for chunk in pairs.chunks(capacity) {
            add(&mut products, ev.multiply_sum(chunk)?)?;
        }
    }
    let mut total = match (products, plain_terms) {
        (Some(mut p), plain) => {
            ev.relinearize_assign(&mut p, rk)?;
            if let Some(mut x) = plain {
                ev.transform_from_ntt(&mut x)?;
                ev.add_assign(&mut p, &x)?;
            }
            p
        }
        (None, Some(x)) => x,
        (None, None) => {
            return Err(Error::Malformed(
                "polynomial without a non-constant term".into(),
            ));
        }
    };
    ev.add_plain_assign(&mut total, &poly.constant)?;
    Ok(total)
}
