//! Answering a query, as work the caller schedules.
//!
//! [`PreparedQuery::new`] (or [`SenderDb::prepare_query`]) checks and
//! decodes a query and computes, once, every power of the query each bundle
//! index needs; [`PreparedQuery::answer_part`] then evaluates one bin
//! bundle's polynomials on those powers and returns its [`ResultPart`].
//! Parts are independent: the caller decides how many run at once, on
//! which threads, and when (the server keeps a small window of parts in
//! flight per query, each started only once the client has taken an
//! earlier one). Nothing here spawns a thread, holds a channel or blocks
//! on a consumer. Both steps use rayon's data parallelism inside, on the
//! pool they are called from (`ThreadPool::install` or `spawn` picks it).
//!
//! # Errors
//!
//! Preparing reports what is wrong with the query (wrong parameters,
//! shape, undecodable ciphertexts, missing relinearization keys): the
//! client's fault. Once a query is prepared, every failure is the
//! sender's own ([`Error::Internal`]): a correct database evaluates any
//! well-formed query.
//!
//! # Cost
//!
//! Preparing holds the decoded query and, per bundle index, its powers (at
//! the default parameters, about 50 ciphertexts at the plaintexts' level
//! plus the lifted high powers, a few tens of MB); each part costs one
//! bundle's polynomial evaluations and returns a few hundred kB.

use std::ops::Deref;

use he_core::{Ciphertext, CompressionBits, Evaluator, LiftedCiphertext, PlaintextNtt, RelinKeys};
use rayon::prelude::*;

use super::{PolyPlaintexts, SenderDb, plain_level};
use crate::error::{Error, Result};
use crate::messages::{Query, ResultPart};
use crate::params::PowersDag;

/// The powers of one bundle index's query ciphertexts, ready for the
/// bundles' polynomials: every power in NTT form at the plaintexts' level,
/// and the high powers (multiples of `ps_low_degree + 1`) lifted for
/// Paterson-Stockmeyer's products.
struct BundlePowers {
    ntt: Vec<Option<Ciphertext>>,
    high: Vec<Option<LiftedCiphertext>>,
}

/// A checked query with its powers computed, to be answered part by part
/// ([`answer_part`](Self::answer_part)) in any order, on any threads.
///
/// `D` is how it holds the database: `&SenderDb` from
/// [`SenderDb::prepare_query`], or an owning handle (an `Arc`, or a
/// caller's type that derefs to a database inside a larger structure) when
/// the parts are answered by jobs that outlive the caller's stack frame.
///
/// ```
/// use psi_core::{OprfKey, PsiParams, Receiver, SenderDb};
/// let params = PsiParams::from_json(include_str!("../../params/test-small.json")).unwrap();
/// let mut db = SenderDb::new(params.clone(), OprfKey::generate().unwrap()).unwrap();
/// db.insert(&[(b"alice".as_slice(), b"label-a".as_slice())]).unwrap();
/// let receiver = Receiver::new(params).unwrap();
/// let (request, pending) = receiver.oprf_request(&[b"alice".as_slice()]).unwrap();
/// let (query, state) = receiver.create_query(pending, &db.evaluate_oprf(&request).unwrap()).unwrap();
/// let prepared = db.prepare_query(&query).unwrap();
/// let parts = (0..prepared.part_count())
///     .map(|i| prepared.answer_part(i))
///     .collect::<Result<Vec<_>, _>>()
///     .unwrap();
/// assert!(parts.iter().all(|p| p.total_parts as usize == parts.len()));
/// assert!(receiver.decode(&state, &parts).unwrap()[0].matched);
/// ```
pub struct PreparedQuery<D: Deref<Target = SenderDb>> {
    db: D,
    rk: Option<RelinKeys>,
    /// Per bundle index; `None` where the index has no bundle.
    powers: Vec<Option<BundlePowers>>,
    /// `(bundle index, bundle)` of each part, in answer order.
    parts: Vec<(usize, usize)>,
}

