//! Saving and loading a [`SenderDb`] without recomputing it.
//!
//! A saved database holds everything answering needs, exactly as it was in
//! memory: the bin placement of every item (so later inserts and removals
//! land where they would have), each item's encrypted label, and every
//! bundle's cached plaintexts (the matching and label polynomials' batched
//! coefficients, NTT form, compact layout), including the random masks
//! drawn when they were computed. Loading reads and validates; it computes
//! no polynomial and draws no randomness.
//!
//! # Layout (version 2)
//!
//! Integers are little-endian.
//!
//! | field | bytes |
//! | --- | --- |
//! | magic `PSIDB\0\0\x01` | 8 |
//! | format version (`2`) | 2 |
//! | header length `H` | 4 |
//! | header: parameters (`u32`-prefixed wire form), SHA-256 check value of the OPRF key, items, bundles, entries, approximate bytes in memory (`u64` each) | `H` |
//! | SHA-256 of everything above | 32 |
//! | section 0: the item table | |
//! | sections 1..=bundles: one bin bundle each, by bundle index | |
//!
//! Every section is a `u64` length `L`, `L` bytes, and the SHA-256 of those
//! `L` bytes, so sections are checked independently (in parallel while the
//! next ones are read). The item table is the item count then, per item,
//! its 16-byte value and its encrypted label (`nonce_byte_count +
//! label_byte_count` bytes, none when unlabeled). A bundle section is its
//! bundle index (`u32`), the size of each of its `bins_per_bundle` bins
//! (`u32`), the item-table index of each entry (`u32`, bin after bin),
//! then the matching polynomial and each label polynomial: the constant
//! term ([`Plaintext`] bytes, `u32`-prefixed), the number of coefficients
//! `d + 1` (`u32`, `d` the bundle's largest bin), and for each degree
//! `1..=d` a flag (`0`: zero in every slot, `1`: present) and, when
//! present, the [`PlaintextNtt`] bytes (`u32`-prefixed).
//!
//! Decoding checks every length against what the parameters allow before
//! allocating, every coefficient against its modulus, every entry against
//! the bins its item hashes to and the item table, and rejects trailing
//! bytes; errors are [`Error`]s, never panics.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;

use he_core::{Plaintext, PlaintextNtt};
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::{BinBundle, BundleCache, Entry, PolyPlaintexts, SenderDb, plain_level};
use crate::error::{Error, Result};
use crate::hashing::{HashedItem, simple_hash_bins};
use crate::oprf::OprfKey;
use crate::params::PsiParams;
use crate::wire::{Codec, Reader, Writer};

/// Magic bytes of a saved sender database (every version).
const DB_MAGIC: &[u8; 8] = b"PSIDB\x00\x00\x01";
/// The format version written and read.
pub(super) const DB_VERSION: u16 = 2;
/// Largest header accepted.
const MAX_HEADER: u32 = 1 << 20;
/// Bundles encoded at once while saving (bounds the memory of the encoded
/// sections in flight: a bundle of a 2^20-item database is tens of MB).
const SAVE_BATCH: usize = 4;
/// Sections read ahead of the parsing threads while loading (a bundle
/// section of a 2^20-item database is tens of MB: few in flight keep the
/// peak memory near the loaded size).
const READ_AHEAD: usize = 1;

/// What a saved database's header says, read without loading the
/// database ([`SenderDb::read_header`]).
#[derive(Clone, Debug, PartialEq)]
pub struct SavedHeader {
    /// The parameters the database was built for.
    pub params: PsiParams,
    /// Distinct items.
    pub items: u64,
    /// Bin bundles.
    pub bundles: u64,
    /// Entries over all bins (each item is in each of its hash bins).
    pub entries: u64,
    /// Approximate heap bytes of the database once loaded
    /// ([`SenderDbStats::bytes_in_memory`](super::SenderDbStats::bytes_in_memory) when saved).
    pub bytes_in_memory: u64,
    key_check: [u8; 32],
}

impl SavedHeader {
    /// Whether the database was built with `key` (compares SHA-256 check
    /// values, never the key itself).
    pub fn built_with(&self, key: &OprfKey) -> bool {
        self.key_check == key_check(key)
    }

    /// Bytes one item takes in the item table.
    fn item_record_len(&self) -> usize {
        16 + label_len(&self.params)
    }
}

fn label_len(params: &PsiParams) -> usize {
    if params.label_byte_count == 0 {
        0
    } else {
        params.label_byte_count + params.nonce_byte_count
    }
}

fn key_check(key: &OprfKey) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"psi-core/oprf-key-check/v1");
    h.update(key.to_bytes().as_slice());
    h.finalize().into()
}

