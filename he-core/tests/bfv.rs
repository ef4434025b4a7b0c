//! Homomorphic identities at realistic sizes: Dec(Enc(a) op Enc(b)) == a op b
//! slot-wise, noise budgets, and modulus switching.
#![allow(missing_docs)]

use std::sync::{Arc, OnceLock};

use he_core::*;
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

struct Setup {
    params: Arc<BfvParameters>,
    sk: SecretKey,
    pk: PublicKey,
    rk: RelinKeys,
}

fn setup(n: usize) -> &'static Setup {
    static S4096: OnceLock<Setup> = OnceLock::new();
    static S8192: OnceLock<Setup> = OnceLock::new();
    static S16384: OnceLock<Setup> = OnceLock::new();
    let (cell, t_bits, q_bits, sp_bits): (_, u32, &[u32], u32) = match n {
        // log q = 36 + 36 + 37 = 109
        4096 => (&S4096, 18, &[36, 36], 37),
        // log q = 54 + 54 + 55 + 55 = 218
        8192 => (&S8192, 20, &[54, 54, 55], 55),
        // log q = 7 * 54 + 60 = 438
        16384 => (&S16384, 26, &[54, 54, 54, 54, 54, 54, 54], 60),
        _ => unreachable!(),
    };
    cell.get_or_init(|| {
        let params = BfvParametersBuilder::new()
            .degree(n)
            .plaintext_bits(t_bits)
            .moduli_bits(q_bits)
            .special_modulus_bits(sp_bits)
            .build()
            .unwrap();
        assert!(!params.is_insecure());
        let sk = SecretKey::random(&params).unwrap();
        let pk = PublicKey::new(&sk).unwrap();
        let rk = RelinKeys::new(&sk).unwrap();
        Setup { params, sk, pk, rk }
    })
}

fn random_slots(n: usize, t: u64, seed: u64) -> Vec<u64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut v: Vec<u64> = (0..n).map(|_| rng.random_range(0..t)).collect();
    v[0] = t - 1;
    v[1] = 0;
    v
}

fn mul_mod(a: &[u64], b: &[u64], t: u64) -> Vec<u64> {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| ((x as u128 * y as u128) % t as u128) as u64)
        .collect()
}

