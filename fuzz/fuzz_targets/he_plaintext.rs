//! he-core: `Plaintext::from_bytes`, `PlaintextNtt::from_bytes` and
//! `PlaintextNtt::from_bytes_compact`; each decoded object round-trips.
#![no_main]

use breach_fuzz::HE_PARAMS;
use he_core::{Plaintext, PlaintextNtt};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let p = &*HE_PARAMS;
    if let Ok(pt) = Plaintext::from_bytes(data, p) {
        let again =
            Plaintext::from_bytes(&pt.to_bytes(p).expect("re-encode"), p).expect("re-decode");
        assert_eq!(again, pt);
    }
    if let Ok(pt) = PlaintextNtt::from_bytes(data, p) {
        let bytes = pt.to_bytes(p).expect("re-encode");
        let again = PlaintextNtt::from_bytes(&bytes, p).expect("re-decode");
        assert_eq!(again.to_bytes(p).expect("re-encode"), bytes);
    }
    if let Ok(pt) = PlaintextNtt::from_bytes_compact(data, p) {
        let _ = pt.to_bytes(p);
        let _ = pt.level();
    }
});
