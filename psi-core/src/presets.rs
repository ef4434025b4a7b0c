//! Shipped parameter sets and the automatic choice among them.
//!
//! Each preset is a JSON file in `psi-core/params/` (also compiled in as a
//! constant), designed by [`design`] for a sender and receiver size and a
//! label length: the test suite checks that every file equals what
//! [`design`] produces today, validates, keeps false positives below
//! `2^-40` at its sizes, and answers correctly end to end.
//!
//! ## How [`design`] chooses
//!
//! BFV: one of six configurations (see `BFV_CHOICES`):
//!
//! - `n = 8192`, `t = 1032193` (19 bits per field element), three
//!   50-bit ciphertext primes and a 50-bit special prime (200 of the 218
//!   bits the 128-bit bound allows): a multiplicative depth of 2 for the
//!   powers, then one plain product. Primes below 2^50 run the AVX-512
//!   IFMA NTT and multiply-accumulate; at 2^20 x 1024 with full bins the
//!   results still keep 33 bits of noise budget before compression, too
//!   few for one more ciphertext product.
//! - the same with primes of 54, 54, 55 bits and a 55-bit special prime
//!   (218 bits), for unlabeled Paterson-Stockmeyer sets only: depth 2 for
//!   the powers, a plain product and one more ciphertext product.
//! - deep Paterson-Stockmeyer for unlabeled sets, as APSI's `16M-1`:
//!   `n = 8192`, `t = 2277377` (21 bits), three 60-bit primes and a 38-bit
//!   special prime (218 bits): low powers at depth 2, high powers at depth
//!   3, so a handful of query powers reach bins of several hundred items.
//! - `n = 4096`, `t = 40961` (15 bits), primes of 36, 36 bits and a 37-bit
//!   special prime (109 bits): depth 1 for the powers, then one plain
//!   product; up to 32 query powers.
//! - single-item queries only, as APSI's: `n = 2048`, `t = 12289` (13
//!   bits), or `n = 4096`, `t = 65537` (16 bits), with one ciphertext prime
//!   and no key switching. The receiver sends every power the sender needs
//!   (no relinearization keys, no ciphertext products), and the prime is
//!   the smallest the noise of the bin degree allows
//!   ([`PsiParams::direct_noise_margin_bits`]).
//!
//! Results are compressed (`he_core::CompressedCiphertext`).
//!
//! Table: `bins_per_bundle = n / f` bins per plaintext; enough plaintext
//! rows that the receiver's items fill at most 70% of the bins
//! (3-way cuckoo hashing), one row and one hash function for a single item.
//! Felts per item: `f >= 4`, at most 128 item bits, false positives below
//! `2^-40`. Bin size `B` and Paterson-Stockmeyer degree: listed sizes, and
//! whole Paterson-Stockmeyer blocks. The choice minimizes an estimated
//! cost in core-microseconds: ciphertext products for the powers (in
//! rounds of two cores per depth), plain products (plus streaming their
//! plaintexts from memory when the database outgrows the cache),
//! Paterson-Stockmeyer blocks and result parts, each measured per BFV
//! configuration (`cargo run --release -p he-core --example op_costs`),
//! plus the bytes up (query ciphertexts, relinearization keys when needed)
//! and down (compressed result ciphertexts) at 250 ms per MB. Labeled sets
//! keep bins of at most 256 items: label interpolation is quadratic in the
//! bin size, a database-build cost the per-query estimate does not see.

use crate::error::{Error, Result};
use crate::params::{BfvSpec, MIN_NOISE_MARGIN_BITS, PsiParams};

/// A named parameter set for a (sender, receiver, label) size.
#[derive(Clone, Copy, Debug)]
pub struct Preset {
    /// Name, also the JSON file's stem (`params/<name>.json`).
    pub name: &'static str,
    /// Largest sender set the preset is designed for.
    pub sender_items: u64,
    /// Largest receiver set (items per query).
    pub receiver_items: u64,
    /// Label bytes (0: unlabeled).
    pub label_bytes: usize,
    /// The JSON form.
    pub json: &'static str,
}

impl Preset {
    /// The parameters.
    pub fn params(&self) -> PsiParams {
        PsiParams::from_json(self.json).expect("shipped presets are valid JSON (tested)")
    }
}

