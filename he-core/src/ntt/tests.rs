//! Differential tests: every available backend against scalar and against
//! a naive O(n^2) negacyclic product.

use super::*;
use crate::modulus::{Modulus, generate_ntt_primes};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const DEGREES: [usize; 6] = [1024, 2048, 4096, 8192, 16384, 32768];
const PRIME_BITS: [u32; 6] = [30, 40, 50, 55, 60, 61];

/// Test primes: the largest `bits`-bit prime = 1 mod 2^17, valid for every degree.
fn test_prime(bits: u32) -> u64 {
    generate_ntt_primes(bits, 1, MAX_DEGREE, &[]).unwrap()[0]
}

fn naive_negacyclic(a: &[u64], b: &[u64], m: &Modulus) -> Vec<u64> {
    let n = a.len();
    let mut out = vec![0u64; n];
    for (i, &ai) in a.iter().enumerate() {
        if ai == 0 {
            continue;
        }
        for (j, &bj) in b.iter().enumerate() {
            let prod = m.mul(ai, bj);
            let k = i + j;
            if k < n {
                out[k] = m.add(out[k], prod);
            } else {
                out[k - n] = m.sub(out[k - n], prod);
            }
        }
    }
    out
}

/// Random vector with the boundary values 0 and p-1 planted at both ends
/// and at every SIMD lane boundary of the first block.
fn sample(n: usize, p: u64, rng: &mut ChaCha8Rng) -> Vec<u64> {
    let mut v: Vec<u64> = (0..n).map(|_| rng.random_range(0..p)).collect();
    for i in [0, 1, 3, 4, 7, 8, 15, 16].into_iter().filter(|&i| i < n) {
        v[i] = if i % 2 == 0 { p - 1 } else { 0 };
    }
    v[n - 1] = p - 1;
    v[n - 2] = 0;
    v
}

fn negacyclic_via_ntt(plan: &NttPlan, a: &[u64], b: &[u64]) -> Vec<u64> {
    let (mut fa, mut fb) = (a.to_vec(), b.to_vec());
    plan.forward(&mut fa);
    plan.forward(&mut fb);
    for (x, y) in fa.iter_mut().zip(&fb) {
        *x = plan.modulus.mul(*x, *y);
    }
    plan.inverse(&mut fa);
    fa
}

#[test]
fn every_backend_matches_scalar_bit_for_bit() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for bits in PRIME_BITS {
        let p = test_prime(bits);
        for n in DEGREES {
            let scalar = NttPlan::with_backend(n, p, Backend::Scalar).unwrap();
            let input = sample(n, p, &mut rng);
            let mut expect = input.clone();
            scalar.forward(&mut expect);
            let mut expect_inv = input.clone();
            scalar.inverse(&mut expect_inv);
            for backend in Backend::available() {
                if !backend.supports_bits(bits) {
                    assert!(matches!(
                        NttPlan::with_backend(n, p, backend),
                        Err(Error::BackendUnsupportedModulus { .. })
                    ));
                    continue;
                }
                let plan = NttPlan::with_backend(n, p, backend).unwrap();
                let mut got = input.clone();
                plan.forward(&mut got);
                assert_eq!(got, expect, "forward {backend:?} n={n} bits={bits}");
                plan.inverse(&mut got);
                assert_eq!(got, input, "round trip {backend:?} n={n} bits={bits}");
                let mut got_inv = input.clone();
                plan.inverse(&mut got_inv);
                assert_eq!(got_inv, expect_inv, "inverse {backend:?} n={n} bits={bits}");
                // All-boundary inputs: every lane at p-1, then all zero.
                for fill in [p - 1, 0] {
                    let mut a = vec![fill; n];
                    let mut b = a.clone();
                    plan.forward(&mut a);
                    scalar.forward(&mut b);
                    assert_eq!(a, b, "constant {fill} {backend:?} n={n}");
                }
            }
        }
    }
}

#[test]
fn ntt_product_matches_naive_negacyclic_product() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    for bits in PRIME_BITS {
        let p = test_prime(bits);
        let m = Modulus::new(p).unwrap();
        for n in DEGREES {
            let dense_a = sample(n, p, &mut rng);
            // Dense x dense costs n^2: do it up to 4096; above, multiply by a
            // sparse polynomial (still exercising every wrap-around sign).
            let a = if n <= 4096 {
                dense_a
            } else {
                let mut s = vec![0u64; n];
                for _ in 0..12 {
                    s[rng.random_range(0..n)] = rng.random_range(0..p);
                }
                s[n - 1] = p - 1;
                s
            };
            let b = sample(n, p, &mut rng);
            let expect = naive_negacyclic(&a, &b, &m);
            for backend in Backend::available() {
                if !backend.supports_bits(bits) {
                    continue;
                }
                let plan = NttPlan::with_backend(n, p, backend).unwrap();
                assert_eq!(
                    negacyclic_via_ntt(&plan, &a, &b),
                    expect,
                    "{backend:?} n={n} bits={bits}"
                );
            }
        }
    }
}

