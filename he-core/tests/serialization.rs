//! Serialization round trips and hostile input: every truncation and
//! random corruption decodes to an error or a valid object, never a panic.
#![allow(missing_docs)]

use std::sync::Arc;

use he_core::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn small_params() -> Arc<BfvParameters> {
    BfvParametersBuilder::new()
        .degree(1024)
        .plaintext_bits(14)
        .moduli_bits(&[30, 31])
        .special_modulus_bits(31)
        .insecure_skip_security_check_for_tests()
        .build()
        .unwrap()
}

#[test]
fn objects_round_trip_compactly() {
    let params = BfvParametersBuilder::new()
        .degree(4096)
        .plaintext_bits(18)
        .moduli_bits(&[36, 36])
        .special_modulus_bits(37)
        .build()
        .unwrap();
    let sk = SecretKey::random(&params).unwrap();
    let pk = PublicKey::new(&sk).unwrap();
    let rk = RelinKeys::new(&sk).unwrap();
    let enc = BatchEncoder::new(&params);
    let ev = Evaluator::new(&params);
    let dec = Decryptor::new(&sk);
    let pt = enc.encode(&[5, 6, 7]).unwrap();

    let seeded = sk.encrypt_symmetric(&pt).unwrap();
    let bytes = seeded.to_bytes(&params).unwrap();
    // One packed polynomial of 2 x 36-bit residues plus header and seed.
    assert_eq!(bytes.len(), 10 + 3 + 32 + 2 * 4096 * 36 / 8);
    let back = Ciphertext::from_bytes(&bytes, &params).unwrap();
    assert_eq!(back, seeded);

    let full = Encryptor::new(&params, &pk).unwrap().encrypt(&pt).unwrap();
    let bytes = full.to_bytes(&params).unwrap();
    assert_eq!(bytes.len(), 10 + 3 + 2 * 2 * 4096 * 36 / 8);
    assert_eq!(Ciphertext::from_bytes(&bytes, &params).unwrap(), full);

    let mut ntt = ev
        .mod_switch_to_next(&ev.multiply(&full, &seeded).unwrap())
        .unwrap();
    ev.transform_to_ntt(&mut ntt).unwrap();
    let back = Ciphertext::from_bytes(&ntt.to_bytes(&params).unwrap(), &params).unwrap();
    assert_eq!(back, ntt);
    assert_eq!(
        enc.decode(&dec.decrypt(&back).unwrap()).unwrap()[..3],
        [25, 36, 49]
    );

    assert_eq!(
        Plaintext::from_bytes(&pt.to_bytes(&params).unwrap(), &params).unwrap(),
        pt
    );
    let pn = ev.plain_to_ntt(&pt, 1).unwrap();
    assert_eq!(
        PlaintextNtt::from_bytes(&pn.to_bytes(&params).unwrap(), &params).unwrap(),
        pn
    );
    let compact = PlaintextNtt::new_compact(&params, &pt, 1).unwrap();
    let back =
        PlaintextNtt::from_bytes_compact(&compact.to_bytes(&params).unwrap(), &params).unwrap();
    assert_eq!(back, compact);
    assert_eq!(back.heap_bytes(), compact.heap_bytes());
    assert_eq!(
        compact.to_bytes(&params).unwrap(),
        pn.to_bytes(&params).unwrap()
    );
    assert_eq!(
        PublicKey::from_bytes(&pk.to_bytes(&params).unwrap(), &params).unwrap(),
        pk
    );
    assert_eq!(
        RelinKeys::from_bytes(&rk.to_bytes(&params).unwrap(), &params).unwrap(),
        rk
    );
    let sk2 = SecretKey::from_bytes(&sk.to_bytes(), &params).unwrap();
    assert_eq!(
        enc.decode(&Decryptor::new(&sk2).decrypt(&full).unwrap())
            .unwrap()[..3],
        [5, 6, 7]
    );
}

#[test]
fn foreign_trailing_and_bad_headers_are_typed_errors() {
    let params = small_params();
    let other = BfvParametersBuilder::new()
        .degree(1024)
        .plaintext_bits(15)
        .moduli_bits(&[30, 31])
        .insecure_skip_security_check_for_tests()
        .build()
        .unwrap();
    let sk = SecretKey::random(&params).unwrap();
    let ct = sk
        .encrypt_symmetric(&BatchEncoder::new(&params).encode(&[1]).unwrap())
        .unwrap();
    let bytes = ct.to_bytes(&params).unwrap();
    assert!(matches!(
        Ciphertext::from_bytes(&bytes, &other),
        Err(Error::ParameterMismatch(_))
    ));
    let mut long = bytes.clone();
    long.push(0);
    assert_eq!(
        Ciphertext::from_bytes(&long, &params),
        Err(Error::TrailingData(1))
    );
    let mut v = bytes.clone();
    v[0] = 9;
    assert_eq!(
        Ciphertext::from_bytes(&v, &params),
        Err(Error::BadVersion(9))
    );
    assert!(matches!(
        Plaintext::from_bytes(&bytes, &params),
        Err(Error::BadTag { .. })
    ));
    let mut big = bytes.clone();
    big[12] = 200; // size
    assert!(matches!(
        Ciphertext::from_bytes(&big, &params),
        Err(Error::TooLarge(_))
    ));
    let mut lvl = bytes.clone();
    lvl[10] = 7;
    assert!(matches!(
        Ciphertext::from_bytes(&lvl, &params),
        Err(Error::LevelMismatch(_))
    ));
    // An all-ones residue is >= q: out of range.
    let full = Evaluator::new(&params).negate(&ct).unwrap();
    let mut fb = full.to_bytes(&params).unwrap();
    for b in fb[13..13 + 8].iter_mut() {
        *b = 0xff;
    }
    assert!(matches!(
        Ciphertext::from_bytes(&fb, &params),
        Err(Error::CoefficientOutOfRange { .. })
    ));
    assert!(matches!(
        Ciphertext::from_bytes(&[], &params),
        Err(Error::TooShort { .. })
    ));
}

#[test]
fn every_truncation_and_random_corruption_is_handled() {
    let params = small_params();
    let sk = SecretKey::random(&params).unwrap();
    let enc = BatchEncoder::new(&params);
    let dec = Decryptor::new(&sk);
    let ev = Evaluator::new(&params);
    let seeded = sk
        .encrypt_symmetric(&enc.encode(&[3, 1, 4]).unwrap())
        .unwrap();
    let full = ev.negate(&seeded).unwrap();
    for ct in [&seeded, &full] {
        let bytes = ct.to_bytes(&params).unwrap();
        for len in 0..bytes.len() {
            assert!(
                Ciphertext::from_bytes(&bytes[..len], &params).is_err(),
                "truncated to {len}"
            );
        }
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for _ in 0..3000 {
            let mut b = bytes.clone();
            for _ in 0..rng.random_range(1..4) {
                let i = rng.random_range(0..b.len());
                b[i] ^= 1 << rng.random_range(0..8);
            }
            if let Ok(c) = Ciphertext::from_bytes(&b, &params) {
                // A valid (if meaningless) ciphertext: every operation works on it.
                dec.decrypt(&c).unwrap();
                ev.add(&c, &c).unwrap();
            }
        }
    }
    for bytes in [
        sk.to_bytes().to_vec(),
        enc.encode(&[9]).unwrap().to_bytes(&params).unwrap(),
    ] {
        for len in 0..bytes.len() {
            assert!(SecretKey::from_bytes(&bytes[..len], &params).is_err());
            assert!(Plaintext::from_bytes(&bytes[..len], &params).is_err());
        }
    }
}
