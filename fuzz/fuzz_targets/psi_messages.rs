//! psi-core wire messages (`OprfRequest`, `OprfResponse`, `Query`,
//! `ResultPart`) and the wire form of `PsiParams`: decode, and a decoded
//! message re-encodes to exactly the input (the encodings are canonical).
#![no_main]

use libfuzzer_sys::fuzz_target;
use psi_core::wire::Codec;
use psi_core::{OprfRequest, OprfResponse, PsiParams, Query, ResultPart};

fn canonical<T: Codec + PartialEq + std::fmt::Debug>(data: &[u8]) {
    if let Ok(m) = T::from_wire(data) {
        assert_eq!(m.to_wire(), data, "non-canonical encoding accepted");
    }
}

fuzz_target!(|data: &[u8]| {
    canonical::<OprfRequest>(data);
    canonical::<OprfResponse>(data);
    canonical::<Query>(data);
    canonical::<ResultPart>(data);
    if let Ok(p) = PsiParams::from_wire(data) {
        let again = PsiParams::from_wire(&p.to_wire()).expect("re-decode");
        assert_eq!(again, p);
        let _ = p.validate();
    }
});
