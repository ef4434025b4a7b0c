//! PSI parameters, their validation, the false-positive estimate and the
//! minimum-depth plan for computing ciphertext powers ([`PowersDag`]).
//!
//! The JSON form is the serde form of [`PsiParams`], for example:
//!
//! ```
//! use psi_core::params::PsiParams;
//! let json = r#"{
//!   "table_size": 2048, "hash_functions": 3, "max_items_per_bin": 64,
//!   "felts_per_item": 8, "query_powers": [1, 3, 11, 18, 45, 56],
//!   "ps_low_degree": 0, "label_byte_count": 0, "nonce_byte_count": 16,
//!   "bfv": { "poly_modulus_degree": 8192, "coeff_modulus_bits": [56, 56, 56, 50],
//!            "plain_modulus": 65537 }
//! }"#;
//! let params = PsiParams::from_json(json).unwrap();
//! let dag = params.validate().unwrap();
//! assert!(dag.depth() <= 3);
//! assert_eq!(params.item_bit_count(), 128); // 8 felts of floor(log2 65537) = 16 bits
//! ```

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha512};

use crate::error::{Error, Result};
use crate::field::{bits_per_felt, prime_modulus};
use crate::hashing::MAX_HASH_FUNCTIONS;
use crate::label::MAX_NONCE_BYTES;
use crate::wire::{Codec, Reader, Writer};

/// Largest supported `max_items_per_bin` (bounds the powers DAG's work).
pub const MAX_ITEMS_PER_BIN: usize = 1 << 14;
/// Largest supported `felts_per_item`.
pub const MAX_FELTS_PER_ITEM: usize = 32;
/// Largest supported `label_byte_count`.
pub const MAX_LABEL_BYTES: usize = 1024;
/// Largest supported `poly_modulus_degree`.
pub const MAX_POLY_MODULUS_DEGREE: usize = 1 << 17;
/// Largest number of coefficient moduli.
pub const MAX_COEFF_MODULI: usize = 64;
/// Smallest accepted [`PsiParams::direct_noise_margin_bits`] for sets
/// without key switching (32 standard deviations).
pub const MIN_NOISE_MARGIN_BITS: f64 = 5.0;
/// Most query powers (ciphertexts per table row in a query).
pub const MAX_QUERY_POWERS: usize = 256;
/// Required bound on the false-positive probability per query: `2^-40`.
pub const FALSE_POSITIVE_LOG2_BOUND: f64 = -40.0;
/// Version of the wire form of [`PsiParams`].
pub const PARAMS_WIRE_VERSION: u16 = 1;

/// BFV parameters as plain numbers; he-core checks their security.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BfvSpec {
    /// Ring dimension `n` (a power of two); also the number of slots.
    pub poly_modulus_degree: usize,
    /// Bit sizes of the ciphertext-modulus primes (each at most 61).
    pub coeff_modulus_bits: Vec<u32>,
    /// Plaintext modulus `t`: a prime with `t = 1 mod 2n`.
    pub plain_modulus: u64,
}

fn default_hash_functions() -> usize {
    3
}
fn default_nonce() -> usize {
    crate::label::DEFAULT_NONCE_BYTES
}

/// Parameters of one PSI instance, shared by sender and receiver.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PsiParams {
    /// Number of hash-table bins.
    pub table_size: usize,
    /// Number of cuckoo hash functions `h` (1..=8, default 3).
    #[serde(default = "default_hash_functions")]
    pub hash_functions: usize,
    /// Most items a bin bundle holds per bin (the matching polynomial's degree).
    pub max_items_per_bin: usize,
    /// Field elements (slots) per item.
    pub felts_per_item: usize,
    /// Exponents of the receiver's encrypted powers; starts with 1, sorted, distinct.
    pub query_powers: Vec<u32>,
    /// Paterson-Stockmeyer low degree `L` (0 = plain evaluation).
    #[serde(default)]
    pub ps_low_degree: u32,
    /// Label size in bytes (0 = unlabeled PSI).
    #[serde(default)]
    pub label_byte_count: usize,
    /// Nonce size of label encryption in bytes (default 16).
    #[serde(default = "default_nonce")]
    pub nonce_byte_count: usize,
    /// The BFV parameters.
    pub bfv: BfvSpec,
}

fn invalid(field: &'static str, reason: impl Into<String>) -> Error {
    Error::InvalidParams {
        field,
        reason: reason.into(),
    }
}

