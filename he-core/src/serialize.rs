//! Compact, versioned, validated serialization.
//!
//! Every object starts with a 10-byte header: format version (1), object
//! tag, and the 8-byte [fingerprint](crate::BfvParameters::fingerprint) of
//! its parameter set. Residues mod `q_i` are bit-packed at the bit width of
//! `q_i` (little-endian bit order, each residue polynomial padded to a
//! whole byte). Uniform halves of seeded objects are stored as their
//! 32-byte seed.
//!
//! Decoding takes the parameters and checks, before allocating, that the
//! input is long enough; it rejects unknown versions and tags, foreign
//! fingerprints, out-of-range levels, sizes and coefficients, and trailing
//! bytes, always with an [`Error`], never a panic.

use std::sync::Arc;

use zeroize::{Zeroize, Zeroizing};

use crate::ciphertext::Ciphertext;
use crate::encryption::expand_seeded_c1;
use crate::error::{Error, Result};
use crate::keys::{PublicKey, RelinKeys, SecretKey};
use crate::modulus::Modulus;
use crate::params::{BfvParameters, MAX_CIPHERTEXT_SIZE};
use crate::plaintext::{Plaintext, PlaintextNtt};
use crate::rns;
use crate::sampling;

/// Serialization format version.
pub const VERSION: u8 = 1;

/// Object tags.
pub(crate) mod tag {
    pub const CIPHERTEXT: u8 = 1;
    pub const PLAINTEXT: u8 = 2;
    pub const PLAINTEXT_NTT: u8 = 3;
    pub const PUBLIC_KEY: u8 = 4;
    pub const RELIN_KEYS: u8 = 5;
    pub const SECRET_KEY: u8 = 6;
    pub const COMPRESSED_CIPHERTEXT: u8 = 7;
}

const FLAG_NTT: u8 = 1;
const FLAG_SEEDED: u8 = 2;

pub(crate) struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn new(tag: u8, params: &BfvParameters, capacity: usize) -> Self {
        let mut buf = Vec::with_capacity(capacity + 10);
        buf.push(VERSION);
        buf.push(tag);
        buf.extend_from_slice(&params.fingerprint());
        Self { buf }
    }

    pub(crate) fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    /// Packs `values` at `bits` bits each, then pads to a byte.
    pub(crate) fn packed(&mut self, values: &[u64], bits: u32) {
        let mut acc = 0u128;
        let mut filled = 0u32;
        for &v in values {
            acc |= (v as u128) << filled;
            filled += bits;
            while filled >= 8 {
                self.buf.push(acc as u8);
                acc >>= 8;
                filled -= 8;
            }
        }
        if filled > 0 {
            self.buf.push(acc as u8);
        }
    }

    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// Packs every residue polynomial of an RNS polynomial over `moduli`.
    fn rns(&mut self, data: &[u64], moduli: &[&Modulus], n: usize) {
        for (m, chunk) in moduli.iter().zip(data.chunks_exact(n)) {
            self.packed(chunk, m.bits());
        }
    }
}

pub(crate) fn packed_len(count: usize, bits: u32) -> usize {
    (count * bits as usize).div_ceil(8)
}