impl<D: Deref<Target = SenderDb>> std::fmt::Debug for PreparedQuery<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedQuery")
            .field("parts", &self.parts.len())
            .finish_non_exhaustive()
    }
}

/// Wraps an error of the sender's own making (after the query was
/// checked) as [`Error::Internal`], keeping its text for the log.
fn internal(context: &'static str) -> impl Fn(Error) -> Error {
    move |e| match e {
        Error::Internal(_) => e,
        other => Error::Internal(format!("{context}: {other}")),
    }
}

impl SenderDb {
    /// Checks and decodes `query` and computes its powers
    /// ([`PreparedQuery::new`] with a borrowed database).
    pub fn prepare_query(&self, query: &Query) -> Result<PreparedQuery<&Self>> {
        PreparedQuery::new(self, query)
    }

    /// Answers a query, calling `emit` with each result part in order.
    /// Parts are computed a round at a time (as many as the current rayon
    /// pool has threads) on the calling thread's pool; if `emit` fails,
    /// the remaining parts are not computed and the error is returned.
    /// A convenience over [`prepare_query`](Self::prepare_query) and
    /// [`PreparedQuery::answer_part`] for tools and tests; a server
    /// schedules the parts itself.
    pub fn answer(
        &self,
        query: &Query,
        mut emit: impl FnMut(ResultPart) -> Result<()>,
    ) -> Result<()> {
        let prepared = self.prepare_query(query)?;
        let n = prepared.part_count();
        let round = rayon::current_num_threads().max(1);
        for start in (0..n).step_by(round) {
            let parts = (start..(start + round).min(n))
                .into_par_iter()
                .map(|i| prepared.answer_part(i))
                .collect::<Result<Vec<_>>>()?;
            for part in parts {
                emit(part)?;
            }
        }
        Ok(())
    }

    /// Answers a query and collects every part.
    pub fn answer_all(&self, query: &Query) -> Result<Vec<ResultPart>> {
        let mut parts = Vec::with_capacity(self.result_part_count());
        self.answer(query, |p| {
            parts.push(p);
            Ok(())
        })?;
        Ok(parts)
    }

    fn check_query(&self, query: &Query) -> Result<(Option<RelinKeys>, Vec<Vec<Ciphertext>>)> {
        if query.params_fingerprint != self.params.fingerprint() {
            return Err(Error::ParameterMismatch);
        }
        let bic = self.params.bundle_index_count();
        let qp = self.params.query_powers.len();
        if query.powers.len() != bic || query.powers.iter().any(|r| r.len() != qp) {
            return Err(Error::Malformed(format!(
                "query must hold {bic} bundle indices of {qp} ciphertexts"
            )));
        }
        // Expanding the seeded halves is the costly part of decoding: the
        // keys and every ciphertext are decoded in parallel.
        let (rk, cts) = rayon::join(
            || {
                query
                    .relin_keys
                    .as_ref()
                    .map(|b| RelinKeys::from_bytes(b, &self.he))
                    .transpose()
            },
            || {
                query
                    .powers
                    .par_iter()
                    .map(|row| {
                        row.par_iter()
                            .map(|b| {
                                let ct = Ciphertext::from_bytes(b, &self.he)?;
                                if ct.level() != 0 || ct.size() != 2 || ct.is_ntt() {
                                    return Err(Error::Malformed(
                                        "query ciphertexts must be fresh (level 0, size 2, coefficient form)".into(),
                                    ));
                                }
                                Ok(ct)
                            })
                            .collect::<Result<Vec<_>>>()
                    })
                    .collect::<Result<Vec<_>>>()
            },
        );
        Ok((rk?, cts?))
    }
}