impl PsiParams {
    /// Parses the JSON form.
    pub fn from_json(json: &str) -> Result<Self> {
        serde_json::from_str(json).map_err(|e| Error::Json(e.to_string()))
    }

    /// The JSON form (pretty-printed).
    pub fn to_json(&self) -> String {
        // Serializing plain structs of integers cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Bins per plaintext: `n / felts_per_item` (0 if `felts_per_item` is 0).
    pub fn bins_per_bundle(&self) -> usize {
        self.bfv
            .poly_modulus_degree
            .checked_div(self.felts_per_item)
            .unwrap_or(0)
    }

    /// Number of plaintexts a hash table spans: `ceil(table_size / bins_per_bundle)`.
    pub fn bundle_index_count(&self) -> usize {
        match self.bins_per_bundle() {
            0 => 0,
            b => self.table_size.div_ceil(b),
        }
    }

    /// Bits of each item actually matched:
    /// `min(128, felts_per_item * floor(log2 t))`. Items agreeing on these
    /// low bits match: truncation is the source of false positives.
    pub fn item_bit_count(&self) -> u32 {
        (self.felts_per_item as u64)
            .saturating_mul(self.bits_per_felt() as u64)
            .min(128) as u32
    }

    /// `log2` of (an upper bound on) the probability that a query of
    /// `receiver_items` items against a database of `sender_items` items
    /// reports at least one false positive.
    ///
    /// A receiver item is compared with every bin bundle of its `h` candidate
    /// bins. In one bundle each of its `f` parts is a root of its slot's
    /// matching polynomial (at most `B = max_items_per_bin` roots) with
    /// probability at most `B / 2^b` (`b` = bits per field element), so it
    /// falsely matches with probability at most `(B / 2^b)^f`. A bin holds
    /// about `h * sender_items / table_size` items, spread over
    /// `ceil(that / B) + 1` bundles (one of slack for uneven bins). Union bound:
    /// `log2 FP = log2(receiver * h * bundles) + sum_i min(0, log2 B - b_i)`,
    /// where `b_i` is `b` except past the 128 bits of an item (the last part
    /// may hold fewer).
    /// Negative infinity for an empty query.
    pub fn false_positive_log2(&self, receiver_items: u64, sender_items: u64) -> f64 {
        let h = self.hash_functions as f64;
        let b = self.max_items_per_bin.max(1) as f64;
        let per_bin = h * sender_items as f64 / self.table_size.max(1) as f64;
        let bundles = (per_bin / b).ceil() + 1.0;
        let bits = self.bits_per_felt();
        let parts: f64 = (0..self.felts_per_item as u32)
            .map(|i| {
                let held = 128u32.saturating_sub(i.saturating_mul(bits)).min(bits);
                (b.log2() - held as f64).min(0.0)
            })
            .sum();
        (receiver_items as f64 * h * bundles).log2() + parts
    }

    /// `floor(log2 t)`: the item bits each field element carries.
    fn bits_per_felt(&self) -> u32 {
        let t = self.bfv.plain_modulus;
        if t < 2 { 0 } else { 63 - t.leading_zeros() }
    }

    /// The powers the sender needs: `1..=max_items_per_bin` without
    /// Paterson-Stockmeyer; with low degree `L`, the low powers `1..=L` and
    /// the high powers `k (L + 1)` for `k (L + 1) <= max_items_per_bin`.
    pub fn target_powers(&self) -> Vec<u32> {
        let b = self.max_items_per_bin.min(MAX_ITEMS_PER_BIN) as u32;
        let l = self.ps_low_degree;
        if l == 0 {
            return (1..=b).collect();
        }
        let mut v: Vec<u32> = (1..=l.min(b)).collect();
        let step = l + 1;
        let mut k = step;
        while k <= b {
            v.push(k);
            k += step;
        }
        v
    }

    /// Checks everything that can be checked without BFV and returns the
    /// minimum-depth powers plan (its [`PowersDag::depth`] is the
    /// multiplicative depth the sender needs for the powers).
    ///
    /// Checks: sizes in range; `hash_functions` in 1..=8; `t` prime and
    /// `= 1 mod 2n`; `n` a power of two; `table_size` below
    /// `bins_per_bundle` or a multiple of it; query powers start with 1,
    /// sorted, distinct, each a needed power; every needed power reachable;
    /// no field element wholly past an item's 128 bits; enough item bits
    /// for `2^-40` false positives on a one-item query.
    pub fn validate(&self) -> Result<PowersDag> {
        let n = self.bfv.poly_modulus_degree;
        if !n.is_power_of_two() || !(2..=MAX_POLY_MODULUS_DEGREE).contains(&n) {
            return Err(invalid(
                "bfv.poly_modulus_degree",
                format!("{n} is not a power of two in [2, 2^17]"),
            ));
        }
        let cm = &self.bfv.coeff_modulus_bits;
        if cm.is_empty()
            || cm.len() > MAX_COEFF_MODULI
            || cm.iter().any(|&b| !(2..=61).contains(&b))
        {
            return Err(invalid(
                "bfv.coeff_modulus_bits",
                "need 1..=64 primes of 2..=61 bits",
            ));
        }
        let t = self.bfv.plain_modulus;
        let tm = prime_modulus(t)?;
        if t % (2 * n as u64) != 1 {
            return Err(invalid(
                "bfv.plain_modulus",
                format!("{t} is not 1 mod 2n = {}", 2 * n),
            ));
        }
        if !(1..=MAX_HASH_FUNCTIONS).contains(&self.hash_functions) {
            return Err(Error::InvalidHashFunctionCount(self.hash_functions));
        }
        if self.felts_per_item == 0
            || self.felts_per_item > MAX_FELTS_PER_ITEM
            || self.felts_per_item > n
        {
            return Err(invalid(
                "felts_per_item",
                format!("{} is outside 1..=min(32, n)", self.felts_per_item),
            ));
        }
        let spare = (self.felts_per_item as u64 * self.bits_per_felt() as u64).saturating_sub(128);
        if spare >= self.bits_per_felt() as u64 {
            return Err(invalid(
                "felts_per_item",
                format!(
                    "{} field elements of {} bits exceed the 128 bits of an item by a whole element",
                    self.felts_per_item,
                    self.bits_per_felt()
                ),
            ));
        }
        let bpb = self.bins_per_bundle();
        if self.table_size == 0 || (self.table_size > bpb && !self.table_size.is_multiple_of(bpb)) {
            return Err(invalid(
                "table_size",
                format!(
                    "{} must be positive and at most, or a multiple of, n / felts_per_item = {bpb}",
                    self.table_size
                ),
            ));
        }
        if self.max_items_per_bin == 0 || self.max_items_per_bin > MAX_ITEMS_PER_BIN {
            return Err(invalid(
                "max_items_per_bin",
                format!(
                    "{} is outside 1..={MAX_ITEMS_PER_BIN}",
                    self.max_items_per_bin
                ),
            ));
        }
        if self.ps_low_degree as usize > self.max_items_per_bin {
            return Err(invalid("ps_low_degree", "exceeds max_items_per_bin"));
        }
        if self.label_byte_count > MAX_LABEL_BYTES {
            return Err(invalid(
                "label_byte_count",
                format!("{} exceeds {MAX_LABEL_BYTES}", self.label_byte_count),
            ));
        }
        if self.nonce_byte_count > MAX_NONCE_BYTES {
            return Err(Error::InvalidNonceLength(self.nonce_byte_count));
        }
        let qp = &self.query_powers;
        if qp.first() != Some(&1) {
            return Err(invalid("query_powers", "must start with 1"));
        }
        if qp.windows(2).any(|w| w[0] >= w[1]) {
            return Err(invalid("query_powers", "must be sorted and distinct"));
        }
        if qp.len() > MAX_QUERY_POWERS {
            return Err(invalid(
                "query_powers",
                format!("{} powers exceed the limit of {MAX_QUERY_POWERS}", qp.len()),
            ));
        }
        let _ = bits_per_felt(&tm);
        let log2_fp = self.false_positive_log2(1, 0);
        if log2_fp > FALSE_POSITIVE_LOG2_BOUND {
            return Err(Error::FalsePositiveRateTooHigh {
                receiver_items: 1,
                log2_fp,
            });
        }
        let dag = PowersDag::new(qp, &self.target_powers())?;
        if !self.has_key_switching() {
            if self.ps_low_degree > 0 || dag.depth() > 0 {
                return Err(invalid(
                    "query_powers",
                    "with one coefficient prime (no key switching) the sender cannot multiply \
                     ciphertexts: every needed power must be a query power and ps_low_degree 0",
                ));
            }
            let margin = self.direct_noise_margin_bits();
            if margin < MIN_NOISE_MARGIN_BITS {
                return Err(invalid(
                    "bfv.coeff_modulus_bits",
                    format!(
                        "the noise budget would run out: a bin polynomial of degree {} leaves \
                         {margin:.1} bits of margin, below {MIN_NOISE_MARGIN_BITS}",
                        self.max_items_per_bin
                    ),
                ));
            }
        }
        Ok(dag)
    }

    /// Noise margin, in bits, of a bin polynomial evaluated directly on
    /// fresh query powers (no ciphertext products): `log2(q / 2t)` minus the
    /// log2 standard deviation of `sum_{j <= B} e_j p_j`, with `e_j` fresh
    /// errors (sigma 3.24) and `p_j` plaintexts with centered coefficients
    /// uniform mod `t` (standard deviation `t / sqrt 12`): `3.24 sqrt(n B)
    /// t / sqrt 12`. Decryption fails only past `2^margin` standard
    /// deviations.
    pub fn direct_noise_margin_bits(&self) -> f64 {
        let n = self.bfv.poly_modulus_degree as f64;
        let t = self.bfv.plain_modulus as f64;
        let b = self.max_items_per_bin.max(1) as f64;
        let q = self.ciphertext_prime_bits();
        let q_bits: u32 = q.iter().sum();
        let std = 3.24 * (n * b).sqrt() * t / 12f64.sqrt();
        // Primes of `bits` bits lie in [2^(bits-1), 2^bits).
        let log_q = q_bits as f64 - q.len() as f64 * 0.5;
        log_q - (2.0 * t).log2() - std.log2()
    }

    /// [`validate`](Self::validate), plus the check that a query of
    /// `receiver_items` items against `sender_items` items has false-positive
    /// probability at most `2^-40`.
    pub fn validate_for_sizes(&self, receiver_items: u64, sender_items: u64) -> Result<PowersDag> {
        let dag = self.validate()?;
        let log2_fp = self.false_positive_log2(receiver_items, sender_items);
        if log2_fp > FALSE_POSITIVE_LOG2_BOUND {
            return Err(Error::FalsePositiveRateTooHigh {
                receiver_items,
                log2_fp,
            });
        }
        Ok(dag)
    }

    /// Builds the BFV parameters. `bfv.coeff_modulus_bits` lists the
    /// ciphertext primes followed by the special (key-switching) prime, as in
    /// SEAL; the whole product is checked against the 128-bit security bound.
    /// A single entry, as in SEAL, is one ciphertext prime and no key
    /// switching ([`he_core::BfvParametersBuilder::without_key_switching`]):
    /// the sender then multiplies no ciphertexts, so every power it needs
    /// must be a query power.
    pub fn he_params(&self) -> Result<std::sync::Arc<he_core::BfvParameters>> {
        let bits = &self.bfv.coeff_modulus_bits;
        let builder = he_core::BfvParametersBuilder::new()
            .degree(self.bfv.poly_modulus_degree)
            .plaintext_modulus(self.bfv.plain_modulus);
        if bits.is_empty() {
            return Err(invalid("bfv.coeff_modulus_bits", "is empty"));
        }
        let builder = builder.moduli_bits(self.ciphertext_prime_bits());
        let builder = match self.special_prime_bits() {
            Some(special) => builder.special_modulus_bits(special),
            None => builder.without_key_switching(),
        };
        Ok(builder.build()?)
    }

    /// Whether the BFV parameters have key switching (a special prime):
    /// more than one entry in `bfv.coeff_modulus_bits`.
    pub fn has_key_switching(&self) -> bool {
        self.bfv.coeff_modulus_bits.len() > 1
    }

    /// Bit sizes of the ciphertext primes: `bfv.coeff_modulus_bits` without
    /// the special prime (the last entry) when there is key switching.
    pub fn ciphertext_prime_bits(&self) -> &[u32] {
        let bits = &self.bfv.coeff_modulus_bits;
        match bits.split_last() {
            Some((_, q)) if self.has_key_switching() => q,
            _ => bits,
        }
    }

    /// Bit size of the special (key-switching) prime, if any.
    pub fn special_prime_bits(&self) -> Option<u32> {
        if self.has_key_switching() {
            self.bfv.coeff_modulus_bits.last().copied()
        } else {
            None
        }
    }

    /// A 32-byte fingerprint of the parameters: SHA-512 of the wire form,
    /// truncated. Serialized objects carry it to bind them to their parameters.
    pub fn fingerprint(&self) -> [u8; 32] {
        let d = Sha512::new()
            .chain_update(b"psi-core/params/v1")
            .chain_update(self.to_wire())
            .finalize();
        let mut f = [0u8; 32];
        f.copy_from_slice(&d[..32]);
        f
    }
}

fn read_usize(r: &mut Reader<'_>, max: usize) -> Result<usize> {
    let v = r.u64()?;
    if v > max as u64 {
        return Err(Error::TooLarge {
            len: v,
            max: max as u64,
        });
    }
    Ok(v as usize)
}

impl Codec for PsiParams {
    fn encode(&self, w: &mut Writer) {
        w.u16(PARAMS_WIRE_VERSION);
        w.u64(self.table_size as u64);
        w.u64(self.hash_functions as u64);
        w.u64(self.max_items_per_bin as u64);
        w.u64(self.felts_per_item as u64);
        w.vec(&self.query_powers, |w, p| w.u32(*p));
        w.u32(self.ps_low_degree);
        w.u64(self.label_byte_count as u64);
        w.u64(self.nonce_byte_count as u64);
        w.u64(self.bfv.poly_modulus_degree as u64);
        w.vec(&self.bfv.coeff_modulus_bits, |w, b| w.u32(*b));
        w.u64(self.bfv.plain_modulus);
    }