macro_rules! preset {
    ($name:literal, $s:expr, $r:expr, $l:expr) => {
        Preset {
            name: $name,
            sender_items: $s,
            receiver_items: $r,
            label_bytes: $l,
            json: include_str!(concat!("../params/", $name, ".json")),
        }
    };
}

/// Every shipped preset, smallest first.
pub const PRESETS: &[Preset] = &[
    preset!("64K-1", 1 << 16, 1, 0),
    preset!("64K-1-16", 1 << 16, 1, 16),
    preset!("64K-1024", 1 << 16, 1024, 0),
    preset!("64K-1024-16", 1 << 16, 1024, 16),
    preset!("1M-1", 1 << 20, 1, 0),
    preset!("1M-1-16", 1 << 20, 1, 16),
    preset!("1M-256", 1 << 20, 256, 0),
    preset!("1M-256-16", 1 << 20, 256, 16),
    preset!("1M-1024", 1 << 20, 1024, 0),
    preset!("1M-1024-16", 1 << 20, 1024, 16),
    preset!("16M-1", 1 << 24, 1, 0),
    preset!("16M-1-16", 1 << 24, 1, 16),
    preset!("16M-1024", 1 << 24, 1024, 0),
    preset!("16M-1024-16", 1 << 24, 1024, 16),
];

const NONCE_BYTES: usize = 16;
/// Bin sizes [`design`] tries.
const BIN_SIZES: &[usize] = &[
    6, 8, 12, 16, 20, 24, 32, 40, 48, 56, 64, 72, 80, 96, 112, 128, 192, 256, 384, 512, 640, 768,
    896, 1024,
];
/// Paterson-Stockmeyer low degrees [`design`] tries (0: none).
const PS_LOW_DEGREES: &[u32] = &[0, 3, 5, 7, 11, 15, 19, 23, 26, 31];
/// Largest bin [`design`] considers for labeled sets. Set when label
/// interpolation was quadratic in the bin size (2^20 x 1024 with 16-byte
/// labels: 168 s with bins of 674 items, 27 s with 128). With
/// [`crate::poly::RootsProduct`] only the interpolation weights stay
/// `O(B^2)`; the cap no longer binds: at 512 `design` picks the same
/// presets (checked with the `design_params` example).
const MAX_LABELED_BIN: usize = 256;
/// Largest bin [`design`] considers.
const MAX_DESIGN_BIN: usize = 1024;
const MAX_LOAD: f64 = 0.7;

/// A BFV configuration [`design`] may choose.
struct BfvChoice {
    degree: usize,
    /// Ciphertext primes then the special prime; empty: one ciphertext
    /// prime and no key switching, sized per bin degree by the noise model
    /// ([`PsiParams::direct_noise_margin_bits`]).
    coeff_modulus_bits: &'static [u32],
    plain_modulus: u64,
    /// Bits per field element (`floor(log2 t)`).
    felt_bits: u32,
    /// Largest multiplicative depth of the powers.
    max_powers_depth: u32,
    /// With Paterson-Stockmeyer, the largest depth of the low powers
    /// (`1..=L`): their plain products cost about one product's noise, and
    /// the block product must still fit.
    max_low_depth: u32,
    /// Most query powers (each one ciphertext per table row in the upload).
    max_query_powers: usize,
    /// Whether Paterson-Stockmeyer (one more ciphertext product) fits.
    paterson_stockmeyer: bool,
    /// Only Paterson-Stockmeyer sets (the choice exists for them).
    paterson_stockmeyer_only: bool,
    /// Only for single-item queries.
    single_item_only: bool,
    /// Only for sets without labels.
    unlabeled_only: bool,
    /// Measured costs on one core, in microseconds (see [`Costs`]).
    costs: Costs,
}

/// Costs of the sender's operations for one BFV choice, in microseconds on
/// one core with the data in cache, measured on the benchmark machine
/// (AVX-512 with IFMA) with the `op_costs` example of he-core (see its
/// docs); only their ratios to each other and to [`COST_BYTE`] matter.
/// Last measured 2026-12-01 (Intel Xeon host), after he-core's products
/// moved to one-pass basis conversions and, with ciphertext primes of at
/// most 50 bits, 50-bit auxiliary primes: the 50-bit set's product costs
/// two thirds of the others'.
/// Plain products on a database larger than the cache are bound by memory
/// as well ([`MEMORY_BYTES_PER_US`]).
struct Costs {
    /// A ciphertext product with relinearization (the query powers).
    product: f64,
    /// One term of a multiply-accumulate at the plaintexts' level.
    plain: f64,
    /// A Paterson-Stockmeyer block: lifting an inner sum and one term of
    /// [`he_core::Evaluator::multiply_sum`].
    ps_block: f64,
    /// Switching, compressing and encoding one result ciphertext.
    part: f64,
}

