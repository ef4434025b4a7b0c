//! x86-64 SIMD NTT backends, chosen at run time.
//!
//! The kernels (`avx2.rs`, `avx512.rs`) are private `#[target_feature]`
//! functions; this module checks the CPU (`is_x86_feature_detected!`)
//! before every call into them and falls back to the scalar kernel when a
//! plan's backend cannot run.
//!
//! All kernels share one schedule, written once in [`ntt_kernels!`]:
//!
//! - the stages whose butterfly half-width `t` exceeds `L * L / 2` (`L` the
//!   lane count) run as radix-8 passes on AVX-512 (three stages per sweep
//!   over the data) and radix-4 passes on AVX2 (16 registers), after one
//!   radix-2 or radix-4 pass for the remainder;
//! - the last `2 log2 L` stages run in one pass over chunks of `L * L`
//!   values held in `L` registers: `log2 L` stages between whole registers,
//!   an `L x L` transpose, `log2 L` stages between lanes (twiddles from
//!   [`TailStage`] tables laid out lane by lane), a transpose back.
//!
//! The inverse runs the same schedule backwards and folds the `1/n` factor
//! into its last stage. Lazy ranges are the scalar kernel's (Harvey:
//! `[0, 4p)` forward, `[0, 2p)` inverse), outputs are fully reduced, so
//! results equal the scalar kernel's bit for bit.
//!
//! Degrees below `L * L` (64 for AVX-512, 16 for AVX2) use the scalar kernel.
//!
//! Toolchain: the AVX-512 intrinsics are stable since Rust 1.89 and
//! `slice::as_chunks` since 1.88, above the workspace's declared
//! `rust-version` (1.85), hence the `incompatible_msrv` allowance below:
//! building this module needs Rust 1.89 or later.
#![allow(clippy::incompatible_msrv)]

use super::{Backend, IFMA_MAX_BITS, NttPlan, scalar};