    /// Decodes the structure only; call [`PsiParams::validate`] afterwards.
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        r.version(PARAMS_WIRE_VERSION)?;
        Ok(Self {
            table_size: read_usize(r, usize::MAX)?,
            hash_functions: read_usize(r, usize::MAX)?,
            max_items_per_bin: read_usize(r, usize::MAX)?,
            felts_per_item: read_usize(r, usize::MAX)?,
            query_powers: r.vec(MAX_ITEMS_PER_BIN, |r| r.u32())?,
            ps_low_degree: r.u32()?,
            label_byte_count: read_usize(r, usize::MAX)?,
            nonce_byte_count: read_usize(r, usize::MAX)?,
            bfv: BfvSpec {
                poly_modulus_degree: read_usize(r, usize::MAX)?,
                coeff_modulus_bits: r.vec(MAX_COEFF_MODULI, |r| r.u32())?,
                plain_modulus: r.u64()?,
            },
        })
    }
}

/// How one power is obtained in the [`PowersDag`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PowerNode {
    /// The exponent.
    pub power: u32,
    /// Multiplicative depth of this power (0 for query powers).
    pub depth: u32,
    /// `None` for a query (source) power; otherwise the two already
    /// available powers `(a, b)`, `a <= b`, `a + b = power`, to multiply.
    pub parents: Option<(u32, u32)>,
}

