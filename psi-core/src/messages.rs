//! Wire messages of the protocol, each with an explicit versioned binary
//! encoding ([`Codec`]). Sizes are checked against fixed limits before
//! anything is allocated; ciphertexts inside are opaque byte strings that
//! the sender and receiver decode against their BFV parameters.

use crate::error::{Error, Result};
use crate::oprf::ELEMENT_BYTES;
use crate::wire::{Codec, Reader, Writer};

/// Version of every message encoding below. Version 2: optional
/// relinearization keys in [`Query`], compressed ciphertexts in [`ResultPart`].
pub const MESSAGE_VERSION: u16 = 2;
/// Most OPRF elements in one request.
pub const MAX_OPRF_BATCH: usize = 1 << 16;
/// Largest serialized ciphertext or key accepted inside a message (64 MiB).
pub const MAX_BLOB_BYTES: usize = 64 << 20;
/// Most bundle indices in a query.
pub const MAX_BUNDLE_INDICES: usize = 1 << 12;
/// Most query powers per bundle index.
pub use crate::params::MAX_QUERY_POWERS;
/// Most label ciphertexts in one result part.
pub const MAX_LABEL_PARTS: usize = 1 << 10;

/// Blinded OPRF elements, from receiver to sender.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OprfRequest {
    /// One compressed ristretto255 point per item.
    pub elements: Vec<[u8; ELEMENT_BYTES]>,
}

/// Evaluated OPRF elements, from sender to receiver, in request order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OprfResponse {
    /// One compressed ristretto255 point per requested element.
    pub elements: Vec<[u8; ELEMENT_BYTES]>,
}

fn encode_elements(w: &mut Writer, elements: &[[u8; ELEMENT_BYTES]]) {
    w.u16(MESSAGE_VERSION);
    w.vec(elements, |w, e| w.raw(e));
}

fn decode_elements(r: &mut Reader<'_>) -> Result<Vec<[u8; ELEMENT_BYTES]>> {
    r.version(MESSAGE_VERSION)?;
    r.vec(MAX_OPRF_BATCH, |r| r.array::<ELEMENT_BYTES>())
}

impl Codec for OprfRequest {
    fn encode(&self, w: &mut Writer) {
        encode_elements(w, &self.elements);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            elements: decode_elements(r)?,
        })
    }
}

impl Codec for OprfResponse {
    fn encode(&self, w: &mut Writer) {
        encode_elements(w, &self.elements);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            elements: decode_elements(r)?,
        })
    }
}

/// An encrypted query: relinearization keys (only when the sender has to
/// multiply ciphertexts) and, for each bundle index (plaintext row of the
/// cuckoo table), the encrypted query powers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    /// [`PsiParams::fingerprint`](crate::PsiParams::fingerprint) of the parameters used.
    pub params_fingerprint: [u8; 32],
    /// Serialized `he_core::RelinKeys`; `None` when the parameters need no
    /// ciphertext product (every needed power is a query power and there is
    /// no Paterson-Stockmeyer step).
    pub relin_keys: Option<Vec<u8>>,
    /// `powers[bundle_index][j]`: serialized ciphertext of the table row
    /// raised to `query_powers[j]`, slot-wise.
    pub powers: Vec<Vec<Vec<u8>>>,
}

impl Query {
    /// Total bytes of the encoded query.
    pub fn encoded_len(&self) -> usize {
        self.to_wire().len()
    }
}

impl Codec for Query {
    fn encode(&self, w: &mut Writer) {
        w.u16(MESSAGE_VERSION);
        w.raw(&self.params_fingerprint);
        match &self.relin_keys {
            Some(rk) => {
                w.u8(1);
                w.bytes(rk);
            }
            None => w.u8(0),
        }
        w.vec(&self.powers, |w, row| w.vec(row, |w, ct| w.bytes(ct)));
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        r.version(MESSAGE_VERSION)?;
        let params_fingerprint = r.array::<32>()?;
        let relin_keys = match r.u8()? {
            0 => None,
            1 => Some(r.bytes(MAX_BLOB_BYTES)?.to_vec()),
            f => return Err(Error::Malformed(format!("relinearization key flag {f}"))),
        };
        let powers = r.vec(MAX_BUNDLE_INDICES, |r| {
            r.vec(MAX_QUERY_POWERS, |r| Ok(r.bytes(MAX_BLOB_BYTES)?.to_vec()))
        })?;
        Ok(Self {
            params_fingerprint,
            relin_keys,
            powers,
        })
    }
}