/// The kernel schedule shared by every backend.
///
/// Invoked inside a backend module that defines `Consts` (with fields `p`
/// and `two_p` broadcast), and `#[target_feature]` helpers `consts`,
/// `splat`, `load`, `store`, `add`, `sub`, `csub` (`x - b` if `x >= b`, for
/// `x < 2b`), `mul_lazy` (`x * w mod p` in `[0, 2p)` from a Shoup constant)
/// and `transpose`, and `detected()` (the CPU check, for tests).
/// `halves` lists `L/2, L/4, ..., 1`, `rev` the same backwards; `radix8`
/// merges three stages per sweep instead of two.
macro_rules! ntt_kernels {
    (feature = $feat:literal, lanes = $lanes:literal, vector = $v:ty, halves = [$($h:literal),*], rev = [$($r:literal),*], radix8 = $radix8:literal) => {
        use $crate::ntt::x86_64::{TailStage, Twiddles};

        const LANES: usize = $lanes;
        const CHUNK: usize = LANES * LANES;
        /// Largest number of stages merged into one sweep over the data.
        const MERGE: u32 = if $radix8 { 3 } else { 2 };

        /// Cooley-Tukey butterfly: inputs and outputs in `[0, 4p)`.
        #[target_feature(enable = $feat)]
        #[inline]
        fn fwd_bfly(c: &Consts, x: $v, y: $v, w: $v, ws: $v) -> ($v, $v) {
            let x = csub(x, c.two_p);
            let v = mul_lazy(c, y, w, ws);
            (add(x, v), sub(add(x, c.two_p), v))
        }

        /// Gentleman-Sande butterfly: inputs and outputs in `[0, 2p)`.
        #[target_feature(enable = $feat)]
        #[inline]
        fn inv_bfly(c: &Consts, x: $v, y: $v, w: $v, ws: $v) -> ($v, $v) {
            let s = csub(add(x, y), c.two_p);
            let d = sub(add(x, c.two_p), y);
            (s, mul_lazy(c, d, w, ws))
        }

        /// Last Gentleman-Sande stage with the `1/n` factor folded in
        /// (`wn = w / n`): inputs in `[0, 2p)`, outputs in `[0, p)`.
        #[target_feature(enable = $feat)]
        #[inline]
        fn inv_last_bfly(c: &Consts, x: $v, y: $v, k: &LastConsts) -> ($v, $v) {
            let s = add(x, y);
            let d = sub(add(x, c.two_p), y);
            (
                csub(mul_lazy(c, s, k.ni, k.nis), c.p),
                csub(mul_lazy(c, d, k.wn, k.wns), c.p),
            )
        }

        struct LastConsts {
            ni: $v,
            nis: $v,
            wn: $v,
            wns: $v,
        }

        #[target_feature(enable = $feat)]
        #[inline]
        fn last_consts(tw: &Twiddles<'_>) -> LastConsts {
            LastConsts {
                ni: splat(tw.n_inv),
                nis: splat(tw.n_inv_s),
                wn: splat(tw.last_w),
                wns: splat(tw.last_ws),
            }
        }

        /// One forward stage (`m` blocks of `2t`) over the whole vector.
        #[target_feature(enable = $feat)]
        fn fwd_radix2(c: &Consts, a: &mut [u64], m: usize, tw: &Twiddles<'_>) {
            let t = a.len() / (2 * m);
            let ws = tw.fwd[m..2 * m].iter().zip(&tw.fwd_s[m..2 * m]);
            for (block, (&w, &wsh)) in a.chunks_exact_mut(2 * t).zip(ws) {
                let (w, wsh) = (splat(w), splat(wsh));
                let (lo, hi) = block.split_at_mut(t);
                let lo = lo.as_chunks_mut::<LANES>().0;
                let hi = hi.as_chunks_mut::<LANES>().0;
                for (x, y) in lo.iter_mut().zip(hi.iter_mut()) {
                    let (u, v) = fwd_bfly(c, load(x), load(y), w, wsh);
                    store(x, u);
                    store(y, v);
                }
            }
        }

        /// Forward stages `m` and `2m` in one sweep (radix 4).
        #[target_feature(enable = $feat)]
        fn fwd_radix4(c: &Consts, a: &mut [u64], m: usize, tw: &Twiddles<'_>) {
            let t = a.len() / (2 * m);
            let q = t / 2;
            for (i, block) in a.chunks_exact_mut(2 * t).enumerate() {
                let w1 = splat(tw.fwd[m + i]);
                let ws1 = splat(tw.fwd_s[m + i]);
                let w2 = splat(tw.fwd[2 * m + 2 * i]);
                let ws2 = splat(tw.fwd_s[2 * m + 2 * i]);
                let w3 = splat(tw.fwd[2 * m + 2 * i + 1]);
                let ws3 = splat(tw.fwd_s[2 * m + 2 * i + 1]);
                let (h0, h1) = block.split_at_mut(t);
                let (q0, q1) = h0.split_at_mut(q);
                let (q2, q3) = h1.split_at_mut(q);
                let q0 = q0.as_chunks_mut::<LANES>().0;
                let q1 = q1.as_chunks_mut::<LANES>().0;
                let q2 = q2.as_chunks_mut::<LANES>().0;
                let q3 = q3.as_chunks_mut::<LANES>().0;
                let quads = q0.iter_mut().zip(q1.iter_mut()).zip(q2.iter_mut().zip(q3.iter_mut()));
                for ((x0, x1), (x2, x3)) in quads {
                    let (a0, a2) = fwd_bfly(c, load(x0), load(x2), w1, ws1);
                    let (a1, a3) = fwd_bfly(c, load(x1), load(x3), w1, ws1);
                    let (a0, a1) = fwd_bfly(c, a0, a1, w2, ws2);
                    let (a2, a3) = fwd_bfly(c, a2, a3, w3, ws3);
                    store(x0, a0);
                    store(x1, a1);
                    store(x2, a2);
                    store(x3, a3);
                }
            }
        }

        /// A forward stage inside a chunk between whole registers
        /// (`TT` registers apart), for chunk `ci`; `m` is the stage's
        /// first twiddle index.
        #[target_feature(enable = $feat)]
        #[inline]
        fn fwd_reg_stage<const TT: usize>(
            c: &Consts,
            v: &mut [$v; LANES],
            m: usize,
            ci: usize,
            tw: &Twiddles<'_>,
        ) {
            let blocks = LANES / (2 * TT);
            for b in 0..blocks {
                let idx = m + ci * blocks + b;
                let (w, ws) = (splat(tw.fwd[idx]), splat(tw.fwd_s[idx]));
                for r in 0..TT {
                    let (i, j) = (2 * TT * b + r, 2 * TT * b + r + TT);
                    (v[i], v[j]) = fwd_bfly(c, v[i], v[j], w, ws);
                }
            }
        }

        /// A forward stage between lanes (`TE` lanes apart) on transposed
        /// registers of chunk `ci`.
        #[target_feature(enable = $feat)]
        #[inline]
        fn fwd_lane_stage<const TE: usize>(
            c: &Consts,
            v: &mut [$v; LANES],
            ci: usize,
            stage: &TailStage,
        ) {
            let sets = LANES / (2 * TE);
            let w = &stage.w.as_chunks::<LANES>().0[ci * sets..ci * sets + sets];
            let ws = &stage.ws.as_chunks::<LANES>().0[ci * sets..ci * sets + sets];
            for s in 0..sets {
                let (wv, wsv) = (load(&w[s]), load(&ws[s]));
                for r in 0..TE {
                    let (i, j) = (2 * TE * s + r, 2 * TE * s + r + TE);
                    (v[i], v[j]) = fwd_bfly(c, v[i], v[j], wv, wsv);
                }
            }
        }

        /// The last `2 log2 L` forward stages and the final reduction, one
        /// chunk of `L * L` values at a time.
        #[target_feature(enable = $feat)]
        fn fwd_tail(c: &Consts, a: &mut [u64], tw: &Twiddles<'_>) {
            let m0 = a.len() / CHUNK;
            for (ci, chunk) in a.as_chunks_mut::<CHUNK>().0.iter_mut().enumerate() {
                let rows = chunk.as_chunks_mut::<LANES>().0;
                let mut v = [splat(0); LANES];
                for (x, row) in v.iter_mut().zip(rows.iter()) {
                    *x = load(row);
                }
                $(fwd_reg_stage::<$h>(c, &mut v, m0 * (LANES / (2 * $h)), ci, tw);)*
                transpose(&mut v);
                $(fwd_lane_stage::<$h>(c, &mut v, ci, &tw.fwd_tail[TailStage::index($h)]);)*
                for x in v.iter_mut() {
                    *x = csub(csub(*x, c.two_p), c.p);
                }
                transpose(&mut v);
                for (x, row) in v.iter().zip(rows.iter_mut()) {
                    store(row, *x);
                }
            }
        }

        /// Forward negacyclic NTT (natural order in, bit-reversed out,
        /// values in `[0, p)`).
        ///
        /// # Safety
        /// The CPU must support the target features of this function.
        #[target_feature(enable = $feat)]
        pub(in crate::ntt::x86_64) unsafe fn forward(tw: &Twiddles<'_>, a: &mut [u64]) {
            let n = a.len();
            assert!(n >= CHUNK && n.is_power_of_two(), "SIMD NTT needs n >= {CHUNK}");
            let c = consts(tw.p);
            let mut m = 1;
            let mut big = (n / CHUNK).trailing_zeros();
            match big % MERGE {
                1 => fwd_radix2(&c, a, m, tw),
                2 => fwd_radix4(&c, a, m, tw),
                _ => {}
            }
            m <<= big % MERGE;
            big -= big % MERGE;
            while big >= MERGE {
                if MERGE == 3 {
                    fwd_radix8(&c, a, m, tw);
                } else {
                    fwd_radix4(&c, a, m, tw);
                }
                m <<= MERGE;
                big -= MERGE;
            }
            fwd_tail(&c, a, tw);
        }

        /// An inverse stage between lanes (`TE` lanes apart) on transposed
        /// registers of chunk `ci`.
        #[target_feature(enable = $feat)]
        #[inline]
        fn inv_lane_stage<const TE: usize>(
            c: &Consts,
            v: &mut [$v; LANES],
            ci: usize,
            stage: &TailStage,
        ) {
            let sets = LANES / (2 * TE);
            let w = &stage.w.as_chunks::<LANES>().0[ci * sets..ci * sets + sets];
            let ws = &stage.ws.as_chunks::<LANES>().0[ci * sets..ci * sets + sets];
            for s in 0..sets {
                let (wv, wsv) = (load(&w[s]), load(&ws[s]));
                for r in 0..TE {
                    let (i, j) = (2 * TE * s + r, 2 * TE * s + r + TE);
                    (v[i], v[j]) = inv_bfly(c, v[i], v[j], wv, wsv);
                }
            }
        }

        /// An inverse stage inside a chunk between whole registers.
        #[target_feature(enable = $feat)]
        #[inline]
        fn inv_reg_stage<const TT: usize>(
            c: &Consts,
            v: &mut [$v; LANES],
            h: usize,
            ci: usize,
            tw: &Twiddles<'_>,
        ) {
            let blocks = LANES / (2 * TT);
            for b in 0..blocks {
                let idx = h + ci * blocks + b;
                let (w, ws) = (splat(tw.inv[idx]), splat(tw.inv_s[idx]));
                for r in 0..TT {
                    let (i, j) = (2 * TT * b + r, 2 * TT * b + r + TT);
                    (v[i], v[j]) = inv_bfly(c, v[i], v[j], w, ws);
                }
            }
        }

        /// The first `2 log2 L` inverse stages, one chunk at a time.
        #[target_feature(enable = $feat)]
        fn inv_head(c: &Consts, a: &mut [u64], tw: &Twiddles<'_>) {
            let h0 = a.len() / CHUNK;
            for (ci, chunk) in a.as_chunks_mut::<CHUNK>().0.iter_mut().enumerate() {
                let rows = chunk.as_chunks_mut::<LANES>().0;
                let mut v = [splat(0); LANES];
                for (x, row) in v.iter_mut().zip(rows.iter()) {
                    *x = load(row);
                }
                transpose(&mut v);
                inv_lane_stages(c, &mut v, ci, tw);
                transpose(&mut v);
                inv_reg_stages(c, &mut v, h0, ci, tw);
                for (x, row) in v.iter().zip(rows.iter_mut()) {
                    store(row, *x);
                }
            }
        }

        #[target_feature(enable = $feat)]
        #[inline]
        fn inv_lane_stages(c: &Consts, v: &mut [$v; LANES], ci: usize, tw: &Twiddles<'_>) {
            $(inv_lane_stage::<$r>(c, v, ci, &tw.inv_tail[TailStage::index($r)]);)*
        }

        #[target_feature(enable = $feat)]
        #[inline]
        fn inv_reg_stages(c: &Consts, v: &mut [$v; LANES], h0: usize, ci: usize, tw: &Twiddles<'_>) {
            $(inv_reg_stage::<$r>(c, v, h0 * (LANES / (2 * $r)), ci, tw);)*
        }

        /// One inverse stage (`h` blocks of `2t`); `last` folds in `1/n`.
        #[target_feature(enable = $feat)]
        fn inv_radix2(c: &Consts, a: &mut [u64], h: usize, tw: &Twiddles<'_>) {
            let t = a.len() / (2 * h);
            if h == 1 {
                let k = last_consts(tw);
                let (lo, hi) = a.split_at_mut(t);
                let lo = lo.as_chunks_mut::<LANES>().0;
                let hi = hi.as_chunks_mut::<LANES>().0;
                for (x, y) in lo.iter_mut().zip(hi.iter_mut()) {
                    let (u, v) = inv_last_bfly(c, load(x), load(y), &k);
                    store(x, u);
                    store(y, v);
                }
                return;
            }
            let ws = tw.inv[h..2 * h].iter().zip(&tw.inv_s[h..2 * h]);
            for (block, (&w, &wsh)) in a.chunks_exact_mut(2 * t).zip(ws) {
                let (w, wsh) = (splat(w), splat(wsh));
                let (lo, hi) = block.split_at_mut(t);
                let lo = lo.as_chunks_mut::<LANES>().0;
                let hi = hi.as_chunks_mut::<LANES>().0;
                for (x, y) in lo.iter_mut().zip(hi.iter_mut()) {
                    let (u, v) = inv_bfly(c, load(x), load(y), w, wsh);
                    store(x, u);
                    store(y, v);
                }
            }
        }

        /// Inverse stages `h` (half-width `t`) and `h / 2` (half-width
        /// `2t`) in one sweep; when `h == 2` the second is the last stage
        /// and `1/n` is folded in.
        #[target_feature(enable = $feat)]
        fn inv_radix4(c: &Consts, a: &mut [u64], h: usize, tw: &Twiddles<'_>) {
            let t = a.len() / (2 * h);
            let k = last_consts(tw);
            for (i, block) in a.chunks_exact_mut(4 * t).enumerate() {
                let w1 = splat(tw.inv[h + 2 * i]);
                let ws1 = splat(tw.inv_s[h + 2 * i]);
                let w2 = splat(tw.inv[h + 2 * i + 1]);
                let ws2 = splat(tw.inv_s[h + 2 * i + 1]);
                let w3 = splat(tw.inv[h / 2 + i]);
                let ws3 = splat(tw.inv_s[h / 2 + i]);
                let (h0, h1) = block.split_at_mut(2 * t);
                let (q0, q1) = h0.split_at_mut(t);
                let (q2, q3) = h1.split_at_mut(t);
                let q0 = q0.as_chunks_mut::<LANES>().0;
                let q1 = q1.as_chunks_mut::<LANES>().0;
                let q2 = q2.as_chunks_mut::<LANES>().0;
                let q3 = q3.as_chunks_mut::<LANES>().0;
                let quads = q0.iter_mut().zip(q1.iter_mut()).zip(q2.iter_mut().zip(q3.iter_mut()));
                if h == 2 {
                    for ((x0, x1), (x2, x3)) in quads {
                        let (a0, a1) = inv_bfly(c, load(x0), load(x1), w1, ws1);
                        let (a2, a3) = inv_bfly(c, load(x2), load(x3), w2, ws2);
                        let (a0, a2) = inv_last_bfly(c, a0, a2, &k);
                        let (a1, a3) = inv_last_bfly(c, a1, a3, &k);
                        store(x0, a0);
                        store(x1, a1);
                        store(x2, a2);
                        store(x3, a3);
                    }
                } else {
                    for ((x0, x1), (x2, x3)) in quads {
                        let (a0, a1) = inv_bfly(c, load(x0), load(x1), w1, ws1);
                        let (a2, a3) = inv_bfly(c, load(x2), load(x3), w2, ws2);
                        let (a0, a2) = inv_bfly(c, a0, a2, w3, ws3);
                        let (a1, a3) = inv_bfly(c, a1, a3, w3, ws3);
                        store(x0, a0);
                        store(x1, a1);
                        store(x2, a2);
                        store(x3, a3);
                    }
                }
            }
        }

        /// Splits `block` into eight equal slices of whole registers.
        #[inline]
        fn eighths(block: &mut [u64]) -> [&mut [[u64; LANES]]; 8] {
            let e = block.len() / 8;
            let mut it = block.chunks_exact_mut(e).map(|s| s.as_chunks_mut::<LANES>().0);
            core::array::from_fn(|_| it.next().expect("eight slices"))
        }

        /// Forward stages `m`, `2m` and `4m` in one sweep (radix 8).
        #[target_feature(enable = $feat)]
        fn fwd_radix8(c: &Consts, a: &mut [u64], m: usize, tw: &Twiddles<'_>) {
            let t = a.len() / (2 * m);
            for (i, block) in a.chunks_exact_mut(2 * t).enumerate() {
                let tw1 = (splat(tw.fwd[m + i]), splat(tw.fwd_s[m + i]));
                let tw2: [($v, $v); 2] = core::array::from_fn(|j| {
                    (splat(tw.fwd[2 * m + 2 * i + j]), splat(tw.fwd_s[2 * m + 2 * i + j]))
                });
                let tw3: [($v, $v); 4] = core::array::from_fn(|j| {
                    (splat(tw.fwd[4 * m + 4 * i + j]), splat(tw.fwd_s[4 * m + 4 * i + j]))
                });
                let parts = eighths(block);
                let len = parts[0].len();
                for r in 0..len {
                    let mut x = [splat(0); 8];
                    for k in 0..8 {
                        x[k] = load(&parts[k][r]);
                    }
                    for k in 0..4 {
                        (x[k], x[k + 4]) = fwd_bfly(c, x[k], x[k + 4], tw1.0, tw1.1);
                    }
                    for k in [0, 1, 4, 5] {
                        let (w, ws) = tw2[k / 4];
                        (x[k], x[k + 2]) = fwd_bfly(c, x[k], x[k + 2], w, ws);
                    }
                    for j in 0..4 {
                        let (w, ws) = tw3[j];
                        (x[2 * j], x[2 * j + 1]) = fwd_bfly(c, x[2 * j], x[2 * j + 1], w, ws);
                    }
                    for k in 0..8 {
                        store(&mut parts[k][r], x[k]);
                    }
                }
            }
        }

        /// Inverse stages `h`, `h / 2` and `h / 4` in one sweep (radix 8);
        /// when `h == 4` the last one is the final stage and `1/n` is
        /// folded in.
        #[target_feature(enable = $feat)]
        fn inv_radix8(c: &Consts, a: &mut [u64], h: usize, tw: &Twiddles<'_>) {
            let t = a.len() / (2 * h);
            let k = last_consts(tw);
            for (i, block) in a.chunks_exact_mut(8 * t).enumerate() {
                let tw1: [($v, $v); 4] = core::array::from_fn(|j| {
                    (splat(tw.inv[h + 4 * i + j]), splat(tw.inv_s[h + 4 * i + j]))
                });
                let tw2: [($v, $v); 2] = core::array::from_fn(|j| {
                    (splat(tw.inv[h / 2 + 2 * i + j]), splat(tw.inv_s[h / 2 + 2 * i + j]))
                });
                let tw3 = (splat(tw.inv[h / 4 + i]), splat(tw.inv_s[h / 4 + i]));
                let parts = eighths(block);
                let len = parts[0].len();
                for r in 0..len {
                    let mut x = [splat(0); 8];
                    for j in 0..8 {
                        x[j] = load(&parts[j][r]);
                    }
                    for j in 0..4 {
                        let (w, ws) = tw1[j];
                        (x[2 * j], x[2 * j + 1]) = inv_bfly(c, x[2 * j], x[2 * j + 1], w, ws);
                    }
                    for j in [0, 1, 4, 5] {
                        let (w, ws) = tw2[j / 4];
                        (x[j], x[j + 2]) = inv_bfly(c, x[j], x[j + 2], w, ws);
                    }
                    if h == 4 {
                        for j in 0..4 {
                            (x[j], x[j + 4]) = inv_last_bfly(c, x[j], x[j + 4], &k);
                        }
                    } else {
                        for j in 0..4 {
                            (x[j], x[j + 4]) = inv_bfly(c, x[j], x[j + 4], tw3.0, tw3.1);
                        }
                    }
                    for j in 0..8 {
                        store(&mut parts[j][r], x[j]);
                    }
                }
            }
        }

        /// Multiplies every value (in `[0, 2p)`) by `1/n`, result in `[0, p)`.
        #[target_feature(enable = $feat)]
        fn scale(c: &Consts, a: &mut [u64], tw: &Twiddles<'_>) {
            let k = last_consts(tw);
            for x in a.as_chunks_mut::<LANES>().0 {
                store(x, csub(mul_lazy(c, load(x), k.ni, k.nis), c.p));
            }
        }

        /// Inverse negacyclic NTT with the `1/n` factor (bit-reversed order
        /// in, natural out, values in `[0, p)`).
        ///
        /// # Safety
        /// The CPU must support the target features of this function.
        #[target_feature(enable = $feat)]
        pub(in crate::ntt::x86_64) unsafe fn inverse(tw: &Twiddles<'_>, a: &mut [u64]) {
            let n = a.len();
            assert!(n >= CHUNK && n.is_power_of_two(), "SIMD NTT needs n >= {CHUNK}");
            let c = consts(tw.p);
            inv_head(&c, a, tw);
            let mut h = n / (2 * CHUNK);
            let mut big = (n / CHUNK).trailing_zeros();
            if big == 0 {
                scale(&c, a, tw);
                return;
            }
            match big % MERGE {
                1 => inv_radix2(&c, a, h, tw),
                2 => inv_radix4(&c, a, h, tw),
                _ => {}
            }
            h >>= big % MERGE;
            big -= big % MERGE;
            while big >= MERGE {
                if MERGE == 3 {
                    inv_radix8(&c, a, h, tw);
                } else {
                    inv_radix4(&c, a, h, tw);
                }
                h >>= MERGE;
                big -= MERGE;
            }
        }

        #[cfg(test)]
        mod kernel_tests {
            use super::*;

            #[test]
            fn transpose_is_a_transpose() {
                if !super::detected() {
                    return;
                }
                let mut m = [[0u64; LANES]; LANES];
                for (i, row) in m.iter_mut().enumerate() {
                    for (j, x) in row.iter_mut().enumerate() {
                        *x = (i * LANES + j) as u64;
                    }
                }
                // SAFETY: `detected()` checked the kernel's target features.
                let out = unsafe { transpose_rows(m) };
                for i in 0..LANES {
                    for j in 0..LANES {
                        assert_eq!(out[i][j], m[j][i]);
                    }
                }
            }

            #[target_feature(enable = $feat)]
            fn transpose_rows(m: [[u64; LANES]; LANES]) -> [[u64; LANES]; LANES] {
                let mut v = [splat(0); LANES];
                for (x, row) in v.iter_mut().zip(m.iter()) {
                    *x = load(row);
                }
                transpose(&mut v);
                let mut out = [[0u64; LANES]; LANES];
                for (x, row) in v.iter().zip(out.iter_mut()) {
                    store(row, *x);
                }
                out
            }
        }
    };
}