/// A minimum-depth plan for computing every target power from the query
/// (source) powers by ciphertext multiplications.
///
/// Built by dynamic programming over the targets in increasing order: a
/// target that is a source has depth 0; any other target `p` is the product
/// of two already-computed targets `a + b = p` minimizing
/// `max(depth(a), depth(b)) + 1` (ties broken by the smallest `a`). Only
/// targets are used as intermediates, as in APSI. Cost `O(T^2)` for `T`
/// targets.
///
/// ```
/// use psi_core::params::PowersDag;
/// let dag = PowersDag::new(&[1, 3], &[1, 2, 3, 4, 5, 6]).unwrap();
/// assert_eq!(dag.node(6).unwrap().parents, Some((3, 3)));
/// assert_eq!(dag.depth(), 2);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PowersDag {
    nodes: Vec<PowerNode>,
    depth: u32,
}

impl PowersDag {
    /// Plans the targets from the sources. Errors when a source is not a
    /// target, when a list is unsorted or has repeats, or with
    /// [`Error::UnreachablePower`] for the first target that no pair of
    /// earlier targets sums to.
    pub fn new(sources: &[u32], targets: &[u32]) -> Result<Self> {
        if targets.windows(2).any(|w| w[0] >= w[1]) || sources.windows(2).any(|w| w[0] >= w[1]) {
            return Err(invalid(
                "query_powers",
                "powers must be sorted and distinct",
            ));
        }
        let max = targets.last().copied().unwrap_or(0) as usize;
        if max > MAX_ITEMS_PER_BIN {
            return Err(invalid(
                "max_items_per_bin",
                format!("target power {max} exceeds {MAX_ITEMS_PER_BIN}"),
            ));
        }
        if let Some(&s) = sources.iter().find(|s| targets.binary_search(s).is_err()) {
            return Err(invalid(
                "query_powers",
                format!("{s} is not a power the sender needs"),
            ));
        }
        // depth_of[p] = Some(depth) once p is computed.
        let mut depth_of: Vec<Option<u32>> = vec![None; max + 1];
        let mut nodes = Vec::with_capacity(targets.len());
        let mut computed: Vec<u32> = Vec::with_capacity(targets.len());
        for &p in targets {
            let node = if sources.binary_search(&p).is_ok() {
                PowerNode {
                    power: p,
                    depth: 0,
                    parents: None,
                }
            } else {
                let mut best: Option<(u32, u32, u32)> = None;
                for &a in &computed {
                    let b = p - a;
                    if a > b {
                        break;
                    }
                    if let (Some(da), Some(Some(db))) =
                        (depth_of[a as usize], depth_of.get(b as usize))
                    {
                        let d = da.max(*db) + 1;
                        if best.is_none_or(|(bd, _, _)| d < bd) {
                            best = Some((d, a, b));
                        }
                    }
                }
                let (depth, a, b) = best.ok_or(Error::UnreachablePower { power: p })?;
                PowerNode {
                    power: p,
                    depth,
                    parents: Some((a, b)),
                }
            };
            depth_of[p as usize] = Some(node.depth);
            computed.push(p);
            nodes.push(node);
        }
        let depth = nodes.iter().map(|n| n.depth).max().unwrap_or(0);
        Ok(Self { nodes, depth })
    }