#[test]
fn x_times_x_pow_n_minus_1_is_minus_one() {
    // X * X^(n-1) = X^n = -1 in the negacyclic ring: a known answer.
    let p = test_prime(50);
    for n in DEGREES {
        let plan = NttPlan::new(n, p).unwrap();
        let mut a = vec![0u64; n];
        let mut b = vec![0u64; n];
        a[1] = 1;
        b[n - 1] = 1;
        let mut expect = vec![0u64; n];
        expect[0] = p - 1;
        assert_eq!(negacyclic_via_ntt(&plan, &a, &b), expect);
    }
}

#[test]
fn bad_plans_are_errors() {
    let p = test_prime(50);
    assert!(NttPlan::new(1000, p).is_err());
    assert!(NttPlan::new(4, p).is_err());
    assert!(NttPlan::new(1024, p + 2).is_err());
    assert!(NttPlan::new(1024, 1 << 62).is_err());
    for backend in Backend::ALL {
        if !backend.is_available() {
            assert_eq!(
                NttPlan::with_backend(1024, p, backend).unwrap_err(),
                Error::BackendUnavailable(backend)
            );
        }
    }
}

/// Small degrees exercise every schedule of the SIMD kernels: the scalar
/// fallback below `L * L`, the tail pass alone (`n = L * L`, where the
/// inverse scales in a separate pass), one radix-2 pass, one radix-4 pass,
/// and a radix-2 pass followed by radix-4 passes.
#[test]
fn small_degrees_match_scalar_and_naive() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for bits in PRIME_BITS {
        let p = test_prime(bits);
        let m = Modulus::new(p).unwrap();
        for log_n in 3..=10 {
            let n = 1 << log_n;
            let scalar = NttPlan::with_backend(n, p, Backend::Scalar).unwrap();
            let a = sample(n, p, &mut rng);
            let b = sample(n, p, &mut rng);
            let expect_prod = naive_negacyclic(&a, &b, &m);
            let mut expect_fwd = a.clone();
            scalar.forward(&mut expect_fwd);
            let mut expect_inv = a.clone();
            scalar.inverse(&mut expect_inv);
            for backend in Backend::available() {
                if !backend.supports_bits(bits) {
                    continue;
                }
                let plan = NttPlan::with_backend(n, p, backend).unwrap();
                let mut got = a.clone();
                plan.forward(&mut got);
                assert_eq!(got, expect_fwd, "forward {backend:?} n={n} bits={bits}");
                let mut got = a.clone();
                plan.inverse(&mut got);
                assert_eq!(got, expect_inv, "inverse {backend:?} n={n} bits={bits}");
                assert_eq!(
                    negacyclic_via_ntt(&plan, &a, &b),
                    expect_prod,
                    "product {backend:?} n={n} bits={bits}"
                );
            }
        }
    }
}

/// Values at the top of the lazy ranges: inputs `p - 1` everywhere and
/// alternating `0, p - 1`, through both directions, on the largest prime
/// each backend accepts.
#[test]
fn extreme_inputs_match_scalar() {
    for bits in [IFMA_MAX_BITS, crate::modulus::MAX_MODULUS_BITS] {
        let p = test_prime(bits);
        for n in [64, 128, 256, 4096] {
            let scalar = NttPlan::with_backend(n, p, Backend::Scalar).unwrap();
            let inputs: [Vec<u64>; 3] = [
                vec![p - 1; n],
                (0..n).map(|i| if i % 2 == 0 { 0 } else { p - 1 }).collect(),
                (0..n).map(|i| if i % 3 == 0 { p - 1 } else { 1 }).collect(),
            ];
            for backend in Backend::available() {
                if !backend.supports_bits(bits) {
                    continue;
                }
                let plan = NttPlan::with_backend(n, p, backend).unwrap();
                for input in &inputs {
                    for inverse in [false, true] {
                        let (mut got, mut expect) = (input.clone(), input.clone());
                        if inverse {
                            plan.inverse(&mut got);
                            scalar.inverse(&mut expect);
                        } else {
                            plan.forward(&mut got);
                            scalar.forward(&mut expect);
                        }
                        assert_eq!(got, expect, "{backend:?} n={n} bits={bits} inv={inverse}");
                    }
                }
            }
        }
    }
}
