//! he-core: `BfvParametersBuilder::build` from arbitrary sizes and moduli
//! (what `PsiParams::he_params` passes on from a parameters file or the
//! wire). Refuses or builds; never panics. Degrees are capped at 2^15 to
//! keep one execution short (larger ones are refused by the same code).
#![no_main]

use arbitrary::Arbitrary;
use he_core::BfvParametersBuilder;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    log_degree: u8,
    odd_degree: Option<u16>,
    plaintext: Option<u64>,
    plaintext_bits: Option<u8>,
    moduli_bits: Option<Vec<u8>>,
    moduli: Option<Vec<u64>>,
    special: Option<u64>,
    special_bits: Option<u8>,
    without_key_switching: bool,
    insecure: bool,
}

fuzz_target!(|input: Input| {
    let degree = match input.odd_degree {
        Some(d) => usize::from(d),
        None => 1usize << (input.log_degree % 16),
    };
    let mut b = BfvParametersBuilder::new().degree(degree);
    if let Some(t) = input.plaintext {
        b = b.plaintext_modulus(t);
    }
    if let Some(bits) = input.plaintext_bits {
        b = b.plaintext_bits(u32::from(bits));
    }
    if let Some(bits) = &input.moduli_bits {
        let bits: Vec<u32> = bits.iter().take(12).map(|&b| u32::from(b)).collect();
        b = b.moduli_bits(&bits);
    }
    if let Some(primes) = &input.moduli {
        let primes: Vec<u64> = primes.iter().take(12).copied().collect();
        b = b.moduli(&primes);
    }
    if let Some(p) = input.special {
        b = b.special_modulus(p);
    }
    if let Some(bits) = input.special_bits {
        b = b.special_modulus_bits(u32::from(bits));
    }
    if input.without_key_switching {
        b = b.without_key_switching();
    }
    if input.insecure {
        b = b.insecure_skip_security_check_for_tests();
    }
    if let Ok(params) = b.build() {
        assert!(params.degree().is_power_of_two());
        let _ = params.fingerprint();
    }
});
