//! The bundle cache: each bundle's matching and label polynomials,
//! batched across slots into plaintexts (in NTT form), rebuilt for the
//! bundles an insertion or removal touched.

use std::sync::Arc;

use he_core::{BatchEncoder, BfvParameters, Plaintext, PlaintextNtt};
use rand::Rng;
use rayon::prelude::*;

use super::SenderDb;
use super::storage::{BinBundle, Entry};
use crate::error::Result;
use crate::field::{ItemEncoder, label_to_felts};
use crate::hashing::HashedItem;
use crate::params::PsiParams;
use crate::poly::RootsProduct;

/// Batched polynomial coefficients of one polynomial family of a bundle:
/// `ntt[j]` for degree `j >= 1` (None when zero in every slot) and the
/// constant term as a plain plaintext.
#[derive(Debug, PartialEq)]
pub(super) struct PolyPlaintexts {
    pub(super) constant: Plaintext,
    pub(super) ntt: Vec<Option<PlaintextNtt>>,
}

#[derive(Debug, PartialEq)]
pub(super) struct BundleCache {
    pub(super) matching: PolyPlaintexts,
    pub(super) labels: Vec<PolyPlaintexts>,
}

impl SenderDb {
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
pub(super) fn plain_level(he: &BfvParameters) -> usize {
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
