//! psi-core parameter JSON (`PsiParams::from_json`), then everything a
//! server does with a parameters file: validate, size checks, the BFV
//! parameters, the fingerprint, and the JSON round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use psi_core::PsiParams;

fuzz_target!(|data: &[u8]| {
    let Ok(json) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(p) = PsiParams::from_json(json) else {
        return;
    };
    let again = PsiParams::from_json(&p.to_json()).expect("own JSON parses");
    assert_eq!(again, p);
    let _ = p.fingerprint();
    let _ = p.false_positive_log2(1024, 1 << 40);
    if p.validate().is_ok() {
        let _ = p.validate_for_sizes(1024, 1 << 20);
        // Only small degrees: building n = 2^17 tables is slow, not a bug.
        if p.bfv.poly_modulus_degree <= 1 << 13 {
            let _ = p.he_params();
        }
    }
});