/// The configurations of the module docs, in order. Ties go to the earlier
/// one.
///
/// Single-item queries, as APSI's: `n = 2048` (`t = 12289`) or `n = 4096`
/// (`t = 65537`), one ciphertext prime and no key switching. The receiver
/// sends every power the sender needs, the sender multiplies no
/// ciphertexts, and the prime is as small as the noise allows (at most 54
/// bits at `n = 2048`): small queries, small results.
const BFV_CHOICES: &[BfvChoice] = &[
    BfvChoice {
        degree: 8192,
        coeff_modulus_bits: &[50, 50, 50, 50],
        plain_modulus: 1_032_193,
        felt_bits: 19,
        max_powers_depth: 2,
        max_low_depth: 1,
        max_query_powers: 8,
        // 150 ciphertext bits leave about 33 bits after depth 2 and the
        // plain product: not enough for one more ciphertext product.
        paterson_stockmeyer: false,
        paterson_stockmeyer_only: false,
        single_item_only: false,
        unlabeled_only: false,
        costs: Costs {
            product: 3160.0,
            plain: 8.7,
            ps_block: 370.0,
            part: 183.0,
        },
    },
    // The same with 163 ciphertext bits, for Paterson-Stockmeyer sets
    // (listed second: without PS the 50-bit set, IFMA-friendly, wins ties).
    BfvChoice {
        degree: 8192,
        coeff_modulus_bits: &[54, 54, 55, 55],
        plain_modulus: 1_032_193,
        felt_bits: 19,
        max_powers_depth: 2,
        max_low_depth: 1,
        max_query_powers: 8,
        paterson_stockmeyer: true,
        paterson_stockmeyer_only: true,
        single_item_only: false,
        // As the 60-bit set below: labels multiply the plain products on
        // primes too large for IFMA.
        unlabeled_only: true,
        // Primes above 52 bits: no IFMA.
        costs: Costs {
            product: 4910.0,
            plain: 25.8,
            ps_block: 650.0,
            part: 190.0,
        },
    },
    // Deep Paterson-Stockmeyer sets for large senders, as APSI's `16M-1`:
    // three 60-bit primes (180 ciphertext bits) and a 38-bit special prime,
    // 218 bits in all. Relinearization then adds about 2^22 fresh errors,
    // below the noise of the first product. `t` of 21 bits: four field
    // elements per item keep false positives below 2^-40 with bins of
    // about 800 items. Measured budgets: fresh 154 bits, then 120, 87, 53
    // after depths 1 to 3, and a plain sum of a depth-2 power 28 bits less:
    // high powers at depth 3 and low ones at depth 2 leave about 19 bits
    // after the block product.
    BfvChoice {
        degree: 8192,
        coeff_modulus_bits: &[60, 60, 60, 38],
        plain_modulus: 2_277_377,
        felt_bits: 21,
        max_powers_depth: 3,
        max_low_depth: 2,
        max_query_powers: 8,
        paterson_stockmeyer: true,
        paterson_stockmeyer_only: true,
        single_item_only: false,
        // Labeled, its plain products on 60-bit primes cost more than the
        // bytes they save: 2^20 x 1024 with 16-byte labels answered in
        // 420 ms (bins of 242) against 248 ms with the 50-bit set.
        unlabeled_only: true,
        // 60-bit primes: no IFMA.
        costs: Costs {
            product: 4700.0,
            plain: 24.8,
            ps_block: 648.0,
            part: 185.0,
        },
    },
    BfvChoice {
        degree: 4096,
        coeff_modulus_bits: &[36, 36, 37],
        plain_modulus: 40_961,
        felt_bits: 15,
        max_powers_depth: 1,
        max_low_depth: 1,
        max_query_powers: 32,
        paterson_stockmeyer: false,
        paterson_stockmeyer_only: false,
        single_item_only: false,
        unlabeled_only: false,
        costs: Costs {
            product: 890.0,
            plain: 4.3,
            ps_block: 172.0,
            part: 69.0,
        },
    },
    BfvChoice {
        degree: 2048,
        coeff_modulus_bits: &[],
        plain_modulus: 12_289,
        felt_bits: 13,
        max_powers_depth: 0,
        max_low_depth: 0,
        max_query_powers: 128,
        paterson_stockmeyer: false,
        paterson_stockmeyer_only: false,
        single_item_only: true,
        unlabeled_only: false,
        costs: Costs {
            product: 0.0,
            plain: 0.95,
            ps_block: 0.0,
            part: 25.0,
        },
    },
    BfvChoice {
        degree: 4096,
        coeff_modulus_bits: &[],
        plain_modulus: 65_537,
        felt_bits: 16,
        max_powers_depth: 0,
        max_low_depth: 0,
        max_query_powers: 128,
        paterson_stockmeyer: false,
        paterson_stockmeyer_only: false,
        single_item_only: true,
        unlabeled_only: false,
        costs: Costs {
            product: 0.0,
            plain: 2.25,
            ps_block: 0.0,
            part: 54.0,
        },
    },
];