fn check_identities(n: usize, seed: u64, switch: bool) {
    let s = setup(n);
    let p = &s.params;
    let t = p.plaintext().value();
    let enc = BatchEncoder::new(p);
    let ev = Evaluator::new(p);
    let dec = Decryptor::new(&s.sk);
    let encryptor = Encryptor::new(p, &s.pk).unwrap();
    let a = random_slots(n, t, seed);
    let b = random_slots(n, t, seed ^ 0x9e37_79b9);
    let pa = enc.encode(&a).unwrap();
    let pb = enc.encode(&b).unwrap();
    let ca = encryptor.encrypt(&pa).unwrap();
    let cb = s.sk.encrypt_symmetric(&pb).unwrap();
    let open = |c: &Ciphertext| enc.decode(&dec.decrypt(c).unwrap()).unwrap();
    let fresh = dec.noise_budget(&ca).unwrap();
    assert!(fresh > 0);
    assert_eq!(open(&ca), a);
    assert_eq!(open(&cb), b);

    let sum: Vec<u64> = a.iter().zip(&b).map(|(x, y)| (x + y) % t).collect();
    assert_eq!(open(&ev.add(&ca, &cb).unwrap()), sum);
    let diff: Vec<u64> = a.iter().zip(&b).map(|(x, y)| (x + t - y) % t).collect();
    assert_eq!(open(&ev.sub(&ca, &cb).unwrap()), diff);
    let neg: Vec<u64> = a.iter().map(|x| (t - x) % t).collect();
    assert_eq!(open(&ev.negate(&ca).unwrap()), neg);
    assert_eq!(open(&ev.add_plain(&ca, &pb).unwrap()), sum);
    assert_eq!(open(&ev.sub_plain(&ca, &pb).unwrap()), diff);

    let prod = mul_mod(&a, &b, t);
    assert_eq!(open(&ev.multiply_plain(&ca, &pb).unwrap()), prod);
    let mut ca_ntt = ca.clone();
    ev.transform_to_ntt(&mut ca_ntt).unwrap();
    let pb_ntt = ev.plain_to_ntt(&pb, ca.level()).unwrap();
    let pm = ev.multiply_plain_ntt(&ca_ntt, &pb_ntt).unwrap();
    assert!(pm.is_ntt());
    assert_eq!(open(&pm), prod);
    let compact = PlaintextNtt::new_compact(p, &pb, ca.level()).unwrap();
    assert!(compact.heap_bytes() < pb_ntt.heap_bytes());
    assert_eq!(ev.multiply_plain_ntt(&ca_ntt, &compact).unwrap(), pm);
    let acc = ev
        .multiply_plain_accumulate(&[(&ca_ntt, &pb_ntt), (&ca_ntt, &pb_ntt)])
        .unwrap();
    let twice: Vec<u64> = prod.iter().map(|x| (2 * x) % t).collect();
    assert_eq!(open(&acc), twice);

    let ct_prod = ev.multiply(&ca, &cb).unwrap();
    assert_eq!(ct_prod.size(), 3);
    assert_eq!(open(&ct_prod), prod);
    let relin = ev.relinearize(&ct_prod, &s.rk).unwrap();
    assert_eq!(relin.size(), 2);
    assert_eq!(open(&relin), prod);
    let after_mult = dec.noise_budget(&relin).unwrap();
    assert!(after_mult < fresh, "{after_mult} < {fresh}");
    assert!(after_mult > 0);
    assert_eq!(open(&ev.square(&ca).unwrap()), mul_mod(&a, &a, t));

    if switch && n >= 8192 {
        // One level down, a product is still correct (n = 4096 has one
        // 36-bit prime left there: too little for a product).
        let ca1 = ev.mod_switch_to_next(&ca).unwrap();
        let cb1 = ev.mod_switch_to_next(&cb).unwrap();
        assert_eq!(ca1.level(), 1);
        assert_eq!(open(&ca1), a);
        let p1 = ev.multiply_relin(&ca1, &cb1, &s.rk).unwrap();
        assert!(dec.noise_budget(&p1).unwrap() > 0);
        assert_eq!(open(&p1), prod);
    }

    // Depth-3 chain ((a*b)^2 * a), relinearizing each time; with `switch`,
    // the result is then switched down to the last level (as the PSI
    // sender does before answering).
    let mut expect = prod.clone();
    let mut chain = relin;
    let mut last_budget = after_mult;
    for step in 0..2 {
        let (next, rhs) = if step == 0 {
            (ev.square(&chain).unwrap(), mul_mod(&expect, &expect, t))
        } else {
            (ev.multiply(&chain, &ca).unwrap(), mul_mod(&expect, &a, t))
        };
        chain = ev.relinearize(&next, &s.rk).unwrap();
        expect = rhs;
        let budget = dec.noise_budget(&chain).unwrap();
        assert!(
            budget < last_budget || budget == 0,
            "budget must shrink: {budget} < {last_budget}"
        );
        last_budget = budget;
        if n >= 8192 {
            // These parameter sets allow depth 3 with room to spare.
            assert!(budget > 0, "depth {} budget exhausted", step + 2);
            assert_eq!(open(&chain), expect);
        }
    }
    if switch && n >= 8192 {
        let low = ev.mod_switch_to_level(&chain, p.max_level()).unwrap();
        assert!(dec.noise_budget(&low).unwrap() > 0);
        assert_eq!(open(&low), expect);
        let mut ser = low.clone();
        ev.transform_to_ntt(&mut ser).unwrap();
        assert_eq!(open(&ser), expect);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4, .. ProptestConfig::default() })]
    #[test]
    fn identities_n4096(seed in any::<u64>(), switch in any::<bool>()) {
        check_identities(4096, seed, switch);
    }
    #[test]
    fn identities_n8192(seed in any::<u64>(), switch in any::<bool>()) {
        check_identities(8192, seed, switch);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2, .. ProptestConfig::default() })]
    #[test]
    fn identities_n16384(seed in any::<u64>(), switch in any::<bool>()) {
        check_identities(16384, seed, switch);
    }
}

#[test]
fn depth_with_and_without_switching_at_8192() {
    check_identities(8192, 7, false);
    check_identities(8192, 8, true);
}

