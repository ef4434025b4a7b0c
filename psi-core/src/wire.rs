//! A small bounded binary codec (in the style of rustls' `Codec`/`Reader`).
//!
//! Integers are little-endian. Byte strings and vectors carry a `u32`
//! length prefix; the reader checks each prefix against a caller-given
//! maximum **before** allocating, and checks that the bytes are actually
//! there. [`Reader::finish`] rejects trailing bytes. No input can make the
//! reader panic or allocate more than the input's own size (plus the
//! caller's bounds).

use crate::error::{Error, Result};

/// Something that can be written to and read from the wire.
pub trait Codec: Sized {
    /// Appends the encoding of `self`.
    fn encode(&self, w: &mut Writer);
    /// Reads one value.
    fn decode(r: &mut Reader<'_>) -> Result<Self>;

    /// The encoding as a fresh byte vector.
    fn to_wire(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.encode(&mut w);
        w.into_bytes()
    }

    /// Decodes a complete message: errors on trailing bytes.
    fn from_wire(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes);
        let v = Self::decode(&mut r)?;
        r.finish()?;
        Ok(v)
    }
}

/// Appends encoded values to a byte vector.
#[derive(Clone, Debug, Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes a `u8`.
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    /// Writes a little-endian `u16`.
    pub fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    /// Writes a little-endian `u32`.
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    /// Writes a little-endian `u64`.
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    /// Writes raw bytes with no length prefix (fixed-size fields).
    pub fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Writes a `u32` length prefix and the bytes.
    ///
    /// # Panics
    /// If `bytes` is longer than `u32::MAX` (a programming error on the
    /// encoding side; never reachable from decoded input).
    pub fn bytes(&mut self, bytes: &[u8]) {
        self.len_prefix(bytes.len());
        self.buf.extend_from_slice(bytes);
    }

    /// Writes a `u32` count and each element with `f`.
    pub fn vec<T>(&mut self, items: &[T], mut f: impl FnMut(&mut Self, &T)) {
        self.len_prefix(items.len());
        for it in items {
            f(self, it);
        }
    }

    fn len_prefix(&mut self, len: usize) {
        let len = u32::try_from(len)
            .expect("encoded length must fit u32: message far beyond any wire limit");
        self.u32(len);
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True when nothing was written.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The encoded bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

/// Reads encoded values from a byte slice, with bounds checks.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Takes the next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let available = self.remaining();
        if n > available {
            return Err(Error::TooShort {
                needed: n,
                available,
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// Reads a fixed-size array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    /// Reads a `u8`.
    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }
    /// Reads a little-endian `u16`.
    pub fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    /// Reads a little-endian `u32`.
    pub fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    /// Reads a little-endian `u64`.
    pub fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// Reads a `u16` version and checks it equals `expected`.
    pub fn version(&mut self, expected: u16) -> Result<()> {
        let got = self.u16()?;
        if got != expected {
            return Err(Error::BadVersion { expected, got });
        }
        Ok(())
    }

    fn len_prefix(&mut self, max: usize) -> Result<usize> {
        let len = self.u32()? as u64;
        if len > max as u64 {
            return Err(Error::TooLarge {
                len,
                max: max as u64,
            });
        }
        usize::try_from(len).map_err(|_| Error::TooLarge {
            len,
            max: max as u64,
        })
    }

    /// Reads a length-prefixed byte string of at most `max` bytes, borrowed
    /// from the input.
    pub fn bytes(&mut self, max: usize) -> Result<&'a [u8]> {
        let len = self.len_prefix(max)?;
        self.take(len)
    }

    /// Reads a length-prefixed vector of at most `max` elements, each with
    /// `f`. Preallocation is bounded by the remaining input, so a lying
    /// count cannot make it allocate more than the message could hold.
    pub fn vec<T>(
        &mut self,
        max: usize,
        mut f: impl FnMut(&mut Self) -> Result<T>,
    ) -> Result<Vec<T>> {
        let count = self.len_prefix(max)?;
        let mut out = Vec::with_capacity(count.min(self.remaining()));
        for _ in 0..count {
            out.push(f(self)?);
        }
        Ok(out)
    }

    /// Succeeds only when every byte was read.
    pub fn finish(self) -> Result<()> {
        match self.remaining() {
            0 => Ok(()),
            remaining => Err(Error::TrailingData { remaining }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A message using every primitive, as a realistic decode target.
    #[derive(Debug, PartialEq, Clone)]
    struct Sample {
        a: u8,
        b: u16,
        c: u32,
        d: u64,
        fp: [u8; 8],
        name: Vec<u8>,
        elems: Vec<[u8; 4]>,
        nested: Vec<Vec<u8>>,
    }

    const VERSION: u16 = 3;

    impl Codec for Sample {
        fn encode(&self, w: &mut Writer) {
            w.u16(VERSION);
            w.u8(self.a);
            w.u16(self.b);
            w.u32(self.c);
            w.u64(self.d);
            w.raw(&self.fp);
            w.bytes(&self.name);
            w.vec(&self.elems, |w, e| w.raw(e));
            w.vec(&self.nested, |w, n| w.bytes(n));
        }
        fn decode(r: &mut Reader<'_>) -> Result<Self> {
            r.version(VERSION)?;
            Ok(Self {
                a: r.u8()?,
                b: r.u16()?,
                c: r.u32()?,
                d: r.u64()?,
                fp: r.array()?,
                name: r.bytes(64)?.to_vec(),
                elems: r.vec(100, |r| r.array())?,
                nested: r.vec(10, |r| Ok(r.bytes(32)?.to_vec()))?,
            })
        }
    }

    fn sample() -> Sample {
        Sample {
            a: 7,
            b: 0x1234,
            c: 0xdead_beef,
            d: u64::MAX - 1,
            fp: *b"fingerpr",
            name: b"psi".to_vec(),
            elems: vec![[1, 2, 3, 4], [5, 6, 7, 8]],
            nested: vec![vec![], vec![9; 32]],
        }
    }

    #[test]
    fn round_trip_and_layout() {
        let s = sample();
        let bytes = s.to_wire();
        assert_eq!(&bytes[..5], &[3, 0, 7, 0x34, 0x12]);
        assert_eq!(Sample::from_wire(&bytes).unwrap(), s);
    }

    #[test]
    fn every_truncation_fails_cleanly() {
        let bytes = sample().to_wire();
        for n in 0..bytes.len() {
            let e = Sample::from_wire(&bytes[..n]).unwrap_err();
            assert!(matches!(e, Error::TooShort { .. }), "{n}: {e:?}");
        }
    }

    #[test]
    fn trailing_data_and_version() {
        let mut bytes = sample().to_wire();
        bytes.push(0);
        assert_eq!(
            Sample::from_wire(&bytes).unwrap_err(),
            Error::TrailingData { remaining: 1 }
        );
        let mut bytes = sample().to_wire();
        bytes[0] = 4;
        assert_eq!(
            Sample::from_wire(&bytes).unwrap_err(),
            Error::BadVersion {
                expected: 3,
                got: 4
            }
        );
    }

    #[test]
    fn length_checked_before_allocation() {
        // A vector claiming 2^32 - 1 elements with a tiny body.
        let mut w = Writer::new();
        w.u32(u32::MAX);
        let bytes = w.into_bytes();
        let mut r = Reader::new(&bytes);
        assert_eq!(
            r.vec(1000, |r| r.u8()).unwrap_err(),
            Error::TooLarge {
                len: u32::MAX as u64,
                max: 1000
            }
        );
        // Within the limit but beyond the input: TooShort, no huge allocation.
        let mut r = Reader::new(&bytes);
        assert!(matches!(
            r.vec(usize::MAX, |r| r.u64()).unwrap_err(),
            Error::TooShort { .. }
        ));
        let mut r = Reader::new(&bytes);
        assert!(matches!(
            r.bytes(usize::MAX).unwrap_err(),
            Error::TooShort { .. }
        ));
    }

    proptest! {
        #[test]
        fn random_corruption_never_panics(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
            let mut bytes = sample().to_wire();
            let len = bytes.len();
            for (i, v) in flips {
                bytes[i % len] ^= v;
            }
            let _ = Sample::from_wire(&bytes);
        }

        #[test]
        fn random_input_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Sample::from_wire(&bytes);
        }
    }
}