/// The one ciphertext prime's size for a set without key switching: the
/// smallest keeping [`PsiParams::direct_noise_margin_bits`] at
/// [`MIN_NOISE_MARGIN_BITS`], if the security bound allows it.
fn direct_prime_bits(p: &PsiParams) -> Option<u32> {
    let mut probe = p.clone();
    probe.bfv.coeff_modulus_bits = vec![0];
    let needed = MIN_NOISE_MARGIN_BITS - probe.direct_noise_margin_bits();
    let bits = needed.ceil().max(1.0) as u32;
    let bound = he_core::max_log_q_128(p.bfv.poly_modulus_degree)?;
    (bits <= bound.min(60)).then_some(bits)
}

/// Plaintext bytes a core streams from memory per microsecond in the plain
/// products of a database larger than [`CACHE_BYTES`]: a plain product
/// then costs its in-cache time plus its plaintext's bytes over this.
/// Fitted to the 2^20-item benchmarks: 17 us per term at `n = 4096` (two
/// primes, 64 KiB) and 61 us at `n = 8192` (two 60-bit primes, 128 KiB).
const MEMORY_BYTES_PER_US: f64 = 6000.0;
/// Cores of the benchmark machine: the powers of one depth are computed in
/// rounds of this many.
const THREADS: f64 = 2.0;
/// Databases up to this many bytes of plaintexts count as cache-resident.
const CACHE_BYTES: f64 = 32.0 * 1024.0 * 1024.0;
/// Cost of one byte on the wire (up or down) in core-microseconds, so that
/// bytes weigh in the choice: 250 ms per MB, what a megabyte takes on a
/// 64 Mbit/s link, counted against the compute of two cores.
/// At 200 ms per MB the 2^20 x 1 labeled set moves to `n = 2048` and
/// sends as many bytes as APSI's.
const COST_BYTE: f64 = 0.25;

/// A small set of query powers from which every power in `targets` is
/// reachable within `max_depth` products (at most `max_sources` of them):
/// greedily adds the candidate that makes the most targets reachable.
/// `None` when no such set is found.
pub fn query_powers_for(targets: &[u32], max_depth: u32, max_sources: usize) -> Option<Vec<u32>> {
    let max = *targets.last()? as usize;
    if max_depth == 0 {
        // No products: every target is a source.
        return (targets.len() <= max_sources).then(|| targets.to_vec());
    }
    if max_depth == 1 {
        return query_powers_depth1(targets, max_sources);
    }
    let is_target = {
        let mut v = vec![false; max + 1];
        for &t in targets {
            v[t as usize] = true;
        }
        v
    };
    // Depth of every target given the sources (u32::MAX: unreachable),
    // combining only targets, as the sender's DAG does.
    let depths = |sources: &[u32]| -> Vec<u32> {
        let mut d = vec![u32::MAX; max + 1];
        for &s in sources {
            d[s as usize] = 0;
        }
        for &p in targets {
            let p = p as usize;
            if d[p] == 0 {
                continue;
            }
            for a in 1..=p / 2 {
                let b = p - a;
                if is_target[a] && is_target[b] && d[a] != u32::MAX && d[b] != u32::MAX {
                    d[p] = d[p].min(d[a].max(d[b]) + 1);
                }
            }
        }
        d
    };
    let reached = |d: &[u32]| {
        targets
            .iter()
            .filter(|&&t| d[t as usize] <= max_depth)
            .count()
    };
    let mut sources = vec![targets[0]];
    loop {
        let d = depths(&sources);
        if reached(&d) == targets.len() {
            return Some(sources);
        }
        if sources.len() >= max_sources {
            return None;
        }
        let best = targets
            .iter()
            .filter(|t| !sources.contains(t))
            .map(|&c| {
                let mut s = sources.clone();
                s.push(c);
                s.sort_unstable();
                (reached(&depths(&s)), std::cmp::Reverse(c), c)
            })
            .max()?;
        sources.push(best.2);
        sources.sort_unstable();
    }
}