fn io_err(e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        Error::CorruptDatabase("file ends early (truncated)".into())
    } else {
        Error::Io(e.to_string())
    }
}

fn corrupt(what: impl Into<String>) -> Error {
    Error::CorruptDatabase(what.into())
}

fn read_array<const N: usize>(r: &mut impl Read) -> Result<[u8; N]> {
    let mut a = [0u8; N];
    r.read_exact(&mut a).map_err(io_err)?;
    Ok(a)
}

/// Reads `len` bytes without trusting `len` for the allocation: the buffer
/// grows with what is actually read.
fn read_exactly(r: &mut impl Read, len: u64) -> Result<Vec<u8>> {
    read_exactly_into(r, len, Vec::new())
}

/// [`read_exactly`] into a reused buffer (its capacity is kept).
fn read_exactly_into(r: &mut impl Read, len: u64, mut buf: Vec<u8>) -> Result<Vec<u8>> {
    buf.clear();
    buf.try_reserve(len.min(1 << 26) as usize)
        .map_err(|_| Error::Io("out of memory".into()))?;
    r.by_ref().take(len).read_to_end(&mut buf).map_err(io_err)?;
    if buf.len() as u64 != len {
        return Err(corrupt("file ends early (truncated)"));
    }
    Ok(buf)
}

/// One section's bytes and the digest stored after them.
struct RawSection {
    bytes: Vec<u8>,
    digest: [u8; 32],
}

impl RawSection {
    fn read(r: &mut impl Read, max: u64, what: &str) -> Result<Self> {
        Self::read_into(r, max, what, Vec::new())
    }

    /// [`read`](Self::read) into a reused buffer.
    fn read_into(r: &mut impl Read, max: u64, what: &str, buf: Vec<u8>) -> Result<Self> {
        let len = u64::from_le_bytes(read_array(r)?);
        if len > max {
            return Err(corrupt(format!(
                "{what} claims {len} bytes; these parameters allow at most {max}"
            )));
        }
        let bytes = read_exactly_into(r, len, buf)?;
        let digest = read_array(r)?;
        Ok(Self { bytes, digest })
    }

    fn verified(self, what: &str) -> Result<Vec<u8>> {
        if Sha256::digest(&self.bytes)[..] != self.digest {
            return Err(corrupt(format!("checksum mismatch in {what}")));
        }
        Ok(self.bytes)
    }
}

fn write_section(out: &mut impl Write, bytes: &[u8]) -> Result<()> {
    let w = |out: &mut dyn Write| -> std::io::Result<()> {
        out.write_all(&(bytes.len() as u64).to_le_bytes())?;
        out.write_all(bytes)?;
        out.write_all(&Sha256::digest(bytes))
    };
    w(out).map_err(|e| Error::Io(e.to_string()))
}

/// Largest bundle section the parameters allow, in bytes.
fn max_bundle_section(params: &PsiParams, label_parts: usize) -> u64 {
    let bpb = params.bins_per_bundle() as u64;
    let b = params.max_items_per_bin as u64;
    let n = params.bfv.poly_modulus_degree as u64;
    let prime_bits: u64 = params
        .bfv
        .coeff_modulus_bits
        .iter()
        .map(|&b| u64::from(b))
        .sum();
    // A plaintext: header, level and every residue at its width (bounded
    // by all primes at 64 bits).
    let plaintext = 16 + n * prime_bits.max(64) / 8 + n * 8;
    let poly = 4 + plaintext + 4 + b * (1 + 4 + plaintext);
    4 + bpb * 4 + bpb * b * 4 + (1 + label_parts as u64) * poly
}

