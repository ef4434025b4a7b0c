//! RFC 9497 OPRF in mode `OPRF(ristretto255, SHA-512)`, batched.
//!
//! The client side is the `voprf` crate (pinned `=0.6.0-pre.1`), which
//! implements RFC 9497 exactly. The server side ([`OprfKey`]) computes the
//! same functions (HashToGroup with `expand_message_xmd`, the context
//! string `"OPRFV1-\x00-ristretto255-SHA512"`, the `"Finalize"` hash) on
//! curve25519-dalek 5, whose AVX-512 IFMA backend runs on stable Rust, and
//! encodes each batch with one shared inversion. The tests check both
//! sides against the RFC's Appendix A.1.1 test vectors and against each
//! other.
//!
//! Flow: the client [`OprfClient::blind`]s its items and sends the
//! blinded elements; the server answers with [`OprfKey::evaluate_batch`];
//! the client [`OprfClient::finalize`]s to 64-byte [`OprfOutput`]s. The
//! server computes the same outputs for its own items directly with
//! [`OprfKey::evaluate_direct`].
//!
//! Each output splits into a 128-bit PSI item and a 256-bit label key
//! ([`OprfOutput::item_and_label_key`]).
//!
//! Inputs are limited to 65535 bytes, as RFC 9497's `Finalize` encodes the
//! input length in two bytes.

use core::fmt;

use curve25519_dalek::traits::IsIdentity;
use rand_core::OsRng;
use rayon::prelude::*;
use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;
use voprf::{EvaluationElement, OprfClient as VClient, OprfServer, Ristretto255};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::{Error, Result};
use crate::hashing::{HASHED_ITEM_BYTES, HashedItem};
use crate::label::LabelKey;

/// Bytes in a serialized group element (compressed ristretto255 point).
pub const ELEMENT_BYTES: usize = 32;
/// Bytes in a serialized OPRF key (a ristretto255 scalar).
pub const KEY_BYTES: usize = 32;
/// Bytes in an OPRF output (SHA-512).
pub const OUTPUT_BYTES: usize = 64;
/// Largest OPRF input, in bytes.
pub const MAX_INPUT_BYTES: usize = u16::MAX as usize;

/// The server side's group arithmetic (curve25519-dalek 5).
mod dalek {
    pub(super) use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
    pub(super) use curve25519_dalek::scalar::Scalar;
}

/// `contextString` of RFC 9497 for `OPRF(ristretto255, SHA-512)` (mode 0).
const CONTEXT: &[u8] = b"OPRFV1-\x00-ristretto255-SHA512";

/// Items per batch in [`OprfKey::evaluate_direct_batch`] when callers
/// split work across threads: large enough to amortize the one shared
/// inversion of the batch encoding.
pub const DIRECT_BATCH: usize = 256;

/// The server's secret OPRF key.
///
/// The server side runs on `curve25519-dalek` 5 (its AVX-512 IFMA backend
/// where the CPU has one, chosen at run time), the client side on `voprf`;
/// the tests check both against each other and the RFC vectors.
///
/// Zeroized on drop, redacted in `Debug`, deliberately not `Clone`.
pub struct OprfKey {
    /// The key `k`.
    k: dalek::Scalar,
    /// `k / 2`: the batch encoding ([`dalek::RistrettoPoint::double_and_compress_batch`])
    /// encodes `2P` with one inversion shared by the batch instead of one
    /// inverse square root per point, so points are multiplied by `k / 2`.
    half: dalek::Scalar,
}

impl OprfKey {
    /// A fresh key from the OS CSPRNG (RFC 9497 `RandomScalar`: uniform,
    /// non-zero).
    pub fn generate() -> Result<Self> {
        let server = OprfServer::<Ristretto255>::new(&mut OsRng).map_err(|_| Error::Rng)?;
        let mut ser = server.serialize();
        let key = Self::from_bytes(&ser);
        ser.as_mut_slice().zeroize();
        key
    }

    /// The key as 32 bytes (a canonical little-endian scalar). Keep it secret.
    pub fn to_bytes(&self) -> Zeroizing<[u8; KEY_BYTES]> {
        Zeroizing::new(self.k.to_bytes())
    }

