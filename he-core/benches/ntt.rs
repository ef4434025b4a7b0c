//! NTT throughput: every he-core backend this CPU runs against tfhe-ntt,
//! on the same prime, in one run so the ratios can be read off directly.
//!
//! Ids: `ntt_forward/<impl>/<n>/<bits>` and `ntt_inverse/<impl>/<n>/<bits>`
//! with `<impl>` one of `he-core` (best backend for the prime),
//! `he-core-<backend>` and `tfhe-ntt`. Both libraries produce bit-reversed
//! forward output; both inverses include the `1/n` factor (`normalize`
//! for tfhe-ntt).

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkGroup, BenchmarkId, Criterion, criterion_group, criterion_main};
use he_core::modulus::generate_ntt_primes;
use he_core::{Backend, NttPlan};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const DEGREES: [usize; 4] = [4096, 8192, 16384, 32768];
const PRIME_BITS: [u32; 2] = [50, 60];

/// One configuration: the prime, our plans and tfhe-ntt's.
struct Config {
    n: usize,
    bits: u32,
    data: Vec<u64>,
    ours: Vec<(String, NttPlan)>,
    tfhe: tfhe_ntt::prime64::Plan,
}

fn configs() -> Vec<Config> {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut out = Vec::new();
    for bits in PRIME_BITS {
        for n in DEGREES {
            let p = generate_ntt_primes(bits, 1, n, &[]).expect("NTT prime exists")[0];
            let tfhe = tfhe_ntt::prime64::Plan::try_new(n, p)
                .unwrap_or_else(|| panic!("tfhe-ntt rejects the {bits}-bit prime {p}"));
            let mut ours = vec![("he-core".to_string(), NttPlan::new(n, p).expect("plan"))];
            for backend in [
                Backend::Scalar,
                Backend::Avx2,
                Backend::Avx512,
                Backend::Avx512Ifma,
            ] {
                // Skip backends this CPU lacks or that cannot take the prime.
                if let Ok(plan) = NttPlan::with_backend(n, p, backend) {
                    ours.push((format!("he-core-{}", backend.name()), plan));
                }
            }
            let data = (0..n).map(|_| rng.random_range(0..p)).collect();
            out.push(Config {
                n,
                bits,
                data,
                ours,
                tfhe,
            });
        }
    }
    out
}

fn bench_direction<M: criterion::measurement::Measurement>(
    group: &mut BenchmarkGroup<'_, M>,
    configs: &[Config],
    inverse: bool,
) {
    for cfg in configs {
        let param = format!("{}/{}", cfg.n, cfg.bits);
        for (name, plan) in &cfg.ours {
            group.bench_with_input(BenchmarkId::new(name, &param), &cfg.data, |b, data| {
                let mut buf = data.clone();
                if inverse {
                    b.iter(|| plan.inverse(black_box(&mut buf)));
                } else {
                    b.iter(|| plan.forward(black_box(&mut buf)));
                }
            });
        }
        group.bench_with_input(
            BenchmarkId::new("tfhe-ntt", &param),
            &cfg.data,
            |b, data| {
                let mut buf = data.clone();
                if inverse {
                    b.iter(|| {
                        cfg.tfhe.inv(black_box(&mut buf));
                        cfg.tfhe.normalize(&mut buf);
                    });
                } else {
                    b.iter(|| cfg.tfhe.fwd(black_box(&mut buf)));
                }
            },
        );
    }
}

fn ntt(c: &mut Criterion) {
    let configs = configs();
    let mut group = c.benchmark_group("ntt_forward");
    bench_direction(&mut group, &configs, false);
    group.finish();
    let mut group = c.benchmark_group("ntt_inverse");
    bench_direction(&mut group, &configs, true);
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    targets = ntt
}
criterion_main!(benches);