impl SenderDb {
    /// Writes the database in the [saved layout](crate::sender::persist): parameters, a check
    /// value of the OPRF key, the bin placement of every item with its
    /// encrypted label, and every bundle's cached plaintexts, with SHA-256
    /// checksums. The OPRF key itself is not written: keep it separately.
    ///
    /// Every bundle must be up to date ([`regenerate`](Self::regenerate)
    /// after changes). Wrap `out` in a `BufWriter` when it is a file.
    pub fn save(&self, mut out: impl Write) -> Result<()> {
        if self.bundles.iter().flatten().any(|b| b.cache.is_none()) {
            return Err(Error::Malformed(
                "bundle cache missing: call regenerate before save".into(),
            ));
        }
        // The item table, in order of first appearance.
        let ll = label_len(&self.params);
        let mut table: HashMap<u128, u32> = HashMap::with_capacity(self.items as usize);
        let mut items = Writer::new();
        items.u64(self.items);
        let mut entries = 0u64;
        for e in self
            .bundles
            .iter()
            .flatten()
            .flat_map(|b| b.bins.iter().flatten())
        {
            entries += 1;
            let next = table.len() as u32;
            if let std::collections::hash_map::Entry::Vacant(v) = table.entry(e.item) {
                v.insert(next);
                items.raw(&e.item.to_le_bytes());
                match &e.label {
                    Some(l) if l.len() == ll => items.raw(l),
                    None if ll == 0 => {}
                    _ => {
                        return Err(Error::LabelMismatch(
                            "an entry's label does not fit the parameters".into(),
                        ));
                    }
                }
            }
        }
        if table.len() as u64 != self.items {
            return Err(Error::Malformed(format!(
                "the bins hold {} distinct items, the database counts {}",
                table.len(),
                self.items
            )));
        }
        let bundles: Vec<(u32, &BinBundle)> = self
            .bundles
            .iter()
            .enumerate()
            .flat_map(|(bi, v)| v.iter().map(move |b| (bi as u32, b)))
            .collect();

        let mut header = Writer::new();
        header.bytes(&self.params.to_wire());
        header.raw(&key_check(&self.oprf_key));
        header.u64(self.items);
        header.u64(bundles.len() as u64);
        header.u64(entries);
        header.u64(self.stats().bytes_in_memory);
        let header = header.into_bytes();
        let mut head = Writer::new();
        head.raw(DB_MAGIC);
        head.u16(DB_VERSION);
        head.u32(header.len() as u32);
        head.raw(&header);
        let head = head.into_bytes();
        out.write_all(&head)
            .and_then(|()| out.write_all(&Sha256::digest(&head)))
            .map_err(|e| Error::Io(e.to_string()))?;
        write_section(&mut out, &items.into_bytes())?;

        for batch in bundles.chunks(SAVE_BATCH) {
            let encoded: Vec<Vec<u8>> = batch
                .par_iter()
                .map(|&(bi, b)| self.encode_bundle(bi, b, &table))
                .collect::<Result<_>>()?;
            for bytes in &encoded {
                write_section(&mut out, bytes)?;
            }
        }
        out.flush().map_err(|e| Error::Io(e.to_string()))
    }

    fn encode_bundle(
        &self,
        bi: u32,
        bundle: &BinBundle,
        table: &HashMap<u128, u32>,
    ) -> Result<Vec<u8>> {
        let cache = bundle
            .cache
            .as_ref()
            .ok_or_else(|| Error::Malformed("bundle cache missing".into()))?;
        let mut w = Writer::new();
        w.u32(bi);
        for bin in &bundle.bins {
            w.u32(bin.len() as u32);
        }
        for e in bundle.bins.iter().flatten() {
            w.u32(table[&e.item]);
        }
        for poly in std::iter::once(&cache.matching).chain(&cache.labels) {
            w.bytes(&poly.constant.to_bytes(&self.he)?);
            w.u32(poly.ntt.len() as u32);
            for pt in poly.ntt.iter().skip(1) {
                match pt {
                    None => w.u8(0),
                    Some(pt) => {
                        w.u8(1);
                        w.bytes(&pt.to_bytes(&self.he)?);
                    }
                }
            }
        }
        Ok(w.into_bytes())
    }

    /// Reads only the header of a saved database (the first few hundred
    /// bytes; checks its checksum, not the rest of the file), leaving
    /// `input` just after it.
    ///
    /// A database of an older format version is reported as
    /// [`Error::OutdatedDatabase`].
    pub fn read_header(mut input: impl Read) -> Result<SavedHeader> {
        let magic: [u8; 8] = read_array(&mut input)?;
        if &magic != DB_MAGIC {
            return Err(corrupt("not a sender database"));
        }
        let version = u16::from_le_bytes(read_array(&mut input)?);
        if version != DB_VERSION {
            return if version < DB_VERSION {
                Err(Error::OutdatedDatabase {
                    found: version,
                    expected: DB_VERSION,
                })
            } else {
                Err(Error::BadVersion {
                    expected: DB_VERSION,
                    got: version,
                })
            };
        }
        let len = u32::from_le_bytes(read_array(&mut input)?);
        if len > MAX_HEADER {
            return Err(corrupt(format!("header of {len} bytes")));
        }
        let header = read_exactly(&mut input, u64::from(len))?;
        let digest: [u8; 32] = read_array(&mut input)?;
        let mut h = Sha256::new();
        h.update(magic);
        h.update(version.to_le_bytes());
        h.update(len.to_le_bytes());
        h.update(&header);
        if h.finalize()[..] != digest {
            return Err(corrupt("checksum mismatch in the header"));
        }
        let mut r = Reader::new(&header);
        let params = PsiParams::from_wire(r.bytes(1 << 16)?)?;
        let saved = SavedHeader {
            params,
            key_check: r.array()?,
            items: r.u64()?,
            bundles: r.u64()?,
            entries: r.u64()?,
            bytes_in_memory: r.u64()?,
        };
        r.finish()?;
        Ok(saved)
    }

