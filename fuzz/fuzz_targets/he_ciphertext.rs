//! he-core: `Ciphertext::from_bytes` and `CompressedCiphertext::from_bytes`.
//! A decoded object re-encodes to bytes that decode to the same object,
//! and decrypts (to anything) without a panic.
#![no_main]

use breach_fuzz::{HE_PARAMS, HE_SECRET_KEY};
use he_core::{Ciphertext, CompressedCiphertext, Decryptor};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let p = &*HE_PARAMS;
    if let Ok(ct) = Ciphertext::from_bytes(data, p) {
        let again =
            Ciphertext::from_bytes(&ct.to_bytes(p).expect("re-encode"), p).expect("re-decode");
        assert_eq!(again, ct);
        let _ = Decryptor::new(&HE_SECRET_KEY).decrypt(&ct);
    }
    if let Ok(ct) = CompressedCiphertext::from_bytes(data, p) {
        let bytes = ct.to_bytes(p).expect("re-encode");
        let again = CompressedCiphertext::from_bytes(&bytes, p).expect("re-decode");
        assert_eq!(again.to_bytes(p).expect("re-encode"), bytes);
        let _ = Decryptor::new(&HE_SECRET_KEY).decrypt_compressed(&ct);
    }
});