impl<D: Deref<Target = SenderDb> + Sync> PreparedQuery<D> {
    /// Checks `query` against `db`'s parameters, decodes it, and computes
    /// the powers of every bundle index that has bundles (in parallel, on
    /// the current rayon pool). Errors in the query are reported as such
    /// ([`Error::ParameterMismatch`], [`Error::Malformed`], [`Error::He`]);
    /// a failure computing the powers of a decoded query is
    /// [`Error::Internal`].
    pub fn new(db: D, query: &Query) -> Result<Self> {
        let (rk, cts) = db.check_query(query)?;
        let needs_rk =
            db.params.ps_low_degree > 0 || db.dag.nodes().iter().any(|n| n.parents.is_some());
        if needs_rk && rk.is_none() {
            return Err(Error::Malformed(
                "the query lacks the relinearization keys these parameters need".into(),
            ));
        }
        let parts: Vec<(usize, usize)> = db
            .bundles
            .iter()
            .enumerate()
            .flat_map(|(bi, bundles)| (0..bundles.len()).map(move |j| (bi, j)))
            .collect();
        let powers = cts
            .into_par_iter()
            .enumerate()
            .map(|(bi, sources)| {
                if db.bundles[bi].is_empty() {
                    return Ok(None);
                }
                bundle_powers(&db, sources, rk.as_ref())
                    .map(Some)
                    .map_err(internal("computing the query powers"))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            db,
            rk,
            powers,
            parts,
        })
    }

    /// The number of result parts (one per bin bundle, at least 0); every
    /// part carries it as [`ResultPart::total_parts`].
    pub fn part_count(&self) -> usize {
        self.parts.len()
    }

    /// The database this query is answered from.
    pub fn db(&self) -> &SenderDb {
        &self.db
    }

    /// Computes result part `part` (in `0..part_count()`): one bin
    /// bundle's matching and label polynomials evaluated on the query's
    /// powers, switched to the last level and compressed. Uses the current
    /// rayon pool for the polynomials of the bundle. Any failure is the
    /// sender's own: [`Error::Internal`].
    pub fn answer_part(&self, part: usize) -> Result<ResultPart> {
        let &(bi, j) = self.parts.get(part).ok_or_else(|| {
            Error::Internal(format!(
                "result part {part} asked of a query with {} parts",
                self.parts.len()
            ))
        })?;
        self.answer_bundle(bi, j)
            .map_err(internal("answering a bin bundle"))
    }

    fn answer_bundle(&self, bi: usize, j: usize) -> Result<ResultPart> {
        let db = &*self.db;
        let powers = self.powers[bi]
            .as_ref()
            .ok_or_else(|| Error::Internal(format!("bundle index {bi} has no powers")))?;
        let bundle = &db.bundles[bi][j];
        let cache = bundle
            .cache
            .as_ref()
            .ok_or_else(|| Error::Internal("bundle cache missing: call regenerate".into()))?;
        let ev = Evaluator::new(&db.he);
        let bits = CompressionBits::for_params(&db.he);
        let l = db.params.ps_low_degree as usize;
        let polys: Vec<&PolyPlaintexts> = std::iter::once(&cache.matching)
            .chain(&cache.labels)
            .collect();
        let cts = if l == 0 {
            eval_direct(&ev, &powers.ntt, &polys)?
        } else {
            let rk = self.rk.as_ref().ok_or_else(|| {
                Error::Internal("a prepared query without relinearization keys".into())
            })?;
            // The matching and label polynomials are independent.
            polys
                .par_iter()
                .map(|poly| eval_paterson_stockmeyer(&ev, &powers.ntt, &powers.high, poly, l, rk))
                .collect::<Result<Vec<_>>>()?
        };
        // Switched to the last level and compressed: the receiver only
        // decrypts them.
        let mut polys: Vec<Vec<u8>> = cts
            .par_iter()
            .map(|ct| Ok(ev.compress(ct, bits)?.to_bytes(&db.he)?))
            .collect::<Result<_>>()?;
        let labels = polys.split_off(1);
        let matching = polys
            .pop()
            .ok_or_else(|| Error::Internal("no matching polynomial evaluated".into()))?;
        Ok(ResultPart {
            bundle_index: bi as u32,
            total_parts: self.parts.len() as u32,
            matching,
            labels,
        })
    }
}