    /// Reads the header of a saved database and seeks past the rest of it
    /// (section by section, without reading them), leaving `input` at the
    /// first byte after the database.
    pub fn skip_saved<R: Read + Seek>(input: &mut R) -> Result<SavedHeader> {
        let header = Self::read_header(&mut *input)?;
        for _ in 0..=header.bundles {
            let len = u64::from_le_bytes(read_array(input)?);
            let skip = len
                .checked_add(32)
                .and_then(|s| i64::try_from(s).ok())
                .ok_or_else(|| corrupt("section length out of range"))?;
            input
                .seek(SeekFrom::Current(skip))
                .map_err(|e| Error::Io(e.to_string()))?;
        }
        Ok(header)
    }

    /// Reads a database written by [`save`](Self::save): validates it and
    /// takes its bundles and plaintexts as they are (nothing is
    /// recomputed), rebuilding only the in-memory item index. The file must
    /// end with the database (trailing bytes are an error); see
    /// [`load_from`](Self::load_from) for a database inside a larger file.
    ///
    /// Errors (never panics) on a checksum mismatch, truncation, trailing
    /// bytes, another format version ([`Error::OutdatedDatabase`] for an
    /// older one: rebuild it from its items), out-of-range values, or an
    /// OPRF key other than the one it was built with.
    pub fn load(mut input: impl Read + Send, oprf_key: OprfKey) -> Result<Self> {
        let db = Self::load_from(&mut input, oprf_key)?;
        let mut probe = [0u8; 1];
        match input.read(&mut probe) {
            Ok(0) => Ok(db),
            Ok(_) => Err(corrupt("trailing bytes after the database")),
            Err(e) => Err(Error::Io(e.to_string())),
        }
    }

    /// [`load`](Self::load) for a database inside a larger stream: reads
    /// exactly the database and leaves `input` just after it.
    ///
    /// Memory: the loaded database plus a few sections (one bundle each) in
    /// flight; the file is never held whole. Sections are checked and
    /// decoded on the rayon pool while the next ones are read.
    pub fn load_from<R: Read + Send>(input: &mut R, oprf_key: OprfKey) -> Result<Self> {
        let header = Self::read_header(&mut *input)?;
        if !header.built_with(&oprf_key) {
            return Err(corrupt("built with another OPRF key"));
        }
        let mut db = Self::new(header.params.clone(), oprf_key)?;
        let max_entries = header
            .bundles
            .saturating_mul(db.params.bins_per_bundle() as u64)
            .saturating_mul(db.params.max_items_per_bin as u64);
        if header.entries > max_entries
            || header.items > header.entries
            || header.items > u64::from(u32::MAX)
        {
            return Err(corrupt("item or entry counts out of range"));
        }

        // The item table.
        let record = header.item_record_len();
        let max_table = 8 + header.items.saturating_mul(record as u64);
        let table =
            RawSection::read(input, max_table, "the item table")?.verified("the item table")?;
        if table.len() as u64 != max_table {
            return Err(corrupt("item table size does not match the item count"));
        }
        let mut r = Reader::new(&table);
        if r.u64()? != header.items {
            return Err(corrupt("item table count does not match the header"));
        }
        let mut items: Vec<(u128, Option<Arc<[u8]>>)> = Vec::new();
        items
            .try_reserve_exact(header.items as usize)
            .map_err(|_| Error::Io("out of memory".into()))?;
        // The item index is left to be built on the first change: a
        // repeated item in the table is caught by the reference counts
        // below (its second copy sits in no bin).
        db.index = None;
        let ll = label_len(&db.params);
        for _ in 0..header.items {
            let item = u128::from_le_bytes(r.array::<16>()?);
            let label = (ll > 0).then(|| r.take(ll).map(Arc::from)).transpose()?;
            items.push((item, label));
        }
        r.finish()?;
        drop(table);
        db.items = header.items;

        // The bundles: read here, checked and decoded on the rayon pool.
        let max_section = max_bundle_section(&db.params, db.label_parts);
        let references: Vec<AtomicU32> = (0..items.len()).map(|_| AtomicU32::new(0)).collect();
        let decoder = BundleDecoder {
            db: &db,
            items: &items,
            references: &references,
        };
        let bundle_count = header.bundles;
        let decoded: Result<Vec<(u64, u32, BinBundle)>> = std::thread::scope(|s| {
            let (tx, rx) = mpsc::sync_channel::<Result<(u64, RawSection)>>(READ_AHEAD);
            // Section buffers come back here once decoded, so the few in
            // flight are reused instead of freshly mapped for every bundle.
            let (spare_tx, spare_rx) = mpsc::channel::<Vec<u8>>();
            let reader = s.spawn(move || {
                for i in 0..bundle_count {
                    let buf = spare_rx.try_recv().unwrap_or_default();
                    let section = RawSection::read_into(&mut *input, max_section, "a bundle", buf);
                    let failed = section.is_err();
                    if tx.send(section.map(|s| (i, s))).is_err() || failed {
                        break;
                    }
                }
            });
            let decoded = rx
                .into_iter()
                .par_bridge()
                .map_with(spare_tx, |spare, section| {
                    let (i, raw) = section?;
                    let bytes = raw.verified("a bundle")?;
                    let (bi, bundle) = decoder.decode(&bytes)?;
                    let _ = spare.send(bytes);
                    Ok((i, bi, bundle))
                })
                .collect::<Result<Vec<_>>>();
            // An early error drops the receiver, which stops the reader.
            let _ = reader.join();
            decoded
        });
        let mut decoded = decoded?;
        if decoded.len() as u64 != bundle_count {
            return Err(corrupt("fewer bundles than the header says"));
        }
        decoded.sort_unstable_by_key(|(i, _, _)| *i);
        let mut last = 0u32;
        let mut entries = 0u64;
        for (_, bi, bundle) in decoded {
            if bi < last {
                return Err(corrupt("bundles out of order"));
            }
            last = bi;
            entries += bundle.bins.iter().map(|b| b.len() as u64).sum::<u64>();
            db.bundles[bi as usize].push(bundle);
        }
        if entries != header.entries {
            return Err(corrupt("entry count does not match the header"));
        }
        // Each item sits once in each of its hash bins (checked per entry
        // while decoding; here that no copy is missing or doubled).
        let h = db.params.hash_functions;
        let t = db.params.table_size;
        let misplaced = items.par_iter().zip(&references).any(|((item, _), refs)| {
            let bins = simple_hash_bins(&HashedItem::from_u128(*item), h, t).count();
            refs.load(Ordering::Relaxed) as usize != bins
        });
        if misplaced {
            return Err(corrupt("an item is missing from one of its bins"));
        }
        Ok(db)
    }
}