    /// The public key `k * G` (G the ristretto255 generator), compressed:
    /// publishable, and what RFC 9497's verifiable mode proves evaluations
    /// against. Two servers with the same public key have the same key.
    pub fn public_key(&self) -> [u8; ELEMENT_BYTES] {
        dalek::RistrettoPoint::mul_base(&self.k)
            .compress()
            .to_bytes()
    }

    /// Loads a key saved with [`to_bytes`](Self::to_bytes). Errors on a
    /// wrong length, a non-canonical scalar or zero.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut raw = Zeroizing::new([0u8; KEY_BYTES]);
        if bytes.len() != KEY_BYTES {
            return Err(Error::InvalidOprfKey);
        }
        raw.copy_from_slice(bytes);
        let k = Option::<dalek::Scalar>::from(dalek::Scalar::from_canonical_bytes(*raw))
            .ok_or(Error::InvalidOprfKey)?;
        if k == dalek::Scalar::ZERO {
            return Err(Error::InvalidOprfKey);
        }
        let half = k * dalek::Scalar::from(2u8).invert();
        Ok(Self { k, half })
    }

    /// Multiplies each blinded element by the key (the server's step), in
    /// parallel.
    ///
    /// Rejects (with the position) any element that is not a canonical
    /// ristretto255 encoding or is the identity. Cost: one decoding and
    /// one scalar multiplication per element (~20 us with IFMA, ~30 us
    /// with AVX2).
    pub fn evaluate_batch(
        &self,
        blinded: &[[u8; ELEMENT_BYTES]],
    ) -> Result<Vec<[u8; ELEMENT_BYTES]>> {
        let points = blinded
            .par_iter()
            .enumerate()
            .map(|(index, b)| {
                let p = dalek::CompressedRistretto(*b)
                    .decompress()
                    .filter(|p| !p.is_identity())
                    .ok_or(Error::InvalidGroupElement { index })?;
                Ok(self.half * p)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(dalek::RistrettoPoint::double_and_compress_batch(&points)
            .into_iter()
            .map(|c| c.to_bytes())
            .collect())
    }

    /// The OPRF output for `input` computed with the key directly: what the
    /// server uses to hash its own set. Equal to the blinded protocol's
    /// output for the same input.
    pub fn evaluate_direct(&self, input: &[u8]) -> Result<OprfOutput> {
        let mut out = self.evaluate_direct_batch(&[input])?;
        Ok(out.remove(0))
    }

    /// [`evaluate_direct`](Self::evaluate_direct) for a batch (on the
    /// calling thread): RFC 9497 `Evaluate`, `SHA-512(len || input || 32 ||
    /// k * HashToGroup(input) || "Finalize")`, with one inversion for the
    /// whole batch's encodings. An over-long input is reported with its
    /// position.
    pub fn evaluate_direct_batch<I: AsRef<[u8]>>(&self, inputs: &[I]) -> Result<Vec<OprfOutput>> {
        let points = inputs
            .iter()
            .enumerate()
            .map(|(index, input)| {
                let input = input.as_ref();
                if input.len() > MAX_INPUT_BYTES {
                    return Err(Error::OprfInputTooLong {
                        index,
                        len: input.len(),
                    });
                }
                // The identity has probability about 2^-252; RFC 9497
                // reports it as an invalid input.
                let h = hash_to_group(input);
                if h.is_identity() {
                    return Err(Error::OprfInputTooLong {
                        index,
                        len: input.len(),
                    });
                }
                Ok(self.half * h)
            })
            .collect::<Result<Vec<_>>>()?;
        let encoded = dalek::RistrettoPoint::double_and_compress_batch(&points);
        Ok(inputs
            .iter()
            .zip(&encoded)
            .map(|(input, z)| {
                let input = input.as_ref();
                let digest = Sha512::new()
                    .chain_update((input.len() as u16).to_be_bytes())
                    .chain_update(input)
                    .chain_update((ELEMENT_BYTES as u16).to_be_bytes())
                    .chain_update(z.as_bytes())
                    .chain_update(b"Finalize")
                    .finalize();
                OprfOutput::from_slice(&digest)
            })
            .collect())
    }
}

impl Drop for OprfKey {
    fn drop(&mut self) {
        self.k.zeroize();
        self.half.zeroize();
    }
}

/// RFC 9497 `HashToGroup`: RFC 9380 `hash_to_ristretto255` with
/// `expand_message_xmd` (SHA-512, 64 bytes) and the DST
/// `"HashToGroup-" || contextString`.
fn hash_to_group(input: &[u8]) -> dalek::RistrettoPoint {
    const DST_LEN: usize = 12 + CONTEXT.len();
    let mut dst_prime = [0u8; DST_LEN + 1];
    dst_prime[..12].copy_from_slice(b"HashToGroup-");
    dst_prime[12..DST_LEN].copy_from_slice(CONTEXT);
    dst_prime[DST_LEN] = DST_LEN as u8;
    // expand_message_xmd with len_in_bytes = 64 = b_in_bytes: one block.
    let b0 = Sha512::new()
        .chain_update([0u8; 128])
        .chain_update(input)
        .chain_update(64u16.to_be_bytes())
        .chain_update([0u8])
        .chain_update(dst_prime)
        .finalize();
    let b1 = Sha512::new()
        .chain_update(b0)
        .chain_update([1u8])
        .chain_update(dst_prime)
        .finalize();
    dalek::RistrettoPoint::from_uniform_bytes(&b1.into())
}

impl fmt::Debug for OprfKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OprfKey(<redacted>)")
    }
}

