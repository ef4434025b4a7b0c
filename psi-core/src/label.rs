//! Label encryption with per-item keys derived from the OPRF output.
//!
//! `encrypt_label(key, label, label_byte_count, nonce_byte_count)` returns
//! `nonce || (padded_label XOR keystream)`, where
//!
//! - `nonce` is `nonce_byte_count` fresh bytes from the OS CSPRNG
//!   (default [`DEFAULT_NONCE_BYTES`] = 16, at most [`MAX_NONCE_BYTES`]);
//! - `padded_label` is the label followed by zero bytes up to
//!   `label_byte_count` (longer labels are rejected; trailing zero bytes of a
//!   label are therefore indistinguishable from padding: callers that need
//!   exact lengths should encode the length inside the label);
//! - the keystream is SHA-512 in counter mode:
//!   `block_j = SHA-512("psi-core/label-stream/v1" || key || u8(nonce_len) || nonce || u64le(j))`.
//!
//! Only the holder of the OPRF output for an item (the server for its own
//! items, the client for items it queried and matched) knows the key. The
//! scheme gives confidentiality, not integrity: decrypting with a wrong key
//! yields garbage bytes of the right length (never a panic). A zero-length
//! nonce is allowed but then re-encrypting a changed label under the same
//! key reuses the keystream; keep the default unless labels never change.

use core::fmt;

use rand_core::{OsRng, TryRngCore};
use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::{Error, Result};

/// Default nonce length in bytes.
pub const DEFAULT_NONCE_BYTES: usize = 16;
/// Largest accepted nonce length in bytes.
pub const MAX_NONCE_BYTES: usize = 64;
/// Bytes in a [`LabelKey`].
pub const LABEL_KEY_BYTES: usize = 32;

/// A 256-bit key for one item's label. Zeroized on drop, redacted `Debug`,
/// constant-time equality, not `Clone`.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct LabelKey([u8; LABEL_KEY_BYTES]);

impl LabelKey {
    /// Wraps raw key bytes.
    pub fn from_bytes(bytes: [u8; LABEL_KEY_BYTES]) -> Self {
        Self(bytes)
    }

    /// The raw key bytes.
    pub fn as_bytes(&self) -> &[u8; LABEL_KEY_BYTES] {
        &self.0
    }
}

impl PartialEq for LabelKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}
impl Eq for LabelKey {}

impl fmt::Debug for LabelKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LabelKey(<redacted>)")
    }
}

fn xor_keystream(key: &LabelKey, nonce: &[u8], data: &mut [u8]) {
    for (j, chunk) in data.chunks_mut(64).enumerate() {
        let mut block = Sha512::new()
            .chain_update(b"psi-core/label-stream/v1")
            .chain_update(key.0)
            .chain_update([nonce.len() as u8])
            .chain_update(nonce)
            .chain_update((j as u64).to_le_bytes())
            .finalize();
        for (d, k) in chunk.iter_mut().zip(block.iter()) {
            *d ^= k;
        }
        block[..].zeroize();
    }
}

fn check_nonce(nonce_byte_count: usize) -> Result<()> {
    if nonce_byte_count > MAX_NONCE_BYTES {
        return Err(Error::InvalidNonceLength(nonce_byte_count));
    }
    Ok(())
}

/// Encrypts `label` (padded with zeros to `label_byte_count`) under `key`
/// with a fresh random nonce. Output length: `nonce_byte_count + label_byte_count`.
pub fn encrypt_label(
    key: &LabelKey,
    label: &[u8],
    label_byte_count: usize,
    nonce_byte_count: usize,
) -> Result<Vec<u8>> {
    check_nonce(nonce_byte_count)?;
    let mut nonce = vec![0u8; nonce_byte_count];
    OsRng.try_fill_bytes(&mut nonce).map_err(|_| Error::Rng)?;
    encrypt_label_with_nonce(key, label, label_byte_count, &nonce)
}

