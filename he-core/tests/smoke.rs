use he_core::*;

#[test]
fn smoke() {
    let params = BfvParametersBuilder::new()
        .degree(8192)
        .plaintext_bits(20)
        .moduli_bits(&[54, 54, 55])
        .special_modulus_bits(55)
        .build()
        .unwrap();
    let t = params.plaintext().value();
    let sk = SecretKey::random(&params).unwrap();
    let pk = PublicKey::new(&sk).unwrap();
    let rk = RelinKeys::new(&sk).unwrap();
    let enc = BatchEncoder::new(&params);
    let ev = Evaluator::new(&params);
    let dec = Decryptor::new(&sk);
    let a: Vec<u64> = (0..8192u64).map(|i| (i * 7919) % t).collect();
    let b: Vec<u64> = (0..8192u64).map(|i| (i * 104729 + 3) % t).collect();
    let pa = enc.encode(&a).unwrap();
    let pb = enc.encode(&b).unwrap();
    assert_eq!(enc.decode(&pa).unwrap(), a);
    let ca = sk.encrypt_symmetric(&pa).unwrap();
    println!("fresh sym budget {}", dec.noise_budget(&ca).unwrap());
    assert_eq!(enc.decode(&dec.decrypt(&ca).unwrap()).unwrap(), a);
    let cb = Encryptor::new(&params, &pk).unwrap().encrypt(&pb).unwrap();
    println!("fresh pk budget {}", dec.noise_budget(&cb).unwrap());
    assert_eq!(enc.decode(&dec.decrypt(&cb).unwrap()).unwrap(), b);
    let sum = ev.add(&ca, &cb).unwrap();
    let exp: Vec<u64> = a.iter().zip(&b).map(|(x, y)| (x + y) % t).collect();
    assert_eq!(enc.decode(&dec.decrypt(&sum).unwrap()).unwrap(), exp);
    let prod = ev.multiply(&ca, &cb).unwrap();
    println!("product budget {}", dec.noise_budget(&prod).unwrap());
    let exp: Vec<u64> = a
        .iter()
        .zip(&b)
        .map(|(x, y)| ((*x as u128 * *y as u128) % t as u128) as u64)
        .collect();
    assert_eq!(enc.decode(&dec.decrypt(&prod).unwrap()).unwrap(), exp);
    let rl = ev.relinearize(&prod, &rk).unwrap();
    println!("relin budget {}", dec.noise_budget(&rl).unwrap());
    assert_eq!(enc.decode(&dec.decrypt(&rl).unwrap()).unwrap(), exp);
    let ms = ev.mod_switch_to_next(&rl).unwrap();
    println!("modswitch budget {}", dec.noise_budget(&ms).unwrap());
    assert_eq!(enc.decode(&dec.decrypt(&ms).unwrap()).unwrap(), exp);
    let pm = ev.multiply_plain(&ca, &pb).unwrap();
    println!("plain mult budget {}", dec.noise_budget(&pm).unwrap());
    assert_eq!(enc.decode(&dec.decrypt(&pm).unwrap()).unwrap(), exp);
}