/// The powers of one bundle index's query ciphertexts
/// ([`BundlePowers`]).
fn bundle_powers(
    db: &SenderDb,
    sources: Vec<Ciphertext>,
    rk: Option<&RelinKeys>,
) -> Result<BundlePowers> {
    let ev = Evaluator::new(&db.he);
    // Relinearizing below the top level adds key-switching noise of about
    // sqrt(n) q_i sigma / special; with a special prime as large as the
    // ciphertext primes that is a few bits, far below the rounding noise
    // (about t sqrt(n)) the switch itself adds. A smaller special prime
    // relinearizes at the top, where switching divides that noise away.
    let q_bits = db.params.ciphertext_prime_bits().iter().max().copied();
    let leaf_level = match (db.params.special_prime_bits(), q_bits) {
        (Some(special), Some(q)) if special >= q => plain_level(&db.he),
        _ => 0,
    };
    let powers = compute_powers(
        &ev,
        &db.dag,
        &db.params.query_powers,
        sources,
        rk,
        leaf_level,
    )?;
    let l = db.params.ps_low_degree as usize;
    let level = plain_level(&db.he);
    // Every power in NTT form for plain products (at the plaintexts'
    // level, see `plain_level`); Paterson-Stockmeyer also multiplies by
    // the high powers (multiples of L + 1), lifted once here for every
    // polynomial's products.
    let (ntt, high): (Vec<Option<Ciphertext>>, Vec<Option<LiftedCiphertext>>) = powers
        .into_par_iter()
        .enumerate()
        .map(|(p, ct)| -> Result<_> {
            let Some(mut c) = ct else {
                return Ok((None, None));
            };
            if level > 0 {
                c = ev.mod_switch_to_level(&c, level)?;
            }
            let high = (l > 0 && p > 0 && p % (l + 1) == 0)
                .then(|| ev.lift(&c))
                .transpose()?;
            ev.transform_to_ntt(&mut c)?;
            Ok((Some(c), high))
        })
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .unzip();
    Ok(BundlePowers { ntt, high })
}