pub(crate) struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(data: &'a [u8], expected_tag: u8, params: &BfvParameters) -> Result<Self> {
        let mut r = Self { data, pos: 0 };
        let version = r.u8()?;
        if version != VERSION {
            return Err(Error::BadVersion(version));
        }
        let found = r.u8()?;
        if found != expected_tag {
            return Err(Error::BadTag {
                expected: expected_tag,
                found,
            });
        }
        if r.take(8)? != params.fingerprint() {
            return Err(Error::ParameterMismatch(
                "serialized object belongs to another parameter set".into(),
            ));
        }
        Ok(r)
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8]> {
        let rest = self.data.len() - self.pos;
        if rest < len {
            return Err(Error::TooShort { needed: len - rest });
        }
        let s = &self.data[self.pos..self.pos + len];
        self.pos += len;
        Ok(s)
    }

    pub(crate) fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn seed(&mut self) -> Result<[u8; 32]> {
        let mut s = [0u8; 32];
        s.copy_from_slice(self.take(32)?);
        Ok(s)
    }

    /// Unpacks `count` values of `bits` bits, each required to be below `bound`.
    ///
    /// Each value is cut from a 16-byte little-endian window starting at
    /// its first byte (a value of up to 64 bits plus a shift of up to 7
    /// fits in 128), so the loop has no data-dependent branches; the range
    /// check is folded and reported once at the end.
    pub(crate) fn packed_into(&mut self, out: &mut [u64], bits: u32, bound: u64) -> Result<()> {
        let bytes = self.take(packed_len(out.len(), bits))?;
        let mask = if bits == 64 {
            u64::MAX
        } else {
            (1u64 << bits) - 1
        };
        let bits = bits as usize;
        let window = |byte: usize| -> u128 {
            match bytes.get(byte..byte + 16) {
                Some(w) => u128::from_le_bytes(w.try_into().expect("a 16-byte window")),
                None => {
                    // The last values: zero-extend what remains.
                    let mut buf = [0u8; 16];
                    let rest = bytes.get(byte..).unwrap_or(&[]);
                    buf[..rest.len()].copy_from_slice(rest);
                    u128::from_le_bytes(buf)
                }
            }
        };
        let mut out_of_range = false;
        for (i, o) in out.iter_mut().enumerate() {
            let bit = i * bits;
            let v = ((window(bit >> 3) >> (bit & 7)) as u64) & mask;
            out_of_range |= v >= bound;
            *o = v;
        }
        if out_of_range {
            return Err(Error::CoefficientOutOfRange { modulus: bound });
        }
        Ok(())
    }

    fn rns(&mut self, moduli: &[&Modulus], n: usize) -> Result<Vec<u64>> {
        let total: usize = moduli.iter().map(|m| packed_len(n, m.bits())).sum();
        if self.data.len() - self.pos < total {
            return Err(Error::TooShort {
                needed: total - (self.data.len() - self.pos),
            });
        }
        let mut out = vec![0u64; moduli.len() * n];
        for (m, chunk) in moduli.iter().zip(out.chunks_exact_mut(n)) {
            self.packed_into(chunk, m.bits(), m.value())?;
        }
        Ok(out)
    }

    pub(crate) fn finish(self) -> Result<()> {
        let rest = self.data.len() - self.pos;
        if rest != 0 {
            return Err(Error::TrailingData(rest));
        }
        Ok(())
    }
}

fn level_moduli(params: &BfvParameters, level: usize) -> Vec<&Modulus> {
    rns::moduli(params, &rns::basis_q(params, level))
}

impl Ciphertext {
    /// Serializes; a seeded symmetric ciphertext still untouched at level 0
    /// stores its seed instead of its second polynomial (half the size).
    pub fn to_bytes(&self, params: &BfvParameters) -> Result<Vec<u8>> {
        self.check(params)?;
        let n = params.degree();
        let moduli = level_moduli(params, self.level);
        let seeded = self
            .seed
            .filter(|_| !self.ntt && self.level == 0 && self.polys.len() == 2);
        let per_poly: usize = moduli.iter().map(|m| packed_len(n, m.bits())).sum();
        let mut w = Writer::new(
            tag::CIPHERTEXT,
            params,
            3 + 32 + per_poly * self.polys.len(),
        );
        w.u8(self.level as u8);
        w.u8(if self.ntt { FLAG_NTT } else { 0 } | if seeded.is_some() { FLAG_SEEDED } else { 0 });
        w.u8(self.polys.len() as u8);
        match seeded {
            Some(seed) => {
                w.bytes(&seed);
                w.rns(&self.polys[0], &moduli, n);
            }
            None => {
                for p in &self.polys {
                    w.rns(p, &moduli, n);
                }
            }
        }
        Ok(w.buf)
    }

    /// Decodes and validates a ciphertext of `params`.
    pub fn from_bytes(bytes: &[u8], params: &Arc<BfvParameters>) -> Result<Self> {
        let mut r = Reader::new(bytes, tag::CIPHERTEXT, params)?;
        let level = r.u8()? as usize;
        if level > params.max_level() {
            return Err(Error::LevelMismatch(format!(
                "serialized level {level} exceeds the maximum {}",
                params.max_level()
            )));
        }
        let flags = r.u8()?;
        if flags & !(FLAG_NTT | FLAG_SEEDED) != 0 {
            return Err(Error::InvalidValue(format!(
                "unknown ciphertext flags {flags:#04x}"
            )));
        }
        let (ntt, seeded) = (flags & FLAG_NTT != 0, flags & FLAG_SEEDED != 0);
        let size = r.u8()? as usize;
        if !(2..=MAX_CIPHERTEXT_SIZE).contains(&size) {
            return Err(Error::TooLarge(format!(
                "ciphertext size {size} outside 2..={MAX_CIPHERTEXT_SIZE}"
            )));
        }
        if seeded && (ntt || level != 0 || size != 2) {
            return Err(Error::InvalidValue(
                "seeded ciphertexts are fresh: size 2, level 0, coefficient form".into(),
            ));
        }
        let moduli = level_moduli(params, level);
        let n = params.degree();
        let mut polys = Vec::with_capacity(size);
        let seed = if seeded {
            let seed = r.seed()?;
            polys.push(r.rns(&moduli, n)?);
            polys.push(expand_seeded_c1(params, &seed));
            Some(seed)
        } else {
            for _ in 0..size {
                polys.push(r.rns(&moduli, n)?);
            }
            None
        };
        r.finish()?;
        Ok(Self {
            fingerprint: params.fingerprint(),
            level,
            ntt,
            polys,
            seed,
        })
    }
}