mod avx2;
mod avx512;
pub(crate) mod pointwise;

/// Whether the CPU supports a SIMD backend.
pub(crate) fn is_available(backend: Backend) -> bool {
    match backend {
        Backend::Scalar => true,
        Backend::Avx2 => is_x86_feature_detected!("avx2"),
        Backend::Avx512 => {
            is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512dq")
        }
        Backend::Avx512Ifma => {
            is_available(Backend::Avx512) && is_x86_feature_detected!("avx512ifma")
        }
    }
}

/// Lane count of a SIMD backend.
fn lanes(backend: Backend) -> Option<usize> {
    match backend {
        Backend::Scalar => None,
        Backend::Avx2 => Some(4),
        Backend::Avx512 | Backend::Avx512Ifma => Some(8),
    }
}

/// Twiddles of one lane-wise stage (half-width `te < L`), rearranged so
/// that the `L` twiddles a register needs are contiguous: entry
/// `((c * S + s) * L + j)` is the twiddle of block `s` (of `S = L / 2te`)
/// inside sub-block `j` of chunk `c`.
#[derive(Clone, Debug)]
pub(crate) struct TailStage {
    w: Vec<u64>,
    ws: Vec<u64>,
}

impl TailStage {
    /// Position of the table for half-width `te` (a power of two).
    const fn index(te: usize) -> usize {
        te.trailing_zeros() as usize
    }