/// The client's secret state between blinding and finalizing: the blinds
/// and the inputs. Zeroized on drop; redacted `Debug`; not `Clone`.
pub struct BlindedState {
    clients: Vec<VClient<Ristretto255>>,
    inputs: Vec<Vec<u8>>,
}

impl BlindedState {
    /// Number of blinded items.
    pub fn len(&self) -> usize {
        self.inputs.len()
    }

    /// True when no item was blinded.
    pub fn is_empty(&self) -> bool {
        self.inputs.is_empty()
    }
}

impl Drop for BlindedState {
    fn drop(&mut self) {
        // `VClient` zeroizes its blind on drop itself (derive_where
        // ZeroizeOnDrop); the inputs are wiped here.
        self.clients.clear();
        for input in &mut self.inputs {
            input.zeroize();
        }
    }
}

impl fmt::Debug for BlindedState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlindedState({} items, <redacted>)", self.inputs.len())
    }
}

/// The client side of the batched OPRF.
///
/// ```
/// use psi_core::oprf::{OprfClient, OprfKey};
/// let key = OprfKey::generate().unwrap(); // server
/// let (state, blinded) = OprfClient::blind(&[b"alice:hunter2", b"bob:pw"]).unwrap();
/// let evaluated = key.evaluate_batch(&blinded).unwrap(); // server
/// let outputs = OprfClient::finalize(state, &evaluated).unwrap();
/// assert_eq!(outputs[0], key.evaluate_direct(b"alice:hunter2").unwrap());
/// let (item, label_key) = outputs[0].item_and_label_key();
/// # let _ = (item, label_key);
/// ```
pub struct OprfClient;

impl OprfClient {
    /// Blinds every item with a fresh random scalar from the OS CSPRNG.
    ///
    /// Returns the secret state and the blinded elements to send, in item
    /// order. Errors on an input over 65535 bytes or an RNG failure.
    pub fn blind(items: &[&[u8]]) -> Result<(BlindedState, Vec<[u8; ELEMENT_BYTES]>)> {
        let mut clients = Vec::with_capacity(items.len());
        let mut inputs = Vec::with_capacity(items.len());
        let mut elements = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            if item.len() > MAX_INPUT_BYTES {
                return Err(Error::OprfInputTooLong {
                    index,
                    len: item.len(),
                });
            }
            let r = VClient::<Ristretto255>::blind(item, &mut OsRng).map_err(|e| match e {
                voprf::Error::Input => Error::OprfInputTooLong {
                    index,
                    len: item.len(),
                },
                _ => Error::Rng,
            })?;
            let mut el = [0u8; ELEMENT_BYTES];
            el.copy_from_slice(&r.message.serialize());
            elements.push(el);
            clients.push(r.state);
            inputs.push(item.to_vec());
        }
        Ok((BlindedState { clients, inputs }, elements))
    }

    /// Unblinds the server's answers and hashes them to the OPRF outputs,
    /// in item order. Errors when the count differs from the blinded count
    /// or an element is invalid (non-canonical or identity).
    pub fn finalize(
        state: BlindedState,
        evaluated: &[[u8; ELEMENT_BYTES]],
    ) -> Result<Vec<OprfOutput>> {
        if evaluated.len() != state.clients.len() {
            return Err(Error::OprfBatchMismatch {
                expected: state.clients.len(),
                got: evaluated.len(),
            });
        }
        let mut outs = Vec::with_capacity(evaluated.len());
        for (index, ((client, input), ev)) in state
            .clients
            .iter()
            .zip(&state.inputs)
            .zip(evaluated)
            .enumerate()
        {
            let ee = EvaluationElement::<Ristretto255>::deserialize(ev)
                .map_err(|_| Error::InvalidGroupElement { index })?;
            let out = client
                .finalize(input, &ee)
                .map_err(|_| Error::OprfInputTooLong {
                    index,
                    len: input.len(),
                })?;
            outs.push(OprfOutput::from_slice(&out));
        }
        Ok(outs)
    }
}