#[test]
fn signed_encoding_round_trips() {
    let s = setup(4096);
    let enc = BatchEncoder::new(&s.params);
    let half = ((s.params.plaintext().value() - 1) / 2) as i64;
    let v = vec![-half, half, -1, 0, 1];
    let pt = enc.encode_signed(&v).unwrap();
    assert_eq!(&enc.decode_signed(&pt).unwrap()[..5], &v[..]);
    assert!(enc.encode_signed(&[half + 1]).is_err());
    assert!(enc.encode(&[s.params.plaintext().value()]).is_err());
    assert!(enc.encode(&vec![0; 4097]).is_err());
}

#[test]
fn mismatched_operands_are_errors() {
    let s = setup(4096);
    let other = setup(8192);
    let ev = Evaluator::new(&s.params);
    let enc = BatchEncoder::new(&s.params);
    let a = s.sk.encrypt_symmetric(&enc.encode(&[1]).unwrap()).unwrap();
    let foreign = other
        .sk
        .encrypt_symmetric(&BatchEncoder::new(&other.params).encode(&[1]).unwrap())
        .unwrap();
    assert!(matches!(
        ev.add(&a, &foreign),
        Err(Error::ParameterMismatch(_))
    ));
    let low = ev.mod_switch_to_next(&a).unwrap();
    assert!(matches!(ev.add(&a, &low), Err(Error::LevelMismatch(_))));
    assert!(matches!(
        ev.multiply(&a, &low),
        Err(Error::LevelMismatch(_))
    ));
    assert!(matches!(
        ev.mod_switch_to_next(&low),
        Err(Error::LevelMismatch(_))
    ));
    let pt = ev.plain_to_ntt(&enc.encode(&[2]).unwrap(), 0).unwrap();
    assert!(matches!(
        ev.multiply_plain_ntt(&a, &pt),
        Err(Error::FormMismatch(_))
    ));
    assert!(matches!(
        ev.relinearize(&a, &other.rk),
        Err(Error::ParameterMismatch(_))
    ));
    assert!(ev.multiply_plain_accumulate(&[]).is_err());
    assert!(format!("{:?}", s.sk).contains("REDACTED"));
}

/// `n = 2048` with one 54-bit prime and no key switching (as APSI's
/// single-item sets): the bound counts `q` alone, relinearization keys are
/// refused, and encryption, plain products, accumulation and compression
/// still work exactly.
#[test]
fn parameters_without_key_switching() {
    let params = BfvParametersBuilder::new()
        .degree(2048)
        .plaintext_modulus(12289)
        .moduli_bits(&[54])
        .without_key_switching()
        .build()
        .unwrap();
    assert!(!params.supports_key_switching());
    assert!(!params.is_insecure());
    assert_eq!(params.log_q(), 54);
    // With a special prime the same ring would exceed the 54-bit bound.
    assert!(matches!(
        BfvParametersBuilder::new()
            .degree(2048)
            .plaintext_modulus(12289)
            .moduli_bits(&[54])
            .build(),
        Err(Error::InsecureParameters { .. })
    ));
    assert!(
        BfvParametersBuilder::new()
            .degree(2048)
            .plaintext_modulus(12289)
            .moduli_bits(&[40])
            .special_modulus_bits(40)
            .without_key_switching()
            .build()
            .is_err()
    );
    let sk = SecretKey::random(&params).unwrap();
    assert!(matches!(
        RelinKeys::new(&sk),
        Err(Error::InvalidParameters(_))
    ));
    // Keys of the same primes with key switching do not load here.
    let with_ks = BfvParametersBuilder::new()
        .degree(2048)
        .plaintext_modulus(12289)
        .moduli(
            &params
                .moduli()
                .iter()
                .map(|m| m.value())
                .collect::<Vec<_>>(),
        )
        .special_modulus(params.special_modulus().value())
        .insecure_skip_security_check_for_tests()
        .build()
        .unwrap();
    assert_ne!(with_ks.fingerprint(), params.fingerprint());
    let rk = RelinKeys::new(&SecretKey::random(&with_ks).unwrap()).unwrap();
    let rk_bytes = rk.to_bytes(&with_ks).unwrap();
    assert!(RelinKeys::from_bytes(&rk_bytes, &params).is_err());

    let t = params.plaintext().value();
    let enc = BatchEncoder::new(&params);
    let ev = Evaluator::new(&params);
    let dec = Decryptor::new(&sk);
    let x = random_slots(2048, t, 1);
    let mut ct = sk.encrypt_symmetric(&enc.encode(&x).unwrap()).unwrap();
    ev.transform_to_ntt(&mut ct).unwrap();
    // A 72-term sum of products with uniform plaintexts, as a PSI bin
    // bundle evaluates.
    let plains: Vec<Vec<u64>> = (0..72).map(|i| random_slots(2048, t, 100 + i)).collect();
    let pts: Vec<PlaintextNtt> = plains
        .iter()
        .map(|p| PlaintextNtt::new_compact(&params, &enc.encode(p).unwrap(), 0).unwrap())
        .collect();
    let pairs: Vec<(&Ciphertext, &PlaintextNtt)> = pts.iter().map(|p| (&ct, p)).collect();
    let mut sum = ev.multiply_plain_accumulate(&pairs).unwrap();
    ev.transform_from_ntt(&mut sum).unwrap();
    let mut expected = vec![0u64; 2048];
    for p in &plains {
        for (e, v) in expected.iter_mut().zip(mul_mod(&x, p, t)) {
            *e = (*e + v) % t;
        }
    }
    assert!(dec.noise_budget(&sum).unwrap() >= 8);
    assert_eq!(enc.decode(&dec.decrypt(&sum).unwrap()).unwrap(), expected);
    let small = ev
        .compress(&sum, CompressionBits::for_params(&params))
        .unwrap();
    assert_eq!(
        enc.decode(&dec.decrypt_compressed(&small).unwrap())
            .unwrap(),
        expected
    );
}