    fn new(w: &[u64], ws: &[u64], n: usize, lanes: usize, te: usize) -> Self {
        let sets = lanes / (2 * te);
        let m = n / (2 * te);
        let len = m;
        let mut out = Self {
            w: Vec::with_capacity(len),
            ws: Vec::with_capacity(len),
        };
        for c in 0..n / (lanes * lanes) {
            for s in 0..sets {
                for j in 0..lanes {
                    let idx = m + sets * (c * lanes + j) + s;
                    out.w.push(w[idx]);
                    out.ws.push(ws[idx]);
                }
            }
        }
        out
    }
}

/// Tables the SIMD kernels precompute for themselves.
#[derive(Clone, Debug)]
pub(crate) struct SimdTables {
    backend: Backend,
    /// 52-bit Shoup constants `floor(w * 2^52 / p)` (IFMA only; the other
    /// backends use the plan's 64-bit ones).
    fwd_shoup52: Vec<u64>,
    inv_shoup52: Vec<u64>,
    /// Lane-wise stage tables indexed by `log2(te)`.
    fwd_tail: Vec<TailStage>,
    inv_tail: Vec<TailStage>,
    /// Shoup constant of `1/n` in the kernel's width.
    n_inv_s: u64,
    /// `inv[1] / n` and its Shoup constant: the last inverse twiddle with
    /// the `1/n` factor folded in.
    last_w: u64,
    last_ws: u64,
}

