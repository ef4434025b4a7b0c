//! BFV benchmarks of he-core, side by side with the `fhe` crate (fhe.rs
//! 0.1.1) in one criterion group `bfv`, so ratios come from the same run.
//!
//! Function ids: `{op}` for he-core and `fhe-{op}` for fhe, parameter the
//! setting's label (`n`, or `n-{bits}bit` for a second row at one degree).
//! Each he-core op is immediately followed by its fhe counterpart, so a
//! pair sees the same machine load.
//!
//! Parameters (128-bit security, HomomorphicEncryption.org table):
//! - n = 4096: ciphertext primes 36 + 36 bits, special prime 37 (log q 109);
//! - n = 8192: ciphertext primes 54 + 54 + 55 bits, special prime 55 (log q 218);
//! - n = 8192 (`8192-43bit`): primes 4 x 43 bits, special prime 46 (log q 218),
//!   small enough for the AVX-512 IFMA NTT;
//! - t: the largest 20-bit prime = 1 mod 2n.
//!
//! fhe has no special prime (its relinearization key lives over the
//! ciphertext primes), so it is given exactly the same ciphertext primes
//! and the same `t` as he-core (`set_moduli`, `set_plaintext_modulus`):
//! every op works on the same number of RNS residues in both crates.
//!
//! Representation: fhe keeps ciphertexts in NTT form at all times; he-core
//! returns them in coefficient form from encryption, multiplication and
//! relinearization and keeps whatever form it is given elsewhere. Each
//! crate is benchmarked in its own natural form (comments below say which).
//!
//! Run: `cargo bench -p he-core --bench bfv`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, BenchmarkGroup, BenchmarkId, Criterion, measurement::WallTime};
use fhe_traits::{FheDecoder, FheDecrypter, FheEncoder, FheEncrypter};
use he_core::{
    BatchEncoder, BfvParameters, BfvParametersBuilder, Decryptor, Encryptor, Evaluator, PublicKey,
    RelinKeys, SecretKey,
};

/// One benchmarked parameter set.
struct Setting {
    /// Parameter label in the benchmark ids (the degree, plus the prime
    /// size when a degree has several rows).
    label: &'static str,
    n: usize,
    moduli_bits: &'static [u32],
    special_bits: u32,
}

const SETTINGS: [Setting; 3] = [
    Setting {
        label: "4096",
        n: 4096,
        moduli_bits: &[36, 36],
        special_bits: 37,
    },
    Setting {
        label: "8192",
        n: 8192,
        moduli_bits: &[54, 54, 55],
        special_bits: 55,
    },
    // Same log q, primes small enough for the AVX-512 IFMA NTT (<= 50 bits).
    Setting {
        label: "8192-43bit",
        n: 8192,
        moduli_bits: &[43, 43, 43, 43],
        special_bits: 46,
    },
];

const PLAINTEXT_BITS: u32 = 20;

fn he_params(s: &Setting) -> Arc<BfvParameters> {
    let params = BfvParametersBuilder::new()
        .degree(s.n)
        .plaintext_bits(PLAINTEXT_BITS)
        .moduli_bits(s.moduli_bits)
        .special_modulus_bits(s.special_bits)
        .build()
        .expect("he-core parameters");
    let expected: u32 = s.moduli_bits.iter().sum::<u32>() + s.special_bits;
    assert!(params.log_q() <= expected, "log q {}", params.log_q());
    params
}

/// fhe parameters with exactly he-core's ciphertext primes and `t`.
fn fhe_params(he: &BfvParameters) -> Arc<fhe::bfv::BfvParameters> {
    let moduli: Vec<u64> = he.moduli().iter().map(|m| m.value()).collect();
    fhe::bfv::BfvParametersBuilder::new()
        .set_degree(he.degree())
        .set_plaintext_modulus(he.plaintext().value())
        .set_moduli(&moduli)
        .build_arc()
        .expect("fhe parameters")
}

/// Deterministic slot values below `t`.
fn slots(n: usize, t: u64, salt: u64) -> Vec<u64> {
    (0..n as u64)
        .map(|i| (i.wrapping_mul(7919).wrapping_add(salt * 104_729)) % t)
        .collect()
}

fn slot_products(a: &[u64], b: &[u64], t: u64) -> Vec<u64> {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| ((x as u128 * y as u128) % t as u128) as u64)
        .collect()
}