impl Plaintext {
    /// Serializes (coefficients packed at the width of `t`).
    pub fn to_bytes(&self, params: &BfvParameters) -> Result<Vec<u8>> {
        self.check(params)?;
        let t = params.plaintext();
        let mut w = Writer::new(
            tag::PLAINTEXT,
            params,
            packed_len(params.degree(), t.bits()),
        );
        w.packed(&self.coeffs, t.bits());
        Ok(w.buf)
    }

    /// Decodes and validates a plaintext of `params`.
    pub fn from_bytes(bytes: &[u8], params: &Arc<BfvParameters>) -> Result<Self> {
        let mut r = Reader::new(bytes, tag::PLAINTEXT, params)?;
        let t = params.plaintext();
        let coeffs = r.rns(&[t], params.degree())?;
        r.finish()?;
        Ok(Self {
            fingerprint: params.fingerprint(),
            coeffs,
        })
    }
}

impl PlaintextNtt {
    /// Serializes (residues packed at their modulus width).
    pub fn to_bytes(&self, params: &BfvParameters) -> Result<Vec<u8>> {
        if self.fingerprint != params.fingerprint() {
            return Err(Error::ParameterMismatch(
                "plaintext belongs to other parameters".into(),
            ));
        }
        let moduli = level_moduli(params, self.level);
        let mut w = Writer::new(tag::PLAINTEXT_NTT, params, self.data.len() * 8);
        w.u8(self.level as u8);
        w.rns(&self.data, &moduli, params.degree());
        Ok(w.buf)
    }

    /// Decodes and validates an NTT-form plaintext of `params`.
    pub fn from_bytes(bytes: &[u8], params: &Arc<BfvParameters>) -> Result<Self> {
        let (level, data) = Self::decode_residues(bytes, params)?;
        Ok(PlaintextNtt::assemble(params, level, data))
    }

    /// Like [`from_bytes`](Self::from_bytes), but the result is
    /// [compact](Self::new_compact): no Shoup constants are computed (half
    /// the memory, no work beyond unpacking and range checks). For loading
    /// a database of many plaintexts.
    pub fn from_bytes_compact(bytes: &[u8], params: &Arc<BfvParameters>) -> Result<Self> {
        let (level, data) = Self::decode_residues(bytes, params)?;
        Ok(Self {
            fingerprint: params.fingerprint(),
            level,
            data,
            shoup: Vec::new(),
        })
    }

    /// The level and range-checked residues of a serialized NTT-form plaintext.
    fn decode_residues(bytes: &[u8], params: &BfvParameters) -> Result<(usize, Vec<u64>)> {
        let mut r = Reader::new(bytes, tag::PLAINTEXT_NTT, params)?;
        let level = r.u8()? as usize;
        if level > params.max_level() {
            return Err(Error::LevelMismatch(format!(
                "serialized level {level} out of range"
            )));
        }
        let data = r.rns(&level_moduli(params, level), params.degree())?;
        r.finish()?;
        Ok((level, data))
    }
}

impl PublicKey {
    /// Serializes (seed of `a` plus the packed first polynomial).
    pub fn to_bytes(&self, params: &BfvParameters) -> Result<Vec<u8>> {
        if self.fingerprint != params.fingerprint() {
            return Err(Error::ParameterMismatch(
                "public key belongs to other parameters".into(),
            ));
        }
        let moduli = level_moduli(params, 0);
        let mut w = Writer::new(tag::PUBLIC_KEY, params, 32 + self.c0.len() * 8);
        w.bytes(&self.seed);
        w.rns(&self.c0, &moduli, params.degree());
        Ok(w.buf)
    }