/// A 64-byte RFC 9497 OPRF output. Secret to its holder; compared in
/// constant time; zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct OprfOutput([u8; OUTPUT_BYTES]);

impl OprfOutput {
    fn from_slice(s: &[u8]) -> Self {
        let mut b = [0u8; OUTPUT_BYTES];
        let n = s.len().min(OUTPUT_BYTES);
        b[..n].copy_from_slice(&s[..n]);
        Self(b)
    }

    /// Wraps 64 raw bytes.
    pub fn from_bytes(bytes: [u8; OUTPUT_BYTES]) -> Self {
        Self(bytes)
    }

    /// The raw output bytes.
    pub fn as_bytes(&self) -> &[u8; OUTPUT_BYTES] {
        &self.0
    }

    /// Splits the output into the PSI item and the label key:
    ///
    /// - `item = SHA-512("psi-core/item/v1" || output)[..16]`
    /// - `key  = SHA-512("psi-core/label-key/v1" || output)[..32]`
    ///
    /// Independent domain-separated hashes, so knowing the item (which the
    /// sender's database reveals to nobody but is matched on) says nothing
    /// about the label key.
    pub fn item_and_label_key(&self) -> (HashedItem, LabelKey) {
        let d = Sha512::new()
            .chain_update(b"psi-core/item/v1")
            .chain_update(self.0)
            .finalize();
        let mut item = [0u8; HASHED_ITEM_BYTES];
        item.copy_from_slice(&d[..HASHED_ITEM_BYTES]);
        let mut k = Sha512::new()
            .chain_update(b"psi-core/label-key/v1")
            .chain_update(self.0)
            .finalize();
        let mut key = [0u8; 32];
        key.copy_from_slice(&k[..32]);
        k[..].zeroize();
        let lk = LabelKey::from_bytes(key);
        key.zeroize();
        (HashedItem(item), lk)
    }
}

impl PartialEq for OprfOutput {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}
impl Eq for OprfOutput {}