    /// Multiplicative depth of the deepest power.
    pub fn depth(&self) -> u32 {
        self.depth
    }

    /// All nodes in increasing power order; computing them in this order
    /// always has both parents ready.
    pub fn nodes(&self) -> &[PowerNode] {
        &self.nodes
    }

    /// The node of `power`, if it is a target.
    pub fn node(&self, power: u32) -> Option<&PowerNode> {
        self.nodes
            .binary_search_by_key(&power, |n| n.power)
            .ok()
            .map(|i| &self.nodes[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn base() -> PsiParams {
        PsiParams {
            table_size: 2048,
            hash_functions: 3,
            max_items_per_bin: 64,
            felts_per_item: 8,
            query_powers: vec![1, 3, 11, 18, 45, 56],
            ps_low_degree: 0,
            label_byte_count: 0,
            nonce_byte_count: 16,
            bfv: BfvSpec {
                poly_modulus_degree: 8192,
                coeff_modulus_bits: vec![56, 56, 56, 50],
                plain_modulus: 65537,
            },
        }
    }

    #[test]
    fn valid_base() {
        let p = base();
        let dag = p.validate().unwrap();
        assert_eq!(p.bins_per_bundle(), 1024);
        assert_eq!(p.bundle_index_count(), 2);
        assert_eq!(p.item_bit_count(), 128);
        assert_eq!(dag.nodes().len(), 64);
        assert!(dag.depth() <= 3, "{}", dag.depth());
        // Every node's parents sum to it and are shallower.
        for n in dag.nodes() {
            if let Some((a, b)) = n.parents {
                assert_eq!(a + b, n.power);
                let da = dag.node(a).unwrap().depth;
                let db = dag.node(b).unwrap().depth;
                assert_eq!(n.depth, da.max(db) + 1);
            } else {
                assert!(p.query_powers.contains(&n.power));
            }
        }
    }

    #[test]
    fn json_round_trip_and_defaults() {
        let p = base();
        assert_eq!(PsiParams::from_json(&p.to_json()).unwrap(), p);
        let minimal = r#"{"table_size": 512, "max_items_per_bin": 8, "felts_per_item": 8,
            "query_powers": [1], "bfv": {"poly_modulus_degree": 4096, "coeff_modulus_bits": [48, 48],
            "plain_modulus": 40961}}"#;
        let q = PsiParams::from_json(minimal).unwrap();
        assert_eq!(q.hash_functions, 3);
        assert_eq!(q.nonce_byte_count, 16);
        assert_eq!(q.ps_low_degree, 0);
        assert_eq!(q.validate().unwrap().depth(), 3); // 1 -> 2 -> 4 -> 8
        assert!(matches!(
            PsiParams::from_json(r#"{"table_size": 1, "bogus": 2}"#),
            Err(Error::Json(_))
        ));
        assert!(matches!(
            PsiParams::from_json("not json"),
            Err(Error::Json(_))
        ));
    }

    #[test]
    fn wire_round_trip_and_fingerprint() {
        let p = base();
        let bytes = p.to_wire();
        assert_eq!(PsiParams::from_wire(&bytes).unwrap(), p);
        for n in 0..bytes.len() {
            assert!(PsiParams::from_wire(&bytes[..n]).is_err());
        }
        let mut q = base();
        q.table_size = 1024;
        assert_ne!(p.fingerprint(), q.fingerprint());
        assert_eq!(p.fingerprint(), base().fingerprint());
    }

    /// One coefficient prime: no key switching, every power sent, and a
    /// prime large enough for the noise of the bin degree.
    #[test]
    fn single_prime_sets() {
        let mut p = base();
        p.table_size = 256;
        p.hash_functions = 1;
        p.felts_per_item = 8;
        p.max_items_per_bin = 72;
        p.query_powers = (1..=72).collect();
        p.bfv = BfvSpec {
            poly_modulus_degree: 2048,
            coeff_modulus_bits: vec![44],
            plain_modulus: 12289,
        };
        assert!(!p.has_key_switching());
        assert_eq!(p.ciphertext_prime_bits(), &[44]);
        assert_eq!(p.special_prime_bits(), None);
        let ks = base();
        let (special, q) = ks.bfv.coeff_modulus_bits.split_last().unwrap();
        assert_eq!(
            (ks.ciphertext_prime_bits(), ks.special_prime_bits()),
            (q, Some(*special))
        );
        assert_eq!(p.validate().unwrap().depth(), 0);
        let he = p.he_params().unwrap();
        assert!(!he.supports_key_switching());
        assert_eq!(he.log_q(), 44);
        // About 2^22 of noise against q / 2t = 2^28.4: 6 bits of margin.
        let margin = p.direct_noise_margin_bits();
        assert!((5.0..7.0).contains(&margin), "{margin}");
        // A smaller prime runs out of noise budget.
        let mut small = p.clone();
        small.bfv.coeff_modulus_bits = vec![40];
        let e = small.validate().unwrap_err();
        assert!(format!("{e}").contains("noise budget"), "{e}");
        // Products need key switching.
        let mut products = p.clone();
        products.query_powers = vec![1, 2, 3, 4, 5, 6, 7, 8, 9];
        let e = products.validate().unwrap_err();
        assert!(format!("{e}").contains("no key switching"), "{e}");
        // Too many query powers.
        let mut many = p.clone();
        many.max_items_per_bin = MAX_QUERY_POWERS + 1;
        many.query_powers = (1..=MAX_QUERY_POWERS as u32 + 1).collect();
        let e = many.validate().unwrap_err();
        assert!(format!("{e}").contains("limit"), "{e}");
    }

    #[test]
    fn rejections() {
        let check = |f: &dyn Fn(&mut PsiParams), field: &str| {
            let mut p = base();
            f(&mut p);
            let e = p.validate().unwrap_err();
            assert!(format!("{e}").contains(field), "{field}: {e}");
        };
        check(&|p| p.bfv.poly_modulus_degree = 3000, "poly_modulus_degree");
        check(&|p| p.bfv.plain_modulus = 65535, "not a prime");
        check(&|p| p.bfv.plain_modulus = 40961, "1 mod 2n"); // 40961 = 1 mod 8192 only
        check(&|p| p.bfv.coeff_modulus_bits = vec![], "coeff_modulus_bits");
        check(
            &|p| p.bfv.coeff_modulus_bits = vec![62],
            "coeff_modulus_bits",
        );
        check(&|p| p.hash_functions = 9, "hash function count");
        check(&|p| p.felts_per_item = 0, "felts_per_item");
        check(&|p| p.table_size = 1500, "table_size");
        check(&|p| p.table_size = 0, "table_size");
        check(&|p| p.max_items_per_bin = 0, "max_items_per_bin");
        check(&|p| p.query_powers = vec![2, 3], "start with 1");
        check(&|p| p.query_powers = vec![1, 5, 3], "sorted");
        check(&|p| p.query_powers = vec![1, 3, 3], "sorted");
        check(
            &|p| p.query_powers = vec![1, 65],
            "not a power the sender needs",
        );
        check(&|p| p.felts_per_item = 2, "false-positive"); // 32 bits
        check(&|p| p.label_byte_count = 5000, "label_byte_count");
        check(&|p| p.nonce_byte_count = 65, "nonce");
        check(&|p| p.ps_low_degree = 65, "ps_low_degree");
        // A smaller table inside one plaintext is fine.
        let mut p = base();
        p.table_size = 700;
        assert!(p.validate().is_ok());
    }

    #[test]
    fn paterson_stockmeyer_targets_and_reachability() {
        let mut p = base();
        p.max_items_per_bin = 16;
        p.ps_low_degree = 3;
        p.query_powers = vec![1, 3];
        assert_eq!(p.target_powers(), vec![1, 2, 3, 4, 8, 12, 16]);
        let dag = p.validate().unwrap();
        assert_eq!(dag.node(4).unwrap().parents, Some((1, 3)));
        assert_eq!(dag.node(8).unwrap().parents, Some((4, 4)));
        assert_eq!(dag.node(16).unwrap().parents, Some((8, 8)));
        assert_eq!(dag.depth(), 3);
        // A query power that is neither low nor high is not needed.
        p.query_powers = vec![1, 5];
        assert!(p.validate().is_err());
    }

    #[test]
    fn unreachable_power() {
        // 8 cannot be written as a sum of two targets among {1, 8}.
        assert_eq!(
            PowersDag::new(&[1], &[1, 8]).unwrap_err(),
            Error::UnreachablePower { power: 8 }
        );
        assert_eq!(
            PowersDag::new(&[], &[1]).unwrap_err(),
            Error::UnreachablePower { power: 1 }
        );
        assert!(PowersDag::new(&[1, 9], &[1, 2]).is_err());
    }

    #[test]
    fn false_positive_estimate() {
        let p = base();
        let bits = (63 - p.bfv.plain_modulus.leading_zeros()) as f64;
        let b = p.max_items_per_bin as f64;
        // Empty database: one bundle of slack per bin.
        let fp = p.false_positive_log2(1024, 0);
        let expect = (1024.0f64 * 3.0).log2() + p.felts_per_item as f64 * (b.log2() - bits);
        assert!((fp - expect).abs() < 1e-9, "{fp} {expect}");
        // More sender items mean more bundles per bin: a larger bound.
        assert!(p.false_positive_log2(1024, 1 << 24) > fp);
        assert!(p.validate_for_sizes(1024, 1 << 20).is_ok());
        let mut q = base();
        q.felts_per_item = 2;
        q.table_size = 2048;
        assert!(matches!(
            q.validate(),
            Err(Error::FalsePositiveRateTooHigh { .. })
        ));
        assert_eq!(p.false_positive_log2(0, 10), f64::NEG_INFINITY);
    }

    /// Items are 128 bits: field elements past them add nothing to the
    /// bound, and a whole element past them is rejected.
    #[test]
    fn felts_past_128_bits() {
        let mut p = base();
        p.bfv.plain_modulus = 40961; // 15 bits per element
        p.bfv.poly_modulus_degree = 4096;
        p.bfv.coeff_modulus_bits = vec![36, 36, 37];
        p.table_size = 455;
        p.felts_per_item = 9; // 135 bits: the last element holds 8
        let b = (p.max_items_per_bin as f64).log2();
        let expect = 3.0f64.log2() + 8.0 * (b - 15.0) + (b - 8.0).min(0.0);
        let fp = p.false_positive_log2(1, 0);
        assert!((fp - expect).abs() < 1e-9, "{fp} {expect}");
        assert_eq!(p.item_bit_count(), 128);
        p.validate().unwrap();
        p.felts_per_item = 10; // 150 bits: a whole element past 128
        p.table_size = 409;
        assert!(matches!(
            p.validate(),
            Err(Error::InvalidParams {
                field: "felts_per_item",
                ..
            })
        ));
    }

    /// Exhaustive minimum depth by BFS over all targets (small cases).
    fn brute_min_depth(sources: &[u32], max: u32) -> Vec<u32> {
        let mut d = vec![u32::MAX; max as usize + 1];
        for &s in sources {
            d[s as usize] = 0;
        }
        loop {
            let mut changed = false;
            for p in 2..=max {
                for a in 1..=p / 2 {
                    let (da, db) = (d[a as usize], d[(p - a) as usize]);
                    if da != u32::MAX && db != u32::MAX && da.max(db) + 1 < d[p as usize] {
                        d[p as usize] = da.max(db) + 1;
                        changed = true;
                    }
                }
            }
            if !changed {
                return d;
            }
        }
    }

    proptest! {
        #[test]
        fn dag_depth_is_minimal(extra in proptest::collection::btree_set(2u32..40, 0..5), max in 1u32..40) {
            let mut sources = vec![1u32];
            sources.extend(extra.into_iter().filter(|&s| s <= max));
            let targets: Vec<u32> = (1..=max).collect();
            let dag = PowersDag::new(&sources, &targets).unwrap();
            let brute = brute_min_depth(&sources, max);
            for n in dag.nodes() {
                prop_assert_eq!(n.depth, brute[n.power as usize]);
            }
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(p) = PsiParams::from_wire(&bytes) {
                let _ = p.validate();
                let _ = p.false_positive_log2(10, 1000);
            }
        }
    }
}