#[test]
fn multiply_sum_equals_the_sum_of_products() {
    let s = setup(8192);
    let p = &s.params;
    let n = p.degree();
    let t = p.plaintext().value();
    let enc = BatchEncoder::new(p);
    let ev = Evaluator::new(p);
    let dec = Decryptor::new(&s.sk);
    let open = |c: &Ciphertext| enc.decode(&dec.decrypt(c).unwrap()).unwrap();
    let mut expected = vec![0u64; n];
    let mut lifted = Vec::new();
    let mut separate: Option<Ciphertext> = None;
    // More pairs than one lazy chunk of the accumulators holds (60
    // products, two per pair), so the sum also folds midway.
    for i in 0..36u64 {
        let a = random_slots(n, t, 100 + i);
        let b = random_slots(n, t, 200 + i);
        for (e, x) in expected.iter_mut().zip(mul_mod(&a, &b, t)) {
            *e = (*e + x) % t;
        }
        let ca = s.sk.encrypt_symmetric(&enc.encode(&a).unwrap()).unwrap();
        let mut cb = s.sk.encrypt_symmetric(&enc.encode(&b).unwrap()).unwrap();
        // Operands in either form lift to the same thing.
        if i % 2 == 0 {
            ev.transform_to_ntt(&mut cb).unwrap();
        }
        let product = ev.multiply(&ca, &cb).unwrap();
        match separate.as_mut() {
            None => separate = Some(product),
            Some(acc) => ev.add_assign(acc, &product).unwrap(),
        }
        lifted.push((ev.lift(&ca).unwrap(), ev.lift(&cb).unwrap()));
    }
    let pairs: Vec<(&LiftedCiphertext, &LiftedCiphertext)> =
        lifted.iter().map(|(a, b)| (a, b)).collect();
    let sum = ev.multiply_sum(&pairs).unwrap();
    assert_eq!(sum.size(), 3);
    assert_eq!(open(&sum), expected);
    let separate = separate.unwrap();
    assert_eq!(open(&separate), expected);
    // One rounding instead of 36: no more noise than the separate sum.
    assert!(dec.noise_budget(&sum).unwrap() >= dec.noise_budget(&separate).unwrap());
    let relin = ev.relinearize(&sum, &s.rk).unwrap();
    assert_eq!(open(&relin), expected);
    // Operands of different sizes, below the top level: a size-3 product
    // times a fresh ciphertext, as `multiply` computes it.
    let a = random_slots(n, t, 300);
    let b = random_slots(n, t, 301);
    let ca = s.sk.encrypt_symmetric(&enc.encode(&a).unwrap()).unwrap();
    let cb = s.sk.encrypt_symmetric(&enc.encode(&b).unwrap()).unwrap();
    let square = ev
        .mod_switch_to_next(&ev.multiply(&ca, &ca).unwrap())
        .unwrap();
    let cb = ev.mod_switch_to_next(&cb).unwrap();
    let (ls, lb) = (ev.lift(&square).unwrap(), ev.lift(&cb).unwrap());
    assert_eq!((ls.size(), ls.level()), (3, 1));
    let mixed = ev.multiply_sum(&[(&ls, &lb)]).unwrap();
    assert_eq!(mixed.size(), 4);
    let expected = mul_mod(&mul_mod(&a, &a, t), &b, t);
    assert_eq!(open(&mixed), expected);
    assert_eq!(open(&ev.multiply(&square, &cb).unwrap()), expected);
}

