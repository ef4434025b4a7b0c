//! Measures, on one core, the operation costs that psi-core's parameter
//! design weighs (`psi_core::presets`): a ciphertext product with
//! relinearization, a lift and one term of `Evaluator::multiply_sum` (a
//! Paterson-Stockmeyer block), a plain multiply-accumulate term at the
//! plaintexts' level, and compressing a result.
//!
//! ```sh
//! GLIBC_TUNABLES=glibc.malloc.mmap_threshold=268435456:glibc.malloc.trim_threshold=1073741824 \
//!     cargo run --release -p he-core --example op_costs
//! ```
//!
//! The figures are for data in cache, on a quiet machine; only their
//! ratios matter to the design. Without the tunables, glibc returns every
//! freed multi-megabyte buffer to the system on this single thread, and
//! the page faults of the next allocation inflate products and lifts by up
//! to 2.5 times; the design's figures were taken with them.

use std::time::Instant;

use he_core::*;
use rand::{Rng, SeedableRng};

/// Median of `reps` timings of `f`, in microseconds.
fn time_us(reps: usize, mut f: impl FnMut()) -> f64 {
    let mut v: Vec<f64> = (0..reps)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    v.sort_by(f64::total_cmp);
    v[reps / 2]
}

fn main() -> Result<()> {
    // (n, t, ciphertext prime bits, special prime bits or none): the BFV
    // choices of psi_core::presets.
    let cases: &[(usize, u64, &[u32], Option<u32>)] = &[
        (8192, 1_032_193, &[50, 50, 50], Some(50)),
        (8192, 1_032_193, &[54, 54, 55], Some(55)),
        (8192, 2_277_377, &[60, 60, 60], Some(38)),
        (4096, 40_961, &[36, 36], Some(37)),
        (2048, 12_289, &[42], None),
        (4096, 65_537, &[50], None),
    ];
    const TERMS: usize = 64;
    println!("n      q                  product  ps-block  plain   part   (microseconds)");
    for &(n, t, q, special) in cases {
        let builder = BfvParametersBuilder::new()
            .degree(n)
            .plaintext_modulus(t)
            .moduli_bits(q);
        let params = match special {
            Some(bits) => builder.special_modulus_bits(bits),
            None => builder.without_key_switching(),
        }
        .build()?;
        let sk = SecretKey::random(&params)?;
        let encoder = BatchEncoder::new(&params);
        let ev = Evaluator::new(&params);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let mut random_plain = || -> Result<Plaintext> {
            let v: Vec<u64> = (0..n).map(|_| rng.random_range(0..t)).collect();
            encoder.encode(&v)
        };
        let ct = sk.encrypt_symmetric(&random_plain()?)?;
        // Plaintexts sit one prime above the last (psi_core's plain level).
        let level = params.max_level().saturating_sub(1);
        let mut at_level = ev.mod_switch_to_level(&ct, level)?;
        let (mut product, mut block) = (f64::NAN, f64::NAN);
        if special.is_some() {
            let rk = RelinKeys::new(&sk)?;
            product = time_us(15, || {
                ev.multiply_relin(&ct, &ct, &rk).expect("product");
            });
            ev.transform_to_ntt(&mut at_level)?;
            let lifted = ev.lift(&at_level)?;
            let lift = time_us(15, || {
                ev.lift(&at_level).expect("lift");
            });
            let pairs = vec![(&lifted, &lifted); 28];
            let sum = time_us(15, || {
                ev.multiply_sum(&pairs).expect("sum");
            });
            block = lift + sum / 28.0;
        } else {
            ev.transform_to_ntt(&mut at_level)?;
        }
        let plaintexts = (0..TERMS)
            .map(|_| ev.plain_to_ntt(&random_plain()?, level))
            .collect::<Result<Vec<_>>>()?;
        let pairs: Vec<(&Ciphertext, &PlaintextNtt)> =
            plaintexts.iter().map(|p| (&at_level, p)).collect();
        let plain = time_us(15, || {
            ev.multiply_plain_accumulate(&pairs).expect("accumulate");
        }) / TERMS as f64;
        let bits = CompressionBits::for_params(&params);
        let part = time_us(15, || {
            ev.compress(&ct, bits)
                .and_then(|c| c.to_bytes(&params))
                .expect("compress");
        });
        println!(
            "{n:<6} {:<18} {product:>7.0}  {block:>8.0}  {plain:>5.1}  {part:>5.0}",
            format!("{q:?}")
        );
    }
    Ok(())
}