/// Everything a kernel reads, borrowed from the plan and its tables.
pub(crate) struct Twiddles<'a> {
    p: u64,
    fwd: &'a [u64],
    fwd_s: &'a [u64],
    inv: &'a [u64],
    inv_s: &'a [u64],
    fwd_tail: &'a [TailStage],
    inv_tail: &'a [TailStage],
    n_inv: u64,
    n_inv_s: u64,
    last_w: u64,
    last_ws: u64,
}

impl SimdTables {
    /// Tables for the plan's backend, or `None` when the plan runs on the
    /// scalar kernel (scalar backend, or `n` below `L * L`).
    pub(crate) fn new(plan: &NttPlan) -> Option<Self> {
        let lanes = lanes(plan.backend)?;
        let n = plan.n;
        if plan.n.trailing_zeros() < 2 * lanes.trailing_zeros() {
            // Fewer stages than the tail pass handles: the scalar kernel runs.
            return None;
        }
        let m = &plan.modulus;
        let p = m.value();
        let ifma = plan.backend == Backend::Avx512Ifma;
        if ifma && m.bits() > IFMA_MAX_BITS {
            return None;
        }
        let shoup = |w: u64| -> u64 {
            if ifma {
                (((w as u128) << 52) / p as u128) as u64
            } else {
                m.shoup(w)
            }
        };
        let (fwd_shoup52, inv_shoup52) = if ifma {
            (
                plan.fwd.iter().map(|&w| shoup(w)).collect(),
                plan.inv.iter().map(|&w| shoup(w)).collect(),
            )
        } else {
            (Vec::new(), Vec::new())
        };
        let fwd_s: &[u64] = if ifma { &fwd_shoup52 } else { &plan.fwd_shoup };
        let inv_s: &[u64] = if ifma { &inv_shoup52 } else { &plan.inv_shoup };
        let halves: Vec<usize> = (0..lanes.trailing_zeros()).map(|k| 1 << k).collect();
        let fwd_tail = halves
            .iter()
            .map(|&te| TailStage::new(&plan.fwd, fwd_s, n, lanes, te))
            .collect();
        let inv_tail = halves
            .iter()
            .map(|&te| TailStage::new(&plan.inv, inv_s, n, lanes, te))
            .collect();
        let last_w = m.mul(plan.inv[1], plan.n_inv);
        Some(Self {
            backend: plan.backend,
            n_inv_s: shoup(plan.n_inv),
            last_ws: shoup(last_w),
            last_w,
            fwd_shoup52,
            inv_shoup52,
            fwd_tail,
            inv_tail,
        })
    }