/// Decodes bundle sections against the item table.
struct BundleDecoder<'a> {
    db: &'a SenderDb,
    items: &'a [(u128, Option<Arc<[u8]>>)],
    references: &'a [AtomicU32],
}

impl BundleDecoder<'_> {
    fn decode(&self, bytes: &[u8]) -> Result<(u32, BinBundle)> {
        let params = &self.db.params;
        let he = &self.db.he;
        let bpb = params.bins_per_bundle();
        let mut r = Reader::new(bytes);
        let bi = r.u32()?;
        if bi as usize >= params.bundle_index_count() {
            return Err(corrupt(format!("bundle index {bi} out of range")));
        }
        let mut sizes = Vec::with_capacity(bpb);
        for _ in 0..bpb {
            let size = r.u32()? as usize;
            if size > params.max_items_per_bin {
                return Err(corrupt(format!(
                    "a bin of {size} items; the parameters allow {}",
                    params.max_items_per_bin
                )));
            }
            sizes.push(size);
        }
        let mut bins = Vec::with_capacity(bpb);
        for (pos, &size) in sizes.iter().enumerate() {
            let bin_index = bi as usize * bpb + pos;
            let mut bin = Vec::with_capacity(size);
            for _ in 0..size {
                let idx = r.u32()? as usize;
                let (item, label) = self
                    .items
                    .get(idx)
                    .ok_or_else(|| corrupt("an entry refers past the item table"))?;
                let in_bin = simple_hash_bins(
                    &HashedItem::from_u128(*item),
                    params.hash_functions,
                    params.table_size,
                )
                .any(|b| b == bin_index);
                if !in_bin {
                    return Err(corrupt("an entry sits in a bin its item does not hash to"));
                }
                self.references[idx].fetch_add(1, Ordering::Relaxed);
                bin.push(Entry {
                    item: *item,
                    label: label.clone(),
                });
            }
            bins.push(bin);
        }
        let degree = sizes.iter().copied().max().unwrap_or(0);
        let level = plain_level(he);
        let poly = |r: &mut Reader<'_>| -> Result<PolyPlaintexts> {
            let constant = Plaintext::from_bytes(r.bytes(1 << 26)?, he)?;
            let len = r.u32()? as usize;
            if len != degree + 1 {
                return Err(corrupt(format!(
                    "a polynomial of {len} coefficients in a bundle whose bins hold up to {degree} items"
                )));
            }
            let mut ntt = Vec::with_capacity(len);
            ntt.push(None);
            for _ in 1..len {
                ntt.push(match r.u8()? {
                    0 => None,
                    1 => {
                        let pt = PlaintextNtt::from_bytes_compact(r.bytes(1 << 26)?, he)?;
                        if pt.level() != level {
                            return Err(corrupt("a plaintext at the wrong level"));
                        }
                        Some(pt)
                    }
                    f => return Err(corrupt(format!("coefficient flag {f}"))),
                });
            }
            Ok(PolyPlaintexts { constant, ntt })
        };
        let matching = poly(&mut r)?;
        let labels = (0..self.db.label_parts)
            .map(|_| poly(&mut r))
            .collect::<Result<Vec<_>>>()?;
        r.finish()?;
        Ok((
            bi,
            BinBundle {
                bins,
                cache: Some(BundleCache { matching, labels }),
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receiver::{MatchResult, Receiver};
    use crate::wire::Codec;
    use std::io::Cursor;

    fn params(labeled: bool) -> PsiParams {
        let mut p = PsiParams::from_json(include_str!("../../params/test-small.json")).unwrap();
        if !labeled {
            p.label_byte_count = 0;
        }
        p
    }

    fn item(i: u64) -> Vec<u8> {
        format!("item-{i}").into_bytes()
    }

    /// A database whose bins overflow into several bundles per index.
    fn build(p: &PsiParams, count: u64) -> SenderDb {
        let mut db = SenderDb::new(p.clone(), OprfKey::generate().unwrap()).unwrap();
        let items: Vec<Vec<u8>> = (0..count).map(item).collect();
        if p.label_byte_count > 0 {
            let labels: Vec<Vec<u8>> = (0..count)
                .map(|i| format!("label{i:011}").into_bytes())
                .collect();
            let v: Vec<(&[u8], &[u8])> = items
                .iter()
                .zip(&labels)
                .map(|(a, b)| (a.as_slice(), b.as_slice()))
                .collect();
            db.insert(&v).unwrap();
        } else {
            let v: Vec<&[u8]> = items.iter().map(Vec::as_slice).collect();
            db.insert_unlabeled(&v).unwrap();
        }
        db
    }

    fn key_of(db: &SenderDb) -> OprfKey {
        OprfKey::from_bytes(db.oprf_key().to_bytes().as_slice()).unwrap()
    }

    fn saved(db: &SenderDb) -> Vec<u8> {
        let mut bytes = Vec::new();
        db.save(&mut bytes).unwrap();
        bytes
    }

    fn run(db: &SenderDb, query: &[Vec<u8>]) -> Vec<MatchResult> {
        let receiver = Receiver::new(db.params().clone()).unwrap();
        let refs: Vec<&[u8]> = query.iter().map(Vec::as_slice).collect();
        let (req, pending) = receiver.oprf_request(&refs).unwrap();
        let resp = db.evaluate_oprf(&req).unwrap();
        let (query, state) = receiver.create_query(pending, &resp).unwrap();
        let query = crate::Query::from_wire(&query.to_wire()).unwrap();
        receiver
            .decode(&state, &db.answer_all(&query).unwrap())
            .unwrap()
    }

    #[test]
    fn round_trip_keeps_placement_plaintexts_and_answers() {
        for labeled in [true, false] {
            let db = build(&params(labeled), 7000);
            assert!(db.stats().bundles > db.params.bundle_index_count() as u64);
            let bytes = saved(&db);
            let header = SenderDb::read_header(bytes.as_slice()).unwrap();
            assert_eq!(header.params, db.params);
            assert_eq!(header.items, 7000);
            assert_eq!(header.bundles, db.stats().bundles);
            assert!(header.built_with(db.oprf_key()));
            assert!(!header.built_with(&OprfKey::generate().unwrap()));

            let loaded = SenderDb::load(bytes.as_slice(), key_of(&db)).unwrap();
            // Plaintexts equal to the saved ones, masks included: a
            // regeneration would have drawn new random masks.
            assert_eq!(loaded.bundles, db.bundles);
            // The item index is built on the first change only.
            assert!(loaded.index.is_none());
            let mut rebuilt = SenderDb::load(bytes.as_slice(), key_of(&db)).unwrap();
            assert_eq!(rebuilt.index(), db.index.as_ref().unwrap());
            let (ls, ds) = (loaded.stats(), db.stats());
            assert_eq!((ls.items, ls.bundles), (ds.items, ds.bundles));
            // Exact capacities when loaded: never more memory than built.
            assert!(ls.bytes_in_memory <= ds.bytes_in_memory);
            // Saving again gives the same sections (the header's memory
            // estimate reflects the loaded database's exact capacities).
            let again = saved(&loaded);
            let body = |b: &[u8]| {
                let mut r = Cursor::new(b);
                SenderDb::read_header(&mut r).unwrap();
                b[r.position() as usize..].to_vec()
            };
            assert!(body(&again) == body(&bytes));
            let query: Vec<Vec<u8>> = [3, 6999, 123_456, 42].into_iter().map(item).collect();
            let (a, b) = (run(&db, &query), run(&loaded, &query));
            assert_eq!(a, b);
            assert!(a[0].matched && a[1].matched && !a[2].matched && a[3].matched);
        }
    }

    #[test]
    fn loaded_database_takes_changes() {
        let db = build(&params(true), 3000);
        let mut loaded = SenderDb::load(saved(&db).as_slice(), key_of(&db)).unwrap();
        loaded.remove(&[item(5).as_slice()]).unwrap();
        loaded
            .insert(&[(b"new item".as_slice(), b"new label".as_slice())])
            .unwrap();
        let r = run(&loaded, &[item(5), b"new item".to_vec(), item(6)]);
        assert!(!r[0].matched && r[1].matched && r[2].matched);
        assert_eq!(&r[1].label.as_ref().unwrap()[..9], b"new label");
        assert_eq!(loaded.stats().items, 3000);
    }

    #[test]
    fn damaged_files_are_clean_errors() {
        let db = build(&params(true), 2000);
        let bytes = saved(&db);
        // Every truncation (sampled, plus each section boundary's neighbours).
        let step = (bytes.len() / 400).max(1);
        for n in (0..bytes.len())
            .step_by(step)
            .chain(bytes.len() - 40..bytes.len())
        {
            let e = SenderDb::load(&bytes[..n], key_of(&db)).unwrap_err();
            assert!(
                matches!(e, Error::CorruptDatabase(_)),
                "truncated at {n}: {e:?}"
            );
        }
        // Bit flips anywhere.
        for i in (0..bytes.len())
            .step_by(step)
            .chain([8, 9, 20, bytes.len() - 1])
        {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            assert!(
                SenderDb::load(bad.as_slice(), key_of(&db)).is_err(),
                "flip at {i} accepted"
            );
        }
        // Trailing bytes, another key.
        let mut long = bytes.clone();
        long.push(0);
        assert!(matches!(
            SenderDb::load(long.as_slice(), key_of(&db)),
            Err(Error::CorruptDatabase(_))
        ));
        let e = SenderDb::load(bytes.as_slice(), OprfKey::generate().unwrap()).unwrap_err();
        assert_eq!(
            e,
            Error::CorruptDatabase("built with another OPRF key".into())
        );
        // An older format version asks for a rebuild; a newer one is unknown.
        let mut v1 = bytes.clone();
        v1[8..10].copy_from_slice(&1u16.to_le_bytes());
        assert_eq!(
            SenderDb::load(v1.as_slice(), key_of(&db)).unwrap_err(),
            Error::OutdatedDatabase {
                found: 1,
                expected: DB_VERSION
            }
        );
        assert!(
            SenderDb::load(v1.as_slice(), key_of(&db))
                .unwrap_err()
                .to_string()
                .contains("rebuild")
        );
        let mut v3 = bytes.clone();
        v3[8..10].copy_from_slice(&3u16.to_le_bytes());
        assert!(matches!(
            SenderDb::read_header(v3.as_slice()),
            Err(Error::BadVersion { got: 3, .. })
        ));
    }

    /// A section whose checksum is recomputed after a change: the
    /// structural checks alone must catch it.
    #[test]
    fn structural_checks_behind_valid_checksums() {
        let db = build(&params(true), 500);
        let bytes = saved(&db);
        let mut r = Cursor::new(bytes.as_slice());
        SenderDb::read_header(&mut r).unwrap();
        let table_start = r.position() as usize;
        let table_len =
            u64::from_le_bytes(bytes[table_start..table_start + 8].try_into().unwrap()) as usize;
        let first_bundle = table_start + 8 + table_len + 32;
        let reseal = |bytes: &mut Vec<u8>, start: usize| {
            let len = u64::from_le_bytes(bytes[start..start + 8].try_into().unwrap()) as usize;
            let digest = Sha256::digest(&bytes[start + 8..start + 8 + len]);
            bytes[start + 8 + len..start + 8 + len + 32].copy_from_slice(&digest);
        };
        // A bundle index out of range.
        let mut bad = bytes.clone();
        bad[first_bundle + 8..first_bundle + 12].copy_from_slice(&u32::MAX.to_le_bytes());
        reseal(&mut bad, first_bundle);
        let e = SenderDb::load(bad.as_slice(), key_of(&db)).unwrap_err();
        assert!(e.to_string().contains("out of range"), "{e}");
        // A bin larger than the parameters allow.
        let mut bad = bytes.clone();
        bad[first_bundle + 12..first_bundle + 16].copy_from_slice(&1000u32.to_le_bytes());
        reseal(&mut bad, first_bundle);
        assert!(SenderDb::load(bad.as_slice(), key_of(&db)).is_err());
        // A duplicated item in the item table.
        let mut bad = bytes.clone();
        let rec = 16 + 32;
        let first = table_start + 8 + 8;
        let (a, b) = bad.split_at_mut(first + rec);
        b[..16].copy_from_slice(&a[first..first + 16]);
        reseal(&mut bad, table_start);
        assert!(SenderDb::load(bad.as_slice(), key_of(&db)).is_err());
        // A coefficient out of range in the last plaintext: the constant
        // term's first coefficient set to all ones (above t).
        let mut bad = bytes.clone();
        let last_len =
            u64::from_le_bytes(bytes[first_bundle..first_bundle + 8].try_into().unwrap()) as usize;
        let bins = db.params.bins_per_bundle();
        let entries: usize = db.bundles[0][0].bins.iter().map(Vec::len).sum();
        let constant = first_bundle + 8 + 4 + 4 * bins + 4 * entries + 4 + 10;
        assert!(constant < first_bundle + 8 + last_len);
        bad[constant] = 0xff;
        bad[constant + 1] = 0xff;
        bad[constant + 2] = 0xff;
        reseal(&mut bad, first_bundle);
        assert!(matches!(
            SenderDb::load(bad.as_slice(), key_of(&db)),
            Err(Error::He(_))
        ));
    }

    #[test]
    fn databases_inside_a_larger_file() {
        let a = build(&params(true), 300);
        let b = build(&params(false), 200);
        let mut file = saved(&a);
        let a_len = file.len() as u64;
        file.extend(saved(&b));
        file.extend(b"rest");
        let mut r = Cursor::new(file.as_slice());
        let header = SenderDb::skip_saved(&mut r).unwrap();
        assert_eq!((header.items, r.position()), (300, a_len));
        let loaded = SenderDb::load_from(&mut r, key_of(&b)).unwrap();
        assert_eq!(loaded.bundles, b.bundles);
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, b"rest");
    }

    #[test]
    fn one_oprf_pass_fills_two_parameter_sets() {
        let key = OprfKey::generate().unwrap();
        let small = params(true);
        let mut big = params(true);
        big.table_size = 4096;
        let mut a = SenderDb::new(small, key_of_bytes(&key)).unwrap();
        let mut b = SenderDb::new(big, key).unwrap();
        let items: Vec<Vec<u8>> = (0..100).map(item).collect();
        let v: Vec<(&[u8], Option<&[u8]>)> = items
            .iter()
            .map(|i| (i.as_slice(), Some(b"lbl".as_slice())))
            .collect();
        let prepared = a.prepare(&v).unwrap();
        a.insert_prepared(prepared.clone()).unwrap();
        b.insert_prepared(prepared).unwrap();
        a.regenerate(|_, _| {}).unwrap();
        b.regenerate(|_, _| {}).unwrap();
        for db in [&a, &b] {
            let r = run(db, &[item(7), item(700)]);
            assert!(r[0].matched && !r[1].matched);
            assert_eq!(&r[0].label.as_ref().unwrap()[..3], b"lbl");
        }
        // Items prepared for other label sizes are refused.
        let mut unlabeled = SenderDb::new(params(false), OprfKey::generate().unwrap()).unwrap();
        let prepared = a.prepare(&v).unwrap();
        assert!(matches!(
            unlabeled.insert_prepared(prepared),
            Err(Error::LabelMismatch(_))
        ));
        assert_eq!(unlabeled.stats().items, 0);
    }

    fn key_of_bytes(key: &OprfKey) -> OprfKey {
        OprfKey::from_bytes(key.to_bytes().as_slice()).unwrap()
    }

    #[test]
    fn save_needs_fresh_bundles() {
        let p = params(true);
        let mut db = SenderDb::new(p, OprfKey::generate().unwrap()).unwrap();
        let v = [(b"x".as_slice(), Some(b"y".as_slice()))];
        let prepared = db.prepare(&v).unwrap();
        db.insert_prepared(prepared).unwrap();
        assert!(db.save(Vec::new()).is_err());
    }
}