    /// Decodes and validates a public key of `params`.
    pub fn from_bytes(bytes: &[u8], params: &Arc<BfvParameters>) -> Result<Self> {
        let mut r = Reader::new(bytes, tag::PUBLIC_KEY, params)?;
        let seed = r.seed()?;
        let moduli = level_moduli(params, 0);
        let c0 = r.rns(&moduli, params.degree())?;
        r.finish()?;
        let c1 = sampling::expand_uniform(&seed, &moduli, params.degree());
        Ok(PublicKey::assemble(params, c0, c1, seed))
    }
}

impl RelinKeys {
    /// Serializes (per row: seed of `a_i` plus packed `b_i`).
    pub fn to_bytes(&self, params: &BfvParameters) -> Result<Vec<u8>> {
        self.check(params)?;
        let moduli = rns::moduli(params, &rns::basis_q_special(params, 0));
        let mut w = Writer::new(
            tag::RELIN_KEYS,
            params,
            self.rows.len() * (32 + self.rows[0].0.len() * 8),
        );
        w.u8(self.rows.len() as u8);
        for ((b, _), seed) in self.rows.iter().zip(&self.seeds) {
            w.bytes(seed);
            w.rns(b, &moduli, params.degree());
        }
        Ok(w.buf)
    }

    /// Decodes and validates relinearization keys of `params`.
    pub fn from_bytes(bytes: &[u8], params: &Arc<BfvParameters>) -> Result<Self> {
        params.require_key_switching()?;
        let mut r = Reader::new(bytes, tag::RELIN_KEYS, params)?;
        let rows_count = r.u8()? as usize;
        if rows_count != params.moduli().len() {
            return Err(Error::InvalidValue(format!(
                "{rows_count} key rows, expected {}",
                params.moduli().len()
            )));
        }
        let moduli = rns::moduli(params, &rns::basis_q_special(params, 0));
        let mut rows = Vec::with_capacity(rows_count);
        let mut seeds = Vec::with_capacity(rows_count);
        for _ in 0..rows_count {
            let seed = r.seed()?;
            let b = r.rns(&moduli, params.degree())?;
            rows.push((b, sampling::expand_uniform(&seed, &moduli, params.degree())));
            seeds.push(seed);
        }
        r.finish()?;
        Ok(RelinKeys::assemble(params, rows, seeds))
    }
}

impl SecretKey {
    /// Serializes the secret (2 bits per coefficient) into a buffer that is
    /// zeroized on drop. Store it only where a secret belongs.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let params = &self.params;
        let mut codes: Vec<u64> = self
            .coeffs
            .iter()
            .map(|&c| match c {
                0 => 0,
                1 => 1,
                _ => 2,
            })
            .collect();
        let mut w = Writer::new(tag::SECRET_KEY, params, packed_len(codes.len(), 2));
        w.packed(&codes, 2);
        codes.zeroize();
        Zeroizing::new(w.buf)
    }

    /// Decodes a secret key of `params`.
    pub fn from_bytes(bytes: &[u8], params: &Arc<BfvParameters>) -> Result<Self> {
        let mut r = Reader::new(bytes, tag::SECRET_KEY, params)?;
        let mut codes = Zeroizing::new(vec![0u64; params.degree()]);
        r.packed_into(&mut codes, 2, 3)?;
        r.finish()?;
        let coeffs = codes.iter().map(|&c| [0i8, 1, -1][c as usize]).collect();
        Ok(SecretKey::from_coeffs(params, coeffs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Packing then unpacking at every width, for lengths that end a value
    /// anywhere in the last 16-byte window; a value at the bound is refused.
    #[test]
    fn packed_round_trip_at_every_width() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for bits in 1..=64u32 {
            let mask = if bits == 64 {
                u64::MAX
            } else {
                (1 << bits) - 1
            };
            for count in [0usize, 1, 2, 3, 7, 17, 64, 257] {
                let values: Vec<u64> = (0..count)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        x & mask
                    })
                    .collect();
                let mut w = Writer { buf: Vec::new() };
                w.packed(&values, bits);
                assert_eq!(w.buf.len(), packed_len(count, bits));
                let mut out = vec![0u64; count];
                let mut r = Reader {
                    data: &w.buf,
                    pos: 0,
                };
                r.packed_into(&mut out, bits, u64::MAX).unwrap();
                r.finish().unwrap();
                assert_eq!(out, values, "bits {bits}, count {count}");
                if let Some(&max) = values.iter().max()
                    && max > 0
                {
                    let mut r = Reader {
                        data: &w.buf,
                        pos: 0,
                    };
                    assert_eq!(
                        r.packed_into(&mut out, bits, max),
                        Err(Error::CoefficientOutOfRange { modulus: max })
                    );
                }
            }
        }
    }
}
