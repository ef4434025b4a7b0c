//! he-core: `PublicKey`, `RelinKeys` and `SecretKey` decoding. A decoded
//! public key encrypts, decoded relinearization keys relinearize, a
//! decoded secret key decrypts: anything, but never a panic.
#![no_main]

use breach_fuzz::{HE_PARAMS, HE_SECRET_KEY};
use he_core::{BatchEncoder, Decryptor, Encryptor, Evaluator, PublicKey, RelinKeys, SecretKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let p = &*HE_PARAMS;
    let pt = BatchEncoder::new(p).encode(&[1, 2, 3]).expect("encode");
    if let Ok(pk) = PublicKey::from_bytes(data, p) {
        let bytes = pk.to_bytes(p).expect("re-encode");
        assert_eq!(
            PublicKey::from_bytes(&bytes, p)
                .expect("re-decode")
                .to_bytes(p)
                .expect("re-encode"),
            bytes
        );
        if let Ok(enc) = Encryptor::new(p, &pk) {
            let _ = enc.encrypt(&pt);
        }
    }
    if let Ok(rk) = RelinKeys::from_bytes(data, p) {
        let bytes = rk.to_bytes(p).expect("re-encode");
        assert_eq!(
            RelinKeys::from_bytes(&bytes, p)
                .expect("re-decode")
                .to_bytes(p)
                .expect("re-encode"),
            bytes
        );
        let ev = Evaluator::new(p);
        let ct = HE_SECRET_KEY.encrypt_symmetric(&pt).expect("encrypt");
        if let Ok(product) = ev.multiply(&ct, &ct) {
            let _ = ev.relinearize(&product, &rk);
        }
    }
    if let Ok(sk) = SecretKey::from_bytes(data, p) {
        let bytes = sk.to_bytes();
        assert_eq!(
            *SecretKey::from_bytes(&bytes, p)
                .expect("re-decode")
                .to_bytes(),
            *bytes
        );
        let ct = HE_SECRET_KEY.encrypt_symmetric(&pt).expect("encrypt");
        let _ = Decryptor::new(&sk).decrypt(&ct);
    }
});