    fn twiddles<'a>(&'a self, plan: &'a NttPlan) -> Twiddles<'a> {
        let ifma = self.backend == Backend::Avx512Ifma;
        Twiddles {
            p: plan.modulus.value(),
            fwd: &plan.fwd,
            fwd_s: if ifma {
                &self.fwd_shoup52
            } else {
                &plan.fwd_shoup
            },
            inv: &plan.inv,
            inv_s: if ifma {
                &self.inv_shoup52
            } else {
                &plan.inv_shoup
            },
            fwd_tail: &self.fwd_tail,
            inv_tail: &self.inv_tail,
            n_inv: plan.n_inv,
            n_inv_s: self.n_inv_s,
            last_w: self.last_w,
            last_ws: self.last_ws,
        }
    }
}

/// The plan's tables, if they were built for its backend and the CPU can
/// run it.
fn runnable(plan: &NttPlan) -> Option<(&SimdTables, Backend)> {
    let tables = plan.simd.as_ref()?;
    (tables.backend == plan.backend && is_available(plan.backend)).then_some((tables, plan.backend))
}

pub(crate) fn forward(plan: &NttPlan, a: &mut [u64]) {
    let Some((tables, backend)) = runnable(plan) else {
        return scalar::forward(plan, a);
    };
    let tw = tables.twiddles(plan);
    match backend {
        // SAFETY: `runnable` checked `is_available(Avx2)`, i.e. avx2 was
        // detected with `is_x86_feature_detected!`.
        Backend::Avx2 => unsafe { avx2::forward(&tw, a) },
        // SAFETY: `runnable` checked `is_available(Avx512)`: avx512f and
        // avx512dq were detected.
        Backend::Avx512 => unsafe { avx512::wide::forward(&tw, a) },
        // SAFETY: `runnable` checked `is_available(Avx512Ifma)`: avx512f,
        // avx512dq and avx512ifma were detected.
        Backend::Avx512Ifma => unsafe { avx512::ifma::forward(&tw, a) },
        Backend::Scalar => scalar::forward(plan, a),
    }
}

pub(crate) fn inverse(plan: &NttPlan, a: &mut [u64]) {
    let Some((tables, backend)) = runnable(plan) else {
        return scalar::inverse(plan, a);
    };
    let tw = tables.twiddles(plan);
    match backend {
        // SAFETY: `runnable` checked `is_available(Avx2)`, i.e. avx2 was
        // detected with `is_x86_feature_detected!`.
        Backend::Avx2 => unsafe { avx2::inverse(&tw, a) },
        // SAFETY: `runnable` checked `is_available(Avx512)`: avx512f and
        // avx512dq were detected.
        Backend::Avx512 => unsafe { avx512::wide::inverse(&tw, a) },
        // SAFETY: `runnable` checked `is_available(Avx512Ifma)`: avx512f,
        // avx512dq and avx512ifma were detected.
        Backend::Avx512Ifma => unsafe { avx512::ifma::inverse(&tw, a) },
        Backend::Scalar => scalar::inverse(plan, a),
    }
}