impl fmt::Debug for OprfOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OprfOutput(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn arr32(v: &[u8]) -> [u8; 32] {
        v.try_into().unwrap()
    }

    // RFC 9497 Appendix A.1.1 (ristretto255-SHA512, OPRF mode).
    const SK: &str = "5ebcea5ee37023ccb9fc2d2019f9d7737be85591ae8652ffa9ef0f4d37063b0e";
    const BLIND: &str = "64d37aed22a27f5191de1c1d69fadb899d8862b58eb4220029e036ec4c1f6706";
    struct Tv {
        input: &'static str,
        blinded: &'static str,
        evaluated: &'static str,
        output: &'static str,
    }
    const TVS: [Tv; 2] = [
        Tv {
            input: "00",
            blinded: "609a0ae68c15a3cf6903766461307e5c8bb2f95e7e6550e1ffa2dc99e412803c",
            evaluated: "7ec6578ae5120958eb2db1745758ff379e77cb64fe77b0b2d8cc917ea0869c7e",
            output: "527759c3d9366f277d8c6020418d96bb393ba2afb20ff90df23fb7708264e2f3\
                     ab9135e3bd69955851de4b1f9fe8a0973396719b7912ba9ee8aa7d0b5e24bcf6",
        },
        Tv {
            input: "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a",
            blinded: "da27ef466870f5f15296299850aa088629945a17d1f5b7f5ff043f76b3c06418",
            evaluated: "b4cbf5a4f1eeda5a63ce7b77c7d23f461db3fcab0dd28e4e17cecb5c90d02c25",
            output: "f4a74c9c592497375e796aa837e907b1a045d34306a749db9f34221f7e750cb4\
                     f2a6413a6bf6fa5e19ba6348eb673934a722a7ede2e7621306d18951e7cf2c73",
        },
    ];

    #[test]
    fn rfc9497_vectors() {
        let key = OprfKey::from_bytes(&hex(SK)).unwrap();
        assert_eq!(key.to_bytes().to_vec(), hex(SK));
        for tv in &TVS {
            let input = hex(tv.input);
            // Server step.
            let ev = key.evaluate_batch(&[arr32(&hex(tv.blinded))]).unwrap();
            assert_eq!(ev[0].to_vec(), hex(tv.evaluated));
            // Direct evaluation.
            assert_eq!(
                key.evaluate_direct(&input).unwrap().as_bytes().to_vec(),
                hex(tv.output)
            );
            // Client finalize with the vector's blind.
            let client = VClient::<Ristretto255>::deserialize(&hex(BLIND)).unwrap();
            let state = BlindedState {
                clients: vec![client],
                inputs: vec![input.clone()],
            };
            let out = OprfClient::finalize(state, &ev).unwrap();
            assert_eq!(out[0].as_bytes().to_vec(), hex(tv.output));
        }
    }

    /// The public key against voprf's verifiable-mode server with the same
    /// key (RFC 9497 `pkS = ScalarMultGen(skS)`).
    #[test]
    fn public_key_matches_voprf() {
        use voprf::Group;
        let key = OprfKey::from_bytes(&hex(SK)).unwrap();
        let server = voprf::VoprfServer::<Ristretto255>::new_with_key(&hex(SK)).unwrap();
        let theirs = <Ristretto255 as Group>::serialize_elem(server.get_public_key());
        assert_eq!(key.public_key().to_vec(), theirs.to_vec());
        assert_ne!(key.public_key(), OprfKey::generate().unwrap().public_key());
    }

    /// The batched server paths (one shared inversion per batch) against
    /// voprf's server, an independent implementation, on a fresh key.
    #[test]
    fn batches_match_voprf() {
        let key = OprfKey::generate().unwrap();
        let oracle = OprfServer::<Ristretto255>::deserialize(key.to_bytes().as_slice()).unwrap();
        let inputs: Vec<Vec<u8>> = (0..300usize)
            .map(|i| (0..i % 70).map(|j| (i * 31 + j) as u8).collect())
            .collect();
        let batch = key.evaluate_direct_batch(&inputs).unwrap();
        assert_eq!(batch.len(), inputs.len());
        for (input, out) in inputs.iter().zip(&batch) {
            assert_eq!(
                out.as_bytes().to_vec(),
                oracle.evaluate(input).unwrap().to_vec()
            );
        }
        let refs: Vec<&[u8]> = inputs.iter().map(Vec::as_slice).collect();
        let (state, blinded) = OprfClient::blind(&refs[..40]).unwrap();
        let evaluated = key.evaluate_batch(&blinded).unwrap();
        for (b, e) in blinded.iter().zip(&evaluated) {
            let be = voprf::BlindedElement::<Ristretto255>::deserialize(b).unwrap();
            assert_eq!(e.to_vec(), oracle.blind_evaluate(&be).serialize().to_vec());
        }
        assert_eq!(
            OprfClient::finalize(state, &evaluated).unwrap(),
            batch[..40]
        );
        // Over-long inputs are reported with their position in the batch.
        let long = vec![0u8; MAX_INPUT_BYTES + 1];
        let e = key.evaluate_direct_batch(&[&b"a"[..], &long]).unwrap_err();
        assert!(
            matches!(e, Error::OprfInputTooLong { index: 1, .. }),
            "{e:?}"
        );
    }

    #[test]
    fn blinded_protocol_equals_direct() {
        let key = OprfKey::generate().unwrap();
        let items: Vec<Vec<u8>> = vec![
            vec![],
            b"alice".to_vec(),
            vec![0xff; 1000],
            b"alice".to_vec(),
        ];
        let refs: Vec<&[u8]> = items.iter().map(Vec::as_slice).collect();
        let (state, blinded) = OprfClient::blind(&refs).unwrap();
        assert_eq!(state.len(), 4);
        // Fresh blinds: the same item blinds differently.
        assert_ne!(blinded[1], blinded[3]);
        let evaluated = key.evaluate_batch(&blinded).unwrap();
        let outs = OprfClient::finalize(state, &evaluated).unwrap();
        for (item, out) in items.iter().zip(&outs) {
            assert_eq!(*out, key.evaluate_direct(item).unwrap());
        }
        assert_eq!(outs[1], outs[3]);
        assert_ne!(outs[0], outs[1]);
    }

    #[test]
    fn different_keys_differ() {
        let a = OprfKey::generate().unwrap();
        let b = OprfKey::generate().unwrap();
        assert_ne!(
            a.evaluate_direct(b"x").unwrap(),
            b.evaluate_direct(b"x").unwrap()
        );
        let a2 = OprfKey::from_bytes(a.to_bytes().as_slice()).unwrap();
        assert_eq!(
            a.evaluate_direct(b"x").unwrap(),
            a2.evaluate_direct(b"x").unwrap()
        );
    }

    #[test]
    fn rejects_bad_elements() {
        let key = OprfKey::generate().unwrap();
        let identity = [0u8; 32];
        let non_canonical = [0xffu8; 32];
        let (_, good) = OprfClient::blind(&[b"a"]).unwrap();
        assert_eq!(
            key.evaluate_batch(&[good[0], identity]).unwrap_err(),
            Error::InvalidGroupElement { index: 1 }
        );
        assert_eq!(
            key.evaluate_batch(&[non_canonical]).unwrap_err(),
            Error::InvalidGroupElement { index: 0 }
        );
        // Client side: identity answer, wrong count.
        let (state, _) = OprfClient::blind(&[b"a"]).unwrap();
        assert_eq!(
            OprfClient::finalize(state, &[identity]).unwrap_err(),
            Error::InvalidGroupElement { index: 0 }
        );
        let (state, b) = OprfClient::blind(&[b"a", b"b"]).unwrap();
        let ev = key.evaluate_batch(&b[..1]).unwrap();
        assert_eq!(
            OprfClient::finalize(state, &ev).unwrap_err(),
            Error::OprfBatchMismatch {
                expected: 2,
                got: 1
            }
        );
    }

    #[test]
    fn rejects_bad_keys_and_inputs() {
        assert_eq!(
            OprfKey::from_bytes(&[0u8; 32]).unwrap_err(),
            Error::InvalidOprfKey
        );
        assert_eq!(
            OprfKey::from_bytes(&[0xffu8; 32]).unwrap_err(),
            Error::InvalidOprfKey
        );
        assert_eq!(
            OprfKey::from_bytes(&[1u8; 31]).unwrap_err(),
            Error::InvalidOprfKey
        );
        let long = vec![0u8; MAX_INPUT_BYTES + 1];
        assert_eq!(
            OprfClient::blind(&[b"ok", &long]).unwrap_err(),
            Error::OprfInputTooLong {
                index: 1,
                len: MAX_INPUT_BYTES + 1
            }
        );
        let key = OprfKey::generate().unwrap();
        assert!(key.evaluate_direct(&long).is_err());
        assert!(key.evaluate_direct(&long[..MAX_INPUT_BYTES]).is_ok());
    }

    #[test]
    fn debug_is_redacted() {
        let key = OprfKey::from_bytes(&hex(SK)).unwrap();
        let s = format!("{key:?}");
        assert!(!s.contains("5e") && s.contains("redacted"));
        let (state, _) = OprfClient::blind(&[b"secret"]).unwrap();
        assert!(!format!("{state:?}").contains("secret"));
        let out = key.evaluate_direct(b"x").unwrap();
        assert!(format!("{out:?}").contains("redacted"));
    }

    #[test]
    fn split_is_domain_separated_and_deterministic() {
        let key = OprfKey::generate().unwrap();
        let out = key.evaluate_direct(b"item").unwrap();
        let (i1, k1) = out.item_and_label_key();
        let (i2, k2) = out.item_and_label_key();
        assert_eq!(i1, i2);
        assert_eq!(k1, k2);
        assert_ne!(&i1.0[..], &out.as_bytes()[..16]);
        assert_ne!(&k1.as_bytes()[..16], &i1.0[..]);
        let expect = Sha512::new()
            .chain_update(b"psi-core/item/v1")
            .chain_update(out.as_bytes())
            .finalize();
        assert_eq!(&i1.0[..], &expect[..16]);
    }
}