/// Computes every target power of the DAG from the query's source powers,
/// relinearizing each product. Returns `powers[p]` for `p` up to the
/// largest target. The DAG is evaluated depth by depth, with every product
/// of one depth computed in parallel (a product only reads shallower powers).
///
/// A product no other product reads is switched to `leaf_level` (the level
/// where the caller takes every power, or 0 to stay at the top) before its
/// relinearization, which costs less there: key switching over fewer
/// primes.
fn compute_powers(
    ev: &Evaluator,
    dag: &PowersDag,
    query_powers: &[u32],
    sources: Vec<Ciphertext>,
    rk: Option<&RelinKeys>,
    leaf_level: usize,
) -> Result<Vec<Option<Ciphertext>>> {
    let max = dag.nodes().last().map_or(0, |n| n.power as usize);
    let mut powers: Vec<Option<Ciphertext>> = vec![None; max + 1];
    for (p, ct) in query_powers.iter().zip(sources) {
        powers[*p as usize] = Some(ct);
    }
    // Each operand of a product of two different powers is lifted to the
    // extended basis once (a product would lift both of its operands), and
    // dropped after the last depth that uses it.
    let mut last_use = vec![0u32; max + 1];
    let mut is_parent = vec![false; max + 1];
    for n in dag.nodes() {
        let Some((a, b)) = n.parents else { continue };
        for x in [a as usize, b as usize] {
            is_parent[x] = true;
            if a != b {
                last_use[x] = last_use[x].max(n.depth);
            }
        }
    }
    let mut lifted: Vec<Option<LiftedCiphertext>> = vec![None; max + 1];
    for depth in 1..=dag.depth() {
        let level: Vec<(u32, u32, u32)> = dag
            .nodes()
            .iter()
            .filter(|n| n.depth == depth)
            .filter_map(|n| n.parents.map(|(a, b)| (n.power, a, b)))
            .collect();
        if level.is_empty() {
            continue;
        }
        let rk = rk.ok_or_else(|| {
            Error::Internal("the query lacks the relinearization keys these parameters need".into())
        })?;
        let mut to_lift: Vec<u32> = level
            .iter()
            .filter(|(_, a, b)| a != b)
            .flat_map(|&(_, a, b)| [a, b])
            .filter(|&x| lifted[x as usize].is_none())
            .collect();
        to_lift.sort_unstable();
        to_lift.dedup();
        let get = |x: u32| {
            powers[x as usize]
                .as_ref()
                .ok_or(Error::UnreachablePower { power: x })
        };
        let new_lifts: Vec<(u32, LiftedCiphertext)> = to_lift
            .par_iter()
            .map(|&x| Ok((x, ev.lift(get(x)?)?)))
            .collect::<Result<_>>()?;
        for (x, l) in new_lifts {
            lifted[x as usize] = Some(l);
        }
        let computed: Vec<(u32, Ciphertext)> = level
            .par_iter()
            .map(|&(p, a, b)| {
                let mut ct = if a == b {
                    ev.square(get(a)?)?
                } else {
                    let lifted_of = |x: u32| {
                        lifted[x as usize]
                            .as_ref()
                            .ok_or(Error::UnreachablePower { power: x })
                    };
                    ev.multiply_sum(&[(lifted_of(a)?, lifted_of(b)?)])?
                };
                if !is_parent[p as usize] && leaf_level > ct.level() {
                    ct = ev.mod_switch_to_level(&ct, leaf_level)?;
                }
                ev.relinearize_assign(&mut ct, rk)?;
                Ok((p, ct))
            })
            .collect::<Result<_>>()?;
        for (p, ct) in computed {
            powers[p as usize] = Some(ct);
        }
        for (x, l) in lifted.iter_mut().enumerate() {
            if last_use[x] <= depth {
                *l = None;
            }
        }
    }
    Ok(powers)
}

/// `sum_j c_j y^j + c_0` for each polynomial, with every power in NTT
/// form, in one pass over the powers
/// ([`Evaluator::multiply_plain_accumulate_many`]).
fn eval_direct(
    ev: &Evaluator,
    ntt_powers: &[Option<Ciphertext>],
    polys: &[&PolyPlaintexts],
) -> Result<Vec<Ciphertext>> {
    let degree = polys.iter().map(|p| p.ntt.len()).max().unwrap_or(0);
    // The powers some polynomial has a (non-zero) coefficient for.
    let used: Vec<usize> = (1..degree)
        .filter(|&j| polys.iter().any(|p| matches!(p.ntt.get(j), Some(Some(_)))))
        .collect();
    if polys
        .iter()
        .any(|p| p.ntt.iter().skip(1).all(Option::is_none))
    {
        return Err(Error::Internal(
            "polynomial without a non-constant term".into(),
        ));
    }
    let cts = used
        .iter()
        .map(|&j| {
            ntt_powers
                .get(j)
                .and_then(Option::as_ref)
                .ok_or(Error::UnreachablePower { power: j as u32 })
        })
        .collect::<Result<Vec<_>>>()?;
    let rows: Vec<Vec<Option<&PlaintextNtt>>> = polys
        .iter()
        .map(|p| {
            used.iter()
                .map(|&j| p.ntt.get(j).and_then(Option::as_ref))
                .collect()
        })
        .collect();
    let mut sums = ev.multiply_plain_accumulate_many(&cts, &rows)?;
    for (sum, poly) in sums.iter_mut().zip(polys) {
        ev.add_plain_assign(sum, &poly.constant)?;
    }
    Ok(sums)
}