/// Query powers for Paterson-Stockmeyer with low degree `l` and bins of
/// `b` items: sources reaching the low powers `1..=l` within `low_depth`
/// products, and multiples of `l + 1` reaching the high powers `k (l + 1)`
/// within `max_depth` (as products of multiples of `l + 1` alone); at most
/// `max_sources` in all. The sender's DAG may find shallower routes.
fn paterson_stockmeyer_powers(
    b: u32,
    l: u32,
    low_depth: u32,
    max_depth: u32,
    max_sources: usize,
) -> Option<Vec<u32>> {
    let low: Vec<u32> = (1..=l.min(b)).collect();
    let mut sources = query_powers_for(&low, low_depth.min(max_depth), max_sources)?;
    let blocks: Vec<u32> = (1..=b / (l + 1)).collect();
    if !blocks.is_empty() {
        let room = max_sources.checked_sub(sources.len())?;
        let high = query_powers_for(&blocks, max_depth, room)?;
        sources.extend(high.iter().map(|k| k * (l + 1)));
    }
    sources.sort_unstable();
    sources.dedup();
    Some(sources)
}

/// [`query_powers_for`] at depth 1, where adding a source `c` reaches just
/// `c`, `2c` and `c + s` for the current sources `s`: the same greedy
/// choices, counted incrementally.
fn query_powers_depth1(targets: &[u32], max_sources: usize) -> Option<Vec<u32>> {
    let max = *targets.last()? as usize;
    let mut is_target = vec![false; max + 1];
    for &t in targets {
        is_target[t as usize] = true;
    }
    let mut reached = vec![false; max + 1];
    let mut sources: Vec<u32> = Vec::new();
    let add = |c: u32, sources: &[u32], reached: &mut Vec<bool>, commit: bool| -> usize {
        let mut hits: Vec<usize> = Vec::new();
        let c = c as usize;
        let mut consider = |p: usize| {
            if p <= max && is_target[p] && !reached[p] && !hits.contains(&p) {
                hits.push(p);
            }
        };
        consider(c);
        consider(2 * c);
        for &s in sources {
            consider(c + s as usize);
        }
        if commit {
            for &p in &hits {
                reached[p] = true;
            }
        }
        hits.len()
    };
    add(targets[0], &sources, &mut reached, true);
    sources.push(targets[0]);
    let mut count = reached.iter().filter(|&&r| r).count();
    loop {
        if count == targets.len() {
            sources.sort_unstable();
            return Some(sources);
        }
        if sources.len() >= max_sources {
            return None;
        }
        // Most newly reached targets; ties to the smallest candidate.
        let (gain, c) = targets
            .iter()
            .filter(|t| !sources.contains(t))
            .map(|&c| (add(c, &sources, &mut reached, false), std::cmp::Reverse(c)))
            .max()
            .map(|(g, c)| (g, c.0))?;
        add(c, &sources, &mut reached, true);
        sources.push(c);
        count += gain;
    }
}