/// Encrypts with a caller-chosen nonce (deterministic; for tests and
/// known-answer vectors; never reuse a nonce with the same key).
pub fn encrypt_label_with_nonce(
    key: &LabelKey,
    label: &[u8],
    label_byte_count: usize,
    nonce: &[u8],
) -> Result<Vec<u8>> {
    check_nonce(nonce.len())?;
    if label.len() > label_byte_count {
        return Err(Error::LabelTooLong {
            len: label.len(),
            max: label_byte_count,
        });
    }
    let mut out = Vec::with_capacity(nonce.len() + label_byte_count);
    out.extend_from_slice(nonce);
    out.extend_from_slice(label);
    out.resize(nonce.len() + label_byte_count, 0);
    let (n, body) = out.split_at_mut(nonce.len());
    xor_keystream(key, n, body);
    Ok(out)
}

/// Decrypts `nonce || ciphertext` to the `label_byte_count` padded label
/// bytes. Errors only on a wrong length; a wrong key gives garbage.
pub fn decrypt_label(
    key: &LabelKey,
    encrypted: &[u8],
    label_byte_count: usize,
    nonce_byte_count: usize,
) -> Result<Vec<u8>> {
    check_nonce(nonce_byte_count)?;
    let expected = nonce_byte_count.saturating_add(label_byte_count);
    if encrypted.len() != expected {
        return Err(Error::EncryptedLabelLength {
            expected,
            got: encrypted.len(),
        });
    }
    let (nonce, body) = encrypted.split_at(nonce_byte_count);
    let mut out = body.to_vec();
    xor_keystream(key, nonce, &mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(b: u8) -> LabelKey {
        LabelKey::from_bytes([b; 32])
    }

    #[test]
    fn round_trip_with_padding() {
        let k = key(1);
        let ct = encrypt_label(&k, b"seen 3 times", 20, 16).unwrap();
        assert_eq!(ct.len(), 36);
        let pt = decrypt_label(&k, &ct, 20, 16).unwrap();
        assert_eq!(&pt[..12], b"seen 3 times");
        assert!(pt[12..].iter().all(|&b| b == 0));
    }

    #[test]
    fn fresh_nonces() {
        let k = key(2);
        let a = encrypt_label(&k, b"x", 8, 16).unwrap();
        let b = encrypt_label(&k, b"x", 8, 16).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn known_answer() {
        // Keystream block 0 for key [3;32], nonce [7;4], computed independently
        // from the documented construction.
        let k = key(3);
        let nonce = [7u8; 4];
        let ct = encrypt_label_with_nonce(&k, &[0u8; 5], 5, &nonce).unwrap();
        let mut h = Sha512::new();
        h.update(b"psi-core/label-stream/v1");
        h.update([3u8; 32]);
        h.update([4u8]);
        h.update(nonce);
        h.update(0u64.to_le_bytes());
        let block = h.finalize();
        assert_eq!(&ct[..4], &nonce);
        assert_eq!(&ct[4..], &block[..5]);
    }

    #[test]
    fn long_labels_span_blocks() {
        let k = key(4);
        let label: Vec<u8> = (0..200u8).collect();
        let ct = encrypt_label(&k, &label, 200, 0).unwrap();
        assert_eq!(decrypt_label(&k, &ct, 200, 0).unwrap(), label);
    }

    #[test]
    fn errors() {
        let k = key(5);
        assert_eq!(
            encrypt_label(&k, b"toolong", 3, 16).unwrap_err(),
            Error::LabelTooLong { len: 7, max: 3 }
        );
        assert_eq!(
            encrypt_label(&k, b"a", 3, 65).unwrap_err(),
            Error::InvalidNonceLength(65)
        );
        assert_eq!(
            decrypt_label(&k, &[0u8; 10], 3, 16).unwrap_err(),
            Error::EncryptedLabelLength {
                expected: 19,
                got: 10
            }
        );
        assert!(format!("{k:?}").contains("redacted"));
    }

    proptest! {
        #[test]
        fn wrong_key_is_garbage_not_panic(label in proptest::collection::vec(any::<u8>(), 0..64),
                                           extra in 0usize..16, nonce in 0usize..=32, a in any::<u8>(), b in any::<u8>()) {
            let n = label.len() + extra;
            let ct = encrypt_label(&key(a), &label, n, nonce).unwrap();
            let right = decrypt_label(&key(a), &ct, n, nonce).unwrap();
            prop_assert_eq!(&right[..label.len()], &label[..]);
            let wrong = decrypt_label(&key(b), &ct, n, nonce).unwrap();
            prop_assert_eq!(wrong.len(), n);
            if a != b && n >= 8 {
                prop_assert_ne!(wrong, right);
            }
        }
    }
}