/// Paterson-Stockmeyer: with block size `L + 1`, the polynomial is
/// `sum_i inner_i(y) * y^(i (L+1))` where each `inner_i` has degree `<= L`
/// and is evaluated with plain multiplications of the low powers; each
/// block then costs one ciphertext product with a high power, all summed
/// before one scaling ([`Evaluator::multiply_sum`]) and one
/// relinearization. `ntt_powers` holds every power in NTT form,
/// `high_powers` the high ones lifted for products.
fn eval_paterson_stockmeyer(
    ev: &Evaluator,
    ntt_powers: &[Option<Ciphertext>],
    high_powers: &[Option<LiftedCiphertext>],
    poly: &PolyPlaintexts,
    l: usize,
    rk: &RelinKeys,
) -> Result<Ciphertext> {
    let degree = poly.ntt.len() - 1;
    let block = l + 1;
    fn power<T>(v: &[Option<T>], p: usize) -> Result<&T> {
        v.get(p)
            .and_then(Option::as_ref)
            .ok_or(Error::UnreachablePower { power: p as u32 })
    }
    let add = |acc: &mut Option<Ciphertext>, x: Ciphertext| -> Result<()> {
        match acc {
            None => *acc = Some(x),
            Some(a) => ev.add_assign(a, &x)?,
        }
        Ok(())
    };
    // Lifted inner sums with their high powers, and plain terms (NTT form).
    let mut blocks: Vec<(LiftedCiphertext, &LiftedCiphertext)> = Vec::new();
    let mut plain_terms: Option<Ciphertext> = None;
    for i in 0..=degree / block {
        let base = i * block;
        let mut pairs = Vec::new();
        for j in 1..=l {
            if let Some(Some(pt)) = poly.ntt.get(base + j) {
                pairs.push((power(ntt_powers, j)?, pt));
            }
        }
        let inner = if pairs.is_empty() {
            None
        } else {
            Some(ev.multiply_plain_accumulate(&pairs)?)
        };
        if i == 0 {
            if let Some(x) = inner {
                add(&mut plain_terms, x)?;
            }
            continue;
        }
        if let Some(x) = inner {
            blocks.push((ev.lift(&x)?, power(high_powers, base)?));
        }
        if let Some(Some(c)) = poly.ntt.get(base) {
            add(
                &mut plain_terms,
                ev.multiply_plain_ntt(power(ntt_powers, base)?, c)?,
            )?;
        }
    }
    // Summed in as few multiply_sum calls as the auxiliary primes allow
    // (every operand here has two polynomials: one unit of capacity).
    let mut products: Option<Ciphertext> = None;
    if let Some((first, _)) = blocks.first() {
        let capacity = ev.multiply_sum_capacity(first.level())?;
        if capacity == 0 {
            return Err(Error::Internal(
                "these parameters leave no room to sum Paterson-Stockmeyer products".into(),
            ));
        }
        let pairs: Vec<(&LiftedCiphertext, &LiftedCiphertext)> =
            blocks.iter().map(|(x, h)| (x, *h)).collect();
        for chunk in pairs.chunks(capacity) {
            add(&mut products, ev.multiply_sum(chunk)?)?;
        }
    }
    let mut total = match (products, plain_terms) {
        (Some(mut p), plain) => {
            ev.relinearize_assign(&mut p, rk)?;
            if let Some(mut x) = plain {
                ev.transform_from_ntt(&mut x)?;
                ev.add_assign(&mut p, &x)?;
            }
            p
        }
        (None, Some(x)) => x,
        (None, None) => {
            return Err(Error::Internal(
                "polynomial without a non-constant term".into(),
            ));
        }
    };
    ev.add_plain_assign(&mut total, &poly.constant)?;
    Ok(total)
}