#[test]
fn multiply_sum_rejects_bad_operands() {
    let s = setup(4096);
    let p = &s.params;
    let ev = Evaluator::new(p);
    let enc = BatchEncoder::new(p);
    let ct =
        s.sk.encrypt_symmetric(&enc.encode(&[1, 2, 3]).unwrap())
            .unwrap();
    let a = ev.lift(&ct).unwrap();
    assert!(matches!(ev.multiply_sum(&[]), Err(Error::InvalidValue(_))));
    // Operands of different levels.
    let low = ev.lift(&ev.mod_switch_to_next(&ct).unwrap()).unwrap();
    assert_eq!(low.level(), 1);
    assert!(matches!(
        ev.multiply_sum(&[(&a, &a), (&low, &low)]),
        Err(Error::LevelMismatch(_))
    ));
    // Operands of other parameters.
    let other = setup(8192);
    let foreign = Evaluator::new(&other.params)
        .lift(
            &other
                .sk
                .encrypt_symmetric(&BatchEncoder::new(&other.params).encode(&[1]).unwrap())
                .unwrap(),
        )
        .unwrap();
    assert!(matches!(
        ev.multiply_sum(&[(&a, &foreign)]),
        Err(Error::ParameterMismatch(_))
    ));
    // More products than the auxiliary primes hold: refused before any work
    // (where the capacity is small enough to build; the 50-bit auxiliary
    // primes of IFMA CPUs hold about 2^42 here, and the unit test
    // `multiply_sum_refuses_more_than_its_capacity` forces 60-bit ones).
    let capacity = ev.multiply_sum_capacity(0).unwrap();
    assert!(capacity >= 1024, "capacity {capacity}");
    if capacity <= 1 << 20 {
        let pairs = vec![(&a, &a); capacity + 1];
        assert!(matches!(
            ev.multiply_sum(&pairs),
            Err(Error::InvalidValue(_))
        ));
    }
    assert!(ev.multiply_sum(&[(&a, &a), (&a, &a)]).is_ok());
}

/// A special prime smaller than the ciphertext primes (as in APSI's
/// `16M-1`): 180 ciphertext bits under the 218-bit bound at `n = 8192`.
/// Relinearization stays correct and costs little budget.
#[test]
fn small_special_prime() {
    for special in [20u32, 38] {
        let params = BfvParametersBuilder::new()
            .degree(8192)
            .plaintext_modulus(2_277_377)
            .moduli_bits(&[60, 60, 60])
            .special_modulus_bits(special)
            .build()
            .unwrap();
        assert!(!params.is_insecure());
        assert_eq!(params.special_modulus().bits(), special);
        let n = params.degree();
        let t = params.plaintext().value();
        let sk = SecretKey::random(&params).unwrap();
        let rk = RelinKeys::new(&sk).unwrap();
        let enc = BatchEncoder::new(&params);
        let ev = Evaluator::new(&params);
        let dec = Decryptor::new(&sk);
        let a = random_slots(n, t, 7);
        let ca = sk.encrypt_symmetric(&enc.encode(&a).unwrap()).unwrap();
        let mut x = ca.clone();
        let mut expected = a.clone();
        for depth in 1..=3 {
            let product = ev.multiply(&x, &ca).unwrap();
            let before = dec.noise_budget(&product).unwrap();
            x = ev.relinearize(&product, &rk).unwrap();
            expected = mul_mod(&expected, &a, t);
            assert_eq!(enc.decode(&dec.decrypt(&x).unwrap()).unwrap(), expected);
            // Key switching adds about q_max / p fresh errors: 2^40 with a
            // 20-bit special prime, 2^22 with 38 bits (below the product's
            // own noise).
            let lost = before.saturating_sub(dec.noise_budget(&x).unwrap());
            let allowed = if special == 20 && depth == 1 { 20 } else { 2 };
            assert!(
                lost <= allowed,
                "special {special} depth {depth}: lost {lost} bits"
            );
        }
    }
}