fn bench_setting(group: &mut BenchmarkGroup<'_, WallTime>, s: &Setting) {
    let n = s.n;
    let params = he_params(s);
    let t = params.plaintext().value();
    let va = slots(n, t, 1);
    let vb = slots(n, t, 2);
    let vab = slot_products(&va, &vb, t);

    // ---- he-core setup, checked once for correctness.
    let sk = SecretKey::random(&params).unwrap();
    let pk = PublicKey::new(&sk).unwrap();
    let rk = RelinKeys::new(&sk).unwrap();
    let encoder = BatchEncoder::new(&params);
    let encryptor = Encryptor::new(&params, &pk).unwrap();
    let evaluator = Evaluator::new(&params);
    let decryptor = Decryptor::new(&sk);
    let pt_a = encoder.encode(&va).unwrap();
    let pt_b = encoder.encode(&vb).unwrap();
    // Coefficient form, as encryption returns them.
    let ct_a = encryptor.encrypt(&pt_a).unwrap();
    let ct_b = encryptor.encrypt(&pt_b).unwrap();
    let mut ct_a_ntt = ct_a.clone();
    evaluator.transform_to_ntt(&mut ct_a_ntt).unwrap();
    let pt_b_ntt = evaluator.plain_to_ntt(&pt_b, 0).unwrap();
    let ct_ab3 = evaluator.multiply(&ct_a, &ct_b).unwrap();
    let dec = |ct: &he_core::Ciphertext| encoder.decode(&decryptor.decrypt(ct).unwrap()).unwrap();
    assert_eq!(dec(&ct_a), va);
    assert_eq!(dec(&evaluator.add(&ct_a, &ct_b).unwrap()), {
        let sum: Vec<u64> = va.iter().zip(&vb).map(|(&x, &y)| (x + y) % t).collect();
        sum
    });
    assert_eq!(
        dec(&evaluator.multiply_plain_ntt(&ct_a_ntt, &pt_b_ntt).unwrap()),
        vab
    );
    assert_eq!(dec(&ct_ab3), vab);
    let ct_ab = evaluator.relinearize(&ct_ab3, &rk).unwrap();
    assert_eq!(ct_ab.size(), 2);
    assert_eq!(dec(&ct_ab), vab);
    assert_eq!(dec(&evaluator.mod_switch_to_next(&ct_ab).unwrap()), vab);
    assert_eq!(dec(&sk.encrypt_symmetric(&pt_a).unwrap()), va);

    // ---- fhe setup on the same primes and t, checked once as well.
    use fhe::bfv::{Ciphertext, Encoding, Plaintext, RelinearizationKey};
    let fpar = fhe_params(&params);
    let mut rng = rand::rng();
    let fsk = fhe::bfv::SecretKey::random(&fpar, &mut rng);
    let fpk = fhe::bfv::PublicKey::new(&fsk, &mut rng);
    let frk = RelinearizationKey::new(&fsk, &mut rng).unwrap();
    let fpt_a = Plaintext::try_encode(&va, Encoding::simd(), &fpar).unwrap();
    let fpt_b = Plaintext::try_encode(&vb, Encoding::simd(), &fpar).unwrap();
    let fct_a: Ciphertext = fpk.try_encrypt(&fpt_a, &mut rng).unwrap();
    let fct_b: Ciphertext = fpk.try_encrypt(&fpt_b, &mut rng).unwrap();
    let fct_ab3 = &fct_a * &fct_b;
    let fdec = |ct: &Ciphertext| {
        Vec::<u64>::try_decode(&fsk.try_decrypt(ct).unwrap(), Encoding::simd()).unwrap()
    };
    assert_eq!(fdec(&fct_a), va);
    assert_eq!(fdec(&(&fct_a * &fpt_b)), vab);
    assert_eq!(fdec(&fct_ab3), vab);
    let mut fct_ab = fct_ab3.clone();
    frk.relinearizes(&mut fct_ab).unwrap();
    assert_eq!(fdec(&fct_ab), vab);

    // ---- encode. he-core: slots -> coefficients mod t (one NTT mod t).
    // fhe's encode also lifts the plaintext to the ciphertext primes and
    // transforms it (k more NTTs): work he-core defers to encryption
    // (scaling by Delta) and to `plain_to_ntt`.
    group.bench_function(BenchmarkId::new("encode", s.label), |b| {
        b.iter(|| encoder.encode(black_box(&va)).unwrap())
    });
    group.bench_function(BenchmarkId::new("fhe-encode", s.label), |b| {
        b.iter(|| Plaintext::try_encode(black_box(&va), Encoding::simd(), &fpar).unwrap())
    });

    // ---- public-key encryption (he-core output: coefficient form; fhe: NTT form).
    group.bench_function(BenchmarkId::new("encrypt_pk", s.label), |b| {
        b.iter(|| encryptor.encrypt(black_box(&pt_a)).unwrap())
    });
    group.bench_function(BenchmarkId::new("fhe-encrypt_pk", s.label), |b| {
        b.iter(|| {
            let ct: Ciphertext = fpk.try_encrypt(black_box(&fpt_a), &mut rng).unwrap();
            ct
        })
    });

    // ---- symmetric encryption (he-core: seeded, `a` expanded from a seed).
    group.bench_function(BenchmarkId::new("encrypt_sk", s.label), |b| {
        b.iter(|| sk.encrypt_symmetric(black_box(&pt_a)).unwrap())
    });
    group.bench_function(BenchmarkId::new("fhe-encrypt_sk", s.label), |b| {
        b.iter(|| {
            let ct: Ciphertext = fsk.try_encrypt(black_box(&fpt_a), &mut rng).unwrap();
            ct
        })
    });

    // ---- decryption of a fresh ciphertext (he-core: coefficient form, as
    // encryption returns it; fhe: NTT form, its only form). Decoding is not
    // included.
    group.bench_function(BenchmarkId::new("decrypt", s.label), |b| {
        b.iter(|| decryptor.decrypt(black_box(&ct_a)).unwrap())
    });
    group.bench_function(BenchmarkId::new("fhe-decrypt", s.label), |b| {
        b.iter(|| fsk.try_decrypt(black_box(&fct_a)).unwrap())
    });

    // ---- ciphertext addition (both allocate the result).
    group.bench_function(BenchmarkId::new("add", s.label), |b| {
        b.iter(|| evaluator.add(black_box(&ct_a), black_box(&ct_b)).unwrap())
    });
    group.bench_function(BenchmarkId::new("fhe-add", s.label), |b| {
        b.iter(|| black_box(&fct_a) + black_box(&fct_b))
    });

    // ---- ciphertext x plaintext, both operands already in NTT form. fhe
    // has no separate NTT-form plaintext type: every fhe `Plaintext` carries
    // its lift to the ciphertext primes in NTT form, so `&ct * &pt` is the
    // exact counterpart of `multiply_plain_ntt` (slot-wise products only).
    group.bench_function(BenchmarkId::new("multiply_plain_ntt", s.label), |b| {
        b.iter(|| {
            evaluator
                .multiply_plain_ntt(black_box(&ct_a_ntt), black_box(&pt_b_ntt))
                .unwrap()
        })
    });
    group.bench_function(BenchmarkId::new("fhe-multiply_plain_ntt", s.label), |b| {
        b.iter(|| black_box(&fct_a) * black_box(&fpt_b))
    });

    // ---- ciphertext x ciphertext, without relinearization (size-3 result;
    // he-core: coefficient-form in and out; fhe: NTT form in and out).
    group.bench_function(BenchmarkId::new("multiply", s.label), |b| {
        b.iter(|| {
            evaluator
                .multiply(black_box(&ct_a), black_box(&ct_b))
                .unwrap()
        })
    });
    group.bench_function(BenchmarkId::new("fhe-multiply", s.label), |b| {
        b.iter(|| black_box(&fct_a) * black_box(&fct_b))
    });

    // ---- relinearization of a size-3 product, in place (the clone of the
    // input is made outside the timed region).
    group.bench_function(BenchmarkId::new("relinearize", s.label), |b| {
        b.iter_batched(
            || ct_ab3.clone(),
            |mut ct| {
                evaluator.relinearize_assign(&mut ct, &rk).unwrap();
                ct
            },
            BatchSize::LargeInput,
        )
    });
    group.bench_function(BenchmarkId::new("fhe-relinearize", s.label), |b| {
        b.iter_batched(
            || fct_ab3.clone(),
            |mut ct| {
                frk.relinearizes(&mut ct).unwrap();
                ct
            },
            BatchSize::LargeInput,
        )
    });

    // ---- modulus switching from level 0 to level 1, in place (he-core:
    // coefficient form, as relinearization returns it, so no NTT; fhe:
    // NTT form, so it pays an inverse and a forward NTT per residue).
    group.bench_function(BenchmarkId::new("mod_switch", s.label), |b| {
        b.iter_batched(
            || ct_ab.clone(),
            |mut ct| {
                evaluator.mod_switch_to_next_assign(&mut ct).unwrap();
                ct
            },
            BatchSize::LargeInput,
        )
    });
    group.bench_function(BenchmarkId::new("fhe-mod_switch", s.label), |b| {
        b.iter_batched(
            || fct_ab.clone(),
            |mut ct| {
                ct.switch_down().unwrap();
                ct
            },
            BatchSize::LargeInput,
        )
    });
}

fn bfv(c: &mut Criterion) {
    let mut group = c.benchmark_group("bfv");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20);
    for s in &SETTINGS {
        bench_setting(&mut group, s);
    }
    group.finish();
}

criterion::criterion_group!(benches, bfv);
criterion::criterion_main!(benches);