/// Designs parameters for a sender of `sender_items`, queries of up to
/// `receiver_items` items and labels of `label_bytes` bytes (see the module
/// docs). Deterministic.
pub fn design(sender_items: u64, receiver_items: u64, label_bytes: usize) -> Result<PsiParams> {
    if receiver_items == 0 {
        return Err(Error::InvalidParams {
            field: "receiver_items",
            reason: "must be positive".into(),
        });
    }
    let mut best: Option<(f64, PsiParams)> = None;
    // The greedy source search depends only on the targets and the limits,
    // which repeat across calls: cache it for the process.
    type Memo = std::collections::HashMap<(Vec<u32>, u32, usize, u32), Option<Vec<u32>>>;
    static SOURCES_MEMO: std::sync::OnceLock<std::sync::Mutex<Memo>> = std::sync::OnceLock::new();
    let mut sources_memo = SOURCES_MEMO
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    for bfv in BFV_CHOICES {
        if (bfv.single_item_only && receiver_items != 1) || (bfv.unlabeled_only && label_bytes > 0)
        {
            continue;
        }
        let n = bfv.degree as f64;
        // Compressed result ciphertexts (he_core::CompressionBits::for_params).
        let t_bits = 64 - (bfv.plain_modulus - 1).leading_zeros();
        let x_bits = (22.5 * (n + 1.0)).sqrt().log2().ceil() as u32;
        let part_bytes = n * (2 * t_bits + x_bits + 10) as f64 / 8.0;
        // Bin sizes and Paterson-Stockmeyer low degrees: listed sizes, and
        // with Paterson-Stockmeyer also whole blocks (K blocks of L + 1
        // and the low block, degree (K + 1)(L + 1) - 1).
        let mut candidates: Vec<(usize, u32)> = Vec::new();
        for &b in BIN_SIZES {
            for &l in PS_LOW_DEGREES {
                let ps_ok = bfv.paterson_stockmeyer && (l as usize + 1) * 2 <= b;
                if (l == 0 && !bfv.paterson_stockmeyer_only) || (l != 0 && ps_ok) {
                    candidates.push((b, l));
                }
            }
        }
        if bfv.paterson_stockmeyer {
            for &l in &PS_LOW_DEGREES[1..] {
                for k in (4..=32).step_by(4) {
                    let b = (k + 1) * (l as usize + 1) - 1;
                    if b <= MAX_DESIGN_BIN && !candidates.contains(&(b, l)) {
                        candidates.push((b, l));
                    }
                }
            }
        }
        // Items are 128 bits: more field elements would only repeat
        // (labeled, every item would share the empty ones).
        for f in (4..=12usize).filter(|&f| f as u32 * bfv.felt_bits <= 128) {
            let bins_per_bundle = bfv.degree / f;
            let (h, rows) = if receiver_items == 1 {
                (1usize, 1usize)
            } else {
                let rows =
                    (receiver_items as f64 / (MAX_LOAD * bins_per_bundle as f64)).ceil() as usize;
                (3, rows.max(1))
            };
            let table_size = rows * bins_per_bundle;
            let per_bin = h as f64 * sender_items as f64 / table_size as f64;
            for &(b, l) in &candidates {
                // Label interpolation grows with the bin size (its weights
                // quadratically): the per-query cost below does not see the
                // database build.
                if label_bytes > 0 && b > MAX_LABELED_BIN {
                    continue;
                }
                let mut p = PsiParams {
                    table_size,
                    hash_functions: h,
                    max_items_per_bin: b,
                    felts_per_item: f,
                    query_powers: vec![1],
                    ps_low_degree: l,
                    label_byte_count: label_bytes,
                    nonce_byte_count: if label_bytes == 0 { 0 } else { NONCE_BYTES },
                    bfv: BfvSpec {
                        poly_modulus_degree: bfv.degree,
                        coeff_modulus_bits: bfv.coeff_modulus_bits.to_vec(),
                        plain_modulus: bfv.plain_modulus,
                    },
                };
                if bfv.coeff_modulus_bits.is_empty() {
                    let Some(bits) = direct_prime_bits(&p) else {
                        continue;
                    };
                    p.bfv.coeff_modulus_bits = vec![bits];
                }
                // Seeded query ciphertexts carry one polynomial;
                // relinearization keys one seeded row per ciphertext
                // prime over every prime.
                let q = p.ciphertext_prime_bits();
                let q_bits: u32 = q.iter().sum();
                // One prime: no key switching, no relinearization keys.
                let relin_bytes = p.special_prime_bits().map_or(0.0, |special| {
                    q.len() as f64 * n * (q_bits + special) as f64 / 8.0
                });
                let query_ct_bytes = n * q_bits as f64 / 8.0;
                // Plaintexts (NTT form, u64 residues) sit one prime
                // above the last: two primes, or the only one.
                let plaintext_bytes = (n * q.len().min(2) as f64) * 8.0;
                let targets = p.target_powers();
                let low_depth = if l == 0 { 0 } else { bfv.max_low_depth };
                let Some(sources) = sources_memo
                    .entry((
                        targets,
                        bfv.max_powers_depth,
                        bfv.max_query_powers,
                        low_depth,
                    ))
                    .or_insert_with_key(|(targets, depth, max, low_depth)| {
                        if l == 0 {
                            query_powers_for(targets, *depth, *max)
                        } else {
                            paterson_stockmeyer_powers(b as u32, l, *low_depth, *depth, *max)
                        }
                    })
                    .clone()
                else {
                    continue;
                };
                p.query_powers = sources;
                let Ok(dag) = p.validate_for_sizes(receiver_items, sender_items) else {
                    continue;
                };
                // Paterson-Stockmeyer multiplies a low-power term (one
                // level for the plain product) by a high power: keep the
                // low powers one level shallower.
                if l != 0 {
                    let low_depth = dag
                        .nodes()
                        .iter()
                        .filter(|n| n.power <= l)
                        .map(|n| n.depth)
                        .max();
                    if low_depth.unwrap_or(0) > bfv.max_low_depth {
                        continue;
                    }
                }
                // The products of one depth run in parallel, the
                // depths one after another: count rounds of THREADS.
                let products = (1..=dag.depth())
                    .map(|d| {
                        let count = dag.nodes().iter().filter(|n| n.depth == d).count();
                        (count as f64 / THREADS).ceil() * THREADS
                    })
                    .sum::<f64>();
                let bundles = (per_bin / b as f64).ceil() + 1.0;
                let parts = rows as f64 * bundles;
                let label_parts = if label_bytes == 0 {
                    0.0
                } else {
                    (((label_bytes + NONCE_BYTES) * 8) as f64 / bfv.felt_bits as f64 / f as f64)
                        .ceil()
                };
                let polys = parts * (1.0 + label_parts);
                // Plain products per polynomial, and with
                // Paterson-Stockmeyer its ciphertext products.
                let c = &bfv.costs;
                let db_bytes = polys * (b + 1) as f64 * plaintext_bytes;
                let plain = if db_bytes > CACHE_BYTES {
                    c.plain + plaintext_bytes / MEMORY_BYTES_PER_US
                } else {
                    c.plain
                };
                let per_poly = b as f64 * plain
                    + c.part
                    + if l == 0 {
                        0.0
                    } else {
                        (b / (l as usize + 1)) as f64 * c.ps_block
                    };
                let relin = if products > 0.0 || l > 0 {
                    relin_bytes
                } else {
                    0.0
                };
                let up = p.query_powers.len() as f64 * rows as f64 * query_ct_bytes + relin;
                let down = polys * part_bytes;
                let cost =
                    rows as f64 * products * c.product + polys * per_poly + COST_BYTE * (up + down);
                if best.as_ref().is_none_or(|(c, _)| cost < *c) {
                    best = Some((cost, p));
                }
            }
        }
    }
    best.map(|(_, p)| p).ok_or_else(|| Error::InvalidParams {
        field: "sizes",
        reason: format!(
            "no parameters reach 2^-40 false positives for {sender_items} x {receiver_items}"
        ),
    })
}

impl PsiParams {
    /// The fastest shipped preset for a sender of `sender_items`, queries of
    /// `receiver_items` items and labels of `label_bytes` bytes: the smallest
    /// preset covering all three. Beyond the largest preset, designs a set
    /// with [`design`].
    pub fn for_sizes(
        sender_items: u64,
        receiver_items: u64,
        label_bytes: usize,
    ) -> Result<PsiParams> {
        let fits = |p: &&Preset| {
            p.sender_items >= sender_items
                && p.receiver_items >= receiver_items
                && (p.label_bytes == label_bytes
                    || (label_bytes > 0 && p.label_bytes >= label_bytes))
        };
        match PRESETS
            .iter()
            .filter(fits)
            .min_by_key(|p| (p.sender_items, p.receiver_items, p.label_bytes))
        {
            Some(p) => Ok(p.params()),
            None => design(sender_items, receiver_items, label_bytes),
        }
    }
}