/// One part of the answer: the evaluation of one bin bundle, sent as soon
/// as it is computed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResultPart {
    /// Bundle index (plaintext row of the table) this part belongs to.
    pub bundle_index: u32,
    /// How many parts the whole answer has (the receiver stops after that many).
    pub total_parts: u32,
    /// Serialized `he_core::CompressedCiphertext` of the matching
    /// polynomials' values: zero in every slot of a matching item.
    pub matching: Vec<u8>,
    /// Serialized `he_core::CompressedCiphertext`s of the label
    /// polynomials' values, one per label part.
    pub labels: Vec<Vec<u8>>,
}

impl Codec for ResultPart {
    fn encode(&self, w: &mut Writer) {
        w.u16(MESSAGE_VERSION);
        w.u32(self.bundle_index);
        w.u32(self.total_parts);
        w.bytes(&self.matching);
        w.vec(&self.labels, |w, ct| w.bytes(ct));
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        r.version(MESSAGE_VERSION)?;
        let bundle_index = r.u32()?;
        let total_parts = r.u32()?;
        let matching = r.bytes(MAX_BLOB_BYTES)?.to_vec();
        let labels = r.vec(MAX_LABEL_PARTS, |r| Ok(r.bytes(MAX_BLOB_BYTES)?.to_vec()))?;
        if bundle_index as usize >= MAX_BUNDLE_INDICES {
            return Err(Error::Malformed(format!(
                "bundle index {bundle_index} out of range"
            )));
        }
        Ok(Self {
            bundle_index,
            total_parts,
            matching,
            labels,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn samples() -> Vec<Vec<u8>> {
        vec![
            OprfRequest {
                elements: vec![[1; 32], [2; 32]],
            }
            .to_wire(),
            OprfResponse {
                elements: vec![[3; 32]],
            }
            .to_wire(),
            Query {
                params_fingerprint: [7; 32],
                relin_keys: Some(vec![1, 2, 3]),
                powers: vec![vec![vec![4, 5], vec![6]], vec![vec![], vec![9; 40]]],
            }
            .to_wire(),
            Query {
                params_fingerprint: [8; 32],
                relin_keys: None,
                powers: vec![vec![vec![4, 5]]],
            }
            .to_wire(),
            ResultPart {
                bundle_index: 3,
                total_parts: 9,
                matching: vec![1; 20],
                labels: vec![vec![2; 5], vec![3; 7]],
            }
            .to_wire(),
        ]
    }

    fn decode_any(b: &[u8]) {
        let _ = OprfRequest::from_wire(b);
        let _ = OprfResponse::from_wire(b);
        let _ = Query::from_wire(b);
        let _ = ResultPart::from_wire(b);
    }

    #[test]
    fn round_trips() {
        let s = samples();
        assert_eq!(OprfRequest::from_wire(&s[0]).unwrap().elements.len(), 2);
        assert_eq!(
            OprfResponse::from_wire(&s[1]).unwrap().elements,
            vec![[3; 32]]
        );
        let q = Query::from_wire(&s[2]).unwrap();
        assert_eq!(q.powers[1][1], vec![9; 40]);
        assert_eq!(q.encoded_len(), s[2].len());
        assert_eq!(Query::from_wire(&s[3]).unwrap().relin_keys, None);
        assert_eq!(ResultPart::from_wire(&s[4]).unwrap().total_parts, 9);
    }

    #[test]
    fn truncations_and_corruptions_never_panic() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for bytes in samples() {
            for len in 0..bytes.len() {
                assert!(Query::from_wire(&bytes[..len]).is_err() || len == bytes.len());
                decode_any(&bytes[..len]);
            }
            for _ in 0..2000 {
                let mut b = bytes.clone();
                let i = rng.random_range(0..b.len());
                b[i] = rng.random();
                decode_any(&b);
            }
        }
        // A huge declared count with no data behind it is refused, not allocated.
        let mut w = Writer::new();
        w.u16(MESSAGE_VERSION);
        w.u32(u32::MAX);
        assert!(OprfRequest::from_wire(&w.into_bytes()).is_err());
    }
}
