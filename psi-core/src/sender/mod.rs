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

//!
//! The module is split by job: [`storage`] places items in bins and
//! bundles, [`cache`] turns each bundle into batched plaintexts,
//! [`persist`] saves and loads the database, [`answer`] answers a query as
//! work the caller schedules ([`PreparedQuery`]): psi-core spawns no
//! thread and keeps no channel; streaming, pools and deadlines belong to
//! the server.

pub mod answer;
mod cache;
pub mod persist;
mod storage;

pub use answer::PreparedQuery;
pub use persist::SavedHeader;
pub use storage::PreparedItem;

use std::collections::HashSet;
use std::sync::Arc;

use he_core::BfvParameters;

use crate::error::Result;
use crate::field::{ItemEncoder, bits_per_felt, felts_for_bytes, prime_modulus};
use crate::messages::{OprfRequest, OprfResponse};
use crate::oprf::OprfKey;
use crate::params::{PowersDag, PsiParams};

use cache::{BundleCache, PolyPlaintexts, plain_level};
use storage::{BinBundle, Entry};

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

    /// Number of result parts a query is answered with (one per bin
    /// bundle).
    pub fn result_part_count(&self) -> usize {
        self.bundles.iter().map(Vec::len).sum()
    }
}
